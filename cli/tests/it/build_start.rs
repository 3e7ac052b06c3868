//! `nitro init` → `nitro build` → copy `.output/` elsewhere → `nitro start` with no cargo on
//! `PATH`, for every template; plus the refusals, a broken build, broken outputs, precompressed
//! assets and graceful shutdown (issue #4).
//!
//! Projects are created in temp dirs outside the repository. Release builds share
//! `target/nitro-test-routes` with the other tests (`NITRO_TARGET_DIR`), so the dependencies
//! compile once per run; there are four release builds in all.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A temp folder outside the repository (the system's temp dir).
fn workspace() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nitro-issue4-")
        .tempdir()
        .unwrap()
}

fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn init(dir: &Path, template: &str) {
    run_ok(nitro().arg("init").arg(dir).args(["--template", template]));
}

fn build(dir: &Path) -> String {
    // A build listens on nothing: stray address settings must not fail it.
    let (stdout, stderr) = run_ok(
        nitro()
            .arg("build")
            .arg(dir)
            .env("PORT", "not-a-port")
            .env("HOST", "nowhere"),
    );
    assert!(stdout.contains("nitro start"), "{stdout}");
    assert!(
        stderr.contains("total"),
        "the build reports sizes: {stderr}"
    );
    stderr
}

/// Copies `project/.output` to a new place, as a deploy would.
fn deploy(project: &Path, to: &Path) -> PathBuf {
    let deployed = to.join("srv-app");
    copy_dir(&project.join(".output"), &deployed);
    deployed
}

/// `DEPLOYED/server/nitro start --port 0` in `cwd`, with an environment that has no cargo and
/// no rustc: only an empty folder on `PATH`.
fn start_without_cargo(deployed: &Path, cwd: &Path, args: &[&str]) -> Server {
    let empty = cwd.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(deployed.join("server/nitro"));
    cmd.arg("start")
        .args(["--port", "0"])
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", &empty)
        .env("NO_COLOR", "1");
    Server::start_output(cmd)
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("unexpected encoding {other}"),
    }
    out
}

/// Sleeps `?ms=` milliseconds (default 1500) after saying so on stderr.
const SLOW_ROUTE: &str = r#"
pub fn handler(req: &nitro::Request) -> &'static str {
    let ms = req.query("ms").and_then(|ms| ms.parse().ok()).unwrap_or(1500);
    eprintln!("slow: started");
    std::thread::sleep(std::time::Duration::from_millis(ms));
    "done"
}
"#;

const BOOM_ROUTE: &str = r#"
pub fn handler() -> String {
    panic!("a secret message");
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_template_runs_from_a_copied_output_without_cargo() {
    let work = workspace();
    let project = work.path().join("chat");
    init(&project, "websocket");
    // Beyond the template: assets to precompress (or not), a slow route and a panicking one.
    let big_js = "export const greeting = 'hello from nitro';\n".repeat(60);
    std::fs::write(project.join("public/app.js"), &big_js).unwrap();
    std::fs::write(project.join("public/app.js.map"), "{}".repeat(800)).unwrap();
    std::fs::write(project.join("public/small.css"), "body{margin:0}").unwrap();
    std::fs::write(project.join("routes/slow.rs"), SLOW_ROUTE).unwrap();
    std::fs::write(project.join("routes/boom.rs"), BOOM_ROUTE).unwrap();
    build(&project);

    let out = project.join(".output");
    for present in [
        "public/app.js.br",
        "public/app.js.gz",
        "nitro.json",
        "index.html",
    ] {
        assert!(out.join(present).is_file(), "{present}");
    }
    for absent in [
        "public/app.js.map.br",
        "public/app.js.map.gz",
        "public/small.css.gz",
        "public/favicon.svg.br",
    ] {
        assert!(!out.join(absent).exists(), "{absent}");
    }

    // The manifest: date, version, ABI, the routes with their libraries' hashes, the config.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("nitro.json")).unwrap()).unwrap();
    assert_eq!(manifest["nitro"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(manifest["date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(manifest["config"]["websocket"], true);
    assert_eq!(manifest["index_html"], "index.html");
    let routes = manifest["routes"].as_array().unwrap();
    let files: Vec<&str> = routes.iter().map(|r| r["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "routes/_ws.rs",
            "routes/boom.rs",
            "routes/slow.rs",
            "routes/sse.get.rs",
            "routes/sse.post.rs"
        ]
    );
    for route in routes {
        let library = out.join(route["library"].as_str().unwrap());
        assert_eq!(
            nitro_cli::output::manifest::sha256_file(&library).unwrap(),
            route["sha256"].as_str().unwrap()
        );
    }
    assert_eq!(routes[0]["kind"], "websocket");
    assert_eq!(routes[0]["pattern"], "/_ws");

    let deployed = deploy(&project, work.path());
    std::fs::remove_dir_all(&project).unwrap(); // no sources either
    let server = tokio::task::spawn_blocking({
        let deployed = deployed.clone();
        let cwd = work.path().to_path_buf();
        move || start_without_cargo(&deployed, &cwd, &[])
    })
    .await
    .unwrap();
    let port = server.port;

    // The page (for a browser: `Accept` names `text/html`) and the assets, as under dev.
    let page = server.get_with("/", &[("accept", "text/html")]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("_ws"), "the chat page");
    let icon = server.get_with("/favicon.svg", &[]);
    assert_eq!(icon.status, 200);
    assert_eq!(
        icon.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    let ws_plain = server.get_with("/_ws", &[]);
    assert_eq!(ws_plain.status, 426);
    assert_eq!(ws_plain.text(), "WebSocket upgrade is required.");

    // Precompressed assets: the variant the client accepts, with Vary and per-variant ETags.
    for (accept, encoding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let r = server.get_with("/app.js", &[("Accept-Encoding", accept)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some(encoding), "{accept}");
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/javascript")
                || r.header("content-type")
                    .unwrap()
                    .starts_with("application/javascript"),
            "{:?}",
            r.header("content-type")
        );
        assert_eq!(decode(encoding, &r.body), big_js.as_bytes());
        let etag = r.header("etag").unwrap().to_owned();
        assert!(etag.starts_with('"'), "a strong ETag: {etag}");
        assert!(r.header("last-modified").is_some());
        let again = server.get_with(
            "/app.js",
            &[("Accept-Encoding", accept), ("If-None-Match", &etag)],
        );
        assert_eq!(again.status, 304, "{accept}");
        assert!(again.body.is_empty());
    }
    let plain = server.get_with("/app.js", &[]);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert_eq!(plain.body, big_js.as_bytes());
    let map = server.get_with("/app.js.map", &[("Accept-Encoding", "br")]);
    assert_eq!(map.status, 200);
    assert_eq!(map.header("content-encoding"), None);

    // Production error bodies: a panic's message stays in the log.
    let boom = server.get_with("/boom", &[]);
    assert_eq!(boom.status, 500);
    assert!(!boom.text().contains("secret"), "{}", boom.text());
    assert_eq!(boom.json()["status"], 500);
    assert_eq!(server.get_with("/missing.png", &[]).status, 404);

    // The seed chat, frame for frame.
    let url = format!("ws://127.0.0.1:{port}/_ws");
    let mut a = ws_connect(&url).await;
    let a_id = welcome_id(&next_text(&mut a).await);
    let mut b = ws_connect(&url).await;
    let b_id = welcome_id(&next_text(&mut b).await);
    assert_eq!(
        next_text(&mut a).await,
        format!(r#"{{"user":"server","message":"{b_id} 加入了！"}}"#)
    );
    send_text(&mut a, "hello").await;
    let expected = format!(r#"{{"user":"{a_id}","message":"hello"}}"#);
    assert_eq!(next_text(&mut a).await, expected);
    assert_eq!(next_text(&mut b).await, expected);
    send_text(&mut b, "ping").await;
    assert_eq!(
        next_text(&mut b).await,
        r#"{"user":"server","message":"pong"}"#
    );
    drop(b);
    assert_eq!(
        next_text(&mut a).await,
        format!(r#"{{"user":"server","message":"{b_id} 离开了！"}}"#)
    );

    // The request log.
    assert!(
        server.wait_stderr("GET /favicon.svg 200", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );

    // SIGTERM with an open WebSocket and a request in flight.
    let slow = std::thread::spawn(move || http(port, "GET", "/slow", &[], b""));
    assert!(
        server.wait_stderr("slow: started", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    server.signal("TERM");
    let response = slow.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "done");
    let close = loop {
        match next_frame(&mut a, Duration::from_secs(30)).await {
            Some(WsMessage::Close(frame)) => break frame,
            Some(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    let status = tokio::task::spawn_blocking(move || {
        let mut server = server;
        let status = server.wait_exit(Duration::from_secs(60));
        (status, server.stderr())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{status:?}");
    assert!(status.1.contains("stopped"), "{}", status.1);

    // The deadline: a request still running when NITRO_SHUTDOWN_TIMEOUT is over does not keep
    // the process alive.
    let cwd = work.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let empty = cwd.join("empty-path");
        let mut cmd = Command::new(deployed.join("server/nitro"));
        cmd.args(["start", "--port", "0"])
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", &empty)
            .env("NITRO_SHUTDOWN_TIMEOUT", "100ms");
        let mut server = Server::start_output(cmd);
        let port = server.port;
        let _slow = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| http(port, "GET", "/slow?ms=20000", &[], b""));
        });
        assert!(
            server.wait_stderr("slow: started", Duration::from_secs(30)),
            "{}",
            server.stderr()
        );
        server.signal("TERM");
        assert!(server.wait_exit(Duration::from_secs(60)).success());
        assert!(
            server.stderr().contains("still busy after 0.1 s"),
            "{}",
            server.stderr()
        );

        // A second signal exits at once.
        let mut cmd = Command::new(deployed.join("server/nitro"));
        cmd.args(["start", "--port", "0"])
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", &empty);
        let mut server = Server::start_output(cmd);
        server.force_exit_with_a_request_in_flight("/slow?ms=20000");
        assert!(
            server.stderr().contains("second signal"),
            "{}",
            server.stderr()
        );
    })
    .await
    .unwrap();
}

#[test]
fn api_template_runs_from_a_copied_output_without_cargo() {
    let work = workspace();
    let project = work.path().join("api");
    init(&project, "api");
    build(&project);
    let deployed = deploy(&project, work.path());
    // The output given as an argument, from anywhere.
    let server = start_without_cargo(&deployed, work.path(), &[deployed.to_str().unwrap()]);
    let port = server.port;

    check_api(port);
    assert!(
        server.wait_stderr("POST /api/users 201", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
}

/// An `async fn` handler that calls an HTTP API (issue 9): `nitro::Result<Json<User>>` from a
/// request to another server, over tokio's `TcpStream`, with the client address kept in
/// `nitro::state`, whose drop at exit leaves a marker file.
const ASYNC_API_ROUTE: &str = r#"
use nitro::{Error, Json, Request, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize, Serialize)]
pub struct User {
    id: u32,
    name: String,
}

struct Api {
    addr: String,
    marker: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        // Where a pool would close its connections, which takes a moment: `nitro start` drops
        // route state on exit and waits for it.
        std::thread::sleep(std::time::Duration::from_millis(600));
        let _ = std::fs::write(&self.marker, "state dropped");
    }
}

pub async fn handler(req: Request) -> Result<Json<User>> {
    let addr = req.query("api").ok_or_else(|| Error::bad_request("`api` is missing"))?;
    let marker = req.query("marker").unwrap_or_default();
    let api = nitro::state(|| async move { Api { addr, marker } }).await;
    let id = req.param("id").unwrap_or("0");
    let io = |e: std::io::Error| Error::internal(format!("the user API failed: {e}"));
    let mut stream = tokio::net::TcpStream::connect(&api.addr).await.map_err(io)?;
    let request = format!("GET /users/{id} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.map_err(io)?;
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    let user: User = serde_json::from_str(body).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Json(user))
}
"#;

/// A user API on 127.0.0.1 (one thread, `Connection: close`): `GET /users/N` answers
/// `{"id":N,"name":"Ada"}`.
fn user_api() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let id: u32 = line
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.strip_prefix("/users/"))
                .and_then(|id| id.parse().ok())
                .unwrap_or(0);
            let body = format!("{{\"id\":{id},\"name\":\"Ada\"}}");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn an_async_route_calling_an_http_api_runs_from_a_built_output() {
    let work = workspace();
    let project = work.path().join("async");
    init(&project, "minimal");
    std::fs::write(
        project.join("nitro.toml"),
        "[dependencies]\n\
         serde = { version = \"1\", features = [\"derive\"] }\n\
         serde_json = \"1\"\n\
         tokio = { version = \"1\", features = [\"net\", \"io-util\"] }\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.join("routes/users")).unwrap();
    std::fs::write(project.join("routes/users/[id].get.rs"), ASYNC_API_ROUTE).unwrap();
    build(&project);
    let deployed = deploy(&project, work.path());
    let mut server = start_without_cargo(&deployed, work.path(), &[deployed.to_str().unwrap()]);

    let api = user_api();
    let marker = work.path().join("state-dropped.txt");
    let user = get(
        server.port,
        &format!("/users/7?api=127.0.0.1:{api}&marker={}", marker.display()),
        &[],
    );
    assert_eq!(user.status, 200, "{}", user.text());
    assert_eq!(user.json(), serde_json::json!({ "id": 7, "name": "Ada" }));
    // The sync route of the template still answers beside it.
    assert_eq!(get(server.port, "/", &[]).text(), "Hello from nitro!");

    // SIGTERM: after the drain, the route's state is dropped before the process exits.
    assert!(!marker.exists());
    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        server.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "state dropped",
        "{}",
        server.stderr()
    );
}

/// What the api template answers, under `dev` and under `start` alike.
fn check_api(port: u16) {
    let index = get(port, "/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.json()["routes"][1], "POST /api/users");
    let ada = get(port, "/api/users/1", &[]);
    assert_eq!(ada.status, 200);
    assert_eq!(ada.json(), serde_json::json!({ "id": 1, "name": "Ada" }));
    let bad = get(port, "/api/users/abc", &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["message"], "`id` must be a number");
    let missing = get(port, "/api/users/9", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "there is no user 9");
    assert_eq!(missing.json()["data"], serde_json::json!({ "id": 9 }));
    let created = http(
        port,
        "POST",
        "/api/users",
        &[("Content-Type", "application/json")],
        br#"{"name":"Grace"}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(
        created.json(),
        serde_json::json!({ "id": 4, "name": "Grace" })
    );
    let wrong = http(port, "POST", "/api/users", &[], b"{\"nom\":1}");
    assert_eq!(wrong.status, 400);
    assert_eq!(http(port, "DELETE", "/api/users/1", &[], b"").status, 405);
    let nothing = get(port, "/nope", &[]);
    assert_eq!(nothing.status, 404);
    assert_eq!(
        nothing.json()["message"],
        "Cannot find any route matching [GET] /nope"
    );
}

#[test]
fn api_example_answers_the_same_under_dev() {
    let project = Project::example("api");
    let dev = NitroDev::start(project.path());
    check_api(dev.port);
}

#[test]
fn minimal_template_and_a_broken_build_that_keeps_the_old_output() {
    let work = workspace();
    let project = work.path().join("min");
    init(&project, "minimal");
    build(&project);
    let deployed = deploy(&project, work.path());
    {
        // `-q`: no request log.
        let server = start_without_cargo(&deployed, work.path(), &["-q"]);
        let hello = server.get_with("/", &[]);
        assert_eq!(hello.status, 200);
        assert_eq!(hello.text(), "Hello from nitro!");
        assert_eq!(server.get_with("/other", &[]).status, 404);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !server.stderr().contains("GET / 200"),
            "{}",
            server.stderr()
        );
    }

    let manifest = std::fs::read(project.join(".output/nitro.json")).unwrap();
    std::fs::write(
        project.join("routes/index.rs"),
        "pub fn handler() -> &'static str {\n    42\n}\n",
    )
    .unwrap();
    let out = nitro().arg("build").arg(&project).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[E0308]"),
        "rustc's diagnostics: {stderr}"
    );
    assert!(stderr.contains("routes/index.rs:2:5"), "{stderr}");
    assert!(
        stderr.contains(
            "error: route `routes/index.rs` did not compile: the previous `.output/` is unchanged"
        ),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(project.join(".output/nitro.json")).unwrap(),
        manifest
    );
    let leftovers: Vec<String> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".output."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The old output still serves, found from the project folder.
    let mut cmd = nitro();
    cmd.arg("start").arg(&project).args(["--port", "0"]);
    let server = Server::start_output(cmd);
    assert_eq!(server.get_with("/", &[]).text(), "Hello from nitro!");
}

/// Runs `nitro start DIR` and returns its stderr, asserting it failed with status 1.
fn start_fails(dir: &Path) -> String {
    let out = nitro()
        .arg("start")
        .arg(dir)
        .args(["--port", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    stderr
}

fn manifest_text(library: &str, sha256: &str) -> String {
    serde_json::json!({
        "format": 1,
        "date": "2026-11-26T00:00:00Z",
        "nitro": { "version": env!("CARGO_PKG_VERSION"), "abi": nitro_abi::NITRO_ABI_VERSION },
        "server": "server/nitro",
        "public_dir": null,
        "index_html": null,
        "routes": [{
            "file": "routes/index.rs",
            "pattern": "/",
            "kind": "http",
            "method": null,
            "library": library,
            "sha256": sha256,
        }],
        "config": { "renderer_static": true, "websocket": true, "dependencies": {} },
        "commands": { "start": "./server/nitro start" },
    })
    .to_string()
}

#[test]
fn start_refuses_a_missing_or_corrupted_output() {
    let work = workspace();
    let missing = work.path().join("nothing");
    let e = start_fails(&missing);
    assert!(
        e.contains("is not a built output: it does not exist"),
        "{e}"
    );

    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = start_fails(&empty);
    assert!(e.contains("it has no `nitro.json`"), "{e}");

    let out = work.path().join("out");
    std::fs::create_dir_all(out.join("server/routes")).unwrap();
    std::fs::write(out.join("nitro.json"), "{\"format\": 1, \"routes\": [").unwrap();
    let e = start_fails(&out);
    assert!(
        e.contains("nitro.json` is corrupted: not valid JSON"),
        "{e}"
    );

    let library = "server/routes/index.so";
    // Written by a nitro that speaks another route ABI.
    let mut other: serde_json::Value = serde_json::from_str(&manifest_text(library, "00")).unwrap();
    other["nitro"] = serde_json::json!({ "version": "9.9.9", "abi": 999 });
    std::fs::write(out.join("nitro.json"), other.to_string()).unwrap();
    let e = start_fails(&out);
    assert!(
        e.contains("was written by nitro 9.9.9 for route ABI 999"),
        "{e}"
    );

    std::fs::write(out.join("nitro.json"), manifest_text(library, "00")).unwrap();
    let e = start_fails(&out);
    assert!(
        e.contains("server/routes/index.so` (for `routes/index.rs`) is missing"),
        "{e}"
    );

    std::fs::write(out.join(library), b"not a library").unwrap();
    let e = start_fails(&out);
    assert!(e.contains("does not match the manifest"), "{e}");

    // A partial copy: the manifest names a public folder that is not there.
    let mut partial: serde_json::Value =
        serde_json::from_str(&manifest_text(library, "00")).unwrap();
    partial["public_dir"] = "public".into();
    std::fs::write(out.join("nitro.json"), partial.to_string()).unwrap();
    let e = start_fails(&out);
    assert!(
        e.contains("public` is missing: `nitro.json` lists it as the public folder"),
        "{e}"
    );

    // The right hash, but not a route library: the loader's error, still at start.
    let sha = nitro_cli::output::manifest::sha256_file(&out.join(library)).unwrap();
    std::fs::write(out.join("nitro.json"), manifest_text(library, &sha)).unwrap();
    let e = start_fails(&out);
    assert!(
        e.contains("route `routes/index.rs` cannot be loaded from"),
        "{e}"
    );
}

#[test]
fn init_refuses_a_non_empty_folder_and_force_keeps_what_exists() {
    let work = workspace();
    let dir = work.path().join("app");
    std::fs::create_dir_all(dir.join("routes")).unwrap();
    std::fs::write(dir.join("nitro.toml"), "# mine\n").unwrap();
    std::fs::write(dir.join("routes/_ws.rs"), "// mine\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();

    let out = nitro().arg("init").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(!dir.join("index.html").exists(), "nothing written");

    let (_, stderr) = run_ok(nitro().arg("init").arg(&dir).arg("--force"));
    assert!(stderr.contains("kept `"), "{stderr}");
    assert!(
        stderr.contains("nitro.toml`: it already exists"),
        "{stderr}"
    );
    assert!(stderr.contains("_ws.rs`: it already exists"), "{stderr}");
    for (file, content) in [
        ("nitro.toml", "# mine\n"),
        ("routes/_ws.rs", "// mine\n"),
        ("notes.txt", "mine"),
    ] {
        assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), content);
    }
    for written in [
        "index.html",
        "public/favicon.svg",
        ".gitignore",
        "README.md",
    ] {
        assert!(dir.join(written).is_file(), "{written}");
    }
}
