//! What the server needs from a route's code, independent of how it was loaded.
//!
//! [`RouteModule`] is implemented by [`crate::loader::LoadedRoute`] (a compiled route library)
//! and, in tests, by plain Rust values. Each hook comes in two forms. The synchronous method may
//! block: the server calls it on its bounded route pool, never on an async worker. The `*_async`
//! method starts the hook as a [`RouteFuture`] when the route wrote it as an `async fn`; the
//! server polls that future on its own workers (so it must not block), under the handler
//! timeout, and dropping it cancels the call. A module answers `None` there for a sync hook (the
//! default), and the server falls back to the synchronous method.

use std::future::Future;
use std::pin::Pin;

pub use crate::request_info::RequestInfo;
pub use crate::stream::StreamBody;
use crate::ws::PeerRef;

/// An async call into a route, started: polled inline by the server, dropped to cancel it.
pub type RouteFuture<T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'static>>;

/// A successful answer of an HTTP handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// A successful answer whose body is a stream (see [`StreamBody`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: StreamBody,
}

/// What an HTTP handler answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A response to send as is (after validating status and headers).
    Response(RouteResponse),
    /// A response whose body is streamed: polled when the client is ready for more.
    Stream(StreamResponse),
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

/// What a middleware decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MiddlewareOutcome {
    /// Go on, with this request context (key and JSON text): it replaces the request's.
    Continue { context: Vec<(String, String)> },
    /// Answer the request with this; nothing after the middleware runs.
    Answer(HttpOutcome),
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

    /// Whether the module defines any WebSocket hook. An HTTP route that does is also the
    /// WebSocket endpoint at its own path (`routes/index.rs` with `open` takes upgrades to `/`,
    /// and its handler, if any, the plain requests there).
    fn has_websocket_hooks(&self) -> bool {
        false
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

    /// Starts the HTTP handler when it is an `async fn`; `None` means: call [`http`] on the
    /// route pool. The arguments are borrowed for this call only (the route copies them).
    ///
    /// [`http`]: RouteModule::http
    fn http_async(&self, _req: &RequestInfo) -> Option<RouteFuture<HttpOutcome>> {
        None
    }

    /// Starts the module as a middleware (a `middleware/*.rs` library, whose `http_async` entry
    /// is the middleware); `None` when it has none. A request outside the middleware's paths
    /// ends with [`CallError::Missing`]: the request goes on untouched.
    fn middleware_async(&self, _req: &RequestInfo) -> Option<RouteFuture<MiddlewareOutcome>> {
        None
    }

    /// Starts a plugin's `setup` (a `plugins/*.rs` library); `None` when it has none.
    fn plugin_setup(&self) -> Option<RouteFuture<()>> {
        None
    }

    /// Starts a plugin's `shutdown`; `None` when it has none.
    fn plugin_shutdown(&self) -> Option<RouteFuture<()>> {
        None
    }

    /// Starts a task's `run` (a `tasks/*.rs` library) with `payload` (JSON text); its result is
    /// JSON text. `None` when the module has none.
    fn task_run(&self, _payload: &str) -> Option<RouteFuture<String>> {
        None
    }

    /// Starts an `async fn upgrade`; `None`: call [`ws_upgrade`](RouteModule::ws_upgrade).
    fn ws_upgrade_async(&self, _req: &RequestInfo) -> Option<RouteFuture<UpgradeDecision>> {
        None
    }

    /// Starts an `async fn open`; `None`: call [`ws_open`](RouteModule::ws_open).
    fn ws_open_async(&self, _peer: &PeerRef) -> Option<RouteFuture<()>> {
        None
    }

    /// Starts an `async fn message`; `None`: call [`ws_message`](RouteModule::ws_message).
    fn ws_message_async(
        &self,
        _peer: &PeerRef,
        _data: &[u8],
        _binary: bool,
    ) -> Option<RouteFuture<()>> {
        None
    }

    /// Starts an `async fn close`; `None`: call [`ws_close`](RouteModule::ws_close).
    fn ws_close_async(
        &self,
        _peer: &PeerRef,
        _code: u16,
        _reason: &str,
    ) -> Option<RouteFuture<()>> {
        None
    }

    /// Starts an `async fn error`; `None`: call [`ws_error`](RouteModule::ws_error).
    fn ws_error_async(&self, _peer: &PeerRef, _error: &str) -> Option<RouteFuture<()>> {
        None
    }
}
