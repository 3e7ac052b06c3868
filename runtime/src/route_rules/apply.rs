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

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::cached::insert;
use super::matching::Resolved;
use super::rules::Cors;
use crate::body::{Body, empty};
use crate::shared::Shared;

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
        req.extensions_mut().insert(super::CacheStep(rule.clone()));
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
