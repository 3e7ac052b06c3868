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
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

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
    let recorder = recorder();
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

/// The Prometheus recorder, with the buckets of [`names::HTTP_DURATION`].
fn recorder() -> PrometheusRecorder {
    // The request duration histogram is not the exporter's (see `render`).
    PrometheusBuilder::new().build_recorder()
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
    append_durations(&mut text, durations.iter());
    Some(text)
}

/// Appends the request duration histograms (by route pattern) to the exporter's `text`.
fn append_durations<'a>(
    text: &mut String,
    durations: impl Iterator<Item = (&'a String, &'a Arc<DurationHistogram>)>,
) {
    let mut routes: Vec<_> = durations
        .filter(|(_, histogram)| !histogram.is_empty())
        .collect();
    if routes.is_empty() {
        return;
    }
    routes.sort_by(|a, b| a.0.cmp(b.0));
    if !text.is_empty() && !text.ends_with("\n\n") {
        text.push('\n');
    }
    text.push_str(&format!("# TYPE {} histogram\n", names::HTTP_DURATION));
    for (pattern, histogram) in routes {
        histogram.render(text, names::HTTP_DURATION, "route", pattern);
    }
}

/// Every metric as a scrape would see it now (`peers_open` read now), for an exporter that
/// sends them elsewhere (the CLI's OTLP export). `None` until [`install`] ran.
///
/// The exporter holds its values behind its Prometheus rendering only, so this renders the
/// text a scrape gets and reads it back ([`parse`]): what is exported is what is scraped, and
/// reading costs nothing on the hot path (it runs once per export interval).
pub fn snapshot(peers_open: usize) -> Option<Vec<Family>> {
    render(peers_open).map(|text| parse(&text))
}

/// One metric of a [`snapshot`]: its name (one of [`names`]) and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub series: Vec<Series>,
}

/// One series of a [`Family`]: its labels (sorted by name) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub value: Value,
}

/// The value of a series, cumulative since [`install`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram: `counts[i]` observations in bucket `i` (not cumulative): at most
    /// `bounds[0]`, then in (`bounds[i - 1]`, `bounds[i]`], the last above every bound
    /// (`counts.len() == bounds.len() + 1`); their `count` and `sum`.
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

/// Reads Prometheus text (as the exporter renders it: `# TYPE` lines, then samples) into
/// families, sorted by name and labels. Lines it does not understand are skipped.
pub(crate) fn parse(text: &str) -> Vec<Family> {
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Histogram {
        /// `le` → cumulative count.
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    }
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    let mut plain: BTreeMap<String, BTreeMap<Vec<(String, String)>, Value>> = BTreeMap::new();
    let mut histograms: BTreeMap<String, BTreeMap<Vec<(String, String)>, Histogram>> =
        BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                kinds.insert(name, kind);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, mut labels, value)) = sample(line) else {
            continue;
        };
        match kinds.get(name) {
            Some(&"counter") => {
                labels.sort();
                // Counters are rendered as integers.
                let total = value.parse::<u64>().unwrap_or(0);
                plain
                    .entry(name.to_owned())
                    .or_default()
                    .insert(labels, Value::Counter(total));
                continue;
            }
            Some(&"gauge") => {
                labels.sort();
                let value = value.parse::<f64>().unwrap_or(0.0);
                plain
                    .entry(name.to_owned())
                    .or_default()
                    .insert(labels, Value::Gauge(value));
                continue;
            }
            _ => {}
        }
        let part = ["_bucket", "_sum", "_count"]
            .into_iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (kinds.get(base) == Some(&"histogram")).then_some((base, suffix))
            });
        let Some((base, suffix)) = part else {
            continue;
        };
        let le = labels
            .iter()
            .position(|(k, _)| k == "le")
            .map(|i| labels.remove(i).1);
        labels.sort();
        let series = histograms
            .entry(base.to_owned())
            .or_default()
            .entry(labels)
            .or_default();
        match suffix {
            "_bucket" => {
                let bound = le.and_then(|le| le.parse::<f64>().ok());
                if let (Some(bound), Ok(count)) = (bound, value.parse::<u64>()) {
                    series.buckets.push((bound, count));
                }
            }
            "_sum" => series.sum = value.parse().unwrap_or(0.0),
            _ => series.count = value.parse().unwrap_or(0),
        }
    }
    let mut families: BTreeMap<String, Vec<Series>> = plain
        .into_iter()
        .map(|(name, series)| {
            let series = series
                .into_iter()
                .map(|(labels, value)| Series { labels, value })
                .collect();
            (name, series)
        })
        .collect();
    for (name, by_labels) in histograms {
        let series = by_labels.into_iter().map(|(labels, mut h)| {
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let bounds: Vec<f64> = h
                .buckets
                .iter()
                .map(|(le, _)| *le)
                .filter(|le| le.is_finite())
                .collect();
            let mut counts = Vec::with_capacity(bounds.len() + 1);
            let mut below = 0;
            for (_, cumulative) in h.buckets.iter().filter(|(le, _)| le.is_finite()) {
                counts.push(cumulative.saturating_sub(below));
                below = below.max(*cumulative);
            }
            counts.push(h.count.saturating_sub(below));
            Series {
                labels,
                value: Value::Histogram {
                    bounds,
                    counts,
                    count: h.count,
                    sum: h.sum,
                },
            }
        });
        families.entry(name).or_default().extend(series);
    }
    families
        .into_iter()
        .map(|(name, series)| Family { name, series })
        .collect()
}

/// Labels, in the order of a line.
type Labels = Vec<(String, String)>;

/// One sample line: `name{k="v",…} value` or `name value` (a timestamp after the value is
/// ignored); label values unescaped (`\\`, `\"`, `\n`).
fn sample(line: &str) -> Option<(&str, Labels, &str)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        };
        rest = &inner[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    Some((name, labels, value))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What the exporter renders reads back as what was recorded.
    #[test]
    fn a_snapshot_reads_the_rendered_values_back() {
        let recorder = recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let get = metrics::counter!(names::HTTP_REQUESTS, "route" => "/users/:id", "method" => "GET", "status_class" => "2xx");
            get.increment(3);
            metrics::counter!(names::HTTP_REQUESTS, "route" => "", "method" => "GET", "status_class" => "4xx").increment(1);
            metrics::counter!(names::ROUTE_PANICS, "route" => "routes/a \"b\"\\c.rs").increment(2);
            metrics::counter!(names::WS_PUBLISHES).absolute(0);
            metrics::gauge!(names::WS_PEERS_OPEN).set(4.0);
        });
        let duration = Arc::new(DurationHistogram::new(DURATION_BUCKETS));
        for seconds in [0.0001, 0.0003, 0.003, 0.2, 42.0] {
            duration.observe(Duration::from_secs_f64(seconds));
        }
        let mut text = handle.render();
        append_durations(
            &mut text,
            [(&"/users/:id".to_owned(), &duration)].into_iter(),
        );
        let families = parse(&text);
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                names::HTTP_DURATION,
                names::HTTP_REQUESTS,
                names::ROUTE_PANICS,
                names::WS_PEERS_OPEN,
                names::WS_PUBLISHES,
            ]
        );
        assert_eq!(
            families[1].series,
            [
                Series {
                    labels: labels(&[("method", "GET"), ("route", ""), ("status_class", "4xx")]),
                    value: Value::Counter(1),
                },
                Series {
                    labels: labels(&[
                        ("method", "GET"),
                        ("route", "/users/:id"),
                        ("status_class", "2xx")
                    ]),
                    value: Value::Counter(3),
                },
            ]
        );
        assert_eq!(
            families[2].series[0].labels,
            labels(&[("route", "routes/a \"b\"\\c.rs")])
        );
        assert_eq!(families[2].series[0].value, Value::Counter(2));
        assert_eq!(families[3].series[0].value, Value::Gauge(4.0));
        assert_eq!(families[4].series[0].value, Value::Counter(0));
        let [histogram] = families[0].series.as_slice() else {
            panic!("{:?}", families[0]);
        };
        assert_eq!(histogram.labels, labels(&[("route", "/users/:id")]));
        let Value::Histogram {
            bounds,
            counts,
            count,
            sum,
        } = &histogram.value
        else {
            panic!("{histogram:?}");
        };
        assert_eq!(bounds, DURATION_BUCKETS);
        // 0.0001 and 0.0003 in the first bucket, 0.003 in (0.0025, 0.005], 0.2 in (0.1, 0.25],
        // 42 above 10.
        let mut want = vec![0; DURATION_BUCKETS.len() + 1];
        want[0] = 2;
        want[3] = 1;
        want[8] = 1;
        want[DURATION_BUCKETS.len()] = 1;
        assert_eq!(counts, &want);
        assert_eq!(*count, 5);
        assert!((sum - 42.2034).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn samples() {
        assert_eq!(
            sample(r#"a_total{route="/x",method="GET"} 7"#),
            Some((
                "a_total",
                labels(&[("route", "/x"), ("method", "GET")]),
                "7"
            ))
        );
        assert_eq!(sample("b 1.5 1700000000"), Some(("b", vec![], "1.5")));
        assert_eq!(
            sample(r#"c{v="line\nnext \"q\" \\"} 1"#),
            Some(("c", labels(&[("v", "line\nnext \"q\" \\")]), "1"))
        );
        assert_eq!(sample(r#"d{v="open} 1"#), None);
        assert_eq!(sample("e"), None);
        // Lines of other kinds, or of unknown metrics, are skipped.
        assert_eq!(
            parse("# HELP x y\nx_total 3\n\n# TYPE s summary\ns_sum 1\n"),
            vec![]
        );
    }
}
