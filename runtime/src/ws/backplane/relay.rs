//! The relay queue between the hub and the backplane's tasks, and the counters they share.

// Without the `redis` feature nothing outside the tests builds a relay.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::envelope::encode_envelope;

/// How many publishes may wait for Redis before new ones are dropped, by default.
pub const DEFAULT_QUEUE: usize = 10_000;

/// Warnings about dropped or malformed messages: at most one per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The state of the connection to the backplane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not connected yet (the first attempt is under way).
    #[default]
    Connecting,
    /// Connected and subscribed to the channel: publishes are relayed.
    Connected,
    /// The connection failed or was lost; reconnecting with backoff. Publishes are delivered
    /// locally and counted as dropped for the relay.
    Disconnected,
}

impl ConnectionState {
    fn from_u8(value: u8) -> ConnectionState {
        match value {
            1 => ConnectionState::Connected,
            2 => ConnectionState::Disconnected,
            _ => ConnectionState::Connecting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            ConnectionState::Connecting => 0,
            ConnectionState::Connected => 1,
            ConnectionState::Disconnected => 2,
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
        })
    }
}

/// What a backplane has done since it started. Every count is of messages (one publish is one
/// message, whatever the number of subscribers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BackplaneStats {
    pub state: ConnectionState,
    /// Local publishes sent to the backplane.
    pub relayed: u64,
    /// Publishes of other instances delivered to this instance's subscribers.
    pub received: u64,
    /// Local publishes that were not relayed (they were still delivered locally): the queue
    /// was full, the connection was down, or `PUBLISH` failed.
    pub dropped: u64,
    /// This instance's own publishes coming back from the channel, ignored.
    pub own: u64,
    /// Messages on the channel that are not envelopes, ignored.
    pub malformed: u64,
}

impl fmt::Display for BackplaneStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, relayed {}, received {}, dropped {}",
            self.state, self.relayed, self.received, self.dropped
        )?;
        if self.malformed > 0 {
            write!(f, ", malformed {}", self.malformed)?;
        }
        Ok(())
    }
}

/// The counters shared by the hub's relay and the backplane's tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    state: AtomicU8,
    relayed: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    own: AtomicU64,
    malformed: AtomicU64,
    drop_warning: RateLimit,
    malformed_warning: RateLimit,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> BackplaneStats {
        BackplaneStats {
            state: self.state(),
            relayed: self.relayed.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            own: self.own.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Sets the state; returns the previous one.
    pub(crate) fn set_state(&self, state: ConnectionState) -> ConnectionState {
        ConnectionState::from_u8(self.state.swap(state.as_u8(), Ordering::AcqRel))
    }

    pub(crate) fn relayed(&self, n: usize) {
        self.relayed.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn own(&self) {
        self.own.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` messages that will not be relayed, and warns at most every [`WARN_EVERY`].
    pub(crate) fn dropped(&self, n: usize, why: &dyn fmt::Display) {
        let total = self.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if let Some(since) = self.drop_warning.allow(n as u64) {
            tracing::warn!(
                target: "nitro::pubsub",
                "not relayed to other instances ({why}): {since} message(s) since the last warning, {total} in all (they were delivered on this instance)"
            );
        }
    }

    pub(crate) fn malformed(&self, raw: &[u8]) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(since) = self.malformed_warning.allow(1) {
            let preview = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
            tracing::warn!(
                target: "nitro::pubsub",
                "ignoring {since} message(s) on the channel that are not pub/sub envelopes, such as `{preview}`"
            );
        }
    }
}

/// Lets one warning through per [`WARN_EVERY`], and says how many events it stands for.
#[derive(Debug, Default)]
struct RateLimit {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    /// Adds `n` events; returns the events since the last warning when one is due now.
    fn allow(&self, n: u64) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += n;
        let due = state.0.is_none_or(|last| last.elapsed() >= WARN_EVERY);
        if due {
            state.0 = Some(Instant::now());
            Some(std::mem::take(&mut state.1))
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The relay queue

/// A local publish waiting to be relayed.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// `None`: every namespace (a server-wide publish).
    pub(crate) namespace: Option<String>,
    pub(crate) topic: String,
    /// The frame that local subscribers got (its payload is shared, not copied).
    pub(crate) message: Message,
}

impl Outgoing {
    /// The envelope for this message from instance `id`.
    pub(crate) fn envelope(&self, id: &str) -> String {
        let (data, binary): (&[u8], bool) = match &self.message {
            Message::Text(text) => (text.as_bytes(), false),
            Message::Binary(bytes) => (bytes, true),
            // A publish is always a text or binary frame (`peer::frame`).
            _ => (&[], false),
        };
        encode_envelope(
            id,
            self.namespace.as_deref().unwrap_or(""),
            &self.topic,
            data,
            binary,
        )
    }
}

/// The hub's end of a backplane: where publishes are offered for relaying.
#[derive(Debug)]
pub(crate) struct Relay {
    queue: mpsc::Sender<Outgoing>,
    counters: Arc<Counters>,
}

impl Relay {
    /// A relay with room for `capacity` waiting messages, and the receiving end for the
    /// backplane's publishing task.
    pub(crate) fn new(
        capacity: usize,
        counters: Arc<Counters>,
    ) -> (Relay, mpsc::Receiver<Outgoing>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        (Relay { queue, counters }, rx)
    }

    /// Queues a local publish for the other instances. Never blocks: a full queue drops the
    /// message and counts it; a stopped backplane ignores it.
    pub(crate) fn offer(&self, namespace: Option<&str>, topic: &str, message: &Message) {
        let outgoing = Outgoing {
            namespace: namespace.map(str::to_owned),
            topic: topic.to_owned(),
            message: message.clone(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(outgoing) {
            self.counters.dropped(1, &"the relay queue is full");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const ID: &str = "0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d";

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let counters = Arc::new(Counters::default());
        let (relay, mut rx) = Relay::new(2, counters.clone());
        let text = Message::Text("x".into());
        for _ in 0..5 {
            relay.offer(Some("/_ws"), "chat", &text);
        }
        let stats = counters.snapshot();
        assert_eq!((stats.dropped, stats.relayed), (3, 0));
        let first = rx.try_recv().unwrap();
        assert_eq!(
            first.envelope(ID),
            encode_envelope(ID, "/_ws", "chat", b"x", false)
        );
        relay.offer(None, "all", &Message::Binary(Bytes::from_static(&[1, 2])));
        rx.try_recv().unwrap();
        let everywhere = rx.try_recv().unwrap();
        assert_eq!(
            everywhere.envelope(ID),
            encode_envelope(ID, "", "all", &[1, 2], true)
        );
        // A stopped backplane: publishes stay local, nothing is counted.
        drop(rx);
        relay.offer(None, "all", &text);
        assert_eq!(counters.snapshot().dropped, 3);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let limit = RateLimit::default();
        assert_eq!(limit.allow(2), Some(2));
        assert_eq!(limit.allow(1), None);
        assert_eq!(limit.allow(4), None);
        limit.state.lock().unwrap().0 = Some(Instant::now() - WARN_EVERY);
        assert_eq!(limit.allow(1), Some(6));
    }
}
