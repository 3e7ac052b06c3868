//! The route's `tracing` subscriber: every event (and `log` record) goes to the host's
//! subscriber through `HostApi::event`.
//!
//! A route library has its own copy of `tracing` and so its own global dispatcher, which
//! nothing would read. `init` installs this subscriber there (unless the route installed one
//! first), so `tracing::info!(user = id, "order placed")` in a handler reaches the server's log
//! with the route file attached, inside the host's current span (the request's: the host enters
//! it around every poll and call of the route). The route's own spans are not sent as spans:
//! their fields travel with each event inside them, as context.
//!
//! `Request::traceparent` and `Request::tracestate` are here too (an `impl Request` of this
//! module, as `extract.rs` has): the host's values for the current call when it exports traces,
//! else the request's own valid headers.
//!
//! Disabled levels cost nothing: the subscriber's `max_level_hint` is the host's most verbose
//! level when the library was loaded, and callsites above it are never enabled, so `tracing`'s
//! macros skip them after one comparison.

use nitro_abi as abi;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber, span};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

impl crate::Request {
    /// The W3C `traceparent` value to put on an outgoing HTTP call, so that what the callee
    /// does joins this request's trace:
    ///
    /// - when the server exports traces (`OTEL_EXPORTER_OTLP_ENDPOINT` is set), the request
    ///   span's: its trace id (the caller's, when the request came with a `traceparent`), the
    ///   request span as the parent;
    /// - otherwise the request's own valid `traceparent` header, passed on unchanged;
    /// - otherwise `None`.
    ///
    /// Call it while the handler runs: the host answers for the span of the call in progress
    /// (a task spawned from the handler gets the incoming header only).
    ///
    /// ```no_run
    /// # fn call(req: &nitro::Request) {
    /// let mut headers = vec![("accept", "application/json".to_string())];
    /// if let Some(traceparent) = req.traceparent() {
    ///     headers.push(("traceparent", traceparent));
    /// }
    /// # }
    /// ```
    pub fn traceparent(&self) -> Option<String> {
        if let Some(value) = crate::ffi::host_traceparent() {
            return Some(value);
        }
        self.own_traceparent().map(str::to_owned)
    }

    /// The W3C `tracestate` value to put on an outgoing HTTP call beside
    /// [`traceparent`](Self::traceparent)'s: the vendor entries of the trace the call joins.
    ///
    /// - when the server exports traces, its request span's (the caller's `tracestate`, when the
    ///   request came with a `traceparent`; `None` for a trace the server started);
    /// - otherwise the request's own `tracestate` header (its lines joined with `,`), passed on
    ///   unchanged when the request has a valid `traceparent` (the two travel together);
    /// - otherwise `None`.
    ///
    /// ```no_run
    /// # fn call(req: &nitro::Request) {
    /// let mut headers = Vec::new();
    /// if let Some(traceparent) = req.traceparent() {
    ///     headers.push(("traceparent", traceparent));
    ///     if let Some(tracestate) = req.tracestate() {
    ///         headers.push(("tracestate", tracestate));
    ///     }
    /// }
    /// # }
    /// ```
    pub fn tracestate(&self) -> Option<String> {
        if crate::ffi::host_traceparent().is_some() {
            return crate::ffi::host_tracestate();
        }
        self.own_traceparent()?;
        let lines: Vec<&str> = self
            .headers()
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("tracestate"))
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
            .collect();
        (!lines.is_empty()).then(|| lines.join(","))
    }

    /// The request's own valid `traceparent` header.
    fn own_traceparent(&self) -> Option<&str> {
        self.header("traceparent")
            .map(str::trim)
            .filter(|v| valid_traceparent(v))
    }
}

/// Whether `value` is a valid W3C `traceparent` (the host's parser: `nitro-abi`'s).
fn valid_traceparent(value: &str) -> bool {
    abi::trace_context::TraceParent::parse(value).is_some()
}

/// The host level (one of `abi::level`, 0 for none) as a filter.
pub(crate) fn level_filter(level: u32) -> LevelFilter {
    match level {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

fn abi_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => abi::level::ERROR,
        Level::WARN => abi::level::WARN,
        Level::INFO => abi::level::INFO,
        Level::DEBUG => abi::level::DEBUG,
        Level::TRACE => abi::level::TRACE,
    }
}

/// Installs the forwarding subscriber as the route's global default, and the `log` → `tracing`
/// bridge, when the host takes events (`max_level` is `Some`). Does nothing if the route or an
/// earlier load already installed one.
pub(crate) fn install(max_level: Option<u32>) {
    let Some(max_level) = max_level else {
        return;
    };
    let max = level_filter(max_level);
    let subscriber = tracing_subscriber::registry().with(Forward { max });
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = tracing_log::LogTracer::builder()
            .with_max_level(match max.into_level() {
                None => log::LevelFilter::Off,
                Some(Level::ERROR) => log::LevelFilter::Error,
                Some(Level::WARN) => log::LevelFilter::Warn,
                Some(Level::INFO) => log::LevelFilter::Info,
                Some(Level::DEBUG) => log::LevelFilter::Debug,
                Some(Level::TRACE) => log::LevelFilter::Trace,
            })
            .init();
    }
}

/// The layer that sends events to the host.
struct Forward {
    max: LevelFilter,
}

/// A span's fields, kept in its extensions until the span closes.
struct SpanFields(Vec<Recorded>);

/// One field as sent to the host.
struct Recorded {
    name: &'static str,
    kind: u8,
    value: String,
}

/// Collects fields as [`Recorded`] values.
struct Collect<'a>(&'a mut Vec<Recorded>);

impl Collect<'_> {
    fn push(&mut self, field: &Field, kind: u8, value: String) {
        self.0.push(Recorded {
            name: field.name(),
            kind,
            value,
        });
    }
}

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, abi::field_kind::STR, value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, abi::field_kind::I64, value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, abi::field_kind::U64, value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, abi::field_kind::F64, value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, abi::field_kind::BOOL, value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, abi::field_kind::DEBUG, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.push(field, abi::field_kind::DEBUG, text);
    }
}

impl<S> Layer<S> for Forward
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.max >= *metadata.level() {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.max >= *metadata.level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Collect(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Vec::new();
        event.record(&mut Collect(&mut fields));
        // `log` records arrive with their target and location as fields: restore the target.
        let mut target = meta.target().to_owned();
        if let Some(at) = fields.iter().position(|f| f.name == "log.target") {
            target = fields[at].value.clone();
        }
        fields.retain(|f| !f.name.starts_with("log."));
        // The fields of the route's spans around the event, innermost first; a later field of
        // the same name in the same span (a re-record) wins over an earlier one.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(recorded) = span.extensions().get::<SpanFields>() {
                    for field in recorded.0.iter().rev() {
                        fields.push(Recorded {
                            name: field.name,
                            kind: field.kind,
                            value: field.value.clone(),
                        });
                    }
                }
            }
        }
        let mut seen: Vec<&str> = Vec::with_capacity(fields.len());
        let mut out: Vec<abi::LogField> = Vec::with_capacity(fields.len());
        for field in &fields {
            if seen.contains(&field.name) {
                continue;
            }
            seen.push(field.name);
            out.push(abi::LogField {
                name: abi::Bytes::new(field.name.as_bytes()),
                value: abi::Bytes::new(field.value.as_bytes()),
                kind: field.kind,
            });
        }
        crate::ffi::host_event(abi_level(meta.level()), &target, &out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_host_the_request_passes_its_own_valid_traceparent_on() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let req = crate::Request::builder("GET", "/")
            .header("traceparent", ok)
            .build();
        assert_eq!(req.traceparent().as_deref(), Some(ok));
        let req = crate::Request::builder("GET", "/").build();
        assert_eq!(req.traceparent(), None);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            let req = crate::Request::builder("GET", "/")
                .header("traceparent", bad)
                .build();
            assert_eq!(req.traceparent(), None, "{bad}");
        }
        assert!(valid_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"
        ));
    }

    #[test]
    fn without_a_host_the_tracestate_goes_with_a_valid_traceparent() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let req = crate::Request::builder("GET", "/")
            .header("traceparent", ok)
            .header("tracestate", "vendor=abc")
            .header("TraceState", " other=x ")
            .build();
        assert_eq!(req.tracestate().as_deref(), Some("vendor=abc,other=x"));
        let req = crate::Request::builder("GET", "/")
            .header("traceparent", ok)
            .build();
        assert_eq!(req.tracestate(), None);
        let req = crate::Request::builder("GET", "/")
            .header("traceparent", "00-bad")
            .header("tracestate", "vendor=abc")
            .build();
        assert_eq!(req.tracestate(), None);
        let req = crate::Request::builder("GET", "/")
            .header("tracestate", "vendor=abc")
            .build();
        assert_eq!(req.tracestate(), None);
    }
}
