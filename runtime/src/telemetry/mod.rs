//! Observability: route events on the host's subscriber ([`bridge`]), the spans of requests
//! and WebSocket peers ([`span`]), whose field names follow OpenTelemetry's HTTP semantic
//! conventions, Prometheus metrics ([`metrics`], served by [`endpoint`], read by the CLI's
//! OTLP export through [`metrics::snapshot`]), and the seam through which the CLI exports the
//! spans over OTLP ([`otel`]).

pub mod bridge;
pub(crate) mod endpoint;
pub mod metrics;
pub mod otel;
pub mod span;
