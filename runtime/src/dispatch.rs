//! What the server does with one request.
//!
//! In order, all against the [`App`] current when the request arrived:
//!
//! 1. A request target that is not a path (`*`, authority form) gets `400`; a host that is
//!    not allowed (see [`crate::guard`]) gets `403`.
//! 2. The app's middleware, in file-name order (see [`crate::middleware`]): one that answers
//!    ends the request here, upgrades included (no `101`); the context they set goes to the
//!    route below and, for an upgrade, into the peer's context.
//! 3. `GET`/`HEAD` without `Upgrade: websocket`: a file of `public/` if one exists for the path
//!    (see [`crate::static_files`]). A miss goes on to routing.
//! 4. The route table:
//!    - a WebSocket route: a valid upgrade runs the route's `upgrade` hook and, when it
//!      accepts, answers `101` and starts the peer; a request that is not an upgrade gets
//!      `426` `WebSocket upgrade is required.`; a broken upgrade `400` (or `426` with
//!      `Sec-WebSocket-Version: 13` for another version);
//!    - an HTTP route whose library defines WebSocket hooks is also a WebSocket route at its
//!      own path: an upgrade goes as above, a plain request to its handler (`426` without
//!      one);
//!    - any other request with `Upgrade: websocket` gets `404` `no WebSocket route at …`, so
//!      an upgrade is never accepted where no WebSocket route is;
//!    - an HTTP route: the body is collected (at most `[limits] max_body`, else `413`) and
//!      the route's handler runs: an `async fn` polled inline on this worker, a sync `fn` on
//!      the route pool (see [`crate::route_pool`]); `504` when it does not answer within
//!      `[limits] handler_timeout` (an `async fn`'s future is dropped then); a streamed
//!      answer is sent as hyper asks for it (see [`crate::stream`]);
//!    - routes for the path but not the method: `405` with `Allow`;
//!    - nothing: `GET`/`HEAD` of a page URL get the renderer's `index.html` when it is on,
//!      anything else `404` `Cannot find any route matching [GET] /path`. A page URL is one
//!      whose last segment has no file extension, or any URL requested with
//!      `Accept: text/html`: so `/missing.png` is a 404, not the page (Nitro answers every
//!      unmatched path with the page, which hides missing assets).
//!
//! Errors are rendered as HTML for `Accept: text/html`, else as JSON (see
//! [`crate::http_error`]). Route failures are logged with target `nitro::route`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use nitro_router::{Match, RouteKind};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::body::{Body, full};
use crate::guard;
use crate::http_error::HttpError;
use crate::limits::Limits;
use crate::middleware::{self, Verdict};
use crate::module::{
    CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse, StreamResponse,
    UpgradeDecision,
};
use crate::shared::Shared;
use crate::telemetry;
use crate::ws::handshake::{self, Refusal};
use crate::ws::{self, Peer, PeerTask, SendLimit};
use crate::{App, RouteEntry};

pub(crate) async fn handle(
    shared: Arc<Shared>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let app = shared.app();
    let dev = shared.config.dev;
    let path = req.uri().path().to_owned();
    if !path.starts_with('/') {
        return HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid request target `{}`", req.uri()),
        )
        .render(req.headers(), dev);
    }
    if let Err(error) = guard::check_host(&shared.config, &req) {
        return error.render(req.headers(), dev);
    }
    let wants_websocket = handshake::wants_websocket(req.headers());

    // Middleware run before everything below, upgrades included.
    let (context, mut req) = match run_middleware(&shared, &app, remote, req).await {
        Ok(done) => done,
        Err(response) => return response,
    };

    // A `cache` route rule answers after the middleware (an auth middleware guards cached
    // answers too) and before the route, which runs only on a miss.
    if let Some(step) = req
        .extensions_mut()
        .remove::<crate::route_rules::CacheStep>()
    {
        let next_shared = shared.clone();
        let next = move |req: Request<Incoming>| -> crate::route_rules::Next {
            Box::pin(serve(
                next_shared,
                app,
                remote,
                req,
                context,
                wants_websocket,
            ))
        };
        let again = shared.clone();
        let redispatch: crate::route_rules::Redispatch =
            Box::new(move |req| redispatch(again, remote, req));
        return crate::route_rules::cached(shared, &step, req, next, redispatch).await;
    }
    serve(shared, app, remote, req, context, wants_websocket).await
}

/// [`handle`] as a named `Send` future, for the cache's background refresh: `handle` awaits
/// the cache, which holds this, so naming the type breaks the cycle the compiler cannot
/// prove `Send` through.
fn redispatch(
    shared: Arc<Shared>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> crate::route_rules::Next {
    Box::pin(handle(shared, remote, req))
}

/// What follows the middleware: `public/` files, the route, the page, the errors.
async fn serve(
    shared: Arc<Shared>,
    app: Arc<App>,
    remote: SocketAddr,
    req: Request<Incoming>,
    context: Vec<(String, String)>,
    wants_websocket: bool,
) -> Response<Body> {
    let dev = shared.config.dev;
    let path = req.uri().path().to_owned();
    let get_or_head = matches!(*req.method(), Method::GET | Method::HEAD);
    if get_or_head
        && !wants_websocket
        && let Some(response) = shared
            .files
            .serve_public(req.method(), req.uri(), req.headers())
            .await
    {
        return response;
    }

    let found = app.table.find(req.method().as_str(), &path);
    let mut answered = None;
    if let Match::Found { route, .. } = &found {
        telemetry::span::record_route(&route.pattern, &route.file);
        answered = telemetry::metrics::route(&route.pattern, &route.file)
            .map(telemetry::metrics::Answered);
    }
    let with_route = |mut response: Response<Body>| {
        if let Some(answered) = answered {
            response.extensions_mut().insert(answered);
        }
        response
    };
    match found {
        Match::Found { route, params } if route.kind == RouteKind::WebSocket => {
            with_route(websocket(&shared, &app, &route.file, (params, context), remote, req).await)
        }
        // An HTTP route with WebSocket hooks takes the upgrades at its path.
        Match::Found { route, params }
            if wants_websocket && has_websocket_hooks(&app, &route.file) =>
        {
            with_route(websocket(&shared, &app, &route.file, (params, context), remote, req).await)
        }
        _ if wants_websocket => HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no WebSocket route at `{path}`"),
        )
        .render(req.headers(), dev),
        Match::Found { route, params } => {
            with_route(http_route(&shared, &app, &route.file, (params, context), remote, req).await)
        }
        Match::MethodNotAllowed { allow } => {
            let allow = allow
                .iter()
                .map(|method| method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut error = HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "method [{}] is not allowed at {path}: use one of {allow}",
                    req.method()
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allow) {
                error = error.header(header::ALLOW, value);
            }
            error.render(req.headers(), dev)
        }
        Match::NotFound => {
            if get_or_head
                && wants_page(req.headers())
                && let Some(response) = shared.files.serve_page(req.method()).await
            {
                return response;
            }
            HttpError::not_found(req.method().as_str(), &path).render(req.headers(), dev)
        }
    }
}

/// Whether an unmatched `GET`/`HEAD` should get the renderer's page: only a request whose
/// `Accept` names `text/html` (a browser's navigation always does). `curl`, `fetch` and API
/// clients get the `404` error, so a typo in an API path is not a `200` page.
fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// Whether the loaded code of `file` defines WebSocket hooks.
fn has_websocket_hooks(app: &App, file: &str) -> bool {
    matches!(app.routes.get(file), Some(RouteEntry::Loaded(module)) if module.has_websocket_hooks())
}

/// The loaded code of `file`, or the error to answer with.
fn module_for(app: &App, file: &str) -> Result<Arc<dyn RouteModule>, HttpError> {
    match app.routes.get(file) {
        Some(RouteEntry::Loaded(module)) => Ok(module.clone()),
        Some(RouteEntry::Failed { message }) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("route `{file}` failed to build"),
        )
        .detail(message.clone())),
        None => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("route `{file}` is not loaded"),
        )),
    }
}

/// A matched route's params and the context the middleware set.
type RouteInputs = (Vec<(String, String)>, Vec<(String, String)>);

/// Runs the app's middleware (see [`crate::middleware`]): the context they set and the
/// request, or the answer of the one that ended it.
async fn run_middleware(
    shared: &Shared,
    app: &App,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<(Vec<(String, String)>, Request<Incoming>), Response<Body>> {
    if app.table.middleware().is_empty() {
        return Ok((Vec::new(), req));
    }
    let dev = shared.config.dev;
    let (parts, body) = req.into_parts();
    let info = request_info(&parts, Vec::new(), remote, Bytes::new());
    let error = match middleware::run(shared, app, info).await {
        Verdict::Continue(context) => return Ok((context, Request::from_parts(parts, body))),
        Verdict::Answer {
            file,
            answer: Ok(HttpOutcome::Response(response)),
        } => match route_response(&file, response) {
            Ok(response) => return Err(response),
            Err(error) => error,
        },
        Verdict::Answer {
            file,
            answer: Ok(HttpOutcome::Stream(answer)),
        } => match stream_response(&file, answer, shared) {
            Ok(response) => return Err(response),
            Err(error) => error,
        },
        Verdict::Answer {
            file,
            answer:
                Ok(HttpOutcome::Error {
                    status,
                    message,
                    data,
                }),
        } => route_error(&file, status, message, data),
        Verdict::Answer {
            file,
            answer: Err(err),
        } => {
            crate::telemetry::span::enter_request_span();
            tracing::error!(target: "nitro::route", route = %file, "middleware `{file}` failed: {err}");
            let verb = match err {
                CallError::Panicked(_) => "panicked",
                _ => "failed",
            };
            HttpError::unhandled(format!("middleware `{file}` {verb}")).detail(err.to_string())
        }
        Verdict::Broken { file, message } => HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("middleware `{file}` failed to build"),
        )
        .detail(message),
        Verdict::Overrun(overrun) => overrun.http_error(),
    };
    Err(error.render(&parts.headers, dev))
}

async fn http_route(
    shared: &Shared,
    app: &App,
    file: &str,
    (params, context): RouteInputs,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let dev = shared.config.dev;
    let module = match module_for(app, file) {
        Ok(module) => module,
        Err(error) => return error.render(req.headers(), dev),
    };
    let (parts, body) = req.into_parts();
    let body = match collect_body(&shared.config.limits, &parts.headers, body).await {
        Ok(body) => body,
        Err(error) => return error.render(&parts.headers, dev),
    };
    let mut info = request_info(&parts, params, remote, body);
    info.context = context;
    let pool = &shared.route_pool;
    let websocket_endpoint = module.has_websocket_hooks();
    let outcome = match module.http_async(&info) {
        Some(call) => pool.run_async(file, call).await,
        None => pool.call(file, move || module.http(&info)).await,
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(overrun) => return overrun.http_error().render(&parts.headers, dev),
    };
    let result = match outcome {
        Ok(HttpOutcome::Response(response)) => route_response(file, response),
        Ok(HttpOutcome::Stream(answer)) => stream_response(file, answer, shared),
        Ok(HttpOutcome::Error {
            status,
            message,
            data,
        }) => Err(route_error(file, status, message, data)),
        // A WebSocket endpoint without a handler, like a `_ws.rs` file.
        Err(CallError::Missing) if websocket_endpoint => {
            return handshake::upgrade_required();
        }
        Err(CallError::Missing) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("route `{file}` has no HTTP handler"),
        )),
        Err(err) => Err(call_failed(file, "handler", &err)),
    };
    let mut response = result.unwrap_or_else(|error| error.render(&parts.headers, dev));
    if dev && let Some(failure) = app.stale.get(file) {
        crate::telemetry::span::enter_request_span();
        tracing::warn!(target: "nitro::dev", route = %file, "`{file}` answered from its last good build: its last edit failed to build ({failure})");
        if let Ok(value) = HeaderValue::from_str(file) {
            response.headers_mut().insert(STALE_HEADER, value);
        }
    }
    response
}

/// Names the route file on the responses of a route served from its last good build because
/// its last edit failed to build (dev only).
const STALE_HEADER: &str = "x-nitro-stale";

/// Logs a failed call into a route and makes the unhandled 500 for it.
fn call_failed(file: &str, what: &str, err: &CallError) -> HttpError {
    crate::telemetry::span::enter_request_span();
    tracing::error!(target: "nitro::route", route = %file, "the {what} of `{file}` failed: {err}");
    let verb = match err {
        CallError::Panicked(_) => "panicked",
        _ => "failed",
    };
    HttpError::unhandled(format!("the {what} of route `{file}` {verb}")).detail(err.to_string())
}

/// Collects the body, at most `max_body` bytes within `body_timeout`.
async fn collect_body(
    limits: &Limits,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, HttpError> {
    let (limit, timeout) = (limits.max_body, limits.body_timeout);
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {}", bytes_text(limit)),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(err)) => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {err}"),
        )),
        Err(_) => Err(HttpError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// `1 MiB`, `16 KiB`, `100 bytes`.
fn bytes_text(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

fn request_info(
    parts: &http::request::Parts,
    params: Vec<(String, String)>,
    remote: SocketAddr,
    body: Bytes,
) -> RequestInfo {
    RequestInfo {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        params,
        body,
        remote_addr: remote.to_string(),
        context: Vec::new(),
    }
}

/// Headers hyper manages from the body; a route's values could only break the framing.
fn is_framing_header(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
}

/// Validates a route's headers. `Err` names the offending header.
fn route_headers(
    file: &str,
    headers: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, HttpError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(invalid_answer(
                file,
                format!("an invalid header name `{}`", name.escape_debug()),
            ));
        };
        let Ok(header_value) = HeaderValue::from_bytes(&value) else {
            return Err(invalid_answer(
                file,
                format!(
                    "an invalid value for header `{header_name}`: `{}`",
                    String::from_utf8_lossy(&value).escape_debug()
                ),
            ));
        };
        if is_framing_header(&header_name) {
            tracing::debug!(target: "nitro::route", route = %file, "ignoring `{header_name}` from the route: the server sets it");
            continue;
        }
        out.push((header_name, header_value));
    }
    Ok(out)
}

/// A route answered something that cannot be sent: logged, 500 naming the route.
fn invalid_answer(file: &str, what: String) -> HttpError {
    let message = format!("route `{file}` answered with {what}");
    crate::telemetry::span::enter_request_span();
    tracing::error!(target: "nitro::route", route = %file, "{message}");
    HttpError::unhandled(message)
}

/// A status a route may answer with: a final status (not 1xx).
fn final_status(file: &str, status: u16) -> Result<StatusCode, HttpError> {
    StatusCode::from_u16(status)
        .ok()
        .filter(|status| (200..=599).contains(&status.as_u16()))
        .ok_or_else(|| invalid_answer(file, format!("an invalid status `{status}`")))
}

fn route_response(file: &str, answer: RouteResponse) -> Result<Response<Body>, HttpError> {
    let status = final_status(file, answer.status)?;
    let headers = route_headers(file, answer.headers)?;
    let mut response = Response::new(full(answer.body));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.append(name, value);
    }
    Ok(response)
}

/// A streamed answer (see [`crate::stream`]): `handler_timeout` bounds the wait for each
/// chunk of a plain stream; an event stream ends at shutdown.
fn stream_response(
    file: &str,
    answer: StreamResponse,
    shared: &Shared,
) -> Result<Response<Body>, HttpError> {
    let idle = shared.config.limits.handler_timeout;
    let status = final_status(file, answer.status)?;
    let headers = route_headers(file, answer.headers)?;
    let Some(streaming) = answer.body.take() else {
        return Err(invalid_answer(
            file,
            "a body stream that was sent already".to_owned(),
        ));
    };
    let body = crate::stream::body(file, streaming, idle, &shared.shutdown);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.append(name, value);
    }
    Ok(response)
}

fn route_error(file: &str, status: u16, message: String, data: Option<String>) -> HttpError {
    let status = match StatusCode::from_u16(status) {
        Ok(status) if (400..=599).contains(&status.as_u16()) => status,
        _ => {
            crate::telemetry::span::enter_request_span();
            tracing::warn!(target: "nitro::route", route = %file, "route `{file}` answered an error with status `{status}`, which is not an error status: sending 500");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut error = HttpError::new(status, message);
    error.data = data.filter(|data| {
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok();
        if !valid {
            crate::telemetry::span::enter_request_span();
            tracing::warn!(target: "nitro::route", route = %file, "route `{file}` answered an error whose data is not JSON: leaving it out");
        }
        valid
    });
    error
}

async fn websocket(
    shared: &Arc<Shared>,
    app: &App,
    file: &str,
    (params, context): RouteInputs,
    remote: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let dev = shared.config.dev;
    let offer = match handshake::check(req.method(), req.version(), req.headers()) {
        Ok(offer) => offer,
        Err(Refusal::NotAnUpgrade) => return handshake::upgrade_required(),
        Err(Refusal::Invalid(error)) => return error.render(req.headers(), dev),
    };
    if let Err(error) = guard::check_origin(&shared.config, req.headers()) {
        return error.render(req.headers(), dev);
    }
    let module = match module_for(app, file) {
        Ok(module) => module,
        Err(error) => return error.render(req.headers(), dev),
    };
    let (parts, body) = req.into_parts();
    let mut info = request_info(&parts, params, remote, Bytes::new());
    info.context = context;
    req = Request::from_parts(parts, body);

    // The request goes into the hook and comes back for the peer.
    let pool = &shared.route_pool;
    let decision = match module.ws_upgrade_async(&info) {
        Some(call) => pool
            .run_async(file, call)
            .await
            .map(|decision| Ok((decision, info))),
        None => {
            pool.call(file, move || Ok((module.ws_upgrade(&info), info)))
                .await
        }
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(overrun) => return overrun.http_error().render(req.headers(), dev),
    };
    let (decision, info) = match decision {
        Ok((Ok(decision), info)) => (decision, info),
        Ok((Err(CallError::Missing), info)) => (UpgradeDecision::accept(), info),
        Ok((Err(err), _)) | Err(err) => {
            return call_failed(file, "`upgrade` hook", &err).render(req.headers(), dev);
        }
    };

    match decision {
        UpgradeDecision::Reject {
            status,
            headers,
            body,
        } => {
            let answer = RouteResponse {
                status,
                headers,
                body,
            };
            route_response(file, answer).unwrap_or_else(|error| error.render(req.headers(), dev))
        }
        UpgradeDecision::Accept {
            headers,
            protocol,
            namespace,
            context: hook_context,
        } => {
            let headers = match route_headers(file, headers) {
                Ok(headers) => headers,
                Err(error) => return error.render(req.headers(), dev),
            };
            if let Some(protocol) = &protocol
                && !offer.protocols.contains(protocol)
            {
                let offered = if offer.protocols.is_empty() {
                    "none".to_owned()
                } else {
                    offer.protocols.join(", ")
                };
                return invalid_answer(
                    file,
                    format!("the subprotocol `{protocol}`, which the client did not offer (offered: {offered})"),
                )
                .render(req.headers(), dev);
            }
            // A client that offered subprotocols and gets none back fails the handshake
            // (browsers do); that is the route's choice, as in crossws.
            let response = handshake::switching_protocols(&offer, protocol.as_deref(), headers);

            // The middleware's entries, then the hook's (which win), then the route params
            // (unless the hook set `params`).
            let mut context = info.context.clone();
            for (key, value) in hook_context {
                context.retain(|(k, _)| *k != key);
                context.push((key, value));
            }
            if !context.iter().any(|(key, _)| key == "params") {
                context.push(("params".to_owned(), params_json(&info.params)));
            }
            let namespace = namespace.unwrap_or_else(|| info.path.clone());
            let (peer, outbound) = Peer::new(
                &shared.hub,
                remote.to_string(),
                namespace,
                info,
                context,
                SendLimit {
                    bytes: shared.config.limits.ws_send_queue,
                    timeout: shared.config.limits.ws_send_timeout,
                },
            );
            peer.set_protocol(protocol.as_deref());
            // In the hub before `open` runs, so `open` finds itself in `peers()` and the others
            // (crossws registers in the same tick as the `101`).
            shared.hub.register(&peer);
            let (opened, has_opened) = tokio::sync::oneshot::channel();
            let task = PeerTask {
                shared: shared.clone(),
                peer,
                outbound,
                route_file: file.to_owned(),
            };
            spawn_peer(shared, task, hyper::upgrade::on(&mut req), opened);
            // The `101` waits for `open` (see `spawn_peer`).
            let _ = has_opened.await;
            response
        }
    }
}

/// Runs a peer, registered in the hub already, in a task of its own: its `open` hook first,
/// then (`opened` tells the dispatcher to send the `101`) the connection, once hyper hands it
/// over. A client that has seen the `101` therefore finds the peer in `peers()`, in publishes
/// and subscribed to what `open` subscribed to; frames sent to it meanwhile wait in its queue.
/// `open` runs here rather than in the request's future because hyper drops that future when
/// the client goes away: the peer would stay in the hub, and `close` would never run.
fn spawn_peer(
    shared: &Shared,
    task: PeerTask,
    on_upgrade: OnUpgrade,
    opened: tokio::sync::oneshot::Sender<()>,
) {
    let span = telemetry::span::peer(task.peer.id(), task.peer.namespace(), &task.route_file);
    let run = async move {
        let task = ws::open(task).await;
        let _ = opened.send(());
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(target: "nitro::ws", "the upgrade did not complete: {err}");
                // `open` ran: `close` runs too, with 1006 (no close frame).
                ws::abandon(task).await;
                return;
            }
        };
        let limits = &task.shared().config.limits;
        let config = WebSocketConfig::default()
            .read_buffer_size(limits.ws_buffer)
            .write_buffer_size(limits.ws_buffer)
            .max_message_size(Some(limits.ws_max_message))
            .max_frame_size(Some(limits.ws_max_frame));
        // Large client frames reach tungstenite in fragments, so its read buffer stays small.
        let socket = ws::Reframe::new(TokioIo::new(upgraded), limits.ws_max_frame);
        let stream = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await;
        ws::run_peer(task, stream).await;
    };
    shared
        .tracker
        .spawn(tracing::Instrument::instrument(run, span));
}

/// Route params as a JSON object, in path order.
fn params_json(params: &[(String, String)]) -> String {
    let fields: Vec<String> = params
        .iter()
        .map(|(name, value)| {
            format!(
                "{}:{}",
                serde_json::Value::from(name.as_str()),
                serde_json::Value::from(value.as_str())
            )
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_accepting_html_get_the_renderer() {
        let none = HeaderMap::new();
        let mut html = HeaderMap::new();
        html.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,*/*;q=0.8"),
        );
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut curl = HeaderMap::new();
        curl.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_page(&none));
        assert!(!wants_page(&json));
        assert!(!wants_page(&curl));
        assert!(wants_page(&html));
    }
}
