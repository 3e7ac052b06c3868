//! WebSocket peers and pub/sub, following the crossws model.
//!
//! - A [`Peer`] is created when an upgrade is accepted and lives in the host: its socket,
//!   topics and context survive reloads of the route's code. Every method of a peer is
//!   non-blocking and may be called from any thread (sync route hooks run on the blocking
//!   pool, async ones on the async workers, and what a route `tokio::spawn`s on its own
//!   runtime).
//! - The [`Hub`] is the per-server registry of open peers, by namespace, and of their topic
//!   subscriptions. [`Peer::publish`] reaches the subscribers of a topic in the publisher's
//!   namespace, except the publisher (unless asked); [`Hub::publish`] reaches every subscriber.
//! - One connection task per peer reads frames and runs the route's hooks strictly one at a
//!   time, in order (`open`, each `message`, `close`), looking the route up in the *current*
//!   [`App`](crate::App) at each event, so swapped code handles the next event. A writer task
//!   drains the peer's outbound queue, so reading never waits for writing.
//!
//! - With a [`backplane`] (`[websocket] pubsub` in `nitro.toml`, feature `redis`), every
//!   publish is delivered locally first, then relayed through Redis to the other instances'
//!   subscribers; see [`backplane`] for the exact semantics.
//!
//! Close codes: the `close` hook gets the client's code and reason, `1005` when its close frame
//! had none, and `1006` when the connection dropped without one. Protocol failures are answered
//! with a close frame first: invalid UTF-8 `1007`, a message or frame over 1 MiB `1009`, any
//! other protocol error `1002`. A failing `open` hook closes the peer with `1011`; server
//! shutdown closes every peer with `1001`.
//!
//! Messages over 16 KiB travel in fragments both ways (`fragment.rs`), so a connection's
//! buffers stay small after a large message.

pub mod backplane;
mod connection;
mod drain;
mod fragment;
pub(crate) mod handshake;
mod hub;
pub(crate) mod peer;
pub(crate) mod queue;

pub use hub::Hub;
pub(crate) use peer::SendLimit;
pub use peer::{Peer, PeerRef};

pub(crate) use connection::{PeerTask, abandon, open, run_peer};
pub(crate) use fragment::Reframe;
