//! Server memory per peer for the seed chat's traffic, nitro against a bare tokio-tungstenite
//! server doing the same, in the same run (issue 15, item 1).
//!
//! ```sh
//! cargo run --release -p nitro-runtime --example chat_peers -- 10000
//! ```
//!
//! Both servers do what `examples/websocket` does when a peer joins: subscribe it to `chat`
//! and publish a join message (about 60 bytes of JSON) to everyone else. N clients connect one
//! after another and read everything; the server's RSS is read from `/proc` once every client
//! has received every join message after its own. The bare server is the usual
//! tokio-tungstenite broadcast (a map of per-peer unbounded channels, one task per peer
//! writing its channel to its socket), with the same 2 KiB buffers as nitro's default.
//!
//! The program starts itself again as each server (`serve nitro`, `serve bare`), so the
//! clients do not count. Loopback only; N is capped at 15 000. Prints numbers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nitro_router::{RouteTable, ScanOptions};
use nitro_runtime::module::{CallError, RouteModule};
use nitro_runtime::ws::PeerRef;
use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match (
        args.get(1).map(String::as_str),
        args.get(2).map(String::as_str),
    ) {
        (Some("serve"), Some("nitro")) => runtime.block_on(serve_nitro()),
        (Some("serve"), Some("bare")) => runtime.block_on(serve_bare()),
        _ => {
            let peers = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000usize)
                .clamp(2, 15_000);
            let nitro = runtime.block_on(measure("nitro", peers));
            let bare = runtime.block_on(measure("bare", peers));
            println!("seed-chat peers: {peers}, each join published to every other peer");
            for (name, (idle, with, took)) in [("nitro", nitro), ("bare tokio-tungstenite", bare)] {
                println!(
                    "{name:>24}: {:6.1} MiB -> {:6.1} MiB, {:5.1} KiB per peer (all joins delivered in {took:.1?})",
                    idle as f64 / 1024.0,
                    with as f64 / 1024.0,
                    with.saturating_sub(idle) as f64 / peers as f64
                );
            }
        }
    }
}

fn join_message(n: u64) -> String {
    format!("{{\"user\":\"server\",\"message\":\"user-{n:08} joined!\"}}")
}

/// The seed chat's `open`: subscribe to `chat`, announce the peer to the others.
struct Chat {
    joined: AtomicU64,
}

impl RouteModule for Chat {
    fn file(&self) -> &str {
        "routes/_ws.rs"
    }
    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        peer.subscribe("chat");
        let n = self.joined.fetch_add(1, Ordering::Relaxed);
        peer.publish("chat", join_message(n).into(), false, false);
        Ok(())
    }
}

async fn serve_nitro() {
    let table = RouteTable::from_files(["_ws.rs"], &ScanOptions { websocket: true }).unwrap();
    let routes = HashMap::from([(
        "routes/_ws.rs".to_owned(),
        RouteEntry::Loaded(Arc::new(Chat {
            joined: AtomicU64::new(0),
        }) as Arc<dyn RouteModule>),
    )]);
    let server = Server::bind(
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
        Hub::new(),
        App::new(table, routes),
    )
    .await
    .unwrap();
    println!("{}", server.local_addr());
    std::io::stdout().flush().unwrap();
    server.run_until(stdin_closed()).await.unwrap();
}

async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
}

type Peers = Arc<Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<Message>>>>;

/// The same behaviour, written the usual way with tokio-tungstenite.
async fn serve_bare() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let peers: Peers = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let accept = async {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (peers, next) = (peers.clone(), next.clone());
            tokio::spawn(async move {
                let config = WebSocketConfig::default()
                    .read_buffer_size(2 << 10)
                    .write_buffer_size(2 << 10);
                let Ok(ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let id = next.fetch_add(1, Ordering::Relaxed);
                let join = Message::text(join_message(id));
                {
                    let mut peers = peers.lock().unwrap();
                    for other in peers.values() {
                        let _ = other.send(join.clone());
                    }
                    peers.insert(id, tx);
                }
                let writer = tokio::spawn(async move {
                    while let Some(message) = rx.recv().await {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(_)) = stream.next().await {}
                peers.lock().unwrap().remove(&id);
                writer.abort();
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = stdin_closed() => {}
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs one server with `peers` chat clients: (idle RSS, RSS with them, time to deliver).
async fn measure(kind: &str, peers: usize) -> (u64, u64, Duration) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["serve", kind])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let url = format!("ws://{}/_ws", addr.trim());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_kib(pid);

    // Client k receives the joins of the clients after it: peers·(peers−1)/2 in all.
    let expected = (peers * (peers - 1) / 2) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut readers = Vec::with_capacity(peers);
    for _ in 0..peers {
        let (client, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        connected.fetch_add(1, Ordering::Relaxed);
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let (_sink, mut stream) = client.split();
            while let Some(Ok(message)) = stream.next().await {
                if message.is_text() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    assert_eq!(
        received.load(Ordering::Relaxed),
        expected,
        "{kind}: every join message delivered"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = rss_kib(pid);
    for reader in readers {
        reader.abort();
    }
    drop(child.stdin.take());
    let _ = child.wait();
    (idle, with, took)
}
