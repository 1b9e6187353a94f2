pub mod directory;
pub mod index;
pub mod store;
