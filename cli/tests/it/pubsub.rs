//! `[websocket] pubsub` end to end (issue #11): the seed chat (`examples/websocket`) built once
//! with a pub/sub channel, served by three `nitro start` processes that share a real
//! `redis-server` (Debian's package; `scripts/test.sh` installs it), with WebSocket clients on
//! each. Also: Redis unreachable at start, and a malformed `NITRO_PUBSUB_URL`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::redis_server::{self, RedisServer};
use crate::support::*;

/// Messages each publisher sends; 4 publishers make 10 000.
const PER_PUBLISHER: usize = 2_500;
/// How far a publisher may run ahead of its own echo (keeps the test from measuring how fast
/// it can flood a 2-core machine).
const WINDOW: usize = 64;

/// The seed chat with `[websocket] pubsub = { channel = … }` (the URL comes from the
/// environment), built once for every test of this file.
fn built_output() -> &'static Path {
    static OUTPUT: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, output) = OUTPUT.get_or_init(|| {
        let project = Project::example("websocket");
        let toml = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
        project.write(
            "nitro.toml",
            &format!(
                "{toml}\n[websocket]\npubsub = {{ channel = \"nitro-test-{}\", stats_interval = 1 }}\n",
                std::process::id()
            ),
        );
        nitro_build(project.path());
        let output = project.path().join(".output");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(output.join("nitro.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["config"]["pubsub"],
            serde_json::json!({
                "url": null,
                "channel": format!("nitro-test-{}", std::process::id()),
                "queue": 10000,
                "stats_interval": 1.0,
            }),
            "nitro.json records the table"
        );
        (project.dir, output)
    });
    output
}

/// A running `nitro start` of the built chat with `NITRO_PUBSUB_URL` (killed on drop).
struct Instance {
    server: Server,
}

impl Instance {
    fn start(output: &Path, url: &str) -> Instance {
        let mut cmd = nitro();
        cmd.arg("start")
            .arg(output)
            .args(["--port", "0"])
            .env("NITRO_PUBSUB_URL", url);
        Instance {
            server: Server::start_output(cmd),
        }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    fn stderr(&self) -> String {
        self.server.stderr()
    }

    /// Waits (at most 30 s) until stderr has `needle` at least `n` times.
    fn wait_stderr(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stderr().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the log of nitro start:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        self.server.ws_url("/_ws")
    }

    /// SIGTERM, then waits for the exit (graceful shutdown logs the final counts).
    fn stop(&mut self) {
        self.server
            .terminate(Duration::from_secs(30))
            .expect("nitro start stops on SIGTERM");
    }
}

/// What one client received from users (not the server's join/leave notices): per sender,
/// the sequence numbers in arrival order.
#[derive(Default)]
struct Inbox {
    by_sender: HashMap<String, Vec<usize>>,
    total: usize,
}

/// A chat client: its peer id, a sender for its messages, and what it received.
struct ChatClient {
    id: String,
    sink: futures_util::stream::SplitSink<Ws, WsMessage>,
    inbox: Arc<Mutex<Inbox>>,
    /// Notified on each received message.
    arrived: Arc<tokio::sync::Notify>,
}

impl ChatClient {
    async fn join(url: &str) -> ChatClient {
        let mut ws = ws_connect(url).await;
        let id = welcome_id(&next_text(&mut ws).await);
        let (sink, mut stream) = ws.split();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (into, notify) = (inbox.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let WsMessage::Text(text) = message else {
                    continue;
                };
                let (user, message) = chat_frame(&text);
                if user == "server" {
                    continue; // someone joined or left
                }
                let seq: usize = message
                    .strip_prefix("m ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected message {text}"));
                let mut inbox = into.lock().unwrap();
                inbox.by_sender.entry(user).or_default().push(seq);
                inbox.total += 1;
                drop(inbox);
                notify.notify_one();
            }
        });
        ChatClient {
            id,
            sink,
            inbox,
            arrived,
        }
    }

    fn total(&self) -> usize {
        self.inbox.lock().unwrap().total
    }

    fn seen_from(&self, sender: &str) -> usize {
        self.inbox
            .lock()
            .unwrap()
            .by_sender
            .get(sender)
            .map_or(0, Vec::len)
    }

    /// Sends `m 0` … `m N-1`, staying at most [`WINDOW`] ahead of its own echo.
    async fn publish_all(&mut self, n: usize) {
        for seq in 0..n {
            while seq >= self.seen_from(&self.id) + WINDOW {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.arrived.notified()).await;
            }
            self.sink
                .send(WsMessage::text(format!("m {seq}")))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_every_publish_exactly_once_in_order() {
    let output = built_output();
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let instances: Vec<Instance> = (0..3).map(|_| Instance::start(output, &url)).collect();
    for instance in &instances {
        instance.wait_stderr("connected to Redis", 1);
    }

    // Two clients on each instance; the first of each instance publishes, and instance 0
    // has two publishers.
    let mut clients = Vec::new();
    for instance in &instances {
        for _ in 0..2 {
            clients.push(ChatClient::join(&instance.url()).await);
        }
    }
    let publishers = [0, 1, 2, 4];
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();

    // Publish concurrently from the four.
    let mut tasks = Vec::new();
    let mut listeners = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        if publishers.contains(&i) {
            tasks.push(tokio::spawn(async move {
                let mut client = client;
                client.publish_all(PER_PUBLISHER).await;
                client
            }));
        } else {
            listeners.push(client);
        }
    }
    for task in tasks {
        listeners.push(task.await.unwrap());
    }

    // Every client gets every message once: the other publishers' through pub/sub (across
    // instances or not), its own as the chat's echo (`send`), never through its own publish.
    let expected = publishers.len() * PER_PUBLISHER;
    let deadline = Instant::now() + Duration::from_secs(120);
    while listeners.iter().any(|c| c.total() < expected) {
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {:?} of {expected}\nlogs:\n{}",
            listeners.iter().map(ChatClient::total).collect::<Vec<_>>(),
            instances
                .iter()
                .map(Instance::stderr)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for client in &listeners {
        let inbox = client.inbox.lock().unwrap();
        assert_eq!(inbox.total, expected, "client {}", client.id);
        for &p in &publishers {
            let seqs = &inbox.by_sender[&ids[p]];
            let in_order: Vec<usize> = (0..PER_PUBLISHER).collect();
            assert_eq!(
                seqs, &in_order,
                "client {} got publisher {}'s messages once each, in order",
                client.id, ids[p]
            );
        }
    }

    // The counters reach the log (every second here, when they changed), and nothing was
    // dropped.
    instances[0].wait_stderr(&format!("relayed {}", 2 * PER_PUBLISHER + 2), 1);
    let mut instances = instances;
    for instance in &mut instances {
        instance.stop();
        let log = instance.stderr();
        assert!(log.contains("stopped: connected"), "{log}");
        assert!(log.contains("dropped 0"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_then_a_bad_url() {
    let output = built_output();
    // Nothing listens there: the server starts anyway, says so once, and serves locally.
    let port = redis_server::free_port();
    let instance = Instance::start(output, &format!("redis://127.0.0.1:{port}"));
    instance.wait_stderr("cannot reach Redis", 1);
    // `b` first: the seed's `open` sends the welcome before it subscribes, so a client that
    // publishes the moment another one got its welcome may be ahead of that subscription.
    let b = ChatClient::join(&instance.url()).await;
    let mut a = ChatClient::join(&instance.url()).await;
    a.publish_all(3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.seen_from(&a.id) < 3 {
        assert!(Instant::now() < deadline, "local delivery stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        instance.stderr().matches("cannot reach Redis").count(),
        1,
        "logged once: {}",
        instance.stderr()
    );
    drop(instance);

    // A malformed URL: a clear error, exit 1, before listening.
    let out = nitro()
        .arg("start")
        .arg(output)
        .args(["--port", "0"])
        .env("NITRO_PUBSUB_URL", "redis//127.0.0.1:6379")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable `NITRO_PUBSUB_URL` is `redis//127.0.0.1:6379`, which is not a Redis URL"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");

    // No URL at all: the manifest has none and the variable is unset.
    let out = nitro()
        .arg("start")
        .arg(output)
        .args(["--port", "0"])
        .env_remove("NITRO_PUBSUB_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no `url`, and `NITRO_PUBSUB_URL` is not set"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_dev_and_nitro_start_share_a_channel() {
    let output = built_output();
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let production = Instance::start(output, &url);

    // The same app under `nitro dev`, with the URL in `nitro.toml` this time.
    let project = Project::example("websocket");
    let toml = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
    project.write(
        "nitro.toml",
        &format!(
            "{toml}\n[websocket]\npubsub = {{ url = \"{url}\", channel = \"nitro-test-{}\" }}\n",
            std::process::id()
        ),
    );
    let dev = NitroDev::start_async(project.path()).await;
    assert!(
        dev.wait_stderr("connected to Redis", Duration::from_secs(30)),
        "{}",
        dev.stderr()
    );
    assert!(
        dev.stderr().contains("➜ Pub/sub: Redis"),
        "{}",
        dev.stderr()
    );
    production.wait_stderr("connected to Redis", 1);

    let listener = ChatClient::join(&production.url()).await;
    let mut speaker = ChatClient::join(&dev.ws_url("/_ws")).await;
    speaker.publish_all(5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while listener.seen_from(&speaker.id) < 5 {
        assert!(
            Instant::now() < deadline,
            "nitro start did not get nitro dev's publishes\ndev:\n{}\nstart:\n{}",
            dev.stderr(),
            production.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        listener.inbox.lock().unwrap().by_sender[&speaker.id],
        [0, 1, 2, 3, 4]
    );
}

/// A Nitro-style crossws server (crossws's node adapter and `redis()` sync driver, from
/// `tests/crossws`) and a `nitro start` on one channel: each side's publish reaches the other's
/// client, and crossws's `decodeEnvelope` reads what nitro-rs writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossws_server_and_nitro_start_share_a_channel() {
    let scripts = workspace_root().join("tests/crossws");
    assert!(
        scripts.join("node_modules/crossws").is_dir(),
        "crossws is not installed: run `scripts/test.sh` (or `npm ci --prefix tests/crossws`)"
    );
    let output = built_output();
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let instance = Instance::start(output, &url);
    instance.wait_stderr("connected to Redis", 1);
    let channel = format!("nitro-test-{}", std::process::id());
    let port = instance.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(scripts.join("interop.mjs"))
            .args([&url, &port, &channel])
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "crossws and nitro-rs did not talk:\n{stdout}\n{}\nnitro start:\n{}",
        String::from_utf8_lossy(&out.stderr),
        instance.stderr()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        report["nitro_client"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap() == r#"{"user":"crossws","message":"hello from crossws"}"#),
        "{report}"
    );
}

/// The chat's event-stream peers (`routes/sse.get.rs`, `sse.post.rs`) are peers of the
/// backplane too: an SSE client on one instance and a WebSocket client on another hear each
/// other through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_and_a_websocket_on_two_instances_hear_each_other() {
    use crate::streaming::Streaming;
    let output = built_output();
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let (a, b) = (Instance::start(output, &url), Instance::start(output, &url));
    a.wait_stderr("connected to Redis", 1);
    b.wait_stderr("connected to Redis", 1);
    let port = a.port();
    let wait = Duration::from_secs(30);
    let data = |block: String| {
        block
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{block:?}"))
            .to_owned()
    };

    let (sse, pending, s_id) = tokio::task::spawn_blocking(move || {
        let mut sse = Streaming::get(port, "/sse", &[]);
        let mut pending = String::new();
        let s_id = welcome_id(&data(sse.next_block(&mut pending, wait)));
        (sse, pending, s_id)
    })
    .await
    .unwrap();
    let mut ws = ws_connect(&b.url()).await;
    let ws_id = welcome_id(&next_text(&mut ws).await);
    send_text(&mut ws, "over redis").await;
    // The SSE client's join, relayed through Redis, may reach this client first.
    let echo = loop {
        let text = next_text(&mut ws).await;
        if !text.starts_with(r#"{"user":"server""#) {
            break text;
        }
    };
    assert_eq!(
        echo,
        format!(r#"{{"user":"{ws_id}","message":"over redis"}}"#)
    );
    let (ws_id2, s_id2) = (ws_id.clone(), s_id.clone());
    tokio::task::spawn_blocking(move || {
        let (mut sse, mut pending) = (sse, pending);
        assert_eq!(
            data(sse.next_block(&mut pending, wait)),
            format!(r#"{{"user":"server","message":"{ws_id2} 加入了！"}}"#)
        );
        assert_eq!(
            data(sse.next_block(&mut pending, wait)),
            format!(r#"{{"user":"{ws_id2}","message":"over redis"}}"#)
        );
        let posted = http(port, "POST", &format!("/sse?id={s_id}"), &[], b"and back");
        assert_eq!(posted.status, 204);
        drop(sse);
    })
    .await
    .unwrap();
    let frame = tokio::time::timeout(wait, next_text(&mut ws))
        .await
        .unwrap();
    let (user, message) = chat_frame(&frame);
    assert_eq!((user, message.as_str()), (s_id2, "and back"));
}
