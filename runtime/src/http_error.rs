//! Errors the server answers with, rendered as JSON or as a small HTML page.

use std::fmt::Write as _;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{Body, full};

/// An error response: a status and a message, rendered by [`HttpError::render`] as HTML when
/// the client accepts `text/html`, else as JSON
/// (`{"error":true,"status":404,"message":"…"}`, then `"data"` when there is some).
#[derive(Debug, Clone)]
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    /// Shown in every mode, unless the error is unhandled and the server is not in dev mode.
    pub(crate) message: String,
    /// Appended to the message in dev mode only (a compile error, a panic message).
    pub(crate) detail: Option<String>,
    /// JSON text (already validated).
    pub(crate) data: Option<String>,
    /// A bug rather than a decision of the route (a panic): production hides its message.
    pub(crate) unhandled: bool,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            detail: None,
            data: None,
            unhandled: false,
            headers: Vec::new(),
        }
    }

    /// An unhandled error (a route's panic): logged by the caller, message shown in dev only.
    pub(crate) fn unhandled(message: impl Into<String>) -> HttpError {
        HttpError {
            unhandled: true,
            ..HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> HttpError {
        self.detail = Some(detail.into());
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> HttpError {
        self.headers.push((name, value));
        self
    }

    /// `404 Cannot find any route matching [GET] /path`, Nitro's wording.
    pub(crate) fn not_found(method: &str, path: &str) -> HttpError {
        HttpError::new(
            StatusCode::NOT_FOUND,
            format!("Cannot find any route matching [{method}] {path}"),
        )
    }

    /// The message as shown in this mode.
    fn shown_message(&self, dev: bool) -> String {
        if !dev && self.unhandled {
            return reason(self.status).to_owned();
        }
        match (&self.detail, dev) {
            (Some(detail), true) => format!("{}\n\n{detail}", self.message),
            _ => self.message.clone(),
        }
    }

    pub(crate) fn render(&self, request_headers: &HeaderMap, dev: bool) -> Response<Body> {
        let message = self.shown_message(dev);
        let (content_type, body) = if accepts_html(request_headers) {
            ("text/html; charset=utf-8", self.html(&message))
        } else {
            ("application/json; charset=utf-8", self.json(&message))
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }

    fn json(&self, message: &str) -> String {
        let mut out = format!("{{\"error\":true,\"status\":{}", self.status.as_u16());
        if self.unhandled {
            out.push_str(",\"unhandled\":true");
        }
        out.push_str(",\"message\":");
        out.push_str(&serde_json::Value::from(message).to_string());
        if let Some(data) = &self.data {
            out.push_str(",\"data\":");
            out.push_str(data.trim());
        }
        out.push('}');
        out
    }

    fn html(&self, message: &str) -> String {
        let status = self.status.as_u16();
        let title = format!("{status} {}", reason(self.status));
        let mut page = String::with_capacity(1024 + message.len());
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
             <h1><span class=\"status\">{status}</span> {reason}</h1>\n<pre>{message}</pre>\n",
            title = escape(&title),
            reason = escape(reason(self.status)),
            message = escape(message),
        );
        if let Some(data) = &self.data {
            let _ = write!(page, "<h2>data</h2>\n<pre>{}</pre>\n", escape(data));
        }
        page.push_str("</main>\n</body>\n</html>\n");
        page
    }
}

const STYLE: &str = "body{margin:0;font-family:system-ui,sans-serif;background:#fafafa;color:#222}\
main{max-width:60rem;margin:4rem auto;padding:0 1.5rem}\
h1{font-size:1.6rem;font-weight:600}.status{color:#c0392b}\
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #ddd;\
border-radius:6px;padding:1rem;font-size:.9rem;line-height:1.4}\
@media (prefers-color-scheme:dark){body{background:#1b1b1b;color:#ddd}pre{background:#111;border-color:#333}}";

/// The status's reason phrase, or `Error` for codes without one.
fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// Whether the `Accept` header asks for HTML (browsers' navigations do).
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|value| String::from_utf8_lossy(value.as_bytes()).contains("text/html"))
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[tokio::test]
    async fn json_key_order_and_data() {
        let mut error = HttpError::new(StatusCode::IM_A_TEAPOT, "I am a \"teapot\"");
        error.data = Some("{\"b\":1,\"a\":2}".into());
        let response = error.render(&HeaderMap::new(), false);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        assert_eq!(
            body(response).await,
            r#"{"error":true,"status":418,"message":"I am a \"teapot\"","data":{"b":1,"a":2}}"#
        );
    }

    #[tokio::test]
    async fn unhandled_hides_the_message_in_prod() {
        let error = HttpError::unhandled("route `routes/x.rs` panicked").detail("boom");
        assert_eq!(
            body(error.render(&HeaderMap::new(), false)).await,
            r#"{"error":true,"status":500,"unhandled":true,"message":"Internal Server Error"}"#
        );
        assert_eq!(
            body(error.render(&HeaderMap::new(), true)).await,
            r#"{"error":true,"status":500,"unhandled":true,"message":"route `routes/x.rs` panicked\n\nboom"}"#
        );
    }

    #[tokio::test]
    async fn html_is_escaped_and_self_contained() {
        let error = HttpError::not_found("GET", "/<script>");
        let response = error.render(&accept("text/html,application/xhtml+xml"), true);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let page = body(response).await;
        assert!(page.contains("<title>404 Not Found</title>"));
        assert!(page.contains("[GET] /&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("http"), "no external resources");
    }
}
