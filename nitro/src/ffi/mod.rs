//! The route side of the ABI.

mod export;

pub use export::{__private, HookOutput};
pub(crate) use export::{RawPeer, host_log, host_publish};
