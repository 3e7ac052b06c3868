//! `nitro dev` hot reload, end to end (issue #3): the real binary on a temporary project, real
//! file edits, real WebSocket and HTTP clients. Waits are bounded; nothing here asserts on
//! time (the numbers are in the bench: `cargo run --release -p nitro-bench -- reload`).

use std::time::Duration;

use crate::support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A bound for one rebuild (a cold route crate on a busy 2-core machine).
const BUILD: Duration = Duration::from_secs(180);

async fn wait_count(dev: &NitroDev, needle: &'static str, n: usize) {
    // `NitroDev` is not `Send` across the blocking pool; poll here.
    let deadline = tokio::time::Instant::now() + BUILD;
    while tokio::time::Instant::now() < deadline {
        if dev.stderr_count(needle) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "stderr never had {n} × {needle:?}; stderr:\n{}",
        dev.stderr()
    );
}

/// Saves like an editor that writes a temporary file and renames it over the original.
fn save_by_rename(project: &Project, rel: &str, content: &str) {
    let path = project.path().join(rel);
    let tmp = path.with_extension("rs.nitro-test-tmp~");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn ws_source(project: &Project) -> String {
    std::fs::read_to_string(project.path().join("routes/_ws.rs")).unwrap()
}

async fn ping(ws: &mut Ws) -> String {
    send_text(ws, "ping").await;
    chat_frame(&next_text(ws).await).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reaches_open_and_new_connections_without_reconnecting() {
    let project = Project::example("websocket");
    let dev = NitroDev::start_async(project.path()).await;
    let url = dev.ws_url("/_ws");

    let mut a = ws_connect(&url).await;
    let (_, welcome) = chat_frame(&next_text(&mut a).await);
    assert!(welcome.starts_with("欢迎 "), "{welcome}");
    assert_eq!(ping(&mut a).await, "pong");
    let origin = format!("http://127.0.0.1:{}", dev.port);
    let mut dev_socket = ws_connect_with_origin(&dev.dev_socket_url(), &origin).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");

    let source = ws_source(&project).replace("\"pong\"", "\"pong, reloaded\"");
    project.write("routes/_ws.rs", &source);
    wait_count(&dev, "rebuilt routes/_ws.rs in ", 1).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");

    // The same socket, never reconnected, runs the new code; so does a new one.
    assert_eq!(ping(&mut a).await, "pong, reloaded");
    let mut b = ws_connect(&url).await;
    let _welcome = next_text(&mut b).await;
    assert_eq!(ping(&mut b).await, "pong, reloaded");
    // A's topics survived the reload: it hears B's message.
    let _joined = next_text(&mut a).await;
    send_text(&mut b, "hi").await;
    let _echo = next_text(&mut b).await;
    assert_eq!(chat_frame(&next_text(&mut a).await).1, "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mode_closes_open_peers_with_1012() {
    let project = Project::example("websocket");
    project.write(
        "nitro.toml",
        "[renderer]\nstatic = true\n[dev]\nwebsocket_reload = \"restart\"\n",
    );
    let dev = NitroDev::start_async(project.path()).await;
    let url = dev.ws_url("/_ws");
    let mut a = ws_connect(&url).await;
    let _welcome = next_text(&mut a).await;

    let source = ws_source(&project).replace("\"pong\"", "\"pong after restart\"");
    project.write("routes/_ws.rs", &source);
    let close = loop {
        match next_frame(&mut a, BUILD).await {
            Some(WsMessage::Close(frame)) => break frame,
            Some(WsMessage::Text(t)) => panic!("unexpected frame {t}"),
            Some(_) => continue,
            None => panic!("no close frame; stderr:\n{}", dev.stderr()),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1012);
    wait_count(&dev, "(closed 1 WebSocket connection with 1012)", 1).await;

    let mut b = ws_connect(&url).await;
    let _welcome = next_text(&mut b).await;
    assert_eq!(ping(&mut b).await, "pong after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_last_good_build_and_reports_the_error() {
    let project = Project::example("websocket");
    let dev = NitroDev::start_async(project.path()).await;
    let mut a = ws_connect(&dev.ws_url("/_ws")).await;
    let _welcome = next_text(&mut a).await;
    let mut dev_socket = ws_connect(&dev.dev_socket_url()).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");

    let good = ws_source(&project);
    let broken = good.replace(
        "pub async fn message(peer: Peer, message: Message) {\n",
        "pub async fn message(peer: Peer, message: Message) {\n    let oops: u32 = \"not a number\";\n",
    );
    assert_ne!(good, broken);
    save_by_rename(&project, "routes/_ws.rs", &broken);
    wait_count(&dev, "route `routes/_ws.rs` failed to build", 1).await;

    // Terminal: rustc's diagnostic, pointing at the user's file (line 19: the inserted one).
    let stderr = dev.stderr();
    assert!(stderr.contains("error[E0308]"), "{stderr}");
    assert!(stderr.contains("--> routes/_ws.rs:19:"), "{stderr}");
    assert!(
        stderr.contains("still serving its last good build"),
        "{stderr}"
    );
    assert!(!stderr.contains("nitro_route_"), "{stderr}");
    // The dev socket: the same error, as text and as HTML.
    let error = next_dev_message(&mut dev_socket).await;
    assert_eq!(error["type"], "error", "{error}");
    let text = error["text"].as_str().unwrap();
    assert!(text.contains("routes/_ws.rs:19:"), "{text}");
    assert!(!text.contains('\x1b'));
    assert!(
        error["html"]
            .as_str()
            .unwrap()
            .contains("routes/_ws.rs:19:")
    );
    assert_eq!(error["locations"][0], "routes/_ws.rs:19:21");
    // The old code still serves the open connection.
    assert_eq!(ping(&mut a).await, "pong");
    // A page opened now gets the overlay at once.
    let mut late = ws_connect(&dev.dev_socket_url()).await;
    assert_eq!(next_dev_message(&mut late).await["type"], "error");

    // The fix: new code, the error goes away.
    save_by_rename(
        &project,
        "routes/_ws.rs",
        &good.replace("\"pong\"", "\"pong, fixed\""),
    );
    wait_count(&dev, "rebuilt routes/_ws.rs in ", 1).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");
    assert_eq!(ping(&mut a).await, "pong, fixed");
}

/// An async route with a background task: `tokio::spawn`ed on its first call.
const TICKER: &str = r#"
static TICKER: std::sync::Once = std::sync::Once::new();

pub async fn handler() -> &'static str {
    // A background task of this build: it must stop when the build is replaced.
    TICKER.call_once(|| {
        tokio::spawn(async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    });
    "VERSION"
}
"#;

/// The threads of process `pid` whose names start with `prefix`.
fn threads(pid: u32, prefix: &str) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Issue 9: each build of an async route has its own runtime (a thread named
/// `nitro-tick-g<n>`); once an edit replaces the build, the old runtime stops with its
/// background task, so ten edits do not leave ten tickers behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_edit_of_an_async_route_stops_the_old_builds_runtime() {
    let project = small_project();
    let manifest = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
    project.write(
        "nitro.toml",
        &format!(
            "{manifest}\n[dependencies]\ntokio = {{ version = \"1\", features = [\"time\"] }}\n"
        ),
    );
    project.write("routes/tick.rs", &TICKER.replace("VERSION", "v1"));
    let dev = NitroDev::start_async(project.path()).await;
    let json = [("accept", "application/json")];
    assert_eq!(http(dev.port, "GET", "/tick", &json, b"").text(), "v1");

    let mut previous = std::collections::BTreeSet::new();
    for version in 1..=3 {
        if version > 1 {
            save_by_rename(
                &project,
                "routes/tick.rs",
                &TICKER.replace("VERSION", &format!("v{version}")),
            );
            wait_count(&dev, "rebuilt routes/tick.rs in ", version - 1).await;
            let reply = http(dev.port, "GET", "/tick", &json, b"");
            assert_eq!(reply.text(), format!("v{version}"));
        }
        // One runtime thread: this build's, never the one before.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = threads(dev.pid(), "nitro-tick-g");
            if now.len() == 1 && now.is_disjoint(&previous) {
                previous = now;
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "after edit {version}: runtime threads {now:?} (the previous build's: {previous:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn small_project() -> Project {
    let project = Project::example("websocket");
    project.write(
        "routes/hello.rs",
        "pub fn handler() -> &'static str {\n    \"hello\"\n}\n",
    );
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_can_be_added_renamed_and_deleted_and_pages_reload() {
    let project = small_project();
    let dev = NitroDev::start_async(project.path()).await;
    let json = [("accept", "application/json")];
    let mut dev_socket = ws_connect(&dev.dev_socket_url()).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");

    // Add.
    project.write(
        "routes/api/time.rs",
        "pub fn handler() -> &'static str {\n    \"time\"\n}\n",
    );
    wait_count(&dev, "added routes/api/time.rs (ANY /api/time)", 1).await;
    let time = http(dev.port, "GET", "/api/time", &json, b"");
    assert_eq!((time.status, time.text().as_str()), (200, "time"));

    // Rename: the table follows.
    std::fs::rename(
        project.path().join("routes/api/time.rs"),
        project.path().join("routes/api/clock.get.rs"),
    )
    .unwrap();
    wait_count(&dev, "added routes/api/clock.get.rs (GET /api/clock)", 1).await;
    wait_count(&dev, "removed routes/api/time.rs", 1).await;
    // `/api/time` is a page URL: a GET now gets the renderer's page; anything else a 404.
    assert_ne!(
        http(dev.port, "GET", "/api/time", &json, b"").text(),
        "time"
    );
    assert_eq!(http(dev.port, "POST", "/api/time", &json, b"").status, 404);
    let clock = http(dev.port, "GET", "/api/clock", &json, b"");
    assert_eq!((clock.status, clock.text().as_str()), (200, "time"));

    // Delete: gone.
    assert_eq!(http(dev.port, "POST", "/api/clock", &json, b"").status, 405);
    std::fs::remove_file(project.path().join("routes/api/clock.get.rs")).unwrap();
    wait_count(&dev, "removed routes/api/clock.get.rs", 1).await;
    assert_eq!(http(dev.port, "POST", "/api/clock", &json, b"").status, 404);
    assert_ne!(
        http(dev.port, "GET", "/api/clock", &json, b"").text(),
        "time"
    );
    assert_eq!(
        http(dev.port, "GET", "/hello", &json, b"").text(),
        "hello",
        "other routes are untouched"
    );

    // A route that never built answers 500 with its compile error, JSON or HTML.
    project.write(
        "routes/broken.rs",
        "pub fn handler() -> u32 {\n    \"no\"\n}\n",
    );
    wait_count(&dev, "route `routes/broken.rs` failed to build", 1).await;
    let broken = http(dev.port, "GET", "/broken", &json, b"");
    assert_eq!(broken.status, 500);
    let message = broken.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("routes/broken.rs:2:5"), "{message}");
    let page = http(dev.port, "GET", "/broken", &[("accept", "text/html")], b"");
    assert_eq!(page.status, 500);
    assert!(page.text().contains("routes/broken.rs:2:5"));
    assert!(
        page.text().contains("/__nitro/dev"),
        "error pages get the dev client"
    );
    // Skip the messages of the builds so far, up to the error.
    loop {
        if next_dev_message(&mut dev_socket).await["type"] == "error" {
            break;
        }
    }

    // index.html and public/ → reload.
    let html = std::fs::read_to_string(project.path().join("index.html")).unwrap();
    project.write(
        "index.html",
        &html.replace("</body>", "<p>edited</p></body>"),
    );
    let reload = loop {
        let message = next_dev_message(&mut dev_socket).await;
        if message["type"] == "reload" {
            break message;
        }
    };
    assert_eq!(reload["reason"], "index.html");
    project.write("public/app.css", "body { color: red }\n");
    let reload = loop {
        let message = next_dev_message(&mut dev_socket).await;
        if message["type"] == "reload" {
            break message;
        }
    };
    assert_eq!(reload["reason"], "public/app.css");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_quick_saves_make_one_or_two_builds() {
    // A target folder of its own: the other tests share one for their route crates, and when
    // one of them rebuilds the `nitro` crate there (other features, other dependencies), cargo
    // rightly rebuilds this project's routes too, which the "fresh" check below must not see.
    let project = small_project();
    project.write(
        "routes/ten-saves.rs",
        "pub fn handler() -> &'static str {\n    \"hello 0\"\n}\n",
    );
    let target = project.path().join(".target");
    let mut cmd = nitro();
    cmd.arg("dev")
        .arg(project.path())
        .args(["--port", "0"])
        .env("NITRO_TARGET_DIR", &target)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let dev = tokio::task::spawn_blocking(move || {
        wait_for_url(cmd.spawn().unwrap(), "nitro dev", Duration::from_secs(600))
    })
    .await
    .unwrap();
    let json = [("accept", "application/json")];
    let mut dev_socket = ws_connect(&dev.dev_socket_url()).await;
    for i in 1..=10 {
        project.write(
            "routes/ten-saves.rs",
            &format!("pub fn handler() -> &'static str {{\n    \"hello {i}\"\n}}\n"),
        );
    }
    let deadline = tokio::time::Instant::now() + BUILD;
    loop {
        let body = http(dev.port, "GET", "/ten-saves", &json, b"").text();
        if body == "hello 10" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never served the last save; stderr:\n{}",
            dev.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every build the saves caused ends with an `ok` on the dev socket (a later batch may still
    // be building after the last save is served): wait for 10 s without one.
    let mut oks = 0;
    while let Ok(message) =
        tokio::time::timeout(Duration::from_secs(10), next_dev_message(&mut dev_socket)).await
    {
        if message["type"] == "ok" {
            oks += 1;
        }
    }
    let builds = dev.stderr_count("rebuilt routes/ten-saves.rs in ");
    assert!(oks >= builds, "{oks} oks for {builds} builds");
    assert!(
        (1..=2).contains(&builds),
        "{builds} builds:\n{}",
        dev.stderr()
    );

    // A change cargo does not rebuild for: the file's modification time moved an hour back (a
    // metadata event for the watcher; cargo finds the route fresh, even when the last save
    // landed during the build that compiled it). Its build ends with one more `ok`.
    let file = std::fs::File::options()
        .write(true)
        .open(project.path().join("routes/ten-saves.rs"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    while next_dev_message(&mut dev_socket).await["type"] != "ok" {}
    assert_eq!(dev.stderr_count("rebuilt routes/ten-saves.rs in "), builds);
    assert_eq!(
        http(dev.port, "GET", "/ten-saves", &json, b"").text(),
        "hello 10"
    );
}

#[test]
fn the_dev_socket_refuses_foreign_origins_hosts_and_missing_tokens() {
    let project = small_project();
    let dev = NitroDev::start(project.path());
    let token = dev.dev_token();
    let port = dev.port;
    let host = format!("127.0.0.1:{port}");
    let origin = format!("http://{host}");
    let good = format!("/__nitro/dev?token={token}");

    assert_eq!(raw_upgrade(port, &good, &host, Some(&origin)), 101);
    assert_eq!(
        raw_upgrade(
            port,
            &good,
            &format!("localhost:{port}"),
            Some(&format!("http://localhost:{port}"))
        ),
        101
    );
    assert_eq!(
        raw_upgrade(port, &good, &host, None),
        101,
        "no Origin: not a browser"
    );

    assert_eq!(raw_upgrade(port, "/__nitro/dev", &host, Some(&origin)), 403);
    assert_eq!(
        raw_upgrade(port, "/__nitro/dev?token=nope", &host, Some(&origin)),
        403
    );
    assert_eq!(
        raw_upgrade(port, &good, &host, Some("http://evil.example")),
        403,
        "foreign Origin"
    );
    assert_eq!(
        raw_upgrade(
            port,
            &good,
            &format!("evil.example:{port}"),
            Some(&format!("http://evil.example:{port}"))
        ),
        403,
        "foreign Host (DNS rebinding)"
    );
    assert_eq!(
        raw_upgrade(
            port,
            &good,
            &host,
            Some(&format!("http://localhost:{port}"))
        ),
        403,
        "Origin must match Host"
    );
    let plain = http(port, "GET", &good, &[], b"");
    assert_eq!(plain.status, 426);
    dev.expect_stderr_count("refused a dev socket request", 5, BUILD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_toml_changes_apply_or_ask_for_a_restart() {
    let project = small_project();
    project.write(
        "routes/json.rs",
        "pub fn handler() -> String {\n    serde_json::json!({ \"a\": 1 }).to_string()\n}\n",
    );
    let dev = NitroDev::start_async(project.path()).await;
    let json = [("accept", "application/json")];
    // (stderr is read by another thread: wait for it rather than look once.)
    wait_count(&dev, "route `routes/json.rs` failed to build", 1).await;
    assert_eq!(http(dev.port, "GET", "/json", &json, b"").status, 500);

    // `[dependencies]`: every route is rebuilt with them.
    project.write(
        "nitro.toml",
        "[renderer]\nstatic = true\n\n[dependencies]\nserde_json = \"1\"\n",
    );
    // (Every route of the template is rebuilt, in file order.)
    wait_count(
        &dev,
        "routes/json.rs, routes/sse.get.rs, routes/sse.post.rs in ",
        1,
    )
    .await;
    let served = http(dev.port, "GET", "/json", &json, b"");
    assert_eq!((served.status, served.text().as_str()), (200, r#"{"a":1}"#));

    // The address needs a restart: said clearly, and the server keeps serving.
    project.write(
        "nitro.toml",
        "[renderer]\nstatic = true\n\n[dev]\nhost = \"127.0.0.2\"\n\n[dependencies]\nserde_json = \"1\"\n",
    );
    wait_count(&dev, "restart `nitro dev` to apply it", 1).await;
    assert!(
        dev.stderr().contains("the address changed"),
        "{}",
        dev.stderr()
    );

    // A broken file: its error, in the terminal and the browser, and the previous settings stay.
    let mut dev_socket = ws_connect(&dev.dev_socket_url()).await;
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");
    project.write("nitro.toml", "[dev\n");
    wait_count(&dev, "keeping the previous settings", 1).await;
    assert!(
        dev.stderr().contains("is not valid TOML"),
        "{}",
        dev.stderr()
    );
    let error = next_dev_message(&mut dev_socket).await;
    assert_eq!(error["type"], "error");
    assert!(
        error["text"]
            .as_str()
            .unwrap()
            .contains("is not valid TOML")
    );
    assert_eq!(
        http(dev.port, "GET", "/json", &json, b"").text(),
        r#"{"a":1}"#
    );
    // Fixed: the error goes away.
    project.write("nitro.toml", "[dependencies]\nserde_json = \"1\"\n");
    assert_eq!(next_dev_message(&mut dev_socket).await["type"], "ok");
}
