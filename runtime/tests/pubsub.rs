//! The Redis backplane with a real `redis-server` (Debian's package; `scripts/test.sh` installs
//! it) and servers in this process: relaying between instances, namespaces and topics, Redis
//! restarting, Redis unreachable at start, TLS and passwords.
//!
//! Needs the `redis` feature: `cargo test -p nitro-runtime --features redis --test pubsub`
//! (a workspace build has it on, through the CLI).

#![allow(unreachable_pub, dead_code)]

#[path = "it/common.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use nitro_runtime::module::{CallError, RouteModule, UpgradeDecision};
use nitro_runtime::ws::PeerRef;
use nitro_runtime::ws::backplane::{Backplane, BackplaneStats, ConnectionState, PubSubConfig};
use nitro_runtime::{Hub, Server, ServerConfig};
use redis_server::RedisServer;
use tokio_tungstenite::tungstenite::Message;

use common::{Client, TIMEOUT, app, next, next_text};

/// `routes/_ws.rs` and `routes/other/_ws.rs`: a peer subscribes to the topics of its `?topics=`
/// (default `chat`); a text `topic|payload` publishes `payload` to `topic`; a binary message is
/// published to `bin`.
struct PubSubRoute(&'static str);

impl RouteModule for PubSubRoute {
    fn file(&self) -> &str {
        self.0
    }

    fn ws_upgrade(
        &self,
        _: &nitro_runtime::module::RequestInfo,
    ) -> Result<UpgradeDecision, CallError> {
        Ok(UpgradeDecision::accept())
    }

    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        let query = peer.request().query.clone();
        let topics = query
            .strip_prefix("topics=")
            .map(|t| t.split(',').map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_else(|| vec!["chat".to_owned()]);
        for topic in topics {
            peer.subscribe(&topic);
        }
        peer.send(Bytes::from_static(b"ready"), false);
        Ok(())
    }

    fn ws_message(&self, peer: &PeerRef, data: &[u8], binary: bool) -> Result<(), CallError> {
        if binary {
            peer.publish("bin", Bytes::copy_from_slice(data), true, false);
        } else {
            let text = std::str::from_utf8(data).unwrap();
            let (topic, payload) = text.split_once('|').unwrap();
            peer.publish(
                topic,
                Bytes::copy_from_slice(payload.as_bytes()),
                false,
                false,
            );
        }
        Ok(())
    }
}

/// One instance: a server and its backplane on `url`, channel `channel`.
struct Instance {
    addr: std::net::SocketAddr,
    hub: Arc<Hub>,
    backplane: Option<Backplane>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Instance {
    async fn start(url: &str, channel: &str) -> Instance {
        let hub = Hub::new();
        let backplane = Backplane::start(&hub, PubSubConfig::new(url, channel).unwrap()).unwrap();
        let app = app(
            &["_ws.rs", "other/_ws.rs"],
            vec![
                Arc::new(PubSubRoute("routes/_ws.rs")),
                Arc::new(PubSubRoute("routes/other/_ws.rs")),
            ],
        );
        let server = Server::bind(
            ServerConfig::new("127.0.0.1:0".parse().unwrap()),
            hub.clone(),
            app,
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Instance {
            addr,
            hub,
            backplane: Some(backplane),
            stop: Some(stop),
        }
    }

    fn stats(&self) -> BackplaneStats {
        self.backplane.as_ref().unwrap().stats()
    }

    async fn connected(&self) {
        eventually_long("the backplane to connect", || {
            self.stats().state == ConnectionState::Connected
        })
        .await;
    }

    /// A client at `path` (`/_ws?topics=a,b`), once its peer has subscribed.
    async fn client(&self, path: &str) -> Client {
        let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr))
            .await
            .unwrap();
        assert_eq!(next_text(&mut client).await, "ready");
        client
    }

    async fn shutdown(mut self) {
        if let Some(backplane) = self.backplane.take() {
            backplane.shutdown().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits up to 30 s (reconnecting takes up to a few seconds of backoff).
async fn eventually_long(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn say(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.unwrap();
}

/// Asserts that nothing arrives for a while (long enough for a relay round trip).
async fn nothing(client: &mut Client) {
    if let Ok(Some(message)) = tokio::time::timeout(
        Duration::from_millis(300),
        futures_util::StreamExt::next(client),
    )
    .await
    {
        panic!("expected nothing, got {message:?}");
    }
}

fn channel(test: &str) -> String {
    format!("nitro-test-{test}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_reach_every_instance_once_and_stay_in_their_namespace_and_topic() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    // Auth in the URL.
    let url = format!("redis://:s3cret@127.0.0.1:{}", redis.port());
    let channel = channel("relay");
    let one = Instance::start(&url, &channel).await;
    let two = Instance::start(&url, &channel).await;
    one.connected().await;
    two.connected().await;

    let mut a = one.client("/_ws").await;
    let mut c = one.client("/_ws").await;
    let mut b = two.client("/_ws").await;
    let mut news = two.client("/_ws?topics=news").await;
    let mut other_ns = two.client("/other/_ws").await;

    say(&mut a, "chat|hello").await;
    assert_eq!(
        next_text(&mut b).await,
        "hello",
        "relayed to the other instance"
    );
    assert_eq!(next_text(&mut c).await, "hello", "delivered locally");
    nothing(&mut a).await; // the publisher is excluded
    nothing(&mut b).await; // exactly once: no echo of the relay
    nothing(&mut c).await;
    nothing(&mut news).await; // another topic
    nothing(&mut other_ns).await; // another namespace, same topic

    // Binary, byte for byte.
    let bytes = vec![0u8, 1, 2, 0xfa, 0xff, b'\n'];
    let mut bin = two.client("/_ws?topics=bin").await;
    a.send(Message::binary(bytes.clone())).await.unwrap();
    assert_eq!(next(&mut bin).await, Message::binary(bytes));

    // A server-wide publish (an HTTP route's `publish`) on instance two reaches every
    // namespace of instance one, and a namespaced one only that namespace.
    let mut other_one = one.client("/other/_ws").await;
    two.hub
        .publish(None, "chat", Bytes::from_static(b"to all"), false);
    for client in [&mut a, &mut c, &mut b, &mut other_ns, &mut other_one] {
        assert_eq!(next_text(client).await, "to all");
    }
    two.hub.publish(
        Some("/other/_ws"),
        "chat",
        Bytes::from_static(b"others"),
        false,
    );
    assert_eq!(next_text(&mut other_one).await, "others");
    assert_eq!(next_text(&mut other_ns).await, "others");
    nothing(&mut a).await;
    nothing(&mut news).await;

    // A topic one instance has no subscriber of still goes out, and the other gets it.
    say(&mut a, "news|headline").await;
    assert_eq!(next_text(&mut news).await, "headline");

    // Counts: instance one relayed hello, the binary and headline; two relayed "to all" and
    // "others". Each ignored its own echoes (they may still be on their way: wait for them).
    // (`relayed` counts when Redis answers the `PUBLISH`, which may come after the delivery.)
    eventually_long("the echoes and the publish replies", || {
        let (s1, s2) = (one.stats(), two.stats());
        (s1.own, s2.own, s1.relayed, s2.relayed) == (3, 2, 3, 2)
    })
    .await;
    let (s1, s2) = (one.stats(), two.stats());
    assert_eq!((s1.relayed, s1.received, s1.dropped), (3, 2, 0), "{s1:?}");
    assert_eq!((s2.relayed, s2.received, s2.dropped), (2, 3, 0), "{s2:?}");
    assert_eq!((s1.malformed, s2.malformed), (0, 0));
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_drops_counted_messages_and_relaying_resumes() {
    let mut redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let channel = channel("restart");
    let one = Instance::start(&url, &channel).await;
    let two = Instance::start(&url, &channel).await;
    one.connected().await;
    two.connected().await;
    let mut a = one.client("/_ws").await;
    let mut c = one.client("/_ws").await;
    let mut b = two.client("/_ws").await;
    say(&mut a, "chat|before").await;
    assert_eq!(next_text(&mut b).await, "before");
    assert_eq!(next_text(&mut c).await, "before");
    // Confirmed by Redis before it goes (else it would count as dropped).
    eventually_long("the publish reply", || one.stats().relayed == 1).await;

    redis.stop();
    eventually_long("the loss to be seen", || {
        one.stats().state == ConnectionState::Disconnected
    })
    .await;
    // Local delivery goes on; the relay counts what it could not send.
    for i in 0..20 {
        say(&mut a, &format!("chat|during {i}")).await;
        assert_eq!(next_text(&mut c).await, format!("during {i}"));
    }
    eventually_long("the drops to be counted", || one.stats().dropped == 20).await;
    nothing(&mut b).await;
    // A few seconds down: long enough for the connection manager's own retries to give up,
    // so that reconnecting is the supervisor's backoff on a fresh manager.
    tokio::time::sleep(Duration::from_secs(3)).await;

    redis.restart();
    one.connected().await;
    two.connected().await;
    say(&mut a, "chat|after").await;
    assert_eq!(next_text(&mut b).await, "after", "relay resumed");
    assert_eq!(next_text(&mut c).await, "after");
    // `relayed` counts when Redis answers the `PUBLISH`, which may be after the delivery.
    eventually_long("the relay count", || one.stats().relayed == 2).await;
    assert_eq!(one.stats().dropped, 20);
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_serves_locally_then_connects() {
    let port = redis_server::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let channel = channel("late");
    let one = Instance::start(&url, &channel).await;
    let mut a = one.client("/_ws").await;
    let mut c = one.client("/_ws").await;
    eventually_long("the first attempt to fail", || {
        one.stats().state == ConnectionState::Disconnected
    })
    .await;
    say(&mut a, "chat|alone").await;
    assert_eq!(next_text(&mut c).await, "alone");
    eventually_long("the drop to be counted", || one.stats().dropped == 1).await;

    let redis = RedisServer::start_on(port, &[]);
    let two = Instance::start(&url, &channel).await;
    one.connected().await;
    two.connected().await;
    let mut b = two.client("/_ws").await;
    say(&mut a, "chat|together").await;
    assert_eq!(next_text(&mut b).await, "together");
    assert_eq!(next_text(&mut c).await, "together");
    one.shutdown().await;
    two.shutdown().await;
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_password() {
    let Some(redis) = RedisServer::start_tls("tls-pass") else {
        panic!("this redis-server cannot serve TLS (`--tls-port`)");
    };
    let url = format!("rediss://:tls-pass@127.0.0.1:{}/#insecure", redis.port());
    let channel = channel("tls");
    let one = Instance::start(&url, &channel).await;
    let two = Instance::start(&url, &channel).await;
    one.connected().await;
    two.connected().await;
    let mut a = one.client("/_ws").await;
    let mut b = two.client("/_ws").await;
    say(&mut a, "chat|over tls").await;
    assert_eq!(next_text(&mut b).await, "over tls");
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test]
async fn one_backplane_per_hub() {
    let hub = Hub::new();
    let config = PubSubConfig::new("redis://127.0.0.1:1", "x").unwrap();
    let first = Backplane::start(&hub, config.clone()).unwrap();
    let error = Backplane::start(&hub, config).unwrap_err();
    assert_eq!(
        error.to_string(),
        "this hub already relays through a backplane"
    );
    drop(first);
    let _ = TIMEOUT;
}
