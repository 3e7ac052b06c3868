//! Pub/sub across instances: every publish is relayed through a backplane (Redis) so that the
//! subscribers of other instances get it too. crossws's sync model, on the host side only.
//!
//! - A publish ([`Peer::publish`](super::Peer::publish), [`Hub::publish`](super::Hub::publish)) is delivered to the
//!   local subscribers first, exactly as without a backplane, and then *offered* to the relay:
//!   a bounded queue ([`Relay`]). Offering never blocks; a full queue drops the message and
//!   counts it. Route code never waits for Redis.
//! - One task takes messages off the queue in order and publishes them, in batches (one
//!   pipeline of `PUBLISH` commands), on one Redis channel, as crossws's envelope
//!   ([`encode_envelope`]). While the connection is down, messages are dropped and counted,
//!   not buffered (at most once, no replay: crossws's semantics).
//! - Every instance receives every envelope of the channel, its own included (Redis echoes to
//!   the publisher's subscription): it drops its own by instance id and delivers the others to
//!   its local subscribers of that namespace and topic (`""`: every namespace), without relaying
//!   them again.
//!
//! The envelope and the relay queue are plain code (always built); the Redis driver,
//! [`Backplane`], needs the `redis` feature. The user's view is `docs/deploy.md`.

mod envelope;
mod relay;

#[cfg(feature = "redis")]
mod driver;

pub use envelope::{SyncMessage, decode_envelope, encode_envelope};
pub use relay::{BackplaneStats, ConnectionState, DEFAULT_QUEUE};

#[cfg(test)]
pub(crate) use relay::Counters;
pub(crate) use relay::Relay;

#[cfg(feature = "redis")]
pub use driver::{Backplane, DEFAULT_STATS_INTERVAL, PubSubConfig, PubSubError};
