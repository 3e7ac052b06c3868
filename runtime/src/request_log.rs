//! The request log of `nitro start`: one line per request, `GET /api/users/1 200 1.2 ms`.
//!
//! Emitted as an info event with target `nitro::request` when
//! [`ServerConfig::request_log`](crate::ServerConfig::request_log) is on; the CLI's subscriber
//! decides whether it is shown (`-q` hides it). The time runs from the request head to the
//! response head (a streamed file's body may take longer); a WebSocket shows its `101`.

use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};

/// A request on its way through the server.
#[derive(Debug)]
pub(crate) struct Started {
    method: Method,
    path: String,
    at: Instant,
}

impl Started {
    pub(crate) fn new<B>(req: &Request<B>) -> Started {
        Started {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            at: Instant::now(),
        }
    }

    /// Logs the line for the response's status.
    pub(crate) fn finish(self, status: StatusCode) {
        let line = line(&self.method, &self.path, status, self.at.elapsed());
        tracing::info!(target: "nitro::request", "{line}");
    }
}

/// `GET /path 200 1.2 ms`. The path is shown without the query (which may hold secrets) and
/// with control characters escaped, so a request cannot forge log lines.
pub(crate) fn line(method: &Method, path: &str, status: StatusCode, elapsed: Duration) -> String {
    let path: String = path.chars().flat_map(char::escape_default).collect();
    let ms = elapsed.as_secs_f64() * 1000.0;
    format!("{method} {path} {} {ms:.1} ms", status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            line(
                &Method::GET,
                "/api/users/1",
                StatusCode::OK,
                Duration::from_micros(1234)
            ),
            "GET /api/users/1 200 1.2 ms"
        );
        assert_eq!(
            line(
                &Method::POST,
                "/a\nb",
                StatusCode::NOT_FOUND,
                Duration::ZERO
            ),
            "POST /a\\nb 404 0.0 ms"
        );
    }
}
