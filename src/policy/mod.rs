//! The service's policies that run over the whole directory, from the command line or on the
//! server's timer: built on the one reader and the one writer (`dsa`), like `import`.
//!
//! - [`dormant`]: accounts never used or no longer used are removed or disabled, unless
//!   exempted.

pub mod dormant;
