//! The listener, the connections, and shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::body::Body;
use crate::config::ServerConfig;
use crate::devclient::{self, DevClient};
use crate::http_error::HttpError;
use crate::route_pool::panic_message;
use crate::shared::Shared;
use crate::static_files::StaticFiles;
use crate::ws::Hub;
use crate::{App, telemetry};

/// Pause after a failed `accept` (out of file descriptors, ...), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// hyper's default for the number of request headers (`DEFAULT_MAX_HEADERS` in hyper 1.x).
const HYPER_MAX_HEADERS: usize = 100;
/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(
        "address `{addr}` is already in use: stop the other server or pick another port with --port"
    )]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen for the metrics on `{addr}`: {source}")]
    MetricsBind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] telemetry::metrics::MetricsError),
}

/// A bound server, ready to [`run_until`](Server::run_until).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    /// The separate listener of the metrics (`MetricsEndpoint::bind`).
    metrics: Option<TcpListener>,
}

impl Server {
    /// Binds the listener now (so the port is known and errors surface before serving).
    pub async fn bind(
        mut config: ServerConfig,
        hub: Arc<Hub>,
        app: App,
    ) -> Result<Server, ServerError> {
        config.limits = config.limits.sanitized();
        crate::loader::report_exit_from_routes();
        hub.set_max_topics(config.limits.ws_max_topics);
        // Storage operations that wait (fs, Redis) run on the server's runtime.
        hub.storage()
            .attach_runtime(tokio::runtime::Handle::current());
        let addr = config.addr;
        let listener = listen(addr, config.limits.listen_backlog).map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                ServerError::AddrInUse { addr }
            } else {
                ServerError::Bind { addr, source }
            }
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let mut metrics = None;
        if let Some(endpoint) = &config.metrics {
            telemetry::metrics::install()?;
            if let Some(addr) = endpoint.bind {
                let listener = telemetry::endpoint::bind(addr)
                    .await
                    .map_err(|source| ServerError::MetricsBind { addr, source })?;
                metrics = Some(listener);
            }
        }
        let files = StaticFiles::load(&config).await;
        let shared = Arc::new(Shared::new(config, hub, app, files));
        Ok(Server {
            listener,
            local_addr,
            shared,
            metrics,
        })
    }

    /// The URL of the metrics, when they are on (on the separate address, when bound to one).
    pub fn metrics_url(&self) -> Option<String> {
        let endpoint = self.shared.config.metrics.as_ref()?;
        let addr = match &self.metrics {
            Some(listener) => listener.local_addr().ok()?,
            None => self.local_addr,
        };
        let host = match addr.ip() {
            ip if ip.is_unspecified() && addr.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        Some(format!("http://{host}:{}{}", addr.port(), endpoint.path))
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Turns on the dev client (see [`devclient`](crate::devclient)): HTML responses get its
    /// script and [`devclient::DEV_PATH`] serves its socket. Only the first call counts.
    pub fn set_dev_client(&self, client: Arc<DevClient>) {
        client.attach(self.local_addr);
        let _ = self.shared.dev_client.set(client);
    }

    /// A handle to swap the app and reach the hub while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes. Then stops accepting, lets in-flight requests
    /// finish and closes every WebSocket peer with `1001` (its `close` hook runs), waiting at
    /// most a few seconds in all, and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            listener,
            shared,
            metrics,
            ..
        } = self;
        if let (Some(listener), Some(endpoint)) = (metrics, &shared.config.metrics) {
            tokio::spawn(telemetry::endpoint::serve(
                listener,
                shared.clone(),
                endpoint.path.clone(),
            ));
        }
        let limits = &shared.config.limits;
        let mut builder = http1::Builder::new();
        // Without the timer hyper's header timeout silently does nothing (hyper #3919).
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes);
        // hyper's own limit is the default, and setting it, even to the same value, makes
        // hyper fill a header array of that size on every request (`SmallVec::from_elem`).
        if limits.max_headers != HYPER_MAX_HEADERS {
            builder.max_headers(limits.max_headers);
        }

        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        shared
                            .tracker
                            .spawn(serve_connection(shared.clone(), builder.clone(), stream, remote));
                    }
                    Err(err) => {
                        tracing::warn!(target: "nitro::server", "cannot accept a connection: {err}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }

        drop(listener);
        tracing::debug!(target: "nitro::server", connections = shared.tracker.len(), "shutting down");
        shared.shutdown.cancel();
        // Every peer starts its closing handshake now; one upgraded after this sweep sees
        // `shutdown` cancelled when its connection task starts (`ws::run_peer`).
        for peer in shared.hub.peers(None) {
            peer.close_with(1001, "server shutting down");
        }
        shared.tracker.close();
        let timeout = shared.config.shutdown_timeout;
        if tokio::time::timeout(timeout, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                target: "nitro::server",
                "{} connections still busy after {:.1} s: stopping anyway",
                shared.tracker.len(),
                timeout.as_secs_f64()
            );
        }
        Ok(())
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    builder: http1::Builder,
    stream: TcpStream,
    remote: SocketAddr,
) {
    let service_shared = shared.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = service_shared.clone();
        async move {
            // The request's record, its span when something needs one, the request log's
            // line when it ends, the metrics (see `telemetry`).
            let telemetry = telemetry::RequestTelemetry::start(&req);
            let response = telemetry.serve(handle_guarded(shared, remote, req)).await;
            Ok::<_, Infallible>(response)
        }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(target: "nitro::server", %remote, "connection error: {err}");
            }
        }
        () = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(err) = connection.await {
                tracing::debug!(target: "nitro::server", %remote, "connection error: {err}");
            }
        }
    }
}

/// Dispatches a request; a bug in the server's own code answers 500 instead of dropping the
/// connection.
async fn handle_guarded(
    shared: Arc<Shared>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let dev = shared.config.dev;
    let dev_client = shared.dev_client.get().cloned();
    if let Some(client) = &dev_client
        && req.uri().path() == devclient::DEV_PATH
    {
        return devclient::serve(
            client,
            req,
            shared.config.addr,
            &shared.shutdown,
            &shared.tracker,
        );
    }
    if let Some(endpoint) = &shared.config.metrics
        && endpoint.bind.is_none()
        && req.uri().path() == endpoint.path
    {
        let mut response = telemetry::endpoint::respond(&shared, &req);
        if let Some(route) = telemetry::metrics::route(&endpoint.path, &endpoint.path) {
            response
                .extensions_mut()
                .insert(telemetry::metrics::Answered(route));
        }
        return response;
    }
    let method = req.method().clone();
    match AssertUnwindSafe(crate::route_rules::handle(shared, remote, req))
        .catch_unwind()
        .await
    {
        Ok(response) => match &dev_client {
            Some(client) => client.inject(&method, response).await,
            None => response,
        },
        Err(payload) => {
            let message = panic_message(&*payload);
            telemetry::span::enter_request_span();
            tracing::error!(target: "nitro::server", "the server panicked while handling a request: {message}");
            HttpError::unhandled("the server panicked while handling the request")
                .detail(message)
                .render(&http::HeaderMap::new(), dev)
        }
    }
}

/// A handle to a running server. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ServerHandle {
    /// Swaps in a new app atomically. Requests in flight finish on the app they started with;
    /// the next request, and the next event of every open WebSocket, use the new one.
    ///
    /// The open peers of a WebSocket route the new app no longer has (its file was deleted or
    /// renamed) are closed with `1001` (going away): their hooks are gone, so nothing they
    /// send could be handled.
    pub fn set_app(&self, app: App) {
        let old = self.shared.app();
        let removed: Vec<String> = old
            .routes
            .keys()
            .filter(|file| !app.routes.contains_key(*file))
            .cloned()
            .collect();
        self.shared.set_app(app);
        if !removed.is_empty() {
            let closed = self
                .hub()
                .close_route_peers(&old.table, &removed, 1001, "route removed");
            if closed > 0 {
                tracing::info!(target: "nitro::ws", "closed {closed} WebSocket peers of removed routes ({})", removed.join(", "));
            }
        }
    }

    /// The current app.
    pub fn app(&self) -> Arc<App> {
        self.shared.app()
    }

    /// The server's peers and topics.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// Closes the open WebSocket peers of the given route files with `code` (`1012`, service
    /// restart, when their code was reloaded), so clients reconnect to the new code. Returns
    /// how many were closed; see [`Hub::close_route_peers`].
    pub fn close_route_peers(&self, files: &[String], code: u16, reason: &str) -> usize {
        self.hub()
            .close_route_peers(&self.app().table, files, code, reason)
    }

    /// The dev client, if the server has one.
    pub fn dev_client(&self) -> Option<&Arc<DevClient>> {
        self.shared.dev_client.get()
    }
}

/// A listener on `addr` with room for `backlog` connections not yet accepted (the kernel caps
/// it at `net.core.somaxconn`). `TcpListener::bind` uses 128, which a burst of connections
/// overflows: 10 000 opened at once overflowed it 4 803 times.
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix: a restarted server can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
