//! Observability: a route's `tracing` events (and `log` records) reach the server's log with
//! the route file, inside the request's span, under `nitro dev` and `nitro start`; JSON logs;
//! an incoming `traceparent` on the request span.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A sync route that logs through `tracing` (in a span of its own) and `log`, and an
/// `async fn` that logs after an `.await` (in a later poll).
const FILES: &[(&str, &str)] = &[
    (
        "nitro.toml",
        "[dependencies]\ntracing = \"0.1\"\nlog = \"0.4\"\n",
    ),
    (
        "routes/order.get.rs",
        r#"pub fn handler() -> String {
    let _lookup = tracing::info_span!("lookup", shop = "north").entered();
    tracing::info!(user = 42u64, ok = true, "order placed");
    log::warn!("from the log crate");
    tracing::debug!("a hidden debug line");
    "ok".into()
}
"#,
    ),
    (
        "routes/later.get.rs",
        r#"/// Pending once, so what follows runs in a second poll.
struct YieldOnce(bool);
impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
pub async fn handler() -> String {
    YieldOnce(false).await;
    nitro::tracing::info!(step = "after-await", "async order");
    "later".into()
}
"#,
    ),
];

/// `nitro build DIR`, which must succeed.
fn build(dir: &std::path::Path) {
    let out = nitro().arg("build").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "nitro build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// The first line of `text` containing every needle.
fn line_with<'a>(text: &'a str, needles: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| needles.iter().all(|n| l.contains(n)))
}

#[test]
fn route_tracing_reaches_the_host_log_in_the_request_span_under_dev() {
    let project = Project::with_files(FILES);
    let dev = NitroDev::start(project.path());
    let tp = traceparent();
    let res = dev.get_with("/order", &[("traceparent", &tp)]);
    assert_eq!(res.status, 200, "{}", dev.stderr());
    assert_eq!(dev.get("/later").text(), "later");
    assert!(
        dev.wait_stderr("async order", Duration::from_secs(10)),
        "{}",
        dev.stderr()
    );
    let err = dev.stderr();
    // The event: its message and fields, the route span's field, the route file; inside the
    // request span, which carries the method, path, route and the incoming trace context.
    let event = line_with(
        &err,
        &[
            "order placed user=42 ok=true shop=\"north\" route=\"routes/order.get.rs\"",
            "request{http.request.method=GET url.path=\"/order\"",
            &format!("trace_id=\"{TRACE_ID}\" parent_id=\"{PARENT_ID}\""),
            "http.route=\"/order\" nitro.route=\"routes/order.get.rs\"",
        ],
    );
    assert!(event.is_some_and(|l| l.starts_with(" INFO")), "{err}");
    let log = line_with(
        &err,
        &[
            "from the log crate",
            "url.path=\"/order\"",
            "route=\"routes/order.get.rs\"",
        ],
    );
    assert!(log.is_some_and(|l| l.starts_with(" WARN")), "{err}");
    assert!(
        line_with(
            &err,
            &[
                "async order step=\"after-await\" route=\"routes/later.get.rs\"",
                "request{http.request.method=GET url.path=\"/later\"",
            ],
        )
        .is_some(),
        "{err}"
    );
    // Below the host's level: never sent.
    assert!(!err.contains("a hidden debug line"), "{err}");
    // `nitro dev` has no request log.
    assert!(!err.contains("GET /order 200"), "{err}");
}

/// The JSON lines of `text` (every line must be one).
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{text}")))
        .collect()
}

#[test]
fn json_logs_under_start_carry_the_documented_fields() {
    let project = Project::with_files(FILES);
    build(project.path());
    let mut cmd: Command = nitro();
    cmd.arg("start")
        .arg(project.path())
        .args(["--port", "0"])
        .env("NITRO_LOG_FORMAT", "json");
    let server = Server::start_output(cmd);
    let tp = traceparent();
    assert_eq!(
        server.get_with("/order", &[("traceparent", &tp)]).status,
        200
    );
    assert_eq!(server.get("/later").text(), "later");
    assert_eq!(server.get("/nope").status, 404);
    assert!(
        server.wait_stderr("GET /nope 404", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let lines = json_lines(&server.stderr());
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .unwrap_or_else(|| panic!("no line `{message}` in {lines:#?}"))
    };
    for line in &lines {
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(line["level"].is_string(), "{line}");
        assert!(line["target"].is_string(), "{line}");
    }

    let event = find("order placed");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["user"], 42);
    assert_eq!(event["ok"], true);
    assert_eq!(event["shop"], "north");
    assert_eq!(event["route"], "routes/order.get.rs");
    let span = &event["span"];
    assert_eq!(span["name"], "request");
    assert_eq!(span["http.request.method"], "GET");
    assert_eq!(span["url.path"], "/order");
    assert_eq!(span["http.route"], "/order");
    assert_eq!(span["nitro.route"], "routes/order.get.rs");
    assert_eq!(span["trace_id"], TRACE_ID);
    assert_eq!(span["parent_id"], PARENT_ID);
    let log = find("from the log crate");
    assert_eq!(log["level"], "WARN");
    assert_eq!(log["span"]["url.path"], "/order");
    let later = find("async order");
    assert_eq!(later["step"], "after-await");
    assert_eq!(later["span"]["url.path"], "/later");

    // The request log, from the request spans.
    let request = find("GET /order 200 ");
    assert_eq!(request["target"], "nitro::request");
    assert_eq!(request["http.request.method"], "GET");
    assert_eq!(request["url.path"], "/order");
    assert_eq!(request["http.route"], "/order");
    assert_eq!(request["nitro.route"], "routes/order.get.rs");
    assert_eq!(request["http.response.status_code"], 200);
    assert_eq!(request["trace_id"], TRACE_ID);
    assert!(
        request["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{request}"
    );
    let missing = find("GET /nope 404 ");
    assert_eq!(missing["http.response.status_code"], 404);
    assert!(missing.get("http.route").is_none(), "{missing}");
    assert!(!server.stderr().contains("a hidden debug line"));
}

#[test]
fn human_request_log_under_start_comes_from_the_span() {
    let project = Project::with_files(FILES);
    build(project.path());
    let mut cmd: Command = nitro();
    cmd.arg("start").arg(project.path()).args(["--port", "0"]);
    let server = Server::start_output(cmd);
    assert_eq!(server.get("/order").status, 200);
    assert!(
        server.wait_stderr(" INFO GET /order 200 ", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let err = server.stderr();
    assert!(
        line_with(&err, &["order placed user=42", "url.path=\"/order\""]).is_some(),
        "{err}"
    );
}
