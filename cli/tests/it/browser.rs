//! Headless Chromium against `nitro dev examples/websocket`: the page connects, sends a message
//! and shows the echo (over a WebSocket, and over server-sent events and `POST`); with hot reload, an edit of `index.html` reloads the page and a broken
//! route shows the error overlay. Needs Chromium and `tests/browser/node_modules` (installed by
//! `scripts/test.sh`); the screenshots are kept at `target/screenshots/chat.png` and
//! `target/screenshots/overlay.png`.

use crate::support::*;
use std::process::Command;
use std::sync::Mutex;

/// One Chromium at a time: two cores are not enough for more.
static CHROMIUM: Mutex<()> = Mutex::new(());

/// A finished scenario of `tests/browser/chat.mjs`: the server it ran against and its report.
struct Run {
    // Dropped in this order: the server stops before its project folder is deleted.
    dev: NitroDev,
    report: serde_json::Value,
    _project: Project,
}

/// Runs `scenario` of the Chromium driver against `nitro dev` on a copy of the seed example,
/// saving its screenshot as `target/screenshots/<shot>`; fails the test unless it reports ok.
fn run_scenario(scenario: &str, shot: &str) -> Run {
    let root = workspace_root();
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `scripts/test.sh` (or `npm ci --prefix tests/browser`)"
    );
    let project = Project::example("websocket");
    let dev = NitroDev::start(project.path());
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(shot);
    let _ = std::fs::remove_file(&shot);

    let out = Command::new("node")
        .arg(root.join("tests/browser/chat.mjs"))
        .arg(format!("{}/", dev.base))
        .arg(&shot)
        .arg(scenario)
        .env("NITRO_PROJECT", project.path())
        .output()
        .expect("run node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser scenario failed\nstdout: {stdout}\nstderr: {}\nserver stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        dev.stderr()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("driver printed no JSON ({e}): {stdout}"));
    assert_eq!(report["ok"], true, "{report}");
    assert!(shot.exists(), "screenshot written");
    Run {
        dev,
        report,
        _project: project,
    }
}

#[test]
fn chromium_chats_with_the_seed_example() {
    let _one = CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    run_scenario("chat", "chat.png");
}

#[test]
fn chromium_chats_over_server_sent_events() {
    let _one = CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let run = run_scenario("chat-sse", "chat-sse.png");
    let report = &run.report;
    // The page talked to the event stream, not to the WebSocket route.
    let status = report["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("open") && status.ends_with("/sse"),
        "{report}"
    );
    assert!(
        report["peerId"].as_str().is_some_and(|id| id.len() == 36),
        "{report}"
    );
}

#[test]
fn chromium_reloads_on_index_html_edits_and_shows_the_build_error_overlay() {
    let _one = CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let run = run_scenario("reload-overlay", "overlay.png");
    let (dev, report) = (&run.dev, &run.report);
    assert!(
        report["overlay"].as_str().unwrap().contains("error[E0308]"),
        "{report}"
    );
    // stderr is read by another thread: wait for the lines rather than look once.
    let bound = std::time::Duration::from_secs(60);
    dev.expect_stderr_count("index.html changed: reloading pages", 1, bound);
    dev.expect_stderr_count("rebuilt routes/_ws.rs in ", 1, bound);
}
