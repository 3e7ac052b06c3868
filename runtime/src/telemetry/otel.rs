//! The seam for trace export: the runtime knows nothing of OpenTelemetry; the CLI, when it
//! exports traces, installs a [`Propagation`] here, which ties each request span to the remote
//! trace of its `traceparent` (and `tracestate`) and tells routes the `traceparent` and
//! `tracestate` to put on their outgoing calls (`HostApi::traceparent`, `HostApi::tracestate`).
//!
//! With nothing installed (no exporter: the usual case), a request pays nothing for this seam:
//! the request span's hook is one load of an unset cell, and routes are only answered when they
//! ask.

use std::sync::OnceLock;

use http::HeaderMap;
use tracing::Span;

/// What an exporter does with the server's spans. Installed once per process with
/// [`install`].
pub trait Propagation: Send + Sync + 'static {
    /// Called once for every enabled request span, right after it is made and before it is
    /// entered, with the request's headers: make the span a child of the remote span of a
    /// valid `traceparent` (`span::TraceParent::parse`), and record its trace id on the span's
    /// `trace_id` field when the request did not bring one (the span already carries the
    /// incoming `trace_id`/`parent_id`).
    fn request_span(&self, span: &Span, headers: &HeaderMap);

    /// The `traceparent` value for a call made from inside `span` (the span current while a
    /// route runs): its trace id, its own span id, its sampled flag. `None` when the span is
    /// not exported.
    fn traceparent(&self, span: &Span) -> Option<String>;

    /// The `tracestate` value that goes with [`traceparent`](Propagation::traceparent)'s: the
    /// span's trace state (the caller's entries), `None` when it has none.
    fn tracestate(&self, span: &Span) -> Option<String> {
        let _ = span;
        None
    }
}

static INSTALLED: OnceLock<Box<dyn Propagation>> = OnceLock::new();

/// Installs the process's propagation. Returns `false` (and drops `propagation`) when one is
/// installed already.
pub fn install(propagation: Box<dyn Propagation>) -> bool {
    INSTALLED.set(propagation).is_ok()
}

/// Whether a propagation is installed (spans are exported: every request opens its span).
pub(crate) fn installed() -> bool {
    INSTALLED.get().is_some()
}

/// Hands a new request span to the installed propagation, if there is one.
pub(crate) fn request_span(span: &Span, headers: &HeaderMap) {
    let Some(propagation) = INSTALLED.get() else {
        return;
    };
    if !span.is_disabled() {
        propagation.request_span(span, headers);
    }
}

/// The `traceparent` of `span` (see [`Propagation::traceparent`]); `None` when nothing is
/// installed.
pub(crate) fn traceparent(span: &Span) -> Option<String> {
    INSTALLED.get()?.traceparent(span)
}

/// The `traceparent` of the span current on this thread (see [`Propagation::traceparent`]);
/// `None` when nothing is installed.
pub(crate) fn current_traceparent() -> Option<String> {
    traceparent(&Span::current())
}

/// The `tracestate` of the span current on this thread (see [`Propagation::tracestate`]);
/// `None` when nothing is installed.
pub(crate) fn current_tracestate() -> Option<String> {
    INSTALLED.get()?.tracestate(&Span::current())
}
