//! OTLP export of traces: a real `nitro start` / `nitro dev` with OpenTelemetry's variables
//! sends its request spans to a small OTLP/HTTP receiver run by the test (the stand-in for a
//! collector), with the service name, the documented attributes and the remote parent of an
//! incoming `traceparent`; routes read the `traceparent` for their outgoing calls; a collector
//! that is not there changes nothing for the clients.

use crate::support::*;
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

const FILES: &[(&str, &str)] = &[
    (
        "routes/users/[id].get.rs",
        r#"pub fn handler(req: &nitro::Request) -> String {
    nitro::tracing::info!(user = req.param("id").unwrap_or(""), "user read");
    format!("user {}", req.param("id").unwrap_or(""))
}
"#,
    ),
    (
        "routes/call.get.rs",
        // What a route puts on its outgoing call.
        r#"pub fn handler(req: &nitro::Request) -> String {
    req.traceparent().unwrap_or_default()
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
pub async fn handler(req: nitro::Request) -> String {
    YieldOnce(false).await;
    req.traceparent().unwrap_or_default()
}
"#,
    ),
    (
        "routes/fail.get.rs",
        "pub fn handler() -> nitro::Result<String> { Err(nitro::Error::new(503, \"down\")) }\n",
    ),
];

/// The test's OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, kept decoded.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
        let kept = requests.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let kept = kept.clone();
                        async move { receive(req, &kept).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            port,
            requests,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received, with its resource's attributes.
    fn spans(&self) -> Vec<(HashMap<String, String>, String, Span)> {
        let mut out = Vec::new();
        for request in self.requests.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                for scope_spans in &resource_spans.scope_spans {
                    let scope = scope_spans
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for span in &scope_spans.spans {
                        out.push((resource.clone(), scope.clone(), span.clone()));
                    }
                }
            }
        }
        out
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    kept: &Mutex<Vec<ExportTraceServiceRequest>>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let ok = req.method() == hyper::Method::POST
        && req.uri().path() == "/v1/traces"
        && req
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/x-protobuf");
    let body = req.into_body().collect().await?.to_bytes();
    if !ok {
        return Ok(hyper::Response::builder()
            .status(400)
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    kept.lock().unwrap().push(request);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    Ok(hyper::Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)))
        .unwrap())
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request spans received, by `url.path`.
fn request_span<'a>(spans: &'a [(HashMap<String, String>, String, Span)], path: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .map(|(_, _, span)| span)
        .filter(|span| {
            attributes(&span.attributes)
                .get("url.path")
                .map(String::as_str)
                == Some(path)
        })
        .collect();
    assert_eq!(found.len(), 1, "one span for `{path}` in {spans:#?}");
    found[0]
}

/// `00-<trace>-<span>-<flags>` → its parts.
fn parts(traceparent: &str) -> (String, String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "`{traceparent}`");
    assert_eq!(parts[0], "00");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

#[test]
fn start_exports_request_spans_over_otlp_and_flushes_them_at_shutdown() {
    let receiver = Receiver::start();
    let project = Project::with_files(FILES);
    let out = nitro().arg("build").arg(project.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd: Command = nitro();
    cmd.arg("start")
        .arg(project.path())
        .args(["--port", "0"])
        .env("NITRO_LOG_FORMAT", "json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SERVICE_NAME", "shop-api")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        );
    let mut server = Server::start_output(cmd);
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let res = server.get_with("/users/7", &[("traceparent", &tp)]);
    assert_eq!(res.text(), "user 7");
    // The route's value for its outgoing call: the caller's trace, the request span as parent.
    let carried = server.get_with("/call", &[("traceparent", &tp)]).text();
    let (trace, call_span, flags) = parts(&carried);
    assert_eq!(
        (trace.as_str(), flags.as_str()),
        (TRACE_ID, "01"),
        "{carried}"
    );
    assert_ne!(call_span, PARENT_ID);
    // Without a `traceparent`: a new trace, the same one in the route, the log and the export.
    let fresh = server.get("/call").text();
    let (fresh_trace, fresh_span, _) = parts(&fresh);
    // An async handler asks after an `.await`, in a later poll of the same request.
    let later = server.get("/later").text();
    let (later_trace, later_span, _) = parts(&later);
    assert_ne!(later_trace, fresh_trace);
    assert_eq!(server.get("/fail").status, 503);
    assert_eq!(server.get("/nope").status, 404);
    assert!(server.wait_stderr("GET /nope 404", Duration::from_secs(10)));
    // Nothing is sent yet (batches leave every 5 s): the graceful stop sends them.
    let status = server.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.stderr()
    );
    let err = server.stderr();
    assert!(
        err.contains(&format!("Traces: {}/v1/traces", receiver.endpoint())),
        "{err}"
    );
    assert!(!err.contains("cannot send traces"), "{err}");

    let spans = receiver.spans();
    for (resource, scope, span) in &spans {
        assert_eq!(
            resource.get("service.name").map(String::as_str),
            Some("shop-api")
        );
        assert_eq!(
            resource
                .get("deployment.environment.name")
                .map(String::as_str),
            Some("test")
        );
        assert_eq!(scope, "nitro", "{span:?}");
    }
    let user = request_span(&spans, "/users/7");
    assert_eq!(user.name, "GET /users/:id");
    assert_eq!(user.kind, SpanKind::Server as i32);
    assert_eq!(hex(&user.trace_id), TRACE_ID);
    assert_eq!(hex(&user.parent_span_id), PARENT_ID);
    let fields = attributes(&user.attributes);
    let want = [
        ("http.request.method", "GET"),
        ("url.path", "/users/7"),
        ("http.route", "/users/:id"),
        ("nitro.route", "routes/users/[id].get.rs"),
        ("http.response.status_code", "200"),
    ];
    for (key, value) in want {
        assert_eq!(
            fields.get(key).map(String::as_str),
            Some(value),
            "{key} in {fields:?}"
        );
    }
    assert!(
        !fields.contains_key("trace_id") && !fields.contains_key("parent_id"),
        "{fields:?}"
    );
    let code = user
        .attributes
        .iter()
        .find(|kv| kv.key == "http.response.status_code")
        .and_then(|kv| kv.value.as_ref()?.value.clone());
    assert_eq!(code, Some(any_value::Value::IntValue(200)), "an int");
    // The route's event, inside its request's span.
    let event = user
        .events
        .iter()
        .find(|e| e.name == "user read")
        .unwrap_or_else(|| panic!("{:?}", user.events));
    assert_eq!(
        attributes(&event.attributes)
            .get("user")
            .map(String::as_str),
        Some("7")
    );

    let call = spans
        .iter()
        .map(|(_, _, s)| s)
        .find(|s| hex(&s.span_id) == call_span)
        .unwrap_or_else(|| panic!("no span {call_span} in {spans:#?}"));
    assert_eq!(
        (
            hex(&call.trace_id).as_str(),
            hex(&call.parent_span_id).as_str()
        ),
        (TRACE_ID, PARENT_ID)
    );
    for (trace, span) in [(&fresh_trace, &fresh_span), (&later_trace, &later_span)] {
        let found = spans
            .iter()
            .map(|(_, _, s)| s)
            .find(|s| hex(&s.span_id) == *span)
            .unwrap_or_else(|| panic!("no span {span} in {spans:#?}"));
        assert_eq!(&hex(&found.trace_id), trace);
        assert!(found.parent_span_id.is_empty(), "a root: {found:?}");
        // The request log line carries the exported trace id.
        assert!(
            err.lines()
                .any(|l| l.contains("\"target\":\"nitro::request\"")
                    && l.contains(&format!("\"trace_id\":\"{trace}\""))),
            "{err}"
        );
    }
    let fail = request_span(&spans, "/fail");
    assert_eq!(fail.name, "GET /fail");
    let status = fail.status.as_ref().expect("a status");
    assert_eq!(status.code, 2, "error for a 5xx: {status:?}");
    let nope = request_span(&spans, "/nope");
    assert_eq!(nope.name, "GET", "no route matched");
    assert_eq!(
        attributes(&nope.attributes)
            .get("http.response.status_code")
            .map(String::as_str),
        Some("404")
    );
}

#[test]
fn without_an_exporter_a_route_passes_the_incoming_traceparent_on() {
    let project = Project::with_files(FILES);
    let dev = NitroDev::start(project.path());
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(dev.get_with("/call", &[("traceparent", &tp)]).text(), tp);
    assert_eq!(dev.get_with("/later", &[("traceparent", &tp)]).text(), tp);
    assert_eq!(dev.get("/call").text(), "");
    assert_eq!(
        dev.get_with("/call", &[("traceparent", "00-bad")]).text(),
        ""
    );
    assert!(!dev.stderr().contains("Traces:"), "{}", dev.stderr());
}

#[test]
fn an_unreachable_collector_is_said_once_and_serving_goes_on() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let project = Project::with_files(FILES);
    let child = nitro()
        .arg("dev")
        .arg(project.path())
        // A quiet log still exports every request (the export is what fails here).
        .args(["--port", "0", "-q"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        // Batches every 50 ms, so that several fail while the server runs.
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut dev = wait_for_url(child, "nitro dev", Duration::from_secs(600));
    for i in 0..20 {
        assert_eq!(dev.get(&format!("/users/{i}")).text(), format!("user {i}"));
    }
    assert!(
        dev.wait_stderr("cannot send traces", Duration::from_secs(30)),
        "{}",
        dev.stderr()
    );
    for round in 0..5 {
        for i in 0..20 {
            assert_eq!(dev.get(&format!("/users/{i}")).status, 200, "round {round}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = dev.terminate(Duration::from_secs(60));
    assert!(status.is_some(), "{}", dev.stderr());
    let err = dev.stderr();
    assert_eq!(err.matches("cannot send traces").count(), 1, "{err}");
    assert!(
        err.contains(&format!("`http://127.0.0.1:{port}/v1/traces`")),
        "{err}"
    );
}
