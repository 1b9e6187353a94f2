pub mod config;
pub mod directory;
pub mod dsa;
pub mod index;
pub mod ops;
pub mod protocol;
pub mod store;
