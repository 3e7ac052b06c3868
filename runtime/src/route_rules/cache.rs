//! The route cache's keys, entries and decisions. Pure; `apply.rs` reads and writes the
//! entries in a storage mount.
//!
//! An entry is kept for `max_age + swr` seconds (the mount's TTL), so the cache never grows
//! without bound: within `max_age` it is served as is, after that (within `swr`) served while
//! one request refreshes it, then it is gone.

use std::hash::{Hash, Hasher};

use super::rules::CacheRule;

/// The storage key of a request: the path, the query and the values of the `vary` headers,
/// hashed (128 bits) under `route-cache:`. The entry keeps the text it was made from
/// ([`Entry::identity`]), so a hash collision reads as a miss, never a wrong answer.
pub(crate) fn key(identity: &str) -> String {
    let hash = |salt: u64| {
        let mut hasher = std::hash::DefaultHasher::new();
        salt.hash(&mut hasher);
        identity.hash(&mut hasher);
        hasher.finish()
    };
    format!("route-cache:{:016x}{:016x}", hash(1), hash(2))
}

/// What a request is cached by: the epoch, `path?query`, then `name: value` of each `vary`
/// header.
pub(crate) fn identity<'a>(
    path_and_query: &str,
    epoch: u64,
    rule: &CacheRule,
    header: impl Fn(&str) -> Option<&'a str>,
) -> String {
    let mut out = format!("{epoch} {path_and_query}");
    for name in &rule.vary {
        out.push('\n');
        out.push_str(name);
        out.push_str(": ");
        out.push_str(header(name).unwrap_or(""));
    }
    out
}

/// Whether an answer may be cached: a 2xx without `set-cookie` (a cookie is one user's) and
/// without `cache-control: no-store` or `private`.
pub(crate) fn cacheable(status: u16, headers: &[(String, String)]) -> bool {
    (200..300).contains(&status)
        && !headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("set-cookie")
                || (name.eq_ignore_ascii_case("cache-control") && {
                    let value = value.to_ascii_lowercase();
                    value.contains("no-store") || value.contains("private")
                })
        })
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) identity: String,
    /// When it was stored, ms since the Unix epoch.
    pub(crate) stored_ms: u64,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Head {
    identity: String,
    stored_ms: u64,
    status: u16,
    headers: Vec<(String, String)>,
}

impl Entry {
    /// The head as JSON, its length first (4 bytes, big-endian), then the body.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let head = serde_json::to_vec(&Head {
            identity: self.identity.clone(),
            stored_ms: self.stored_ms,
            status: self.status,
            headers: self.headers.clone(),
        })
        .expect("a head always serialises");
        let mut out = Vec::with_capacity(4 + head.len() + self.body.len());
        out.extend_from_slice(&(head.len() as u32).to_be_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.body);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Entry> {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let head: Head = serde_json::from_slice(bytes.get(4..4 + len)?).ok()?;
        Some(Entry {
            identity: head.identity,
            stored_ms: head.stored_ms,
            status: head.status,
            headers: head.headers,
            body: bytes[4 + len..].to_vec(),
        })
    }

    /// Its age in whole seconds at `now_ms`.
    pub(crate) fn age(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1000
    }

    /// Where it stands at `now_ms`.
    pub(crate) fn freshness(&self, rule: &CacheRule, now_ms: u64) -> Freshness {
        let age_ms = now_ms.saturating_sub(self.stored_ms);
        if age_ms < rule.max_age.saturating_mul(1000) {
            Freshness::Fresh
        } else if age_ms < rule.max_age.saturating_add(rule.swr).saturating_mul(1000) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }
}

/// Whether a cached answer may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and refresh it in the background.
    Stale,
    /// Call the route.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> CacheRule {
        CacheRule {
            max_age: 10,
            swr: 5,
            storage: "memory".into(),
            vary: vec!["accept-language".into()],
        }
    }

    #[test]
    fn keys_differ_by_path_query_and_varied_headers_only() {
        let r = rule();
        let fr = |_: &str| Some("fr");
        let en = |_: &str| Some("en");
        let a = identity("/a?x=1", 0, &r, fr);
        assert_eq!(a, "0 /a?x=1\naccept-language: fr");
        assert_eq!(key(&a), key(&identity("/a?x=1", 0, &r, fr)));
        assert_ne!(key(&a), key(&identity("/a?x=2", 0, &r, fr)));
        assert_ne!(key(&a), key(&identity("/a?x=1", 0, &r, en)));
        assert_ne!(key(&a), key(&identity("/b?x=1", 0, &r, fr)));
        assert_ne!(key(&a), key(&identity("/a?x=1", 1, &r, fr)));
        assert!(crate::storage::normalize_key(&key(&a)).is_ok());
    }

    #[test]
    fn only_plain_successes_are_cached() {
        let h = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        assert!(cacheable(200, &h("content-type", "text/plain")));
        assert!(cacheable(204, &[]));
        assert!(!cacheable(404, &[]));
        assert!(!cacheable(500, &[]));
        assert!(!cacheable(301, &[]));
        assert!(!cacheable(200, &h("Set-Cookie", "id=1")));
        assert!(!cacheable(200, &h("cache-control", "no-store")));
        assert!(!cacheable(200, &h("cache-control", "Private, max-age=5")));
        assert!(cacheable(200, &h("cache-control", "public, max-age=5")));
    }

    #[test]
    fn entries_round_trip_and_age() {
        let entry = Entry {
            identity: "/a".into(),
            stored_ms: 1_000_000,
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"hello".to_vec(),
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry.clone()));
        assert_eq!(Entry::decode(b"junk"), None);
        let r = rule();
        assert_eq!(entry.freshness(&r, 1_000_000 + 9_999), Freshness::Fresh);
        assert_eq!(entry.freshness(&r, 1_000_000 + 10_000), Freshness::Stale);
        assert_eq!(entry.freshness(&r, 1_000_000 + 14_999), Freshness::Stale);
        assert_eq!(entry.freshness(&r, 1_000_000 + 15_000), Freshness::Expired);
        assert_eq!(entry.age(1_000_000 + 14_999), 14);
    }
}
