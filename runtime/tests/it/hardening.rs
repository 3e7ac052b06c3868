//! Hostile clients, faults and limits (issue #5): slow and silent clients, resets, oversized
//! heads and bodies, WebSocket protocol violations, silent and slow peers, runaway routes,
//! DNS rebinding and cross-site upgrades, shutdown with work in flight.
//!
//! Every wait is bounded; no assertion is about how fast something happened.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use nitro_runtime::module::{
    CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse, UpgradeDecision,
};
use nitro_runtime::ws::PeerRef;
use nitro_runtime::{App, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

/// Reads until the server closes the connection; `Err` when it is still open at `TIMEOUT`.
async fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>, Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(seen),
            Ok(Ok(0) | Err(_)) => return Ok(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn short_timeouts(config: &mut ServerConfig) {
    config.limits.header_read_timeout = Duration::from_millis(500);
}

fn echo_only() -> App {
    app(
        &["api/echo.rs"],
        vec![Arc::new(Echo {
            file: "routes/api/echo.rs",
            version: 1,
        })],
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP: slow, silent and abrupt clients; oversized heads and bodies

#[tokio::test]
async fn slowloris_is_closed_at_the_header_timeout() {
    let server = TestServer::with(echo_only(), short_timeouts).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(format!("GET /api/echo HTTP/1.1\r\nHost: {}\r\n", server.addr).as_bytes())
        .await
        .unwrap();
    // One header line every 100 ms, for up to 100 lines: the head never completes.
    let mut closed = false;
    for i in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream
            .write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a dripping head was not cut off");
    // The server is fine.
    assert_eq!(get(server.addr, "/api/echo").await.status, 200);
}

#[tokio::test]
async fn a_silent_connection_and_an_idle_keep_alive_are_closed() {
    let server = TestServer::with(echo_only(), short_timeouts).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent).await.is_ok(),
        "a connection that never sent a byte is still open"
    );

    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(format!("GET /api/echo HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .await
        .unwrap();
    let seen = read_until_closed(&mut idle)
        .await
        .expect("an idle keep-alive connection is still open");
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "the request was answered"
    );
}

#[tokio::test]
async fn an_h2_preface_or_a_broken_request_line_is_refused() {
    let server = TestServer::with(echo_only(), short_timeouts).await;
    // HTTP/1.1 only: a (partial) HTTP/2 preface is a bad request, never held open.
    for raw in [
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let seen = read_until_closed(&mut stream)
            .await
            .unwrap_or_else(|_| panic!("{raw:?}: still open"));
        let text = String::from_utf8_lossy(&seen);
        assert!(
            seen.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 505"),
            "{raw:?}: {text}"
        );
    }
    assert_eq!(get(server.addr, "/api/echo").await.status, 200);
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431() {
    let server = TestServer::start(echo_only()).await;
    let many: Vec<String> = (0..101).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let reply = request(server.addr, "GET", "/api/echo", &many, b"").await;
    assert_eq!(reply.status, 431);

    let big = format!("X-Big: {}", "a".repeat(20 << 10));
    let reply = request(server.addr, "GET", "/api/echo", &[&big], b"").await;
    assert_eq!(reply.status, 431);

    let long_target = format!("/api/echo?{}", "q".repeat(20 << 10));
    let reply = request(server.addr, "GET", &long_target, &[], b"").await;
    assert!(matches!(reply.status, 414 | 431), "{}", reply.status);

    // Under the limits: fine.
    let fine = format!("X-Big: {}", "a".repeat(8 << 10));
    assert_eq!(
        request(server.addr, "GET", "/api/echo", &[&fine], b"")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let server = TestServer::with(echo_only(), |config| config.limits.max_body = 1000).await;
    let reply = request(server.addr, "POST", "/api/echo", &[], &[b'x'; 1001]).await;
    assert_eq!(reply.status, 413);
    assert!(reply.text().contains("1000 bytes"), "{}", reply.text());
    let reply = request(server.addr, "POST", "/api/echo", &[], &[b'x'; 1000]).await;
    assert_eq!(reply.status, 200);

    // A declared length over the limit is refused before any body byte arrives.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /api/echo HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000000000\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(TIMEOUT, conn.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

// ---------------------------------------------------------------------------------------------
// Route faults: a runaway route gets a 504, the rest keeps answering

/// A route that blocks until the test opens its gate (at most `TIMEOUT`).
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    entered: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: Arc::new((Mutex::new(false), Condvar::new())),
            entered: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn opener(&self) -> impl Fn() + use<> {
        let open = self.open.clone();
        move || {
            *open.0.lock().unwrap() = true;
            open.1.notify_all();
        }
    }
}

impl RouteModule for Gate {
    fn file(&self) -> &str {
        "routes/gate.rs"
    }

    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let (lock, condvar) = &*self.open;
        let guard = lock.lock().unwrap();
        let _open = condvar
            .wait_timeout_while(guard, TIMEOUT, |open| !*open)
            .unwrap();
        Ok(HttpOutcome::Response(RouteResponse {
            status: 200,
            headers: Vec::new(),
            body: b"through".to_vec(),
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

#[tokio::test]
async fn a_blocked_route_gets_a_504_and_the_server_keeps_answering() {
    let gate = Gate::new();
    let (open_gate, entered) = (gate.opener(), gate.entered.clone());
    let dir = temp_dir();
    write(dir.path().join("public/hello.txt"), "hello");
    let public = dir.path().join("public");
    let server = TestServer::with(
        app(
            &["gate.rs", "api/echo.rs"],
            vec![
                Arc::new(gate) as Arc<dyn RouteModule>,
                Arc::new(Echo {
                    file: "routes/api/echo.rs",
                    version: 1,
                }),
            ],
        ),
        |config| {
            config.limits.handler_timeout = Duration::from_millis(300);
            config.limits.route_threads = 2;
            config.public_dir = Some(public);
        },
    )
    .await;
    let addr = server.addr;

    // Both route threads get stuck behind the gate: each request answers 504.
    let stuck: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { get(addr, "/gate").await }))
        .collect();
    for task in stuck {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 504);
        assert!(
            reply.json()["message"]
                .as_str()
                .unwrap()
                .contains("did not answer within 0.3 s"),
            "{}",
            reply.text()
        );
    }
    assert_eq!(entered.load(Ordering::SeqCst), 2);

    // Every route thread is held: route calls wait, then 504, naming the cause ...
    let reply = get(addr, "/api/echo").await;
    assert_eq!(reply.status, 504);
    assert!(reply.text().contains("all 2 route threads are busy"));
    // ... while everything that is not route code answers at once.
    assert_eq!(get(addr, "/hello.txt").await.text(), "hello");
    assert_eq!(get(addr, "/nothing-here").await.status, 404);

    // Once the route returns, its threads serve again.
    open_gate();
    eventually_async("route threads free again", || async move {
        get(addr, "/api/echo").await.status == 200
    })
    .await;
    assert_eq!(get(addr, "/gate").await.text(), "through");
}

/// Like [`eventually`], for a check that needs to await.
async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket: protocol violations, silent peers, slow consumers

fn chat(log: &Log) -> App {
    app(
        &["_ws.rs"],
        vec![Arc::new(Chat::new("routes/_ws.rs", log)) as Arc<dyn RouteModule>],
    )
}

/// Does the upgrade by hand and returns the raw socket after the `101`.
async fn raw_upgrade(server: &TestServer, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", server.addr);
    for line in UPGRADE {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(TIMEOUT, stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        seen.push(byte[0]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 101"), "{seen:?}");
    stream
}

/// The close code of the first close frame the server sends (skipping data frames).
async fn raw_close_code(stream: &mut TcpStream) -> u16 {
    let all = read_until_closed(stream).await.expect("closed in time");
    let mut at = 0;
    while at + 2 <= all.len() {
        let (opcode, len) = (all[at] & 0x0f, usize::from(all[at + 1] & 0x7f));
        assert!(len < 126, "short frames only in these tests");
        if opcode == 0x8 {
            assert!(len >= 2, "a close frame with a code");
            return u16::from_be_bytes([all[at + 2], all[at + 3]]);
        }
        at += 2 + len;
    }
    panic!("no close frame in {all:?}")
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn protocol_violations_are_1002() {
    let log = Log::default();
    let server = TestServer::start(chat(&log)).await;
    // A 64-bit length with its top bit set (RFC 6455 §5.2: it must be 0).
    let mut top_bit = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    top_bit.extend_from_slice(&[1, 2, 3, 4]);
    let cases: [(&str, Vec<u8>); 6] = [
        ("a length with the top bit set", top_bit),
        ("unmasked frame", vec![0x81, 0x02, b'h', b'i']),
        ("RSV1 without an extension", client_frame(0xC1, b"hi")),
        ("reserved opcode", client_frame(0x83, b"hi")),
        ("fragmented ping", client_frame(0x09, b"hi")),
        ("continuation without a start", client_frame(0x80, b"hi")),
    ];
    for (what, frame) in cases {
        let mut stream = raw_upgrade(&server, "/_ws").await;
        stream.write_all(&frame).await.unwrap();
        assert_eq!(raw_close_code(&mut stream).await, 1002, "{what}");
    }
    // A message before the bad frame is answered first, then the connection fails (strict).
    let mut stream = raw_upgrade(&server, "/_ws").await;
    let mut frames = client_frame(0x81, b"before");
    frames.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // unmasked
    stream.write_all(&frames).await.unwrap();
    let all = read_until_closed(&mut stream)
        .await
        .expect("closed in time");
    let text = String::from_utf8_lossy(&all);
    // 1002 = 0x03ea, reason "protocol error" (14 bytes).
    let close = all.windows(4).position(|w| w == [0x88, 0x10, 0x03, 0xea]);
    let echo = all.windows(8).position(|w| w == b"\"before\"");
    assert!(
        matches!((echo, close), (Some(echo), Some(close)) if echo < close),
        "the echo, then the close: {text:?}"
    );

    // A big message and bad UTF-8 get their own codes (see websocket.rs): 1009 and 1007.
    let mut stream = raw_upgrade(&server, "/_ws").await;
    stream
        .write_all(&client_frame(0x81, b"bad \xff"))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut stream).await, 1007);
    eventually("no peers left", || server.handle.hub().peer_count() == 0).await;
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_closed() {
    let log = Log::default();
    let server = TestServer::with(chat(&log), |config| {
        // Generous, so that a busy machine still answers the pings of the live peer in time.
        config.limits.ws_idle_timeout = Duration::from_millis(1500);
    })
    .await;

    // A client that reads answers the pings by itself and stays.
    let (mut live, live_id) = join(&server, "/_ws").await;
    let until = tokio::time::Instant::now() + Duration::from_millis(3000);
    while let Ok(message) = tokio::time::timeout_at(until, live.next()).await {
        assert!(
            matches!(message, Some(Ok(Message::Ping(_)))),
            "nothing but pings: {message:?}"
        );
    }
    send(&mut live, "still here").await;
    assert_eq!(
        next_text(&mut live).await,
        chat_json(&live_id, "still here")
    );

    // Keep reading the live one in the background.
    let live = tokio::spawn(async move { while let Some(Ok(_)) = live.next().await {} });

    // A client that never reads (so never answers a ping) is closed with 1001.
    let (mut silent, silent_id) = join(&server, "/_ws").await;
    eventually("the silent peer closed", || {
        logged(&log, &format!("{silent_id} close 1001 idle timeout"))
    })
    .await;
    let mut saw_ping = false;
    let close = loop {
        match tokio::time::timeout(TIMEOUT, silent.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => saw_ping = true,
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(Message::Text(_))) => {} // live's messages
            other => panic!("{other:?}"),
        }
    };
    assert!(saw_ping, "a ping came before the close");
    assert_eq!(u16::from(close.code), 1001);
    assert!(
        !logged(&log, &format!("{live_id} close 1001 idle timeout")),
        "the live peer is still open"
    );
    live.abort();
}

/// Subscribes every peer to `news` (and to `bulk` with `?bulk`), and counts the opened peers.
struct News {
    opened: Arc<AtomicUsize>,
    closes: Log,
}

impl RouteModule for News {
    fn file(&self) -> &str {
        "routes/_ws.rs"
    }
    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        peer.subscribe("news");
        if peer.request().query == "bulk" {
            peer.subscribe("bulk");
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn ws_close(&self, peer: &PeerRef, code: u16, reason: &str) -> Result<(), CallError> {
        self.closes
            .lock()
            .unwrap()
            .push(format!("{} close {code} {reason}", peer.id()));
        Ok(())
    }
}

#[tokio::test]
async fn a_slow_consumer_among_1000_subscribers_is_closed_with_1008() {
    const FAST: usize = 1000;
    const MESSAGE: usize = 1024;
    const BULK_PER_ROUND: usize = 16;
    const MAX_ROUNDS: usize = 1000;
    let opened = Arc::new(AtomicUsize::new(0));
    let closes = Log::default();
    let server = TestServer::with(
        app(
            &["_ws.rs"],
            vec![Arc::new(News {
                opened: opened.clone(),
                closes: closes.clone(),
            }) as Arc<dyn RouteModule>],
        ),
        |config| {
            config.limits.ws_send_queue = 16 << 10;
            config.limits.ws_send_timeout = Duration::from_millis(500);
        },
    )
    .await;

    // The fast subscribers read everything and count it.
    let received = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..FAST {
        let (mut client, _) = tokio_tungstenite::connect_async(server.ws_url("/_ws"))
            .await
            .unwrap();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = client.next().await {
                if let Message::Binary(data) = message {
                    assert_eq!(data.len(), MESSAGE);
                    received.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // The slow one never reads.
    let (mut slow, _) = tokio_tungstenite::connect_async(server.ws_url("/_ws?bulk"))
        .await
        .unwrap();
    eventually("every peer subscribed", || {
        opened.load(Ordering::SeqCst) == FAST + 1
    })
    .await;

    // Each round: one `news` message for everybody, read by the fast peers before the next
    // round, and a few KiB more for the slow peer alone (`bulk`), so that its socket buffers
    // (several MiB on loopback) fill without sending gigabytes to the other 1 000.
    let hub = server.handle.hub().clone();
    let news = Bytes::from(vec![7u8; MESSAGE]);
    let bulk = Bytes::from(vec![0u8; 4 << 10]);
    let mut published = 0;
    let mut slow_dropped = false;
    for _ in 0..MAX_ROUNDS {
        if hub.publish(None, "news", news.clone(), true) == FAST {
            slow_dropped = true;
        }
        published += 1;
        for _ in 0..BULK_PER_ROUND {
            if hub.publish(None, "bulk", bulk.clone(), true) == 0 {
                slow_dropped = true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        eventually("the fast peers read the round", || {
            received.load(Ordering::SeqCst) >= FAST * published
        })
        .await;
        if slow_dropped {
            break;
        }
    }
    assert!(slow_dropped, "the slow peer was never dropped");
    assert_eq!(received.load(Ordering::SeqCst), FAST * published);

    // The slow client, reading at last, finds some data and then the 1008.
    let mut data = 0;
    let close = loop {
        match tokio::time::timeout(TIMEOUT, slow.next()).await.unwrap() {
            Some(Ok(Message::Binary(message))) => {
                if message.len() == MESSAGE {
                    data += 1;
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("after {data} messages: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert!(
        data < published,
        "{data} of {published} messages queued at most"
    );
    eventually("the slow peer gone", || {
        closes
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.ends_with("close 1008 send queue full"))
    })
    .await;

    // The others carry on.
    hub.publish(None, "news", news.clone(), true);
    published += 1;
    eventually("the fast peers got the last one", || {
        received.load(Ordering::SeqCst) == FAST * published
    })
    .await;
    assert_eq!(hub.peer_count(), FAST);
    eprintln!("slow consumer: dropped after {published} rounds ({data} news messages reached it)");
    drop(readers);
}

/// `N SIZE` makes the `message` hook send N binary messages of SIZE bytes at once (chat
/// history from a hook); every peer is subscribed to `news`.
struct Burst;

impl RouteModule for Burst {
    fn file(&self) -> &str {
        "routes/_ws.rs"
    }
    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        peer.subscribe("news");
        Ok(())
    }
    fn ws_message(&self, peer: &PeerRef, data: &[u8], _: bool) -> Result<(), CallError> {
        let text = std::str::from_utf8(data).unwrap();
        let (count, size) = text.split_once(' ').unwrap();
        let message = Bytes::from(vec![1u8; size.parse().unwrap()]);
        for _ in 0..count.parse::<usize>().unwrap() {
            peer.send(message.clone(), true);
        }
        Ok(())
    }
}

/// Reads binary messages of `size` bytes until `count` arrived or something else does;
/// returns how many arrived and what ended the wait.
async fn read_burst(client: &mut Client, count: usize, size: usize) -> (usize, String) {
    let mut got = 0;
    while got < count {
        match tokio::time::timeout(TIMEOUT, client.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) if data.len() == size => got += 1,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => return (got, format!("{other:?}")),
        }
    }
    (got, String::new())
}

#[tokio::test]
async fn bursts_over_the_send_queue_reach_a_reader_in_full() {
    // Default limits: a 1 MiB send queue.
    let server = TestServer::start(app(&["_ws.rs"], vec![Arc::new(Burst)])).await;
    let mut client = connect(&server, "/_ws").await;
    for (count, size) in [(1100, 1 << 10), (200, 8 << 10)] {
        send(&mut client, &format!("{count} {size}")).await;
        let (got, end) = read_burst(&mut client, count, size).await;
        eprintln!("burst of {count} × {size} bytes from a hook: {got} delivered");
        assert_eq!(got, count, "burst of {count} × {size} bytes: then {end}");
    }
    // 17 × 64 KiB published at once, as an HTTP route's `publish` does.
    let hub = server.handle.hub().clone();
    let message = Bytes::from(vec![1u8; 64 << 10]);
    for _ in 0..17 {
        assert_eq!(hub.publish(None, "news", message.clone(), true), 1);
    }
    let (got, end) = read_burst(&mut client, 17, 64 << 10).await;
    eprintln!("publish of 17 × 64 KiB: {got} delivered");
    assert_eq!(got, 17, "publish of 17 × 64 KiB: then {end}");

    // A client that never reads is still closed with 1008, its queue bounded.
    let mut silent = connect(&server, "/_ws").await;
    // Its `open` hook has run (subscribed) once it answers; from now on it reads nothing.
    send(&mut silent, "1 10").await;
    assert_eq!(read_burst(&mut silent, 1, 10).await.0, 1);
    let large = Bytes::from(vec![2u8; 256 << 10]);
    let mut queued = 0;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while hub.publish(None, "news", large.clone(), true) == 2 {
        queued += 1;
        assert!(tokio::time::Instant::now() < deadline, "never closed");
        // The reader keeps up; the silent one fills its socket buffers, then its queue.
        let (got, end) = read_burst(&mut client, 1, 256 << 10).await;
        assert_eq!(got, 1, "{end}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // At most the socket buffers (a few MiB on loopback) and four times the 1 MiB queue.
    assert!(
        queued * 256 < 64 << 10,
        "{queued} messages of 256 KiB before the close"
    );
    let mut data = 0;
    let close = loop {
        let next = tokio::time::timeout(TIMEOUT, silent.next()).await;
        let next = next.unwrap_or_else(|_| panic!("nothing after {data} messages"));
        match next {
            Some(Ok(Message::Binary(_))) => data += 1,
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            Some(Ok(_)) => {}
            other => panic!("after {data} messages: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    eprintln!(
        "silent client: closed with 1008 after {queued} messages of 256 KiB ({data} read late)"
    );
}

#[tokio::test]
async fn host_headers_and_http10_upgrades_follow_the_rfcs() {
    let log = Log::default();
    for dev in [false, true] {
        let server = TestServer::with(chat(&log), |config| {
            if dev {
                dev_checks(config);
            }
        })
        .await;
        let addr = server.addr;
        let status = async |head: String| Conn::open(addr).await.send(&head, b"").await.status;
        // RFC 9112 §3.2: two `Host` headers, or none in HTTP/1.1, get 400.
        let two = format!("GET / HTTP/1.1\nHost: {addr}\nHost: evil.example");
        assert_eq!(status(two).await, 400, "two Host headers (dev: {dev})");
        assert_eq!(
            status("GET / HTTP/1.1".to_owned()).await,
            400,
            "no Host (dev: {dev})"
        );
        let http10 = "GET /_ws HTTP/1.0\nHost: localhost\n".to_owned() + &UPGRADE.join("\n");
        // RFC 6455 §4.1: an upgrade needs HTTP/1.1.
        assert_eq!(
            status(http10).await,
            400,
            "an HTTP/1.0 upgrade (dev: {dev})"
        );
        let one = format!("GET / HTTP/1.1\nHost: {addr}");
        assert_ne!(status(one).await, 400);
    }
}

/// The backlog `ss` reports for the listener on `port` (`Send-Q` of a listening socket).
fn listen_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("`ss` (iproute2) is installed: scripts/test.sh installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no listener on {port}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_listen_backlog_is_large_and_configurable() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map_or(4096, |text| text.trim().parse().unwrap());
    let server = TestServer::start(echo_only()).await;
    assert_eq!(listen_backlog(server.addr.port()), 4096.min(somaxconn));
    let server = TestServer::with(echo_only(), |config| config.limits.listen_backlog = 300).await;
    assert_eq!(listen_backlog(server.addr.port()), 300.min(somaxconn));
}

#[tokio::test]
async fn a_peer_may_subscribe_to_at_most_ws_max_topics() {
    /// Subscribes its peer to every topic in the message, one per line; answers its count.
    struct Topics;
    impl RouteModule for Topics {
        fn file(&self) -> &str {
            "routes/_ws.rs"
        }
        fn ws_message(&self, peer: &PeerRef, data: &[u8], _: bool) -> Result<(), CallError> {
            for topic in std::str::from_utf8(data).unwrap().lines() {
                peer.subscribe(topic);
            }
            peer.send(peer.topics().len().to_string().into(), false);
            Ok(())
        }
    }
    let server = TestServer::with(app(&["_ws.rs"], vec![Arc::new(Topics)]), |config| {
        config.limits.ws_max_topics = 50
    })
    .await;
    let mut client = connect(&server, "/_ws").await;
    let many: Vec<String> = (0..10_000).map(|i| format!("topic-{i}")).collect();
    send(&mut client, &many.join("\n")).await;
    assert_eq!(next_text(&mut client).await, "50");
}

/// `GET /api/exit`: calls `std::process::exit(0)`, as a route might.
struct Exits;

impl RouteModule for Exits {
    fn file(&self) -> &str {
        "routes/api/exit.rs"
    }
    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        std::process::exit(0)
    }
}

#[tokio::test]
async fn an_exit_from_a_route_is_reported_before_the_process_goes() {
    if std::env::var_os("NITRO_TEST_EXITING_SERVER").is_some() {
        // The child: serve the route and call it; the process ends inside the call.
        let server = TestServer::start(app(&["api/exit.rs"], vec![Arc::new(Exits)])).await;
        let _ = get(server.addr, "/api/exit").await;
        unreachable!("the route exits");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hardening::an_exit_from_a_route_is_reported_before_the_process_goes",
            "--nocapture",
        ])
        .env("NITRO_TEST_EXITING_SERVER", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "the last that started: `routes/api/exit.rs`): did a route call `std::process::exit`?"
        ),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Host and Origin

fn dev_checks(config: &mut ServerConfig) {
    config.allowed_hosts = Some(vec!["my.test".into()]);
}

#[tokio::test]
async fn a_foreign_host_is_403_on_requests_and_upgrades() {
    let log = Log::default();
    let both = app(
        &["_ws.rs", "api/echo.rs"],
        vec![
            Arc::new(Chat::new("routes/_ws.rs", &log)) as Arc<dyn RouteModule>,
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version: 1,
            }),
        ],
    );
    let server = TestServer::with(both, dev_checks).await;
    let addr = server.addr;
    let port = addr.port();
    let ok = |host: String| async move {
        let mut conn = Conn::open(addr).await;
        conn.send(&format!("GET /api/echo HTTP/1.1\nHost: {host}"), b"")
            .await
    };
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("my.test:{port}"),
    ] {
        assert_eq!(ok(host.clone()).await.status, 200, "{host}");
    }
    for host in [
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
    ] {
        let reply = ok(host.clone()).await;
        assert_eq!(reply.status, 403, "{host}");
        assert!(reply.text().contains("allowed_hosts"), "{}", reply.text());
    }

    // The upgrade is checked the same way.
    let mut conn = Conn::open(addr).await;
    let mut head = format!("GET /_ws HTTP/1.1\nHost: attacker.example:{port}");
    for line in UPGRADE {
        head.push('\n');
        head.push_str(line);
    }
    assert_eq!(conn.send(&head, b"").await.status, 403);

    // An absolute-form target names the host that counts.
    let mut conn = Conn::open(addr).await;
    let reply = conn
        .send(
            &format!("GET http://evil.example/api/echo HTTP/1.1\nHost: 127.0.0.1:{port}"),
            b"",
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(log.lock().unwrap().is_empty(), "no peer opened");
}

#[tokio::test]
async fn upgrades_from_a_disallowed_origin_are_403() {
    let log = Log::default();
    let server = TestServer::with(chat(&log), |config| {
        config.allowed_origins = Some(vec!["http://app.test:8080".into()]);
    })
    .await;
    let upgrade = |origin: Option<&'static str>| {
        let mut lines: Vec<&str> = UPGRADE.to_vec();
        if let Some(origin) = origin {
            lines.push(origin);
        }
        let addr = server.addr;
        async move { request(addr, "GET", "/_ws", &lines, b"").await }
    };
    let refused = upgrade(Some("Origin: http://evil.example")).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("allowed_origins"));
    assert_eq!(upgrade(Some("Origin: http://app.test")).await.status, 403);
    assert_eq!(upgrade(Some("Origin: null")).await.status, 403);
    assert_eq!(
        upgrade(Some("Origin: http://app.test:8080")).await.status,
        101
    );
    assert_eq!(upgrade(None).await.status, 101, "non-browser clients");

    // In dev without a list: local origins only.
    let dev = TestServer::with(chat(&log), dev_checks).await;
    let addr = dev.addr;
    let upgrade = |origin: String| {
        let mut lines: Vec<String> = UPGRADE.iter().map(|s| s.to_string()).collect();
        lines.push(format!("Origin: {origin}"));
        async move {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            request(addr, "GET", "/_ws", &lines, b"").await.status
        }
    };
    assert_eq!(
        upgrade(format!("http://localhost:{}", addr.port())).await,
        101
    );
    assert_eq!(upgrade("http://localhost:5173".into()).await, 101);
    assert_eq!(upgrade("http://evil.example".into()).await, 403);
    assert_eq!(upgrade("http://192.0.2.7:3000".into()).await, 403);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test]
async fn shutdown_with_an_open_peer_and_a_request_in_flight() {
    let log = Log::default();
    let started = Arc::new(tokio::sync::Notify::new());
    let mut server = TestServer::start(app(
        &["_ws.rs", "slow.rs"],
        vec![
            Arc::new(Chat::new("routes/_ws.rs", &log)) as Arc<dyn RouteModule>,
            Arc::new(Slow {
                started: started.clone(),
            }),
        ],
    ))
    .await;
    let (mut peer, peer_id) = join(&server, "/_ws").await;
    let addr = server.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    started.notified().await;
    let stop = tokio::spawn(async move {
        server.stop().await;
        server
    });
    let close = next_close(&mut peer).await.unwrap();
    assert_eq!(u16::from(close.code), 1001);
    let _ = peer.close(None).await;
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slow"));
    let server = stop.await.unwrap();
    assert!(logged(
        &log,
        &format!("{peer_id} close 1001 server shutting down")
    ));
    // The port can be bound again at once.
    let again = tokio::net::TcpListener::bind(server.addr).await;
    assert!(again.is_ok(), "{again:?}");
}

// ---------------------------------------------------------------------------------------------
// Static files: the traversal table

#[tokio::test]
async fn path_traversal_table() {
    let dir = temp_dir();
    let public = dir.path().join("public");
    write(public.join("hello.txt"), "hello");
    write(public.join("sub/index.html"), "<p>sub</p>");
    write(public.join("empty/.keep"), "");
    write(public.join(".env"), "SECRET=dotenv");
    write(public.join(".git/config"), "SECRET git");
    write(public.join(".well-known/security.txt"), "Contact: x");
    write(dir.path().join("secret.txt"), "TOP SECRET");
    write(dir.path().join("page.html"), "<p>SECRET page</p>");
    write(dir.path().join("index.html"), "<p>the renderer</p>");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), public.join("leak")).unwrap();
    std::os::unix::fs::symlink(dir.path(), public.join("up")).unwrap();
    std::os::unix::fs::symlink(public.join(".env"), public.join("env-link")).unwrap();
    std::os::unix::fs::symlink("/etc", public.join("etc")).unwrap();
    std::os::unix::fs::symlink(public.join("hello.txt"), public.join("inner")).unwrap();
    let index_html = dir.path().join("index.html");
    let server = TestServer::with(app(&[], Vec::new()), |config| {
        config.public_dir = Some(public);
        config.index_html = Some(index_html);
    })
    .await;
    let addr = server.addr;

    // Served: plain files, `.well-known`, a directory's index, a symlink that stays inside.
    for (path, body) in [
        ("/hello.txt", "hello"),
        ("/sub/", "<p>sub</p>"),
        ("/.well-known/security.txt", "Contact: x"),
        ("/inner", "hello"),
        ("/%68ello.txt", "hello"),
        // The query is ignored, never parsed into the path (Vite CVE-2025-30208).
        ("/hello.txt?raw??", "hello"),
    ] {
        let reply = get(addr, path).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, body), "{path}");
    }

    // Never served. Each request is sent as written (no client-side normalisation); the
    // answer is an error, or the renderer's page for a page URL, and never a secret.
    let refused = [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/..%2fsecret.txt",
        "/..%2f..%2fetc%2fpasswd",
        "/%252e%252e/secret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/public/..%5c..%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/hello.txt%00.html",
        "//etc/passwd",
        "/.env",
        "/.env/.",
        "/.env%5c",
        "/%2eenv",
        "/.git/config",
        "/hello.txt::$DATA",
        "/HELLO~1.TXT",
        "/hello.txt/",
        "/empty/",
        "/leak",
        "/up/secret.txt",
        "/up/page.html",
        "/env-link",
        "/etc/passwd",
        "/etc/hostname",
        "/../page.html",
        "/sub/../../page.html",
    ];
    assert!(refused.len() >= 20);
    for path in refused {
        let reply = get(addr, path).await;
        let body = reply.text();
        assert!(
            !body.contains("SECRET") && !body.contains("root:"),
            "{path} leaked: {body}"
        );
        let renderer = reply.status == 200 && body == "<p>the renderer</p>";
        assert!(
            renderer || (400..500).contains(&reply.status),
            "{path}: {} {body}",
            reply.status
        );
    }

    // A very long path (8 KiB): the renderer's page or an error, no panic.
    let long = format!("/{}", "a/".repeat(4 << 10));
    let reply = get(addr, &long).await;
    assert!(
        reply.text() == "<p>the renderer</p>" || [404, 414, 431].contains(&reply.status),
        "{}",
        reply.status
    );
    assert_eq!(get(addr, "/hello.txt").await.status, 200, "still serving");
}

/// `open` sleeps for 2 s; `message` sleeps when asked to. Every `message` call is logged as
/// it starts and ends.
struct SlowHooks {
    errors: Log,
    calls: Log,
}

impl RouteModule for SlowHooks {
    fn file(&self) -> &str {
        "routes/_ws.rs"
    }
    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        if peer.request().query == "slow-open" {
            std::thread::sleep(Duration::from_secs(2));
        }
        Ok(())
    }
    fn ws_message(&self, peer: &PeerRef, data: &[u8], _: bool) -> Result<(), CallError> {
        let text = String::from_utf8_lossy(data).into_owned();
        self.calls.lock().unwrap().push(format!("start {text}"));
        if data == b"sleep" {
            std::thread::sleep(Duration::from_secs(2));
        } else {
            peer.send(Bytes::copy_from_slice(data), false);
        }
        self.calls.lock().unwrap().push(format!("end {text}"));
        Ok(())
    }
    fn ws_error(&self, _: &PeerRef, error: &str) -> Result<(), CallError> {
        self.errors.lock().unwrap().push(error.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn hooks_past_the_handler_timeout_are_errors() {
    let errors = Log::default();
    let calls = Log::default();
    let server = TestServer::with(
        app(
            &["_ws.rs"],
            vec![Arc::new(SlowHooks {
                errors: errors.clone(),
                calls: calls.clone(),
            }) as Arc<dyn RouteModule>],
        ),
        |config| config.limits.handler_timeout = Duration::from_millis(300),
    )
    .await;

    // A slow `open` fails the peer: 1011.
    let mut slow = connect(&server, "/_ws?slow-open").await;
    let close = next_close(&mut slow).await.unwrap();
    assert_eq!(u16::from(close.code), 1011);
    assert!(
        errors.lock().unwrap()[0].contains("did not answer within 0.3 s"),
        "{:?}",
        errors.lock().unwrap()
    );

    // A slow `message` is reported; the peer stays and its next messages are answered, in
    // order: the next hook waits for the late one to return.
    let mut peer = connect(&server, "/_ws").await;
    send(&mut peer, "sleep").await;
    send(&mut peer, "after").await;
    assert_eq!(next_text(&mut peer).await, "after");
    // "after" was answered from inside its call: the call may not have logged its end yet.
    eventually("both calls ended", || calls.lock().unwrap().len() == 4).await;
    assert_eq!(
        *calls.lock().unwrap(),
        ["start sleep", "end sleep", "start after", "end after"]
    );
    assert_eq!(errors.lock().unwrap().len(), 2);
}
