//! The `cache` route rule: answers kept in a storage mount, served after the middleware ran
//! (`dispatch` calls [`cached`] with the rest of the request as its continuation).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use super::cache::{self, Entry, Freshness};
use super::rules::CacheRule;
use crate::body::{Body, empty, full};
use crate::shared::Shared;
use crate::storage::Mount;

const CACHE_HEADER: &str = "x-nitro-cache";

fn mark(response: &mut Response<Body>, what: &'static str) {
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static(what));
}

/// The cache rule of a request, applied by `dispatch` once the middleware let it through.
#[derive(Debug, Clone)]
pub(crate) struct CacheStep(pub(super) CacheRule);

/// What answers a request the cache cannot: the rest of `dispatch`.
pub(crate) type Next = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// A whole dispatch of a request of its own (middleware included), for a background refresh.
pub(crate) type Redispatch = Box<dyn FnOnce(Request<Incoming>) -> Next + Send>;

/// Answers from the cache, or runs `next` (the route) and stores its answer; a stale entry is
/// refreshed in the background through `redispatch`.
pub(crate) async fn cached(
    shared: Arc<Shared>,
    step: &CacheStep,
    req: Request<Incoming>,
    next: impl FnOnce(Request<Incoming>) -> Next,
    redispatch: Redispatch,
) -> Response<Body> {
    let rule = &step.0;
    let head = req.method() == Method::HEAD;
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let identity = cache::identity(
        &path_and_query,
        shared.hub.route_rules().epoch(),
        rule,
        |name| req.headers().get(name).and_then(|v| v.to_str().ok()),
    );
    let key = cache::key(&identity);
    let mount = match shared.hub.storage().mount(&rule.storage) {
        Ok(mount) => mount,
        Err(error) => {
            crate::telemetry::span::enter_request_span();
            tracing::warn!(target: "nitro::cache", "not caching `{path_and_query}`: {error}");
            return next(req).await;
        }
    };
    let now = crate::storage::now_ms();
    match mount.get(&key).await {
        Ok(Some(bytes)) => match Entry::decode(&bytes) {
            Some(entry) if entry.identity == identity => match entry.freshness(rule, now) {
                Freshness::Fresh => return answer(entry, head, now, "HIT"),
                Freshness::Stale => {
                    // A GET refreshes the entry in the background (a HEAD has no body to
                    // store); its client gets the stale one now.
                    if !head && shared.hub.route_rules().claim(&key) {
                        let refresh = Refresh {
                            shared: shared.clone(),
                            mount,
                            rule: rule.clone(),
                            identity,
                            key,
                        };
                        tokio::spawn(refresh.run(req, redispatch));
                    }
                    return answer(entry, head, now, "STALE");
                }
                Freshness::Expired => {}
            },
            _ => {}
        },
        Ok(None) => {}
        Err(error) => {
            crate::telemetry::span::enter_request_span();
            tracing::warn!(target: "nitro::cache", "cannot read the cache of `{path_and_query}`: {error}");
        }
    }
    let response = next(req).await;
    let mut response = if head {
        response
    } else {
        store(&mount, rule, identity, &key, response).await
    };
    mark(&mut response, "MISS");
    response
}

/// A cached entry as the answer, with its `age`.
fn answer(entry: Entry, head: bool, now: u64, what: &'static str) -> Response<Body> {
    let age = entry.age(now);
    let mut response = Response::new(if head { empty() } else { full(entry.body) });
    *response.status_mut() = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &entry.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    insert(headers, header::AGE, &age.to_string());
    mark(&mut response, what);
    response
}

/// Stores `response` when it may be cached (and its length is known: a stream is never
/// collected), and gives it back.
async fn store(
    mount: &Mount,
    rule: &CacheRule,
    identity: String,
    key: &str,
    response: Response<Body>,
) -> Response<Body> {
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if !cache::cacheable(status, &headers) || response.body().size_hint().exact().is_none() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            crate::telemetry::span::enter_request_span();
            tracing::error!(target: "nitro::cache", "reading an answer to cache it failed: {error}");
            let mut failed = Response::new(full("the answer could not be read"));
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return failed;
        }
    };
    let entry = Entry {
        identity,
        stored_ms: crate::storage::now_ms(),
        status,
        headers,
        body: body.to_vec(),
    };
    // Always bounded: the entry is gone after `max_age + swr`.
    let ttl = Duration::from_secs(rule.max_age.saturating_add(rule.swr));
    if let Err(error) = mount.set(key, &entry.encode(), Some(ttl)).await {
        crate::telemetry::span::enter_request_span();
        tracing::warn!(target: "nitro::cache", "not cached: {error}");
    }
    Response::from_parts(parts, full(body))
}

/// A background refresh of one stale entry.
struct Refresh {
    shared: Arc<Shared>,
    mount: Arc<Mount>,
    rule: CacheRule,
    identity: String,
    key: String,
}

impl Refresh {
    async fn run(self, req: Request<Incoming>, redispatch: Redispatch) {
        // Released however this ends (a panic in the route included).
        let _claim = Claim(&self);
        // A request of its own: the middleware run again, and no cache step (`dispatch` took
        // it out of this request's extensions).
        let response = redispatch(req).await;
        // A failed refresh stores nothing: the stale entry is served until it expires.
        let identity = self.identity.clone();
        drop(store(&self.mount, &self.rule, identity, &self.key, response).await);
    }
}

struct Claim<'a>(&'a Refresh);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.shared.hub.route_rules().release(&self.0.key);
    }
}

/// Sets `name` to `value` (a value that is not a valid header value is left out).
pub(super) fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
