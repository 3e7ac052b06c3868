//! The spans of the server: one per HTTP request and one per WebSocket peer, with field names
//! from OpenTelemetry's HTTP semantic conventions (`http.request.method`, `url.path`,
//! `http.route`, `http.response.status_code`) and nitro's own under `nitro.`, and the request
//! log's line.
//!
//! Both spans are `info` spans with target [`REQUEST_TARGET`] / [`PEER_TARGET`], so a
//! subscriber that records `info` sees them; with none (or a quieter filter) they are disabled
//! and a request costs one callsite check. Route code runs inside them (the request span is
//! entered around every poll of the request and every call of a route, the peer span around
//! every hook), so a route's events are recorded in their request's or peer's span.
//!
//! **A request's span is opened when something needs it.** [`start`] keeps what the span would
//! say (method, path, route, status, trace context) in a small record, and opens the span from
//! it, and enters it, the first time one of these happens ([`enter_request_span`]): something
//! is logged while serving the request (a route's event, the host's, a middleware's), a sync
//! route, middleware or cache rule is called (it runs on the route pool, which enters the
//! caller's span on its thread), or the spans are exported (then at once, for every request).
//! A request that never needs it — a `public/` file, the page, a `404`, a route that logs
//! nothing — never allocates a span in the subscriber's registry, which was most of the cost of
//! instrumenting such a request (see docs/benchmarks.md).
//!
//! **The request log's line is written from the same record** when the request ends (its
//! response head is out, or the client left first), by the [`RequestLog`] the CLI installs
//! (`nitro start`): one code path for every request, whether its span was opened or not, with
//! the span's fields. It is written only for a request whose span the log's filter enables
//! (the CLI decides once, from its filter: `-q` or `RUST_LOG=nitro::request=off` turn it off),
//! and it is not a `tracing` event: an event per request cost more than everything else here
//! (the dispatch and the visit of eight fields), and exported traces would carry it.

use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, Response, StatusCode, Uri};
use tracing::field::Empty;
use tracing::{Level, Span};

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

/// What writes the request log (the CLI's): installed once per process, on or off.
static REQUEST_LOG: OnceLock<Box<dyn RequestLog>> = OnceLock::new();
static REQUEST_LOG_ON: AtomicBool = AtomicBool::new(false);

/// Writes the request log: one [`RequestLine`] per request that ends.
pub trait RequestLog: Send + Sync + 'static {
    fn write(&self, line: &RequestLine<'_>);
}

/// One request, as the request log shows it: the request span's fields and the time taken.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    /// The matched route's pattern and file.
    pub route: Option<&'a str>,
    pub file: Option<&'a str>,
    /// `None` when the client left before the answer.
    pub status: Option<u16>,
    /// From the request head to the response head.
    pub elapsed: Duration,
    /// The request's trace: the incoming `traceparent`'s, or the exported span's.
    pub trace_id: Option<&'a str>,
    /// The incoming `traceparent`'s parent span.
    pub parent_id: Option<&'a str>,
}

/// Installs the request log's writer (once per process: later calls keep the first) and turns
/// the request log on or off.
pub fn set_request_log(log: Option<Box<dyn RequestLog>>, on: bool) {
    if let Some(log) = log {
        let _ = REQUEST_LOG.set(log);
    }
    REQUEST_LOG_ON.store(on, Ordering::Relaxed);
}

/// The request log's writer, when it is on.
fn request_log() -> Option<&'static dyn RequestLog> {
    if REQUEST_LOG_ON.load(Ordering::Relaxed) {
        REQUEST_LOG.get().map(|log| &**log)
    } else {
        None
    }
}

tokio::task_local! {
    /// The request being served by the current task (see [`Serving::serve`]).
    // Boxed: the task-local is moved in and out on every poll, and the request's future is
    // moved a few times before it is polled; a pointer is cheaper to move than the record.
    static REQUEST: Box<RequestScope>;
}

/// What the server knows of the request it serves: the request span's fields, kept here until
/// the span is opened (if ever), and the span once it is.
#[derive(Debug)]
pub(crate) struct RequestScope {
    start: Instant,
    method: Method,
    /// The request's target; only its path is recorded (the query may hold secrets).
    uri: Uri,
    /// The `trace_id` and `parent_id` of a valid incoming `traceparent`; when exported, the
    /// trace id of the request's span (and no parent id when the request brought none).
    trace: Option<(Box<str>, Option<Box<str>>)>,
    /// The matched route's pattern and file.
    route: RefCell<Option<(Box<str>, Box<str>)>>,
    status: Cell<Option<StatusCode>>,
    /// From the request head to the response head.
    elapsed: Cell<Option<Duration>>,
    span: OnceCell<Span>,
    /// The span was opened, and entered, during the current poll: exit it after the poll.
    entered_in_poll: Cell<bool>,
}

impl RequestScope {
    /// The request span, opened from the record if it is not open yet.
    fn span(&self) -> &Span {
        self.span.get_or_init(|| {
            let span = tracing::info_span!(
                target: REQUEST_TARGET,
                REQUEST_SPAN,
                http.request.method = self.method.as_str(),
                url.path = self.uri.path(),
                http.route = Empty,
                nitro.route = Empty,
                http.response.status_code = Empty,
                trace_id = Empty,
                parent_id = Empty,
            );
            if let Some((trace_id, parent_id)) = &self.trace {
                span.record("trace_id", &**trace_id);
                if let Some(parent_id) = parent_id {
                    span.record("parent_id", &**parent_id);
                }
            }
            if let Some((pattern, file)) = &*self.route.borrow() {
                span.record("http.route", &**pattern);
                span.record("nitro.route", &**file);
            }
            span
        })
    }

    /// Opens the span if it is not open, and enters it until the end of the current poll.
    fn enter_now(&self) {
        if self.span.get().is_some() {
            // Open before this poll began: [`poll`](Self::poll) entered it.
            return;
        }
        self.span()
            .with_subscriber(|(id, dispatch)| dispatch.enter(id));
        self.entered_in_poll.set(true);
    }

    /// Polls the request's future inside the span, when it is open.
    fn poll<F: Future>(&self, future: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = self.span.get().map(Span::enter);
        let result = future.poll(cx);
        if self.entered_in_poll.replace(false)
            && let Some(span) = self.span.get()
        {
            span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        }
        result
    }

    /// The response head is out: its status and the time it took.
    fn finish(&self, status: StatusCode) -> Duration {
        let elapsed = self.start.elapsed();
        self.status.set(Some(status));
        self.elapsed.set(Some(elapsed));
        if let Some(span) = self.span.get() {
            span.record("http.response.status_code", status.as_u16());
        }
        elapsed
    }

    /// The request log's line.
    fn log_line(&self, log: &dyn RequestLog) {
        let route = self.route.borrow();
        let (trace_id, parent_id) = match &self.trace {
            Some((trace_id, parent_id)) => (Some(&**trace_id), parent_id.as_deref()),
            None => (None, None),
        };
        log.write(&RequestLine {
            method: self.method.as_str(),
            path: self.uri.path(),
            route: route.as_ref().map(|(pattern, _)| &**pattern),
            file: route.as_ref().map(|(_, file)| &**file),
            status: self.status.get().map(|s| s.as_u16()),
            elapsed: self.elapsed.get().unwrap_or_else(|| self.start.elapsed()),
            trace_id,
            parent_id,
        });
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        // When the request ends: answered, or dropped (the client left first: no status).
        if let Some(log) = request_log() {
            self.log_line(log);
        }
    }
}

/// One HTTP request being served (a WebSocket upgrade included, which ends with its `101`),
/// from [`start`] to [`Serving::serve`].
#[derive(Debug)]
pub(crate) enum Serving {
    /// The request span's level is off: no record, no span, no line; the clock read only for
    /// the metrics.
    Untraced(Option<Instant>),
    Traced(Box<RequestScope>),
}

/// A request's head has arrived: its record (see the module's docs), or nothing but the time
/// when request spans are off and only the metrics (`timed`) need it.
pub(crate) fn start(method: &Method, uri: &Uri, headers: &HeaderMap, timed: bool) -> Serving {
    if !tracing::span_enabled!(target: REQUEST_TARGET, Level::INFO) {
        return Serving::Untraced(timed.then(Instant::now));
    }
    let trace = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .map(|parent| (parent.trace_id.into(), Some(parent.parent_id.into())));
    let mut scope = Box::new(RequestScope {
        start: Instant::now(),
        method: method.clone(),
        uri: uri.clone(),
        trace,
        route: RefCell::new(None),
        status: Cell::new(None),
        elapsed: Cell::new(None),
        span: OnceCell::new(),
        entered_in_poll: Cell::new(false),
    });
    if super::otel::installed() {
        // Exported: every request is a span, tied to its remote parent before it is entered;
        // its trace id (a new trace's when the request brought none) goes in the log line.
        let span = scope.span();
        super::otel::request_span(span, headers);
        if scope.trace.is_none()
            && let Some(traceparent) = super::otel::traceparent(span)
            && let Some(parsed) = TraceParent::parse(&traceparent)
        {
            scope.trace = Some((parsed.trace_id.into(), None));
        }
    }
    Serving::Traced(scope)
}

impl Serving {
    /// Runs `handle` with the request's record as the task's current request, then records
    /// the response's status. Returns the response and, when the request is traced or timed,
    /// the time from the request head to the response head.
    pub(crate) async fn serve<B, F>(self, handle: F) -> (Response<B>, Option<Duration>)
    where
        F: Future<Output = Response<B>>,
    {
        match self {
            Serving::Untraced(start) => {
                let response = handle.await;
                (response, start.map(|start| start.elapsed()))
            }
            Serving::Traced(scope) => {
                REQUEST
                    .scope(scope, async move {
                        let mut handle = std::pin::pin!(handle);
                        let response = std::future::poll_fn(|cx| {
                            REQUEST.with(|scope| scope.poll(handle.as_mut(), cx))
                        })
                        .await;
                        let elapsed = REQUEST.with(|scope| scope.finish(response.status()));
                        (response, Some(elapsed))
                    })
                    .await
            }
        }
    }
}

/// Opens the current request's span (if it is not open) and enters it for the rest of this
/// poll, so what is logged next is recorded inside it. Called before a route's event is
/// recorded ([`super::bridge`]), before a sync route call leaves for the route pool (which
/// enters the caller's span on its thread), by host code about to log while serving a request,
/// and by the CLI's log layer for any event it writes. Does nothing outside a request, or when
/// the span is open.
pub fn enter_request_span() {
    let _ = REQUEST.try_with(|scope| scope.enter_now());
}

/// Records the route that matched on the current request: its pattern (`/users/:id`) and
/// file, on its span when it is open, else for when it opens. Does nothing outside a request.
pub fn record_route(pattern: &str, file: &str) {
    let _ = REQUEST.try_with(|scope| {
        *scope.route.borrow_mut() = Some((pattern.into(), file.into()));
        if let Some(span) = scope.span.get() {
            span.record("http.route", pattern);
            span.record("nitro.route", file);
        }
    });
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

/// A W3C `traceparent` header, parsed (the one parser host and routes share).
pub use nitro_abi::trace_context::TraceParent;

#[cfg(test)]
mod tests {
    use super::*;

    /// The request log lines written in this process, as `method path status route`.
    static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    struct Lines;

    impl RequestLog for Lines {
        fn write(&self, line: &RequestLine<'_>) {
            LINES.lock().unwrap().push(format!(
                "{} {} {} {}",
                line.method,
                line.path,
                line.status.map_or("-".into(), |s| s.to_string()),
                line.route.unwrap_or("")
            ));
        }
    }

    /// The names of the spans opened, in order.
    #[derive(Clone, Default)]
    struct Opened(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl<S> tracing_subscriber::Layer<S> for Opened
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(attrs.metadata().name().to_owned());
        }

        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let inside = ctx.event_span(event).map(|s| s.name()).unwrap_or("none");
            self.0.lock().unwrap().push(format!("event in {inside}"));
        }
    }

    /// Serves one request for `uri` with `handle` under a subscriber at `info`; the spans and
    /// events the subscriber saw.
    fn serve(uri: &str, handle: impl Future<Output = Response<()>>) -> (Response<()>, Vec<String>) {
        use tracing_subscriber::layer::SubscriberExt;
        let opened = Opened::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(opened.clone());
        let response = tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::get(uri).body(()).unwrap();
            let serving = start(request.method(), request.uri(), request.headers(), false);
            assert!(matches!(serving, Serving::Traced(_)));
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(serving.serve(handle))
                .0
        });
        let seen = opened.0.lock().unwrap().clone();
        (response, seen)
    }

    #[test]
    fn a_request_opens_its_span_only_when_something_needs_it_and_is_logged_either_way() {
        use tracing_subscriber::layer::SubscriberExt;
        // This test's lines (another test's server could log too while it runs).
        let ours = || -> Vec<String> {
            LINES
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("GET /t-span/"))
                .cloned()
                .collect()
        };
        set_request_log(Some(Box::new(Lines)), true);
        // A file or the page: no span, one line.
        let (response, seen) = serve("/t-span/app.css?v=2", async { Response::new(()) });
        assert_eq!(response.status(), 200);
        assert_eq!(seen, Vec::<String>::new());
        // A route that logs nothing: no span either.
        let (_, seen) = serve("/t-span/quiet", async {
            record_route("/quiet", "routes/quiet.rs");
            Response::new(())
        });
        assert_eq!(seen, Vec::<String>::new());
        // A route that logs (the bridge opens the span first: its own test): the span, the
        // event inside.
        let (_, seen) = serve("/t-span/users/7", async {
            record_route("/users/:id", "routes/users/[id].rs");
            enter_request_span();
            tracing::info!("found");
            Response::new(())
        });
        assert_eq!(seen, ["request", "event in request"]);
        // A host event where no route ran: inside the span it opens.
        let (_, seen) = serve("/t-span/missing", async {
            enter_request_span();
            tracing::warn!("cannot read the page");
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        });
        assert_eq!(seen, ["request", "event in request"]);
        let lines = ours();
        assert_eq!(
            lines,
            [
                "GET /t-span/app.css 200 ",
                "GET /t-span/quiet 200 /quiet",
                "GET /t-span/users/7 200 /users/:id",
                "GET /t-span/missing 404 "
            ]
        );
        // A request whose future is dropped (the client left): its line, without a status.
        LINES.lock().unwrap().clear();
        {
            let request = http::Request::get("/t-span/slow").body(()).unwrap();
            let _guard = tracing::subscriber::set_default(
                tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO),
            );
            let serving = start(request.method(), request.uri(), request.headers(), false);
            let mut serve = Box::pin(serving.serve(std::future::pending::<Response<()>>()));
            let waker = std::task::Waker::noop();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _enter = runtime.enter();
            assert!(
                serve
                    .as_mut()
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        assert_eq!(ours(), ["GET /t-span/slow - "]);
        set_request_log(None, false);
    }
}
