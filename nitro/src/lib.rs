//! What nitro route files import.
//!
//! A nitro project has one Rust file per route under `routes/`. `nitro dev` compiles each into
//! a small library and serves it; this crate is what those files use.
//!
//! # HTTP routes
//!
//! An HTTP route file defines `pub fn handler`, taking the [`Request`] (or nothing) and
//! returning anything that is [`IntoResponse`]: a `String` (text), [`Html`], [`Json`], a
//! [`Value`], bytes, `()`, a [`Response`], an [`Error`], or a [`Result`] of those.
//!
//! ```
//! // routes/users/[id].get.rs  →  GET /users/:id
//! use nitro::{json, Request, Result, Value};
//!
//! pub fn handler(req: &Request) -> Result<Value> {
//!     let id: u32 = req.param_as("id")?; // `/users/x` → 400 naming `id`
//!     Ok(json!({ "id": id, "name": "Ada" }))
//! }
//! # let req = nitro::Request::builder("GET", "/users/7").param("id", "7").build();
//! # assert_eq!(handler(&req).unwrap()["id"], 7);
//! # let req = nitro::Request::builder("GET", "/users/x").param("id", "x").build();
//! # assert_eq!(handler(&req).unwrap_err().status(), 400);
//! ```
//!
//! `?` works on any error: [`Error`]s answer as written, other errors (`ParseIntError`,
//! `std::io::Error`, `anyhow::Error`, …) answer `500` and are logged with the route file; see
//! [`Error`]. [`Request::param_as`], [`Request::query_as`] and [`Request::form`] read typed
//! input and answer `400` naming the field, and [`Request::multipart`] reads forms with files
//! ([`multipart`]); [`cookies`] reads and sets cookies, signed or
//! encrypted with the app's secret. Files that ship with the app live in `assets/` and are
//! found with [`assets::path`].
//!
//! # WebSocket routes
//!
//! A file named `_ws.rs` is a WebSocket endpoint. It defines any of the crossws hooks
//! (`upgrade`, `open`, `message`, `close`, `error`) as public functions; see [`ws`]. The seed
//! chat, as in Nitro's `examples/websocket`:
//!
//! ```
//! // routes/_ws.rs  →  ws://host/_ws
//! use nitro::json;
//! use nitro::ws::{Close, Message, Peer};
//!
//! pub fn open(peer: &Peer) {
//!     peer.send(json!({ "user": "server", "message": format!("欢迎 {peer}!") }));
//!     peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 加入了！") }));
//!     peer.subscribe("chat");
//! }
//!
//! pub fn message(peer: &Peer, message: &Message) {
//!     if message.text().contains("ping") {
//!         peer.send(json!({ "user": "server", "message": "pong" }));
//!     } else {
//!         let msg = json!({ "user": peer.to_string(), "message": message.to_string() });
//!         peer.send(&msg); // echo
//!         peer.publish("chat", msg);
//!     }
//! }
//!
//! pub fn close(peer: &Peer, _details: &Close) {
//!     peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 离开了！") }));
//! }
//! ```
//!
//! # Testing
//!
//! `#[test]` functions in a route file run with `nitro test`. Build requests with
//! [`Request::builder`]; test WebSocket hooks on the recording peers of [`testing`]
//! (`TestPeer`, `TestHub`), and `async fn`s with [`testing::block_on`].
//!
//! # Middleware
//!
//! A file in the project's `middleware/` folder runs before every request (files, routes, the
//! page, WebSocket upgrades), in file-name order: `pub async fn handler(req: &mut Request) ->
//! Result<(), Error>` answers with its `Err`, or lets the request go on with the context it set
//! (`req.set_context("user", …)`, read by routes with `req.context::<T>("user")` and by peers
//! with `peer.context`). See [`middleware`].
//!
//! # How routes run
//!
//! A handler or hook is a plain `fn` or an `async fn`, and that choice says where it runs:
//!
//! - An `async fn` is polled inline on the server's async workers: it may `.await` anything
//!   (`tokio::time::sleep`, `tokio::spawn`, reqwest, a database pool) but **must not block**; the
//!   server logs any poll that holds a worker longer than 10 ms. It takes its arguments by value
//!   (`async fn handler(req: Request)`, `async fn message(peer: Peer, message: Message)`), and its
//!   future must be `Send`. Past the handler timeout its future is dropped (`504`).
//! - A plain `fn` may block (file I/O, a blocking database client, heavy CPU): it runs on a
//!   bounded pool of threads.
//!
//! ```
//! // routes/slow.get.rs
//! pub async fn handler(req: nitro::Request) -> String {
//!     // tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//!     format!("waited for {}", req.path())
//! }
//! ```
//!
//! A route file with an `async fn` gets its own small tokio runtime (feature `tokio`, turned on
//! by `nitro dev` for such files); build clients and pools once per route with `nitro::state`
//! (`nitro::state(|| async { … }).await`). State kept in `static`s (and in `nitro::state`) restarts
//! when `nitro dev` reloads the route; data that must outlive a reload, or that several route
//! files share, belongs in [`storage`](mod@storage) (owned by the server) or the peer's
//! context. A panic in a handler, before or after an `.await`, answers `500` and is logged with
//! the route file; the server carries on.

pub mod assets;
pub mod body;
mod config;
pub mod cookies;
mod error;
mod extract;
mod ffi;
mod http;
pub mod middleware;
#[cfg(feature = "multipart")]
pub mod multipart;
mod rt;
pub mod sse;
pub mod storage;
mod streamed;
pub mod task;
pub mod testing;
mod trace;
pub mod ws;

pub use config::{config, config_value};
pub use error::{Error, Result};
#[doc(hidden)]
pub use ffi::__private;
pub use http::{Html, IntoResponse, Json, Request, RequestBuilder, Response};
#[cfg(feature = "tokio")]
pub use rt::state;
/// A JSON value (`serde_json::Value`), as built by [`json!`].
pub use serde_json::Value;
/// Builds a [`Value`]; keys keep the order written.
pub use serde_json::json;
pub use storage::storage;
/// `tracing`, for routes that log without a dependency of their own: `nitro::tracing::info!`.
/// Its events reach the server's log (see the crate docs).
pub use tracing;
pub use ws::HookOutput;

/// Logs on the server's terminal, attributed to this route.
pub mod log {
    use nitro_abi::level;

    /// Logs an error.
    pub fn error(message: impl std::fmt::Display) {
        crate::ffi::host_log(level::ERROR, &message.to_string());
    }
    /// Logs a warning.
    pub fn warn(message: impl std::fmt::Display) {
        crate::ffi::host_log(level::WARN, &message.to_string());
    }
    /// Logs information.
    pub fn info(message: impl std::fmt::Display) {
        crate::ffi::host_log(level::INFO, &message.to_string());
    }
    /// Logs a debugging detail (shown with `nitro dev -v`).
    pub fn debug(message: impl std::fmt::Display) {
        crate::ffi::host_log(level::DEBUG, &message.to_string());
    }
}
