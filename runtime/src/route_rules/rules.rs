//! A route rule as data: what one `[route_rules."/pattern"]` of `nitro.toml` resolves to, and
//! what `nitro.json` records. Patterns are in `pattern.rs`, matching and merging in
//! `matching.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The rules of one pattern. A key left out inherits from less specific patterns; `cors` and
/// `cache` set to `None` inside `Some` (`cors = false`) switch it off below a broader pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Response headers, by lower-case name; a header the response already has wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub cors: Option<Option<Cors>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub cache: Option<Option<CacheRule>>,
}

/// A key that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Answer every request with a redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Where to: a path or a URL. When both it and the pattern end in `/**`, the part of the
    /// path under the pattern is appended (`/old/** → /new/**`: `/old/a/b` → `/new/a/b`).
    pub to: String,
    /// 301, 302, 303, 307 (the default) or 308.
    pub status: u16,
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins (`scheme://host[:port]`), or `["*"]`: any.
    pub origins: Vec<String>,
    /// Methods a preflight allows.
    pub methods: Vec<String>,
    /// Request headers a preflight allows; empty: the ones the preflight asks for.
    pub headers: Vec<String>,
    /// Response headers the browser may show to the page.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true` (only with listed origins).
    #[serde(default)]
    pub credentials: bool,
    /// How long a browser may keep a preflight's answer, in seconds.
    pub max_age: u64,
}

impl Default for Cors {
    /// The policy of `cors = true`: any origin, the usual methods, whatever headers the
    /// preflight asks for, no credentials, preflights kept for 10 minutes.
    fn default() -> Cors {
        Cors {
            origins: vec!["*".to_owned()],
            methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
                .map(str::to_owned)
                .to_vec(),
            headers: Vec::new(),
            expose_headers: Vec::new(),
            credentials: false,
            max_age: 600,
        }
    }
}

/// Caching the answers of `GET` (and `HEAD`) in a storage mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    /// Seconds an answer is served from the cache without calling the route (more than 0).
    pub max_age: u64,
    /// Seconds after `max_age` during which the stale answer is still served while one call
    /// refreshes it; then the entry expires. 0: none.
    #[serde(default)]
    pub swr: u64,
    /// The storage mount that keeps the entries (default `memory`).
    pub storage: String,
    /// Request headers (lower case) whose values are part of the key.
    #[serde(default)]
    pub vary: Vec<String>,
}
