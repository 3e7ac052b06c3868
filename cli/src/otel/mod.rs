//! OTLP export of the server's spans and metrics, when OpenTelemetry's environment variables
//! ask for it ([`config`]; docs/deploy.md lists them). The metrics' export is [`metrics`]; the
//! rest of these docs are about the spans.
//!
//! With export on, the subscriber of `logging` gets one more layer, `tracing-opentelemetry`'s,
//! whose tracer hands finished spans to the SDK's batch processor: a thread of its own that
//! posts them as OTLP/HTTP protobuf through [`client::Client`]. A request pays the layer's
//! bookkeeping and a push into the processor's queue; the export is never on its path (a full
//! queue drops spans, counted and said once at exit; a down collector is said once).
//! [`shutdown`] flushes what is queued: the last spans of a graceful stop are sent before the
//! process exits, and a forced exit (a second Ctrl-C) gives them [`FORCED_EXIT_FLUSH`].
//!
//! Three things are nitro's own:
//! - [`Propagation`] (installed into `nitro_runtime::telemetry::otel`): a request's valid
//!   `traceparent` becomes the remote parent of its span (with its `tracestate`), the span's
//!   trace id is recorded on its `trace_id` field (so log lines and the exported trace agree),
//!   and routes get the `traceparent` and `tracestate` of their request's span for outgoing
//!   calls (`Request::traceparent`, `Request::tracestate`);
//! - [`HttpServerSpans`], a span processor in front of the batch one, which gives request spans
//!   what OpenTelemetry's HTTP semantic conventions say a server span has (kind `server`, the
//!   name `GET /users/:id`, an error status for a `5xx`), and drops the `trace_id`/`parent_id`
//!   fields, which the span's own ids already carry;
//! - the HTTP client ([`client`]).
//!
//! With export off (no variable set) none of this exists: no layer, no thread, nothing
//! installed in the runtime. Both signals share the exporters' runtime (one thread).

mod client;
pub(crate) mod config;
mod metrics;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nitro_runtime::Hub;
use nitro_runtime::telemetry::span::{REQUEST_SPAN, TraceParent};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use config::{Decision, Signal};

/// What runs while exporting; taken apart by [`shutdown`].
struct Export {
    /// The exporters' runtime (the HTTP client's): dropped after they flushed.
    runtime: Option<tokio::runtime::Runtime>,
    traces: Option<Traces>,
    metrics: Option<Metrics>,
}

struct Traces {
    provider: SdkTracerProvider,
    timeout: Duration,
    counts: Arc<SpanCounts>,
}

struct Metrics {
    exporter: Arc<metrics::Exporter>,
    /// The periodic exports.
    task: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

static EXPORT: Mutex<Export> = Mutex::new(Export {
    runtime: None,
    traces: None,
    metrics: None,
});
static URL: OnceLock<String> = OnceLock::new();
static METRICS_URL: OnceLock<String> = OnceLock::new();

/// How long a forced exit (a second Ctrl-C) waits for the last spans and metrics.
pub(crate) const FORCED_EXIT_FLUSH: Duration = Duration::from_secs(1);

/// What [`start`] found.
pub(crate) enum Started {
    /// Export on: the tracer for the layer.
    On(SdkTracer),
    /// Export off.
    Off,
    /// Export asked for but not possible: the warning (say it once the subscriber is up).
    Warn(String),
}

/// Starts the trace exporter when the environment asks for it. Call once, before the
/// subscriber is installed (the layer needs the tracer).
pub(crate) fn start() -> Started {
    match config::decide(Signal::Traces, |name| std::env::var(name).ok()) {
        Decision::Off => Started::Off,
        Decision::Unsupported(message) => Started::Warn(message),
        Decision::On { url, timeout } => match build(&url, timeout) {
            Ok(tracer) => {
                let _ = URL.set(url);
                Started::On(tracer)
            }
            Err(error) => Started::Warn(format!(
                "cannot export traces to `{url}`: {error}; not exporting"
            )),
        },
    }
}

/// The exporters' runtime, started by the first exporter.
fn runtime(export: &mut Export) -> Result<tokio::runtime::Handle, String> {
    if let Some(runtime) = &export.runtime {
        return Ok(runtime.handle().clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("nitro-otlp")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the exporter's thread ({e})"))?;
    let handle = runtime.handle().clone();
    export.runtime = Some(runtime);
    Ok(handle)
}

fn build(url: &str, timeout: Duration) -> Result<SdkTracer, String> {
    let mut export = EXPORT.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = runtime(&mut export)?;
    let client = client::Client::new(runtime, Signal::Traces, url.to_owned(), timeout);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let counts = Arc::new(SpanCounts::default());
    // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, as the SDK reads them (with the
    // spec's `unknown_service:nitro` when neither names the service); `OTEL_BSP_*` for the
    // batches and `OTEL_TRACES_SAMPLER` (default: parent-based, always on) likewise.
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().build())
        .with_span_processor(HttpServerSpans {
            next: BatchSpanProcessor::builder(Counted {
                exporter,
                counts: counts.clone(),
            })
            .build(),
            counts: counts.clone(),
        })
        .build();
    let scope = InstrumentationScope::builder("nitro")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    export.traces = Some(Traces {
        provider,
        timeout,
        counts,
    });
    let _ = nitro_runtime::telemetry::otel::install(Box::new(Propagation));
    Ok(tracer)
}

/// Starts the export of the server's metrics when the environment asks for it (see
/// [`metrics`]), whether or not `[observability] metrics` serves them too: counting is turned
/// on here. Call once, from the process that serves, with its hub (the open peers are read
/// from it at each export). Says itself what it cannot do.
pub(crate) fn start_metrics(hub: &Arc<Hub>) {
    let var = |name: &str| std::env::var(name).ok();
    let (url, timeout) = match config::decide(Signal::Metrics, var) {
        Decision::Off => return,
        Decision::Unsupported(message) => {
            tracing::warn!(target: "nitro::otel", "{message}");
            return;
        }
        Decision::On { url, timeout } => (url, timeout),
    };
    let settings = match config::metrics_settings(var) {
        Ok(settings) => settings,
        Err(message) => {
            tracing::warn!(target: "nitro::otel", "{message}");
            return;
        }
    };
    if let Err(error) = nitro_runtime::telemetry::metrics::install() {
        tracing::warn!(target: "nitro::otel", "{error}; not exporting metrics");
        return;
    }
    let mut export = EXPORT.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = match runtime(&mut export) {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(target: "nitro::otel", "cannot export metrics to `{url}`: {error}; not exporting");
            return;
        }
    };
    let client = client::Client::new(runtime.clone(), Signal::Metrics, url.clone(), timeout);
    let hub = hub.clone();
    let source: metrics::Source =
        Box::new(move || nitro_runtime::telemetry::metrics::snapshot(hub.peer_count()));
    let exporter = Arc::new(metrics::Exporter::new(
        client,
        url.clone(),
        settings.headers,
        source,
    ));
    let task = runtime.spawn(metrics::every(exporter.clone(), settings.interval));
    export.metrics = Some(Metrics {
        exporter,
        task,
        timeout,
    });
    let _ = METRICS_URL.set(format!(
        "{url} (every {})",
        human_interval(settings.interval)
    ));
}

/// `60 s`, `500 ms`.
fn human_interval(interval: Duration) -> String {
    if interval.subsec_millis() == 0 {
        format!("{} s", interval.as_secs())
    } else {
        format!("{} ms", interval.as_millis())
    }
}

/// The layer for the subscriber: spans become OpenTelemetry spans with their fields as
/// attributes, events inside them span events. No code location, thread or busy/idle
/// attributes (noise here, and a clock read per enter).
pub(crate) fn layer<S>(tracer: SdkTracer) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
}

/// The traces URL, when exporting (for the start-up banner).
pub(crate) fn url() -> Option<&'static str> {
    URL.get().map(String::as_str)
}

/// The metrics URL and interval, when exporting (for the start-up banner).
pub(crate) fn metrics_url() -> Option<&'static str> {
    METRICS_URL.get().map(String::as_str)
}

/// Sends what is left (the spans still queued, the metrics as they are now) and stops the
/// exporters, waiting at most the export timeout (a collector that does not answer cannot
/// hold the exit longer). Does nothing when not exporting; call once, before the process
/// exits.
pub(crate) fn shutdown() {
    finish(None);
}

/// [`shutdown`] for an exit that must not wait: at most `bound` (a second Ctrl-C).
pub(crate) fn shutdown_within(bound: Duration) {
    finish(Some(bound));
}

fn finish(bound: Option<Duration>) {
    let export = {
        let mut export = EXPORT.lock().unwrap_or_else(PoisonError::into_inner);
        Export {
            runtime: export.runtime.take(),
            traces: export.traces.take(),
            metrics: export.metrics.take(),
        }
    };
    let Some(runtime) = export.runtime else {
        return;
    };
    let wait = |timeout: Duration| bound.map_or(timeout, |bound| bound.min(timeout));
    // The metrics' last export runs on the exporters' runtime while the spans flush here.
    let metrics = export.metrics.map(|metrics| {
        metrics.task.abort();
        let (done, finished) = std::sync::mpsc::channel();
        let exporter = metrics.exporter;
        runtime.spawn(async move {
            exporter.export().await;
            let _ = done.send(());
        });
        (finished, Instant::now() + wait(metrics.timeout))
    });
    if let Some(traces) = export.traces {
        match traces.provider.shutdown_with_timeout(wait(traces.timeout)) {
            Ok(()) => traces.counts.say_dropped(),
            Err(error) => {
                tracing::warn!(target: "nitro::otel", "traces not all sent at exit: {error}");
            }
        }
    }
    if let Some((finished, deadline)) = metrics
        && finished
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
    {
        tracing::warn!(target: "nitro::otel", "the last metrics were not sent at exit: the collector did not answer in time");
    }
    match bound {
        // The forced exit calls from inside the server's runtime, where a runtime cannot wait
        // for its threads; the process ends right after.
        Some(_) => runtime.shutdown_background(),
        None => runtime.shutdown_timeout(Duration::from_millis(100)),
    }
}

/// The spans handed to the batch processor and those it handed to the exporter: after a
/// complete flush, the difference is what a full queue dropped.
#[derive(Debug, Default)]
struct SpanCounts {
    handed: AtomicU64,
    exported: AtomicU64,
}

impl SpanCounts {
    /// Says how many spans a full queue dropped, if any (once: at exit, after the flush).
    fn say_dropped(&self) {
        let handed = self.handed.load(Ordering::Relaxed);
        let dropped = handed.saturating_sub(self.exported.load(Ordering::Relaxed));
        if dropped > 0 {
            tracing::warn!(
                target: "nitro::otel",
                "{dropped} of {handed} spans were dropped because the export queue was full (the collector was slower than the requests): raise `OTEL_BSP_MAX_QUEUE_SIZE` (default 2048) or lower `OTEL_BSP_SCHEDULE_DELAY` (default 5000 ms)"
            );
        }
    }
}

/// The OTLP exporter, counting the spans it is handed.
#[derive(Debug)]
struct Counted<E> {
    exporter: E,
    counts: Arc<SpanCounts>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.counts
            .exported
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.exporter.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.exporter.set_resource(resource);
    }
}

/// Ties request spans to their remote parent, and answers routes' `traceparent` calls.
struct Propagation;

impl nitro_runtime::telemetry::otel::Propagation for Propagation {
    fn request_span(&self, span: &Span, headers: &http::HeaderMap) {
        let parent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        if let Some(parent) = parent
            .as_ref()
            .and_then(|parent| remote_context(parent, trace_state(headers)))
        {
            let _ = span.set_parent(parent);
            return;
        }
        // A new trace: its id on the span, as an incoming one would be.
        let context = span.context();
        let trace_id = context.span().span_context().trace_id();
        if trace_id != TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace_id));
        }
    }

    fn traceparent(&self, span: &Span) -> Option<String> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then(|| traceparent(&span_context))
    }

    fn tracestate(&self, span: &Span) -> Option<String> {
        let context = span.context();
        let state = context.span().span_context().trace_state().header();
        (!state.is_empty()).then_some(state)
    }
}

/// The request's W3C `tracestate` (its header lines joined, as the spec allows); empty when
/// there is none or it is not valid (the spec says to discard it then).
fn trace_state(headers: &http::HeaderMap) -> TraceState {
    let mut lines = headers.get_all("tracestate").iter();
    let Some(first) = lines.next() else {
        return TraceState::NONE;
    };
    let mut joined = String::from(first.to_str().unwrap_or_default());
    for line in lines {
        joined.push(',');
        joined.push_str(line.to_str().unwrap_or_default());
    }
    // Empty list members (`a=1,,b=2`, a trailing comma) are allowed and skipped.
    let members: Vec<&str> = joined
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if members.is_empty() || members.len() > 32 {
        return TraceState::NONE;
    }
    members.join(",").parse().unwrap_or(TraceState::NONE)
}

/// The remote parent a valid `traceparent` names, with the caller's `tracestate`.
fn remote_context(parent: &TraceParent<'_>, state: TraceState) -> Option<Context> {
    let trace_id = TraceId::from_hex(parent.trace_id).ok()?;
    let span_id = SpanId::from_hex(parent.parent_id).ok()?;
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, state);
    Some(Context::new().with_remote_span_context(remote))
}

/// The W3C `traceparent` header value of a span.
fn traceparent(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

/// Gives request spans the shape of an HTTP server span before they are batched (see the
/// module docs), and counts what it hands on ([`SpanCounts`]).
#[derive(Debug)]
struct HttpServerSpans<P> {
    next: P,
    counts: Arc<SpanCounts>,
}

impl<P: SpanProcessor> SpanProcessor for HttpServerSpans<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.next.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if span.name == REQUEST_SPAN {
            http_server_span(&mut span);
        }
        self.counts.handed.fetch_add(1, Ordering::Relaxed);
        self.next.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.next.set_resource(resource);
    }
}

/// Kind `server`, name `{method} {route}` (`{method}` when no route matched), the status code
/// as an int, an error status for a `5xx`; without the `trace_id`/`parent_id` attributes.
fn http_server_span(span: &mut SpanData) {
    span.span_kind = SpanKind::Server;
    span.attributes
        .retain(|kv| kv.key.as_str() != "trace_id" && kv.key.as_str() != "parent_id");
    // `tracing-opentelemetry` records a `u64` field as text: the convention's type is an int.
    for kv in &mut span.attributes {
        if kv.key.as_str() == "http.response.status_code"
            && let Value::String(code) = &kv.value
            && let Ok(code) = code.as_str().parse::<i64>()
        {
            kv.value = Value::I64(code);
        }
    }
    let find = |key: &str| -> Option<&Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    };
    let method = find("http.request.method").map(Value::as_str);
    let route = find("http.route").map(Value::as_str);
    let status = match find("http.response.status_code") {
        Some(Value::I64(code)) => Some(*code),
        _ => None,
    };
    if let Some(method) = method {
        span.name = Cow::Owned(match route {
            Some(route) => format!("{method} {route}"),
            None => method.into_owned(),
        });
    }
    if let Some(code) = status.filter(|c| *c >= 500)
        && !matches!(span.status, Status::Error { .. })
    {
        span.status = Status::error(format!("{code}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;

    fn request_span(attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(REQUEST_SPAN),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("nitro").build(),
        }
    }

    #[test]
    fn request_spans_become_http_server_spans() {
        let mut span = request_span(vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/users/7"),
            KeyValue::new("http.route", "/users/:id"),
            KeyValue::new("http.response.status_code", "503"),
            KeyValue::new("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
            KeyValue::new("parent_id", "00f067aa0ba902b7"),
        ]);
        http_server_span(&mut span);
        assert_eq!(span.name, "GET /users/:id");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.status, Status::error("503"));
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.request.method",
                "url.path",
                "http.route",
                "http.response.status_code"
            ]
        );
        assert_eq!(span.attributes[3].value, Value::I64(503));

        let mut span = request_span(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 404_i64),
        ]);
        http_server_span(&mut span);
        assert_eq!(span.name, "POST");
        assert_eq!(span.status, Status::Unset);
    }

    #[test]
    fn traceparent_round_trip() {
        let parent =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let context = remote_context(&parent, TraceState::NONE).unwrap();
        let span = context.span().span_context().clone();
        assert!(span.is_remote() && span.is_sampled());
        assert_eq!(
            traceparent(&span),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let unsampled =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let context = remote_context(&unsampled, TraceState::NONE).unwrap();
        assert!(!context.span().span_context().is_sampled());
    }

    #[test]
    fn tracestate_is_read_from_every_header_line() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(trace_state(&headers), TraceState::NONE);
        headers.append(
            "tracestate",
            "vendor=abc, other@tenant=x-1".parse().unwrap(),
        );
        headers.append("tracestate", "third=3,".parse().unwrap());
        let state = trace_state(&headers);
        assert_eq!(state.header(), "vendor=abc,other@tenant=x-1,third=3");
        assert_eq!(state.get("other@tenant"), Some("x-1"));
        // Not valid: discarded whole.
        let mut bad = http::HeaderMap::new();
        bad.append("tracestate", "Vendor=abc".parse().unwrap());
        assert_eq!(trace_state(&bad), TraceState::NONE);
        let mut bad = http::HeaderMap::new();
        bad.append("tracestate", "novalue".parse().unwrap());
        assert_eq!(trace_state(&bad), TraceState::NONE);

        let parent =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let context = remote_context(&parent, state).unwrap();
        assert_eq!(
            context.span().span_context().trace_state().header(),
            "vendor=abc,other@tenant=x-1,third=3"
        );
    }
}
