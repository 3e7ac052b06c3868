//! One module per command: its arguments and its `run`.

pub(crate) mod build;
pub(crate) mod dev;
pub(crate) mod doc;
pub(crate) mod init;
pub(crate) mod start;
pub(crate) mod task;
pub(crate) mod test;
