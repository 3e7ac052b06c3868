//! What a route author writes: `?` on any error, typed extraction, forms, and files that ship
//! with the app in `assets/`, under `nitro dev` and under a built `nitro start` run from
//! another folder.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

/// The handler of the issue that asked for all this, as a user would write it.
const ORDERS: &str = r#"use nitro::{Request, Result};
#[derive(serde::Deserialize)] struct Filter { verbose: Option<bool> }
pub fn handler(req: &Request) -> Result<String> {
    let id: u64 = req.param_as("id")?;          // /orders/x → 400 naming `id`
    let f: Filter = req.query_as()?;             // ?verbose=maybe → 400 naming `verbose`
    let n: i32 = std::fs::read_to_string(nitro::assets::path("limit.txt"))?.trim().parse()?;
    Ok(format!("{id} {:?} {n}", f.verbose))      // a broken assets file → 500, logged
}
"#;

const FILES: &[(&str, &str)] = &[
    (
        "nitro.toml",
        "[dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\nanyhow = \"1\"\n",
    ),
    ("routes/orders/[id].post.rs", ORDERS),
    // The same API in an `async fn` handler, which takes the request by value.
    (
        "routes/async-orders/[id].post.rs",
        "use nitro::{Request, Result};
         #[derive(serde::Deserialize)] struct Filter { verbose: Option<bool> }
         pub async fn handler(req: Request) -> Result<String> {
             let id: u64 = req.param_as(\"id\")?;
             let f: Filter = req.query_as()?;
             let n: i32 = nitro::assets::read_to_string(\"limit.txt\")?.trim().parse()?;
             Ok(format!(\"async {id} {:?} {n}\", f.verbose))
}
",
    ),
    ("assets/limit.txt", "42\n"),
    (
        "routes/err-string.get.rs",
        "pub fn handler() -> Result<String, String> {\n    Err(\"something went wrong\".to_string())\n}\n",
    ),
    (
        "routes/missing.get.rs",
        "pub fn handler() -> nitro::Result<String> {\n    Ok(std::fs::read_to_string(nitro::assets::path(\"nope.txt\"))?)\n}\n",
    ),
    (
        "routes/any.get.rs",
        "use anyhow::Context;\npub fn handler() -> anyhow::Result<String> {\n    let n: u8 = \"300\".parse().context(\"reading the quota\")?;\n    Ok(n.to_string())\n}\n",
    ),
    (
        "routes/signin.post.rs",
        "#[derive(serde::Deserialize)]\nstruct Login { user: String, remember: bool }\n\
         pub fn handler(req: &nitro::Request) -> nitro::Result<String> {\n    \
         let login: Login = req.form()?;\n    Ok(format!(\"{} {}\", login.user, login.remember))\n}\n",
    ),
];

/// The `upgrade` sample of docs/routes.md, as written there.
fn upgrade_sample() -> String {
    doc_sample("### `upgrade`")
}

/// The first Rust sample under `heading` in docs/routes.md, as written there.
fn doc_sample(heading: &str) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find(heading).unwrap()..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_owned()
}

/// An upgrade request to `target` offering `protocols` (if any): the status line and the
/// `sec-websocket-protocol` the server selected.
fn upgrade(port: u16, target: &str, protocols: Option<&str>) -> (u16, Option<String>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(protocols) = protocols {
        req.push_str(&format!("Sec-WebSocket-Protocol: {protocols}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let protocol = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-protocol:"))
        .map(|p| p.trim().to_owned());
    (status, protocol)
}

fn post(port: u16, path: &str) -> HttpResponse {
    http(port, "POST", path, &[], b"")
}

fn message(res: &HttpResponse) -> String {
    res.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn route_api_under_dev() {
    let project = Project::with_files(FILES);
    project.write("routes/_ws.rs", &upgrade_sample());
    let dev = NitroDev::start(project.path());
    let port = dev.port;

    // The upgrade sample of the docs: a browser's `new WebSocket(url)` offers no protocol
    // and is accepted without one; a client offering `chat.v1` gets it.
    assert_eq!(upgrade(port, "/_ws?token=t", None), (101, None));
    assert_eq!(
        upgrade(port, "/_ws?token=t", Some("chat.v0, chat.v1")),
        (101, Some("chat.v1".to_owned()))
    );
    assert_eq!(upgrade(port, "/_ws", None).0, 401);

    let ok = post(port, "/orders/7?verbose=true");
    assert_eq!((ok.status, ok.text().as_str()), (200, "7 Some(true) 42"));
    let ok = post(port, "/orders/7");
    assert_eq!((ok.status, ok.text().as_str()), (200, "7 None 42"));
    let ok = post(port, "/async-orders/7?verbose=true");
    assert_eq!(
        (ok.status, ok.text().as_str()),
        (200, "async 7 Some(true) 42")
    );
    let bad = post(port, "/async-orders/7?verbose=maybe");
    assert_eq!(bad.status, 400);
    assert!(message(&bad).contains("`verbose`"), "{}", bad.text());

    let bad_id = post(port, "/orders/x");
    assert_eq!(bad_id.status, 400);
    assert!(message(&bad_id).contains("`id`"), "{}", bad_id.text());
    let bad_query = post(port, "/orders/7?verbose=maybe");
    assert_eq!(bad_query.status, 400);
    assert!(
        message(&bad_query).contains("`verbose`"),
        "{}",
        bad_query.text()
    );

    // A broken asset: `?` on the ParseIntError is a 500, logged with the route file; under
    // `nitro dev` the client sees why.
    project.write("assets/limit.txt", "lots\n");
    let broken = post(port, "/orders/7");
    assert_eq!(broken.status, 500);
    assert!(
        message(&broken).contains("invalid digit found in string"),
        "{}",
        broken.text()
    );
    assert!(
        dev.wait_stderr("invalid digit found in string", Duration::from_secs(10)),
        "{}",
        dev.stderr()
    );
    assert!(
        dev.stderr().contains("routes/orders/[id].post.rs"),
        "{}",
        dev.stderr()
    );

    // An io::Error by `?`, anyhow's chain, and an `Err(String)`: all 500, never 2xx.
    let missing = dev.get("/missing");
    assert_eq!(missing.status, 500);
    assert!(
        message(&missing).contains("No such file"),
        "{}",
        missing.text()
    );
    let any = dev.get("/any");
    assert_eq!(any.status, 500);
    assert!(
        message(&any).contains("reading the quota: number too large"),
        "{}",
        any.text()
    );
    assert!(
        dev.wait_stderr("reading the quota", Duration::from_secs(10)),
        "{}",
        dev.stderr()
    );
    let err_string = dev.get("/err-string");
    assert_eq!(
        (err_string.status, err_string.text().as_str()),
        (500, "something went wrong")
    );

    // Forms: good, a field that does not fit, another content type.
    let form = "application/x-www-form-urlencoded";
    let res = http(
        port,
        "POST",
        "/signin",
        &[("content-type", form)],
        b"user=ada+l&remember=true",
    );
    assert_eq!((res.status, res.text().as_str()), (200, "ada l true"));
    let res = http(
        port,
        "POST",
        "/signin",
        &[("content-type", form)],
        b"user=ada&remember=yes",
    );
    assert_eq!(res.status, 400);
    assert!(message(&res).contains("`remember`"), "{}", res.text());
    let res = http(
        port,
        "POST",
        "/signin",
        &[("content-type", "text/plain")],
        b"user=ada",
    );
    assert_eq!(res.status, 415);
}

#[test]
fn assets_ship_with_the_build() {
    let project = Project::with_files(FILES);
    let stderr = nitro_build(project.path());
    assert!(stderr.contains("server/assets/"), "{stderr}");
    // The project's own copy goes away: the output must not need it.
    std::fs::remove_dir_all(project.path().join("assets")).unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(project.path().join(".output/server/nitro"));
    cmd.args(["start", "--port", "0"])
        .current_dir(elsewhere.path())
        .env("NO_COLOR", "1");
    let server = NitroDev::start_output(cmd);

    let ok = post(server.port, "/orders/7?verbose=false");
    assert_eq!((ok.status, ok.text().as_str()), (200, "7 Some(false) 42"));
    let ok = post(server.port, "/async-orders/8");
    assert_eq!((ok.status, ok.text().as_str()), (200, "async 8 None 42"));
    // In production an unhandled error is logged but its text stays on the server.
    let missing = get(server.port, "/missing", &[]);
    assert_eq!(missing.status, 500);
    assert!(
        !missing.text().contains("No such file"),
        "{}",
        missing.text()
    );
    assert!(
        server.wait_stderr("No such file", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let bad = post(server.port, "/orders/x");
    assert_eq!(bad.status, 400);
    assert!(message(&bad).contains("`id`"), "{}", bad.text());
}

/// Cookies end to end (issue 14): a plain cookie counted across requests, a private session
/// cookie the client cannot read or forge, and the 500 that says what to set when the app has
/// no secret.
#[test]
fn cookies_plain_and_private_under_dev() {
    let project = Project::with_files(&[
        (
            "routes/visit.rs",
            r#"use nitro::cookies::{Cookie, SameSite};
pub fn handler(req: &nitro::Request) -> nitro::Response {
    let visits: u32 = req.cookie("visits").and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
    let cookie = Cookie::build(("visits", visits.to_string())).path("/").same_site(SameSite::Lax);
    nitro::Response::text(format!("visit {visits}")).with_cookie(cookie)
}
"#,
        ),
        (
            "routes/login.rs",
            r#"pub async fn handler(req: nitro::Request) -> nitro::Result<nitro::Response> {
    let user = req.query("user").unwrap_or_default();
    nitro::Response::text("welcome").with_private_cookie(nitro::cookies::Cookie::new("user", user))
}
"#,
        ),
        (
            "routes/me.rs",
            r#"pub fn handler(req: &nitro::Request) -> nitro::Result<String> {
    match req.private_cookie("user")? {
        Some(user) => Ok(format!("user {user}")),
        None => Err(nitro::Error::new(401, "log in first")),
    }
}
"#,
        ),
    ]);
    let start = |secret: Option<&str>| {
        let mut cmd = nitro();
        cmd.arg("dev")
            .arg(project.path())
            .args(["--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        match secret {
            Some(secret) => cmd.env("NITRO_COOKIE_SECRET", secret),
            None => cmd.env_remove("NITRO_COOKIE_SECRET"),
        };
        wait_for_url(cmd.spawn().unwrap(), "nitro dev", Duration::from_secs(600))
    };
    let set_cookie = |res: &HttpResponse| {
        res.header("set-cookie")
            .expect("a set-cookie header")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };

    let dev = start(Some("a test secret of more than thirty-two bytes"));
    let first = dev.get("/visit");
    assert_eq!(first.text(), "visit 1");
    assert_eq!(
        first.header("set-cookie"),
        Some("visits=1; SameSite=Lax; Path=/")
    );
    let again = dev.get_with("/visit", &[("cookie", &set_cookie(&first))]);
    assert_eq!(again.text(), "visit 2");

    let login = dev.get("/login?user=ada");
    let session = set_cookie(&login);
    assert!(session.starts_with("user="), "{session}");
    assert!(!session.contains("ada"), "encrypted: {session}");
    let me = dev.get_with("/me", &[("cookie", &session)]);
    assert_eq!((me.status, me.text()), (200, "user ada".to_owned()));
    // A forged value reads as absent.
    let forged = dev.get_with("/me", &[("cookie", "user=ada")]);
    assert_eq!(forged.status, 401);
    drop(dev);

    // Without a secret: a 500 that names the variable (dev shows the message).
    let dev = start(None);
    let res = dev.get("/login?user=ada");
    assert_eq!(res.status, 500);
    assert!(res.text().contains("NITRO_COOKIE_SECRET"), "{}", res.text());
}

/// A `multipart/form-data` body as a browser sends it: a text field and a file of `file`'s bytes.
fn multipart_body(boundary: &str, title: &str, file: &[u8]) -> Vec<u8> {
    multipart_body_named(boundary, title, "file", file)
}

fn multipart_body_named(boundary: &str, title: &str, name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"data.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// Forms with files (issue 14): a real multipart body read by a `fn` and an `async fn`
/// handler, the 4xx of bad bodies, and the host's `[limits] max_body` before the route runs.
#[test]
fn multipart_forms_under_dev() {
    const HANDLER: &str = "(req: REQ) -> nitro::Result<String> {
    let form = req.multipart()?;
    let title = form.text(\"title\")?;
    let file = form.file(\"file\")?;
    let sum: u64 = file.bytes().iter().map(|&b| u64::from(b)).sum();
    Ok(format!(\"{title} {} {} {} {sum}\", file.file_name().unwrap_or_default(),
        file.content_type().unwrap_or_default(), file.bytes().len()))
}
";
    let project = Project::with_files(&[
        ("nitro.toml", "[limits]\nmax_body = 65536\n"),
        (
            "routes/upload.post.rs",
            &format!(
                "pub fn handler{}",
                HANDLER.replace("REQ", "&nitro::Request")
            ),
        ),
        (
            "routes/async-upload.post.rs",
            &format!(
                "pub async fn handler{}",
                HANDLER.replace("REQ", "nitro::Request")
            ),
        ),
        ("routes/photos.post.rs", &doc_sample("### Forms with files")),
        // Built without the `multipart` feature until an edit calls it.
        (
            "routes/later.post.rs",
            "pub fn handler() -> &'static str {\n    \"plain\"\n}\n",
        ),
    ]);
    let dev = NitroDev::start(project.path());
    let port = dev.port;
    let boundary = "----nitroTestBoundary4Qx";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    // Every byte value, CR LF and dashes included.
    let file: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
    let sum: u64 = file.iter().map(|&b| u64::from(b)).sum();
    let body = multipart_body(boundary, "Holiday ✓", &file);
    for path in ["/upload", "/async-upload"] {
        let res = http(
            port,
            "POST",
            path,
            &[("content-type", &content_type)],
            &body,
        );
        assert_eq!(
            (res.status, res.text()),
            (
                200,
                format!("Holiday ✓ data.bin application/octet-stream 40000 {sum}")
            ),
            "{path}"
        );
    }

    // Bad input: 4xx naming what is wrong.
    let res = http(
        port,
        "POST",
        "/upload",
        &[("content-type", "text/plain")],
        b"x",
    );
    assert_eq!(res.status, 415);
    let res = http(
        port,
        "POST",
        "/upload",
        &[("content-type", "multipart/form-data")],
        &body,
    );
    assert_eq!(res.status, 400);
    assert!(message(&res).contains("`boundary`"), "{}", res.text());
    let res = http(
        port,
        "POST",
        "/async-upload",
        &[("content-type", &content_type)],
        &body[..body.len() - 30],
    );
    assert_eq!(res.status, 400);
    assert!(message(&res).contains("`file`"), "{}", res.text());
    let res = http(
        port,
        "POST",
        "/upload",
        &[("content-type", &content_type)],
        &multipart_body(boundary, "no file", b"")
            .split(|&b| b == b'\n')
            .take(4)
            .flat_map(|line| line.iter().copied().chain([b'\n']))
            .chain(format!("--{boundary}--\r\n").bytes())
            .collect::<Vec<u8>>(),
    );
    assert_eq!(res.status, 400);
    assert_eq!(message(&res), "multipart file `file` is missing");

    // Over `[limits] max_body`: the host answers 413 before the route runs.
    let big = multipart_body(boundary, "big", &vec![b'x'; 70_000]);
    let res = http(
        port,
        "POST",
        "/upload",
        &[("content-type", &content_type)],
        &big,
    );
    assert_eq!(res.status, 413);

    // A route that starts reading multipart bodies is rebuilt with the feature.
    assert_eq!(post(port, "/later").text(), "plain");
    project.write(
        "routes/later.post.rs",
        &format!(
            "pub fn handler{}",
            HANDLER.replace("REQ", "&nitro::Request")
        ),
    );
    assert!(
        dev.wait_stderr("rebuilt routes/later.post.rs in ", Duration::from_secs(300)),
        "{}",
        dev.stderr()
    );
    let res = http(
        port,
        "POST",
        "/later",
        &[("content-type", &content_type)],
        &body,
    );
    assert_eq!(res.status, 200, "{}", res.text());
}
