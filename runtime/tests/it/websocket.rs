//! WebSocket routes: handshake, the seed chat, pub/sub, close codes, faults, reload, shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use nitro_runtime::App;
use nitro_runtime::module::{CallError, HttpOutcome, RequestInfo, RouteModule, UpgradeDecision};
use nitro_runtime::ws::PeerRef;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::common::*;

fn chat_app(log: &Log, version: u32) -> App {
    let chat = |file| {
        Arc::new(Chat {
            version,
            ..Chat::new(file, log)
        }) as Arc<dyn RouteModule>
    };
    let fragile = Arc::new(Chat {
        fail_open: true,
        ..Chat::new("routes/fragile/_ws.rs", log)
    });
    app(
        &[
            "_ws.rs",
            "rooms/[room]/_ws.rs",
            "fragile/_ws.rs",
            "api/echo.rs",
        ],
        vec![
            chat("routes/_ws.rs"),
            chat("routes/rooms/[room]/_ws.rs"),
            fragile,
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version,
            }),
        ],
    )
}

async fn chat_server() -> (TestServer, Log) {
    let log = Log::default();
    (TestServer::start(chat_app(&log, 1)).await, log)
}

#[tokio::test]
async fn plain_get_is_426_with_the_exact_body() {
    let (server, _log) = chat_server().await;
    let reply = get(server.addr, "/_ws").await;
    assert_eq!(reply.status, 426);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.text(), "WebSocket upgrade is required.");
}

#[tokio::test]
async fn upgrades_elsewhere_are_refused() {
    let (server, _log) = chat_server().await;
    for path in ["/api/echo", "/nope", "/"] {
        let reply = request(server.addr, "GET", path, &UPGRADE, b"").await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.json()["message"],
            format!("no WebSocket route at `{path}`")
        );
        match tokio_tungstenite::connect_async(server.ws_url(path)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn broken_upgrades() {
    let (server, _log) = chat_server().await;
    let mut wrong_version = UPGRADE;
    wrong_version[2] = "Sec-WebSocket-Version: 8";
    let reply = request(server.addr, "GET", "/_ws", &wrong_version, b"").await;
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));

    let reply = request(server.addr, "GET", "/_ws", &UPGRADE[..3], b"").await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("Sec-WebSocket-Key"));
}

#[tokio::test]
async fn the_upgrade_hook_can_reject() {
    let (server, log) = chat_server().await;
    let reply = request(server.addr, "GET", "/_ws?reject", &UPGRADE, b"").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("x-why"), Some("no-token"));
    assert_eq!(reply.text(), "Unauthorized");
    assert!(log.lock().unwrap().is_empty(), "no peer was opened");

    let reply = request(server.addr, "GET", "/_ws?upgrade-panic", &UPGRADE, b"").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("upgrade boom"));
}

#[tokio::test]
async fn accept_with_headers_subprotocol_namespace_and_context() {
    let (server, _log) = chat_server().await;
    let mut request = server
        .ws_url("/rooms/game/_ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "other, chat.v1".parse().unwrap());
    let (mut client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["x-hello"], "world");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    let peers = server.handle.hub().peers(Some("/rooms/game/_ws"));
    assert_eq!(peers[0].protocol(), "chat.v1");
    next_text(&mut client).await; // welcome

    send(&mut client, "context").await;
    let context: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(
        context,
        serde_json::json!({"user": "u1", "params": {"room": "game"}})
    );

    send(&mut client, "info").await;
    let info: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(info["namespace"], "/rooms/game/_ws");
    assert_eq!(info["path"], "/rooms/game/_ws");
    assert_eq!(info["peers"], 1);
    assert_eq!(info["topics"], serde_json::json!(["chat"]));
    assert_eq!(info["open"], true);
    assert!(info["remote"].as_str().unwrap().starts_with("127.0.0.1:"));

    let (mut custom, _) = join(&server, "/_ws?ns=custom").await;
    send(&mut custom, "info").await;
    let info: serde_json::Value = serde_json::from_str(&next_text(&mut custom).await).unwrap();
    assert_eq!(info["namespace"], "custom");
    assert_eq!(info["query"], "ns=custom");
}

#[tokio::test]
async fn the_seed_chat_frame_for_frame() {
    let (server, _log) = chat_server().await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    let (mut b, b_id) = join(&server, "/_ws").await;
    assert_ne!(a_id, b_id);
    assert_eq!(uuid::Uuid::parse_str(&a_id).unwrap().get_version_num(), 4);

    assert_eq!(
        next_text(&mut a).await,
        chat_json("server", &format!("{b_id} 加入了！"))
    );

    send(&mut a, "hello").await;
    assert_eq!(next_text(&mut a).await, chat_json(&a_id, "hello"));
    assert_eq!(next_text(&mut b).await, chat_json(&a_id, "hello"));

    send(&mut a, "ping?").await;
    assert_eq!(next_text(&mut a).await, chat_json("server", "pong"));
    quiet(&mut b).await;

    a.close(None).await.unwrap();
    assert_eq!(
        next_text(&mut b).await,
        chat_json("server", &format!("{a_id} 离开了！"))
    );
    eventually("the hub to forget the peer", || {
        server.handle.hub().peer_count() == 1
    })
    .await;
}

/// A client may send its first frame in the same write as the upgrade request: hyper reads it
/// with the request, and the peer's socket must hand it on first.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_not_lost() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, _log) = chat_server().await;
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = format!(
        "GET /_ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    )
    .into_bytes();
    // A masked text frame, `ping?`.
    let mask = [0x12, 0x34, 0x56, 0x78];
    bytes.extend_from_slice(&[0x81, 0x80 | 5]);
    bytes.extend_from_slice(&mask);
    bytes.extend(b"ping?".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    raw.write_all(&bytes).await.unwrap();

    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        raw.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut client = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tokio_tungstenite::MaybeTlsStream::Plain(raw),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    // The welcome, then the answer to the frame that came with the request.
    let welcome = next_text(&mut client).await;
    assert!(welcome.contains("欢迎"), "{welcome}");
    assert_eq!(next_text(&mut client).await, chat_json("server", "pong"));
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let (server, _log) = chat_server().await;
    let (mut game1, game1_id) = join(&server, "/rooms/game/_ws").await;
    let (mut game2, _) = join(&server, "/rooms/game/_ws").await;
    let (mut lobby, _) = join(&server, "/rooms/lobby/_ws").await;
    next_text(&mut game1).await; // game2 joined

    send(&mut game1, "hi game").await;
    assert_eq!(next_text(&mut game1).await, chat_json(&game1_id, "hi game"));
    assert_eq!(next_text(&mut game2).await, chat_json(&game1_id, "hi game"));
    quiet(&mut lobby).await;
}

#[tokio::test]
async fn hub_publish_reaches_every_subscriber() {
    let (server, _log) = chat_server().await;
    let (mut a, _) = join(&server, "/_ws").await;
    let (mut b, _) = join(&server, "/rooms/x/_ws").await;
    assert_eq!(server.handle.hub().peer_count(), 2);

    let sent = server
        .handle
        .hub()
        .publish(None, "chat", Bytes::from_static(b"to all"), false);
    assert_eq!(sent, 2);
    assert_eq!(next_text(&mut a).await, "to all");
    assert_eq!(next_text(&mut b).await, "to all");

    server.handle.hub().publish(
        Some("/rooms/x/_ws"),
        "chat",
        Bytes::from_static(b"\x01\x02"),
        true,
    );
    assert_eq!(
        next(&mut b).await,
        Message::Binary(Bytes::from_static(b"\x01\x02"))
    );
    quiet(&mut a).await;
}

#[tokio::test]
async fn pings_are_answered() {
    use futures_util::StreamExt;
    let (server, _log) = chat_server().await;
    let (mut a, _) = join(&server, "/_ws").await;
    a.send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    let pong = tokio::time::timeout(TIMEOUT, a.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"hi")));
}

#[tokio::test]
async fn binary_messages_are_exact() {
    let (server, _log) = chat_server().await;
    let (mut a, _) = join(&server, "/_ws").await;
    a.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next(&mut a).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
}

#[tokio::test]
async fn close_details_reach_the_close_hook() {
    let (server, log) = chat_server().await;

    let (mut a, a_id) = join(&server, "/_ws").await;
    a.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    // The server completes the closing handshake.
    let echo = next_close(&mut a).await.unwrap();
    assert_eq!((u16::from(echo.code), echo.reason.as_str()), (1000, "bye"));
    eventually("close 1000 bye", || {
        logged(&log, &format!("{a_id} close 1000 bye"))
    })
    .await;

    let (mut b, b_id) = join(&server, "/_ws").await;
    b.close(None).await.unwrap();
    eventually("close 1005", || {
        logged(&log, &format!("{b_id} close 1005 "))
    })
    .await;

    let (c, c_id) = join(&server, "/_ws").await;
    drop(c); // TCP closed without a close frame
    eventually("close 1006", || {
        logged(&log, &format!("{c_id} close 1006 "))
    })
    .await;

    // The server closes with an application code.
    let (mut d, d_id) = join(&server, "/_ws").await;
    send(&mut d, "close-me").await;
    let frame = next_close(&mut d).await.unwrap();
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4001, "server says bye")
    );
    eventually("close 4001", || {
        logged(&log, &format!("{d_id} close 4001 server says bye"))
    })
    .await;
    eventually("no peers", || server.handle.hub().peer_count() == 0).await;
}

#[tokio::test]
async fn oversized_message_is_1009() {
    let (server, log) = chat_server().await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    let _ = a.send(Message::binary(vec![0u8; (1 << 20) + 1])).await;
    let frame = next_close(&mut a).await.unwrap();
    assert_eq!(u16::from(frame.code), 1009);
    eventually("close 1009", || {
        log.lock()
            .unwrap()
            .iter()
            .any(|line| line.starts_with(&format!("{a_id} close 1009")))
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_text_is_1007() {
    let (server, log) = chat_server().await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    let frame = Frame::message(
        Bytes::from_static(b"bad \xff text"),
        OpCode::Data(Data::Text),
        true,
    );
    a.send(Message::Frame(frame)).await.unwrap();
    let frame = next_close(&mut a).await.unwrap();
    assert_eq!(u16::from(frame.code), 1007);
    eventually("close 1007", || {
        log.lock()
            .unwrap()
            .iter()
            .any(|line| line.starts_with(&format!("{a_id} close 1007")))
    })
    .await;
}

#[tokio::test]
async fn a_panicking_hook_is_reported_and_the_peer_carries_on() {
    let (server, log) = chat_server().await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    let (mut b, b_id) = join(&server, "/_ws").await;
    next_text(&mut a).await; // b joined

    send(&mut a, "panic").await;
    eventually("the error hook", || {
        logged(
            &log,
            &format!("{a_id} error panicked at routes/_ws.rs:9:9:\nhook boom"),
        )
    })
    .await;
    send(&mut a, "real-panic").await;
    eventually("the error hook (real panic)", || {
        logged(&log, &format!("{a_id} error real hook boom"))
    })
    .await;

    // The next message is processed, and the other peer is fine.
    send(&mut a, "still here").await;
    assert_eq!(next_text(&mut a).await, chat_json(&a_id, "still here"));
    assert_eq!(next_text(&mut b).await, chat_json(&a_id, "still here"));
    send(&mut b, "me too").await;
    assert_eq!(next_text(&mut a).await, chat_json(&b_id, "me too"));
}

#[tokio::test]
async fn a_failing_open_closes_with_1011() {
    let (server, log) = chat_server().await;
    let mut client = connect(&server, "/fragile/_ws").await;
    let frame = next_close(&mut client).await.unwrap();
    assert_eq!(u16::from(frame.code), 1011);
    eventually("error and close hooks", || {
        let log = log.lock().unwrap();
        log.iter()
            .any(|line| line.ends_with("error panicked at routes/fragile/_ws.rs:1:1:\nopen boom"))
            && log
                .iter()
                .any(|line| line.ends_with("close 1011 internal error"))
    })
    .await;
}

#[tokio::test]
async fn swapping_the_app_keeps_connections() {
    let log = Log::default();
    let server = TestServer::start(chat_app(&log, 1)).await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    send(&mut a, "version").await;
    assert_eq!(next_text(&mut a).await, "v1");

    server.handle.set_app(chat_app(&log, 2));
    send(&mut a, "version").await;
    assert_eq!(next_text(&mut a).await, "v2");
    assert_eq!(
        get(server.addr, "/api/echo").await.header("x-version"),
        Some("2")
    );

    assert!(logged(&log, &format!("{a_id} open")));

    // A new app without the route (its file deleted): its peers are closed with 1001, as
    // their hooks are gone; peers of the routes that stay are not.
    let (mut room, _) = join(&server, "/rooms/r/_ws").await;
    server.handle.set_app(app(
        &["rooms/[room]/_ws.rs"],
        vec![Arc::new(Chat {
            version: 4,
            ..Chat::new("routes/rooms/[room]/_ws.rs", &log)
        })],
    ));
    let frame = next_close(&mut a).await.unwrap();
    assert_eq!(u16::from(frame.code), 1001);
    assert_eq!(frame.reason.as_str(), "route removed");
    send(&mut room, "version").await;
    assert_eq!(next_text(&mut room).await, "v4");
}

#[tokio::test]
async fn shutdown_closes_peers_with_1001() {
    let (mut server, log) = chat_server().await;
    let (mut a, a_id) = join(&server, "/_ws").await;
    let (mut b, b_id) = join(&server, "/rooms/r/_ws").await;
    let stop = tokio::spawn(async move {
        server.stop().await;
        server
    });
    for client in [&mut a, &mut b] {
        let frame = next_close(client).await.unwrap();
        assert_eq!(u16::from(frame.code), 1001);
    }
    let server = stop.await.unwrap();
    assert!(
        logged(&log, &format!("{a_id} close 1001 server shutting down")),
        "{:?}",
        log.lock().unwrap()
    );
    assert!(logged(
        &log,
        &format!("{b_id} close 1001 server shutting down")
    ));
    assert_eq!(server.handle.hub().peer_count(), 0);
}

#[tokio::test]
async fn two_servers_do_not_share_peers() {
    let (one, _) = chat_server().await;
    let (two, _) = chat_server().await;
    let (_a, _) = join(&one, "/_ws").await;
    let (mut b, _) = join(&two, "/_ws").await;
    assert_eq!(one.handle.hub().peer_count(), 1);
    assert_eq!(two.handle.hub().peer_count(), 1);
    one.handle
        .hub()
        .publish(None, "chat", Bytes::from_static(b"one only"), false);
    quiet(&mut b).await;
}

/// The peer is in the hub before the client sees the `101`: ask right after each connect,
/// a few hundred times, and never miss it (before, 16–26 % of such asks missed it). The
/// client and the server run on separate workers, as they do against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_registered_before_its_101() {
    let (server, _log) = chat_server().await;
    let hub = server.handle.hub();
    for round in 0..300 {
        let mut client = connect(&server, "/_ws").await;
        let peers = hub.peers(Some("/_ws"));
        assert_eq!(
            peers.len(),
            1,
            "round {round}: the new peer is not in the hub"
        );
        assert_eq!(hub.peer_count(), 1, "round {round}");
        client.close(None).await.unwrap();
        eventually("the peer to leave", || hub.peer_count() == 0).await;
    }
}

/// An HTTP route file with WebSocket hooks: the chat's hooks, and `Echo`'s handler if any.
struct Endpoint {
    chat: Chat,
    page: Option<Echo>,
}

impl RouteModule for Endpoint {
    fn file(&self) -> &str {
        self.chat.file
    }
    fn http(&self, req: &RequestInfo) -> Result<HttpOutcome, CallError> {
        match &self.page {
            Some(page) => page.http(req),
            None => Err(CallError::Missing),
        }
    }
    fn has_websocket_hooks(&self) -> bool {
        true
    }
    fn ws_upgrade(&self, req: &RequestInfo) -> Result<UpgradeDecision, CallError> {
        self.chat.ws_upgrade(req)
    }
    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        self.chat.ws_open(peer)
    }
    fn ws_message(&self, peer: &PeerRef, data: &[u8], binary: bool) -> Result<(), CallError> {
        self.chat.ws_message(peer, data, binary)
    }
    fn ws_close(&self, peer: &PeerRef, code: u16, reason: &str) -> Result<(), CallError> {
        self.chat.ws_close(peer, code, reason)
    }
}

/// `routes/index.rs` with hooks and a handler is the WebSocket endpoint at `/` and answers
/// `GET /` too; one with hooks only answers plain requests with `426`, like a `_ws.rs` file;
/// a route without hooks still refuses upgrades.
#[tokio::test]
async fn a_websocket_route_at_the_root_also_answers_get() {
    let log = Log::default();
    let server = TestServer::start(app(
        &["index.rs", "hooks.rs", "api/echo.rs"],
        vec![
            Arc::new(Endpoint {
                chat: Chat::new("routes/index.rs", &log),
                page: Some(Echo {
                    file: "routes/index.rs",
                    version: 1,
                }),
            }),
            Arc::new(Endpoint {
                chat: Chat::new("routes/hooks.rs", &log),
                page: None,
            }),
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version: 1,
            }),
        ],
    ))
    .await;

    let reply = get(server.addr, "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/");
    let (mut client, id) = join(&server, "/").await;
    send(&mut client, "info").await;
    let info: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(info["namespace"], "/");
    eventually("open", || logged(&log, &format!("{id} open"))).await;

    let reply = get(server.addr, "/hooks").await;
    assert_eq!(reply.status, 426);
    assert_eq!(reply.text(), "WebSocket upgrade is required.");
    join(&server, "/hooks").await;

    let reply = request(server.addr, "GET", "/api/echo", &UPGRADE, b"").await;
    assert_eq!(reply.status, 404);
}

/// A client that does not read: what the server cannot hand to its socket is counted by
/// `buffered_amount()`, and goes back to zero once the client reads. A peer without a
/// negotiated subprotocol reports `""`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_amount_follows_a_slow_reader() {
    const FRAME: usize = 1 << 20;
    const FRAMES: usize = 32;
    let log = Log::default();
    let server = TestServer::with(chat_app(&log, 1), |config| {
        config.limits.ws_send_queue = 2 * FRAMES * FRAME;
    })
    .await;
    let (mut client, id) = join(&server, "/_ws").await;
    let peer = server
        .handle
        .hub()
        .peers(Some("/_ws"))
        .into_iter()
        .find(|peer| peer.id() == id)
        .unwrap();
    assert_eq!(peer.protocol(), "");
    assert_eq!(peer.buffered_amount(), 0);

    // More than loopback's socket buffers can hold (a few MiB each way).
    for _ in 0..FRAMES {
        assert!(peer.send(Bytes::from(vec![7u8; FRAME]), true));
    }
    let buffered = peer.buffered_amount();
    assert!(
        buffered >= (FRAMES - 16) * FRAME,
        "only {buffered} bytes are waiting"
    );

    for _ in 0..FRAMES {
        assert_eq!(
            next(&mut client).await,
            Message::Binary(Bytes::from(vec![7u8; FRAME]))
        );
    }
    eventually("the queue to drain", || peer.buffered_amount() == 0).await;
}

/// `wait_for_drain()` stays pending while a client that does not read leaves frames queued,
/// and resolves once it has read them; on an idle peer it resolves at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_drain_resolves_when_a_slow_reader_caught_up() {
    const FRAME: usize = 1 << 20;
    const FRAMES: usize = 32;
    let log = Log::default();
    let server = TestServer::with(chat_app(&log, 1), |config| {
        config.limits.ws_send_queue = 2 * FRAMES * FRAME;
    })
    .await;
    let (mut client, id) = join(&server, "/_ws").await;
    let peer = server
        .handle
        .hub()
        .peers(Some("/_ws"))
        .into_iter()
        .find(|peer| peer.id() == id)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), peer.wait_for_drain())
        .await
        .expect("an idle peer is drained");

    for _ in 0..FRAMES {
        assert!(peer.send(Bytes::from(vec![7u8; FRAME]), true));
    }
    let waiter = {
        let peer = peer.clone();
        tokio::spawn(async move {
            peer.wait_for_drain().await;
            peer.buffered_amount()
        })
    };
    // Nobody reads: the queue cannot empty, so the waiter cannot have finished.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    assert!(peer.buffered_amount() > 0);

    for _ in 0..FRAMES {
        assert_eq!(
            next(&mut client).await,
            Message::Binary(Bytes::from(vec![7u8; FRAME]))
        );
    }
    let left = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter woke up")
        .unwrap();
    assert_eq!(left, 0);
}
