//! The host side of one WebSocket connection.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::queue::{self, Receiver, Sender};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::drain::Drain;
use super::hub::Hub;
use crate::request_info::{AbiRequest, RequestInfo};

/// A shared handle to a peer.
pub type PeerRef = Arc<Peer>;

/// The longest close reason a close frame can carry (125 bytes minus the 2-byte code).
const MAX_CLOSE_REASON: usize = 123;

const OPEN: u8 = 0;
/// A close frame was sent or received: nothing more goes out.
const CLOSING: u8 = 1;
/// The connection is gone and the peer has left the hub.
const CLOSED: u8 = 2;

/// A burst may queue this many times [`Limits::ws_send_queue`] while the client keeps
/// reading; past it the peer is closed whatever its pace.
///
/// [`Limits::ws_send_queue`]: crate::Limits::ws_send_queue
pub(crate) const BURST_FACTOR: usize = 4;

/// How a peer's outbound queue is bounded (see [`Limits::ws_send_queue`] and
/// [`Limits::ws_send_timeout`]).
///
/// [`Limits::ws_send_queue`]: crate::Limits::ws_send_queue
/// [`Limits::ws_send_timeout`]: crate::Limits::ws_send_timeout
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendLimit {
    pub(crate) bytes: usize,
    pub(crate) timeout: Duration,
}

impl From<usize> for SendLimit {
    fn from(bytes: usize) -> SendLimit {
        SendLimit {
            bytes,
            timeout: crate::Limits::default().ws_send_timeout,
        }
    }
}

/// What the writer task sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Message),
    /// Sends a close frame and stops writing.
    Close {
        code: u16,
        reason: String,
    },
}

/// One WebSocket connection, as route code sees it.
///
/// `Display` prints the id, as crossws does for `${peer}`.
pub struct Peer {
    id: String,
    /// Orders peers in the hub (connection order).
    key: u64,
    remote_addr: String,
    /// The subprotocol the `101` named, set once before the peer is shared.
    protocol: OnceLock<String>,
    namespace: String,
    request: RequestInfo,
    hub: Weak<Hub>,
    outbound: Sender<Outbound>,
    /// Bytes of data frames waiting in `outbound` (see [`Limits::ws_send_queue`]).
    ///
    /// [`Limits::ws_send_queue`]: crate::Limits::ws_send_queue
    queued: AtomicUsize,
    queue_limit: SendLimit,
    /// When the peer was created: the origin of `progress_ms`.
    born: Instant,
    /// When the outbound queue last moved (milliseconds after `born`): the writer handed a
    /// frame to the socket, or the queue went from empty to not empty.
    progress_ms: AtomicU64,
    /// Set when the queue overflowed: the writer drops what is queued and sends `1008`.
    overflowed: AtomicBool,
    /// The writer, woken when `overflowed` is set.
    overflow_waker: AtomicWaker,
    state: AtomicU8,
    /// The connection task, woken when the server starts the closing handshake (it then waits
    /// a bounded time for the client's reply). A waker, not a `CancellationToken`: the read
    /// loop waits on it for every frame, and this costs no lock and no allocation.
    closing: AtomicWaker,
    /// The close frame the server sent, if it started the closing handshake.
    sent_close: OnceLock<(u16, String)>,
    /// Set once the peer was refused a subscription (warned about once).
    topic_limit_hit: AtomicBool,
    /// Context entries (key, JSON text) in insertion order; contexts are small.
    context: Mutex<Vec<(String, String)>>,
    /// The upgrade request as the ABI sees it, built when a route library first asks
    /// (see [`Peer::abi_request`]).
    abi_request: OnceLock<AbiRequest>,
    /// Who waits for `queued` to reach zero ([`Peer::wait_for_drain`]).
    drain: Drain,
}

impl Peer {
    /// Creates a peer and the receiving end of its outbound queue.
    pub(crate) fn new(
        hub: &Arc<Hub>,
        remote_addr: String,
        namespace: String,
        request: RequestInfo,
        context: Vec<(String, String)>,
        queue_limit: impl Into<SendLimit>,
    ) -> (PeerRef, Receiver<Outbound>) {
        let (outbound, rx) = queue::queue();
        let peer = Peer {
            id: uuid::Uuid::new_v4().to_string(),
            key: hub.next_key(),
            remote_addr,
            protocol: OnceLock::new(),
            namespace,
            request,
            hub: Arc::downgrade(hub),
            outbound,
            queued: AtomicUsize::new(0),
            queue_limit: queue_limit.into(),
            born: Instant::now(),
            progress_ms: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            overflow_waker: AtomicWaker::new(),
            state: AtomicU8::new(OPEN),
            closing: AtomicWaker::new(),
            sent_close: OnceLock::new(),
            topic_limit_hit: AtomicBool::new(false),
            context: Mutex::new(context),
            abi_request: OnceLock::new(),
            drain: Drain::default(),
        };
        (Arc::new(peer), rx)
    }

    /// The peer's id: a random UUID v4, created at upgrade.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// The client's address, `ip:port`.
    pub fn remote_addr(&self) -> &str {
        &self.remote_addr
    }

    /// The pub/sub namespace: the URL path unless the `upgrade` hook chose another.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The upgrade request, route params included (its body is empty).
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// Queues a message for this peer: a binary frame, or a text frame (invalid UTF-8 is
    /// replaced). Never blocks. Returns false when the peer is closing or closed.
    pub fn send(&self, data: Bytes, binary: bool) -> bool {
        self.is_open() && self.enqueue(frame(data, binary))
    }

    /// Queues a frame already built (shared by every subscriber of a publish).
    ///
    /// The queue holds up to `ws_send_queue` bytes (any one frame fits in an empty queue).
    /// Past that, a frame is still queued while the client keeps reading (the writer handed
    /// something to the socket within `ws_send_timeout`), up to [`BURST_FACTOR`] times the
    /// limit: a burst reaches a client that keeps up. Otherwise the client is not reading: the
    /// peer is closed with `1008` and its queue dropped.
    pub(crate) fn enqueue(&self, message: Message) -> bool {
        if !self.is_open() {
            return false;
        }
        let len = message.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before == 0 {
            // The clock for "no progress" starts when there is something to write.
            self.made_progress();
        }
        let after = before.saturating_add(len);
        let limit = self.queue_limit;
        if before > 0 && after > limit.bytes {
            let stalled = self.since_progress();
            let why = if stalled > limit.timeout {
                Some(format!(
                    "nothing was written to it for {:.1} s",
                    stalled.as_secs_f64()
                ))
            } else if after > limit.bytes.saturating_mul(BURST_FACTOR) {
                Some(format!("more than {BURST_FACTOR} times the limit"))
            } else {
                None
            };
            if let Some(why) = why {
                self.unqueued(len);
                if self.close_with(1008, "send queue full") {
                    crate::telemetry::metrics::ws_slow_consumer();
                    tracing::warn!(
                        target: "nitro::ws",
                        peer = %self.id,
                        "closing a peer that does not read: {before} bytes are waiting for it (limit {}) and {why}",
                        limit.bytes
                    );
                    self.overflowed.store(true, Ordering::Release);
                    self.overflow_waker.wake();
                }
                return false;
            }
        }
        if self.outbound.send_now(Outbound::Frame(message)).is_ok() {
            true
        } else {
            self.unqueued(len);
            false
        }
    }

    /// The writer handed a frame to the socket (or the queue just filled): the client is
    /// keeping up, for now.
    pub(crate) fn made_progress(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        self.progress_ms.fetch_max(now, Ordering::AcqRel);
    }

    /// How long since the outbound queue last moved.
    fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.progress_ms.load(Ordering::Acquire));
        self.born.elapsed().saturating_sub(last)
    }

    /// The writer took a frame of `len` bytes off the queue.
    pub(crate) fn dequeued(&self, len: usize) {
        self.unqueued(len);
    }

    /// Takes `len` bytes off the count, waking [`Peer::wait_for_drain`] at zero. `SeqCst`:
    /// see [`Drain::poll`].
    fn unqueued(&self, len: usize) {
        if self.queued.fetch_sub(len, Ordering::SeqCst) == len {
            self.drain.wake();
        }
    }

    /// Resolves once nothing is waiting in the outbound queue (crossws's `waitForDrain()`):
    /// at once when it is empty, else when the writer has handed the last queued frame to
    /// the socket, or when the connection is gone.
    pub fn wait_for_drain(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.poll_drained(cx.waker()) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    /// One poll of [`Peer::wait_for_drain`]: true when drained (or closed), else `waker` is
    /// woken when it is.
    pub(crate) fn poll_drained(&self, waker: &std::task::Waker) -> bool {
        self.drain.poll(waker, || {
            self.queued.load(Ordering::SeqCst) == 0 || self.state.load(Ordering::SeqCst) == CLOSED
        })
    }

    /// The bytes waiting in the outbound queue.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Bytes of data frames sent to this peer and not yet handed to its socket (crossws's
    /// `peer.websocket.bufferedAmount`). Frames the socket took but the client has not read
    /// yet are not counted: they are in the kernel's buffers.
    pub fn buffered_amount(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The subprotocol the `101` named; empty when none.
    pub fn protocol(&self) -> &str {
        self.protocol.get().map_or("", String::as_str)
    }

    /// Records the negotiated subprotocol (before the peer is shared).
    pub(crate) fn set_protocol(&self, protocol: Option<&str>) {
        if let Some(protocol) = protocol {
            let _ = self.protocol.set(protocol.to_owned());
        }
    }

    /// True once the outbound queue overflowed.
    pub(crate) fn is_overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Finishes once the outbound queue overflowed. One task waits on it (the writer).
    pub(crate) async fn overflow(&self) {
        std::future::poll_fn(|cx| {
            self.overflow_waker.register(cx.waker());
            if self.is_overflowed() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// Sends to every subscriber of `topic` in this peer's namespace, except this peer unless
    /// `self_too`. Works from the `close` hook too (the seed chat announces leavers this way).
    /// The frame is built once and shared by all subscribers. With a backplane, the message is
    /// then relayed to the other instances (where no peer is excluded).
    pub fn publish(&self, topic: &str, data: Bytes, binary: bool, self_too: bool) {
        if let Some(hub) = self.hub.upgrade() {
            let skip = (!self_too).then_some(self.key);
            // Counted before any subscriber can see it (a scrape after a delivery includes it).
            crate::telemetry::metrics::ws_publish();
            let message = frame(data, binary);
            hub.publish_in(Some(&self.namespace), topic, message.clone(), skip);
            hub.relay(Some(&self.namespace), topic, &message);
        }
    }

    /// Subscribes to `topic` (no-op once the peer has left, or when it already has
    /// [`Limits::ws_max_topics`](crate::Limits::ws_max_topics) topics: logged once).
    pub fn subscribe(&self, topic: &str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.subscribe(self, topic);
        }
    }

    /// Records that a subscription was refused; true the first time.
    pub(crate) fn note_topic_limit(&self) -> bool {
        !self.topic_limit_hit.swap(true, Ordering::Relaxed)
    }

    /// Unsubscribes from `topic`.
    pub fn unsubscribe(&self, topic: &str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(self, topic);
        }
    }

    /// The topics this peer is subscribed to, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.hub
            .upgrade()
            .map(|hub| hub.topics(self))
            .unwrap_or_default()
    }

    /// Starts the closing handshake with `code` and `reason`.
    ///
    /// Returns false, and does nothing, when the code is not `1000` or in `3000..=4999` (the
    /// codes an application may send), when the reason is longer than 123 bytes, or when the
    /// peer is already closing.
    pub fn close(&self, code: u16, reason: &str) -> bool {
        let valid_code = code == 1000 || (3000..=4999).contains(&code);
        valid_code && reason.len() <= MAX_CLOSE_REASON && self.close_with(code, reason)
    }

    /// Starts the closing handshake with any code (the server's own 1001, 1011, ...).
    pub(crate) fn close_with(&self, code: u16, reason: &str) -> bool {
        if self
            .state
            .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let reason = truncate(reason, MAX_CLOSE_REASON).to_owned();
        let _ = self.sent_close.set((code, reason.clone()));
        let queued = self
            .outbound
            .send_now(Outbound::Close { code, reason })
            .is_ok();
        self.closing.wake();
        queued
    }

    /// The close frame the server sent, if it started the closing handshake.
    pub(crate) fn sent_close(&self) -> Option<&(u16, String)> {
        self.sent_close.get()
    }

    /// Marks the peer as closing without sending anything (the client closed first).
    pub(crate) fn set_closing(&self) {
        let _ = self
            .state
            .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(crate) fn set_closed(&self) {
        self.state.store(CLOSED, Ordering::SeqCst);
        self.drain.wake();
    }

    /// Finishes once the server has started the closing handshake. One task waits on it at
    /// a time (the peer's connection task).
    pub(crate) async fn server_closing(&self) {
        std::future::poll_fn(|cx| {
            // Registered before the check, so a close after it wakes the task.
            self.closing.register(cx.waker());
            if self.sent_close.get().is_some() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// A context entry (JSON text).
    pub fn context_get(&self, key: &str) -> Option<String> {
        let context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        context
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    }

    /// Sets a context entry (JSON text), or removes it with `None`.
    pub fn context_set(&self, key: &str, json: Option<String>) {
        let mut context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        let at = context.iter().position(|(name, _)| name == key);
        match (at, json) {
            (Some(at), Some(json)) => context[at].1 = json,
            (None, Some(json)) => context.push((key.to_owned(), json)),
            (Some(at), None) => {
                context.remove(at);
            }
            (None, None) => {}
        }
    }

    /// Every context key, in insertion order.
    pub fn context_keys(&self) -> Vec<String> {
        let context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        context.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The open peers of this peer's namespace, this one included while it is open, in
    /// connection order.
    pub fn peers(&self) -> Vec<PeerRef> {
        self.hub
            .upgrade()
            .map(|hub| hub.peers(Some(&self.namespace)))
            .unwrap_or_default()
    }

    /// Whether the connection is open (no close frame sent or received yet).
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// The upgrade request as a route library sees it: built once, kept (and valid) as long
    /// as the peer, since it points into the peer's own request, which never changes.
    pub(crate) fn abi_request(&self) -> &AbiRequest {
        self.abi_request
            .get_or_init(|| AbiRequest::new(&self.request))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("remote_addr", &self.remote_addr)
            .field("namespace", &self.namespace)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

/// A text or binary frame. Text that is not UTF-8 (possible through the ABI) is replaced
/// lossily rather than sent as an invalid frame the client would fail on.
pub(crate) fn frame(data: Bytes, binary: bool) -> Message {
    if binary {
        return Message::Binary(data);
    }
    // Cloning `Bytes` only bumps a reference count.
    match Utf8Bytes::try_from(data.clone()) {
        Ok(text) => Message::Text(text),
        Err(err) => {
            tracing::warn!(target: "nitro::ws", "text message is not valid UTF-8 ({err}): sending it with replacement characters");
            Message::Text(String::from_utf8_lossy(&data).into_owned().into())
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> (PeerRef, Receiver<Outbound>, Arc<Hub>) {
        let hub = Hub::new();
        let (peer, rx) = Peer::new(
            &hub,
            "127.0.0.1:1".into(),
            "/_ws".into(),
            RequestInfo::default(),
            vec![("a".into(), "1".into())],
            1 << 20,
        );
        (peer, rx, hub)
    }

    #[test]
    fn close_validates_code_and_reason() {
        let (peer, mut rx, _hub) = peer();
        assert!(!peer.close(1001, ""));
        assert!(!peer.close(2999, ""));
        assert!(!peer.close(5000, ""));
        assert!(!peer.close(1000, &"x".repeat(124)));
        assert!(peer.is_open());
        assert!(rx.try_recv().is_none());
        assert!(peer.close(4000, &"x".repeat(123)));
        assert!(!peer.is_open());
        assert!(matches!(
            rx.try_recv(),
            Some(Outbound::Close { code: 4000, .. })
        ));
        assert!(!peer.close(1000, ""), "second close does nothing");
        assert!(!peer.send(Bytes::from_static(b"late"), false));
    }

    fn limited(bytes: usize, timeout: Duration) -> (PeerRef, Receiver<Outbound>, Arc<Hub>) {
        let hub = Hub::new();
        let (peer, rx) = Peer::new(
            &hub,
            "127.0.0.1:1".into(),
            "/_ws".into(),
            RequestInfo::default(),
            Vec::new(),
            SendLimit { bytes, timeout },
        );
        (peer, rx, hub)
    }

    fn assert_closed_1008(peer: &Peer) {
        assert!(peer.is_overflowed());
        assert!(!peer.is_open());
        assert_eq!(
            peer.sent_close(),
            Some(&(1008, "send queue full".to_owned()))
        );
    }

    #[test]
    fn a_burst_to_a_reader_is_queued_up_to_four_times_the_limit() {
        let (peer, mut rx, _hub) = limited(10, Duration::from_secs(3600));
        // An empty queue takes any one frame.
        assert!(peer.send(Bytes::from(vec![b'x'; 64]), true));
        assert_eq!(peer.queued_bytes(), 64);
        assert!(matches!(rx.try_recv(), Some(Outbound::Frame(_))));
        peer.dequeued(64);
        // Past the limit, but the queue moved just now: a burst, kept up to 4 × 10 bytes.
        for _ in 0..8 {
            assert!(peer.send(Bytes::from_static(b"12345"), false));
        }
        assert_eq!(peer.queued_bytes(), 40);
        assert!(!peer.is_overflowed());
        assert!(
            !peer.send(Bytes::from_static(b"1"), false),
            "over 4 × the limit"
        );
        assert_closed_1008(&peer);
        assert_eq!(peer.queued_bytes(), 40);
    }

    #[test]
    fn a_full_queue_that_does_not_move_closes_with_1008() {
        let (peer, _rx, _hub) = limited(10, Duration::from_millis(50));
        assert!(peer.send(Bytes::from_static(b"12345"), false));
        assert!(peer.send(Bytes::from_static(b"12345"), false));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !peer.send(Bytes::from_static(b"1"), false),
            "stalled and full"
        );
        assert_closed_1008(&peer);

        // Written to within the timeout: still a reader.
        let (peer, _rx, _hub) = limited(10, Duration::from_millis(200));
        assert!(peer.send(Bytes::from_static(b"12345"), false));
        assert!(peer.send(Bytes::from_static(b"12345"), false));
        std::thread::sleep(Duration::from_millis(150));
        peer.made_progress();
        std::thread::sleep(Duration::from_millis(150));
        assert!(peer.send(Bytes::from_static(b"1"), false));
    }

    #[test]
    fn context_keeps_insertion_order() {
        let (peer, _rx, _hub) = peer();
        peer.context_set("b", Some("2".into()));
        peer.context_set("a", Some("3".into()));
        assert_eq!(peer.context_keys(), ["a", "b"]);
        assert_eq!(peer.context_get("a").as_deref(), Some("3"));
        peer.context_set("a", None);
        assert_eq!(peer.context_keys(), ["b"]);
        assert_eq!(peer.context_get("a"), None);
    }

    #[test]
    fn text_frames_are_lossy_for_invalid_utf8() {
        assert_eq!(
            frame(Bytes::from_static(b"ok"), false),
            Message::Text("ok".into())
        );
        assert_eq!(
            frame(Bytes::from_static(b"a\xffb"), false),
            Message::Text("a\u{fffd}b".into())
        );
        assert_eq!(
            frame(Bytes::from_static(b"\xff"), true),
            Message::Binary(Bytes::from_static(b"\xff"))
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
