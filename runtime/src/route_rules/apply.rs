//! Route rules around the dispatch of one request (the server calls [`handle`] instead of
//! `dispatch::handle`): in order,
//!
//! 1. WebSocket upgrades, and requests `dispatch` refuses before anything else (a target that
//!    is not a path, a `Host` that is not allowed), pass untouched;
//! 2. `redirect`: answered here, the route is not called;
//! 3. `cors`: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//!    answered here, `204`;
//! 4. `cache`, for `GET` and `HEAD`: handed to `dispatch` (a [`CacheStep`] in the request's
//!    extensions), which runs the middleware first and then [`cached`]: a fresh entry is the
//!    answer (`x-nitro-cache: HIT`), a stale one too (`STALE`) while a background request
//!    refreshes it; otherwise the route runs (`MISS`) and a cacheable answer to a `GET` is
//!    stored. A middleware that refuses the request thus refuses cached answers too;
//! 5. the answer gets the rule's `headers` it does not have, and the CORS headers when the
//!    request has an allowed `Origin`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use super::cache::{self, Entry, Freshness};
use super::matching::Resolved;
use super::rules::{CacheRule, Cors};
use crate::body::{Body, empty, full};
use crate::shared::Shared;
use crate::storage::Mount;

/// Dispatches `req` with the app's route rules applied.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let rules = shared.hub.route_rules().get();
    if rules.is_empty()
        || crate::ws::handshake::wants_websocket(req.headers())
        || !req.uri().path().starts_with('/')
        || crate::guard::check_host(&shared.config, &req).is_err()
    {
        return crate::dispatch::handle(shared, remote, req).await;
    }
    let resolved = rules.resolve(req.uri().path());
    if resolved.is_empty() {
        return crate::dispatch::handle(shared, remote, req).await;
    }
    if let Some((to, status)) = &resolved.redirect {
        return redirect(to, *status, req.uri().query());
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(cors) = &resolved.cors
        && req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && let Some(origin) = &origin
    {
        return preflight(cors, origin, req.headers());
    }
    let mut req = req;
    if let Some(rule) = &resolved.cache
        && matches!(*req.method(), Method::GET | Method::HEAD)
    {
        req.extensions_mut().insert(CacheStep(rule.clone()));
    }
    let mut response = crate::dispatch::handle(shared, remote, req).await;
    decorate(&mut response, &resolved, origin.as_deref());
    response
}

fn redirect(to: &str, status: u16, query: Option<&str>) -> Response<Body> {
    let location = match query {
        Some(query) if !to.contains('?') => format!("{to}?{query}"),
        _ => to.to_owned(),
    };
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn allowed_origin(cors: &Cors, origin: &str) -> Option<HeaderValue> {
    let any = cors.origins.iter().any(|o| o == "*");
    if any && !cors.credentials {
        Some(HeaderValue::from_static("*"))
    } else if any || cors.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        HeaderValue::from_str(origin).ok()
    } else {
        None
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The answer to a preflight: `204`, with the policy when the origin is allowed (without it,
/// the browser refuses the request).
fn preflight(cors: &Cors, origin: &str, request: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    let Some(allow) = allowed_origin(cors, origin) else {
        return response;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    insert(
        headers,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        &cors.methods.join(", "),
    );
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok());
    match (cors.headers.is_empty(), asked) {
        (false, _) => insert(
            headers,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &cors.headers.join(", "),
        ),
        (true, Some(asked)) => insert(headers, header::ACCESS_CONTROL_ALLOW_HEADERS, asked),
        (true, None) => {}
    }
    if cors.credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    insert(
        headers,
        header::ACCESS_CONTROL_MAX_AGE,
        &cors.max_age.to_string(),
    );
    response
}

/// The rule's headers the answer lacks, and the CORS headers of an allowed origin.
fn decorate(response: &mut Response<Body>, resolved: &Resolved, origin: Option<&str>) {
    let headers = response.headers_mut();
    for (name, value) in &resolved.headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes())
            && !headers.contains_key(&name)
        {
            insert(headers, name, value);
        }
    }
    if let Some(cors) = &resolved.cors {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin
            && let Some(allow) = allowed_origin(cors, origin)
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            if cors.credentials {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if !cors.expose_headers.is_empty() {
                insert(
                    headers,
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    &cors.expose_headers.join(", "),
                );
            }
        }
    }
}

const CACHE_HEADER: &str = "x-nitro-cache";

fn mark(response: &mut Response<Body>, what: &'static str) {
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static(what));
}

/// The cache rule of a request, applied by `dispatch` once the middleware let it through.
#[derive(Debug, Clone)]
pub(crate) struct CacheStep(CacheRule);

/// What answers a request the cache cannot: the rest of `dispatch`.
pub(crate) type Next = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// Answers from the cache, or runs `next` (the route) and stores its answer.
pub(crate) async fn cached(
    shared: Arc<Shared>,
    step: &CacheStep,
    remote: SocketAddr,
    req: Request<Incoming>,
    next: impl FnOnce(Request<Incoming>) -> Next,
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
                        tokio::spawn(refresh.run(remote, req));
                    }
                    return answer(entry, head, now, "STALE");
                }
                Freshness::Expired => {}
            },
            _ => {}
        },
        Ok(None) => {}
        Err(error) => {
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
    async fn run(self, remote: SocketAddr, req: Request<Incoming>) {
        // Released however this ends (a panic in the route included).
        let _claim = Claim(&self);
        // A request of its own: the middleware run again, and no cache step (`dispatch` took
        // it out of this request's extensions).
        let response = dispatch_again(self.shared.clone(), remote, req).await;
        // A failed refresh stores nothing: the stale entry is served until it expires.
        let identity = self.identity.clone();
        drop(store(&self.mount, &self.rule, identity, &self.key, response).await);
    }
}

/// `dispatch::handle` behind a named `Send` future: `dispatch` calls [`cached`], which spawns
/// this, so naming the type breaks the cycle the compiler cannot prove `Send` through.
fn dispatch_again(shared: Arc<Shared>, remote: SocketAddr, req: Request<Incoming>) -> Next {
    Box::pin(crate::dispatch::handle(shared, remote, req))
}

struct Claim<'a>(&'a Refresh);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.shared.hub.route_rules().release(&self.0.key);
    }
}
