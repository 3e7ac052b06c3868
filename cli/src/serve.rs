//! Serving, for `nitro dev` and `nitro start`: the async runtime, the bind, the URL on stdout,
//! SIGINT/SIGTERM, and a shutdown that a stuck route cannot hold up.
//!
//! Signals are registered before the server binds, so a signal sent right after the URL is
//! printed is seen. The first one stops the server gracefully (stop accepting, finish
//! in-flight requests, close WebSocket peers with `1001`, within the server's
//! `shutdown_timeout`), then the routes it dropped get up to 5 s for their own shutdown (their
//! `nitro::state` dropped, their runtimes stopped). Under `nitro start` a second signal exits at
//! once (sending, within a second, the spans and metrics an OTLP export still holds).
//!
//! The plugins (`plugins/*.rs`) are set up before the server binds and shut down after it
//! drained, before the routes' own shutdown.
//!
//! With `[websocket] pubsub`, the Redis backplane is attached to the hub before the server
//! binds and stopped (its final counts logged) after the server stopped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use nitro_runtime::plugins::{PluginError, Plugins};
use nitro_runtime::tasks::{Schedule, Tasks, spawn_scheduler};
use nitro_runtime::ws::backplane::{Backplane, PubSubConfig};
use nitro_runtime::{App, Hub, Server, ServerConfig, ServerError};

use crate::project::config_pubsub;
use crate::ui::{Ui, plural};

/// How long the exit waits for the routes' own shutdown (their state dropped, their runtimes
/// stopped) once the server drained.
const ROUTE_SHUTDOWN: Duration = Duration::from_secs(5);

/// Which command serves: it decides the words and the end of a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Dev,
    Start,
}

impl Mode {
    /// How long the runtime waits, after the server stopped, for route code still running on
    /// the blocking pool: a call stuck past its deadline keeps its thread, and waiting for it
    /// would hang the exit (issue #5).
    fn runtime_grace(self) -> Duration {
        match self {
            Mode::Dev => Duration::from_millis(500),
            Mode::Start => Duration::from_millis(200),
        }
    }

    fn url_label(self) -> &'static str {
        match self {
            Mode::Dev => "Local",
            Mode::Start => "Listening on",
        }
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The server could not start (the port is in use, …) or failed while running.
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("cannot listen for Ctrl-C and SIGTERM")]
    Signals(#[source] io::Error),
    /// A plugin's `setup` failed: the server does not start.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Fails at once when `addr`'s port is taken, so that `nitro dev` and `nitro start` say so
/// before building or loading anything. Port 0 and other bind errors pass: the server's own
/// bind reports those.
pub(crate) fn check_addr(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.port() == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind(addr) {
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            Err(ServeError::Server(ServerError::AddrInUse { addr }))
        }
        _ => Ok(()),
    }
}

/// Serves `app` until a signal, with its `background` (the pub/sub relay, the task schedules,
/// started once the server listens). The plugins'
/// `setup` runs first, before the server binds (a failure stops here, after the plugins set up
/// so far were shut down); their `shutdown` runs after the server drained, within the shutdown
/// timeout. `ready` runs once the server is bound, before its URL is printed (`nitro dev`
/// attaches its dev client and starts its dev loop there, which reloads the plugins).
pub(crate) fn serve(
    ui: &Ui,
    mode: Mode,
    config: ServerConfig,
    hub: Arc<Hub>,
    app: App,
    background: Background,
    ready: impl FnOnce(&Server, &Plugins) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Background { pubsub, schedules } = background;
    let shutdown_timeout = config.shutdown_timeout;
    let runtime = runtime(&config.limits).map_err(ServeError::Runtime)?;
    let plugins = Plugins::new();
    // `OTEL_METRICS_EXPORTER` / `OTEL_EXPORTER_OTLP_*ENDPOINT`: counting starts before serving.
    crate::otel::start_metrics(&hub);
    let served = runtime.block_on(async {
        let mut signals = Signals::new().map_err(ServeError::Signals)?;
        let backplane = start_pubsub(&hub, pubsub, ui)?;
        let set_up = tokio::select! {
            set_up = plugins.setup(&app) => Some(set_up),
            () = signals.next() => None,
        };
        if !matches!(set_up, Some(Ok(()))) {
            shutdown_plugins(ui, &plugins, shutdown_timeout).await;
            stop_pubsub(backplane).await;
            return match set_up {
                Some(Err(error)) => Err(ServeError::Plugin(error).into()),
                _ => Ok(()),
            };
        }
        let server = match Server::bind(config, hub, app).await {
            Ok(server) => server,
            Err(error) => {
                shutdown_plugins(ui, &plugins, shutdown_timeout).await;
                return Err(ServeError::Server(error).into());
            }
        };
        ready(&server, &plugins)?;
        banner(ui, mode, server.local_addr());
        // `[scheduled_tasks]`: each tick runs on the app current then (dev: the latest build).
        let scheduler = (!schedules.is_empty()).then(|| {
            let handle = server.handle();
            spawn_scheduler(schedules, Tasks::new(), move || handle.app())
        });
        if let Some(url) = server.metrics_url() {
            ui.status(&format!("  ➜ Metrics: {url}"));
        }
        if let Some(url) = crate::otel::url() {
            ui.status(&format!("  ➜ Traces: {url}"));
        }
        if let Some(url) = crate::otel::metrics_url() {
            ui.status(&format!("  ➜ Metrics over OTLP: {url}"));
        }
        let (first, stop) = tokio::sync::oneshot::channel::<()>();
        let status_ui = ui.clone();
        tokio::spawn(async move {
            signals.next().await;
            if mode == Mode::Start {
                status_ui.status(&format!(
                    "  shutting down: finishing requests, closing WebSockets (at most {:.0} s; a second Ctrl-C stops at once)",
                    shutdown_timeout.as_secs_f64()
                ));
            }
            let _ = first.send(());
            if mode == Mode::Start {
                signals.next().await;
                status_ui.warn("second signal: exiting now");
                // What is queued (the spans of finished requests, the metrics as they are) is
                // sent if the collector takes it within a second; requests still running are
                // cut off, and so are their spans.
                crate::otel::shutdown_within(crate::otel::FORCED_EXIT_FLUSH);
                crate::logging::flush();
                std::process::exit(130);
            }
        });
        let ran = server
            .run_until(async {
                let _ = stop.await;
            })
            .await
            .map_err(ServeError::Server);
        // No new scheduled runs; runs in flight end with the runtime.
        if let Some(scheduler) = scheduler {
            scheduler.abort();
        }
        // Connections drained: the plugins' `shutdown` (a pool flushed, a lock released) can
        // still publish before the backplane stops.
        shutdown_plugins(ui, &plugins, shutdown_timeout).await;
        stop_pubsub(backplane).await;
        ran?;
        Ok::<_, anyhow::Error>(())
    });
    drop(plugins);
    // The drained server dropped its routes: let their `shutdown` run (`nitro::state` values
    // such as a database pool are dropped, route runtimes stop) before the process exits.
    let stuck = nitro_runtime::loader::wait_retired(ROUTE_SHUTDOWN);
    if stuck > 0 {
        ui.warn(&format!(
            "{} did not finish shutting down within {} s",
            plural(stuck, "route"),
            ROUTE_SHUTDOWN.as_secs()
        ));
    }
    runtime.shutdown_timeout(mode.runtime_grace());
    served?;
    ui.status("  stopped");
    Ok(())
}

/// What runs beside the server: the pub/sub relay and the task schedules.
#[derive(Debug, Default)]
pub(crate) struct Background {
    /// `[websocket] pubsub`: publishes relayed through Redis.
    pub(crate) pubsub: Option<PubSubConfig>,
    /// `[scheduled_tasks]`.
    pub(crate) schedules: Vec<Schedule>,
}

/// Runs the `shutdown` of the plugins that were set up, within `timeout`; warns about each that
/// failed or ran out of time.
async fn shutdown_plugins(ui: &Ui, plugins: &Plugins, timeout: Duration) {
    for error in plugins.shutdown(timeout).await {
        ui.warn(&error.to_string());
    }
}

/// The tokio runtime the server runs on. Route code runs on its blocking threads, which get
/// `[limits] route_stack` of stack (tokio's default, 2 MiB, is less than ordinary code may
/// need, and an overflow ends the process).
fn runtime(limits: &nitro_runtime::Limits) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nitro")
        .thread_stack_size(limits.route_stack)
        .build()
}

/// The URL on stdout (the one line a script reads), and a note when every interface listens.
fn banner(ui: &Ui, mode: Mode, addr: SocketAddr) {
    ui.data(&format!("  ➜ {}: {}", mode.url_label(), url(addr)));
    if addr.ip().is_unspecified() {
        ui.status(&format!(
            "  ➜ Network: every interface of this machine, port {}",
            addr.port()
        ));
    }
}

/// The URL to open for a bound address: loopback when bound to every interface.
pub(crate) fn url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

/// SIGINT and SIGTERM, registered up front.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Attaches the backplane to `hub` when pub/sub is configured. Call inside the tokio runtime,
/// before the server listens. Returns at once: Redis is reached in the background.
fn start_pubsub(
    hub: &Arc<Hub>,
    config: Option<PubSubConfig>,
    ui: &Ui,
) -> anyhow::Result<Option<Backplane>> {
    let Some(config) = config else {
        if config_pubsub::env_url().is_some() {
            ui.warn(&format!(
                "`{}` is set, but the project has no `[websocket] pubsub` table (its `channel` is required): WebSocket publishes stay on this instance",
                config_pubsub::URL_ENV
            ));
        }
        return Ok(None);
    };
    let line = format!(
        "  ➜ Pub/sub: Redis `{}`, channel `{}`",
        config.display_url(),
        config.channel()
    );
    let backplane = Backplane::start(hub, config)?;
    ui.status(&line);
    Ok(Some(backplane))
}

/// Stops relaying and logs the final counts.
async fn stop_pubsub(backplane: Option<Backplane>) {
    if let Some(backplane) = backplane {
        backplane.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_threads_have_the_configured_stack() {
        /// Uses about `N` bytes of stack.
        fn deep<const N: usize>() -> u8 {
            let frame = std::hint::black_box([7u8; N]);
            frame[N / 2]
        }
        let runtime = runtime(&nitro_runtime::Limits::default()).unwrap();
        // A 3 MiB array overflows tokio's default 2 MiB stack (the process aborts).
        let value = runtime
            .block_on(async { tokio::task::spawn_blocking(deep::<{ 3 << 20 }>).await })
            .unwrap();
        assert_eq!(value, 7);
    }

    #[test]
    fn urls() {
        assert_eq!(
            url("127.0.0.1:3000".parse().unwrap()),
            "http://127.0.0.1:3000/"
        );
        assert_eq!(url("0.0.0.0:80".parse().unwrap()), "http://127.0.0.1:80/");
        assert_eq!(url("[::]:8080".parse().unwrap()), "http://[::1]:8080/");
        assert_eq!(url("[::1]:1".parse().unwrap()), "http://[::1]:1/");
    }

    #[test]
    fn a_taken_port_is_seen_before_serving() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = check_addr(addr).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        drop(taken);
        assert!(check_addr(addr).is_ok());
        assert!(check_addr("127.0.0.1:0".parse().unwrap()).is_ok());
    }
}
