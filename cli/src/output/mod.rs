//! The built `.output/` folder.

pub mod manifest;
