//! `nitro dev` end to end: the real binary on a temporary project, real HTTP and WebSocket
//! clients, SIGTERM to stop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{self, write_files};

fn nitro(args: &[&str]) -> Command {
    let mut cmd = support::nitro();
    cmd.args(args);
    cmd
}

/// Kills the server if a test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(addr: &str, path: &str, accept: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn dev_builds_serves_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    write_files(
        tmp.path(),
        &[
            ("nitro.toml", "[dependencies]\nserde_json = \"1\"\n"),
            ("index.html", "<h1>renderer</h1>\n"),
            ("public/hello.txt", "static file\n"),
            (
                "routes/api/hello.get.rs",
                "pub fn handler() -> serde_json::Value {\n    serde_json::json!({ \"hello\": \"world\" })\n}\n",
            ),
            (
                "routes/_ws.rs",
                "use nitro::ws::Peer;\n\npub fn open(peer: &Peer) {\n    peer.send(\"welcome\");\n}\n",
            ),
            (
                "routes/broken.rs",
                "pub fn handler() -> String {\n    let n: u32 = \"x\";\n    n.to_string()\n}\n",
            ),
        ],
    );

    let child = nitro(&["dev", &tmp.path().to_string_lossy(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stdout = tokio::process::ChildStdout::from_std(server.0.stdout.take().unwrap()).unwrap();
    let stderr = server.0.stderr.take().unwrap();
    let stderr_thread = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());

    // The first line on stdout is the URL, once everything is built (cold builds are slow).
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
        .await
        .expect("nitro dev printed no URL in time")
        .unwrap()
        .expect("nitro dev exited before printing its URL");
    let url = line
        .trim()
        .strip_prefix("➜ Local: http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let addr = url.trim_end_matches('/').to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, body) = get(&addr, "/api/hello", "*/*").await;
    assert_eq!((status, body.as_str()), (200, r#"{"hello":"world"}"#));

    let (status, body) = get(&addr, "/hello.txt", "*/*").await;
    assert_eq!((status, body.as_str()), (200, "static file\n"));

    // The page, with the dev client appended (issue #3).
    let (status, body) = get(&addr, "/somewhere/else", "text/html").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("<h1>renderer</h1>\n<script data-nitro-dev="),
        "{body}"
    );

    let (status, body) = get(&addr, "/broken", "application/json").await;
    assert_eq!(status, 500);
    assert!(body.contains("routes/broken.rs:2:18"), "{body}");

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/_ws"))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_text().unwrap().as_str(), "welcome");

    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = server.0.wait().unwrap();
        std::mem::forget(server);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");

    let stderr = stderr_thread.join().unwrap();
    assert!(stderr.contains("✘ built 2 of 3 routes"), "{stderr}");
    assert!(
        stderr.contains("  GET  /api/hello  routes/api/hello.get.rs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  WS   /_ws        routes/_ws.rs"),
        "{stderr}"
    );
    assert!(stderr.contains("--> routes/broken.rs:2:18"), "{stderr}");
    assert!(
        stderr.contains("error: route `routes/broken.rs` failed to build"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "NO_COLOR: {stderr:?}");
}

#[test]
fn bad_config_exits_1_with_error_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    write_files(tmp.path(), &[("nitro.toml", "[renderer]\nstatik = true\n")]);
    let output = nitro(&["dev", &tmp.path().to_string_lossy()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: unknown key `statik` in `[renderer]` of `")
            && lines[0].ends_with("nitro.toml:2`: expected `static`"),
        "{stderr}"
    );
    assert!(lines[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn a_project_folder_that_does_not_exist() {
    let output = nitro(&["dev", "/nonexistent/nitro/project"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: project folder `/nonexistent/nitro/project` does not exist\nhint: "
        ),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = nitro(&["dev", "--port", "http"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_port_in_use_is_one_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    write_files(
        tmp.path(),
        &[("index.html", "<h1>hi</h1>\n"), ("nitro.toml", "")],
    );
    let output = nitro(&["dev", &tmp.path().to_string_lossy(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!("127.0.0.1:{port}")) && errors[0].contains("already in use"),
        "{stderr}"
    );
    drop(taken);
}
