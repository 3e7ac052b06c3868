//! The route side of the ABI: the calls into the host ([`host`]; [`host_task`] for the tasks
//! the host returns, as storage does) and the entry points the
//! route exports ([`export`]; [`async_export`] for `async fn`s, whose futures [`task`] turns
//! into `abi::Task`s; [`middleware_export`] for `middleware/*.rs` files; [`plugin_export`] for `plugins/*.rs` files; [`task_export`] for `tasks/*.rs` files; [`local_peer`] serves a peer inside the library, for the test doubles of `nitro::testing`; [`guard`] has what they share: panics caught, the runtime entered,
//! answers written).
//!
//! This is the only module of the crate with `unsafe` code. Every pointer it dereferences comes
//! from the host through `nitro-abi`, whose contract is: borrowed data is valid for the call
//! that received it, peer handles for as long as they are retained, and `HostApi` until the
//! process exits. Every exported entry point catches panics here, inside the route, because a
//! panic cannot cross the boundary (each route library has its own Rust runtime, so the host
//! could not catch it even through `extern "C-unwind"`).

mod answer;
mod async_export;
mod export;
mod guard;
mod host;
mod host_task;
mod local_peer;
mod middleware_export;
mod plugin_export;
mod stream;
mod task;
mod task_export;
mod waker;

pub use export::__private;
pub(crate) use host::{
    RawPeer, host_assets_dir, host_event, host_log, host_peers, host_publish, host_runtime_config,
    host_traceparent, host_tracestate,
};
pub(crate) use host_task::{HostCall, HostResult};
pub(crate) use local_peer::{LocalPeer, PeerBackend, WeakLocalPeer};
pub(crate) use stream::open_event_peer;
