//! Observability: a route's `tracing` events (and `log` records) reach the server's log with
//! the route file, inside the request's span, under `nitro dev` and `nitro start`; JSON logs;
//! an incoming `traceparent` on the request span.

use crate::support::*;
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
    (
        "routes/_ws.rs",
        r#"use nitro::ws::{Message, Peer};
pub fn message(peer: &Peer, message: &Message) {
    tracing::info!(text = %message.text(), "ws message");
    peer.send(message.text().into_owned());
}
"#,
    ),
];

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
    // A WebSocket hook's event is in the peer's span.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut ws = ws_connect(&dev.ws_url("/_ws")).await;
        send_text(&mut ws, "hi").await;
        assert_eq!(next_text(&mut ws).await, "hi");
    });
    assert!(
        dev.wait_stderr("ws message", Duration::from_secs(10)),
        "{}",
        dev.stderr()
    );
    let err = dev.stderr();
    assert!(
        line_with(
            &err,
            &[
                "peer{nitro.peer.id=",
                "nitro.ws.namespace=",
                "nitro.route=\"routes/_ws.rs\"}",
                "ws message text=hi route=\"routes/_ws.rs\"",
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

#[test]
fn a_host_warning_while_serving_the_page_is_in_the_request_span() {
    // No route runs for the page, so its request span is opened only when the server logs.
    let project = Project::with_files(&[
        ("nitro.toml", "[renderer]\nstatic = true\n"),
        ("index.html", "<h1>page</h1>\n"),
    ]);
    let dev = NitroDev::start(project.path());
    let html = [("accept", "text/html")];
    assert_eq!(dev.get_with("/", &html).status, 200, "{}", dev.stderr());
    std::fs::remove_file(project.path().join("index.html")).unwrap();
    assert_eq!(
        dev.get_with("/about", &html).status,
        404,
        "{}",
        dev.stderr()
    );
    assert!(
        dev.wait_stderr("cannot read the renderer's", Duration::from_secs(10)),
        "{}",
        dev.stderr()
    );
    let err = dev.stderr();
    let warning = line_with(
        &err,
        &[
            "request{http.request.method=GET url.path=\"/about\"}",
            "cannot read the renderer's",
        ],
    );
    assert!(warning.is_some_and(|l| l.starts_with(" WARN")), "{err}");
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
    nitro_build(project.path());
    let mut cmd = start_command(project.path());
    cmd.env("NITRO_LOG_FORMAT", "json");
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
    nitro_build(project.path());
    let cmd = start_command(project.path());
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

/// Routes for the metrics: one that answers, one that panics, one that overruns
/// `handler_timeout`, and a WebSocket endpoint that echoes and publishes.
fn metrics_files(observability: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("nitro.toml", observability),
        (
            "routes/hello.get.rs",
            "pub fn handler() -> &'static str { \"hello\" }\n",
        ),
        (
            "routes/boom.get.rs",
            "pub fn handler() -> String { panic!(\"boom\") }\n",
        ),
        (
            "routes/slow.get.rs",
            "pub async fn handler() -> String {\n    std::future::pending::<()>().await;\n    String::new()\n}\n",
        ),
        (
            "routes/_ws.rs",
            r#"use nitro::ws::{Message, Peer};
pub async fn open(peer: Peer) {
    peer.subscribe("room");
}
pub async fn message(peer: Peer, message: Message) {
    if message.text() == "all" {
        peer.publish("room", "hi all");
    } else {
        peer.send(message);
    }
}
"#,
        ),
    ]
}

/// The value of the sample `name{labels}` (labels in the exporter's order), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The scripted traffic; returns once every reply has arrived.
async fn traffic(server: &Server) {
    let port = server.port;
    tokio::task::spawn_blocking(move || {
        for _ in 0..3 {
            assert_eq!(get(port, "/hello", &[]).text(), "hello");
        }
        assert_eq!(get(port, "/boom", &[]).status, 500);
        assert_eq!(get(port, "/slow", &[]).status, 504);
        assert_eq!(get(port, "/missing", &[]).status, 404);
        assert_eq!(get(port, "/missing", &[]).status, 404);
    })
    .await
    .unwrap();
    let url = server.ws_url("/_ws");
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    send_text(&mut a, "one").await;
    assert_eq!(next_text(&mut a).await, "one");
    // `b`'s echo comes after its `open` (a peer's hooks run in order), so `b` has subscribed
    // by the time `a` publishes: the 101 comes before `open` has run.
    send_text(&mut b, "two").await;
    assert_eq!(next_text(&mut b).await, "two");
    send_text(&mut a, "all").await;
    assert_eq!(next_text(&mut b).await, "hi all");
    // Both still open while the metrics are read.
    std::mem::forget((a, b));
}

fn check_counts(text: &str) {
    let requests = |route: &str, class: &str| {
        sample(
            text,
            &format!(
                "nitro_http_requests_total{{route=\"{route}\",method=\"GET\",status_class=\"{class}\"}}"
            ),
        )
    };
    assert_eq!(requests("/hello", "2xx"), 3.0, "{text}");
    assert_eq!(requests("/boom", "5xx"), 1.0, "{text}");
    assert_eq!(requests("/slow", "5xx"), 1.0, "{text}");
    assert_eq!(requests("", "4xx"), 2.0, "{text}");
    assert_eq!(requests("/_ws", "1xx"), 2.0, "{text}");
    assert_eq!(
        sample(
            text,
            "nitro_http_request_duration_seconds_count{route=\"/hello\"}"
        ),
        3.0,
        "{text}"
    );
    assert!(
        text.contains("nitro_http_request_duration_seconds_bucket{route=\"/hello\",le=\"0.005\"}"),
        "{text}"
    );
    assert_eq!(sample(text, "nitro_ws_peers_open"), 2.0, "{text}");
    assert_eq!(
        sample(text, "nitro_ws_messages_received_total"),
        3.0,
        "{text}"
    );
    assert_eq!(sample(text, "nitro_ws_messages_sent_total"), 3.0, "{text}");
    assert_eq!(sample(text, "nitro_ws_publishes_total"), 1.0, "{text}");
    assert_eq!(
        sample(
            text,
            "nitro_route_panics_total{route=\"routes/boom.get.rs\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            text,
            "nitro_route_timeouts_total{route=\"routes/slow.get.rs\"}"
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_scripted_mix_under_start() {
    let files = metrics_files(
        "[observability]\nmetrics = \"/__nitro/metrics\"\n[limits]\nhandler_timeout = 0.5\n",
    );
    let project = Project::with_files(&files);
    let dir = project.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || {
        nitro_build(&dir);
        let manifest = std::fs::read_to_string(dir.join(".output/nitro.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            manifest["config"]["observability"],
            serde_json::json!({ "metrics": "/__nitro/metrics" })
        );
        let cmd = start_command(&dir);
        Server::start_output(cmd)
    })
    .await
    .unwrap();
    traffic(&server).await;
    let port = server.port;
    let (first, second, post) = tokio::task::spawn_blocking(move || {
        let first = get(port, "/__nitro/metrics", &[]);
        let second = get(port, "/__nitro/metrics", &[]);
        let post = http(port, "POST", "/__nitro/metrics", &[], b"");
        (first, second, post)
    })
    .await
    .unwrap();
    assert_eq!(first.status, 200);
    assert!(
        first
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        first.headers
    );
    check_counts(&first.text());
    // A scrape on the server's port is a request too, under the metrics path.
    assert_eq!(
        sample(
            &second.text(),
            "nitro_http_requests_total{route=\"/__nitro/metrics\",method=\"GET\",status_class=\"2xx\"}"
        ),
        1.0,
        "{}",
        second.text()
    );
    assert_eq!(post.status, 405);
    assert!(
        server.wait_stderr("Metrics: http://127.0.0.1:", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_on_a_private_port_under_dev() {
    let files = metrics_files(
        "[observability]\nmetrics = \"/metrics\"\nmetrics_bind = \"127.0.0.1:0\"\n[limits]\nhandler_timeout = 0.5\n",
    );
    let project = Project::with_files(&files);
    let server = NitroDev::start_async(project.path()).await;
    // Printed on stderr after the URL (on stdout): wait for it.
    assert!(
        server.wait_stderr("/metrics\n", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let err = server.stderr();
    let url = err
        .lines()
        .find_map(|l| l.split("Metrics: ").nth(1))
        .unwrap_or_else(|| panic!("no metrics URL in {err}"))
        .trim()
        .to_owned();
    let metrics_port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    assert_ne!(metrics_port, server.port);
    traffic(&server).await;
    let port = server.port;
    let (text, on_main, elsewhere) = tokio::task::spawn_blocking(move || {
        let text = get(metrics_port, "/metrics", &[]).text();
        (
            text,
            get(port, "/metrics", &[]).status,
            get(metrics_port, "/hello", &[]).status,
        )
    })
    .await
    .unwrap();
    check_counts(&text);
    // Not on the server's own port, and nothing else on the private one.
    assert_eq!(on_main, 404);
    assert_eq!(elsewhere, 404);
    assert!(!text.contains("route=\"/metrics\""), "{text}");
    assert_eq!(sample(&text, "nitro_dev_reloads_total"), 0.0, "{text}");

    // A hot reload is counted.
    project.write(
        "routes/hello.get.rs",
        "pub fn handler() -> &'static str { \"hello again\" }\n",
    );
    let reloaded = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while std::time::Instant::now() < deadline {
            if get(port, "/hello", &[]).text() == "hello again" {
                return Some(get(metrics_port, "/metrics", &[]).text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    })
    .await
    .unwrap()
    .expect("the edit was served");
    assert_eq!(
        sample(&reloaded, "nitro_dev_reloads_total"),
        1.0,
        "{reloaded}"
    );
}
