//! Test doubles for WebSocket hooks: peers that record what a hook did, for `#[test]`
//! functions in route files (run by `nitro test`).
//!
//! A [`TestPeer`] is a real [`Peer`] (it derefs to one) whose sends, subscriptions,
//! publishes, context and close are kept in the test process instead of going to a socket.
//! Peers made by one [`TestHub`] share its pub/sub as a server's peers do: a publish reaches the
//! other subscribers of the topic in the same namespace, not the publisher.
//!
//! ```
//! use nitro::testing::TestHub;
//! use nitro::ws::{Message, Peer};
//!
//! // routes/_ws.rs
//! pub fn open(peer: &Peer) {
//!     peer.send("welcome");
//!     peer.subscribe("chat");
//! }
//!
//! pub fn message(peer: &Peer, message: &Message) {
//!     peer.publish("chat", message.text());
//! }
//!
//! // In a `#[test] fn` of the route file:
//! let hub = TestHub::new();
//! let (ada, bob) = (hub.peer(), hub.peer());
//! open(&ada);
//! open(&bob);
//! message(&ada, &Message::from("hi"));
//! assert_eq!(ada.sent_text(), ["welcome"]); // the publisher is left out
//! assert_eq!(bob.sent_text(), ["welcome", "hi"]);
//! assert_eq!(ada.subscriptions(), ["chat"]);
//! assert_eq!(hub.published_text("chat"), ["hi"]);
//! ```
//!
//! An `upgrade` hook is tested through [`TestHub::connect`], which runs it on a request made
//! with [`Request::builder`] and gives the peer it accepts (its context, namespace and
//! subprotocol set as the server would) or the response it refuses with. An `async fn` hook is
//! run with [`block_on`] (or under `#[tokio::test]` with tokio in `[dependencies]`):
//!
//! ```
//! use nitro::testing::{block_on, TestHub};
//! use nitro::ws::{Message, Peer, Upgrade};
//! use nitro::{Error, Request};
//!
//! pub fn upgrade(req: &Request) -> Result<Upgrade, Error> {
//!     let user = req.query("user").ok_or_else(|| Error::unauthorized("pass ?user=…"))?;
//!     Ok(Upgrade::accept().context("user", user))
//! }
//!
//! pub async fn message(peer: Peer, message: Message) {
//!     let user: String = peer.context("user").unwrap_or_default();
//!     peer.send(format!("{user}: {message}"));
//! }
//!
//! let hub = TestHub::new();
//! let refused = hub.connect(Request::builder("GET", "/_ws").build(), upgrade).unwrap_err();
//! assert_eq!(refused.status(), 401);
//!
//! let ada = hub.connect(Request::builder("GET", "/_ws?user=ada").build(), upgrade).unwrap();
//! block_on(message(ada.peer(), Message::from("hello")));
//! assert_eq!(ada.sent_text(), ["ada: hello"]);
//! ```
//!
//! The server-wide functions of [`ws`](crate::ws) (`publish`, `peers`, `close_all`) talk to a
//! server, so in a test they do nothing; use the peer's own methods in code under test.

use crate::ffi::{LocalPeer, PeerBackend, WeakLocalPeer};
use crate::ws::{Close, IntoUpgrade, Payload, Peer};
use crate::{Error, IntoResponse, Request, Response};
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

/// The longest close reason a close frame carries, in bytes (as the server checks).
const MAX_CLOSE_REASON: usize = 123;

/// A set of test peers sharing pub/sub, as the peers of one server do.
///
/// Cloning it gives another handle to the same set.
#[derive(Clone, Default)]
pub struct TestHub {
    state: Arc<HubState>,
}

#[derive(Default)]
struct HubState {
    peers: Mutex<Vec<Member>>,
    published: Mutex<Vec<Published>>,
}

/// A peer as the hub knows it: its records, to deliver to, and its handle, to list it.
struct Member {
    state: Weak<PeerState>,
    handle: WeakLocalPeer,
}

/// One publish, as recorded.
#[derive(Debug, Clone)]
struct Published {
    topic: String,
    from: String,
    payload: Payload,
}

impl TestHub {
    /// An empty set of peers.
    pub fn new() -> TestHub {
        TestHub::default()
    }

    /// A new open peer of this hub, as if `GET /_ws` had been upgraded without an `upgrade`
    /// hook (namespace `/_ws`).
    pub fn peer(&self) -> TestPeer {
        self.join(
            Request::builder("GET", "/_ws").build(),
            Vec::new(),
            None,
            "",
        )
    }

    /// Runs `upgrade` (an `upgrade` hook, or anything it returns) on `request` as the server
    /// does, and gives the peer it accepted or the response it refused with. The peer's
    /// context holds what a middleware set on the request ([`RequestBuilder::context`]), the
    /// route's params under `"params"`, then the hook's entries; its namespace is the one the
    /// hook chose, else the request's path. Selecting a subprotocol the request did not offer
    /// fails the handshake, as on a server: a `500`.
    ///
    /// An `async fn upgrade(req: Request)` is run with [`block_on`]:
    /// `hub.connect(req, |req| block_on(upgrade(req.clone())))`.
    ///
    /// [`RequestBuilder::context`]: crate::RequestBuilder::context
    // The refusal is the value a test asserts on; a large `Err` costs nothing here.
    #[allow(clippy::result_large_err)]
    pub fn connect<F, U>(&self, request: Request, upgrade: F) -> Result<TestPeer, Response>
    where
        F: FnOnce(&Request) -> U,
        U: IntoUpgrade,
    {
        let upgrade = upgrade(&request).into_upgrade();
        if let Some(rejection) = upgrade.rejection {
            return Err(rejection);
        }
        let protocol = upgrade.protocol.unwrap_or_default();
        if !protocol.is_empty() && !request.websocket_protocols().any(|p| p == protocol) {
            let offered: Vec<&str> = request.websocket_protocols().collect();
            return Err(Error::internal(format!(
                "the `upgrade` hook selected the subprotocol `{protocol}`, which the client did not offer (`{}`)",
                offered.join(", ")
            ))
            .into_response());
        }
        let mut context: Vec<(String, Vec<u8>)> = request
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let params: serde_json::Map<String, serde_json::Value> = request
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        set_entry(
            &mut context,
            "params",
            serde_json::Value::Object(params).to_string().into_bytes(),
        );
        for (key, json) in upgrade.context {
            set_entry(&mut context, &key, json.into_bytes());
        }
        let mut peer = self.join(request, context, upgrade.namespace, &protocol);
        peer.upgrade_headers = upgrade.headers;
        Ok(peer)
    }

    /// Everything published to `topic` by this hub's peers, in order (whether or not anyone
    /// was subscribed).
    pub fn published(&self, topic: &str) -> Vec<Payload> {
        lock(&self.state.published)
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.payload.clone())
            .collect()
    }

    /// [`published`](Self::published) as text (binary payloads decoded lossily).
    pub fn published_text(&self, topic: &str) -> Vec<String> {
        self.published(topic).iter().map(payload_text).collect()
    }

    fn join(
        &self,
        request: Request,
        context: Vec<(String, Vec<u8>)>,
        namespace: Option<String>,
        protocol: &str,
    ) -> TestPeer {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(PeerState {
            id: format!("00000000-0000-4000-8000-{n:012x}"),
            remote_addr: request.remote_addr.clone(),
            namespace: namespace.unwrap_or_else(|| request.path.clone()),
            protocol: protocol.to_owned(),
            hub: self.state.clone(),
            record: Mutex::new(Record {
                context,
                ..Record::default()
            }),
        });
        let handle = LocalPeer::new(
            Backend {
                state: state.clone(),
            },
            request,
        );
        lock(&self.state.peers).push(Member {
            state: Arc::downgrade(&state),
            handle: handle.downgrade(),
        });
        TestPeer {
            peer: Peer::from_raw(handle.raw()),
            state,
            upgrade_headers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub")
            .field("peers", &lock(&self.state.peers).len())
            .finish()
    }
}

/// A [`Peer`] whose actions are recorded in the test, for unit tests of WebSocket hooks.
///
/// It derefs to the `Peer`, so `open(&peer)` calls a hook taking `&Peer`; [`peer`](Self::peer)
/// gives an owned one for an `async fn` hook. See the [module docs](self).
pub struct TestPeer {
    peer: Peer,
    state: Arc<PeerState>,
    upgrade_headers: Vec<(String, String)>,
}

impl TestPeer {
    /// An open peer in a hub of its own (namespace `/_ws`).
    pub fn new() -> TestPeer {
        TestHub::new().peer()
    }

    /// The hub this peer belongs to.
    pub fn hub(&self) -> TestHub {
        TestHub {
            state: self.state.hub.clone(),
        }
    }

    /// The peer, owned: what an `async fn` hook takes.
    pub fn peer(&self) -> Peer {
        self.peer.clone()
    }

    /// Every message this peer was sent, in order: by its own `send` and by other peers'
    /// publishes to a topic it is subscribed to.
    pub fn sent(&self) -> Vec<Payload> {
        self.state.record().sent.clone()
    }

    /// [`sent`](Self::sent) as text (binary payloads decoded lossily).
    pub fn sent_text(&self) -> Vec<String> {
        self.sent().iter().map(payload_text).collect()
    }

    /// [`sent`](Self::sent) parsed as JSON (a message that is not JSON is a JSON string of its
    /// text).
    pub fn sent_json(&self) -> Vec<serde_json::Value> {
        self.sent_text()
            .into_iter()
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
            .collect()
    }

    /// Takes the messages sent so far, so the next assertion sees only the new ones.
    pub fn take_sent(&self) -> Vec<Payload> {
        std::mem::take(&mut self.state.record().sent)
    }

    /// The topics this peer is subscribed to, in the order subscribed.
    pub fn subscriptions(&self) -> Vec<String> {
        self.state.record().topics.clone()
    }

    /// What this peer published to `topic`, in order.
    pub fn published(&self, topic: &str) -> Vec<Payload> {
        lock(&self.state.hub.published)
            .iter()
            .filter(|p| p.topic == topic && p.from == self.state.id)
            .map(|p| p.payload.clone())
            .collect()
    }

    /// [`published`](Self::published) as text.
    pub fn published_text(&self, topic: &str) -> Vec<String> {
        self.published(topic).iter().map(payload_text).collect()
    }

    /// The code and reason of [`Peer::close`], once it was called with a valid code (1000 or
    /// 3000–4999); the peer then takes no more messages.
    pub fn closed(&self) -> Option<Close> {
        self.state.record().closed.clone()
    }

    /// The headers the `upgrade` hook added to the `101` response (see
    /// [`TestHub::connect`]).
    pub fn upgrade_headers(&self) -> &[(String, String)] {
        &self.upgrade_headers
    }
}

impl Default for TestPeer {
    fn default() -> Self {
        TestPeer::new()
    }
}

impl Deref for TestPeer {
    type Target = Peer;

    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::fmt::Debug for TestPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPeer")
            .field("id", &self.state.id)
            .field("namespace", &self.state.namespace)
            .finish()
    }
}

/// Runs a future to completion on this thread, inside the route's runtime when it has one (the
/// `tokio` feature, which `nitro dev` and `nitro test` turn on for files with an `async fn`):
/// for tests of `async fn` hooks and handlers.
///
/// ```
/// async fn handler(req: nitro::Request) -> String {
///     format!("hello {}", req.query("name").unwrap_or_default())
/// }
/// let req = nitro::Request::builder("GET", "/?name=ada").build();
/// assert_eq!(nitro::testing::block_on(handler(req)), "hello ada");
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let _runtime = crate::rt::enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// What a test peer did, and what was done to it.
struct PeerState {
    id: String,
    remote_addr: String,
    namespace: String,
    protocol: String,
    hub: Arc<HubState>,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    sent: Vec<Payload>,
    topics: Vec<String>,
    context: Vec<(String, Vec<u8>)>,
    closed: Option<Close>,
}

impl PeerState {
    fn record(&self) -> MutexGuard<'_, Record> {
        lock(&self.record)
    }

    fn is_open(&self) -> bool {
        self.record().closed.is_none()
    }
}

/// The vtable's view of a test peer.
struct Backend {
    state: Arc<PeerState>,
}

impl PeerBackend for Backend {
    fn id(&self) -> &str {
        &self.state.id
    }

    fn remote_addr(&self) -> &str {
        &self.state.remote_addr
    }

    fn namespace(&self) -> &str {
        &self.state.namespace
    }

    fn protocol(&self) -> &str {
        &self.state.protocol
    }

    fn send(&self, data: &[u8], binary: bool) -> bool {
        let mut record = self.state.record();
        if record.closed.is_some() {
            return false;
        }
        record.sent.push(payload(data, binary));
        true
    }

    fn publish(&self, topic: &str, data: &[u8], binary: bool, self_too: bool) {
        let payload = payload(data, binary);
        let hub = &self.state.hub;
        lock(&hub.published).push(Published {
            topic: topic.to_owned(),
            from: self.state.id.clone(),
            payload: payload.clone(),
        });
        let members: Vec<Arc<PeerState>> = lock(&hub.peers)
            .iter()
            .filter_map(|m| m.state.upgrade())
            .collect();
        for member in members {
            let is_self = Arc::ptr_eq(&member, &self.state);
            if member.namespace != self.state.namespace || (is_self && !self_too) {
                continue;
            }
            let mut record = member.record();
            if record.closed.is_none() && record.topics.iter().any(|t| t == topic) {
                record.sent.push(payload.clone());
            }
        }
    }

    fn subscribe(&self, topic: &str) {
        let mut record = self.state.record();
        if !record.topics.iter().any(|t| t == topic) {
            record.topics.push(topic.to_owned());
        }
    }

    fn unsubscribe(&self, topic: &str) {
        self.state.record().topics.retain(|t| t != topic);
    }

    fn topics(&self) -> Vec<String> {
        self.state.record().topics.clone()
    }

    fn close(&self, code: u16, reason: &str) -> bool {
        let valid = code == 1000 || (3000..=4999).contains(&code);
        let mut record = self.state.record();
        if !valid || reason.len() > MAX_CLOSE_REASON || record.closed.is_some() {
            return false;
        }
        record.closed = Some(Close {
            code,
            reason: reason.to_owned(),
        });
        true
    }

    fn context_get(&self, key: &str) -> Option<Vec<u8>> {
        let record = self.state.record();
        record
            .context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn context_set(&self, key: &str, json: &[u8]) {
        let mut record = self.state.record();
        if json.is_empty() {
            record.context.retain(|(k, _)| k != key);
        } else {
            set_entry(&mut record.context, key, json.to_vec());
        }
    }

    fn context_keys(&self) -> Vec<String> {
        let record = self.state.record();
        record.context.iter().map(|(k, _)| k.clone()).collect()
    }

    fn peers(&self) -> Vec<LocalPeer> {
        let mut members = lock(&self.state.hub.peers);
        // Forget the peers whose every handle is gone.
        members.retain(|m| m.state.strong_count() > 0);
        members
            .iter()
            .filter_map(|m| Some((m.state.upgrade()?, m.handle.upgrade()?)))
            .filter(|(state, _)| state.namespace == self.state.namespace && state.is_open())
            .map(|(_, handle)| handle)
            .collect()
    }
}

/// Sets `key` in an ordered list of entries, in place if it is there.
fn set_entry(entries: &mut Vec<(String, Vec<u8>)>, key: &str, value: Vec<u8>) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_owned(), value)),
    }
}

fn payload(data: &[u8], binary: bool) -> Payload {
    if binary {
        Payload::Binary(data.to_vec())
    } else {
        Payload::Text(String::from_utf8_lossy(data).into_owned())
    }
}

fn payload_text(payload: &Payload) -> String {
    match payload {
        Payload::Text(text) => text.clone(),
        Payload::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A lock that a panicking test thread cannot make unusable for the others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{Message, Upgrade};

    #[test]
    fn sends_subscriptions_and_context_are_recorded() {
        let peer = TestPeer::new();
        peer.send("hi");
        peer.send(vec![1u8, 2]);
        peer.send(serde_json::json!({"a": 1}));
        assert_eq!(
            peer.sent(),
            [
                Payload::Text("hi".into()),
                Payload::Binary(vec![1, 2]),
                Payload::Text(r#"{"a":1}"#.into())
            ]
        );
        assert_eq!(peer.sent_json()[2]["a"], 1);
        assert_eq!(peer.take_sent().len(), 3);
        assert!(peer.sent().is_empty());

        peer.subscribe("a");
        peer.subscribe("b");
        peer.subscribe("a");
        peer.unsubscribe("b");
        assert_eq!(peer.subscriptions(), ["a"]);
        assert_eq!(peer.topics(), ["a"]);

        peer.set_context("user", "ada");
        assert_eq!(peer.context::<String>("user").as_deref(), Some("ada"));
        peer.remove_context("user");
        assert_eq!(peer.context::<String>("user"), None);
        assert_eq!(peer.namespace(), "/_ws");
        assert_eq!(peer.remote_addr(), "127.0.0.1:0");
        assert_eq!(peer.request().path(), "/_ws");
        assert_eq!(peer.buffered_amount(), 0);
        assert_eq!(peer.id().len(), 36);
        assert_ne!(TestPeer::new().id(), peer.id());
    }

    #[test]
    fn publish_reaches_the_other_subscribers_of_the_namespace() {
        let hub = TestHub::new();
        let (ada, bob, eve) = (hub.peer(), hub.peer(), hub.peer());
        ada.subscribe("chat");
        bob.subscribe("chat");
        let elsewhere = hub
            .connect(
                Request::builder("GET", "/other/_ws").build(),
                |_: &Request| (),
            )
            .unwrap();
        elsewhere.subscribe("chat");

        ada.publish("chat", "hello");
        assert!(ada.sent().is_empty(), "the publisher is left out");
        assert_eq!(bob.sent_text(), ["hello"]);
        assert!(eve.sent().is_empty(), "not subscribed");
        assert!(elsewhere.sent().is_empty(), "another namespace");
        assert_eq!(ada.published_text("chat"), ["hello"]);
        assert!(bob.published("chat").is_empty());
        assert_eq!(hub.published_text("chat"), ["hello"]);
        assert!(hub.published("other").is_empty());

        // A clone kept by a hook publishes as the peer.
        let kept = bob.peer();
        kept.publish("chat", vec![7u8]);
        assert_eq!(ada.sent(), [Payload::Binary(vec![7])]);

        assert_eq!(ada.peers().len(), 3);
        assert_eq!(elsewhere.peers(), [elsewhere.peer()]);
    }

    #[test]
    fn a_closed_peer_takes_nothing_and_leaves_the_list() {
        let hub = TestHub::new();
        let (ada, bob) = (hub.peer(), hub.peer());
        bob.subscribe("t");
        bob.close(999, "bad code");
        assert_eq!(bob.closed(), None);
        bob.close(4000, "bye");
        assert_eq!(
            bob.closed(),
            Some(Close {
                code: 4000,
                reason: "bye".into()
            })
        );
        bob.send("late");
        ada.publish("t", "late");
        assert!(bob.sent().is_empty());
        assert_eq!(ada.peers(), [ada.peer()]);
        drop(bob);
        assert_eq!(ada.peers().len(), 1);
    }

    #[test]
    fn connect_runs_the_upgrade_hook() {
        fn upgrade(req: &Request) -> Result<Upgrade, Error> {
            let token = req
                .query("token")
                .ok_or_else(|| Error::unauthorized("no token"))?;
            let mut upgrade = Upgrade::accept()
                .context("token", token)
                .header("x-hello", "world");
            if req.websocket_protocols().any(|p| p == "chat.v1") {
                upgrade = upgrade.protocol("chat.v1");
            }
            Ok(upgrade)
        }
        let hub = TestHub::new();
        let refused = hub
            .connect(Request::builder("GET", "/rooms/1/_ws").build(), upgrade)
            .unwrap_err();
        assert_eq!(refused.status(), 401);

        let req = Request::builder("GET", "/rooms/1/_ws?token=t")
            .param("room", "1")
            .header("sec-websocket-protocol", "chat.v1")
            .context("user", "ada")
            .build();
        let peer = hub.connect(req, upgrade).unwrap();
        assert_eq!(peer.protocol(), "chat.v1");
        assert_eq!(peer.namespace(), "/rooms/1/_ws");
        assert_eq!(peer.context::<String>("token").as_deref(), Some("t"));
        assert_eq!(peer.context::<String>("user").as_deref(), Some("ada"));
        assert_eq!(
            peer.context::<serde_json::Value>("params"),
            Some(serde_json::json!({"room": "1"}))
        );
        assert_eq!(peer.context_keys(), ["user", "params", "token"]);
        assert_eq!(peer.request().param("room"), Some("1"));
        assert_eq!(
            peer.upgrade_headers(),
            [("x-hello".to_owned(), "world".to_owned())]
        );

        // A subprotocol the client did not offer fails the handshake.
        let greedy = |_: &Request| Upgrade::accept().protocol("chat.v2");
        let res = hub
            .connect(Request::builder("GET", "/_ws").build(), greedy)
            .unwrap_err();
        assert_eq!(res.status(), 500);
        let namespaced = |_: &Request| Upgrade::accept().namespace("room-1");
        let peer = hub
            .connect(Request::builder("GET", "/_ws").build(), namespaced)
            .unwrap();
        assert_eq!(peer.namespace(), "room-1");
    }

    #[test]
    fn an_async_upgrade_hook_runs_with_block_on() {
        async fn upgrade(req: Request) -> Result<Upgrade, Error> {
            std::future::ready(()).await;
            match req.query("user") {
                Some(user) => Ok(Upgrade::accept().context("user", user)),
                None => Err(Error::unauthorized("who are you")),
            }
        }
        let hub = TestHub::new();
        let req = Request::builder("GET", "/_ws?user=ada").build();
        let peer = hub
            .connect(req, |req| block_on(upgrade(req.clone())))
            .unwrap();
        assert_eq!(peer.context::<String>("user").as_deref(), Some("ada"));
        let req = Request::builder("GET", "/_ws").build();
        let refused = hub.connect(req, |req| block_on(upgrade(req.clone())));
        assert_eq!(refused.unwrap_err().status(), 401);
    }

    #[test]
    fn async_hooks_run_with_block_on() {
        async fn message(peer: Peer, message: Message) {
            std::future::ready(()).await;
            peer.send(message);
        }
        let peer = TestPeer::new();
        block_on(message(peer.peer(), Message::from("echo")));
        block_on(message(peer.peer(), Message::from(vec![0u8, 1])));
        assert_eq!(
            peer.sent(),
            [Payload::Text("echo".into()), Payload::Binary(vec![0, 1])]
        );
    }

    #[test]
    fn handles_are_counted_like_the_hosts() {
        let hub = TestHub::new();
        let peer = hub.peer();
        let kept = peer.peer();
        drop(peer);
        // The clone keeps the peer in the hub.
        assert_eq!(kept.peers().len(), 1);
        drop(kept);
        assert!(
            lock(&hub.state.peers)
                .iter()
                .all(|m| m.state.upgrade().is_none())
        );
    }
}
