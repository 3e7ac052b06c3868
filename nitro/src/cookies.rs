//! Cookies: read the request's, set them on the response, and sign or encrypt them with the
//! app's secret. Built on the [`cookie`](https://docs.rs/cookie) crate, whose types are
//! re-exported here.
//!
//! ```
//! // routes/visit.rs
//! use nitro::cookies::{Cookie, Duration, SameSite};
//! use nitro::{Request, Response};
//!
//! pub fn handler(req: &Request) -> Response {
//!     let visits: u32 = req.cookie("visits").and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
//!     let cookie = Cookie::build(("visits", visits.to_string()))
//!         .path("/")
//!         .http_only(true)
//!         .same_site(SameSite::Lax)
//!         .max_age(Duration::days(30));
//!     Response::text(format!("visit {visits}")).with_cookie(cookie)
//! }
//! # let req = nitro::Request::builder("GET", "/visit").header("cookie", "theme=dark; visits=2").build();
//! # let res = handler(&req);
//! # assert_eq!(res.body(), b"visit 3");
//! # assert_eq!(res.header("set-cookie"), Some("visits=3; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000"));
//! ```
//!
//! # Signed and private cookies
//!
//! A **signed** cookie can be read by the client but not changed: [`Request::signed_cookie`]
//! gives `None` for a value whose signature does not check. A **private** cookie is encrypted
//! as well, so the client can neither read nor change it (a session id, a user id). Both use
//! a key derived from the app's secret: the environment variable `NITRO_COOKIE_SECRET`, or
//! `cookie_secret` in `[runtime_config]` (which `NITRO_COOKIE_SECRET` then overrides), at least
//! 32 bytes of random text (`openssl rand -base64 48`). Keep it out of `nitro.toml` in a
//! repository: set it in the environment of `nitro dev` and `nitro start`. Changing it makes
//! every signed and private cookie already issued invalid (read as absent).
//!
//! ```
//! use nitro::cookies::Cookie;
//! use nitro::{Request, Response, Result};
//!
//! // routes/login.post.rs
//! pub fn handler(_req: &Request) -> Result<Response> {
//!     let session = Cookie::build(("user", "42")).path("/").http_only(true).secure(true);
//!     Response::text("welcome").with_private_cookie(session)
//! }
//!
//! // routes/me.rs
//! pub fn me(req: &Request) -> Result<String> {
//!     match req.private_cookie("user")? {
//!         Some(user) => Ok(format!("user {user}")),
//!         None => Err(nitro::Error::new(401, "log in first")),
//!     }
//! }
//! ```

use cookie::{CookieJar, Key};

use crate::{Error, Request, Response};

pub use cookie::time::Duration;
pub use cookie::{Cookie, CookieBuilder, Expiration, SameSite};

/// The environment variable holding the app's cookie secret.
pub const SECRET_ENV: &str = "NITRO_COOKIE_SECRET";

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The key of signed and private cookies, from the app's secret.
fn key() -> Result<Key, Error> {
    let config = crate::config::config_value();
    let from_config = config
        .get("cookie_secret")
        .and_then(|value| value.as_str())
        .filter(|secret| !secret.is_empty())
        .map(str::to_owned);
    let secret = std::env::var(SECRET_ENV)
        .ok()
        .filter(|secret| !secret.is_empty())
        .or(from_config);
    key_from(secret.as_deref())
}

/// The key for `secret`, or the error that says what to set. Pure.
fn key_from(secret: Option<&str>) -> Result<Key, Error> {
    let Some(secret) = secret else {
        return Err(Error::internal(format!(
            "signed and private cookies need the app's secret: set the environment variable \
             `{SECRET_ENV}` (at least {MIN_SECRET_LEN} bytes of random text, e.g. from \
             `openssl rand -base64 48`) or `cookie_secret` in `[runtime_config]`"
        )));
    };
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::internal(format!(
            "the cookie secret (`{SECRET_ENV}` or `[runtime_config] cookie_secret`) has {} \
             bytes: it needs at least {MIN_SECRET_LEN}",
            secret.len()
        )));
    }
    Ok(Key::derive_from(secret.as_bytes()))
}

impl Request {
    /// The cookies the request carries (every `Cookie` header), percent-decoded; malformed
    /// pairs are skipped.
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        self.headers()
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, value)| Cookie::split_parse_encoded(value.clone()))
            .filter_map(Result::ok)
            .collect()
    }

    /// The value of cookie `name`, percent-decoded, if the request carries it (the first one
    /// when it is sent twice).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned())
    }

    /// The value of the signed cookie `name`: `Ok(None)` when it is absent or its signature
    /// does not check (changed by the client, or signed with another secret); `Err` (500)
    /// when the app has no secret (see the [module docs](crate::cookies)).
    pub fn signed_cookie(&self, name: &str) -> Result<Option<String>, Error> {
        let key = key()?;
        Ok(self
            .jar()
            .signed(&key)
            .get(name)
            .map(|c| c.value().to_owned()))
    }

    /// The value of the private (encrypted) cookie `name`: `Ok(None)` when it is absent or
    /// does not decrypt; `Err` (500) when the app has no secret.
    pub fn private_cookie(&self, name: &str) -> Result<Option<String>, Error> {
        let key = key()?;
        Ok(self
            .jar()
            .private(&key)
            .get(name)
            .map(|c| c.value().to_owned()))
    }

    fn jar(&self) -> CookieJar {
        let mut jar = CookieJar::new();
        // The first of two with one name wins, as in `cookie`.
        for cookie in self.cookies().into_iter().rev() {
            jar.add_original(cookie);
        }
        jar
    }
}

impl Response {
    /// Adds a `Set-Cookie` header for `cookie` (its value percent-encoded).
    pub fn with_cookie(self, cookie: impl Into<Cookie<'static>>) -> Response {
        let cookie = cookie.into();
        let header = cookie.encoded().to_string();
        self.with_header("set-cookie", &header)
    }

    /// Adds a `Set-Cookie` header for `cookie`, signed with the app's secret; `Err` (500) when
    /// the app has none.
    pub fn with_signed_cookie(self, cookie: impl Into<Cookie<'static>>) -> Result<Response, Error> {
        let key = key()?;
        let mut jar = CookieJar::new();
        jar.signed_mut(&key).add(cookie.into());
        Ok(self.with_jar(&jar))
    }

    /// Adds a `Set-Cookie` header for `cookie`, encrypted with the app's secret; `Err` (500)
    /// when the app has none.
    pub fn with_private_cookie(
        self,
        cookie: impl Into<Cookie<'static>>,
    ) -> Result<Response, Error> {
        let key = key()?;
        let mut jar = CookieJar::new();
        jar.private_mut(&key).add(cookie.into());
        Ok(self.with_jar(&jar))
    }

    /// Tells the client to delete cookie `name` (set with path `/`; a cookie set with another
    /// path or a domain needs [`Response::with_cookie`] of a removal cookie with the same ones:
    /// `Cookie::build(name).path(p).removal()`).
    pub fn with_removed_cookie(self, name: &str) -> Response {
        self.with_cookie(Cookie::build(name.to_owned()).path("/").removal())
    }

    fn with_jar(mut self, jar: &CookieJar) -> Response {
        for cookie in jar.delta() {
            self = self.with_cookie(cookie.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookie_headers: &[&str]) -> Request {
        let mut builder = Request::builder("GET", "/");
        for value in cookie_headers {
            builder = builder.header("cookie", value);
        }
        builder.build()
    }

    fn set_cookies(res: &Response) -> Vec<&str> {
        res.headers()
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .map(|(_, value)| value.as_str())
            .collect()
    }

    #[test]
    fn cookies_are_read_from_every_header_and_decoded() {
        let req = request(&["a=1; b=hello%20world", "c=3; a=shadowed; broken"]);
        assert_eq!(req.cookie("a").as_deref(), Some("1"));
        assert_eq!(req.cookie("b").as_deref(), Some("hello world"));
        assert_eq!(req.cookie("c").as_deref(), Some("3"));
        assert_eq!(req.cookie("nope"), None);
        let names: Vec<String> = req.cookies().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, ["a", "b", "c", "a"]);
        assert_eq!(request(&[]).cookie("a"), None);
    }

    #[test]
    fn set_cookie_headers_are_encoded_one_per_cookie() {
        let res = Response::text("ok")
            .with_cookie(Cookie::new("name", "a b;c"))
            .with_cookie(
                Cookie::build(("theme", "dark"))
                    .path("/")
                    .secure(true)
                    .http_only(true)
                    .same_site(SameSite::Strict),
            )
            .with_removed_cookie("old");
        let headers = set_cookies(&res);
        assert_eq!(headers[0], "name=a%20b%3Bc");
        assert_eq!(
            headers[1],
            "theme=dark; HttpOnly; SameSite=Strict; Secure; Path=/"
        );
        assert!(headers[2].starts_with("old=; Path=/; Max-Age=0; Expires="));
    }

    /// What a browser sends back for the `Set-Cookie` headers of `res`.
    fn echoed(res: &Response) -> Request {
        let pairs: Vec<String> = set_cookies(res)
            .iter()
            .map(|header| header.split(';').next().unwrap().to_owned())
            .collect();
        request(&[&pairs.join("; ")])
    }

    #[test]
    fn signed_and_private_cookies_round_trip_and_refuse_tampering() {
        let key = key_from(Some("0123456789abcdef0123456789abcdef-test")).unwrap();
        let other = key_from(Some("another secret, 32 bytes or more....")).unwrap();

        let mut jar = CookieJar::new();
        jar.signed_mut(&key).add(Cookie::new("user", "42"));
        jar.private_mut(&key).add(Cookie::new("session", "s3cr3t"));
        let res = Response::new().with_jar(&jar);
        let req = echoed(&res);
        let headers = set_cookies(&res).join("\n");
        assert!(
            headers.contains("42"),
            "a signed value is readable: {headers}"
        );
        assert!(
            !headers.contains("s3cr3t"),
            "a private one is not: {headers}"
        );

        let jar = req.jar();
        assert_eq!(jar.signed(&key).get("user").unwrap().value(), "42");
        assert_eq!(jar.private(&key).get("session").unwrap().value(), "s3cr3t");
        // Another secret, or a changed value: absent.
        assert!(jar.signed(&other).get("user").is_none());
        assert!(jar.private(&other).get("session").is_none());
        let signed = req.cookie("user").unwrap();
        let tampered = request(&[&format!("user={}", signed.replace("42", "43"))]);
        assert!(tampered.jar().signed(&key).get("user").is_none());
    }

    #[test]
    fn a_missing_or_short_secret_is_a_500_that_says_what_to_set() {
        let err = key_from(None).unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(
            err.message().contains("`NITRO_COOKIE_SECRET`"),
            "{}",
            err.message()
        );
        let err = key_from(Some("too short")).unwrap_err();
        assert!(
            err.message().contains("has 9 bytes: it needs at least 32"),
            "{}",
            err.message()
        );
    }
}
