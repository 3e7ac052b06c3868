//! Middleware: code that runs before the route of every request.
//!
//! A file in the project's `middleware/` folder is one middleware. It defines `pub async fn
//! handler` (or a plain `pub fn handler`), taking the request as `&mut Request` (or `&Request`),
//! and returns one of:
//!
//! | return type | means |
//! |---|---|
//! | `()` | go on |
//! | `Result<(), E>`, `nitro::Result<()>` | `Ok(())` goes on, `Err(e)` answers with `e` (any [`IntoResponse`](crate::IntoResponse): a [`nitro::Error`](crate::Error), a `Response`; `?` on any error answers an unhandled `500`) |
//! | `Option<R>` | `None` goes on, `Some(r)` answers with `r` (any `IntoResponse`) |
//!
//! ```
//! // middleware/01.auth.rs
//! use nitro::{Error, Request};
//!
//! pub async fn handler(req: &mut Request) -> Result<(), Error> {
//!     let Some(token) = req.header("authorization") else {
//!         return Err(Error::unauthorized("sign in first"));   // 401, the route never runs
//!     };
//!     let user = token.trim_start_matches("Bearer ").to_owned();
//!     req.set_context("user", user);                          // the route reads it
//!     Ok(())
//! }
//! # let mut req = Request::builder("GET", "/").header("authorization", "Bearer ada").build();
//! # let waker = std::task::Waker::noop();
//! # let mut cx = std::task::Context::from_waker(&waker);
//! # {
//! #     let mut future = std::pin::pin!(handler(&mut req));
//! #     assert!(future.as_mut().poll(&mut cx).is_ready());
//! # }
//! # assert_eq!(req.context::<String>("user").as_deref(), Some("ada"));
//! ```
//!
//! Middleware run in file-name order (`01.auth.rs` before `02.log.rs`; `10.x.rs` sorts before
//! `2.x.rs`), before `public/` files, routes, the renderer's page and WebSocket upgrades. An
//! answer from a middleware ends the request there (for an upgrade: no `101`, the client gets
//! the answer). The context a middleware sets ([`Request::set_context`]) is seen by the next
//! middleware, by the route ([`Request::context`]) and, for an upgrade, becomes the
//! WebSocket peer's context ([`Peer::context`](crate::ws::Peer::context)).
//!
//! Only the context travels on: other changes to the `Request` (it is a copy) are not seen by
//! the route. A middleware gets no body (`req.body()` is empty): it runs before the body is
//! read, so a refused request never uploads it.
//!
//! `pub const PATHS: &[&str] = &["/api/**"];` in the file limits the middleware to those paths
//! (see [`path_matches`]); without it, it runs for every request.

use crate::http::{IntoResponse, Request, Response};

impl Request {
    /// A context entry set by a middleware ([`set_context`](Request::set_context)), as `T`;
    /// `None` when absent or when it does not deserialize into `T`.
    pub fn context<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let (_, json) = self.context.iter().find(|(k, _)| k == key)?;
        serde_json::from_str(json).ok()
    }

    /// Sets a context entry (any `Serialize` value) for the steps after this middleware: the
    /// next middleware, the route, and the WebSocket peer of an upgrade.
    pub fn set_context(&mut self, key: &str, value: impl serde::Serialize) {
        let json = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
        match self.context.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = json,
            None => self.context.push((key.to_owned(), json)),
        }
    }

    /// Removes a context entry.
    pub fn remove_context(&mut self, key: &str) {
        self.context.retain(|(k, _)| k != key);
    }

    /// The names of the context entries, in the order they were set.
    pub fn context_keys(&self) -> Vec<&str> {
        self.context.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// What a middleware may return: go on (`()`, `Ok(())`, `None`) or answer (`Err(e)`,
/// `Some(response)`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a middleware",
    note = "return `()`, `Result<(), E>` (`Err` answers with `E`: a `nitro::Error`, a `nitro::Response`, …) or `Option<R>` (`Some` answers with `R`)"
)]
pub trait MiddlewareOutput {
    /// `None` to go on, or the answer.
    fn into_answer(self) -> Option<Response>;
}

impl MiddlewareOutput for () {
    fn into_answer(self) -> Option<Response> {
        None
    }
}

impl<E: IntoResponse> MiddlewareOutput for Result<(), E> {
    fn into_answer(self) -> Option<Response> {
        self.err().map(IntoResponse::into_response)
    }
}

impl<R: IntoResponse> MiddlewareOutput for Option<R> {
    fn into_answer(self) -> Option<Response> {
        self.map(IntoResponse::into_response)
    }
}

/// Whether `path` (a URL path as received, percent-encoded) is one of `patterns`, the rule of
/// a middleware's `PATHS`.
///
/// Paths are compared segment by segment, as the router does: empty segments are ignored (a
/// trailing slash makes no difference), each segment of `path` is percent-decoded, and the
/// comparison is case-sensitive. In a pattern, `*` is any one segment and a final `**` is any
/// number of segments, none included: `/api/**` is `/api` and everything below it.
///
/// ```
/// use nitro::middleware::path_matches;
/// assert!(path_matches(&["/api/**"], "/api"));
/// assert!(path_matches(&["/api/**"], "/api/users/7"));
/// assert!(path_matches(&["/api/**"], "/%61pi/users"));   // decoded, as the router does
/// assert!(!path_matches(&["/api/**"], "/apiary"));
/// assert!(path_matches(&["/users/*/edit"], "/users/7/edit/"));
/// assert!(!path_matches(&["/users/*/edit"], "/users/edit"));
/// assert!(path_matches(&["/admin", "/login"], "/login"));
/// ```
pub fn path_matches(patterns: &[&str], path: &str) -> bool {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    patterns
        .iter()
        .any(|pattern| pattern_matches(pattern, &segments))
}

fn pattern_matches(pattern: &str, segments: &[String]) -> bool {
    let mut parts = pattern.split('/').filter(|s| !s.is_empty()).peekable();
    let mut rest = segments;
    while let Some(part) = parts.next() {
        if part == "**" && parts.peek().is_none() {
            return true;
        }
        match rest.split_first() {
            Some((segment, tail)) if part == "*" || part == segment => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// Decodes `%XX` escapes once (UTF-8, invalid bytes replaced); `+` stays a `+` in a path.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn outputs_go_on_or_answer() {
        assert!(().into_answer().is_none());
        assert!(Ok::<(), Error>(()).into_answer().is_none());
        let answer = Err::<(), _>(Error::unauthorized("no"))
            .into_answer()
            .unwrap();
        assert_eq!(answer.error.as_ref().map(Error::status), Some(401));
        assert!(None::<Response>.into_answer().is_none());
        let answer = Some((403, "nope")).into_answer().unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (403, &b"nope"[..]));
    }

    #[test]
    fn context_is_set_replaced_and_removed() {
        let mut req = Request::builder("GET", "/").build();
        req.set_context("user", "ada");
        req.set_context("n", 1);
        req.set_context("user", serde_json::json!({ "name": "ada" }));
        assert_eq!(req.context_keys(), ["user", "n"]);
        assert_eq!(
            req.context::<serde_json::Value>("user").unwrap()["name"],
            "ada"
        );
        assert_eq!(req.context::<u32>("n"), Some(1));
        assert_eq!(req.context::<String>("n"), None);
        req.remove_context("n");
        assert_eq!(req.context_keys(), ["user"]);
    }

    #[test]
    fn paths() {
        let yes = |p: &[&str], path: &str| assert!(path_matches(p, path), "{p:?} {path}");
        let no = |p: &[&str], path: &str| assert!(!path_matches(p, path), "{p:?} {path}");
        yes(&["/"], "/");
        yes(&["/"], "//");
        no(&["/"], "/a");
        yes(&["/**"], "/");
        yes(&["/**"], "/a/b");
        yes(&["/api/**"], "/api/");
        no(&["/api/**"], "/API/x");
        yes(&["/a/*"], "/a/b");
        no(&["/a/*"], "/a");
        no(&["/a/*"], "/a/b/c");
        yes(&["/café"], "/caf%C3%A9");
        no(&[], "/");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
        // `/x/%2e%2e` is the segment `..`, as the router sees it: not resolved.
        no(&["/x"], "/x/%2e%2e");
    }
}
