//! The server side of the WebSocket opening handshake (RFC 6455 §4.2).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::{Body, full};
use crate::http_error::HttpError;

/// A valid upgrade request.
#[derive(Debug)]
pub(crate) struct Offer {
    key: HeaderValue,
    /// The subprotocols the client offered, in its order.
    pub(crate) protocols: Vec<String>,
}

/// Why a request to a WebSocket route gets no `101`.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Not an upgrade at all: `426` with crossws's plain-text body.
    NotAnUpgrade,
    /// A broken upgrade: an error response.
    Invalid(HttpError),
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`). Such a request is only ever
/// answered by a WebSocket route.
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, &header::UPGRADE, "websocket")
}

/// Checks an upgrade request.
pub(crate) fn check(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<Offer, Refusal> {
    if !wants_websocket(headers) {
        return Err(Refusal::NotAnUpgrade);
    }
    let invalid = |status, message: &str| {
        Err(Refusal::Invalid(HttpError::new(
            status,
            format!("invalid WebSocket upgrade: {message}"),
        )))
    };
    if method != Method::GET {
        return invalid(
            StatusCode::BAD_REQUEST,
            &format!("the method must be `GET`, not `{method}`"),
        );
    }
    // RFC 6455 §4.1: the upgrade is an HTTP/1.1 (or later) request.
    if version < Version::HTTP_11 {
        return invalid(
            StatusCode::BAD_REQUEST,
            &format!("the HTTP version must be at least 1.1, not `{version:?}`"),
        );
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return invalid(StatusCode::BAD_REQUEST, "`Connection: upgrade` is missing");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version.as_bytes() != b"13")
    {
        return Err(Refusal::Invalid(
            HttpError::new(
                StatusCode::UPGRADE_REQUIRED,
                "invalid WebSocket upgrade: only `Sec-WebSocket-Version: 13` is supported",
            )
            .header(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            ),
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return invalid(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` is missing");
    };
    // A base64-encoded 16-byte nonce.
    if key.len() != 24 || !key.as_bytes().ends_with(b"==") {
        return invalid(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` is malformed");
    }
    let protocols = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Offer {
        key: key.clone(),
        protocols,
    })
}

/// `426 Upgrade Required`, `WebSocket upgrade is required.`: crossws's answer to a plain
/// request to a WebSocket route.
pub(crate) fn upgrade_required() -> Response<Body> {
    let mut response = Response::new(full("WebSocket upgrade is required."));
    *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The `101` for an accepted offer. `protocol` must be one the client offered (checked by the
/// caller). Headers the handshake owns are not taken from `extra`.
pub(crate) fn switching_protocols(
    offer: &Offer,
    protocol: Option<&str>,
    extra: Vec<(HeaderName, HeaderValue)>,
) -> Response<Body> {
    let mut response = Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    for (name, value) in extra {
        let owned = name == header::CONNECTION
            || name == header::UPGRADE
            || name == header::SEC_WEBSOCKET_ACCEPT
            || name == header::SEC_WEBSOCKET_EXTENSIONS
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || (name == header::SEC_WEBSOCKET_PROTOCOL && protocol.is_some());
        if owned {
            tracing::debug!(target: "nitro::ws", "ignoring `{name}` from the upgrade hook: the handshake sets it");
        } else {
            headers.append(name, value);
        }
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let accept = derive_accept_key(offer.key.as_bytes());
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    if let Some(protocol) = protocol.and_then(|protocol| HeaderValue::from_str(protocol).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// Whether a comma-separated header has `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn accepts_a_valid_offer() {
        let mut h = headers(&GOOD);
        h.append("sec-websocket-protocol", HeaderValue::from_static("a, b"));
        h.append("sec-websocket-protocol", HeaderValue::from_static("c"));
        let offer = check(&Method::GET, Version::HTTP_11, &h).unwrap();
        assert_eq!(offer.protocols, ["a", "b", "c"]);
        let response = switching_protocols(&offer, Some("b"), Vec::new());
        // The RFC 6455 example.
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "b");
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            check(&Method::GET, Version::HTTP_11, &HeaderMap::new()),
            Err(Refusal::NotAnUpgrade)
        ));
        let status = |method: Method, h: HeaderMap| match check(&method, Version::HTTP_11, &h) {
            Err(Refusal::Invalid(error)) => error.status,
            other => panic!("{other:?}"),
        };
        let mut wrong_version = headers(&GOOD);
        wrong_version.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert_eq!(
            status(Method::GET, wrong_version),
            StatusCode::UPGRADE_REQUIRED
        );
        let mut no_key = headers(&GOOD);
        no_key.remove("sec-websocket-key");
        assert_eq!(status(Method::GET, no_key), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(Method::POST, headers(&GOOD)),
            StatusCode::BAD_REQUEST
        );
        match check(&Method::GET, Version::HTTP_10, &headers(&GOOD)) {
            Err(Refusal::Invalid(error)) => assert_eq!(error.status, StatusCode::BAD_REQUEST),
            other => panic!("an HTTP/1.0 upgrade: {other:?}"),
        }
        let mut no_connection = headers(&GOOD);
        no_connection.remove("connection");
        assert_eq!(status(Method::GET, no_connection), StatusCode::BAD_REQUEST);
    }
}
