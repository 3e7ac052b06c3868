//! `nitro::storage` end to end (issue #12), on the `todos` fixture: POST in one route file
//! (an `async fn`), GET in another (a plain `fn` that blocks on storage), the count in a
//! WebSocket route; the data shared, kept across a hot reload and an edit of `nitro.toml`, a
//! TTL, keys refused, the size limit; a built output with the fs driver (data kept across
//! restarts, under the working directory) and with the redis driver (a real `redis-server`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::redis_server::RedisServer;
use crate::support::*;

const BUILD: Duration = Duration::from_secs(180);

fn post(port: u16, path: &str, body: &str) -> HttpResponse {
    http(port, "POST", path, &[], body.as_bytes())
}

fn titles(port: u16) -> serde_json::Value {
    let response = get(port, "/todos", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Waits until `done` holds for what `nitro dev` printed.
async fn wait_stderr(dev: &NitroDev, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + BUILD;
    while tokio::time::Instant::now() < deadline {
        if done(&dev.stderr()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stderr never showed {what}; stderr:\n{}", dev.stderr());
}

/// Whether every one of `files` was named on a `rebuilt` line.
fn rebuilt(stderr: &str, files: &[&str]) -> bool {
    files.iter().all(|file| {
        stderr
            .lines()
            .any(|line| line.contains("rebuilt ") && line.contains(file))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_share_storage_across_files_sockets_and_a_hot_reload() {
    let project = Project::fixture("todos");
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;

    let mut socket = ws_connect(&dev.ws_url("/_ws")).await;
    assert_eq!(next_text(&mut socket).await, "count:0");

    // The todo case of the issue: POST in one file, GET in another.
    assert_eq!(post(port, "/todos", "milk").text(), "1 todos");
    assert_eq!(post(port, "/todos", "bread").text(), "2 todos");
    assert_eq!(titles(port), serde_json::json!(["milk", "bread"]));
    // The WebSocket route sees the same data.
    assert_eq!(next_text(&mut socket).await, "count:1");
    assert_eq!(next_text(&mut socket).await, "count:2");
    send_text(&mut socket, "count?").await;
    assert_eq!(next_text(&mut socket).await, "count:2");

    // An edit reloads both HTTP routes; the host kept the data.
    for file in ["routes/todos.get.rs", "routes/todos.post.rs"] {
        let source = std::fs::read_to_string(project.path().join(file)).unwrap();
        project.write(file, &format!("// edited\n{source}"));
    }
    let files = ["routes/todos.get.rs", "routes/todos.post.rs"];
    wait_stderr(&dev, "both routes rebuilt", |s| rebuilt(s, &files)).await;
    assert_eq!(titles(port), serde_json::json!(["milk", "bread"]));
    assert_eq!(post(port, "/todos", "eggs").text(), "3 todos");

    // An edit of `nitro.toml` that adds a mount keeps the data of the unchanged ones.
    let toml = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
    project.write(
        "nitro.toml",
        &format!("{toml}\n[storage.cache]\ndriver = \"memory\"\n"),
    );
    wait_stderr(&dev, "`[storage]` applied", |s| {
        s.contains("`[storage]` applied")
    })
    .await;
    assert_eq!(titles(port), serde_json::json!(["milk", "bread", "eggs"]));
    let put = http(port, "PUT", "/raw/k?mount=cache", &[], b"v");
    assert_eq!(put.status, 204, "{}", put.text());
    assert_eq!(get(port, "/raw/k?mount=cache", &[]).text(), "v");
}

/// `[route_rules]` of the fixture: headers by pattern (the narrower wins), a redirect, and
/// `/counter` cached for a second (its count in storage proves it ran once).
async fn check_route_rules(port: u16) {
    assert_eq!(get(port, "/todos", &[]).header("x-app"), Some("todos"));
    let first = get(port, "/counter", &[]);
    assert_eq!(first.text(), "calls: 1");
    assert_eq!(first.header("x-app"), Some("counter"));
    let second = get(port, "/counter", &[]);
    assert_eq!(second.text(), "calls: 1");
    assert_eq!(second.header("x-nitro-cache"), Some("HIT"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(port, "/counter", &[]).text(), "calls: 2");
    let moved = get(port, "/old/x", &[]);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/todos/x"));
}

/// The sample of docs/routes.md's "Shared data" section, as written there.
fn docs_sample() -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find("### Shared data: `nitro::storage`").unwrap()..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_refused_keys_the_size_limit_and_unknown_mounts() {
    let project = Project::fixture("todos");
    project.write("routes/visits.rs", &docs_sample());
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;

    // The docs' sample counts in the `data` mount.
    assert_eq!(
        post(port, "/visits", "").json(),
        serde_json::json!({ "count": 1 })
    );
    assert_eq!(
        post(port, "/visits", "").json(),
        serde_json::json!({ "count": 2 })
    );
    assert_eq!(
        get(port, "/visits", &[]).json(),
        serde_json::json!({ "count": 2 })
    );
    std::fs::remove_dir_all(project.path().join(".data")).unwrap();

    // The fixture's route rules, applied by `nitro dev`.
    check_route_rules(port).await;
    let toml = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
    project.write(
        "nitro.toml",
        &toml.replace("\"x-app\" = \"todos\"", "\"x-app\" = \"edited\""),
    );
    wait_stderr(&dev, "`[route_rules]` applied", |s| {
        s.contains("`[route_rules]` applied")
    })
    .await;
    assert_eq!(get(port, "/todos", &[]).header("x-app"), Some("edited"));

    // A todo with a time to live reads until it expires, then is gone.
    assert_eq!(post(port, "/todos?ttl_ms=400", "soon gone").status, 200);
    assert_eq!(post(port, "/todos", "kept").text(), "2 todos");
    assert_eq!(titles(port), serde_json::json!(["soon gone", "kept"]));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(titles(port), serde_json::json!(["kept"]));

    // Keys that would leave the mount's folder (on fs) are refused before any driver.
    for key in ["..%2F..%2Fetc%2Fpasswd", ".hidden", "a%5Cb", "a%3A%3Ab"] {
        for mount in ["todos", "data"] {
            let response = get(port, &format!("/raw/{key}?mount={mount}"), &[]);
            assert_eq!(
                response.status,
                400,
                "{key} on {mount}: {}",
                response.text()
            );
            assert!(
                response.text().contains("is not allowed"),
                "{}",
                response.text()
            );
        }
    }
    assert!(!project.path().join(".data").exists());

    // The mount's `max_value` (1024 bytes in the fixture's nitro.toml).
    let at_limit = http(port, "PUT", "/raw/big", &[], &[b'x'; 1024]);
    assert_eq!(at_limit.status, 204, "{}", at_limit.text());
    let over = http(port, "PUT", "/raw/big", &[], &[b'x'; 1025]);
    assert_eq!(over.status, 413, "{}", over.text());
    assert!(over.text().contains("1025 bytes"), "{}", over.text());
    assert_eq!(get(port, "/raw/big", &[]).body.len(), 1024);

    // The default fs mount `data` is under the project's `.data/kv`.
    assert_eq!(
        http(port, "PUT", "/raw/notes:1?mount=data", &[], b"n").status,
        204
    );
    assert_eq!(
        std::fs::read(project.path().join(".data/kv/notes/1")).unwrap()[8..],
        *b"n"
    );

    // A mount that is not declared: the error names it and the mounts there are.
    let unknown = get(port, "/raw/k?mount=nope", &[]);
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .text()
            .contains("there is no storage mount `nope`; the mounts are `data`, `memory`, `todos`"),
        "{}",
        unknown.text()
    );
}

/// Builds the fixture with `[storage.todos]` replaced by `table`, copies `.output` into a
/// fresh folder and returns (that folder's owner, the deployed output).
fn build_with(table: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let project = Project::fixture("todos");
    let toml = std::fs::read_to_string(project.path().join("nitro.toml")).unwrap();
    let toml = toml.replace(
        "[storage.todos]\ndriver = \"memory\"\nmax_value = 1024\n",
        table,
    );
    project.write("nitro.toml", &toml);
    nitro_build(project.path());
    let work = tempfile::Builder::new()
        .prefix("nitro-test-")
        .tempdir()
        .unwrap();
    let deployed = work.path().join("srv-app");
    copy_dir(&project.path().join(".output"), &deployed);
    (work, deployed)
}

/// `DEPLOYED/server/nitro start` in `cwd`, with no cargo on the `PATH`.
fn start_in(deployed: &Path, cwd: &Path, env: &[(&str, &str)]) -> Server {
    Server::start_output(start_deployed(deployed, cwd, env))
}

#[test]
fn a_built_output_keeps_todos_in_files_under_its_working_directory() {
    let (work, deployed) = build_with("[storage.todos]\ndriver = \"fs\"\n");
    let manifest = std::fs::read_to_string(deployed.join("nitro.json")).unwrap();
    assert!(manifest.contains("\"storage\""), "{manifest}");

    let server = start_in(&deployed, work.path(), &[]);
    assert_eq!(post(server.port, "/todos", "milk").text(), "1 todos");
    assert_eq!(post(server.port, "/todos", "bread").text(), "2 todos");
    assert_eq!(titles(server.port), serde_json::json!(["milk", "bread"]));
    drop(server);
    assert!(work.path().join(".data/todos/todo/000001").is_file());

    // A new process on the same folder reads the same todos.
    let server = start_in(&deployed, work.path(), &[]);
    assert_eq!(titles(server.port), serde_json::json!(["milk", "bread"]));
    assert_eq!(post(server.port, "/todos", "eggs").text(), "3 todos");
    // `nitro start` applies the route rules recorded in `nitro.json`.
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(check_route_rules(server.port));
}

#[test]
fn a_built_output_keeps_todos_in_redis_with_the_url_from_the_environment() {
    let (work, deployed) = build_with("[storage.todos]\ndriver = \"redis\"\nbase = \"todo-app\"\n");
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port());

    // No URL anywhere: a start error naming the variable.
    let empty = work.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(deployed.join("server/nitro"))
        .args(["start", "--port", "0"])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", &empty)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`NITRO_STORAGE_TODOS_URL`"), "{stderr}");

    let env = [("NITRO_STORAGE_TODOS_URL", url.as_str())];
    let server = start_in(&deployed, work.path(), &env);
    assert_eq!(post(server.port, "/todos", "milk").text(), "1 todos");
    drop(server);
    // Another instance on the same Redis sees it.
    let server = start_in(&deployed, work.path(), &env);
    assert_eq!(titles(server.port), serde_json::json!(["milk"]));
    assert!(!work.path().join(".data/todos").exists());
}
