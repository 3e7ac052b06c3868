//! The dev loop of `nitro dev`: file events, rebuilds, the browser's error overlay.

pub mod ansi;
pub mod reload;
pub mod watch;
