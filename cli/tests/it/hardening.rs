//! `nitro dev` with the hardening keys of `nitro.toml` (issue #5): `[dev] allowed_hosts`,
//! `[websocket] allowed_origins` and `[limits]` reach the server, end to end.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// One request with the given `Host`, over a raw connection.
fn status_with_host(port: u16, host: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /size HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_toml_hardening_keys_reach_the_server() {
    let project = Project::example("echo");
    project.write(
        "nitro.toml",
        r#"
[limits]
max_body = 100
ws_max_message = "1 KiB"

[websocket]
allowed_origins = ["http://app.test:8080"]

[dev]
allowed_hosts = ["my.test"]
"#,
    );
    project.write(
        "routes/size.rs",
        "pub fn handler(req: &nitro::Request) -> String {\n    req.body().len().to_string()\n}\n",
    );
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;

    // Host allow-list (DNS rebinding).
    let statuses = tokio::task::spawn_blocking(move || {
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("my.test:{port}"),
            format!("attacker.example:{port}"),
        ]
        .map(|host| status_with_host(port, &host))
    })
    .await
    .unwrap();
    assert_eq!(statuses, [200, 200, 200, 403]);

    // `[limits] max_body`.
    let (small, big) = tokio::task::spawn_blocking(move || {
        (
            http(port, "POST", "/size", &[], &[b'x'; 100]),
            http(port, "POST", "/size", &[], &[b'x'; 101]),
        )
    })
    .await
    .unwrap();
    assert_eq!((small.status, small.text().as_str()), (200, "100"));
    assert_eq!(big.status, 413);

    // `[websocket] allowed_origins`.
    let with_origin = |origin: &str| {
        let mut request = dev.ws_url("/_ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(with_origin("http://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(with_origin("http://app.test:8080"))
        .await
        .unwrap();
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hi");

    // `[limits] ws_max_message`: 1009.
    ws.send(Message::binary(vec![0u8; 1025])).await.unwrap();
    let close = loop {
        match next_frame(&mut ws, Duration::from_secs(10)).await {
            Some(Message::Close(frame)) => break frame.expect("a close code"),
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1009);
}

/// SIGTERM while a route is stuck past its deadline and a WebSocket peer is open: the peer gets
/// `1001` and the process exits at once instead of waiting for the stuck thread.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_route_gets_a_504_and_does_not_hold_up_shutdown() {
    let project = Project::example("echo");
    project.write("nitro.toml", "[limits]\nhandler_timeout = 0.5\n");
    project.write(
        "routes/stuck.rs",
        "pub fn handler() -> String {\n    std::thread::sleep(std::time::Duration::from_secs(300));\n    String::new()\n}\n",
    );
    let mut dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let stuck = tokio::task::spawn_blocking(move || http(port, "GET", "/stuck", &[], b""))
        .await
        .unwrap();
    assert_eq!(stuck.status, 504, "{}", stuck.text());

    let mut ws = ws_connect(&dev.ws_url("/_ws")).await;
    ws.send(Message::text("still answering")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "still answering");

    let (status, mut dev) = tokio::task::spawn_blocking(move || {
        let status = dev.terminate(Duration::from_secs(20));
        (status, dev)
    })
    .await
    .unwrap();
    let close = loop {
        match next_frame(&mut ws, Duration::from_secs(10)).await {
            Some(Message::Close(frame)) => break frame.expect("a close code"),
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", dev.stderr()));
    assert!(status.success(), "{status}");
    let _ = &mut dev;
}

/// Sends `GET path` over a raw connection and returns what came back (empty when the server
/// died without answering).
fn raw_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// Issue 15: a route that aborts the process (no thread can catch that) ends the server of
/// `nitro dev`, not `nitro dev`: its supervisor names the signal and the route, starts the
/// server again on the same port with the build it had, and the page overlay shows the crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_dev_restarts_a_server_that_a_route_crashed_and_shows_the_crash() {
    let project = Project::with_files(&[
        (
            "index.html",
            "<!doctype html><html><body>chat</body></html>\n",
        ),
        (
            "routes/alive.rs",
            "pub fn handler(_req: &nitro::Request) -> &'static str {\n    \"alive\"\n}\n",
        ),
        (
            "routes/crash.rs",
            "pub fn handler(_req: &nitro::Request) -> &'static str {\n    std::process::abort()\n}\n",
        ),
    ]);
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let first = dev.pid();
    assert!(raw_get(port, "/alive").ends_with("alive"));

    let answer = tokio::task::spawn_blocking(move || raw_get(port, "/crash"))
        .await
        .unwrap();
    assert_eq!(answer, "", "the process died before it could answer");
    assert!(
        dev.wait_stderr(
            "the server died: signal 6 (SIGABRT",
            Duration::from_secs(30)
        ),
        "{}",
        dev.stderr()
    );
    let stderr = dev.stderr();
    assert!(
        stderr.contains("the last route call that started was `routes/crash.rs`"),
        "{stderr}"
    );

    // Served again, on the same port, without a rebuild of anything.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let answer = tokio::task::spawn_blocking(move || raw_get(port, "/alive"))
            .await
            .unwrap();
        if answer.ends_with("alive") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not served again; stderr:\n{}",
            dev.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(dev.pid(), first, "a new server process");

    // The page learns what happened.
    let mut dev_socket = ws_connect(&dev.dev_socket_url()).await;
    let message = next_dev_message(&mut dev_socket).await;
    assert_eq!(message["type"], "error", "{message}");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("the server died: signal 6") && text.contains("routes/crash.rs"),
        "{text}"
    );
}
