//! HTTP requests and responses.

use crate::Error;
use std::borrow::Cow;

/// An HTTP request, as a route handler sees it.
///
/// The body is fully buffered. Header names are lower case; lookups ignore case.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) remote_addr: String,
    /// Set by middleware: key and JSON text, in the order set (see `middleware.rs`).
    pub(crate) context: Vec<(String, String)>,
}

impl Request {
    /// Builds a request by hand, for tests of handlers.
    ///
    /// ```
    /// let req = nitro::Request::builder("POST", "/users/7")
    ///     .param("id", "7")
    ///     .header("content-type", "application/json")
    ///     .body(r#"{"name":"ada"}"#)
    ///     .build();
    /// assert_eq!(req.param("id"), Some("7"));
    /// ```
    pub fn builder(method: &str, path_and_query: &str) -> RequestBuilder {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_and_query, ""),
        };
        RequestBuilder(Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            remote_addr: "127.0.0.1:0".to_string(),
            ..Request::default()
        })
    }

    /// `GET`, `POST`, … (upper case).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL path as received (percent-encoded), without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string, without `?` (empty when there is none).
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The first value of query parameter `name`, decoded (`+` is a space).
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every query parameter, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                (decode_query_component(k), decode_query_component(v))
            })
            .collect()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, names in lower case, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A route parameter from the file name: `routes/users/[id].rs` gives `param("id")`;
    /// a catch-all `[...slug].rs` gives the rest of the path, `a/b`. Values are decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every route parameter.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text; `400` if it is not valid UTF-8.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::bad_request(format!("request body is not valid UTF-8: {e}")))
    }

    /// The body parsed as JSON; `400` naming the problem if it does not parse into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The client's address, `ip:port`.
    pub fn remote_addr(&self) -> &str {
        &self.remote_addr
    }
}

/// Builds a [`Request`] for tests; see [`Request::builder`].
#[derive(Debug)]
pub struct RequestBuilder(Request);

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0
            .headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Adds a route parameter.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.0.params.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.0.body = body.into();
        self
    }

    /// Sets a context entry, as a middleware would ([`Request::set_context`]).
    pub fn context(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.0.set_context(key, value);
        self
    }

    /// The request.
    pub fn build(self) -> Request {
        self.0
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte.
fn decode_query_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// An HTTP response: status, headers, body.
///
/// Handlers usually return something that converts into one ([`IntoResponse`]): a `String`
/// (text), [`Html`], [`Json`], a `serde_json::Value`, bytes, `()`, an [`Error`], or a
/// `Result` of those. Build one by hand for anything else:
///
/// ```
/// use nitro::Response;
/// let res = Response::text("created").with_status(201).with_header("location", "/users/7");
/// assert_eq!(res.status(), 201);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) error: Option<Error>,
    /// A streamed body ([`Response::stream`], [`Response::file`], an event stream): sent
    /// instead of `body`.
    pub(crate) stream: Option<crate::streamed::Streamed>,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            error: None,
            stream: None,
        }
    }
}

impl Response {
    /// An empty `200` response.
    pub fn new() -> Response {
        Response::default()
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new()
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// `text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new()
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// `application/json` with `value` serialised; a value that cannot be serialised gives a
    /// `500` error naming the problem.
    pub fn json(value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new()
                .with_header("content-type", "application/json; charset=utf-8")
                .with_body(body),
            Err(e) => Error::internal(format!("response is not serialisable as JSON: {e}"))
                .into_response(),
        }
    }

    /// `application/octet-stream`.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Response {
        Response::new()
            .with_header("content-type", "application/octet-stream")
            .with_body(body.into())
    }

    /// A redirect (`302 Found` unless changed with [`with_status`](Self::with_status)).
    pub fn redirect(location: &str) -> Response {
        Response::new()
            .with_status(302)
            .with_header("location", location)
    }

    /// `204 No Content`.
    pub fn no_content() -> Response {
        Response::new().with_status(204)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Adds a header, replacing `content-type` if that is the name.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        let name = name.to_ascii_lowercase();
        if name == "content-type" {
            self.headers.retain(|(k, _)| k != "content-type");
        }
        self.headers.push((name, value.to_string()));
        self
    }

    /// Sets the body (replacing a stream).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self.stream = None;
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.error.as_ref().map_or(self.status, Error::status)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body (empty for an error, which the server renders, and for a stream).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The error this response stands for, if it is one.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

/// Anything a handler can return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a nitro handler",
    label = "this is returned from the handler",
    note = "return a `String`, `&'static str`, `nitro::Html`, `nitro::Json`, `serde_json::Value`, `Vec<u8>`, `()`, `nitro::Response`, `nitro::Error`, `(status, T)`, or a `Result` of these (also `anyhow::Result<T>` and `Result<T, Box<dyn std::error::Error>>`)"
)]
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Response {
            error: Some(self),
            ..Response::default()
        }
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Cow<'_, str> {
    fn into_response(self) -> Response {
        Response::text(self.into_owned())
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for &[u8] {
    fn into_response(self) -> Response {
        Response::bytes(self.to_vec())
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new()
    }
}

impl IntoResponse for serde_json::Value {
    fn into_response(self) -> Response {
        Response::json(&self)
    }
}

/// `Err` never answers 2xx (or 1xx, 3xx): an error whose response has no error status of its
/// own (`Err("went wrong".to_string())`) is a `500` with that body.
impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => {
                let mut res = e.into_response();
                if !(400..=599).contains(&res.status()) {
                    res.status = 500;
                }
                res
            }
        }
    }
}

/// An unhandled `500` (logged; its text reaches the client only under `nitro dev`), so a
/// handler may return `anyhow::Result<T>`.
impl IntoResponse for anyhow::Error {
    fn into_response(self) -> Response {
        Error::from(self).into_response()
    }
}

/// An unhandled `500`, so a handler may return `Result<T, Box<dyn std::error::Error>>`.
impl IntoResponse for Box<dyn std::error::Error> {
    fn into_response(self) -> Response {
        Error::unhandled(&*self).into_response()
    }
}

/// An unhandled `500`, so a handler may return `Result<T, Box<dyn Error + Send + Sync>>`.
impl IntoResponse for Box<dyn std::error::Error + Send + Sync> {
    fn into_response(self) -> Response {
        Error::unhandled(&*self).into_response()
    }
}

impl<T: IntoResponse> IntoResponse for (u16, T) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        res.status = self.0;
        res
    }
}

/// An HTML body: `text/html; charset=utf-8`.
#[derive(Debug, Clone)]
pub struct Html<T>(pub T);

impl<T: Into<String>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::html(self.0)
    }
}

/// A JSON body from any `Serialize` value: `application/json`.
///
/// Also usable as a WebSocket payload: `peer.send(Json(&value))` sends JSON text.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let req = Request::builder(
            "get",
            "/x?a=1&b=hello+world&c=%E2%9C%93&d&a=2&bad=%zz&end=%4",
        )
        .build();
        assert_eq!(req.method(), "GET");
        assert_eq!(req.query("a").as_deref(), Some("1"));
        assert_eq!(req.query("b").as_deref(), Some("hello world"));
        assert_eq!(req.query("c").as_deref(), Some("✓"));
        assert_eq!(req.query("d").as_deref(), Some(""));
        assert_eq!(req.query("bad").as_deref(), Some("%zz"));
        assert_eq!(req.query("end").as_deref(), Some("%4"));
        assert_eq!(req.query("nope"), None);
        assert_eq!(req.query_pairs().len(), 7);
    }

    #[test]
    fn json_body_errors_are_400() {
        let req = Request::builder("POST", "/").body("{nope").build();
        let err = req.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message().starts_with("invalid JSON body"), "{err}");
    }

    #[test]
    fn conversions() {
        assert_eq!(
            "hi".into_response().header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let res = Json(serde_json::json!({"b": 1, "a": 2})).into_response();
        assert_eq!(res.body(), br#"{"b":1,"a":2}"#);
        let res: Response = Err::<String, _>(Error::not_found("x")).into_response();
        assert_eq!(res.status(), 404);
        assert_eq!((201, "made").into_response().status(), 201);
        assert_eq!(Error::new(200, "odd").status(), 500);
    }

    #[test]
    fn an_err_never_answers_success() {
        let res = Err::<String, _>("something went wrong".to_string()).into_response();
        assert_eq!(res.status(), 500);
        assert_eq!(res.body(), b"something went wrong");
        let res = Err::<(), _>((409, "taken")).into_response();
        assert_eq!(res.status(), 409);
        let res = Err::<(), _>(Response::redirect("/")).into_response();
        assert_eq!(res.status(), 500);
        let boxed: Box<dyn std::error::Error> = "x".parse::<u8>().unwrap_err().into();
        let res = Err::<(), _>(boxed).into_response();
        assert!(res.error().is_some_and(Error::is_unhandled));
        let res = Err::<(), _>(anyhow::anyhow!("no")).into_response();
        assert_eq!(res.status(), 500);
        assert!(res.error().is_some_and(Error::is_unhandled));
    }
}
