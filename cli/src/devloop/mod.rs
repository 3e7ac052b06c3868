//! The dev loop of `nitro dev`: file events, rebuilds, the browser's error overlay.

pub(crate) mod ansi;
pub(crate) mod overlay;
pub(crate) mod reload;
pub(crate) mod watch;
