//! The built `.output/` folder.

pub(crate) mod compress;
pub mod manifest;
pub(crate) mod staging;
pub(crate) mod write;
