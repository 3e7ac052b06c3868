//! The harness of the CLI's integration tests: temp projects, the `nitro` command, a running
//! `nitro dev` or `nitro start`, raw HTTP and WebSocket clients.
//!
//! Everything talks to 127.0.0.1 only. Route builds of every test share one target dir
//! (`NITRO_TARGET_DIR`), so dependencies such as serde compile once per `cargo test` run.
#![allow(dead_code, unreachable_pub)]

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The workspace root (`cli/..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The shared target dir for route builds in tests.
pub fn routes_target_dir() -> PathBuf {
    workspace_root().join("target").join("nitro-test-routes")
}

/// A project copied into a temp dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A copy of `examples/NAME` (without build caches).
    pub fn example(name: &str) -> Project {
        Project::copy_of(&workspace_root().join("examples").join(name))
    }

    /// A copy of `cli/tests/fixtures/NAME`.
    pub fn fixture(name: &str) -> Project {
        Project::copy_of(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
    }

    fn copy_of(src: &Path) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("nitro-test-")
            .tempdir()
            .unwrap();
        copy_dir(src, dir.path());
        Project { dir }
    }

    /// A project made of `files` (path, content).
    pub fn with_files(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("nitro-test-")
            .tempdir()
            .unwrap();
        write_files(dir.path(), files);
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

/// Writes `files` (path relative to `dir`, content), creating folders.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Copies `src` into `dst` (permission bits kept: a copied server stays executable), without
/// build caches (`.nitro`, `.output`, `target`).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".nitro" || name == ".output" || name == "target" {
            continue;
        }
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_dir(&entry.path(), &dst.join(&name));
        } else {
            std::fs::copy(entry.path(), dst.join(&name)).unwrap();
        }
    }
}

/// A `nitro` command with the test environment.
pub fn nitro() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nitro"));
    cmd.env("NITRO_TARGET_DIR", routes_target_dir())
        .env_remove("PORT")
        .env_remove("HOST")
        .env_remove("RUST_LOG")
        // No OTLP export unless a test asks for it (`otel.rs`).
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_METRICS_EXPORTER")
        .env_remove("OTEL_SDK_DISABLED")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// `nitro build DIR`, which must succeed; its stderr (the build's summary).
pub fn nitro_build(dir: &Path) -> String {
    let out = nitro().arg("build").arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "nitro build failed:\n{stderr}");
    stderr
}

/// The manifest of DIR's built output (`.output/nitro.json`).
pub fn output_manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(".output/nitro.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Whether a built output's manifest ([`output_manifest`]) lists `file` as a route of `kind`
/// (`route`, `middleware`, `plugin`, `task`…).
pub fn manifest_has(manifest: &serde_json::Value, file: &str, kind: &str) -> bool {
    manifest["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["file"] == file && r["kind"] == kind)
}

/// `DEPLOYED/server/nitro start` on a free port in `cwd`, with only `env` (and an empty
/// `PATH`: no cargo, no sources), as a deployed output runs.
pub fn start_deployed(deployed: &Path, cwd: &Path, env: &[(&str, &str)]) -> Command {
    let empty = cwd.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(deployed.join("server/nitro"));
    cmd.arg("start")
        .args(["--port", "0"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", &empty)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    cmd
}

/// Rust source for a module of the project's code (a plugin, a task, a route) with one
/// function, `event(line)`, which appends `line` to `events.log` in DIR (its absolute path is
/// written into the source); [`logged_events`] reads them back.
pub fn event_log_module(dir: &Path) -> String {
    format!(
        "pub fn event(line: &str) {{\n    use std::io::Write;\n    let mut file = std::fs::OpenOptions::new().create(true).append(true).open({:?}).unwrap();\n    writeln!(file, \"{{line}}\").unwrap();\n}}\n",
        dir.join("events.log")
    )
}

/// The lines [`event_log_module`]'s `event` wrote in DIR, in order.
pub fn logged_events(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `nitro start DIR --port 0`: DIR's built output on a free port, to add to and run with
/// [`Server::start_output`].
pub fn start_command(dir: &Path) -> Command {
    let mut cmd = nitro();
    cmd.arg("start").arg(dir).args(["--port", "0"]);
    cmd
}

/// Spawns `cmd`, whose program may have just been copied. Another test thread that forks
/// while the copy's file is open for writing leaves a child holding it until that child
/// `exec`s, and `exec` of the copy fails with `ETXTBSY` meanwhile (rust-lang/rust#114554):
/// retry a bounded number of times.
pub fn spawn_fresh(cmd: &mut Command) -> Child {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot run {cmd:?}: {e}"),
        }
    }
}

/// A `nitro dev` or `nitro start` process that has printed its URL (killed on drop).
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
    /// Everything it printed on stderr so far (collected by a thread).
    stderr: Arc<Mutex<String>>,
}

/// A running `nitro dev`.
pub type NitroDev = Server;

/// Collects `child`'s stderr and waits up to `timeout` for a line with `http://…` on its stdout
/// (kept drained afterwards, so the server never blocks on a full pipe). Both pipes must be
/// piped. Kills the child and panics with what it printed when no URL comes.
pub fn wait_for_url(mut child: Child, what: &str, timeout: Duration) -> Server {
    let stderr = Arc::new(Mutex::new(String::new()));
    let err_pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let (tx, rx) = mpsc::channel::<String>();
    let out_pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if let Some(url) = line.split("http://").nth(1) {
                    let base = format!("http://{}", url.trim().trim_end_matches('/'));
                    let port = base.rsplit(':').next().unwrap().parse().unwrap();
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return Server {
                        child,
                        base,
                        port,
                        stderr,
                    };
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} did not print its URL\nstdout:\n{seen}\nstderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }
}

impl NitroDev {
    /// Starts `nitro dev DIR --port 0` and waits until it prints its URL.
    pub fn start(dir: &Path) -> NitroDev {
        NitroDev::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> NitroDev {
        let child = nitro()
            .arg("dev")
            .arg(dir)
            .args(["--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nitro dev");
        // A cold first build compiles serde and friends: allow minutes, not seconds.
        wait_for_url(child, "nitro dev", Duration::from_secs(600))
    }

    /// Runs `cmd` (a `nitro start`, maybe of a just-copied binary) and waits for its URL.
    pub fn start_output(mut cmd: Command) -> Server {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = spawn_fresh(&mut cmd);
        wait_for_url(child, "nitro start", Duration::from_secs(60))
    }

    /// [`NitroDev::start`] from async code: the wait blocks, so it runs on the blocking pool.
    pub async fn start_async(dir: &Path) -> NitroDev {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || NitroDev::start(&dir))
            .await
            .unwrap()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The server's process id: under `nitro dev` (supervised) that of its child.
    pub fn pid(&self) -> u32 {
        server_pid(self.child.id())
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.port, "GET", path, &[], b"")
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http(self.port, "GET", path, headers, b"")
    }

    /// Sends a signal (`TERM`, `INT`) to the process.
    #[cfg(unix)]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// With a request to `slow_target` in flight (it logs `slow: started`), a first `INT`
    /// (shutdown begins, waiting for it) and a second: the forced exit, code 130.
    #[cfg(unix)]
    pub fn force_exit_with_a_request_in_flight(&mut self, slow_target: &'static str) {
        let port = self.port;
        let _slow = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| http(port, "GET", slow_target, &[], b""));
        });
        assert!(
            self.wait_stderr("slow: started", Duration::from_secs(30)),
            "{}",
            self.stderr()
        );
        self.signal("INT");
        assert!(
            self.wait_stderr("shutting down", Duration::from_secs(30)),
            "{}",
            self.stderr()
        );
        self.signal("INT");
        assert_eq!(
            self.wait_exit(Duration::from_secs(60)).code(),
            Some(130),
            "{}",
            self.stderr()
        );
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits at most `timeout` for the exit; panics with stderr when it does not come.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.exit_within(timeout)
            .unwrap_or_else(|| panic!("the server did not exit; stderr:\n{}", self.stderr()))
    }

    /// Sends SIGTERM and waits at most `timeout` for the exit.
    #[cfg(unix)]
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.exit_within(timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process serving for `pid`: its child when it has one (a supervisor), else itself.
pub fn server_pid(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()
        .and_then(|children| children.split_whitespace().next()?.parse().ok())
        .unwrap_or(pid)
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// `GET path` over a fresh connection.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http(port, "GET", path, headers, b"")
}

/// Sends one request over a fresh connection (`Connection: close`) and reads the response.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head: bool) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[nl + 2..nl + 2 + size]);
        data = &data[nl + 2 + size + 2..];
    }
    out
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a WebSocket client.
pub async fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("websocket connect timed out")
    .unwrap_or_else(|e| panic!("websocket connect to {url} failed: {e}"));
    ws
}

/// The next text frame (skipping pings), or a panic after 10 s.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next frame of any kind, or `None` if none arrives within `wait`.
pub async fn next_frame(ws: &mut Ws, wait: Duration) -> Option<WsMessage> {
    match tokio::time::timeout(wait, ws.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        Ok(Some(Err(e))) => panic!("websocket error: {e}"),
        Ok(None) => None,
        Err(_) => None,
    }
}

/// Asserts that no data frame arrives within `wait`.
pub async fn expect_silence(ws: &mut Ws, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            Ok(other) => panic!("expected no frame, got {other:?}"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text)).await.unwrap();
}

/// Parses `{"user":…,"message":…}` and checks the key order on the wire.
pub fn chat_frame(raw: &str) -> (String, String) {
    assert!(
        raw.starts_with("{\"user\":"),
        "key order must be user, message: {raw}"
    );
    let v: serde_json::Value = serde_json::from_str(raw).unwrap();
    (
        v["user"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

impl NitroDev {
    /// How many times `needle` occurs in stderr so far.
    pub fn stderr_count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// Waits until stderr contains `needle` at least `n` times; panics with stderr after
    /// `timeout` (a bound, not a timing assertion).
    pub fn expect_stderr_count(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr_count(needle) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "stderr never had {n} × {needle:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// The dev client's token, read from the script injected into an HTML page.
    pub fn dev_token(&self) -> String {
        let page = http(self.port, "GET", "/", &[("accept", "text/html")], b"");
        let text = page.text();
        let start = text
            .find("\"token\":\"")
            .unwrap_or_else(|| panic!("no dev client in the page:\n{text}"))
            + "\"token\":\"".len();
        let len = text[start..].find('"').unwrap();
        text[start..start + len].to_owned()
    }

    /// The dev socket's URL, with the token.
    pub fn dev_socket_url(&self) -> String {
        format!(
            "ws://127.0.0.1:{}/__nitro/dev?token={}",
            self.port,
            self.dev_token()
        )
    }
}

/// Connects a WebSocket client that sends `Origin` as a browser on `origin` would.
pub async fn ws_connect_with_origin(url: &str, origin: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("websocket connect timed out")
    .unwrap_or_else(|e| panic!("websocket connect to {url} failed: {e}"));
    ws
}

/// The next dev socket message, parsed.
pub async fn next_dev_message(ws: &mut Ws) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(120), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            other => panic!("expected a dev socket message, got {other:?}"),
        }
    }
}

/// Sends a raw upgrade request with exactly these `Host` and optional `Origin` headers and
/// returns the status code.
pub fn raw_upgrade(port: u16, target: &str, host: &str, origin: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(origin) = origin {
        req.push_str(&format!("Origin: {origin}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// The peer id in the seed chat's welcome, `{"user":"server","message":"欢迎 <id>!"}`.
pub fn welcome_id(raw: &str) -> String {
    let (user, message) = chat_frame(raw);
    assert_eq!(user, "server", "{raw}");
    message
        .strip_prefix("欢迎 ")
        .and_then(|s| s.strip_suffix('!'))
        .unwrap_or_else(|| panic!("unexpected welcome {message:?}"))
        .to_string()
}
