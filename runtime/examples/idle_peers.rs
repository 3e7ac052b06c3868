//! Measures the server's resident memory with N idle WebSocket peers (issue #5's report).
//!
//! ```sh
//! cargo run --release -p nitro-runtime --example idle_peers -- 10000
//! cargo run --release -p nitro-runtime --example idle_peers -- 10000 browser
//! ```
//!
//! `browser`: each upgrade carries the headers Chromium sends (user agent, languages, a cookie,
//! origin, extensions offer, ...), which the server keeps with each peer.
//!
//! The program starts itself a second time as the server (`serve`), so that the clients'
//! sockets and buffers do not count in the server's RSS, connects N peers to its `/_ws` echo
//! route, waits for every `open` hook, then reads the server's `VmRSS` from `/proc`. Loopback
//! only; N is capped at 15 000 (the file-descriptor limit of one process here is 20 000).
//! Prints numbers; asserts nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nitro_router::{RouteTable, ScanOptions};
use nitro_runtime::module::{
    CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse, UpgradeDecision,
};
use nitro_runtime::ws::PeerRef;
use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if args.get(1).map(String::as_str) == Some("serve") {
        runtime.block_on(serve());
    } else {
        let peers = args
            .get(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000usize)
            .min(15_000);
        let browser = args.get(2).is_some_and(|mode| mode == "browser");
        runtime.block_on(measure(peers, browser));
    }
}

/// `routes/_ws.rs`: echoes, and counts opened peers (answered on `GET /count`).
struct Echo {
    opened: AtomicUsize,
}

impl RouteModule for Echo {
    fn file(&self) -> &str {
        "routes/_ws.rs"
    }
    fn ws_open(&self, _: &PeerRef) -> Result<(), CallError> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn ws_message(&self, peer: &PeerRef, data: &[u8], binary: bool) -> Result<(), CallError> {
        if data == b"count" {
            let count = self.opened.load(Ordering::Relaxed).to_string();
            peer.send(count.into(), false);
        } else {
            peer.send(bytes::Bytes::copy_from_slice(data), binary);
        }
        Ok(())
    }
}

struct Count(Arc<Echo>);

impl RouteModule for Count {
    fn file(&self) -> &str {
        "routes/count.rs"
    }
    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        Ok(HttpOutcome::Response(RouteResponse {
            status: 200,
            headers: Vec::new(),
            body: self
                .0
                .opened
                .load(Ordering::Relaxed)
                .to_string()
                .into_bytes(),
        }))
    }
    fn ws_upgrade(&self, _: &RequestInfo) -> Result<UpgradeDecision, CallError> {
        Err(CallError::Missing)
    }
    fn ws_open(&self, _: &PeerRef) -> Result<(), CallError> {
        Err(CallError::Missing)
    }
    fn ws_message(&self, _: &PeerRef, _: &[u8], _: bool) -> Result<(), CallError> {
        Err(CallError::Missing)
    }
    fn ws_close(&self, _: &PeerRef, _: u16, _: &str) -> Result<(), CallError> {
        Err(CallError::Missing)
    }
    fn ws_error(&self, _: &PeerRef, _: &str) -> Result<(), CallError> {
        Err(CallError::Missing)
    }
}

/// The server: prints its port, serves until stdin closes.
async fn serve() {
    let echo = Arc::new(Echo {
        opened: AtomicUsize::new(0),
    });
    let table =
        RouteTable::from_files(["_ws.rs", "count.rs"], &ScanOptions { websocket: true }).unwrap();
    let routes = HashMap::from([
        (
            "routes/_ws.rs".to_owned(),
            RouteEntry::Loaded(echo.clone() as Arc<dyn RouteModule>),
        ),
        (
            "routes/count.rs".to_owned(),
            RouteEntry::Loaded(Arc::new(Count(echo)) as Arc<dyn RouteModule>),
        ),
    ]);
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    // `NITRO_WS_BUFFER=1024` to see what the buffers cost.
    if let Some(size) = std::env::var("NITRO_WS_BUFFER")
        .ok()
        .and_then(|size| size.parse().ok())
    {
        config.limits.ws_buffer = size;
    }
    let server = Server::bind(config, Hub::new(), App::new(table, routes))
        .await
        .unwrap();
    println!("{}", server.local_addr());
    std::io::stdout().flush().unwrap();
    server
        .run_until(async {
            // Returns when the parent closes our stdin (or exits).
            let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
        })
        .await
        .unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn opened(addr: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /count HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .rsplit("\r\n\r\n")
        .next()
        .and_then(|body| body.trim().parse().ok())
        .unwrap_or(0)
}

/// The upgrade request of a Chromium page on `http://127.0.0.1:3000` (about 700 bytes).
fn upgrade_request(
    url: &str,
    browser: bool,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    if browser {
        let headers = request.headers_mut();
        for (name, value) in [
            ("origin", "http://127.0.0.1:3000"),
            ("pragma", "no-cache"),
            ("cache-control", "no-cache"),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
            ),
            ("accept-encoding", "gzip, deflate, br, zstd"),
            ("accept-language", "en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7"),
            (
                "cookie",
                "session=3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b; theme=dark; _ga=GA1.1.123456789.1700000000",
            ),
            (
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            ),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
    }
    request
}

async fn measure(peers: usize, browser: bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let addr = addr.trim().to_owned();
    let url = format!("ws://{addr}/_ws");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = rss_kib(pid);

    let started = Instant::now();
    let mut clients = Vec::with_capacity(peers);
    for _ in 0..peers {
        let (client, _) = tokio_tungstenite::connect_async(upgrade_request(&url, browser))
            .await
            .unwrap();
        clients.push(client);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened(&addr).await < peers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_peers = rss_kib(pid);

    // One more peer: an echo round trip while the others idle.
    let (mut extra, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let sent = Instant::now();
    extra.send(Message::text("hello")).await.unwrap();
    let echo = extra.next().await;
    let round_trip = sent.elapsed();

    let kind = if browser { ", browser headers" } else { "" };
    println!("idle WebSocket peers: {peers}{kind} (connected in {connected:.1?})");
    println!("server RSS before:    {:.1} MiB", baseline as f64 / 1024.0);
    println!(
        "server RSS with them: {:.1} MiB",
        with_peers as f64 / 1024.0
    );
    println!(
        "per peer:             {:.1} KiB",
        with_peers.saturating_sub(baseline) as f64 / peers.max(1) as f64
    );
    println!(
        "echo on one more:     {round_trip:.1?} ({})",
        if matches!(echo, Some(Ok(Message::Text(ref t))) if t.as_str() == "hello") {
            "ok"
        } else {
            "no echo"
        }
    );
    drop(clients);
    drop(child.stdin.take());
    let _ = child.wait();
}
