//! The per-server registry of peers and topic subscriptions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use nitro_router::{Match, RouteTable};
use tokio_tungstenite::tungstenite::Message;

use super::backplane::Relay;
use super::peer::{Peer, PeerRef, frame};

/// Peers and their topic subscriptions, for one server.
///
/// Create one with [`Hub::new`] and hand it to [`Server::bind`](crate::Server::bind); HTTP
/// routes reach WebSocket clients through [`Hub::publish`]. Every method is non-blocking
/// (short critical sections under a std lock) and callable from any thread.
pub struct Hub {
    state: RwLock<State>,
    next_key: AtomicU64,
    /// Where publishes go for other instances, when a backplane is attached.
    relay: OnceLock<Relay>,
    /// The most topics one peer may subscribe to ([`Limits::ws_max_topics`]).
    ///
    /// [`Limits::ws_max_topics`]: crate::Limits::ws_max_topics
    max_topics: AtomicUsize,
    /// `[runtime_config]`, served to every route through the `HostApi` (issue #12).
    runtime_config: crate::runtime_config::RuntimeConfig,
    /// The storage mounts, reached by every route through the `HostApi` (issue #12).
    storage: crate::storage::Storage,
    /// `[route_rules]`, applied around every request (issue #12).
    route_rules: crate::route_rules::RouteRulesState,
}

#[derive(Default)]
struct State {
    namespaces: HashMap<String, Namespace>,
    peer_count: usize,
}

#[derive(Default)]
struct Namespace {
    /// Open peers by key (connection order).
    peers: BTreeMap<u64, PeerRef>,
    /// Topic → subscribers.
    topics: HashMap<String, BTreeMap<u64, PeerRef>>,
    /// Peer → its topics.
    subscriptions: HashMap<u64, BTreeSet<String>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            state: RwLock::new(State::default()),
            next_key: AtomicU64::new(0),
            relay: OnceLock::new(),
            max_topics: AtomicUsize::new(crate::Limits::default().ws_max_topics),
            runtime_config: Default::default(),
            storage: Default::default(),
            route_rules: Default::default(),
        })
    }

    /// The app's runtime config, which every route loaded with this hub reads.
    pub fn runtime_config(&self) -> &crate::runtime_config::RuntimeConfig {
        &self.runtime_config
    }

    /// The app's storage mounts, which every route loaded with this hub reaches.
    pub fn storage(&self) -> &crate::storage::Storage {
        &self.storage
    }

    /// The app's route rules.
    pub fn route_rules(&self) -> &crate::route_rules::RouteRulesState {
        &self.route_rules
    }

    /// Sends to every subscriber of `topic`, in `namespace` or in every namespace when it is
    /// `None` (crossws's adapter-level publish: nobody is excluded). The frame is built once
    /// and shared. Returns the number of local peers it was queued for. With a backplane, the
    /// message is then relayed to the other instances.
    pub fn publish(
        &self,
        namespace: Option<&str>,
        topic: &str,
        data: Bytes,
        binary: bool,
    ) -> usize {
        // Counted before any subscriber can see it (a scrape after a delivery includes it).
        crate::telemetry::metrics::ws_publish();
        let message = frame(data, binary);
        let sent = self.publish_in(namespace, topic, message.clone(), None);
        self.relay(namespace, topic, &message);
        sent
    }

    /// The number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.read().peer_count
    }

    /// The open peers of `namespace` (of every namespace when `None`), in connection order
    /// within a namespace.
    pub fn peers(&self, namespace: Option<&str>) -> Vec<PeerRef> {
        let state = self.read();
        let open = |ns: &Namespace| {
            ns.peers
                .values()
                .filter(|peer| peer.is_open())
                .cloned()
                .collect::<Vec<_>>()
        };
        match namespace {
            Some(name) => state.namespaces.get(name).map(open).unwrap_or_default(),
            None => state.namespaces.values().flat_map(open).collect(),
        }
    }

    /// Attaches a backplane's relay; false if the hub has one already.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_relay(&self, relay: Relay) -> bool {
        self.relay.set(relay).is_ok()
    }

    /// Offers a local publish to the backplane, if any (never blocks).
    pub(crate) fn relay(&self, namespace: Option<&str>, topic: &str, message: &Message) {
        if let Some(relay) = self.relay.get() {
            relay.offer(namespace, topic, message);
        }
    }

    /// Closes the open peers of the given route files with `code` (`1012`, service restart,
    /// when their code was reloaded), so clients reconnect to the new code. A peer's route is
    /// found again by matching its upgrade request's path in `table`. Returns how many were
    /// closed.
    pub fn close_route_peers(
        &self,
        table: &RouteTable,
        files: &[String],
        code: u16,
        reason: &str,
    ) -> usize {
        let mut closed = 0;
        for peer in self.peers(None) {
            if let Match::Found { route, .. } = table.find("GET", &peer.request().path)
                && files.contains(&route.file)
                && peer.close_with(code, reason)
            {
                closed += 1;
            }
        }
        closed
    }

    /// Sets the most topics one peer may subscribe to (the server applies its limits).
    pub(crate) fn set_max_topics(&self, max: usize) {
        self.max_topics.store(max, Ordering::Relaxed);
    }

    pub(crate) fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn publish_in(
        &self,
        namespace: Option<&str>,
        topic: &str,
        message: Message,
        skip: Option<u64>,
    ) -> usize {
        let state = self.read();
        let mut sent = 0;
        let mut deliver = |ns: &Namespace| {
            for (key, peer) in ns.topics.get(topic).into_iter().flatten() {
                // `Message::clone` shares the payload (`Bytes`): serialised once.
                if Some(*key) != skip && peer.enqueue(message.clone()) {
                    sent += 1;
                }
            }
        };
        match namespace {
            Some(name) => state
                .namespaces
                .get(name)
                .into_iter()
                .for_each(&mut deliver),
            None => state.namespaces.values().for_each(&mut deliver),
        }
        sent
    }

    pub(crate) fn register(&self, peer: &PeerRef) {
        let mut state = self.write();
        let ns = state
            .namespaces
            .entry(peer.namespace().to_owned())
            .or_default();
        if ns.peers.insert(peer.key(), peer.clone()).is_none() {
            state.peer_count += 1;
        }
    }

    /// Removes the peer and all its subscriptions.
    pub(crate) fn unregister(&self, peer: &Peer) {
        let mut state = self.write();
        let Some(ns) = state.namespaces.get_mut(peer.namespace()) else {
            return;
        };
        let removed = ns.peers.remove(&peer.key()).is_some();
        for topic in ns.subscriptions.remove(&peer.key()).unwrap_or_default() {
            if let Some(subscribers) = ns.topics.get_mut(&topic) {
                subscribers.remove(&peer.key());
                if subscribers.is_empty() {
                    ns.topics.remove(&topic);
                }
            }
        }
        if ns.peers.is_empty() {
            state.namespaces.remove(peer.namespace());
        }
        if removed {
            state.peer_count -= 1;
        }
    }

    pub(crate) fn subscribe(&self, peer: &Peer, topic: &str) {
        let mut state = self.write();
        let Some(ns) = state.namespaces.get_mut(peer.namespace()) else {
            return;
        };
        let Some(this) = ns.peers.get(&peer.key()).cloned() else {
            return; // not registered (yet, or any more)
        };
        let max = self.max_topics.load(Ordering::Relaxed);
        let topics = ns.subscriptions.get(&peer.key());
        if topics.is_some_and(|topics| topics.len() >= max && !topics.contains(topic)) {
            drop(state);
            if peer.note_topic_limit() {
                tracing::warn!(
                    target: "nitro::ws",
                    peer = %peer,
                    "peer `{peer}` may subscribe to at most {max} topics (`[limits] ws_max_topics`): not subscribing it to `{}` or any further topic",
                    topic.escape_debug()
                );
            }
            return;
        }
        ns.topics
            .entry(topic.to_owned())
            .or_default()
            .insert(peer.key(), this);
        ns.subscriptions
            .entry(peer.key())
            .or_default()
            .insert(topic.to_owned());
    }

    pub(crate) fn unsubscribe(&self, peer: &Peer, topic: &str) {
        let mut state = self.write();
        let Some(ns) = state.namespaces.get_mut(peer.namespace()) else {
            return;
        };
        if let Some(topics) = ns.subscriptions.get_mut(&peer.key()) {
            topics.remove(topic);
        }
        if let Some(subscribers) = ns.topics.get_mut(topic) {
            subscribers.remove(&peer.key());
            if subscribers.is_empty() {
                ns.topics.remove(topic);
            }
        }
    }

    pub(crate) fn topics(&self, peer: &Peer) -> Vec<String> {
        let state = self.read();
        state
            .namespaces
            .get(peer.namespace())
            .and_then(|ns| ns.subscriptions.get(&peer.key()))
            .map(|topics| topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    // A panic while holding the lock cannot leave the maps inconsistent in a way that matters
    // more than losing every WebSocket, so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("Hub")
            .field("peers", &state.peer_count)
            .field("namespaces", &state.namespaces.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_info::RequestInfo;
    use crate::ws::peer::Outbound;
    use crate::ws::queue::Receiver;

    fn join(hub: &Arc<Hub>, namespace: &str) -> (PeerRef, Receiver<Outbound>) {
        let (peer, rx) = Peer::new(
            hub,
            "127.0.0.1:1".into(),
            namespace.into(),
            RequestInfo::default(),
            Vec::new(),
            1 << 20,
        );
        hub.register(&peer);
        (peer, rx)
    }

    fn texts(rx: &mut Receiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(item) = rx.try_recv() {
            match item {
                Outbound::Frame(Message::Text(text)) => out.push(text.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn publish_excludes_the_sender_and_stays_in_the_namespace() {
        let hub = Hub::new();
        let (a, mut ra) = join(&hub, "/a");
        let (b, mut rb) = join(&hub, "/a");
        let (c, mut rc) = join(&hub, "/c");
        for peer in [&a, &b, &c] {
            peer.subscribe("chat");
        }
        a.publish("chat", Bytes::from_static(b"hi"), false, false);
        assert_eq!(texts(&mut ra), Vec::<String>::new());
        assert_eq!(texts(&mut rb), ["hi"]);
        assert_eq!(texts(&mut rc), Vec::<String>::new());
        a.publish("chat", Bytes::from_static(b"me too"), false, true);
        assert_eq!(texts(&mut ra), ["me too"]);

        assert_eq!(
            hub.publish(None, "chat", Bytes::from_static(b"all"), false),
            3
        );
        assert_eq!(texts(&mut rc), ["all"]);
        assert_eq!(
            hub.publish(Some("/c"), "chat", Bytes::from_static(b"c"), false),
            1
        );
        assert_eq!(hub.peer_count(), 3);
        assert_eq!(a.peers().len(), 2);
        assert_eq!(a.topics(), ["chat"]);
    }

    #[test]
    fn unregister_drops_subscriptions() {
        let hub = Hub::new();
        let (a, _ra) = join(&hub, "/a");
        a.subscribe("x");
        a.subscribe("y");
        a.unsubscribe("x");
        assert_eq!(a.topics(), ["y"]);
        a.set_closed();
        hub.unregister(&a);
        assert_eq!(hub.peer_count(), 0);
        assert!(a.topics().is_empty());
        a.subscribe("z");
        assert!(a.topics().is_empty(), "a peer that left cannot subscribe");
        assert_eq!(hub.publish(None, "y", Bytes::new(), true), 0);
    }

    #[test]
    fn a_peer_has_at_most_max_topics() {
        let hub = Hub::new();
        hub.set_max_topics(2);
        let (a, _ra) = join(&hub, "/a");
        for topic in ["x", "y", "z", "x"] {
            a.subscribe(topic);
        }
        assert_eq!(a.topics(), ["x", "y"]);
        assert_eq!(hub.publish(None, "z", Bytes::new(), true), 0);
        a.unsubscribe("x");
        a.subscribe("z");
        assert_eq!(a.topics(), ["y", "z"]);
    }

    #[test]
    fn close_route_peers_closes_only_the_peers_of_those_routes() {
        let table =
            RouteTable::from_files(["_ws.rs", "rooms/[room]/_ws.rs"], &Default::default()).unwrap();
        let hub = Hub::new();
        let at = |path: &str| {
            let request = RequestInfo {
                path: path.to_owned(),
                ..RequestInfo::default()
            };
            let (peer, rx) = Peer::new(
                &hub,
                "127.0.0.1:1".into(),
                path.into(),
                request,
                Vec::new(),
                1 << 20,
            );
            hub.register(&peer);
            (peer, rx)
        };
        let (root, _r1) = at("/_ws");
        let (lobby, mut rx) = at("/rooms/lobby/_ws");
        let (attic, _r3) = at("/rooms/attic/_ws");
        let files = ["routes/rooms/[room]/_ws.rs".to_owned()];

        assert_eq!(hub.close_route_peers(&table, &files, 1012, "reloaded"), 2);
        assert!(root.is_open());
        assert!(!lobby.is_open() && !attic.is_open());
        assert!(matches!(
            rx.try_recv(),
            Some(Outbound::Close { code: 1012, ref reason }) if reason == "reloaded"
        ));
        assert_eq!(
            hub.close_route_peers(&table, &files, 1012, "again"),
            0,
            "a closing peer is not closed twice"
        );
    }

    #[test]
    fn hub_publishes_are_offered_to_the_relay() {
        use crate::ws::backplane::Counters;

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
}
