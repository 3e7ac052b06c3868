//! OTLP export of the server's spans, when OpenTelemetry's environment variables ask for it
//! ([`config`]; docs/deploy.md lists them).
//!
//! With export on, the subscriber of `logging` gets one more layer, `tracing-opentelemetry`'s,
//! whose tracer hands finished spans to the SDK's batch processor: a thread of its own that
//! posts them as OTLP/HTTP protobuf through [`client::Client`]. A request pays the layer's
//! bookkeeping and a push into the processor's queue; the export is never on its path (a full
//! queue drops spans, a down collector is said once). [`shutdown`] flushes what is queued: the
//! last spans of a graceful stop are sent before the process exits.
//!
//! Three things are nitro's own:
//! - [`Propagation`] (installed into `nitro_runtime::telemetry::otel`): a request's valid
//!   `traceparent` becomes the remote parent of its span, the span's trace id is recorded on its
//!   `trace_id` field (so log lines and the exported trace agree), and routes get the
//!   `traceparent` of their request's span for outgoing calls (`Request::traceparent`);
//! - [`HttpServerSpans`], a span processor in front of the batch one, which gives request spans
//!   what OpenTelemetry's HTTP semantic conventions say a server span has (kind `server`, the
//!   name `GET /users/:id`, an error status for a `5xx`), and drops the `trace_id`/`parent_id`
//!   fields, which the span's own ids already carry;
//! - the HTTP client ([`client`]).
//!
//! With export off (no variable set) none of this exists: no layer, no thread, nothing
//! installed in the runtime.

mod client;
pub(crate) mod config;

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

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
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanProcessor,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use config::Decision;

/// What runs while traces are exported; kept until [`shutdown`].
struct Export {
    provider: SdkTracerProvider,
    /// The client's runtime: dropped after the provider has flushed.
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
}

static EXPORT: Mutex<Option<Export>> = Mutex::new(None);
static URL: OnceLock<String> = OnceLock::new();

/// What [`start`] found.
pub(crate) enum Started {
    /// Export on: the tracer for the layer.
    On(SdkTracer),
    /// Export off.
    Off,
    /// Export asked for but not possible: the warning (say it once the subscriber is up).
    Warn(String),
}

/// Starts the exporter when the environment asks for it. Call once, before the subscriber is
/// installed (the layer needs the tracer).
pub(crate) fn start() -> Started {
    match config::decide(|name| std::env::var(name).ok()) {
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

fn build(url: &str, timeout: Duration) -> Result<SdkTracer, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("nitro-otlp")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the exporter's thread ({e})"))?;
    let client = client::Client::new(runtime.handle().clone(), url.to_owned(), timeout);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, as the SDK reads them (with the
    // spec's `unknown_service:nitro` when neither names the service); `OTEL_BSP_*` for the
    // batches and `OTEL_TRACES_SAMPLER` (default: parent-based, always on) likewise.
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().build())
        .with_span_processor(HttpServerSpans(
            BatchSpanProcessor::builder(exporter).build(),
        ))
        .build();
    let scope = InstrumentationScope::builder("nitro")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    *EXPORT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Export {
        provider,
        runtime,
        timeout,
    });
    let _ = nitro_runtime::telemetry::otel::install(Box::new(Propagation));
    Ok(tracer)
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

/// Sends the spans still queued and stops the exporter, waiting at most the export timeout
/// (a collector that does not answer cannot hold the exit longer). Does nothing when not
/// exporting; call once, before the process exits.
pub(crate) fn shutdown() {
    let export = EXPORT.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(export) = export else {
        return;
    };
    if let Err(error) = export.provider.shutdown_with_timeout(export.timeout) {
        tracing::warn!(target: "nitro::otel", "traces not all sent at exit: {error}");
    }
    export.runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Ties request spans to their remote parent, and answers routes' `traceparent` calls.
struct Propagation;

impl nitro_runtime::telemetry::otel::Propagation for Propagation {
    fn request_span(&self, span: &Span, headers: &http::HeaderMap) {
        let parent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        if let Some(parent) = parent.as_ref().and_then(remote_context) {
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
}

/// The remote parent a valid `traceparent` names.
fn remote_context(parent: &TraceParent<'_>) -> Option<Context> {
    let trace_id = TraceId::from_hex(parent.trace_id).ok()?;
    let span_id = SpanId::from_hex(parent.parent_id).ok()?;
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE);
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
/// module docs).
#[derive(Debug)]
struct HttpServerSpans<P>(P);

impl<P: SpanProcessor> SpanProcessor for HttpServerSpans<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if span.name == REQUEST_SPAN {
            http_server_span(&mut span);
        }
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
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
        let context = remote_context(&parent).unwrap();
        let span = context.span().span_context().clone();
        assert!(span.is_remote() && span.is_sampled());
        assert_eq!(
            traceparent(&span),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let unsampled =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let context = remote_context(&unsampled).unwrap();
        assert!(!context.span().span_context().is_sampled());
    }
}
