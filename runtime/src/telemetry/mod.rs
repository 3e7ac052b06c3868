//! Observability: route events on the host's subscriber ([`bridge`]) and the spans of
//! requests and WebSocket peers ([`span`]), whose field names follow OpenTelemetry's HTTP
//! semantic conventions.

pub mod bridge;
pub mod span;
