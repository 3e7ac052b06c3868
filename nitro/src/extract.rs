//! Typed extraction from a [`Request`]: route parameters, the query string and form bodies.
//!
//! Each answers `400 Bad Request` naming the parameter or field that does not fit, so `?` is
//! all a handler needs:
//!
//! ```
//! use nitro::{Request, Result};
//!
//! #[derive(serde::Deserialize)]
//! struct Page { page: Option<u32> }
//!
//! // routes/orders/[id].get.rs
//! fn handler(req: &Request) -> Result<String> {
//!     let id: u64 = req.param_as("id")?;
//!     let Page { page } = req.query_as()?;
//!     Ok(format!("order {id}, page {}", page.unwrap_or(1)))
//! }
//! # let req = |uri: &str, id: &str| Request::builder("GET", uri).param("id", id).build();
//! # assert_eq!(handler(&req("/orders/7?page=2", "7")).unwrap(), "order 7, page 2");
//! # let err = handler(&req("/orders/x", "x")).unwrap_err();
//! # assert_eq!((err.status(), err.message()), (400, "route parameter `id` must be a valid u64 (`x`: invalid digit found in string)"));
//! # let err = handler(&req("/orders/7?page=last", "7")).unwrap_err();
//! # assert_eq!((err.status(), err.message()), (400, "query parameter `page`: invalid digit found in string"));
//! ```

use crate::{Error, Request};
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::str::FromStr;

/// The `Content-Type` of an HTML form without files.
const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";

impl Request {
    /// The route parameter `name` parsed as `T` (`u64`, `uuid::Uuid`, any `FromStr`): `400`
    /// naming the parameter and the value when it does not parse. A name the route file does
    /// not have (`[id]`) is a bug in the route: `500`.
    pub fn param_as<T>(&self, name: &str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        let value = self.param(name).ok_or_else(|| {
            Error::internal(format!(
                "this route has no parameter `{name}` (its file name has no `[{name}]`)"
            ))
        })?;
        value.parse().map_err(|e| {
            Error::bad_request(format!(
                "route parameter `{name}` must be a valid {} (`{value}`: {e})",
                short_type_name::<T>()
            ))
        })
    }

    /// The query string deserialised into `T` (a `#[derive(serde::Deserialize)]` struct whose
    /// fields are the parameters; `Option` for optional ones): `400` naming the parameter that
    /// is missing or does not fit.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        urlencoded(self.query_string().as_bytes())
            .map_err(|e| Error::bad_request(format!("query parameter {e}")))
    }

    /// The body of an HTML form (`application/x-www-form-urlencoded`) deserialised into `T`:
    /// `415` for another content type, `400` naming the field that is missing or does not fit.
    /// Forms with files (`multipart/form-data`) are read with [`Request::multipart`].
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let content_type = self.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case(FORM_URLENCODED) {
            return Err(Error::new(
                415,
                format!("expected a `{FORM_URLENCODED}` body, not `{content_type}`"),
            ));
        }
        urlencoded(self.body()).map_err(|e| Error::bad_request(format!("form field {e}")))
    }
}

impl Request {
    /// The subprotocols a WebSocket client offered (`Sec-WebSocket-Protocol`), in its order.
    /// An `upgrade` hook selects one of these or none: selecting one the client did not offer
    /// fails the handshake, and a browser's `new WebSocket(url)` offers none.
    ///
    /// ```
    /// use nitro::Request;
    /// use nitro::ws::Upgrade;
    ///
    /// pub fn upgrade(req: &Request) -> Upgrade {
    ///     let upgrade = Upgrade::accept();
    ///     if req.websocket_protocols().any(|p| p == "chat.v1") {
    ///         upgrade.protocol("chat.v1")
    ///     } else {
    ///         upgrade
    ///     }
    /// }
    /// let req = Request::builder("GET", "/_ws")
    ///     .header("sec-websocket-protocol", "chat.v2, chat.v1")
    ///     .build();
    /// assert_eq!(req.websocket_protocols().collect::<Vec<_>>(), ["chat.v2", "chat.v1"]);
    /// # let _ = upgrade(&req);
    /// ```
    pub fn websocket_protocols(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }
}

/// Deserialises `key=value&…` into `T`; the error starts with the field in backticks.
pub(crate) fn urlencoded<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field fails at the top level; serde names it in the message.
        match (path.as_str(), inner.strip_prefix("missing field ")) {
            (".", Some(field)) => format!("{field} is missing"),
            (".", None) => format!("string is invalid: {inner}"),
            (path, _) => format!("`{path}`: {inner}"),
        }
    })
}

/// `u64`, `Uuid`: the last segment of the type's path.
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Filter {
        verbose: Option<bool>,
        limit: u32,
    }

    fn query(q: &str) -> Result<Filter, Error> {
        Request::builder("GET", &format!("/?{q}"))
            .build()
            .query_as()
    }

    #[test]
    fn query_as_names_the_field() {
        assert_eq!(
            query("limit=3&verbose=true").unwrap(),
            Filter {
                verbose: Some(true),
                limit: 3
            }
        );
        let err = query("limit=3&verbose=maybe").unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.message(),
            "query parameter `verbose`: provided string was not `true` or `false`"
        );
        let err = query("verbose=true").unwrap_err();
        assert_eq!(err.message(), "query parameter `limit` is missing");
        let err = query("limit=-1").unwrap_err();
        assert!(
            err.message().starts_with("query parameter `limit`: "),
            "{err}"
        );
    }

    #[test]
    fn param_as_names_the_parameter() {
        let req = Request::builder("GET", "/orders/x")
            .param("id", "x")
            .build();
        let err = req.param_as::<u64>("id").unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.message(),
            "route parameter `id` must be a valid u64 (`x`: invalid digit found in string)"
        );
        let req = Request::builder("GET", "/orders/7")
            .param("id", "7")
            .build();
        assert_eq!(req.param_as::<u64>("id").unwrap(), 7);
        assert_eq!(req.param_as::<String>("id").unwrap(), "7");
        assert_eq!(req.param_as::<u8>("nope").unwrap_err().status(), 500);
    }

    #[test]
    fn form_reads_urlencoded_bodies_only() {
        #[derive(Debug, Deserialize)]
        struct Login {
            user: String,
            remember: bool,
        }
        let post = |ct: &str, body: &str| {
            Request::builder("POST", "/login")
                .header("content-type", ct)
                .body(body)
                .build()
        };
        let ok = post(
            "application/x-www-form-urlencoded; charset=utf-8",
            "user=ada+l%C3%B6&remember=true",
        );
        let login: Login = ok.form().unwrap();
        assert_eq!((login.user.as_str(), login.remember), ("ada lö", true));
        let bad = post("application/x-www-form-urlencoded", "user=ada&remember=1");
        let err = bad.form::<Login>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.message().starts_with("form field `remember`: "),
            "{err}"
        );
        let json = post("application/json", "{}");
        assert_eq!(json.form::<Login>().unwrap_err().status(), 415);
    }
}
