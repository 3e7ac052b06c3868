//! What the server needs from a route's code, independent of how it was loaded.
//!
//! [`RouteModule`] is implemented by [`crate::loader::LoadedRoute`] (a compiled route library)
//! and, in tests, by plain Rust values. Every method is synchronous and may block: the server
//! calls them on its blocking pool, never on an async worker.

pub use crate::request_info::RequestInfo;
use crate::ws::PeerRef;

/// A successful answer of an HTTP handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What an HTTP handler answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A response to send as is (after validating status and headers).
    Response(RouteResponse),
    /// An error for the server to render (JSON or HTML by `Accept`). `data` is JSON text.
    Error {
        status: u16,
        message: String,
        data: Option<String>,
    },
}

/// The decision of an `upgrade` hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeDecision {
    Accept {
        headers: Vec<(String, Vec<u8>)>,
        protocol: Option<String>,
        namespace: Option<String>,
        /// Context entries: key and JSON text.
        context: Vec<(String, String)>,
    },
    Reject {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
}

impl UpgradeDecision {
    /// Accept with no changes (what a route without an `upgrade` hook gets).
    pub fn accept() -> Self {
        UpgradeDecision::Accept {
            headers: Vec::new(),
            protocol: None,
            namespace: None,
            context: Vec::new(),
        }
    }
}

/// Why a call into a route did not complete normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The route panicked; the message includes the location (`routes/x.rs:3:5`).
    #[error("{0}")]
    Panicked(String),
    /// The hook returned an error.
    #[error("{0}")]
    Failed(String),
    /// The route has no such entry point (e.g. `http` on a WebSocket-only file).
    #[error("the route does not define this entry point")]
    Missing,
}

/// A route's code: an HTTP handler and/or WebSocket hooks.
///
/// Implementations must be cheap to call concurrently from many threads.
pub trait RouteModule: Send + Sync + 'static {
    /// The route file, relative to the project (`routes/_ws.rs`), for logs and errors.
    fn file(&self) -> &str;

    /// Handles an HTTP request. The default is [`CallError::Missing`]: a module without an
    /// HTTP handler (a WebSocket route) answers `500` if it is ever asked.
    fn http(&self, _req: &RequestInfo) -> Result<HttpOutcome, CallError> {
        Err(CallError::Missing)
    }

    /// Runs the `upgrade` hook; a module without one accepts.
    fn ws_upgrade(&self, _req: &RequestInfo) -> Result<UpgradeDecision, CallError> {
        Ok(UpgradeDecision::accept())
    }

    /// Runs the `open` hook (a no-op when absent).
    fn ws_open(&self, _peer: &PeerRef) -> Result<(), CallError> {
        Ok(())
    }

    /// Runs the `message` hook (a no-op when absent).
    fn ws_message(&self, _peer: &PeerRef, _data: &[u8], _binary: bool) -> Result<(), CallError> {
        Ok(())
    }

    /// Runs the `close` hook (a no-op when absent).
    fn ws_close(&self, _peer: &PeerRef, _code: u16, _reason: &str) -> Result<(), CallError> {
        Ok(())
    }

    /// Runs the `error` hook (a no-op when absent).
    fn ws_error(&self, _peer: &PeerRef, _error: &str) -> Result<(), CallError> {
        Ok(())
    }
}
