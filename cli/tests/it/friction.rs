//! What a new user runs into first: a taken port, a folder that is not a project, `curl` on
//! a path no route serves, a route whose last edit failed, and errors said once per change.

use crate::support::*;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

const BUILD: Duration = Duration::from_secs(300);

/// `nitro dev --port <taken>` says so before any cargo runs: `CARGO` is a script that leaves
/// a mark when it is run.
#[test]
fn a_taken_port_is_said_before_building() {
    let project = Project::with_files(&[(
        "routes/index.rs",
        "pub fn handler() -> &'static str { \"hi\" }\n",
    )]);
    let mark = project.path().join("cargo-ran");
    let fake = project.path().join("fake-cargo");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    let out = nitro()
        .arg("dev")
        .arg(project.path())
        .args(["--port", &port])
        .env("CARGO", &fake)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(
        !mark.exists(),
        "cargo ran before the port was checked: {stderr}"
    );
    // The fake cargo does run when the port is free (the test can fail).
    drop(taken);
    let out = nitro()
        .arg("dev")
        .arg(project.path())
        .args(["--port", &port])
        .env("CARGO", &fake)
        .output()
        .unwrap();
    assert!(mark.exists(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_folder_without_routes_or_config_is_not_a_project() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["dev", "build"] {
        let out = nitro().arg(command).arg(dir.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("is not a nitro project"), "{stderr}");
        assert!(stderr.contains("hint: run `nitro init"), "{stderr}");
    }
}

/// `curl` on a path nothing serves is a 404, a browser gets the page; a route whose edit
/// failed answers from its last good build, says so in a header and in the terminal on each
/// hit; a route's problem is printed once, not again on an unrelated rebuild.
#[test]
fn dev_says_what_is_stale_and_says_it_once() {
    let project = Project::with_files(&[
        ("index.html", "<!doctype html><title>page</title>"),
        (
            "routes/a.rs",
            "pub fn handler() -> &'static str { \"old\" }\n",
        ),
        (
            "routes/other.rs",
            "pub fn handler() -> &'static str { \"other\" }\n",
        ),
    ]);
    let dev = NitroDev::start(project.path());

    let api = dev.get("/api/nope");
    assert_eq!(api.status, 404, "{}", api.text());
    let curl = dev.get_with("/api/nope", &[("accept", "*/*")]);
    assert_eq!(curl.status, 404);
    let page = dev.get_with("/chat/room", &[("accept", "text/html,*/*;q=0.8")]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>page</title>"));

    let fresh = dev.get("/a");
    assert_eq!((fresh.status, fresh.text().as_str()), (200, "old"));
    assert_eq!(fresh.header("x-nitro-stale"), None);

    project.write("routes/a.rs", "pub fn handler() -> &'static str { 42 }\n");
    dev.expect_stderr_count("route `routes/a.rs` failed to build", 1, BUILD);
    for hit in 1..=2 {
        let stale = dev.get("/a");
        assert_eq!((stale.status, stale.text().as_str()), (200, "old"));
        assert_eq!(stale.header("x-nitro-stale"), Some("routes/a.rs"));
        dev.expect_stderr_count(
            "`routes/a.rs` answered from its last good build",
            hit,
            BUILD,
        );
    }
    assert!(
        dev.stderr().contains("mismatched types"),
        "{}",
        dev.stderr()
    );
    assert_eq!(dev.get("/other").header("x-nitro-stale"), None);

    // A route without its handler: said once; an unrelated rebuild does not say it again,
    // nor a's unchanged errors.
    project.write("routes/b.rs", "pub fn nothing() {}\n");
    dev.expect_stderr_count("has no `pub fn handler`", 1, BUILD);
    project.write(
        "routes/other.rs",
        "pub fn handler() -> &'static str { \"other 2\" }\n",
    );
    dev.expect_stderr_count("rebuilt routes/other.rs", 1, BUILD);
    assert_eq!(dev.get("/other").text(), "other 2");
    assert_eq!(
        dev.stderr_count("has no `pub fn handler`"),
        1,
        "{}",
        dev.stderr()
    );
    assert_eq!(
        dev.stderr_count("route `routes/a.rs` failed to build"),
        1,
        "{}",
        dev.stderr()
    );

    // Fixed: no longer stale.
    project.write(
        "routes/a.rs",
        "pub fn handler() -> &'static str { \"new\" }\n",
    );
    dev.expect_stderr_count("rebuilt routes/a.rs", 1, BUILD);
    let fixed = dev.get("/a");
    assert_eq!(
        (fixed.text().as_str(), fixed.header("x-nitro-stale")),
        ("new", None)
    );
}
