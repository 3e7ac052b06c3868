//! `ServerConfig::precompressed` (what `nitro start` serves from a built output): the `.br` or
//! `.gz` sibling the client accepts, `Vary`, per-variant validators, and the dev resolver's
//! rules unchanged (issue #4).
//!
//! The variants hold marker bytes, not real compressed data: the server only chooses files.

#[allow(dead_code, unreachable_pub)]
#[path = "it/common.rs"]
mod common;

use common::*;
use nitro_runtime::App;

const JS: &str = "export const x = 1;\n";

async fn site(precompressed: bool) -> (tempfile::TempDir, TestServer) {
    let dir = temp_dir();
    let public = dir.path().join("public");
    write(public.join("app.js"), JS);
    write(public.join("app.js.br"), "BR");
    write(public.join("app.js.gz"), "GZ");
    write(public.join("only-gz.css"), "a{}");
    write(public.join("only-gz.css.gz"), "GZ-CSS");
    write(public.join("plain.txt"), "plain");
    write(public.join("sub/index.html"), "<p>sub</p>");
    write(public.join("sub/index.html.br"), "BR-HTML");
    write(dir.path().join("secret.txt"), "TOP SECRET");
    write(dir.path().join("secret.txt.br"), "TOP SECRET BR");
    let server = TestServer::with(App::default(), |config| {
        config.public_dir = Some(public);
        config.precompressed = precompressed;
        config.dev = false;
    })
    .await;
    (dir, server)
}

async fn fetch(server: &TestServer, method: &str, path: &str, extra: &[&str]) -> Reply {
    request(server.addr, method, path, extra, b"").await
}

#[tokio::test]
async fn the_accepted_variant_is_served_with_vary() {
    let (_dir, mut server) = site(true).await;
    let cases = [
        ("gzip, deflate, br", Some("br"), "BR"),
        ("br", Some("br"), "BR"),
        ("gzip", Some("gzip"), "GZ"),
        ("br;q=0, gzip", Some("gzip"), "GZ"),
        ("gzip;q=1, br;q=0.5", Some("gzip"), "GZ"),
        ("identity", None, JS),
        ("zstd", None, JS),
    ];
    for (accept, encoding, body) in cases {
        let header = format!("Accept-Encoding: {accept}");
        let reply = fetch(&server, "GET", "/app.js", &[&header]).await;
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), encoding, "{accept}");
        assert_eq!(reply.text(), body, "{accept}");
        assert_eq!(reply.header("vary"), Some("accept-encoding"), "{accept}");
        let content_type = reply.header("content-type").unwrap();
        assert!(
            content_type.ends_with("javascript; charset=utf-8"),
            "the original's type: {content_type}"
        );
    }
    // No Accept-Encoding at all: the file itself, still with Vary.
    let reply = fetch(&server, "GET", "/app.js", &[]).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("vary"), Some("accept-encoding"));
    assert_eq!(reply.text(), JS);

    // A missing variant falls back to the next accepted one, then to the file.
    let reply = fetch(
        &server,
        "GET",
        "/only-gz.css",
        &["Accept-Encoding: br, gzip"],
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(reply.text(), "GZ-CSS");
    let reply = fetch(&server, "GET", "/plain.txt", &["Accept-Encoding: br, gzip"]).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), "plain");

    // A folder's index.html has variants too.
    let reply = fetch(&server, "GET", "/sub/", &["Accept-Encoding: br"]).await;
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(reply.text(), "BR-HTML");
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    server.stop().await;
}

#[tokio::test]
async fn each_variant_has_its_own_validators() {
    let (_dir, mut server) = site(true).await;
    let br = fetch(&server, "GET", "/app.js", &["Accept-Encoding: br"]).await;
    let plain = fetch(&server, "GET", "/app.js", &[]).await;
    let br_etag = br.header("etag").unwrap().to_owned();
    let plain_etag = plain.header("etag").unwrap().to_owned();
    assert!(
        !br_etag.starts_with("W/") && br_etag.starts_with('"'),
        "{br_etag}"
    );
    assert_ne!(
        br_etag, plain_etag,
        "a strong ETag names one representation"
    );
    assert!(br.header("last-modified").is_some());

    let if_none = format!("If-None-Match: {br_etag}");
    let again = fetch(
        &server,
        "GET",
        "/app.js",
        &["Accept-Encoding: br", &if_none],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = fetch(&server, "GET", "/app.js", &[&if_none]).await;
    assert_eq!(
        other.status, 200,
        "the identity representation has another tag"
    );
    assert_eq!(other.text(), JS);

    let head = fetch(&server, "HEAD", "/app.js", &["Accept-Encoding: br"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), Some("br"));
    assert_eq!(head.header("content-length"), Some("2"));
    assert!(head.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_resolver_rules_still_hold() {
    let (_dir, mut server) = site(true).await;
    for path in ["/..%2fsecret.txt", "/../secret.txt", "/%2e%2e/secret.txt"] {
        let reply = fetch(&server, "GET", path, &["Accept-Encoding: br"]).await;
        assert_ne!(reply.status, 200, "{path}");
        assert!(!reply.text().contains("TOP SECRET"), "{path}");
    }
    // The variants are files too, served as such when asked for by name.
    let reply = fetch(&server, "GET", "/app.js.br", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "BR");
    // Other methods fall through to routing (none here: 404).
    let post = fetch(&server, "POST", "/app.js", &["Content-Length: 0"]).await;
    assert_eq!(post.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn without_the_setting_variants_are_ignored() {
    let (_dir, mut server) = site(false).await;
    let reply = fetch(&server, "GET", "/app.js", &["Accept-Encoding: br, gzip"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("vary"), None);
    assert_eq!(reply.text(), JS);
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_variant_that_is_a_symlink_is_never_followed() {
    let dir = temp_dir();
    let public = dir.path().join("public");
    write(public.join("app.js"), JS);
    write(dir.path().join("secret.txt"), "TOP SECRET");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), public.join("app.js.br")).unwrap();
    write(public.join("app.js.gz"), "GZ");
    let server = TestServer::with(App::default(), |config| {
        config.public_dir = Some(public);
        config.precompressed = true;
        config.dev = false;
    })
    .await;
    let reply = fetch(&server, "GET", "/app.js", &["Accept-Encoding: br"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), JS);
    // The plain sibling still serves.
    let reply = fetch(&server, "GET", "/app.js", &["Accept-Encoding: br, gzip"]).await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(reply.text(), "GZ");
}
