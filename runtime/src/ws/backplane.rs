//! Pub/sub across instances: every publish is relayed through a backplane (Redis) so that the
//! subscribers of other instances get it too. crossws's sync model, on the host side only.
//!
//! - A publish ([`Peer::publish`](super::Peer::publish), [`Hub::publish`]) is delivered to the
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

// Without the `redis` feature nothing outside the tests builds a relay.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[cfg(feature = "redis")]
mod driver;

#[cfg(feature = "redis")]
pub use self::driver::{Backplane, DEFAULT_STATS_INTERVAL, PubSubConfig, PubSubError};

#[allow(unused_imports)] // for the docs above
use super::Hub;

/// How many publishes may wait for Redis before new ones are dropped, by default.
pub const DEFAULT_QUEUE: usize = 10_000;

/// Warnings about dropped or malformed messages: at most one per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The envelope (crossws `src/sync/encoding.ts`)

/// A message as it travels between instances: what crossws calls a `SyncMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    /// The publisher's namespace; `""` is every namespace (a server-wide publish).
    pub namespace: String,
    pub topic: String,
    /// The payload: text as UTF-8, or bytes when `binary`.
    pub data: Vec<u8>,
    pub binary: bool,
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    id: &'a str,
    msg: MsgOut<'a>,
}

// Field order is the wire's key order: crossws writes `namespace, topic, binary, data`.
#[derive(Serialize)]
struct MsgOut<'a> {
    namespace: &'a str,
    topic: &'a str,
    binary: bool,
    data: &'a str,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    id: String,
    msg: MsgIn,
}

#[derive(Deserialize)]
struct MsgIn {
    namespace: String,
    topic: String,
    #[serde(default)]
    binary: Option<bool>,
    data: String,
}

/// Standard base64 with padding on the way out (as `btoa`); padding optional on the way in
/// (as `atob`).
const BASE64_OUT: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const BASE64_IN: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The JSON text crossws's `encodeEnvelope(id, msg)` writes, byte for byte:
/// `{"id":…,"msg":{"namespace":…,"topic":…,"binary":…,"data":…}}`, compact, with binary data
/// in standard base64. Text `data` must be UTF-8 (a text frame always is); invalid sequences
/// are replaced.
pub fn encode_envelope(
    id: &str,
    namespace: &str,
    topic: &str,
    data: &[u8],
    binary: bool,
) -> String {
    let encoded;
    let data = if binary {
        encoded = BASE64_OUT.encode(data);
        encoded.as_str()
    } else {
        encoded = String::from_utf8_lossy(data).into_owned();
        encoded.as_str()
    };
    let envelope = EnvelopeOut {
        id,
        msg: MsgOut {
            namespace,
            topic,
            binary,
            data,
        },
    };
    // serde_json escapes strings as `JSON.stringify` does (`"`, `\`, control characters with
    // the same short forms and lower-case `\u00xx`; everything else as is).
    serde_json::to_string(&envelope).expect("an envelope is always serialisable")
}

/// Reads an envelope as crossws's `decodeEnvelope` does: `None` for anything that is not JSON
/// with a string `id`, string `msg.namespace`, `msg.topic` and `msg.data` (a foreign writer on
/// the channel, or garbage). `binary` missing means text; binary data must be base64.
pub fn decode_envelope(raw: &[u8]) -> Option<(String, SyncMessage)> {
    let envelope: EnvelopeIn = serde_json::from_slice(raw).ok()?;
    let binary = envelope.msg.binary.unwrap_or(false);
    let data = if binary {
        BASE64_IN.decode(envelope.msg.data.as_bytes()).ok()?
    } else {
        envelope.msg.data.into_bytes()
    };
    Some((
        envelope.id,
        SyncMessage {
            namespace: envelope.msg.namespace,
            topic: envelope.msg.topic,
            data,
            binary,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Counters

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

    /// Each line is what crossws 0.4.17's `encodeEnvelope(ID, msg)` (`crossws/sync`, npm)
    /// printed for the message beside it, under Node 20.
    #[test]
    fn envelopes_match_crossws_byte_for_byte() {
        let cases: [(&str, &str, &[u8], bool, &str); 7] = [
            (
                "/_ws",
                "chat",
                b"hello",
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/_ws","topic":"chat","binary":false,"data":"hello"}}"#,
            ),
            (
                "",
                "news",
                r#"{"user":"server","message":"欢迎 \"x\"!"}"#.as_bytes(),
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"","topic":"news","binary":false,"data":"{\"user\":\"server\",\"message\":\"欢迎 \\\"x\\\"!\"}"}}"#,
            ),
            (
                "/room/1",
                "t",
                "tab\tnl\ncr\rbs\\ctl\u{1}\u{1f} del\u{7f} ls\u{2028} </script> é😀".as_bytes(),
                false,
                "{\"id\":\"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d\",\"msg\":{\"namespace\":\"/room/1\",\"topic\":\"t\",\"binary\":false,\"data\":\"tab\\tnl\\ncr\\rbs\\\\ctl\\u0001\\u001f del\u{7f} ls\u{2028} </script> é😀\"}}",
            ),
            (
                "/b",
                "bin",
                &[0, 1, 2, 250, 255],
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"bin","binary":true,"data":"AAEC+v8="}}"#,
            ),
            (
                "/b",
                "bin2",
                b"hi",
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"bin2","binary":true,"data":"aGk="}}"#,
            ),
            (
                "/b",
                "empty",
                b"",
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"empty","binary":true,"data":""}}"#,
            ),
            (
                "/b",
                "",
                b"",
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"","binary":false,"data":""}}"#,
            ),
        ];
        for (namespace, topic, data, binary, golden) in cases {
            let encoded = encode_envelope(ID, namespace, topic, data, binary);
            assert_eq!(encoded, golden);
            let (id, message) = decode_envelope(golden.as_bytes()).unwrap();
            assert_eq!(id, ID);
            assert_eq!(
                message,
                SyncMessage {
                    namespace: namespace.into(),
                    topic: topic.into(),
                    data: data.to_vec(),
                    binary,
                }
            );
        }
    }

    /// crossws's `decodeEnvelope` cases (`test/sync.test.ts`), plus base64 without padding
    /// (`atob` takes it).
    #[test]
    fn decoding_rejects_what_crossws_rejects() {
        for bad in [
            "not json",
            "123",
            "null",
            "{}",
            r#"{"id":"a","msg":{}}"#,
            r#"{"id":"a","msg":{"topic":"t"}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t","data":{}}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t"}}"#,
            r#"{"id":1,"msg":{"namespace":"","topic":"t","data":"x"}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t","binary":true,"data":"not base64!"}}"#,
        ] {
            assert_eq!(decode_envelope(bad.as_bytes()), None, "{bad}");
        }
        let (id, message) =
            decode_envelope(br#"{"id":"a","msg":{"namespace":"","topic":"t","data":"x"}}"#)
                .unwrap();
        assert_eq!(id, "a");
        assert_eq!(
            (message.data.as_slice(), message.binary),
            (&b"x"[..], false)
        );
        let (_, message) = decode_envelope(
            br#"{"id":"a","msg":{"namespace":"","topic":"t","binary":true,"data":"aGk"}}"#,
        )
        .unwrap();
        assert_eq!(
            (message.data.as_slice(), message.binary),
            (&b"hi"[..], true)
        );
    }

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
    fn hub_publishes_are_offered_to_the_relay() {
        let hub = Hub::new();
        let counters = Arc::new(Counters::default());
        let (relay, mut rx) = Relay::new(10, counters.clone());
        assert!(hub.set_relay(relay));
        let (again, _rx) = Relay::new(10, counters);
        assert!(!hub.set_relay(again), "one backplane per hub");
        hub.publish(Some("/_ws"), "chat", Bytes::from_static(b"hi"), false);
        hub.publish(None, "news", Bytes::from_static(b"\x00"), true);
        let first = rx.try_recv().unwrap();
        assert_eq!(
            (first.namespace.as_deref(), first.topic.as_str()),
            (Some("/_ws"), "chat")
        );
        let second = rx.try_recv().unwrap();
        assert_eq!(
            second.envelope("i"),
            r#"{"id":"i","msg":{"namespace":"","topic":"news","binary":true,"data":"AA=="}}"#
        );
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
