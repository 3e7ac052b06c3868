//! The request log's line: `GET /api/users/1 200 1.2 ms`.
//!
//! The server records each request as a span (see [`crate::telemetry::span`]); the CLI's
//! subscriber writes this line from that span when it closes (`nitro start`). The time runs
//! from the request head to the response head (a streamed file's body may take longer); a
//! WebSocket shows its `101`.

use std::time::Duration;

/// `GET /path 200 1.2 ms`. The path is shown with control characters escaped, so a request
/// cannot forge log lines; a request without a status (its connection closed first) shows `-`.
pub fn line(method: &str, path: &str, status: Option<u16>, elapsed: Duration) -> String {
    let path: String = path.chars().flat_map(char::escape_default).collect();
    let ms = elapsed.as_secs_f64() * 1000.0;
    match status {
        Some(status) => format!("{method} {path} {status} {ms:.1} ms"),
        None => format!("{method} {path} - {ms:.1} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            line(
                "GET",
                "/api/users/1",
                Some(200),
                Duration::from_micros(1234)
            ),
            "GET /api/users/1 200 1.2 ms"
        );
        assert_eq!(
            line("POST", "/a\nb", Some(404), Duration::ZERO),
            "POST /a\\nb 404 0.0 ms"
        );
        assert_eq!(line("GET", "/", None, Duration::ZERO), "GET / - 0.0 ms");
    }
}
