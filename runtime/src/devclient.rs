//! The dev client of `nitro dev`: a small script injected into HTML responses and the dev-only
//! WebSocket it talks to.
//!
//! Only a server given a [`DevClient`] ([`Server::set_dev_client`]) does any of this; `nitro
//! start` never does.
//!
//! - **Injection**: every HTML response (`Content-Type: text/html`, not `206`/`304`, not
//!   content-encoded) gets an inline `<script>` before `</body>` (or at the end). It has no
//!   external resources. `ETag` and `Last-Modified` are dropped from such responses, since the
//!   body now depends on the process (its token). A page whose `Content-Security-Policy`
//!   forbids inline scripts will not run it: the page itself works, it only loses the reload
//!   and the overlay (no nonce support).
//! - **The dev socket** at [`DEV_PATH`]: the upgrade must carry the per-process token in its
//!   query (`?token=…`), a `Host` that names this machine (`localhost`, `*.localhost`,
//!   `127.0.0.1`, `[::1]` or the bound address) with the server's port, and, when there is an
//!   `Origin` (browsers always send one), exactly `http://` + that `Host`. Anything else gets
//!   `403` before any `101` (cross-site WebSocket hijacking and DNS rebinding of dev sockets
//!   are a known class of dev-server vulnerability).
//! - **The protocol**: the server sends JSON text frames, a [`DevMessage`]; the client sends
//!   nothing. On connect the client gets the current build state (`ok` or `error`), then each
//!   change: `error` shows the overlay (rustc's diagnostics, ANSI colours as HTML), `ok` hides
//!   it (and reloads a page that was itself an error), `reload` reloads the page.
//!
//! The state lives on a `watch` channel: the dev loop updates it, every dev socket follows it.
//!
//! [`Server::set_dev_client`]: crate::Server::set_dev_client

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::{Body, full};
use crate::ws::handshake::{self, Refusal};

/// The path of the dev socket.
pub const DEV_PATH: &str = "/__nitro/dev";

/// HTML bodies larger than this, or of unknown length, are sent without the script.
const INJECT_LIMIT: usize = 16 << 20;

const SCRIPT: &str = include_str!("devclient.js");

/// A message of the dev socket, as JSON: `{"type":"ok"}`,
/// `{"type":"error","text":"…","html":"…"}`, `{"type":"reload","reason":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DevMessage {
    /// The last build succeeded: no errors to show.
    Ok,
    /// Routes failed to build: `text` is rustc's diagnostics as plain text, `html` the same
    /// with colours (escaped HTML, for a `<pre>`), `locations` the `file:line:col` of each error.
    Error {
        text: String,
        html: String,
        locations: Vec<String>,
    },
    /// Reload the page (`index.html` or a `public/` file changed).
    Reload { reason: String },
}

/// Build errors to show in the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// rustc's diagnostics, plain text.
    pub text: String,
    /// The same with colours, as escaped HTML for a `<pre>`.
    pub html: String,
    /// Where the errors are: `routes/_ws.rs:16:21`, …
    pub locations: Vec<String>,
}

/// What every dev socket follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DevState {
    /// Bumped by each page reload.
    reload: u64,
    reload_reason: String,
    /// Bumped by each build.
    build: u64,
    /// The errors of the routes that currently fail to build.
    errors: Option<Overlay>,
}

impl DevState {
    fn status(&self) -> DevMessage {
        match &self.errors {
            None => DevMessage::Ok,
            Some(overlay) => DevMessage::Error {
                text: overlay.text.clone(),
                html: overlay.html.clone(),
                locations: overlay.locations.clone(),
            },
        }
    }

    /// The messages that take a client from `self` to `next`.
    fn diff(&self, next: &DevState) -> Vec<DevMessage> {
        let mut out = Vec::new();
        if next.build != self.build || next.errors != self.errors {
            out.push(next.status());
        }
        if next.reload != self.reload {
            out.push(DevMessage::Reload {
                reason: next.reload_reason.clone(),
            });
        }
        out
    }
}

/// The dev client of one server: its token and the state its sockets follow.
#[derive(Debug)]
pub struct DevClient {
    token: String,
    state: watch::Sender<DevState>,
    /// The server's address, set when the client is attached to it.
    local_addr: OnceLock<SocketAddr>,
}

impl DevClient {
    /// A client with a fresh random token.
    pub fn new() -> Arc<DevClient> {
        Arc::new(DevClient {
            token: uuid::Uuid::new_v4().simple().to_string(),
            state: watch::Sender::new(DevState::default()),
            local_addr: OnceLock::new(),
        })
    }

    /// The per-process token the dev socket requires.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Tells every open page to reload.
    pub fn reload(&self, reason: &str) {
        self.state.send_modify(|state| {
            state.reload += 1;
            reason.clone_into(&mut state.reload_reason);
        });
    }

    /// A build finished; `errors` are those of the routes that still fail, if any.
    pub fn build_finished(&self, errors: Option<Overlay>) {
        self.state.send_modify(|state| {
            state.build += 1;
            state.errors = errors;
        });
    }

    /// The number of open dev sockets.
    pub fn connections(&self) -> usize {
        self.state.receiver_count()
    }

    pub(crate) fn attach(&self, addr: SocketAddr) {
        let _ = self.local_addr.set(addr);
    }

    /// The `<script>` element injected into pages.
    pub fn script_tag(&self) -> String {
        format!(
            "<script data-nitro-dev='{{\"path\":\"{DEV_PATH}\",\"token\":\"{}\"}}'>\n{SCRIPT}</script>\n",
            self.token
        )
    }

    /// Adds the script to an HTML response.
    pub(crate) async fn inject(&self, method: &Method, response: Response<Body>) -> Response<Body> {
        if !injectable(&response) {
            return response;
        }
        let script = self.script_tag();
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(header::ETAG);
        parts.headers.remove(header::LAST_MODIFIED);
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if *method == Method::HEAD {
            let length = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if let Some(length) = length {
                parts.headers.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(length + script.len()),
                );
            }
            return Response::from_parts(parts, body);
        }
        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| hyper::body::Body::size_hint(&body).upper());
        if length.is_none_or(|length| length > INJECT_LIMIT as u64) {
            return Response::from_parts(parts, body);
        }
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                tracing::warn!(target: "nitro::dev", "cannot read an HTML response to add the dev client: {err}");
                let mut response = Response::new(full("cannot read the response body"));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return response;
            }
        };
        let html = insert_script(&bytes, &script);
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
        Response::from_parts(parts, full(html))
    }
}

/// An HTML response with a whole body to add the script to.
fn injectable(response: &Response<Body>) -> bool {
    let status = response.status();
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    html && (status.is_success() || status.is_client_error() || status.is_server_error())
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::PARTIAL_CONTENT
        && !response.headers().contains_key(header::CONTENT_ENCODING)
        && !response.headers().contains_key(header::CONTENT_RANGE)
}

/// Puts `script` before the last `</body>` (any case), or at the end when there is none.
pub fn insert_script(html: &[u8], script: &str) -> Vec<u8> {
    let needle = b"</body";
    let at = html
        .windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle))
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + script.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(script.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

/// Why a dev socket request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Token,
    Host,
    Origin,
}

impl Refused {
    fn message(self) -> &'static str {
        match self {
            Refused::Token => "the dev socket needs this server's token",
            Refused::Host => "the dev socket only answers requests for this machine (`Host`)",
            Refused::Origin => "the dev socket only answers pages of this server (`Origin`)",
        }
    }
}

/// Checks a dev socket request: the token in the query, `Host`, `Origin`. Pure.
pub fn check_request(
    query: Option<&str>,
    headers: &HeaderMap,
    token: &str,
    local: SocketAddr,
) -> Result<(), Refused> {
    let given = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="));
    if given != Some(token) {
        return Err(Refused::Token);
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().map_err(|_| Refused::Host)?,
        _ => return Err(Refused::Host),
    };
    if !allowed_host(host, local) {
        return Err(Refused::Host);
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (None, None) => Ok(()),
        (Some(origin), None) if origin.as_bytes() == format!("http://{host}").as_bytes() => Ok(()),
        _ => Err(Refused::Origin),
    }
}

/// `host:port` naming this machine, with the server's port.
fn allowed_host(host: &str, local: SocketAddr) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(local.port()) {
        return false;
    }
    let name = name.to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(&name);
    match bare.parse::<IpAddr>() {
        // Bound to every interface, the user asked for other devices: any address of this
        // machine may name it. An IP literal cannot be rebound by DNS, and the token and the
        // `Origin` check still apply.
        Ok(ip) => {
            !ip.is_unspecified()
                && (ip.is_loopback() || ip == local.ip() || local.ip().is_unspecified())
        }
        Err(_) => false,
    }
}

/// Answers a request to [`DEV_PATH`] on a server configured to listen on `configured`; the
/// socket's task is tracked by `tracker` and ends at `shutdown`.
pub(crate) fn serve(
    dev: &Arc<DevClient>,
    req: Request<Incoming>,
    configured: SocketAddr,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Response<Body> {
    let local = dev.local_addr.get().copied().unwrap_or(configured);
    if let Err(refused) = check_request(req.uri().query(), req.headers(), &dev.token, local) {
        tracing::warn!(target: "nitro::dev", "refused a dev socket request: {}", refused.message());
        let mut response = Response::new(full(refused.message()));
        *response.status_mut() = StatusCode::FORBIDDEN;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return response;
    }
    let offer = match handshake::check(req.method(), req.version(), req.headers()) {
        Ok(offer) => offer,
        Err(Refusal::NotAnUpgrade) => return handshake::upgrade_required(),
        Err(Refusal::Invalid(error)) => return error.render(req.headers(), true),
    };
    let response = handshake::switching_protocols(&offer, None, Vec::new());
    let mut req = req;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let dev = dev.clone();
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        run_socket(&dev, shutdown, ws).await;
    });
    response
}

async fn run_socket<S>(dev: &DevClient, shutdown: CancellationToken, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut state = dev.state.subscribe();
    let (mut sink, mut stream) = ws.split();
    let mut last = state.borrow_and_update().clone();
    if send(&mut sink, &last.status()).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                let frame = CloseFrame { code: 1001.into(), reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = state.borrow_and_update().clone();
                for message in last.diff(&next) {
                    if send(&mut sink, &message).await.is_err() {
                        return;
                    }
                }
                last = next;
            }
            incoming = stream.next() => match incoming {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send<S>(
    sink: &mut futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    message: &DevMessage,
) -> Result<(), ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let text = serde_json::to_string(message).map_err(|_| ())?;
    sink.send(Message::text(text)).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const LOCAL: &str = "127.0.0.1:4000";

    fn check(query: Option<&str>, pairs: &[(&'static str, &'static str)]) -> Result<(), Refused> {
        check_request(query, &headers(pairs), "t0k", LOCAL.parse().unwrap())
    }

    #[test]
    fn the_dev_socket_wants_token_host_and_origin() {
        let host = ("host", "127.0.0.1:4000");
        assert_eq!(check(Some("token=t0k"), &[host]), Ok(()));
        assert_eq!(
            check(
                Some("token=t0k"),
                &[host, ("origin", "http://127.0.0.1:4000")]
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Some("a=1&token=t0k"),
                &[
                    ("host", "localhost:4000"),
                    ("origin", "http://localhost:4000")
                ]
            ),
            Ok(())
        );
        assert_eq!(
            check(Some("token=t0k"), &[("host", "app.localhost:4000")]),
            Ok(())
        );
        assert_eq!(check(Some("token=t0k"), &[("host", "[::1]:4000")]), Ok(()));

        assert_eq!(check(None, &[host]), Err(Refused::Token));
        assert_eq!(check(Some("token="), &[host]), Err(Refused::Token));
        assert_eq!(check(Some("token=t0kx"), &[host]), Err(Refused::Token));
        assert_eq!(
            check(Some("token=t0k"), &[("host", "evil.example:4000")]),
            Err(Refused::Host)
        );
        assert_eq!(
            check(Some("token=t0k"), &[("host", "127.0.0.1:4001")]),
            Err(Refused::Host)
        );
        assert_eq!(
            check(Some("token=t0k"), &[("host", "127.0.0.1")]),
            Err(Refused::Host)
        );
        assert_eq!(
            check(Some("token=t0k"), &[("host", "10.0.0.1:4000")]),
            Err(Refused::Host)
        );
        assert_eq!(check(Some("token=t0k"), &[]), Err(Refused::Host));
        assert_eq!(
            check(
                Some("token=t0k"),
                &[host, ("origin", "http://evil.example")]
            ),
            Err(Refused::Origin)
        );
        assert_eq!(
            check(
                Some("token=t0k"),
                &[host, ("origin", "http://localhost:4000")]
            ),
            Err(Refused::Origin),
            "the origin must match the host exactly"
        );
        assert_eq!(
            check(Some("token=t0k"), &[host, ("origin", "null")]),
            Err(Refused::Origin)
        );
    }

    #[test]
    fn the_bound_address_is_allowed_and_every_ip_when_bound_to_all() {
        let local: SocketAddr = "192.168.1.5:80".parse().unwrap();
        assert!(allowed_host("192.168.1.5:80", local));
        assert!(!allowed_host("192.168.1.6:80", local));
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(!allowed_host("0.0.0.0:80", any));
        assert!(allowed_host("127.0.0.1:80", any));
        assert!(
            allowed_host("192.168.1.6:80", any),
            "a LAN address of `--host 0.0.0.0`"
        );
        assert!(
            !allowed_host("192.168.1.6:81", any),
            "but only with our port"
        );
        assert!(!allowed_host("evil.example:80", any), "never a name");
    }

    #[test]
    fn script_goes_before_the_last_body_end() {
        assert_eq!(
            insert_script(b"<p>x</p></BODY></html>", "S"),
            b"<p>x</p>S</BODY></html>"
        );
        assert_eq!(
            insert_script(b"<body></body><!-- </body> -->", "S"),
            b"<body></body><!-- S</body> -->"
        );
        assert_eq!(insert_script(b"<h1>hi</h1>", "S"), b"<h1>hi</h1>S");
    }

    #[test]
    fn messages_are_tagged_json() {
        assert_eq!(
            serde_json::to_string(&DevMessage::Ok).unwrap(),
            r#"{"type":"ok"}"#
        );
        assert_eq!(
            serde_json::to_string(&DevMessage::Reload {
                reason: "index.html".into()
            })
            .unwrap(),
            r#"{"type":"reload","reason":"index.html"}"#
        );
        let error = DevMessage::Error {
            text: "t".into(),
            html: "h".into(),
            locations: vec!["routes/a.rs:1:2".into()],
        };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","text":"t","html":"h","locations":["routes/a.rs:1:2"]}"#
        );
    }

    #[test]
    fn state_changes_become_messages() {
        let start = DevState::default();
        let mut next = start.clone();
        next.build += 1;
        assert_eq!(start.diff(&next), [DevMessage::Ok]);
        let mut failed = next.clone();
        failed.build += 1;
        failed.errors = Some(Overlay {
            text: "e".into(),
            html: "e".into(),
            locations: Vec::new(),
        });
        assert_eq!(
            next.diff(&failed),
            [DevMessage::Error {
                text: "e".into(),
                html: "e".into(),
                locations: Vec::new(),
            }]
        );
        let mut reload = failed.clone();
        reload.reload += 1;
        reload.reload_reason = "public/app.css".into();
        assert_eq!(
            failed.diff(&reload),
            [DevMessage::Reload {
                reason: "public/app.css".into()
            }]
        );
        assert!(reload.diff(&reload).is_empty());
    }

    fn html_response(status: StatusCode, content_type: &'static str, body: &str) -> Response<Body> {
        let mut response = Response::new(full(body.to_owned()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        response
    }

    async fn text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn html_responses_get_the_script() {
        let client = DevClient::new();
        let tag = client.script_tag();
        let page = "<html><body><h1>hi</h1></body></html>";

        let response = client
            .inject(
                &Method::GET,
                html_response(StatusCode::OK, "text/html; charset=utf-8", page),
            )
            .await;
        let length: usize = response.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(!response.headers().contains_key(header::ETAG));
        let body = text(response).await;
        assert_eq!(body, format!("<html><body><h1>hi</h1>{tag}</body></html>"));
        assert_eq!(length, body.len());

        // HEAD: no body, the length it would have.
        let response = client
            .inject(
                &Method::HEAD,
                html_response(StatusCode::OK, "text/html", page),
            )
            .await;
        assert_eq!(
            response.headers()[header::CONTENT_LENGTH],
            (page.len() + tag.len()).to_string().as_str()
        );

        // Error pages too.
        let response = client
            .inject(
                &Method::GET,
                html_response(StatusCode::INTERNAL_SERVER_ERROR, "text/html", "<p>500</p>"),
            )
            .await;
        assert!(text(response).await.contains(client.token()));

        // Not HTML, partial, or not modified: untouched.
        for (status, content_type) in [
            (StatusCode::OK, "application/json"),
            (StatusCode::OK, "text/plain"),
            (StatusCode::PARTIAL_CONTENT, "text/html"),
            (StatusCode::NOT_MODIFIED, "text/html"),
        ] {
            let response = client
                .inject(&Method::GET, html_response(status, content_type, page))
                .await;
            assert!(
                response.headers().contains_key(header::ETAG),
                "{status} {content_type}"
            );
            assert_eq!(text(response).await, page);
        }
    }

    #[test]
    fn the_script_is_ascii() {
        // Safe in a page of any ASCII-compatible charset.
        assert!(SCRIPT.is_ascii());
    }

    #[test]
    fn the_script_has_no_external_resources() {
        let client = DevClient::new();
        let tag = client.script_tag();
        assert!(tag.contains(client.token()));
        assert!(!tag.contains("http://") && !tag.contains("https://") && !tag.contains("src="));
    }
}
