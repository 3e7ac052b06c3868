//! HTTP routes, errors, the renderer, and swapping the app.

use std::collections::HashMap;
use std::sync::Arc;

use nitro_router::{RouteTable, ScanOptions};
use nitro_runtime::module::RouteModule;
use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig, ServerError};

use crate::common::*;

fn echo_app(version: u32) -> App {
    app(
        &[
            "api/echo.rs",
            "users/[id].get.rs",
            "boom.rs",
            "explode.rs",
            "bad-header.rs",
            "bad-status.rs",
            "teapot.rs",
        ],
        vec![
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version,
            }),
            Arc::new(Echo {
                file: "routes/users/[id].get.rs",
                version,
            }),
            Arc::new(Faulty {
                file: "routes/boom.rs",
            }),
            Arc::new(Faulty {
                file: "routes/explode.rs",
            }),
            Arc::new(Faulty {
                file: "routes/bad-header.rs",
            }),
            Arc::new(Faulty {
                file: "routes/bad-status.rs",
            }),
            Arc::new(Faulty {
                file: "routes/teapot.rs",
            }),
        ],
    )
}

#[tokio::test]
async fn route_gets_the_whole_request() {
    let server = TestServer::start(echo_app(1)).await;
    let reply = request(
        server.addr,
        "POST",
        "/api/echo?x=1&y",
        &["User-Agent: raw"],
        b"hello body",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json = reply.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/api/echo");
    assert_eq!(json["query"], "x=1&y");
    assert_eq!(json["body"], "hello body");
    assert_eq!(json["user_agent"], "raw");
    assert!(json["remote"].as_str().unwrap().starts_with("127.0.0.1:"));

    let reply = get(server.addr, "/users/caf%C3%A9").await;
    assert_eq!(reply.json()["params"], serde_json::json!({"id": "café"}));
}

#[tokio::test]
async fn head_gets_no_body() {
    let server = TestServer::start(echo_app(1)).await;
    let mut conn = Conn::open(server.addr).await;
    let reply = conn
        .send(
            &format!("HEAD /users/1 HTTP/1.1\nHost: {}", server.addr),
            b"",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    // The connection is still usable: no stray body bytes.
    let reply = conn
        .send(
            &format!("GET /users/2 HTTP/1.1\nHost: {}", server.addr),
            b"",
        )
        .await;
    assert_eq!(reply.json()["params"]["id"], "2");
}

#[tokio::test]
async fn not_found_is_json_or_html_by_accept() {
    let server = TestServer::start(echo_app(1)).await;
    let reply = get(server.addr, "/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        reply.text(),
        r#"{"error":true,"status":404,"message":"Cannot find any route matching [GET] /nope"}"#
    );

    let reply = request(
        server.addr,
        "GET",
        "/nope",
        &["Accept: text/html,application/xhtml+xml,*/*;q=0.8"],
        b"",
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = reply.text();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<title>404 Not Found</title>"));
    assert!(page.contains("Cannot find any route matching [GET] /nope"));
}

#[tokio::test]
async fn method_not_allowed_lists_the_methods() {
    let server = TestServer::start(echo_app(1)).await;
    let reply = request(server.addr, "DELETE", "/users/42", &[], b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let json = reply.json();
    assert_eq!(json["status"], 405);
    assert!(json["message"].as_str().unwrap().contains("DELETE"));
}

#[tokio::test]
async fn a_panic_is_a_500_and_the_server_carries_on() {
    let server = TestServer::start(echo_app(1)).await;
    let mut conn = Conn::open(server.addr).await;
    let host = format!("Host: {}", server.addr);

    let reply = conn.send(&format!("GET /boom HTTP/1.1\n{host}"), b"").await;
    assert_eq!(reply.status, 500);
    let json = reply.json();
    assert_eq!(json["unhandled"], true);
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("routes/boom.rs"), "{message}");
    assert!(message.contains("boom"), "dev shows the panic: {message}");

    // Same connection: still fine.
    let reply = conn
        .send(&format!("GET /users/1 HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 200);

    // A real panic out of an in-process module.
    let reply = conn
        .send(&format!("GET /explode HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("real explosion"));
    let reply = conn
        .send(&format!("GET /users/1 HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn production_hides_unhandled_messages() {
    let server = TestServer::with(echo_app(1), |config| config.dev = false).await;
    let reply = get(server.addr, "/boom").await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.text(),
        r#"{"error":true,"status":500,"unhandled":true,"message":"Internal Server Error"}"#
    );
    let reply = request(server.addr, "GET", "/boom", &["Accept: text/html"], b"").await;
    assert!(!reply.text().contains("boom.rs"));
}

#[tokio::test]
async fn invalid_answers_are_500_naming_the_route() {
    let server = TestServer::start(echo_app(1)).await;
    let mut conn = Conn::open(server.addr).await;
    let host = format!("Host: {}", server.addr);
    let reply = conn
        .send(&format!("GET /bad-header HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 500);
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("routes/bad-header.rs") && message.contains("bad header"),
        "{message}"
    );

    let reply = conn
        .send(&format!("GET /bad-status HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("routes/bad-status.rs"));

    let reply = conn
        .send(&format!("GET /users/1 HTTP/1.1\n{host}"), b"")
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn route_errors_keep_status_and_data() {
    let server = TestServer::start(echo_app(1)).await;
    let reply = get(server.addr, "/teapot").await;
    assert_eq!(reply.status, 418);
    assert_eq!(
        reply.text(),
        r#"{"error":true,"status":418,"message":"I am a teapot","data":{"a":1}}"#
    );
}

#[tokio::test]
async fn failed_and_missing_routes() {
    let table = RouteTable::from_files(["broken.rs", "ghost.rs"], &ScanOptions::default()).unwrap();
    let routes = HashMap::from([(
        "routes/broken.rs".to_owned(),
        RouteEntry::Failed {
            message: "error[E0425]: cannot find value `x` in this scope".into(),
        },
    )]);
    let dev = TestServer::start(App::new(table.clone(), routes.clone())).await;
    let reply = get(dev.addr, "/broken").await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json()["message"],
        "route `routes/broken.rs` failed to build\n\nerror[E0425]: cannot find value `x` in this scope"
    );
    let reply = get(dev.addr, "/ghost").await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json()["message"],
        "route `routes/ghost.rs` is not loaded"
    );

    let prod = TestServer::with(App::new(table, routes), |config| config.dev = false).await;
    let reply = get(prod.addr, "/broken").await;
    assert_eq!(
        reply.json()["message"],
        "route `routes/broken.rs` failed to build"
    );
}

#[tokio::test]
async fn bodies_over_1_mib_are_refused() {
    let server = TestServer::start(echo_app(1)).await;
    let big = vec![b'x'; (1 << 20) + 1];
    let reply = request(server.addr, "POST", "/api/echo", &[], &big).await;
    assert_eq!(reply.status, 413);
    let ok = vec![b'x'; 1 << 20];
    let reply = request(server.addr, "POST", "/api/echo", &[], &ok).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn swapping_the_app_takes_effect_for_the_next_request() {
    let server = TestServer::start(echo_app(1)).await;
    let mut conn = Conn::open(server.addr).await;
    let head = format!("GET /api/echo HTTP/1.1\nHost: {}", server.addr);
    assert_eq!(conn.send(&head, b"").await.header("x-version"), Some("1"));
    server.handle.set_app(echo_app(2));
    assert_eq!(conn.send(&head, b"").await.header("x-version"), Some("2"));
    assert_eq!(server.handle.app().table.len(), 7);

    // A new table: a route appears, another disappears.
    server.handle.set_app(app(
        &["fresh.rs"],
        vec![Arc::new(Echo {
            file: "routes/fresh.rs",
            version: 3,
        }) as Arc<dyn RouteModule>],
    ));
    assert_eq!(conn.send(&head, b"").await.status, 404);
    let fresh = format!("GET /fresh HTTP/1.1\nHost: {}", server.addr);
    assert_eq!(conn.send(&fresh, b"").await.header("x-version"), Some("3"));
}

#[tokio::test]
async fn renderer_serves_index_html_for_unmatched_get() {
    let dir = temp_dir();
    let index = dir.path().join("index.html");
    write(index.clone(), "<h1>one</h1>");
    let server = TestServer::with(echo_app(1), |config| {
        config.index_html = Some(index.clone())
    })
    .await;

    // A browser's navigation (`Accept` names `text/html`) gets the page; curl and API
    // clients get the 404.
    let html = ["Accept: text/html,*/*;q=0.8"];
    assert_eq!(get(server.addr, "/some/page").await.status, 404);
    let reply = request(server.addr, "GET", "/some/page", &html, b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.text(), "<h1>one</h1>");

    // Re-read on every request.
    write(index.clone(), "<h1>two</h1>");
    let reply = request(server.addr, "GET", "/", &html, b"").await;
    assert_eq!(reply.text(), "<h1>two</h1>");

    let reply = request(server.addr, "HEAD", "/x", &html, b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("12"));

    // Routes still win; other methods get the 404.
    assert_eq!(get(server.addr, "/users/1").await.status, 200);
    assert_eq!(
        request(server.addr, "POST", "/some/page", &[], b"")
            .await
            .status,
        404
    );
    // Never another file, whatever the path.
    let reply = request(server.addr, "GET", "/../index.html", &html, b"").await;
    assert_eq!(reply.text(), "<h1>two</h1>");
    // A missing file is a 404, not the page, unless a browser navigates to it.
    assert_eq!(get(server.addr, "/missing.png").await.status, 404);
    let reply = request(server.addr, "GET", "/docs/v1.2", &html, b"").await;
    assert_eq!(reply.text(), "<h1>two</h1>");
}

#[tokio::test]
async fn a_bad_request_target_is_400() {
    let server = TestServer::start(echo_app(1)).await;
    let reply = request(server.addr, "OPTIONS", "*", &[], b"").await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn address_in_use_is_one_clear_line() {
    let first = TestServer::start(echo_app(1)).await;
    let mut config = ServerConfig::new(first.addr);
    config.dev = true;
    let err = Server::bind(config, Hub::new(), echo_app(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::AddrInUse { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "address `{}` is already in use: stop the other server or pick another port with --port",
            first.addr
        )
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let started = Arc::new(tokio::sync::Notify::new());
    let mut server = TestServer::start(app(
        &["api/echo.rs", "slow.rs"],
        vec![
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version: 1,
            }),
            Arc::new(Slow {
                started: started.clone(),
            }),
        ],
    ))
    .await;
    let mut conn = Conn::open(server.addr).await;
    let head = format!("GET /api/echo HTTP/1.1\nHost: {}", server.addr);
    assert_eq!(conn.send(&head, b"").await.status, 200);

    let addr = server.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    started.notified().await;
    server.stop().await;
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slow"));
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}
