//! Prometheus metrics of the server (`[observability] metrics`), through the `metrics` crate
//! and its Prometheus exporter.
//!
//! Off until [`install`] runs: then every counting call is one relaxed load. On, the hot path
//! takes no lock: each route's counters and histogram are resolved once and kept in a map
//! swapped atomically (read with one `ArcSwap` load and a hash lookup), counters are atomic
//! adds, and the request duration histogram is ours ([`super::histogram`]: three atomic adds
//! per request, read when scraped, rendered after the exporter's text). The metric names are
//! [`names`]; docs/deploy.md lists them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Method, StatusCode};
use metrics::Counter;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::histogram::DurationHistogram;

/// The metric names.
pub mod names {
    /// Counter: HTTP requests answered, by `route` (the route's pattern, `""` for none: a
    /// `public/` file, the page, a 404), `method` and `status_class` (`2xx`…).
    pub const HTTP_REQUESTS: &str = "nitro_http_requests_total";
    /// Histogram: time from the request head to the response head, in seconds, by `route`.
    pub const HTTP_DURATION: &str = "nitro_http_request_duration_seconds";
    /// Gauge: WebSocket peers connected now.
    pub const WS_PEERS_OPEN: &str = "nitro_ws_peers_open";
    /// Counter: WebSocket messages received from clients (text and binary).
    pub const WS_MESSAGES_RECEIVED: &str = "nitro_ws_messages_received_total";
    /// Counter: WebSocket messages sent to clients (each peer's copy of a publish counts).
    pub const WS_MESSAGES_SENT: &str = "nitro_ws_messages_sent_total";
    /// Counter: publishes made on this instance (by a peer or from a route).
    pub const WS_PUBLISHES: &str = "nitro_ws_publishes_total";
    /// Counter: peers closed with `1008` because they did not read what was sent to them.
    pub const WS_SLOW_CONSUMERS: &str = "nitro_ws_slow_consumers_closed_total";
    /// Counter: route calls that did not answer within `handler_timeout`, by `route` (the file).
    pub const ROUTE_TIMEOUTS: &str = "nitro_route_timeouts_total";
    /// Counter: route calls that panicked, by `route` (the file).
    pub const ROUTE_PANICS: &str = "nitro_route_panics_total";
    /// Counter: hot reloads applied by `nitro dev`.
    pub const DEV_RELOADS: &str = "nitro_dev_reloads_total";
}

/// How often the exporter's upkeep runs when nothing scrapes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The buckets of [`names::HTTP_DURATION`], in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The methods with a label of their own; any other is `_OTHER` (OpenTelemetry's convention).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "_OTHER",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: OnceLock<State> = OnceLock::new();

/// Whether metrics are recorded.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter and the handles resolved once.
struct State {
    handle: PrometheusHandle,
    peers_open: metrics::Gauge,
    received: Counter,
    sent: Counter,
    publishes: Counter,
    slow: Counter,
    reloads: Counter,
    /// Requests that matched no route.
    unrouted: Arc<RouteMetrics>,
    /// By route file.
    routes: ArcSwap<HashMap<String, Arc<RouteMetrics>>>,
    /// The request duration histograms, by route pattern (two files with one pattern, a
    /// `.get.rs` and a `.post.rs`, share one series). Locked when a route is first seen and
    /// when scraped.
    durations: Mutex<HashMap<String, Arc<DurationHistogram>>>,
    /// Serialises inserts into `routes` (a route's first request only).
    insert: Mutex<()>,
}

/// One route's handles.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    pattern: String,
    file: String,
    requests: [[OnceLock<Counter>; CLASSES.len()]; METHODS.len()],
    duration: Arc<DurationHistogram>,
    timeouts: OnceLock<Counter>,
    panics: OnceLock<Counter>,
}

impl RouteMetrics {
    fn new(
        pattern: &str,
        file: &str,
        durations: &Mutex<HashMap<String, Arc<DurationHistogram>>>,
    ) -> RouteMetrics {
        let duration = durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pattern.to_owned())
            .or_insert_with(|| Arc::new(DurationHistogram::new(DURATION_BUCKETS)))
            .clone();
        RouteMetrics {
            pattern: pattern.to_owned(),
            file: file.to_owned(),
            requests: Default::default(),
            duration,
            timeouts: OnceLock::new(),
            panics: OnceLock::new(),
        }
    }
}

/// Installs the Prometheus recorder as the process's and turns counting on. Later calls (a
/// second server in one process) reuse it.
pub fn install() -> Result<(), MetricsError> {
    if STATE.get().is_some() {
        ENABLED.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| {
        MetricsError("another metrics recorder is installed in this process".into())
    })?;
    let durations = Mutex::new(HashMap::new());
    let state = State {
        peers_open: metrics::gauge!(names::WS_PEERS_OPEN),
        received: metrics::counter!(names::WS_MESSAGES_RECEIVED),
        sent: metrics::counter!(names::WS_MESSAGES_SENT),
        publishes: metrics::counter!(names::WS_PUBLISHES),
        slow: metrics::counter!(names::WS_SLOW_CONSUMERS),
        reloads: metrics::counter!(names::DEV_RELOADS),
        unrouted: Arc::new(RouteMetrics::new("", "", &durations)),
        routes: ArcSwap::from_pointee(HashMap::new()),
        durations,
        insert: Mutex::new(()),
        handle: handle.clone(),
    };
    let _ = STATE.set(state);
    ENABLED.store(true, Ordering::Relaxed);
    let upkeep = std::thread::Builder::new()
        .name("nitro-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = upkeep {
        tracing::warn!(target: "nitro::server", "cannot start the metrics upkeep thread ({error}): histograms are drained only when scraped");
    }
    Ok(())
}

/// The metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the metrics: {0}")]
pub struct MetricsError(String);

fn state() -> Option<&'static State> {
    if enabled() { STATE.get() } else { None }
}

/// The Prometheus text of every metric, with `peers_open` read now.
pub fn render(peers_open: usize) -> Option<String> {
    let state = STATE.get()?;
    state.peers_open.set(peers_open as f64);
    let mut text = state.handle.render();
    let durations = state.durations.lock().unwrap_or_else(|e| e.into_inner());
    let mut routes: Vec<_> = durations
        .iter()
        .filter(|(_, histogram)| !histogram.is_empty())
        .collect();
    if !routes.is_empty() {
        routes.sort_by(|a, b| a.0.cmp(b.0));
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push('\n');
        }
        text.push_str(&format!("# TYPE {} histogram\n", names::HTTP_DURATION));
        for (pattern, histogram) in routes {
            histogram.render(&mut text, names::HTTP_DURATION, "route", pattern);
        }
    }
    Some(text)
}

/// The handles of the route `file` (pattern `pattern`), made on its first request.
pub(crate) fn route(pattern: &str, file: &str) -> Option<Arc<RouteMetrics>> {
    let state = state()?;
    if let Some(found) = state.routes.load().get(file)
        && found.pattern == pattern
    {
        return Some(found.clone());
    }
    let _insert = state.insert.lock().unwrap_or_else(|e| e.into_inner());
    let current = state.routes.load_full();
    if let Some(found) = current.get(file)
        && found.pattern == pattern
    {
        return Some(found.clone());
    }
    let made = Arc::new(RouteMetrics::new(pattern, file, &state.durations));
    let mut next = HashMap::clone(&current);
    next.insert(file.to_owned(), made.clone());
    state.routes.store(Arc::new(next));
    Some(made)
}

/// Which route answered a response (set by the dispatcher as a response extension).
#[derive(Debug, Clone)]
pub(crate) struct Answered(pub(crate) Arc<RouteMetrics>);

/// Counts one answered request.
pub(crate) fn request(
    method: &Method,
    status: StatusCode,
    route: Option<&Answered>,
    took: Duration,
) {
    let Some(state) = state() else { return };
    let route = route.map_or(&state.unrouted, |answered| &answered.0);
    let m = match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    };
    let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
    route.requests[m][class]
        .get_or_init(|| {
            metrics::counter!(
                names::HTTP_REQUESTS,
                "route" => route.pattern.clone(),
                "method" => METHODS[m],
                "status_class" => CLASSES[class]
            )
        })
        .increment(1);
    route.duration.observe(took);
}

/// The handles of a route already seen, by file.
fn by_file(state: &State, file: &str) -> Option<Arc<RouteMetrics>> {
    state.routes.load().get(file).cloned()
}

/// Counts a route call that did not answer in time.
pub(crate) fn route_timeout(file: &str) {
    if let Some(state) = state() {
        match by_file(state, file) {
            Some(route) => route
                .timeouts
                .get_or_init(
                    || metrics::counter!(names::ROUTE_TIMEOUTS, "route" => route.file.clone()),
                )
                .increment(1),
            None => {
                metrics::counter!(names::ROUTE_TIMEOUTS, "route" => file.to_owned()).increment(1)
            }
        }
    }
}

/// Counts a route call that panicked.
pub(crate) fn route_panic(file: &str) {
    if let Some(state) = state() {
        match by_file(state, file) {
            Some(route) => route
                .panics
                .get_or_init(
                    || metrics::counter!(names::ROUTE_PANICS, "route" => route.file.clone()),
                )
                .increment(1),
            None => metrics::counter!(names::ROUTE_PANICS, "route" => file.to_owned()).increment(1),
        }
    }
}

/// Counts a WebSocket message from a client.
#[inline]
pub(crate) fn ws_received() {
    if let Some(state) = state() {
        state.received.increment(1);
    }
}

/// Counts a WebSocket message written to a client.
#[inline]
pub(crate) fn ws_sent() {
    if let Some(state) = state() {
        state.sent.increment(1);
    }
}

/// Counts a publish made on this instance.
#[inline]
pub(crate) fn ws_publish() {
    if let Some(state) = state() {
        state.publishes.increment(1);
    }
}

/// Counts a peer closed for not reading.
pub(crate) fn ws_slow_consumer() {
    if let Some(state) = state() {
        state.slow.increment(1);
    }
}

/// Counts a hot reload (`nitro dev`).
pub fn dev_reload() {
    if let Some(state) = state() {
        state.reloads.increment(1);
    }
}
