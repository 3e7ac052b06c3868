//! `middleware/*.rs` end to end (issue 10): a real `nitro dev`, `nitro build` and `nitro start`
//! on a temporary project, real HTTP and WebSocket clients.

use std::time::Duration;

use crate::support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A bound for one rebuild (a cold crate on a busy 2-core machine).
const BUILD: Duration = Duration::from_secs(180);

/// Refuses every request without `x-token` with 401; otherwise records the user and starts
/// the `order` list.
const AUTH: &str = r#"use nitro::{Error, Request};

pub async fn handler(req: &mut Request) -> Result<(), Error> {
    let Some(token) = req.header("x-token") else {
        return Err(Error::unauthorized("missing x-token"));
    };
    let user = token.to_owned();
    req.set_context("user", user);
    req.set_context("order", vec!["1"]);
    Ok(())
}
"#;

/// Appends its name to `order` (a plain `fn`, taking `&mut Request`).
fn appender(name: &str) -> String {
    format!(
        r#"pub fn handler(req: &mut nitro::Request) {{
    let mut order: Vec<String> = req.context("order").unwrap_or_default();
    order.push("{name}".into());
    req.set_context("order", order);
}}
"#
    )
}

/// Only for `/api/**`: marks the request; and panics on `x-panic`.
const API_ONLY: &str = r#"pub const PATHS: &[&str] = &["/api/**"];

pub async fn handler(req: &mut nitro::Request) -> Option<nitro::Response> {
    if req.header("x-panic").is_some() {
        panic!("middleware boom");
    }
    if req.query("teapot").is_some() {
        return Some(nitro::Response::text("short and stout").with_status(418));
    }
    req.set_context("api", true);
    None
}
"#;

/// Counts its calls, so a test can see that a short-circuit kept the route from running.
const INDEX: &str = r#"use nitro::ws::Peer;
use nitro::{Request, Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

pub fn handler(req: &Request) -> Value {
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    json!({
        "user": req.context::<String>("user"),
        "order": req.context::<Vec<String>>("order"),
        "api": req.context::<bool>("api"),
        "calls": calls,
    })
}

pub fn open(peer: &Peer) {
    peer.send(json!({
        "user": peer.context::<String>("user"),
        "order": peer.context::<Vec<String>>("order"),
        "params": peer.context::<Value>("params"),
    }));
}
"#;

fn project() -> Project {
    Project::with_files(&[
        ("nitro.toml", "[renderer]\nstatic = true\n"),
        ("index.html", "<!doctype html><h1>the page</h1>\n"),
        ("public/file.txt", "a public file\n"),
        // Byte-wise file-name order: 1, 10, 2 (as Nitro: `10.` sorts before `2.`).
        ("middleware/1.auth.rs", AUTH),
        ("middleware/10.second.rs", &appender("10")),
        ("middleware/2.third.rs", &appender("2")),
        ("middleware/3.api.rs", API_ONLY),
        ("routes/index.rs", INDEX),
        ("routes/api/[name].rs", INDEX),
    ])
}

const TOKEN: (&str, &str) = ("x-token", "ada");

/// Every kind of response a middleware stands in front of: a route, a `public/` file, the
/// renderer's page, and a WebSocket upgrade.
fn assert_guarded(port: u16) {
    let html = ("accept", "text/html");
    for (path, headers) in [
        ("/", &[][..]),
        ("/file.txt", &[][..]),
        ("/some/page", &[html][..]),
        ("/api/x", &[][..]),
    ] {
        let res = get(port, path, headers);
        assert_eq!(res.status, 401, "{path}: {}", res.text());
        // JSON, or the HTML error page for a browser.
        assert!(res.text().contains("missing x-token"), "{path}");
    }
    // The upgrade gets the 401 instead of a 101.
    let host = format!("127.0.0.1:{port}");
    assert_eq!(raw_upgrade(port, "/", &host, None), 401);

    assert_eq!(get(port, "/file.txt", &[TOKEN]).text(), "a public file\n");
    let page = get(port, "/some/page", &[TOKEN, html]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("the page"), "{}", page.text());
}

async fn ws_with_token(port: u16, path: &str) -> Ws {
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-token", "bob".parse().unwrap());
    let (ws, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("connect timed out")
    .expect("upgrade with a token");
    assert_eq!(response.status(), 101);
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_guard_everything_in_file_name_order_and_hand_context_on() {
    let project = project();
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let stderr = dev.stderr();
    let line = stderr
        .lines()
        .find(|l| l.ends_with("middleware/1.auth.rs"))
        .unwrap_or_else(|| panic!("no summary line for the middleware: {stderr}"));
    assert!(line.starts_with("  MW   *  "), "{line}");

    tokio::task::spawn_blocking(move || assert_guarded(port))
        .await
        .unwrap();

    // The route sees the context, set in file-name order: 1, 10, 2.
    let body = dev.get_with("/", &[TOKEN]).json();
    assert_eq!(body["user"], "ada");
    assert_eq!(body["order"], serde_json::json!(["1", "10", "2"]));
    assert_eq!(body["api"], serde_json::Value::Null, "out of PATHS");
    // Only what went through ran the route: the refused requests never did.
    assert_eq!(body["calls"], 1);

    // `PATHS` scoping: the api middleware runs under /api only.
    let api = dev.get_with("/api/x", &[TOKEN]).json();
    assert_eq!(api["api"], true);
    let teapot = dev.get_with("/api/x?teapot", &[TOKEN]);
    assert_eq!(
        (teapot.status, teapot.text().as_str()),
        (418, "short and stout")
    );
    assert_eq!(dev.get_with("/?teapot", &[TOKEN]).status, 200);

    // A panic in a middleware: 500 naming its file, the route not called.
    let boom = dev.get_with("/api/x", &[TOKEN, ("x-panic", "1")]);
    assert_eq!(boom.status, 500);
    let message = boom.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("middleware/3.api.rs"), "{message}");
    assert!(message.contains("middleware boom"), "{message}");
    assert!(dev.stderr().contains("middleware/3.api.rs"));
    assert_eq!(dev.get_with("/api/y", &[TOKEN]).json()["calls"], 2);

    // The peer's context is the middleware's, beside the route params.
    let mut ws = ws_with_token(port, "/").await;
    let hello: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(hello["user"], "bob");
    assert_eq!(hello["order"], serde_json::json!(["1", "10", "2"]));
    assert_eq!(hello["params"], serde_json::json!({}));
    let mut ws = ws_with_token(port, "/api/room").await;
    let hello: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(hello["params"]["name"], "room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_middleware_keeps_its_last_good_build_and_shows_in_the_overlay() {
    let project = project();
    let dev = NitroDev::start_async(project.path()).await;
    let origin = format!("http://127.0.0.1:{}", dev.port);
    let mut dev_socket = ws_connect_with_origin(&dev.dev_socket_url(), &origin).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");

    let broken = AUTH.replace(
        "    let user = token.to_owned();\n",
        "    let user: u32 = token.to_owned();\n",
    );
    assert_ne!(broken, AUTH);
    project.write("middleware/1.auth.rs", &broken);
    let failed = "route `middleware/1.auth.rs` failed to build: still serving its last good build";
    assert!(
        tokio::task::block_in_place(|| dev.wait_stderr(failed, BUILD)),
        "{}",
        dev.stderr()
    );
    let error = next_dev_message(&mut dev_socket).await;
    assert_eq!(error["type"], "error", "{error}");
    let text = error["text"].as_str().unwrap();
    assert!(text.contains("middleware/1.auth.rs:7:"), "{text}");
    // The last good build still guards the app and sets the context.
    assert_eq!(dev.get("/").status, 401);
    assert_eq!(dev.get_with("/", &[TOKEN]).json()["user"], "ada");

    // A new middleware is picked up without a restart, and runs first (`0.` sorts first).
    let closed = "pub fn handler(_req: &nitro::Request) -> Option<(u16, &'static str)> { Some((503, \"closed\")) }\n";
    project.write("middleware/0.closed.rs", closed);
    assert!(
        tokio::task::block_in_place(|| dev.wait_stderr("added middleware/0.closed.rs", BUILD)),
        "{}",
        dev.stderr()
    );
    let res = dev.get("/file.txt");
    assert_eq!((res.status, res.text().as_str()), (503, "closed"));
    std::fs::remove_file(project.path().join("middleware/0.closed.rs")).unwrap();
    assert!(
        tokio::task::block_in_place(|| dev.wait_stderr("removed middleware/0.closed.rs", BUILD)),
        "{}",
        dev.stderr()
    );
    assert_eq!(dev.get("/file.txt").status, 401);

    // The fix: new code (a different message), the overlay clears.
    project.write(
        "middleware/1.auth.rs",
        &AUTH.replace("missing x-token", "who are you?"),
    );
    assert!(
        tokio::task::block_in_place(|| dev.wait_stderr("rebuilt middleware/1.auth.rs", BUILD)),
        "{}",
        dev.stderr()
    );
    loop {
        let message = next_dev_message(&mut dev_socket).await;
        if message["type"] == "ok" {
            break;
        }
    }
    assert_eq!(dev.get("/").json()["message"], "who are you?");
}

#[test]
fn nitro_build_ships_the_middleware_and_nitro_start_runs_them() {
    let project = project();
    nitro_build(project.path());
    let manifest = output_manifest(project.path());
    assert!(
        manifest_has(&manifest, "middleware/10.second.rs", "middleware"),
        "{manifest}"
    );

    // `nitro start` needs nothing but the output: the sources go.
    std::fs::remove_dir_all(project.path().join("middleware")).unwrap();
    let mut cmd = nitro();
    cmd.arg("start")
        .arg(project.path().join(".output"))
        .args(["--port", "0"]);
    let server = Server::start_output(cmd);
    assert_guarded(server.port);
    let body = server.get_with("/", &[TOKEN]).json();
    assert_eq!(body["order"], serde_json::json!(["1", "10", "2"]));
}

/// The `n`th Rust sample of the "Middleware" section of docs/routes.md, as written there.
fn doc_sample(n: usize) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find("\n## Middleware\n").unwrap()..];
    let section = &section[..section[1..].find("\n## ").unwrap()];
    let block = section.split("```rust\n").nth(n + 1).unwrap();
    block[..block.find("```").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_of_the_guide_work_as_written() {
    let (auth, me, api_key) = (doc_sample(0), doc_sample(1), doc_sample(2));
    assert!(auth.starts_with("// middleware/01.auth.rs\n"), "{auth}");
    assert!(me.starts_with("// routes/me.get.rs\n"), "{me}");
    assert!(
        api_key.starts_with("// middleware/02.api-key.rs\n"),
        "{api_key}"
    );
    let project = Project::with_files(&[
        ("middleware/01.auth.rs", &auth),
        ("middleware/02.api-key.rs", &api_key),
        ("routes/me.get.rs", &me),
        (
            "routes/admin.rs",
            "pub fn handler() -> &'static str { \"admin\" }\n",
        ),
    ]);
    let dev = NitroDev::start_async(project.path()).await;
    let bearer = ("authorization", "Bearer ada");

    let refused = dev.get("/me");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["message"], "sign in first");
    assert_eq!(dev.get_with("/me", &[bearer]).text(), "hello ada");
    // `PATHS`: the api key is asked for at /admin only.
    let no_key = dev.get_with("/admin", &[bearer]);
    assert_eq!(
        (no_key.status, no_key.text().as_str()),
        (403, "bad api key")
    );
    let with_key = dev.get_with("/admin", &[bearer, ("x-api-key", "secret")]);
    assert_eq!(with_key.text(), "admin");
}

/// A `cache` route rule answers after the middleware: a request the auth middleware refuses
/// gets the refusal, never the cached answer of a request it let through.
#[test]
fn cached_answers_stay_behind_the_middleware() {
    let project = Project::with_files(&[
        ("middleware/auth.rs", AUTH),
        ("routes/report.rs", INDEX),
        (
            "nitro.toml",
            "[route_rules.\"/report\"]\ncache = { max_age = 60 }\n",
        ),
    ]);
    let dev = NitroDev::start(project.path());
    let first = dev.get_with("/report", &[("x-token", "ada")]);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-nitro-cache"), Some("MISS"));
    let again = dev.get_with("/report", &[("x-token", "ada")]);
    assert_eq!(again.header("x-nitro-cache"), Some("HIT"));
    assert_eq!(again.json()["calls"], 1, "answered from the cache");

    let refused = dev.get("/report");
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.header("x-nitro-cache"), None);
}
