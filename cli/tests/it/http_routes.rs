//! HTTP routes under `nitro dev`: params, catch-alls, method suffixes, JSON, errors, panics,
//! and a WebSocket route whose hooks panic.

use crate::support::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[test]
fn http_routes_behave() {
    let project = Project::fixture("http-app");
    let dev = NitroDev::start(project.path());
    let port = dev.port;

    let index = dev.get("/");
    assert_eq!((index.status, index.text().as_str()), (200, "index"));
    assert_eq!(
        index.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let hello = dev.get("/api/hello");
    assert_eq!(hello.status, 200);
    assert!(
        hello
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(hello.json(), json!({"hello": "world"}));

    // Trailing slash ignored; params decoded.
    let user = dev.get("/users/42/");
    assert_eq!(user.json(), json!({"id": 42, "method": "GET"}));
    let bad = dev.get("/users/abc");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json(),
        json!({"error": true, "status": 400, "message": "`id` must be a number"})
    );

    // POST with a JSON body in and out.
    let created = http(
        port,
        "POST",
        "/users/7",
        &[("content-type", "application/json")],
        br#"{"name":"Ada"}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.json(), json!({"id": "7", "name": "Ada"}));
    let invalid = http(port, "POST", "/users/7", &[], b"{nope");
    assert_eq!(invalid.status, 400);
    assert!(
        invalid.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body")
    );

    // A method the path does not serve: 405 with Allow.
    let put = http(port, "PUT", "/users/7", &[], b"");
    assert_eq!(put.status, 405);
    let allow = put.header("allow").unwrap();
    for m in ["GET", "HEAD", "POST"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }

    // Catch-alls, named and unnamed; groups add no segment.
    assert_eq!(
        dev.get("/blog/2024/hello%20world").text(),
        "slug=2024/hello world"
    );
    assert_eq!(dev.get("/files/a/b/c.txt").text(), "rest=a/b/c.txt");
    assert_eq!(
        dev.get("/blog").status,
        404,
        "a catch-all needs one segment"
    );
    let about = dev.get("/about");
    // HTML from a route gets the dev client in `nitro dev` (issue #3).
    assert!(
        about
            .text()
            .starts_with("<h1>About</h1><script data-nitro-dev="),
        "{}",
        about.text()
    );
    assert!(
        about
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );

    // Query, headers and body reach the handler.
    let echo = http(
        port,
        "POST",
        "/echo?q=a+b%21",
        &[("x-test", "yes")],
        b"payload",
    );
    assert_eq!(
        echo.json(),
        json!({"method": "POST", "path": "/echo", "q": "a b!", "header": "yes", "body": "payload"})
    );

    // An error with a status and data, as JSON or HTML by Accept.
    let teapot = dev.get("/teapot");
    assert_eq!(teapot.status, 418);
    assert_eq!(
        teapot.json(),
        json!({"error": true, "status": 418, "message": "I am a teapot", "data": {"a": 1}})
    );
    let page = http(port, "GET", "/teapot", &[("accept", "text/html")], b"");
    assert_eq!(page.status, 418);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("I am a teapot"));

    // Static files from public/ (and a 404 JSON for a missing one without a renderer).
    assert_eq!(dev.get("/hello.txt").text(), "public file\n");
    let nothing = dev.get("/nothing/here");
    assert_eq!(nothing.status, 404);
    assert_eq!(nothing.json()["error"], true);
}

#[test]
fn a_panicking_route_answers_500_and_the_server_carries_on() {
    let project = Project::fixture("http-app");
    let dev = NitroDev::start(project.path());

    let res = dev.get("/boom");
    assert_eq!(res.status, 500);
    let body = res.json();
    assert_eq!(body["status"], 500);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("boom at /boom"),
        "dev shows the panic: {message}"
    );
    assert!(
        message.contains("routes/boom.rs"),
        "names the route file: {message}"
    );
    assert!(
        dev.wait_stderr("routes/boom.rs", Duration::from_secs(5)),
        "logged with the route file:\n{}",
        dev.stderr()
    );

    // The same route and others keep working.
    assert_eq!(dev.get("/boom?ok").text(), "fine");
    assert_eq!(dev.get("/").text(), "index");
    assert_eq!(dev.get("/boom").status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_reaches_the_error_hook_and_other_peers_carry_on() {
    let project = Project::fixture("http-app");
    let dev = NitroDev::start_async(project.path()).await;
    let url = dev.ws_url("/_ws");
    let mut a = ws_connect(&url).await;
    let a_open: serde_json::Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    let mut b = ws_connect(&url).await;
    let _b_open = next_text(&mut b).await;

    send_text(&mut a, "panic").await;
    let err: serde_json::Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("hook panicked on purpose"), "{msg}");
    assert!(msg.contains("routes/_ws.rs"), "{msg}");

    send_text(&mut a, "fail").await;
    let err: serde_json::Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(err["error"], "hook failed on purpose");

    // Both peers still work: A's next message is echoed and published to B.
    send_text(&mut a, "still here").await;
    assert_eq!(next_text(&mut a).await, r#"{"echo":"still here"}"#);
    let published: serde_json::Value = serde_json::from_str(&next_text(&mut b).await).unwrap();
    assert_eq!(published["from"], a_open["open"]);
    assert_eq!(published["text"], "still here");
    send_text(&mut b, "me too").await;
    assert_eq!(next_text(&mut b).await, r#"{"echo":"me too"}"#);
}

/// `routes/index.rs` has a handler and WebSocket hooks: `GET /` gets the page, an upgrade to
/// `/` the socket (Nitro's `defineWebSocketHandler(hooks, fallback)`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_route_at_the_root_also_answers_get() {
    let project = Project::fixture("http-app");
    let dev = NitroDev::start_async(project.path()).await;
    let mut socket = ws_connect(&dev.ws_url("/")).await;
    assert_eq!(next_text(&mut socket).await, "socket at /");
    send_text(&mut socket, "hi").await;
    assert_eq!(next_text(&mut socket).await, "echo hi");
    send_text(&mut socket, "peer").await;
    let peer: serde_json::Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(peer["remote_address"], "127.0.0.1");
    let port = peer["remote_port"].as_u64().unwrap();
    assert_eq!(peer["remote_addr"], format!("127.0.0.1:{port}"));
    assert_eq!(peer["protocol"], "");
    assert_eq!(peer["buffered_amount"], 0);

    let port = dev.port;
    let index = tokio::task::spawn_blocking(move || get(port, "/", &[]))
        .await
        .unwrap();
    assert_eq!((index.status, index.text().as_str()), (200, "index"));
}

/// HTTP routes list the open peers (all, or one namespace) and close them all with a code
/// and reason (crossws: `peers`, `closeAll`). Each peer is listed as soon as its `101` is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_route_lists_peers_and_closes_them() {
    let project = Project::fixture("http-app");
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let call = |method: &'static str| {
        tokio::task::spawn_blocking(move || http(port, method, "/api/peers", &[], b""))
    };
    let mut root_a = ws_connect(&dev.ws_url("/")).await;
    let mut root_b = ws_connect(&dev.ws_url("/")).await;
    let mut other = ws_connect(&dev.ws_url("/_ws")).await;

    let listed = call("GET").await.unwrap().json();
    assert_eq!(listed["peers"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["all"], 3, "{listed}");

    let closed = call("DELETE").await.unwrap().json();
    assert_eq!(closed["closed"], 3);
    for socket in [&mut root_a, &mut root_b, &mut other] {
        loop {
            match next_frame(socket, Duration::from_secs(10)).await {
                Some(WsMessage::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 4000);
                    assert_eq!(frame.reason.as_str(), "closed by api");
                    break;
                }
                Some(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}
