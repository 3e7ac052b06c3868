//! The spans of the server: one per HTTP request and one per WebSocket peer, with field names
//! from OpenTelemetry's HTTP semantic conventions (`http.request.method`, `url.path`,
//! `http.route`, `http.response.status_code`) and nitro's own under `nitro.`.
//!
//! Both are `info` spans with target [`REQUEST_TARGET`] / [`PEER_TARGET`], so a subscriber
//! that records `info` sees them; with none (or a quieter filter) they are disabled and cost a
//! callsite check. Route code runs inside them (the server enters the request span around
//! every poll and call of a route, the peer span around every hook), so a route's events are
//! recorded in their request's or peer's span. The request log of `nitro start` is written
//! from the request span when it closes (the CLI's subscriber), not by a second code path.

use http::{HeaderMap, Method, StatusCode};
use tracing::Span;
use tracing::field::Empty;

/// The W3C trace context header, as a constant: a `&str` name is parsed on every lookup.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The target of request spans.
pub const REQUEST_TARGET: &str = "nitro::request";
/// The name of request spans.
pub const REQUEST_SPAN: &str = "request";
/// The target of WebSocket peer spans.
pub const PEER_TARGET: &str = "nitro::ws";
/// The name of WebSocket peer spans.
pub const PEER_SPAN: &str = "peer";

/// The span of one HTTP request (a WebSocket upgrade included, which ends with its `101`).
/// The path is recorded without the query, which may hold secrets.
pub(crate) fn request(method: &Method, path: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        target: REQUEST_TARGET,
        REQUEST_SPAN,
        http.request.method = method.as_str(),
        url.path = path,
        http.route = Empty,
        nitro.route = Empty,
        http.response.status_code = Empty,
        trace_id = Empty,
        parent_id = Empty,
    );
    if !span.is_disabled()
        && let Some(parent) = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse)
    {
        span.record("trace_id", parent.trace_id);
        span.record("parent_id", parent.parent_id);
    }
    super::otel::request_span(&span, headers);
    span
}

/// Records the route that matched on the current request span: its pattern (`/users/:id`)
/// and file.
pub(crate) fn record_route(pattern: &str, file: &str) {
    let span = Span::current();
    if !span.is_disabled() {
        span.record("http.route", pattern);
        span.record("nitro.route", file);
    }
}

/// Records the response's status on a request span.
pub(crate) fn record_status(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
}

/// The span of one WebSocket peer, from the upgrade until the connection ends. Its parent is
/// none (a peer outlives its upgrade request, so it is a trace of its own); it follows from
/// the current span, the upgrade request's.
pub(crate) fn peer(id: &str, namespace: &str, file: &str) -> Span {
    let span = tracing::info_span!(
        target: PEER_TARGET,
        parent: None,
        PEER_SPAN,
        nitro.peer.id = id,
        nitro.ws.namespace = namespace,
        nitro.route = file,
    );
    span.follows_from(Span::current());
    span
}

/// A W3C `traceparent` header: `00-<trace id, 32 hex>-<parent id, 16 hex>-<flags, 2 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent<'a> {
    pub trace_id: &'a str,
    pub parent_id: &'a str,
    pub sampled: bool,
}

impl<'a> TraceParent<'a> {
    /// Parses a `traceparent` value; `None` when it is not valid (per the W3C spec: lowercase
    /// hex, version `ff` forbidden, all-zero ids forbidden; a later version may carry more
    /// fields after the four).
    pub fn parse(value: &'a str) -> Option<TraceParent<'a>> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2) || version == "ff" || !hex(trace_id, 32) || !hex(parent_id, 16) {
            return None;
        }
        if !hex(flags, 2) || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(ok),
            Some(TraceParent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                parent_id: "00f067aa0ba902b7",
                sampled: true,
            })
        );
        let not_sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(!TraceParent::parse(not_sampled).unwrap().sampled);
        // A later version may append fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
