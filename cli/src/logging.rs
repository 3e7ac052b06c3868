//! The tracing subscriber: installed once, by the binary, writing to stderr.
//!
//! `-q`/`-v` pick the default filter; `RUST_LOG`, when set, wins over both. stdout is kept for
//! data (the server's URL), so logs never mix with what a script might read. `--log-format`
//! (or `NITRO_LOG_FORMAT`) picks human lines (the default) or one JSON object per line
//! ([`LogFormat`]; the fields are listed in docs/deploy.md).
//!
//! When this process serves and OpenTelemetry's variables ask for it, one more layer exports
//! the spans (`crate::otel`), under a filter of its own that keeps the server's request and
//! peer spans whatever the log's level (so `-q` quiets the log, not the traces); the log's
//! layers then get the log's filter each. Without the variables there is no such layer, and
//! one filter for the whole subscriber, as before.
//!
//! The request log of `nitro start` is written by [`RequestLines`], which the runtime calls
//! with each request's record when the request ends (the request span's fields; see
//! `nitro_runtime::telemetry::span`), once [`set_request_log`] turned it on and when the log's
//! filter shows `nitro::request` at `info`. [`RequestLog`], the layer in front of the `fmt`
//! layer, keeps the request spans' fields for the events inside them. Its lines are not written by the
//! request's worker: they collect in a buffer that a background thread writes to stderr in one
//! piece every [`FLUSH_EVERY`] (sooner past [`FLUSH_AT`] bytes), so a request costs an append,
//! not a `write` system call and a wait on stderr. Every other event goes straight to stderr.
//! [`flush`] writes what is waiting (call it before exiting); when stderr cannot keep up and
//! [`MAX_BUFFERED`] bytes wait, the request's worker writes them itself (back-pressure, no
//! line is dropped).

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use nitro_runtime::telemetry::span::{PEER_TARGET, REQUEST_SPAN, REQUEST_TARGET, RequestLine};
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{DefaultFields, JsonFields};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

/// How long a request-log line may wait before it is written.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many buffered bytes the writer thread is woken at once.
pub(crate) const FLUSH_AT: usize = 64 * 1024;
/// Past this many buffered bytes the logging thread writes them itself.
pub(crate) const MAX_BUFFERED: usize = 1024 * 1024;

/// The format of the log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    // Lines for people: `INFO GET /api/users/1 200 1.2 ms`. (Plain comments: doc comments
    // would turn every `--help` into its long form.)
    #[default]
    Human,
    // One JSON object per line, for log collectors.
    Json,
}

/// The filter for a verbosity: `-q` → warnings and errors, default → info, `-v` → debug for
/// nitro's crates, `-vv` → debug everywhere, `-vvv` → trace.
pub(crate) fn default_directives(verbose: u8, quiet: bool) -> &'static str {
    if quiet {
        return "warn";
    }
    match verbose {
        0 => "info",
        1 => "info,nitro_cli=debug,nitro_runtime=debug,nitro_router=debug,nitro=debug",
        2 => "debug",
        _ => "trace",
    }
}

/// Turns the request log on or off.
pub(crate) fn set_request_log(on: bool) {
    let shown = REQUEST_LOG_SHOWN.load(Ordering::Relaxed);
    nitro_runtime::telemetry::span::set_request_log(None, on && shown);
}

/// Whether the log's filter shows the request log (`nitro::request` at `info`), decided by
/// [`init`].
static REQUEST_LOG_SHOWN: AtomicBool = AtomicBool::new(false);

/// The log's filter. `RUST_LOG` can name spans and field values, which only [`EnvFilter`]
/// understands; the built-in directives are targets and levels, for which [`Targets`] decides
/// once per callsite. `EnvFilter` also keeps per-span state (a lock on every span's enter,
/// exit and close), a cost each request span would pay for nothing.
#[derive(Debug, Clone)]
enum LogFilter {
    Targets(Box<Targets>),
    /// `RUST_LOG`'s directives (valid: checked once).
    Env(String),
}

impl LogFilter {
    fn new(rust_log: Option<String>, verbose: u8, quiet: bool) -> LogFilter {
        let defaults = || {
            LogFilter::Targets(Box::new(
                default_directives(verbose, quiet)
                    .parse()
                    .expect("the built-in directives are valid"),
            ))
        };
        match rust_log {
            Some(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
                Ok(_) => LogFilter::Env(value),
                Err(e) => {
                    eprintln!("warning: ignoring `RUST_LOG={value}`: {e}");
                    defaults()
                }
            },
            _ => defaults(),
        }
    }

    /// As the subscriber's global filter.
    fn global(self) -> Box<dyn Layer<Registry> + Send + Sync> {
        match self {
            LogFilter::Targets(targets) => Box::new(*targets),
            LogFilter::Env(directives) => Box::new(EnvFilter::new(directives)),
        }
    }

    /// As the filter of one layer.
    fn per_layer<S>(&self) -> Box<dyn Filter<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match self {
            LogFilter::Targets(targets) => Box::new(Targets::clone(targets)),
            LogFilter::Env(directives) => Box::new(EnvFilter::new(directives)),
        }
    }

    /// Whether the log shows the request log: `nitro::request` at `info`. (The request log is
    /// not a `tracing` event, for speed; this is the decision the filter would make for one.)
    fn shows_request_log(&self) -> bool {
        match self {
            LogFilter::Targets(targets) => targets.would_enable(REQUEST_TARGET, &Level::INFO),
            LogFilter::Env(directives) => {
                // `EnvFilter` answers only for a callsite: ask it for one such event.
                #[derive(Clone, Default)]
                struct Seen(std::sync::Arc<AtomicBool>);
                impl<S: Subscriber> Layer<S> for Seen {
                    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
                        self.0.store(true, Ordering::Relaxed);
                    }
                }
                let seen = Seen::default();
                let probe = tracing_subscriber::registry()
                    .with(EnvFilter::new(directives))
                    .with(seen.clone());
                tracing::subscriber::with_default(probe, || {
                    tracing::info!(target: REQUEST_TARGET, "request log probe");
                });
                seen.0.load(Ordering::Relaxed)
            }
        }
    }

    /// The trace export's filter: this one, and the server's request and peer spans at `info`
    /// whatever it says (so a quiet log still exports every request).
    fn for_export<S>(&self) -> Box<dyn Filter<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match self {
            LogFilter::Targets(targets) => Box::new(
                Targets::clone(targets)
                    .with_target(REQUEST_TARGET, Level::INFO)
                    .with_target(PEER_TARGET, Level::INFO),
            ),
            LogFilter::Env(directives) => {
                let mut filter = EnvFilter::new(directives);
                for spans in [REQUEST_TARGET, PEER_TARGET] {
                    if let Ok(directive) = format!("{spans}=info").parse() {
                        filter = filter.add_directive(directive);
                    }
                }
                Box::new(filter)
            }
        }
    }
}

/// Installs the subscriber. Call once, from the binary; later calls are ignored (a test may
/// have installed one). `serves`: this process serves, so its spans are exported when the
/// OpenTelemetry variables ask for it (`crate::otel`; without them no layer is added).
pub(crate) fn init(verbose: u8, quiet: bool, format: LogFormat, serves: bool) {
    let filter = LogFilter::new(std::env::var("RUST_LOG").ok(), verbose, quiet);
    // Colours only on a terminal: `nitro start`'s request log often goes to a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    REQUEST_LOG_SHOWN.store(filter.shows_request_log(), Ordering::Relaxed);
    nitro_runtime::telemetry::span::set_request_log(
        Some(Box::new(RequestLines {
            ansi,
            format,
            lines: buffer(),
        })),
        false,
    );
    let (tracer, warning) = match serves.then(crate::otel::start) {
        Some(crate::otel::Started::On(tracer)) => (Some(tracer), None),
        Some(crate::otel::Started::Warn(warning)) => (None, Some(warning)),
        Some(crate::otel::Started::Off) | None => (None, None),
    };
    match tracer {
        // The log's filter on the log's layer, and the export's own (the server's spans
        // whatever the log shows): filters per layer only when exporting.
        Some(tracer) => {
            let _ = tracing_subscriber::registry()
                .with(log_layer(format, verbose, ansi).with_filter(filter.per_layer()))
                .with(crate::otel::layer(tracer).with_filter(filter.for_export()))
                .try_init();
        }
        None => {
            let _ = tracing_subscriber::registry()
                .with(filter.global())
                .with(log_layer(format, verbose, ansi))
                .try_init();
        }
    }
    if let Some(warning) = warning {
        tracing::warn!(target: "nitro::otel", "{warning}");
    }
}

/// The log's layer: the `fmt` layer of `format` behind the request log (see [`RequestLog`]).
fn log_layer<S>(format: LogFormat, verbose: u8, ansi: bool) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let json = format == LogFormat::Json;
    RequestLog {
        inner: Layer::and_then(human_layer(!json, verbose, ansi), json_layer(json)),
        ansi,
        format,
    }
}

/// The human format's layer, when `on`.
fn human_layer<S>(on: bool, verbose: u8, ansi: bool) -> Option<impl Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    on.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_target(verbose > 0)
            .with_ansi(ansi)
            .without_time()
    })
}

/// The JSON format's layer, when `on`.
fn json_layer<S>(on: bool) -> Option<impl Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    on.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(io::stderr)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
    })
}

/// The log's layer: the `fmt` layer (`inner`: human or JSON) behind the request spans.
///
/// An event this layer is given while a request is served opens that request's span first
/// (`nitro_runtime::telemetry::span::enter_request_span`): the span of a request that logs
/// nothing is never opened.
///
/// The server's request spans never reach `inner`: their fields are kept here
/// ([`RequestFields`]) and written into the span's formatted fields for `inner` only when an
/// event inside the span is about to be formatted. A request span is opened when route code
/// runs, and route code mostly logs nothing: formatting the span's fields when it opens and on
/// each `record` would be work for lines almost never written.
///
/// Everything else goes to `inner` as if this layer were not there. (`downcast_raw` is not
/// forwarded: nothing downcasts to the `fmt` layer's parts, and it has no filter of its own.)
struct RequestLog<L> {
    inner: L,
    ansi: bool,
    format: LogFormat,
}

/// Writes the request log's lines (the runtime calls it as each request ends) into the buffer
/// the writer thread empties.
struct RequestLines {
    ansi: bool,
    format: LogFormat,
    /// [`buffer`] (a test's or the benchmark's own otherwise).
    lines: &'static Buffer,
}

impl nitro_runtime::telemetry::span::RequestLog for RequestLines {
    fn write(&self, line: &RequestLine<'_>) {
        let json = self.format == LogFormat::Json;
        self.lines
            .append_with(|out| write_line(line, out, json, self.ansi));
    }
}

/// The request log line for `line`.
#[cfg(test)]
fn line_text(line: &RequestLine<'_>, json: bool, ansi: bool) -> String {
    let mut out = Vec::new();
    write_line(line, &mut out, json, ansi);
    String::from_utf8(out).expect("request lines are UTF-8")
}

/// Appends the request log line for `line` to `out`, without a `String` of its own.
fn write_line(line: &RequestLine<'_>, out: &mut Vec<u8>, json: bool, ansi: bool) {
    let text = nitro_runtime::request_log::Line {
        method: line.method,
        path: line.path,
        status: line.status,
        elapsed: line.elapsed,
    };
    if !json {
        out.extend_from_slice(if ansi {
            b"\x1b[32m INFO\x1b[0m "
        } else {
            b" INFO "
        });
        text.write(out);
        out.push(b'\n');
        return;
    }
    thread_local! {
        /// The line's timestamp and message, reused.
        static SCRATCH: RefCell<(Timestamps, Vec<u8>)> =
            RefCell::new((Timestamps::default(), Vec::new()));
    }
    SCRATCH.with_borrow_mut(|(timestamps, message)| {
        message.clear();
        text.write(message);
        let json = JsonLine {
            timestamp: timestamps.now(),
            level: "INFO",
            message: std::str::from_utf8(message).expect("the line is built from `str`s"),
            target: REQUEST_TARGET,
            method: line.method,
            path: line.path,
            route: line.route,
            file: line.file,
            status: line.status,
            duration_ms: (line.elapsed.as_secs_f64() * 1e6).round() / 1e3,
            trace_id: line.trace_id,
            parent_id: line.parent_id,
        };
        let _ = serde_json::to_writer(&mut *out, &json);
        out.push(b'\n');
    });
}

/// A request span's fields, kept in its extensions.
#[derive(Debug, Default)]
struct RequestFields {
    method: Cow<'static, str>,
    path: String,
    route: Option<String>,
    file: Option<String>,
    status: Option<u64>,
    trace_id: Option<String>,
    parent_id: Option<String>,
}

impl Visit for RequestFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "http.request.method" => self.method = method_name(value),
            "url.path" => self.path = value.to_owned(),
            "http.route" => self.route = Some(value.to_owned()),
            "nitro.route" => self.file = Some(value.to_owned()),
            "trace_id" => self.trace_id = Some(value.to_owned()),
            "parent_id" => self.parent_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "http.response.status_code" {
            self.status = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%method` arrives as a `Display` wrapper, through `record_debug`.
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Timestamps as the JSON log writes them (`tracing-subscriber`'s `SystemTime`:
/// `2026-11-27T11:12:51.120345Z`, UTC, microseconds), the date and time of day formatted once
/// per second.
#[derive(Debug, Default)]
struct Timestamps {
    /// The second [`Self::text`] starts with, since the Unix epoch.
    second: Option<u64>,
    text: String,
}

impl Timestamps {
    /// Now.
    fn now(&mut self) -> &str {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.at(since_epoch)
    }

    /// `since_epoch` after the Unix epoch.
    fn at(&mut self, since_epoch: Duration) -> &str {
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            self.second = Some(second);
            self.text.clear();
            let time = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
                + chrono::TimeDelta::seconds(i64::try_from(second).unwrap_or(i64::MAX));
            use std::fmt::Write as _;
            let _ = write!(self.text, "{}", time.format("%Y-%m-%dT%H:%M:%S."));
        }
        self.text.truncate("YYYY-MM-DDTHH:MM:SS.".len());
        let micros = since_epoch.subsec_micros();
        let mut digits = [b'0'; 6];
        let mut n = micros;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.text
            .push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
        self.text.push('Z');
        &self.text
    }
}

/// A JSON request log line (the fields listed in docs/deploy.md), serialised from borrowed
/// values: no map and no copies per request.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    timestamp: &'a str,
    level: &'static str,
    message: &'a str,
    target: &'static str,
    #[serde(rename = "http.request.method")]
    method: &'a str,
    #[serde(rename = "url.path")]
    path: &'a str,
    #[serde(rename = "http.route", skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(rename = "nitro.route", skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(
        rename = "http.response.status_code",
        skip_serializing_if = "Option::is_none"
    )]
    status: Option<u16>,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a str>,
}

impl RequestFields {
    /// The fields as the human format writes a span's (`DefaultFields`): `name=value`, strings
    /// quoted, names italic under ANSI; in the order the server records them.
    fn human(&self, ansi: bool) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let name = |out: &mut String, name: &str| {
            if !out.is_empty() {
                out.push(' ');
            }
            if ansi {
                let _ = write!(out, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m");
            } else {
                out.push_str(name);
                out.push('=');
            }
        };
        name(&mut out, "http.request.method");
        out.push_str(&self.method);
        name(&mut out, "url.path");
        let _ = write!(out, "{:?}", self.path);
        for (key, value) in [
            ("trace_id", &self.trace_id),
            ("parent_id", &self.parent_id),
            ("http.route", &self.route),
            ("nitro.route", &self.file),
        ] {
            if let Some(value) = value {
                name(&mut out, key);
                let _ = write!(out, "{value:?}");
            }
        }
        if let Some(status) = self.status {
            name(&mut out, "http.response.status_code");
            let _ = write!(out, "{status}");
        }
        out
    }

    /// The fields as a JSON object, as `JsonFields` writes a span's.
    fn json(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("http.request.method".into(), self.method.as_ref().into());
        object.insert("url.path".into(), self.path.clone().into());
        for (key, value) in [
            ("trace_id", &self.trace_id),
            ("parent_id", &self.parent_id),
            ("http.route", &self.route),
            ("nitro.route", &self.file),
        ] {
            if let Some(value) = value {
                object.insert(key.into(), value.clone().into());
            }
        }
        if let Some(status) = self.status {
            object.insert("http.response.status_code".into(), status.into());
        }
        serde_json::Value::Object(object).to_string()
    }
}

/// A request method's name, without an allocation for the standard ones.
fn method_name(value: &str) -> Cow<'static, str> {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match STANDARD.iter().find(|m| **m == value) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(value.to_owned()),
    }
}

fn is_request_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == REQUEST_TARGET && meta.name() == REQUEST_SPAN && *meta.level() == Level::INFO
}

impl<S, L> Layer<S> for RequestLog<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if !is_request_span(attrs.metadata()) {
            return self.inner.on_new_span(attrs, id, ctx);
        }
        let mut fields = RequestFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<RequestFields>()
        {
            values.record(fields);
            return;
        }
        self.inner.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if event.is_contextual() {
            // An event written while a request is served is written inside its span, which is
            // opened (and entered, so the scope below finds it) if this is the first. (This
            // takes the process's global subscriber, as the CLI installs it: under a scoped one,
            // `tracing` makes a span created while an event is dispatched a disabled one, and
            // only the runtime's own calls open the span.)
            nitro_runtime::telemetry::span::enter_request_span();
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let mut extensions = span.extensions_mut();
                let Some(fields) = extensions.get_mut::<RequestFields>() else {
                    continue;
                };
                match self.format {
                    LogFormat::Human => {
                        let text = fields.human(self.ansi);
                        set_formatted::<DefaultFields>(&mut extensions, text);
                    }
                    LogFormat::Json => {
                        let text = fields.json();
                        set_formatted::<JsonFields>(&mut extensions, text);
                    }
                }
            }
        }
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
}

/// Sets a span's formatted fields for the `fmt` layer whose field formatter is `N`.
fn set_formatted<N: 'static>(
    extensions: &mut tracing_subscriber::registry::ExtensionsMut<'_>,
    text: String,
) {
    match extensions.get_mut::<FormattedFields<N>>() {
        Some(formatted) => formatted.fields = text,
        None => extensions.insert(FormattedFields::<N>::new(text)),
    }
}

/// Lines waiting for the writer thread.
#[derive(Debug)]
struct Buffer {
    lines: Mutex<Vec<u8>>,
    wake: Condvar,
}

impl Buffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn append(&self, bytes: &[u8]) {
        self.append_with(|lines| lines.extend_from_slice(bytes));
    }

    /// Appends what `write` writes, under the lock (one line: lines stay whole).
    fn append_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut lines = self.lock();
        let before = lines.len();
        write(&mut lines);
        if lines.len() >= MAX_BUFFERED {
            // stderr is not keeping up: write here, in order, under the lock.
            let _ = io::stderr().lock().write_all(&lines);
            lines.clear();
        } else if before < FLUSH_AT && lines.len() >= FLUSH_AT {
            // Once, as the buffer crosses the mark (a wake-up is a system call: not one per
            // line until the writer thread has run).
            self.wake.notify_one();
        }
    }

    /// Writes what is waiting to stderr.
    fn write_out(&self, spare: &mut Vec<u8>) {
        let stderr = io::stderr();
        self.write_to(spare, || stderr.lock());
    }

    /// Writes what is waiting to the output `lock` gives. The output is taken before the
    /// buffer is released (as [`append`](Buffer::append) does), so lines keep their order.
    fn write_to<W: Write>(&self, spare: &mut Vec<u8>, lock: impl FnOnce() -> W) {
        let mut lines = self.lock();
        if lines.is_empty() {
            return;
        }
        // Swap buffers so appends go on while the output is written.
        std::mem::swap(&mut *lines, spare);
        let mut out = lock();
        drop(lines);
        let _ = out.write_all(spare);
        let _ = out.flush();
        spare.clear();
    }
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            lines: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }
    }
}

/// The buffer, and its writer thread on first use.
fn buffer() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    static WRITER: OnceLock<()> = OnceLock::new();
    let buffer = BUFFER.get_or_init(Buffer::new);
    WRITER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("nitro-log".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let lines = buffer.lock();
                    let (lines, _) = buffer
                        .wake
                        .wait_timeout(lines, FLUSH_EVERY)
                        .unwrap_or_else(PoisonError::into_inner);
                    drop(lines);
                    buffer.write_out(&mut spare);
                }
            });
        if let Err(err) = spawned {
            eprintln!("warning: cannot start the log writer thread ({err}): request log lines are written when the process exits");
        }
    });
    buffer
}

/// Writes the request-log lines still waiting. Call before the process exits.
pub(crate) fn flush() {
    buffer().write_out(&mut Vec::new());
}

/// For the instrumentation's benchmark (`crate::__bench`): request log lines kept in a
/// buffer that no thread writes out.
#[derive(Debug)]
pub(crate) struct BenchLines(&'static Buffer);

impl BenchLines {
    pub(crate) fn new() -> BenchLines {
        BenchLines(Box::leak(Box::new(Buffer::new())))
    }

    /// Installs, as the process's, the subscriber [`init`] installs for `nitro start` at the
    /// default level, or at `warn` (`-q`) without `log` (no export, no colours), with the
    /// request log on when `log` and its lines going to this buffer.
    pub(crate) fn install(&self, format: LogFormat, log: bool) {
        let filter = LogFilter::new(None, 0, !log);
        nitro_runtime::telemetry::span::set_request_log(
            Some(Box::new(RequestLines {
                ansi: false,
                format,
                lines: self.0,
            })),
            log && filter.shows_request_log(),
        );
        let _ = tracing_subscriber::registry()
            .with(filter.global())
            .with(log_layer(format, 0, false))
            .try_init();
    }

    /// Empties the buffer; the bytes it held.
    pub(crate) fn drain(&self) -> usize {
        let mut lines = self.0.lock();
        let len = lines.len();
        lines.clear();
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_lines_come_out_whole_and_in_order() {
        let buffer = std::sync::Arc::new(Buffer::new());
        let out = std::sync::Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (buffer, out) = (buffer.clone(), out.clone());
                std::thread::spawn(move || {
                    let mut spare = Vec::new();
                    for i in 0..500 {
                        buffer.append(format!("{t} {i}\n").as_bytes());
                        if i % 50 == 0 {
                            buffer.write_to(&mut spare, || Locked(out.lock().unwrap()));
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        buffer.write_to(&mut Vec::new(), || Locked(out.lock().unwrap()));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("{t} ")))
                .collect();
            let want: Vec<String> = (0..500).map(|i| format!("{t} {i}")).collect();
            assert_eq!(mine, want, "thread {t}'s lines, whole and in order");
        }
        assert!(buffer.lock().is_empty());
    }

    /// The output, locked while it is written, as `io::stderr().lock()` is (without the lock,
    /// two writers' batches could land out of order: a fault of the stand-in, not the log).
    struct Locked<'a>(std::sync::MutexGuard<'a, Vec<u8>>);

    impl Write for Locked<'_> {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn request_lines() {
        let line = RequestLine {
            method: "GET",
            path: "/users/1",
            route: Some("/users/:id"),
            file: Some("routes/users/[id].rs"),
            status: Some(200),
            elapsed: Duration::from_micros(1234),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            parent_id: None,
        };
        assert_eq!(
            line_text(&line, false, false),
            " INFO GET /users/1 200 1.2 ms\n"
        );
        assert_eq!(
            line_text(&line, false, true),
            "\x1b[32m INFO\x1b[0m GET /users/1 200 1.2 ms\n"
        );
        let json: serde_json::Value = serde_json::from_str(&line_text(&line, true, false)).unwrap();
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["target"], "nitro::request");
        assert_eq!(json["message"], "GET /users/1 200 1.2 ms");
        assert_eq!(json["http.request.method"], "GET");
        assert_eq!(json["url.path"], "/users/1");
        assert_eq!(json["http.route"], "/users/:id");
        assert_eq!(json["nitro.route"], "routes/users/[id].rs");
        assert_eq!(json["http.response.status_code"], 200);
        assert_eq!(json["duration_ms"], 1.234);
        assert_eq!(json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(json.get("parent_id").is_none());
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
        // A request the client left: no status; no route: no route fields.
        let left = RequestLine {
            status: None,
            route: None,
            file: None,
            trace_id: None,
            ..line
        };
        assert_eq!(
            line_text(&left, false, false),
            " INFO GET /users/1 - 1.2 ms\n"
        );
        let json: serde_json::Value = serde_json::from_str(&line_text(&left, true, false)).unwrap();
        for absent in [
            "http.response.status_code",
            "http.route",
            "nitro.route",
            "trace_id",
        ] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
    }

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// What the server does with a request span, and events inside it (and in a span inside
    /// it), under `dispatch`. `display_method` records the method as the default formatters
    /// print the server's (bare, not quoted).
    fn serve_a_request(display_method: bool) {
        use tracing::field::Empty;
        let span = if display_method {
            tracing::info_span!(target: REQUEST_TARGET, "request", http.request.method = %"PATCH", url.path = "/a \"b\"", http.route = Empty, nitro.route = Empty, http.response.status_code = Empty, trace_id = Empty, parent_id = Empty)
        } else {
            tracing::info_span!(target: REQUEST_TARGET, "request", http.request.method = "PATCH", url.path = "/a \"b\"", http.route = Empty, nitro.route = Empty, http.response.status_code = Empty, trace_id = Empty, parent_id = Empty)
        };
        span.record("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
        let _entered = span.enter();
        tracing::info!("before the route");
        span.record("http.route", "/a/:b");
        span.record("nitro.route", "routes/a/[b].rs");
        tracing::info!(user = 7, "inside \"it\"");
        {
            let inner = tracing::info_span!("lookup", key = "k", n = 3);
            let _inner = inner.enter();
            tracing::warn!(error = %"boom", "deeper");
        }
        span.record("http.response.status_code", 204_u16);
        tracing::info!("after the status");
    }

    /// A test's own line buffer (no writer thread: the test reads it).
    fn test_lines() -> &'static Buffer {
        Box::leak(Box::new(Buffer::new()))
    }

    fn log(ours: bool, format: LogFormat, ansi: bool) -> String {
        let out = Captured::default();
        let human = || {
            tracing_subscriber::fmt::layer()
                .with_writer(out.clone())
                .with_ansi(ansi)
                .without_time()
        };
        let json = || {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(out.clone())
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .without_time()
        };
        let dispatch = match (ours, format) {
            (true, LogFormat::Human) => {
                tracing::Dispatch::new(tracing_subscriber::registry().with(RequestLog {
                    inner: human(),
                    ansi,
                    format,
                }))
            }
            (false, LogFormat::Human) => {
                tracing::Dispatch::new(tracing_subscriber::registry().with(human()))
            }
            (true, LogFormat::Json) => {
                tracing::Dispatch::new(tracing_subscriber::registry().with(RequestLog {
                    inner: json(),
                    ansi,
                    format,
                }))
            }
            (false, LogFormat::Json) => {
                tracing::Dispatch::new(tracing_subscriber::registry().with(json()))
            }
        };
        tracing::dispatcher::with_default(&dispatch, || serve_a_request(!ours));
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn events_in_a_request_span_read_as_the_default_formatters_write_them() {
        for ansi in [false, true] {
            assert_eq!(
                log(true, LogFormat::Human, ansi),
                log(false, LogFormat::Human, ansi),
                "human, ansi: {ansi}"
            );
        }
        let plain = log(true, LogFormat::Human, false);
        assert!(
            plain.contains("request{http.request.method=PATCH url.path=\"/a \\\"b\\\"\" trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\" http.route=\"/a/:b\" nitro.route=\"routes/a/[b].rs\"}: "),
            "{plain}"
        );
        let ours: Vec<serde_json::Value> = log(true, LogFormat::Json, false)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let default: Vec<serde_json::Value> = log(false, LogFormat::Json, false)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ours, default);
        assert_eq!(ours.len(), 4);
        assert_eq!(ours[3]["span"]["http.response.status_code"], 204);
    }

    #[test]
    fn the_request_log_is_shown_when_the_filter_shows_its_target_at_info() {
        for (rust_log, quiet, shown) in [
            (None, false, true),
            (None, true, false),
            (Some("info"), false, true),
            (Some("warn"), false, false),
            (Some("warn,nitro::request=info"), false, true),
            (Some("nitro::request=off,info"), false, false),
            (Some("debug,nitro=warn"), false, false),
            // Only `EnvFilter` reads these (a span's name): asked through an event.
            (Some("warn,[request]=info"), false, false),
            (Some("info,[lookup]=debug"), false, true),
        ] {
            let filter = LogFilter::new(rust_log.map(str::to_owned), 0, quiet);
            assert_eq!(filter.shows_request_log(), shown, "{rust_log:?} {quiet}");
        }
    }

    #[test]
    fn request_lines_go_to_the_buffer_whole() {
        use nitro_runtime::telemetry::span::RequestLog as _;
        let lines = RequestLines {
            ansi: false,
            format: LogFormat::Human,
            lines: test_lines(),
        };
        let line = RequestLine {
            method: "POST",
            path: "/a\nb",
            route: None,
            file: None,
            status: Some(404),
            elapsed: Duration::ZERO,
            trace_id: None,
            parent_id: None,
        };
        lines.write(&line);
        lines.write(&line);
        assert_eq!(
            String::from_utf8(lines.lines.lock().clone()).unwrap(),
            " INFO POST /a\\nb 404 0.0 ms\n INFO POST /a\\nb 404 0.0 ms\n"
        );
    }

    #[test]
    fn timestamps_read_as_the_json_formatter_writes_them() {
        let mut timestamps = Timestamps::default();
        assert_eq!(timestamps.at(Duration::ZERO), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            timestamps.at(Duration::new(951_782_400, 500_000_999)),
            "2000-02-29T00:00:00.500000Z"
        );
        assert_eq!(
            timestamps.at(Duration::new(1_700_000_000, 123_456_000)),
            "2023-11-14T22:13:20.123456Z"
        );
        // The same second again: only the microseconds change.
        assert_eq!(
            timestamps.at(Duration::new(1_700_000_000, 7_000)),
            "2023-11-14T22:13:20.000007Z"
        );
        // Now, as `tracing-subscriber` writes it for every other JSON line (the same second,
        // unless it turned between the two readings: then the next try).
        use tracing_subscriber::fmt::format::Writer;
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        let same = (0..3).any(|_| {
            let mut theirs = String::new();
            let _ = SystemTime.format_time(&mut Writer::new(&mut theirs));
            let ours = timestamps.now().to_owned();
            theirs.len() == ours.len() && theirs[..20] == ours[..20]
        });
        assert!(same);
    }

    #[test]
    fn verbosity_maps_to_a_valid_filter() {
        assert_eq!(default_directives(3, true), "warn");
        assert_eq!(default_directives(0, false), "info");
        for v in 0..5 {
            EnvFilter::try_new(default_directives(v, false)).unwrap();
            default_directives(v, false).parse::<Targets>().unwrap();
        }
    }

    /// The spans a layer is given, by name, and its events (as `event`).
    #[derive(Clone, Default)]
    struct Spans(std::sync::Arc<Mutex<Vec<&'static str>>>);

    impl<S: Subscriber> Layer<S> for Spans {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
            self.0.lock().unwrap().push(attrs.metadata().name());
        }

        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.lock().unwrap().push("event");
        }
    }

    #[test]
    fn a_quiet_log_still_gives_the_export_the_server_spans() {
        for filter in [
            LogFilter::new(None, 0, true),
            LogFilter::new(Some("warn".into()), 0, false),
        ] {
            let (log, export) = (Spans::default(), Spans::default());
            let subscriber = tracing_subscriber::registry()
                .with(log.clone().with_filter(filter.per_layer()))
                .with(export.clone().with_filter(filter.for_export()));
            tracing::subscriber::with_default(subscriber, || {
                let _request = tracing::info_span!(target: "nitro::request", "request");
                let _peer = tracing::info_span!(target: "nitro::ws", "peer");
                let _other = tracing::info_span!(target: "route_x", "lookup");
            });
            assert_eq!(*log.0.lock().unwrap(), Vec::<&str>::new(), "{filter:?}");
            assert_eq!(*export.0.lock().unwrap(), ["request", "peer"], "{filter:?}");
        }
    }
}
