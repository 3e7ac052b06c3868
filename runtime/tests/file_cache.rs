//! `ServerConfig::cache_files` (`nitro start`): `public/` and `index.html` read once at start
//! and served from memory, with answers identical to the ones read from disk; without it
//! (`nitro dev`) every request sees the files as they are now.

#[allow(dead_code, unreachable_pub)]
#[path = "it/common.rs"]
mod common;

use std::path::Path;

use common::*;

/// The renderer's page, asked for as a browser does (the fallback needs `Accept: text/html`).
async fn page(addr: std::net::SocketAddr) -> Reply {
    request(addr, "GET", "/", &["Accept: text/html"], b"").await
}
use nitro_runtime::App;

/// A built output's `public/` (variants included, no symlinks) and a renderer page.
fn output(dir: &Path) {
    let public = dir.join("public");
    write(public.join("app.js"), "export const x = 1;\n");
    write(public.join("app.js.br"), "BR");
    write(public.join("app.js.gz"), "GZ");
    write(public.join("only-gz.css"), "a{}");
    write(public.join("only-gz.css.gz"), "GZ-CSS");
    write(public.join("hello.txt"), "hello, world");
    write(public.join("a b/c.txt"), "spaced");
    write(public.join("café.txt"), "accent");
    write(public.join("sub/index.html"), "<p>sub</p>");
    write(public.join("sub/index.html.br"), "BR-HTML");
    write(public.join("empty/.keep"), "");
    write(public.join(".env"), "SECRET=dotenv");
    write(public.join(".well-known/security.txt"), "Contact: x");
    write(public.join("big.bin"), &"x".repeat((1 << 20) + 1));
    write(dir.join("secret.txt"), "TOP SECRET");
    write(dir.join("index.html"), "<h1>page</h1>");
}

async fn server(dir: &Path, cache_files: bool) -> TestServer {
    let (public, page) = (dir.join("public"), dir.join("index.html"));
    TestServer::with(App::default(), move |config| {
        config.public_dir = Some(public);
        config.index_html = Some(page);
        config.precompressed = true;
        config.cache_files = cache_files;
        config.dev = false;
    })
    .await
}

/// Status, headers but `date`, and body.
fn answer(reply: &Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("date"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    headers.sort();
    (reply.status, headers, reply.body.clone())
}

#[tokio::test]
async fn answers_from_memory_are_the_answers_from_disk() {
    let dir = temp_dir();
    output(dir.path());
    let mut disk = server(dir.path(), false).await;
    let mut memory = server(dir.path(), true).await;

    let plain = get(disk.addr, "/app.js").await;
    let etag = plain.header("etag").unwrap().to_owned();
    let modified = plain.header("last-modified").unwrap().to_owned();
    let br = request(disk.addr, "GET", "/app.js", &["Accept-Encoding: br"], b"").await;
    let br_etag = br.header("etag").unwrap().to_owned();
    let if_none = format!("If-None-Match: {etag}");
    let if_none_br = format!("If-None-Match: {br_etag}");
    let if_modified = format!("If-Modified-Since: {modified}");
    let if_match = format!("If-Match: {etag}");

    let paths = [
        "/app.js",
        "/app.js.br",
        "/only-gz.css",
        "/hello.txt",
        "/hello.txt/",
        "/a%20b/c.txt",
        "/caf%C3%A9.txt",
        "/sub",
        "/sub/",
        "/sub/index.html",
        "/empty/",
        "/.env",
        "/.well-known/security.txt",
        "/big.bin",
        "/",
        "/missing.txt",
        "/chat/room",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ];
    let header_sets: [&[&str]; 12] = [
        &[],
        &["Accept-Encoding: gzip, deflate, br"],
        &["Accept-Encoding: br;q=0, gzip"],
        &["Accept-Encoding: gzip;q=1, br;q=0.5"],
        &["Accept-Encoding: identity"],
        &[&if_none],
        &["Accept-Encoding: br", &if_none_br],
        &[&if_modified],
        &[&if_match],
        &["If-Match: \"other\""],
        &["Range: bytes=0-4"],
        &["Range: bytes=100-200"],
    ];
    let mut compared = 0;
    for path in paths {
        for method in ["GET", "HEAD"] {
            for headers in header_sets {
                let from_disk = request(disk.addr, method, path, headers, b"").await;
                let from_memory = request(memory.addr, method, path, headers, b"").await;
                assert_eq!(
                    answer(&from_memory),
                    answer(&from_disk),
                    "{method} {path} {headers:?}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, paths.len() * 2 * header_sets.len());
    // The comparison covered the interesting answers.
    let statuses = |path: &str, headers: &[&str]| {
        let memory = memory.addr;
        let path = path.to_owned();
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        async move {
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            request(memory, "GET", &path, &headers, b"").await
        }
    };
    assert_eq!(statuses("/app.js", &[&if_none]).await.status, 304);
    assert_eq!(
        statuses("/app.js", &["If-Match: \"other\""]).await.status,
        412
    );
    assert_eq!(
        statuses("/hello.txt", &["Range: bytes=0-4"]).await.status,
        206
    );
    assert_eq!(
        statuses("/hello.txt", &["Range: bytes=100-200"])
            .await
            .status,
        416
    );
    let br = statuses("/sub/", &["Accept-Encoding: br"]).await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.text(), "BR-HTML");
    assert_eq!(
        statuses("/", &["Accept: text/html"]).await.text(),
        "<h1>page</h1>"
    );
    assert_eq!(statuses("/big.bin", &[]).await.body.len(), (1 << 20) + 1);
    disk.stop().await;
    memory.stop().await;
}

#[tokio::test]
async fn a_cached_server_never_reads_the_files_again() {
    let dir = temp_dir();
    output(dir.path());
    let mut server = server(dir.path(), true).await;
    std::fs::remove_file(dir.path().join("public/hello.txt")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>edited</h1>").unwrap();
    write(dir.path().join("public/new.txt"), "new");

    let reply = get(server.addr, "/hello.txt").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello, world"));
    assert_eq!(page(server.addr).await.text(), "<h1>page</h1>");
    assert_eq!(
        get(server.addr, "/new.txt").await.status,
        404,
        "a file added after the start is not served"
    );
    // Files past the size limit are read from disk, as they are when asked for.
    std::fs::write(dir.path().join("public/big.bin"), "shrunk").unwrap();
    assert_eq!(get(server.addr, "/big.bin").await.text(), "shrunk");
    server.stop().await;
}

#[tokio::test]
async fn without_the_cache_edits_are_served_at_once() {
    let dir = temp_dir();
    output(dir.path());
    let mut server = server(dir.path(), false).await;
    assert_eq!(page(server.addr).await.text(), "<h1>page</h1>");
    std::fs::write(dir.path().join("index.html"), "<h1>edited</h1>").unwrap();
    std::fs::write(dir.path().join("public/hello.txt"), "edited too").unwrap();
    write(dir.path().join("public/new.txt"), "new");
    assert_eq!(page(server.addr).await.text(), "<h1>edited</h1>");
    assert_eq!(get(server.addr, "/hello.txt").await.text(), "edited too");
    assert_eq!(get(server.addr, "/new.txt").await.text(), "new");
    std::fs::remove_file(dir.path().join("public/hello.txt")).unwrap();
    assert_eq!(get(server.addr, "/hello.txt").await.status, 404);
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_public_folder_with_a_symlink_is_read_on_each_request() {
    let dir = temp_dir();
    output(dir.path());
    std::os::unix::fs::symlink(
        dir.path().join("public/hello.txt"),
        dir.path().join("public/inner"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        dir.path().join("public/leak"),
    )
    .unwrap();
    let mut server = server(dir.path(), true).await;
    assert_eq!(get(server.addr, "/inner").await.text(), "hello, world");
    assert_ne!(get(server.addr, "/leak").await.text(), "TOP SECRET");
    std::fs::write(dir.path().join("public/hello.txt"), "edited").unwrap();
    assert_eq!(
        get(server.addr, "/hello.txt").await.text(),
        "edited",
        "served from disk, as the resolver decides"
    );
    // The renderer's page is still held.
    std::fs::write(dir.path().join("index.html"), "<h1>edited</h1>").unwrap();
    assert_eq!(page(server.addr).await.text(), "<h1>page</h1>");
    server.stop().await;
}
