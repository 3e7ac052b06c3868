//! The request log's line: `GET /api/users/1 200 1.2 ms`.
//!
//! The server records each request as a span (see [`crate::telemetry::span`]); the CLI's
//! subscriber writes this line from that span when it closes (`nitro start`). The time runs
//! from the request head to the response head (a streamed file's body may take longer); a
//! WebSocket shows its `101`.

use std::io::Write;
use std::time::Duration;

/// `GET /path 200 1.2 ms`. The path is shown with control characters escaped, so a request
/// cannot forge log lines; a request without a status (its connection closed first) shows `-`.
pub fn line(method: &str, path: &str, status: Option<u16>, elapsed: Duration) -> String {
    let mut out = Vec::new();
    write_line(&mut out, method, path, status, elapsed);
    String::from_utf8(out).expect("the line is built from `str`s")
}

/// [`line`], appended to `out` (the request log's buffer) without a `String` of its own.
pub fn write_line(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    status: Option<u16>,
    elapsed: Duration,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    if path
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'\'' && b != b'"')
    {
        // The common case: nothing to escape.
        out.extend_from_slice(path.as_bytes());
    } else {
        let mut buf = [0; 4];
        for c in path.chars().flat_map(char::escape_default) {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    // Tenths of a millisecond, rounded, in integers (formatting an `f64` is slower).
    let tenths = (elapsed.as_nanos() + 50_000) / 100_000;
    let (ms, tenth) = (tenths / 10, tenths % 10);
    let _ = match status {
        Some(status) => write!(out, " {status} {ms}.{tenth} ms"),
        None => write!(out, " - {ms}.{tenth} ms"),
    };
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
        assert_eq!(
            line("GET", "/", Some(200), Duration::from_micros(12_960)),
            "GET / 200 13.0 ms"
        );
        assert_eq!(
            line("GET", "/", Some(200), Duration::from_secs(3)),
            "GET / 200 3000.0 ms"
        );
        // Everything `escape_default` would change takes the escaping path.
        for path in ["/a\\b", "/it's", "/\"q\"", "/caf\u{e9}", "/\u{7f}", "/\t"] {
            let escaped: String = path.chars().flat_map(char::escape_default).collect();
            assert_eq!(
                line("GET", path, Some(200), Duration::ZERO),
                format!("GET {escaped} 200 0.0 ms")
            );
        }
    }
}
