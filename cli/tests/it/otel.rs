//! OTLP export of traces: a real `nitro start` / `nitro dev` with OpenTelemetry's variables
//! sends its request spans to a small OTLP/HTTP receiver run by the test (the stand-in for a
//! collector), with the service name, the documented attributes and the remote parent of an
//! incoming `traceparent`; routes read the `traceparent` for their outgoing calls; a collector
//! that is not there changes nothing for the clients.

use crate::support::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric, number_data_point};
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
        "routes/state.get.rs",
        r#"pub fn handler(req: &nitro::Request) -> String {
    req.tracestate().unwrap_or_default()
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
    (
        "routes/boom.get.rs",
        "pub fn handler() -> String { panic!(\"boom\") }\n",
    ),
    (
        "routes/slow.get.rs",
        r#"pub fn handler() -> &'static str {
    eprintln!("slow: started");
    std::thread::sleep(std::time::Duration::from_secs(30));
    "done"
}
"#,
    ),
];

/// The test's OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics` with a protobuf
/// body, kept decoded (the metrics with their request's headers).
struct Receiver {
    port: u16,
    state: Arc<Kept>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Default)]
struct Kept {
    traces: Mutex<Vec<ExportTraceServiceRequest>>,
    metrics: Mutex<Vec<(hyper::HeaderMap, ExportMetricsServiceRequest)>>,
    /// When set, the first traces request is answered only once `release` is notified.
    hold_first_traces: AtomicBool,
    release: tokio::sync::Notify,
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
        let state: Arc<Kept> = Arc::default();
        let kept = state.clone();
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
            state,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received, with its resource's attributes.
    fn spans(&self) -> Vec<(HashMap<String, String>, String, Span)> {
        let mut out = Vec::new();
        for request in self.state.traces.lock().unwrap().iter() {
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

    /// The metrics requests received so far.
    fn metrics(&self) -> Vec<(hyper::HeaderMap, ExportMetricsServiceRequest)> {
        self.state.metrics.lock().unwrap().clone()
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    kept: &Kept,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let ok = req.method() == hyper::Method::POST
        && req
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/x-protobuf");
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let answer = match path.as_str() {
        "/v1/traces" if ok => {
            if kept.hold_first_traces.swap(false, Ordering::SeqCst) {
                kept.release.notified().await;
            }
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
            kept.traces.lock().unwrap().push(request);
            ExportTraceServiceResponse::default().encode_to_vec()
        }
        "/v1/metrics" if ok => {
            let request = ExportMetricsServiceRequest::decode(body).expect("an OTLP protobuf body");
            kept.metrics.lock().unwrap().push((headers, request));
            ExportMetricsServiceResponse::default().encode_to_vec()
        }
        _ => {
            return Ok(hyper::Response::builder()
                .status(400)
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
    };
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
    nitro_build(project.path());
    let mut cmd = start_command(project.path());
    cmd.env("NITRO_LOG_FORMAT", "json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SERVICE_NAME", "shop-api")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        );
    let mut server = Server::start_output(cmd);
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let res = server.get_with(
        "/users/7",
        &[
            ("traceparent", &tp),
            ("tracestate", "vendor=abc, other=x-1"),
        ],
    );
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
    // Its `tracestate`: the caller's, as the span keeps it.
    let state = [
        ("traceparent", tp.as_str()),
        ("tracestate", "vendor=abc , other=x-1"),
    ];
    assert_eq!(
        server.get_with("/state", &state).text(),
        "vendor=abc,other=x-1"
    );
    assert_eq!(
        server.get_with("/state", &state[1..]).text(),
        "",
        "a new trace"
    );
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
    // The caller's `tracestate` travels with its trace.
    assert_eq!(user.trace_state, "vendor=abc,other=x-1");
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
    let state = [
        ("traceparent", tp.as_str()),
        ("tracestate", "vendor=abc, other=x-1"),
    ];
    assert_eq!(
        dev.get_with("/state", &state).text(),
        "vendor=abc, other=x-1"
    );
    assert_eq!(dev.get_with("/state", &state[1..]).text(), "");
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
        // Batches and metrics every 50 ms, so that several fail while the server runs.
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "50")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut dev = wait_for_url(child, "nitro dev", Duration::from_secs(600));
    for i in 0..20 {
        assert_eq!(dev.get(&format!("/users/{i}")).text(), format!("user {i}"));
    }
    for signal in ["traces", "metrics"] {
        assert!(
            dev.wait_stderr(&format!("cannot send {signal}"), Duration::from_secs(30)),
            "{}",
            dev.stderr()
        );
    }
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
    assert_eq!(err.matches("cannot send metrics").count(), 1, "{err}");
    assert!(
        err.contains(&format!("`http://127.0.0.1:{port}/v1/metrics`")),
        "{err}"
    );
}

/// One data point of an exported metric.
#[derive(Debug, Clone, PartialEq)]
enum Point {
    /// A monotonic, cumulative sum.
    Sum(i64),
    Gauge(f64),
    /// A cumulative histogram.
    Histogram {
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
        bounds: Vec<f64>,
    },
}

type Labels = BTreeMap<String, String>;

/// Metric name → its unit and its points.
type Metrics = BTreeMap<String, (String, Vec<(Labels, Point)>)>;

/// The metrics of one request: name → (unit, points by attributes), checking what every point
/// of nitro's has (the resource, the scope, cumulative temporality, monotonic sums).
fn metric_points(request: &ExportMetricsServiceRequest) -> (HashMap<String, String>, Metrics) {
    let [resource_metrics] = request.resource_metrics.as_slice() else {
        panic!("one resource: {request:#?}");
    };
    let resource = attributes(&resource_metrics.resource.as_ref().unwrap().attributes);
    let [scope_metrics] = resource_metrics.scope_metrics.as_slice() else {
        panic!("one scope: {request:#?}");
    };
    assert_eq!(scope_metrics.scope.as_ref().unwrap().name, "nitro");
    let cumulative = AggregationTemporality::Cumulative as i32;
    let labels = |list: &[KeyValue]| -> Labels { attributes(list).into_iter().collect() };
    let mut out = BTreeMap::new();
    for metric in &scope_metrics.metrics {
        let points: Vec<(Labels, Point)> = match metric.data.as_ref().unwrap() {
            metric::Data::Sum(sum) => {
                assert!(sum.is_monotonic, "{metric:?}");
                assert_eq!(sum.aggregation_temporality, cumulative, "{metric:?}");
                sum.data_points
                    .iter()
                    .map(|p| {
                        assert!(
                            p.start_time_unix_nano > 0
                                && p.start_time_unix_nano <= p.time_unix_nano
                        );
                        let Some(number_data_point::Value::AsInt(v)) = p.value else {
                            panic!("an int: {p:?}");
                        };
                        (labels(&p.attributes), Point::Sum(v))
                    })
                    .collect()
            }
            metric::Data::Gauge(gauge) => gauge
                .data_points
                .iter()
                .map(|p| {
                    let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                        panic!("a double: {p:?}");
                    };
                    (labels(&p.attributes), Point::Gauge(v))
                })
                .collect(),
            metric::Data::Histogram(histogram) => {
                assert_eq!(histogram.aggregation_temporality, cumulative, "{metric:?}");
                histogram
                    .data_points
                    .iter()
                    .map(|p| {
                        (
                            labels(&p.attributes),
                            Point::Histogram {
                                count: p.count,
                                sum: p.sum.unwrap(),
                                buckets: p.bucket_counts.clone(),
                                bounds: p.explicit_bounds.clone(),
                            },
                        )
                    })
                    .collect()
            }
            other => panic!("{other:?}"),
        };
        out.insert(metric.name.clone(), (metric.unit.clone(), points));
    }
    (resource, out)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `nitro_http_requests_total` by route, method and status class.
fn requests_by_route(metrics: &Metrics) -> BTreeMap<(String, String, String), i64> {
    let (_, points) = &metrics["nitro_http_requests_total"];
    points
        .iter()
        .map(|(l, point)| {
            let Point::Sum(n) = point else {
                panic!("{point:?}")
            };
            (
                (
                    l["route"].clone(),
                    l["method"].clone(),
                    l["status_class"].clone(),
                ),
                *n,
            )
        })
        .collect()
}

fn key(route: &str, method: &str, class: &str) -> (String, String, String) {
    (route.into(), method.into(), class.into())
}

#[test]
fn start_sends_its_metrics_over_otlp_without_the_prometheus_endpoint_and_at_shutdown() {
    let receiver = Receiver::start();
    // No `[observability]` table: the variables alone turn the metrics on.
    let project = Project::with_files(FILES);
    nitro_build(project.path());
    let mut cmd = start_command(project.path());
    cmd.env(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        format!("{}/v1/metrics", receiver.endpoint()),
    )
    // An hour: the one export of this test is the one at shutdown.
    .env("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
    .env("OTEL_SERVICE_NAME", "shop-api")
    .env("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret%20key");
    let mut server = Server::start_output(cmd);
    for id in 1..=3 {
        assert_eq!(server.get(&format!("/users/{id}")).status, 200);
    }
    assert_eq!(server.get("/fail").status, 503);
    assert_eq!(server.get("/fail").status, 503);
    assert_eq!(server.get("/boom").status, 500);
    assert_eq!(server.get("/nope").status, 404);
    assert!(server.wait_stderr("GET /nope 404", Duration::from_secs(10)));
    assert!(receiver.metrics().is_empty(), "nothing before the interval");
    let status = server.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.stderr()
    );
    let err = server.stderr();
    assert!(
        err.contains(&format!(
            "Metrics over OTLP: {}/v1/metrics (every 3600 s)",
            receiver.endpoint()
        )),
        "{err}"
    );
    assert!(!err.contains("cannot send"), "{err}");
    assert!(
        !err.contains("Traces:"),
        "only the metrics were asked for: {err}"
    );
    assert!(receiver.spans().is_empty());

    let received = receiver.metrics();
    let [(headers, request)] = received.as_slice() else {
        panic!("one export, at shutdown: {received:#?}");
    };
    assert_eq!(headers.get("api-key").unwrap(), "secret key");
    let (resource, metrics) = metric_points(request);
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("shop-api")
    );
    assert_eq!(
        requests_by_route(&metrics),
        BTreeMap::from([
            (key("", "GET", "4xx"), 1),
            (key("/boom", "GET", "5xx"), 1),
            (key("/fail", "GET", "5xx"), 2),
            (key("/users/:id", "GET", "2xx"), 3),
        ])
    );
    let (unit, durations) = &metrics["nitro_http_request_duration_seconds"];
    assert_eq!(unit, "s");
    let counts: BTreeMap<&str, u64> = durations
        .iter()
        .map(|(l, point)| {
            let Point::Histogram {
                count,
                sum,
                buckets,
                bounds,
            } = point
            else {
                panic!("{point:?}");
            };
            assert_eq!(buckets.iter().sum::<u64>(), *count, "{point:?}");
            assert_eq!(buckets.len(), bounds.len() + 1);
            assert_eq!(
                bounds,
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0
                ]
            );
            assert!(*sum > 0.0, "{point:?}");
            (l["route"].as_str(), *count)
        })
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([("", 1), ("/boom", 1), ("/fail", 2), ("/users/:id", 3)])
    );
    assert_eq!(
        metrics["nitro_route_panics_total"].1,
        [(labels(&[("route", "routes/boom.get.rs")]), Point::Sum(1))]
    );
    assert_eq!(
        metrics["nitro_ws_peers_open"].1,
        [(Labels::new(), Point::Gauge(0.0))]
    );
    for name in [
        "nitro_ws_messages_received_total",
        "nitro_ws_messages_sent_total",
        "nitro_ws_publishes_total",
    ] {
        assert_eq!(metrics[name].1, [(Labels::new(), Point::Sum(0))], "{name}");
    }
    assert!(!metrics.contains_key("nitro_route_timeouts_total"));
}

#[test]
fn dev_sends_its_metrics_every_interval_as_the_scrape_counts_them() {
    let receiver = Receiver::start();
    let project = Project::with_files(FILES);
    project.write(
        "nitro.toml",
        "[observability]\nmetrics = \"/__nitro/metrics\"\n",
    );
    let child = nitro()
        .arg("dev")
        .arg(project.path())
        .args(["--port", "0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "100")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut dev = wait_for_url(child, "nitro dev", Duration::from_secs(600));
    for id in 0..5 {
        assert_eq!(dev.get(&format!("/users/{id}")).status, 200);
    }
    // The periodic exports reach the five requests (no stop needed).
    let five = |received: &[(hyper::HeaderMap, ExportMetricsServiceRequest)]| {
        received.last().is_some_and(|(_, request)| {
            let (_, metrics) = metric_points(request);
            metrics.contains_key("nitro_http_requests_total")
                && requests_by_route(&metrics).get(&key("/users/:id", "GET", "2xx")) == Some(&5)
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !five(&receiver.metrics()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(five(&receiver.metrics()), "{:#?}", receiver.metrics());
    // The scrape says the same.
    let scraped = dev.get("/__nitro/metrics").text();
    assert!(
        scraped.contains(
            r#"nitro_http_requests_total{route="/users/:id",method="GET",status_class="2xx"} 5"#
        ),
        "{scraped}"
    );
    let status = dev.terminate(Duration::from_secs(60));
    assert!(status.is_some(), "{}", dev.stderr());
    let err = dev.stderr();
    assert!(err.contains("Metrics over OTLP:"), "{err}");
    assert!(err.contains("Metrics: http://"), "{err}");
    assert!(!err.contains("cannot send"), "{err}");
    assert!(receiver.spans().is_empty(), "traces are off");
    // The last export (at shutdown) counts the scrape too.
    let received = receiver.metrics();
    let (_, metrics) = metric_points(&received.last().unwrap().1);
    assert_eq!(
        requests_by_route(&metrics).get(&key("/__nitro/metrics", "GET", "2xx")),
        Some(&1)
    );
}

#[test]
fn a_second_signal_still_sends_what_is_queued() {
    let receiver = Receiver::start();
    let project = Project::with_files(FILES);
    nitro_build(project.path());
    let mut cmd = start_command(project.path());
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        // Nothing leaves on its own while the test runs: only the exit sends.
        .env("OTEL_BSP_SCHEDULE_DELAY", "3600000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "3600000");
    let mut server = Server::start_output(cmd);
    assert_eq!(server.get("/users/1").text(), "user 1");
    assert_eq!(server.get("/users/2").text(), "user 2");
    server.force_exit_with_a_request_in_flight("/slow");
    let spans = receiver.spans();
    for path in ["/users/1", "/users/2"] {
        let span = request_span(&spans, path);
        assert_eq!(span.name, "GET /users/:id");
    }
    // The slow request never finished: no span.
    assert!(
        spans.iter().all(|(_, _, s)| attributes(&s.attributes)
            .get("url.path")
            .map(String::as_str)
            != Some("/slow")),
        "{spans:#?}"
    );
    let received = receiver.metrics();
    let [(_, request)] = received.as_slice() else {
        panic!("one export, at the exit: {received:#?}");
    };
    let (_, metrics) = metric_points(request);
    assert_eq!(
        requests_by_route(&metrics),
        BTreeMap::from([(key("/users/:id", "GET", "2xx"), 2)])
    );
}

#[test]
fn spans_a_full_queue_dropped_are_counted_at_exit() {
    let receiver = Receiver::start();
    // The collector holds the first export: the queue (two spans) fills behind it.
    receiver
        .state
        .hold_first_traces
        .store(true, Ordering::SeqCst);
    let project = Project::with_files(FILES);
    nitro_build(project.path());
    let mut cmd = start_command(project.path());
    cmd.arg("-q")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "2")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "120000");
    let mut server = Server::start_output(cmd);
    for id in 0..10 {
        assert_eq!(server.get(&format!("/users/{id}")).status, 200);
    }
    receiver.state.release.notify_one();
    let status = server.terminate(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.stderr()
    );
    let err = server.stderr();
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("spans were dropped because the export queue was full"))
        .collect();
    let [line] = said.as_slice() else {
        panic!("said once: {err}");
    };
    assert!(line.contains("`OTEL_BSP_MAX_QUEUE_SIZE`"), "{line}");
    // `N of M spans`: every span is either received or counted as dropped.
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "of").unwrap();
    let dropped: usize = words[at - 1].parse().unwrap();
    let handed: usize = words[at + 1].parse().unwrap();
    assert_eq!(handed, 10, "{line}");
    assert!(dropped > 0, "{line}");
    assert_eq!(receiver.spans().len() + dropped, handed, "{err}");
}
