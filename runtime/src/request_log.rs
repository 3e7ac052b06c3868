//! The request log's line: `GET /api/users/1 200 1.2 ms`.
//!
//! The server hands each request's record to the request log's writer when the request ends
//! (see [`crate::telemetry::span::RequestLog`]); the CLI's writer (`nitro start`) writes this
//! line from it. The time runs from the request head to the response head (a streamed file's
//! body may take longer); a WebSocket shows its `101`.

use std::time::Duration;

/// `GET /path 200 1.2 ms`. The path is shown with control characters escaped, so a request cannot forge log lines; a request without a status (its
/// connection closed first) shows `-`.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: Option<u16>,
    pub elapsed: Duration,
}

impl Line<'_> {
    /// Appends the line to `out`, without `core::fmt` (this runs for every request).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        if self
            .path
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'\'' && b != b'"')
        {
            // The common case: nothing to escape.
            out.extend_from_slice(self.path.as_bytes());
        } else {
            let mut buf = [0; 4];
            for c in self.path.chars().flat_map(char::escape_default) {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        out.push(b' ');
        match self.status {
            Some(status) => push_decimal(out, u64::from(status)),
            None => out.push(b'-'),
        }
        // Tenths of a millisecond, rounded, in integers (no `u128` division).
        let tenths = self.elapsed.as_secs().saturating_mul(10_000)
            + (u64::from(self.elapsed.subsec_nanos()) + 50_000) / 100_000;
        out.push(b' ');
        push_decimal(out, tenths / 10);
        out.push(b'.');
        push_decimal(out, tenths % 10);
        out.extend_from_slice(b" ms");
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as a `String`.
    fn line(method: &str, path: &str, status: Option<u16>, elapsed: Duration) -> String {
        let mut out = Vec::new();
        Line {
            method,
            path,
            status,
            elapsed,
        }
        .write(&mut out);
        String::from_utf8(out).unwrap()
    }

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
