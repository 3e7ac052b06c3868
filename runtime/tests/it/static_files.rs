//! `public/` files: headers, conditional requests, ranges, and never a byte from outside.

use std::sync::Arc;

use nitro_runtime::App;
use nitro_runtime::module::RouteModule;

use crate::common::*;

struct Site {
    _dir: tempfile::TempDir,
    server: TestServer,
}

/// `public/` with a few files, a secret next to it, and symlinks out and in.
async fn site() -> Site {
    let dir = temp_dir();
    let public = dir.path().join("public");
    write(public.join("hello.txt"), "hello, world");
    write(public.join("style.css"), "body{}");
    write(public.join("api/echo"), "a file, not the route");
    write(public.join("sub/index.html"), "<p>sub</p>");
    write(public.join("empty/.keep"), "");
    write(public.join(".env"), "SECRET=dotenv");
    write(public.join(".well-known/security.txt"), "Contact: x");
    write(dir.path().join("secret.txt"), "TOP SECRET");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), public.join("leak")).unwrap();
    std::os::unix::fs::symlink(dir.path(), public.join("up")).unwrap();
    std::os::unix::fs::symlink(public.join("hello.txt"), public.join("inner")).unwrap();

    let app: App = app(
        &["api/echo.rs", "[...path].rs"],
        vec![
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version: 1,
            }) as Arc<dyn RouteModule>,
            Arc::new(Echo {
                file: "routes/[...path].rs",
                version: 1,
            }),
        ],
    );
    let server = TestServer::with(app, |config| config.public_dir = Some(public)).await;
    Site { _dir: dir, server }
}

#[tokio::test]
async fn files_with_content_types() {
    let site = site().await;
    let addr = site.server.addr;
    let reply = get(addr, "/hello.txt").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello, world");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(reply.header("last-modified").is_some());
    assert!(reply.header("etag").is_some());

    assert_eq!(
        get(addr, "/style.css").await.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(get(addr, "/sub").await.text(), "<p>sub</p>");
    assert_eq!(get(addr, "/sub/").await.text(), "<p>sub</p>");
    assert_eq!(
        get(addr, "/.well-known/security.txt").await.text(),
        "Contact: x"
    );
    assert_eq!(
        get(addr, "/inner").await.text(),
        "hello, world",
        "a symlink inside is fine"
    );
}

#[tokio::test]
async fn a_public_file_beats_a_route_and_a_miss_falls_through() {
    let site = site().await;
    let addr = site.server.addr;
    assert_eq!(get(addr, "/api/echo").await.text(), "a file, not the route");
    // Other methods go to the route.
    let reply = request(addr, "POST", "/api/echo", &[], b"x").await;
    assert_eq!(reply.json()["path"], "/api/echo");
    // A miss is routed (to the catch-all here), not a 404.
    let reply = get(addr, "/missing.txt").await;
    assert_eq!(reply.json()["params"]["path"], "missing.txt");
    // No directory listing: `empty/` has no index.html.
    assert_eq!(get(addr, "/empty/").await.json()["params"]["path"], "empty");
    // A file with a trailing slash is not the file.
    assert_eq!(
        get(addr, "/hello.txt/").await.json()["params"]["path"],
        "hello.txt"
    );
}

#[tokio::test]
async fn conditional_requests_head_and_ranges() {
    let site = site().await;
    let addr = site.server.addr;
    let first = get(addr, "/hello.txt").await;
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();

    let reply = request(
        addr,
        "GET",
        "/hello.txt",
        &[&format!("If-None-Match: {etag}")],
        b"",
    )
    .await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    let reply = request(
        addr,
        "GET",
        "/hello.txt",
        &["If-None-Match: \"other\""],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = request(
        addr,
        "GET",
        "/hello.txt",
        &[&format!("If-Modified-Since: {modified}")],
        b"",
    )
    .await;
    assert_eq!(reply.status, 304);

    let reply = request(addr, "HEAD", "/hello.txt", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("12"));
    assert!(reply.body.is_empty());

    let reply = request(addr, "GET", "/hello.txt", &["Range: bytes=0-4"], b"").await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.text(), "hello");
    assert_eq!(reply.header("content-range"), Some("bytes 0-4/12"));
}

#[tokio::test]
async fn nothing_outside_public_and_no_dotfiles() {
    let site = site().await;
    let addr = site.server.addr;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/a%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..%2fsecret.txt",
        "/up/secret.txt",
        "/leak",
        "/.env",
        "/.env/.",
        "/%2eenv",
        "//secret.txt",
        "/hello.txt%00",
    ] {
        let reply = get(addr, path).await;
        let body = reply.text();
        assert!(
            !body.contains("TOP SECRET") && !body.contains("SECRET=dotenv"),
            "{path} leaked: {body}"
        );
        // What answers is the catch-all route (the request was not served as a file).
        assert!(
            reply.status == 200 && reply.header("content-type") == Some("application/json")
                || reply.status >= 400,
            "{path}: {} {body}",
            reply.status
        );
    }
}
