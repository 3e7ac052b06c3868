//! WebSocket routes: the crossws hooks, [`Peer`] and [`Message`].
//!
//! A route file named `_ws.rs` is a WebSocket endpoint at its folder's path
//! (`routes/_ws.rs` → `/_ws`). It defines any of these hooks as public functions; each is
//! optional:
//!
//! ```
//! use nitro::ws::{Close, Message, Peer, Upgrade, WsError};
//! use nitro::{Error, Request};
//!
//! /// Runs on the upgrade request; refuse with an error, or accept and shape the peer.
//! pub fn upgrade(req: &Request) -> Result<Upgrade, Error> {
//!     if req.query("token").as_deref() == Some("nope") {
//!         return Err(Error::unauthorized("bad token"));
//!     }
//!     Ok(Upgrade::accept().context("room", "lobby"))
//! }
//!
//! pub fn open(peer: &Peer) {
//!     peer.subscribe("chat");
//! }
//!
//! pub fn message(peer: &Peer, message: &Message) {
//!     peer.publish("chat", message.text());
//! }
//!
//! pub fn close(peer: &Peer, details: &Close) {
//!     peer.publish("chat", format!("{peer} left ({})", details.code));
//! }
//!
//! pub fn error(peer: &Peer, error: &WsError) {
//!     eprintln!("{peer}: {error}");
//! }
//! ```
//!
//! Each hook may also be an `async fn`, taking its arguments by value; it may `.await` (an
//! `async fn upgrade` can look a token up before the `101`), and is polled on the server's own
//! workers, so it must not block:
//!
//! ```
//! use nitro::ws::{Message, Peer};
//!
//! pub async fn message(peer: Peer, message: Message) {
//!     // let reply = client.get(…).send().await;
//!     peer.send(message);
//! }
//! ```
//!
//! The hooks of one peer run one at a time, in order (`open`, then each `message`, then
//! `close`): a plain `fn` on a thread of the server's blocking pool (it may block), an
//! `async fn` on the peer's own task; either way a slow hook delays that peer's next event.
//! Peers, their topics and context live in the server, so they survive a reload of the route's
//! code.

use crate::ffi::RawPeer;
use crate::{Error, IntoResponse, Json, Request, Response};
use std::borrow::Cow;
use std::fmt::{self, Display};

/// What `send` and `publish` accept: text, bytes, or JSON.
///
/// Strings become text frames, byte vectors binary frames, and `serde_json::Value`s or
/// [`Json`] values JSON text frames (keys in the order written in `json!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl Payload {
    pub(crate) fn as_parts(&self) -> (&[u8], bool) {
        match self {
            Payload::Text(s) => (s.as_bytes(), false),
            Payload::Binary(b) => (b, true),
        }
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_string())
    }
}
impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}
impl From<&String> for Payload {
    fn from(s: &String) -> Self {
        Payload::Text(s.clone())
    }
}
impl From<Cow<'_, str>> for Payload {
    fn from(s: Cow<'_, str>) -> Self {
        Payload::Text(s.into_owned())
    }
}
impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Payload::Binary(b)
    }
}
impl From<&[u8]> for Payload {
    fn from(b: &[u8]) -> Self {
        Payload::Binary(b.to_vec())
    }
}
impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Self {
        Payload::Text(v.to_string())
    }
}
impl From<&serde_json::Value> for Payload {
    fn from(v: &serde_json::Value) -> Self {
        Payload::Text(v.to_string())
    }
}
impl<T: serde::Serialize> From<Json<T>> for Payload {
    fn from(v: Json<T>) -> Self {
        // Serialising plain data into JSON only fails for maps with non-string keys or a
        // failing `Serialize` impl; send the error text rather than panicking in a hook.
        Payload::Text(
            serde_json::to_string(&v.0)
                .unwrap_or_else(|e| format!("{{\"error\":\"unserialisable payload: {e}\"}}")),
        )
    }
}
impl From<&Message> for Payload {
    fn from(m: &Message) -> Self {
        if m.binary {
            Payload::Binary(m.data.clone())
        } else {
            Payload::Text(m.text().into_owned())
        }
    }
}
impl From<Message> for Payload {
    /// Moves the bytes (an `async fn` hook owns its message): no copy for an echo.
    fn from(m: Message) -> Self {
        if m.binary {
            return Payload::Binary(m.data);
        }
        match String::from_utf8(m.data) {
            Ok(text) => Payload::Text(text),
            Err(e) => Payload::Text(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }
}
macro_rules! payload_display {
    ($($t:ty),*) => {$(
        impl From<$t> for Payload {
            fn from(v: $t) -> Self { Payload::Text(v.to_string()) }
        }
    )*};
}
payload_display!(i32, i64, u32, u64, usize, f64, bool, char);

/// A message received from a peer.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) data: Vec<u8>,
    pub(crate) binary: bool,
}

impl Message {
    /// A message, for tests of hooks (also `Message::from("text")`, `Message::from(bytes)`;
    /// see [`testing`](crate::testing)).
    pub fn new(data: impl Into<Vec<u8>>, binary: bool) -> Message {
        Message {
            data: data.into(),
            binary,
        }
    }

    /// The message as text (UTF-8; invalid sequences in a binary message become `�`).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }

    /// The message parsed as JSON; `400` naming the problem if it does not parse into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.data)
            .map_err(|e| Error::bad_request(format!("invalid JSON message: {e}")))
    }

    /// Exactly the payload bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Whether it arrived as a binary frame.
    pub fn is_binary(&self) -> bool {
        self.binary
    }
}

/// A text message, for tests of hooks: `Message::from("hi")`.
impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::new(text, false)
    }
}

/// A text message, for tests of hooks.
impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::new(text, false)
    }
}

/// A binary message, for tests of hooks.
impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Message {
        Message::new(bytes, true)
    }
}

/// A binary message, for tests of hooks.
impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Message {
        Message::new(bytes, true)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("text", &self.text())
            .field("binary", &self.binary)
            .finish()
    }
}

/// Why a connection closed: the close code and reason (`1005` and `""` when the client sent no
/// code; `1006` when the connection dropped without a close frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

impl Close {
    /// Close details, for tests of the `close` hook.
    pub fn new(code: u16, reason: impl Into<String>) -> Close {
        Close {
            code,
            reason: reason.into(),
        }
    }
}

/// A connection-level error reported to the `error` hook (a panicking hook, a protocol error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WsError {}

/// The answer of the `upgrade` hook: accept (optionally with headers, a subprotocol, a
/// namespace and context) or reject with an HTTP response.
///
/// ```
/// use nitro::ws::Upgrade;
/// let accept = Upgrade::accept()
///     .header("x-hello", "world")
///     .protocol("chat.v1")
///     .namespace("room-1")
///     .context("user", "ada");
/// let reject = Upgrade::reject(nitro::Error::unauthorized("log in first"));
/// # let _ = (accept, reject);
/// ```
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub(crate) rejection: Option<Response>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocol: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) context: Vec<(String, String)>,
}

impl Upgrade {
    /// Accepts the connection.
    pub fn accept() -> Upgrade {
        Upgrade {
            rejection: None,
            headers: Vec::new(),
            protocol: None,
            namespace: None,
            context: Vec::new(),
        }
    }

    /// Refuses the connection with this response (an [`Error`] gives its status and JSON body).
    pub fn reject(response: impl IntoResponse) -> Upgrade {
        Upgrade {
            rejection: Some(response.into_response()),
            ..Upgrade::accept()
        }
    }

    /// Adds a header to the `101 Switching Protocols` response.
    pub fn header(mut self, name: &str, value: &str) -> Upgrade {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Accepts this subprotocol; it must be one the client offered in
    /// `Sec-WebSocket-Protocol`. Without it, a client that offers protocols is refused, as
    /// browsers require.
    pub fn protocol(mut self, protocol: &str) -> Upgrade {
        self.protocol = Some(protocol.to_string());
        self
    }

    /// Puts the peer in another pub/sub namespace (default: the URL path).
    pub fn namespace(mut self, namespace: &str) -> Upgrade {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Sets a context entry of the peer, readable with [`Peer::context`].
    pub fn context(mut self, key: &str, value: impl serde::Serialize) -> Upgrade {
        let json = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_string());
        self.context.push((key.to_string(), json));
        self
    }
}

/// What an `upgrade` hook may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a WebSocket `upgrade` hook",
    note = "return `nitro::ws::Upgrade`, `()` (accept), or a `Result<Upgrade, E>` whose error is a `nitro::Error` or `nitro::Response`"
)]
pub trait IntoUpgrade {
    /// Converts into an upgrade decision.
    fn into_upgrade(self) -> Upgrade;
}

impl IntoUpgrade for Upgrade {
    fn into_upgrade(self) -> Upgrade {
        self
    }
}

impl IntoUpgrade for () {
    fn into_upgrade(self) -> Upgrade {
        Upgrade::accept()
    }
}

impl<E: IntoResponse> IntoUpgrade for Result<Upgrade, E> {
    fn into_upgrade(self) -> Upgrade {
        self.unwrap_or_else(Upgrade::reject)
    }
}

impl<E: IntoResponse> IntoUpgrade for Result<(), E> {
    fn into_upgrade(self) -> Upgrade {
        match self {
            Ok(()) => Upgrade::accept(),
            Err(e) => Upgrade::reject(e),
        }
    }
}

/// What a hook may return: `()` or `Result<(), E: Display>` (an `Err` goes to the `error` hook
/// and the log).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a WebSocket hook",
    note = "return nothing (`()`) or a `Result<(), E>` whose error implements `Display`"
)]
pub trait HookOutput {
    /// Converts into `Ok(())` or the error's text.
    fn into_outcome(self) -> Result<(), String>;
}

impl HookOutput for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> HookOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// A connected WebSocket client.
///
/// `Display` shows its id, so `format!("{peer} joined")` reads as in crossws. Cloning a peer
/// keeps a handle that stays usable after the hook returns (sending to a closed peer does
/// nothing).
pub struct Peer {
    raw: RawPeer,
}

impl Peer {
    pub(crate) fn from_raw(raw: RawPeer) -> Peer {
        Peer { raw }
    }

    /// A random UUID v4 identifying this connection.
    pub fn id(&self) -> &str {
        self.raw.id()
    }

    /// Sends a message to this peer: text, bytes, or JSON (see [`Payload`]).
    pub fn send(&self, data: impl Into<Payload>) {
        let payload = data.into();
        let (bytes, binary) = payload.as_parts();
        self.raw.send(bytes, binary);
    }

    /// Sends bytes; false when the peer is closed.
    pub(crate) fn try_send(&self, data: &[u8], binary: bool) -> bool {
        self.raw.send(data, binary)
    }

    /// Sends to every subscriber of `topic` in this peer's namespace **except this peer**.
    pub fn publish(&self, topic: &str, data: impl Into<Payload>) {
        let payload = data.into();
        let (bytes, binary) = payload.as_parts();
        self.raw.publish(topic, bytes, binary, false);
    }

    /// Subscribes this peer to `topic`.
    pub fn subscribe(&self, topic: &str) {
        self.raw.subscribe(topic);
    }

    /// Unsubscribes this peer from `topic`.
    pub fn unsubscribe(&self, topic: &str) {
        self.raw.unsubscribe(topic);
    }

    /// The topics this peer is subscribed to.
    pub fn topics(&self) -> Vec<String> {
        self.raw.topics()
    }

    /// Closes the connection with `code` (1000, or 3000–4999) and `reason` (at most 123 bytes).
    pub fn close(&self, code: u16, reason: &str) {
        self.raw.close(code, reason);
    }

    /// The client's address, `ip:port`.
    pub fn remote_addr(&self) -> &str {
        self.raw.remote_addr()
    }

    /// The client's IP address without the port, as crossws's `peer.remoteAddress` gives it
    /// (`127.0.0.1`, `::1`).
    pub fn remote_address(&self) -> &str {
        split_addr(self.raw.remote_addr()).0
    }

    /// The client's port; `None` if the server could not tell.
    pub fn remote_port(&self) -> Option<u16> {
        split_addr(self.raw.remote_addr()).1
    }

    /// Bytes sent to this peer that the server has not yet handed to its socket
    /// (crossws: `peer.websocket.bufferedAmount`). A client that does not read makes it grow;
    /// past `[limits] ws_send_queue` the peer is closed with `1008`.
    pub fn buffered_amount(&self) -> usize {
        self.raw.buffered_amount()
    }

    /// Resolves once everything sent to this peer has been handed to its socket
    /// ([`buffered_amount`](Self::buffered_amount) is 0), or the connection is gone (crossws:
    /// `peer.waitForDrain()`). Await it before sending more to pace a large transfer to a
    /// slow client:
    ///
    /// ```no_run
    /// # async fn hook(peer: nitro::ws::Peer) {
    /// for chunk in [vec![0u8; 1 << 20], vec![1u8; 1 << 20]] {
    ///     peer.send(chunk);
    ///     peer.wait_for_drain().await;
    /// }
    /// # }
    /// ```
    pub fn wait_for_drain(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        std::future::poll_fn(|cx| {
            if self.raw.poll_drain(cx.waker()) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    /// The subprotocol negotiated by the `upgrade` hook (crossws: `peer.websocket.protocol`);
    /// `""` when none. The server negotiates no extensions, so there is no `extensions()`.
    pub fn protocol(&self) -> &str {
        self.raw.protocol()
    }

    /// The pub/sub namespace (the URL path unless the `upgrade` hook chose another).
    pub fn namespace(&self) -> &str {
        self.raw.namespace()
    }

    /// The upgrade request: path, query, headers and route params (empty if the server could
    /// not provide it, which it logs).
    pub fn request(&self) -> Request {
        self.raw.request()
    }

    /// A context entry, set by the `upgrade` hook or [`set_context`](Self::set_context).
    /// The route's params are there too, under `"params"` (an object).
    pub fn context<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let json = self.raw.context_get(key)?;
        serde_json::from_slice(&json).ok()
    }

    /// Sets a context entry; it lives with the connection, across reloads of the route.
    pub fn set_context(&self, key: &str, value: impl serde::Serialize) {
        if let Ok(json) = serde_json::to_vec(&value) {
            self.raw.context_set(key, &json);
        }
    }

    /// Removes a context entry.
    pub fn remove_context(&self, key: &str) {
        self.raw.context_set(key, b"");
    }

    /// The names of every context entry.
    pub fn context_keys(&self) -> Vec<String> {
        self.raw.context_keys()
    }

    /// Every open peer in this peer's namespace, this one included.
    pub fn peers(&self) -> Vec<Peer> {
        self.raw.peers().into_iter().map(Peer::from_raw).collect()
    }
}

impl Clone for Peer {
    fn clone(&self) -> Self {
        Peer {
            raw: self.raw.retain(),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id())
            .field("remote_addr", &self.remote_addr())
            .finish()
    }
}

impl PartialEq for Peer {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

/// Publishes to every subscriber of `topic` in every namespace: the server-wide publish, usable
/// from HTTP routes (a WebSocket hook's [`Peer::publish`] skips the sender; this reaches all).
pub fn publish(topic: &str, data: impl Into<Payload>) {
    let payload = data.into();
    let (bytes, binary) = payload.as_parts();
    crate::ffi::host_publish("", topic, bytes, binary);
}

/// Like [`publish`], limited to one namespace (a WebSocket route's URL path, e.g. `/_ws`).
pub fn publish_in(namespace: &str, topic: &str, data: impl Into<Payload>) {
    let payload = data.into();
    let (bytes, binary) = payload.as_parts();
    crate::ffi::host_publish(namespace, topic, bytes, binary);
}

/// Every open peer, in every namespace: for HTTP routes (crossws: `peers`). A peer whose
/// `101` has been sent is included, even while its `open` hook runs.
pub fn peers() -> Vec<Peer> {
    crate::ffi::host_peers("")
        .into_iter()
        .map(Peer::from_raw)
        .collect()
}

/// The open peers of one namespace (a WebSocket route's URL path, e.g. `/_ws`).
pub fn peers_in(namespace: &str) -> Vec<Peer> {
    if namespace.is_empty() {
        return Vec::new();
    }
    crate::ffi::host_peers(namespace)
        .into_iter()
        .map(Peer::from_raw)
        .collect()
}

/// Closes every open peer (of `namespace`, or of all namespaces when `None`) with `code`
/// (1000, or 3000–4999) and `reason` (crossws: `closeAll`). Returns how many were asked to
/// close.
pub fn close_all(namespace: Option<&str>, code: u16, reason: &str) -> usize {
    let peers = match namespace {
        Some(namespace) => peers_in(namespace),
        None => peers(),
    };
    for peer in &peers {
        peer.close(code, reason);
    }
    peers.len()
}

/// Splits `ip:port` (`[v6]:port` for IPv6) into the address and the port; an address
/// without a port comes back whole.
fn split_addr(addr: &str) -> (&str, Option<u16>) {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((ip, port)) = rest.split_once("]:")
    {
        return (ip, port.parse().ok());
    }
    match addr.rsplit_once(':') {
        // One colon: `v4:port` (a bare IPv6 address has several).
        Some((ip, port)) if !ip.contains(':') => (ip, port.parse().ok()),
        _ => (addr, None),
    }
}

#[cfg(test)]
mod addr_tests {
    use super::split_addr;

    #[test]
    fn remote_addresses_split_like_crossws() {
        assert_eq!(split_addr("127.0.0.1:5173"), ("127.0.0.1", Some(5173)));
        assert_eq!(split_addr("[::1]:40000"), ("::1", Some(40000)));
        assert_eq!(split_addr("::1"), ("::1", None));
        assert_eq!(split_addr("10.0.0.1"), ("10.0.0.1", None));
    }
}
