//! Observability: route events on the host's subscriber ([`bridge`]), the spans of requests
//! and WebSocket peers ([`span`]), whose field names follow OpenTelemetry's HTTP semantic
//! conventions, and Prometheus metrics ([`metrics`], served by [`endpoint`]).

pub mod bridge;
pub(crate) mod endpoint;
pub mod metrics;
pub mod span;
