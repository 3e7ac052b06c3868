//! `Host` and `Origin` checks: DNS rebinding and cross-site WebSocket hijacking.
//!
//! **Host.** A page on `http://attacker.example` whose name the attacker re-points at
//! `127.0.0.1` (DNS rebinding) reaches a server bound to loopback with
//! `Host: attacker.example:3000`; the browser treats it as same-origin and lets the page read
//! every answer (Vite CVE-2025-24010). With [`ServerConfig::allowed_hosts`] set (`nitro dev`
//! sets it), every request, WebSocket upgrades included, must name an allowed host, else
//! `403`: `localhost` and `*.localhost`, IP literals (a rebinding attack cannot produce an IP
//! literal `Host`), and the configured names (`.example.com` also allows its subdomains, `*`
//! allows everything). The authority of an absolute-form request target
//! (`GET http://evil.example/x`) is checked first, as RFC 9112 §3.2.2 makes it the one that
//! counts; without a host check such a target must agree with `Host`.
//!
//! **Origin.** A browser sends `Origin` on every WebSocket upgrade, and WebSockets are not
//! bound by the same-origin policy: any page can open `ws://127.0.0.1:3000/_ws`. With
//! [`ServerConfig::allowed_origins`] set, an upgrade whose `Origin` is not in the list
//! (scheme, host and port compared exactly, no prefix or suffix matching) gets `403` before
//! any `101`. Without it, and with the host check on (dev), an `Origin` must at least name a
//! local host: `localhost`, `*.localhost`, a loopback address, the bound address, or a
//! configured host; other IP literals are not trusted (webpack-dev-server CVE-2025-30360). An
//! upgrade without `Origin` comes from a non-browser client and is allowed.
//!
//! [`ServerConfig::allowed_hosts`]: crate::ServerConfig::allowed_hosts
//! [`ServerConfig::allowed_origins`]: crate::ServerConfig::allowed_origins

use std::net::IpAddr;

use http::header::{self, HeaderMap};
use http::{Request, StatusCode, Uri, Version};

use crate::config::ServerConfig;
use crate::http_error::HttpError;

/// Checks the request's authority against the allowed hosts. `Err` is the `403` (or `400`).
pub(crate) fn check_host<B>(config: &ServerConfig, req: &Request<B>) -> Result<(), HttpError> {
    // RFC 9112 §3.2: a request with more than one `Host`, or an HTTP/1.1 request without
    // one, gets `400`.
    let mut hosts = req.headers().get_all(header::HOST).iter();
    if hosts.next().is_some() && hosts.next().is_some() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "the request has more than one `Host` header",
        ));
    }
    if req.version() >= Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "the request has no `Host` header (HTTP/1.1 requires one)",
        ));
    }
    let header_host = match req.headers().get(header::HOST).map(|v| v.to_str()) {
        None => None,
        Some(Ok(host)) => Some(host),
        Some(Err(_)) => {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "the `Host` header is not valid text",
            ));
        }
    };
    let target = req.uri().authority().map(|authority| authority.as_str());
    let Some(allowed) = &config.allowed_hosts else {
        // No allow-list (behind a proxy, `nitro start`): only refuse a target that
        // contradicts `Host`.
        if let (Some(target), Some(host)) = (target, header_host)
            && !target.eq_ignore_ascii_case(host)
        {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the request target's host `{}` is not its `Host` header `{}`",
                    target.escape_debug(),
                    host.escape_debug()
                ),
            ));
        }
        return Ok(());
    };
    let Some(authority) = target.or(header_host) else {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "the request has no `Host` header",
        ));
    };
    if host_allowed(hostname(authority), allowed) {
        Ok(())
    } else {
        crate::telemetry::span::enter_request_span();
        tracing::warn!(target: "nitro::server", "refusing a request for host `{authority}`: not an allowed host (DNS rebinding?)");
        Err(forbidden_host(authority))
    }
}

fn forbidden_host(authority: &str) -> HttpError {
    HttpError::new(
        StatusCode::FORBIDDEN,
        format!(
            "host `{}` is not allowed: add it to `[dev] allowed_hosts` in nitro.toml",
            authority.escape_debug()
        ),
    )
}

/// Checks a WebSocket upgrade's `Origin`. `Err` is the `403`.
pub(crate) fn check_origin(config: &ServerConfig, headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser
    };
    let origin = origin.to_str().unwrap_or("").trim();
    let allowed = match &config.allowed_origins {
        Some(list) => list
            .iter()
            .any(|allowed| allowed == "*" || normalize_origin(allowed) == normalize_origin(origin)),
        None => match &config.allowed_hosts {
            None => true,
            Some(hosts) => origin_is_local(origin, config, hosts),
        },
    };
    if allowed {
        return Ok(());
    }
    crate::telemetry::span::enter_request_span();
    tracing::warn!(target: "nitro::ws", "refusing a WebSocket upgrade from origin `{}`", origin.escape_debug());
    Err(HttpError::new(
        StatusCode::FORBIDDEN,
        format!(
            "origin `{}` may not open this WebSocket: add it to `[websocket] allowed_origins` in nitro.toml",
            origin.escape_debug()
        ),
    ))
}

/// `scheme://host[:port]` in lower case, without a trailing `/` and without the scheme's
/// default port.
fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme)
            && let Some(without) = origin.strip_suffix(port)
        {
            return without.to_owned();
        }
    }
    origin
}

fn origin_is_local(origin: &str, config: &ServerConfig, allowed: &[String]) -> bool {
    let Ok(uri) = origin.parse::<Uri>() else {
        return false; // `null` (sandboxed pages, files) and anything malformed
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return false;
    }
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == config.addr.ip(),
        Err(_) => name_allowed(host, allowed),
    }
}

/// The host part of an authority (`host:port`, `[::1]:port`), brackets kept for IPv6.
fn hostname(authority: &str) -> &str {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Any IP literal (what `--host 0.0.0.0` users type from another machine), or an allowed name.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok() || name_allowed(host, allowed)
}

/// `localhost`, `*.localhost`, or a configured name (`.example.com` covers its subdomains).
fn name_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    allowed.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if entry == "*" {
            return true;
        }
        match entry.strip_prefix('.') {
            Some(domain) => host == domain || host.ends_with(&entry),
            None => host == entry,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: Option<&[&str]>, origins: Option<&[&str]>) -> ServerConfig {
        let mut config = ServerConfig::new("127.0.0.1:3000".parse().unwrap());
        config.allowed_hosts = hosts.map(|h| h.iter().map(|s| s.to_string()).collect());
        config.allowed_origins = origins.map(|o| o.iter().map(|s| s.to_string()).collect());
        config
    }

    fn req(target: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::get(target);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn hosts() {
        let dev = config(Some(&["my.test", ".corp.example"]), None);
        for host in [
            "localhost:3000",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.168.1.9:3000",
            "my.test:3000",
            "corp.example",
            "a.corp.example:3000",
            "localhost.:3000",
        ] {
            assert!(check_host(&dev, &req("/", Some(host))).is_ok(), "{host}");
        }
        for host in [
            "attacker.example:3000",
            "localhost.attacker.example",
            "my.test.attacker.example",
            "xcorp.example",
            "127.0.0.1.nip.io",
        ] {
            let error = check_host(&dev, &req("/", Some(host))).unwrap_err();
            assert_eq!(error.status, StatusCode::FORBIDDEN, "{host}");
        }
        assert_eq!(
            check_host(&dev, &req("/", None)).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        // Absolute form: the target's authority counts.
        let absolute = req("http://evil.example/x", Some("127.0.0.1:3000"));
        assert_eq!(
            check_host(&dev, &absolute).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(
            check_host(
                &dev,
                &req("http://localhost:3000/x", Some("localhost:3000"))
            )
            .is_ok()
        );

        let open = config(None, None);
        assert!(check_host(&open, &req("/", Some("anything.example"))).is_ok());
        // RFC 9112 §3.2: HTTP/1.1 needs a `Host`, and only one; HTTP/1.0 may go without.
        assert_eq!(
            check_host(&open, &req("/", None)).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let mut http10 = req("/", None);
        *http10.version_mut() = Version::HTTP_10;
        assert!(check_host(&open, &http10).is_ok());
        let two = Request::get("/")
            .header("host", "localhost:3000")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        for config in [&open, &dev] {
            let error = check_host(config, &two).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
        // Without an allow-list (`nitro start`) the 403 does not point to `[dev]` settings.
        let error = check_host(&open, &absolute).unwrap_err();
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert!(!error.message.contains("[dev]"), "{}", error.message);
        let star = config(Some(&["*"]), None);
        assert!(check_host(&star, &req("/", Some("anything.example"))).is_ok());
    }

    fn origin(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, value.parse().unwrap());
        headers
    }

    #[test]
    fn origins() {
        let dev = config(Some(&["my.test"]), None);
        assert!(check_origin(&dev, &HeaderMap::new()).is_ok());
        for ok in [
            "http://localhost:3000",
            "http://localhost:5173",
            "https://app.localhost",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "http://my.test:8080",
        ] {
            assert!(check_origin(&dev, &origin(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://192.0.2.7:3000",
            "null",
            "file://",
            "http://localhost.evil.example",
        ] {
            assert_eq!(
                check_origin(&dev, &origin(bad)).unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{bad}"
            );
        }

        let listed = config(
            None,
            Some(&["https://app.example", "http://localhost:3000/"]),
        );
        assert!(check_origin(&listed, &origin("https://app.example")).is_ok());
        assert!(check_origin(&listed, &origin("https://APP.example:443")).is_ok());
        assert!(check_origin(&listed, &origin("http://localhost:3000")).is_ok());
        for bad in [
            "http://app.example",
            "https://app.example:8443",
            "https://app.example.evil",
            "http://localhost:3001",
        ] {
            assert!(check_origin(&listed, &origin(bad)).is_err(), "{bad}");
        }
        // Production without a list: no check.
        assert!(check_origin(&config(None, None), &origin("http://evil.example")).is_ok());
        assert!(check_origin(&config(None, Some(&["*"])), &origin("http://evil.example")).is_ok());
    }
}
