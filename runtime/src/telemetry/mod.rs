//! Observability: route events on the host's subscriber ([`bridge`]), the spans of requests
//! and WebSocket peers ([`span`]), whose field names follow OpenTelemetry's HTTP semantic
//! conventions, Prometheus metrics ([`metrics`], served by [`endpoint`], read by the CLI's
//! OTLP export through [`metrics::snapshot`]), and the seam through which the CLI exports the
//! spans over OTLP ([`otel`]).

pub mod bridge;
pub(crate) mod endpoint;
mod histogram;
pub mod metrics;
pub mod otel;
pub mod span;

use std::future::Future;

use http::{Method, Request, Response};

/// The instrumentation of one HTTP request, as the server runs it for every request: the
/// request's record and span (see [`span`]), the request log's line, and the metrics when they
/// are on. Public so the instrumentation's benchmark measures what the server runs
/// (`cargo bench -p nitro-cli --bench request_instrumentation`).
#[derive(Debug)]
pub struct RequestTelemetry {
    serving: span::Serving,
    /// For the metrics, when they are on.
    method: Option<Method>,
}

impl RequestTelemetry {
    /// A request's head has arrived.
    pub fn start<T>(req: &Request<T>) -> RequestTelemetry {
        let method = metrics::enabled().then(|| req.method().clone());
        RequestTelemetry {
            serving: span::start(req.method(), req.uri(), req.headers(), method.is_some()),
            method,
        }
    }

    /// Runs `handle`, the request's handling, as the current request (see [`span`]), and counts
    /// its answer.
    pub async fn serve<B, F>(self, handle: F) -> Response<B>
    where
        F: Future<Output = Response<B>>,
    {
        let (response, elapsed) = self.serving.serve(handle).await;
        if let (Some(method), Some(elapsed)) = (self.method, elapsed) {
            let route = response.extensions().get::<metrics::Answered>();
            metrics::request(&method, response.status(), route, elapsed);
        }
        response
    }
}
