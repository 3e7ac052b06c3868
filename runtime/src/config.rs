//! How a server serves: [`ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Limits;

/// How long shutdown waits for in-flight requests and closing WebSockets, unless the config
/// says otherwise ([`ServerConfig::shutdown_timeout`]).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on; port 0 picks a free port (see [`Server::local_addr`](crate::Server::local_addr)).
    pub addr: SocketAddr,
    /// The project's `public/` folder. `None`, or a folder that does not exist: no static files.
    pub public_dir: Option<PathBuf>,
    /// The renderer's `index.html` (`[renderer] static = true`): served for `GET`/`HEAD`
    /// requests no route matches, read from disk on each request (once, with
    /// [`cache_files`](ServerConfig::cache_files)).
    pub index_html: Option<PathBuf>,
    /// Dev mode: error bodies include the messages of unhandled errors (panics, build errors).
    pub dev: bool,
    /// Sizes and timeouts (`[limits]` in nitro.toml).
    pub limits: Limits,
    /// `Some`: every request (upgrades included) must name one of these hosts, or
    /// `localhost`, `*.localhost` or an IP literal, else `403` (DNS rebinding; `nitro dev`
    /// turns it on). `None`: no check.
    pub allowed_hosts: Option<Vec<String>>,
    /// `Some`: a WebSocket upgrade with an `Origin` header must come from one of these
    /// origins (`scheme://host:port`; `*` allows any), else `403`. `None`: in dev (with
    /// `allowed_hosts`), any local origin; otherwise any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Serve the `.br`/`.gz` sibling of a `public/` file to clients that accept it (what
    /// `nitro build` writes), always with `Vary: Accept-Encoding`.
    pub precompressed: bool,
    /// The files of `public/` and the renderer's `index.html` do not change while the server
    /// runs (a built output: `nitro start`): they are indexed and read once, at start, and
    /// served from memory (files up to 1 MiB, 64 MiB in all; larger ones from disk), with the
    /// same headers, validators and variants as from disk. Off (`nitro dev`): every request
    /// looks at the files as they are.
    pub cache_files: bool,
    /// How long shutdown waits for in-flight requests and closing WebSockets.
    pub shutdown_timeout: Duration,
    /// A file where each route call, as it starts on its thread, writes its route file (one
    /// line, at the start of the file), so that a supervising process can say which route was
    /// running when the server died of something no thread can catch (a stack overflow, an
    /// abort, a segfault, `exit`). `nitro start --supervise` sets it. `None`: nothing written.
    pub call_record: Option<PathBuf>,
    /// Serve Prometheus metrics (see [`crate::telemetry::metrics`]). `None`: none recorded.
    pub metrics: Option<MetricsEndpoint>,
}

/// Where the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsEndpoint {
    /// The path, `/__nitro/metrics`.
    pub path: String,
    /// A separate address to serve them on (a private port) instead of the server's own.
    pub bind: Option<SocketAddr>,
}

impl ServerConfig {
    /// A config for `addr` without static files or renderer, in production mode.
    pub fn new(addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            addr,
            public_dir: None,
            index_html: None,
            dev: false,
            limits: Limits::default(),
            allowed_hosts: None,
            allowed_origins: None,
            precompressed: false,
            cache_files: false,
            shutdown_timeout: SHUTDOWN_TIMEOUT,
            call_record: None,
            metrics: None,
        }
    }
}
