//! One module per command: its arguments and its `run`.

pub mod build;
pub mod dev;
pub mod init;
pub mod start;
