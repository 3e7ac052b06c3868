//! The metrics endpoint: `GET <path>` on the server's own port, or on a separate address of
//! its own (`[observability] metrics_bind`, a private port) where nothing else is served.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::body::{Body, full};
use crate::shared::Shared;
use crate::telemetry::metrics;

/// The content type of Prometheus's text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics as a response (`405` for a method other than `GET`/`HEAD`).
pub(crate) fn respond<B>(shared: &Shared, req: &Request<B>) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut res = Response::new(full("use GET\n"));
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let text = metrics::render(shared.hub.peer_count()).unwrap_or_default();
    let mut res = Response::new(full(text));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Serves the metrics at `path` on `listener` until the server shuts down; any other path is
/// `404`.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, path: String) {
    let path: Arc<str> = path.into();
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (shared, path) = (shared.clone(), path.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let res = if req.uri().path() == &*path {
                    respond(&shared, &req)
                } else {
                    let mut res = Response::new(full("not found\n"));
                    *res.status_mut() = StatusCode::NOT_FOUND;
                    res
                };
                async move { Ok::<_, Infallible>(res) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the separate metrics address.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
