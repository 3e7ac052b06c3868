//! The nitro server runtime: HTTP (hyper), WebSocket peers and pub/sub (tokio-tungstenite),
//! `public/` files and the `index.html` renderer, and loading of compiled route modules.
//!
//! A [`Server`] serves an [`App`]: a [`RouteTable`](nitro_router::RouteTable) plus the code
//! of every route file, each a [`RouteModule`](module::RouteModule) (a loaded route library
//! in `nitro dev`, or any Rust value, as here). [`ServerHandle::set_app`] swaps the app while
//! the server runs; open WebSockets keep their connection and run the new code from their next
//! event on. The order in which a request is dispatched is described below; WebSocket
//! semantics are in [`ws`].
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! use nitro_router::{RouteTable, ScanOptions};
//! use nitro_runtime::module::{
//!     CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse, UpgradeDecision,
//! };
//! use nitro_runtime::ws::PeerRef;
//! use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig};
//!
//! /// `routes/hello.rs`, written in-process.
//! struct Hello;
//!
//! impl RouteModule for Hello {
//!     fn file(&self) -> &str {
//!         "routes/hello.rs"
//!     }
//!     fn http(&self, req: &RequestInfo) -> Result<HttpOutcome, CallError> {
//!         Ok(HttpOutcome::Response(RouteResponse {
//!             status: 200,
//!             headers: vec![("content-type".into(), b"text/plain".to_vec())],
//!             body: format!("hello from {}", req.path).into_bytes(),
//!         }))
//!     }
//!     fn ws_upgrade(&self, _: &RequestInfo) -> Result<UpgradeDecision, CallError> {
//!         Ok(UpgradeDecision::accept())
//!     }
//!     fn ws_open(&self, _: &PeerRef) -> Result<(), CallError> { Ok(()) }
//!     fn ws_message(&self, _: &PeerRef, _: &[u8], _: bool) -> Result<(), CallError> { Ok(()) }
//!     fn ws_close(&self, _: &PeerRef, _: u16, _: &str) -> Result<(), CallError> { Ok(()) }
//!     fn ws_error(&self, _: &PeerRef, _: &str) -> Result<(), CallError> { Ok(()) }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let table = RouteTable::from_files(["hello.rs"], &ScanOptions::default())?;
//! let routes = HashMap::from([(
//!     "routes/hello.rs".to_owned(),
//!     RouteEntry::Loaded(Arc::new(Hello)),
//! )]);
//! let config = ServerConfig::new("127.0.0.1:3000".parse()?);
//! let server = Server::bind(config, Hub::new(), App::new(table, routes)).await?;
//! println!("listening on http://{}/", server.local_addr());
//! server
//!     .run_until(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Dispatch
//!
//! Every request runs against the app current when it arrived, inside the app's route rules
//! ([`route_rules`], kept by the [`Hub`]: a redirect or a CORS preflight is answered before
//! anything below, a cached `GET` from its storage mount, and headers are added after):
//!
//! 1. `GET`/`HEAD` (not a WebSocket upgrade): a file under `public/`, if one exists for the
//!    path. Paths with `..`, `.`, backslashes, NUL, encoded `/` or dotfile segments (except
//!    `.well-known`) are never served, and neither is anything a symlink leads to outside
//!    `public/`. A miss goes on to routing.
//! 2. The route table: a WebSocket route handles upgrades (`426` for a plain request); any
//!    other upgrade request gets `404`, never a `101`; an HTTP route runs its handler (an
//!    `async fn` inline on the async workers, a sync `fn` on the bounded blocking pool); routes
//!    of the path that lack the method give `405` with `Allow`.
//! 3. Nothing matched: the renderer's `index.html` for `GET`/`HEAD` when it is on, else `404`
//!    `Cannot find any route matching [GET] /path`.
//!
//! Errors are an HTML page for clients that accept `text/html`, JSON otherwise:
//! `{"error":true,"status":404,"message":"…"}`. A panic in a route is logged (target
//! `nitro::route`, with the route file) and answered `500`; its message is shown only in
//! dev mode ([`ServerConfig::dev`]).
//!
//! The library never prints: it emits `tracing` events (targets `nitro::server`,
//! `nitro::route`, `nitro::ws`, `nitro::pubsub`, `nitro::static`). It has no global state, so several servers
//! can run in one process.

mod app;
mod body;
mod config;
pub mod devclient;
mod dispatch;
mod guard;
mod http_error;
mod limits;
pub mod loader;
mod middleware;
pub mod module;
pub mod plugins;
mod request_info;
pub mod request_log;
mod route_pool;
pub mod route_rules;
pub mod runtime_config;
mod server;
mod shared;
mod sse;
mod static_files;
pub mod storage;
mod stream;
mod task;
pub mod tasks;
pub mod telemetry;
pub mod ws;

pub use app::{App, RouteEntry};
pub use config::{MetricsEndpoint, ServerConfig};
pub use devclient::DevClient;
pub use limits::Limits;
pub use server::{Server, ServerError, ServerHandle};
pub use stream::{ChunkStream, StreamBody};
pub use ws::Hub;
