//! The HTTP client the OTLP exporter posts through: hyper (already the server's HTTP stack) on a
//! one-thread tokio runtime of its own, so that a slow or unreachable collector never holds a
//! thread that serves requests.
//!
//! The SDK's batch processor calls [`Client::send_bytes`] from its own thread; the request runs
//! on the client's runtime, over one kept-alive HTTP/1.1 connection (made again when it breaks),
//! within the export timeout. The metrics' export calls it from the client's runtime itself.
//! Failures are said once, not per batch: the first failure is a warning, and the next success
//! after failures says the collector answers again (each signal has a client of its own, so
//! each says so once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError};
use tokio::sync::Mutex;

use super::config::Signal;

/// Posts OTLP requests; see the module docs.
#[derive(Debug)]
pub(crate) struct Client {
    runtime: tokio::runtime::Handle,
    connection: std::sync::Arc<Mutex<Option<SendRequest<Full<Bytes>>>>>,
    timeout: Duration,
    /// The signal's URL, for messages.
    url: String,
    signal: Signal,
    failing: AtomicBool,
}

impl Client {
    /// A client sending `signal` to `url`, running its requests on `runtime`.
    pub(crate) fn new(
        runtime: tokio::runtime::Handle,
        signal: Signal,
        url: String,
        timeout: Duration,
    ) -> Client {
        Client {
            runtime,
            connection: Default::default(),
            timeout,
            url,
            signal,
            failing: AtomicBool::new(false),
        }
    }

    /// Says a failure once, and the recovery after one.
    fn report(&self, result: &Result<Response<Bytes>, HttpError>) {
        let problem = match result {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!(
                "the collector answered {}{}",
                response.status(),
                excerpt(response.body())
            )),
            Err(error) => Some(error.to_string()),
        };
        match problem {
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "nitro::otel", "{} reach `{}` again", self.signal.name(), self.url);
                }
            }
            Some(problem) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    let lost = match self.signal {
                        Signal::Traces => "spans are dropped until it answers",
                        Signal::Metrics => "the next export that reaches it carries the totals",
                    };
                    tracing::warn!(
                        target: "nitro::otel",
                        "cannot send {} to `{}`: {problem}; {lost} (said once; serving goes on)",
                        self.signal.name(),
                        self.url
                    );
                }
            }
        }
    }
}

/// The start of a response body, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if text.is_empty() || !text.is_ascii() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let connection = self.connection.clone();
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, send(&connection, request)).await {
                Ok(result) => result,
                Err(_) => {
                    // A request cut off mid-way leaves its connection unusable.
                    *connection.lock().await = None;
                    Err(format!("no answer within {} ms", timeout.as_millis()).into())
                }
            }
        });
        let result = match task.await {
            Ok(result) => result,
            Err(error) => Err(error.into()),
        };
        self.report(&result);
        result
    }
}

/// Sends `request` over the kept connection, or a new one.
async fn send(
    connection: &Mutex<Option<SendRequest<Full<Bytes>>>>,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let (mut parts, body) = request.into_parts();
    let authority = parts
        .uri
        .authority()
        .ok_or("the endpoint has no host")?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    // HTTP/1.1 origin form: the path on the request line, the host in `Host`.
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    parts
        .headers
        .insert(http::header::HOST, authority.as_str().parse()?);
    let request = Request::from_parts(parts, Full::new(body));

    let mut kept = connection.lock().await;
    let reusable = match kept.as_mut() {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    if !reusable {
        let stream = tokio::net::TcpStream::connect((authority.host(), port)).await?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *kept = Some(sender);
    }
    let sender = kept.as_mut().ok_or("no connection")?;
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => {
            *kept = None;
            return Err(error.into());
        }
    };
    drop(kept);
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}
