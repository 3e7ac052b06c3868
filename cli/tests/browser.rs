//! Headless Chromium against `nitro dev examples/websocket`: the page connects, sends a message
//! and shows the echo. Needs Chromium and `tests/browser/node_modules` (installed by
//! `scripts/test.sh`); the screenshot is kept at `target/screenshots/chat.png`.

mod support;

use std::process::Command;
use support::*;

#[test]
fn chromium_chats_with_the_seed_example() {
    let root = workspace_root();
    let driver = root.join("tests/browser/chat.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `scripts/test.sh` (or `npm ci --prefix tests/browser`)"
    );
    let project = Project::example("websocket");
    let dev = NitroDev::start(project.path());
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("chat.png");

    let out = Command::new("node")
        .arg(&driver)
        .arg(format!("{}/", dev.base))
        .arg(&shot)
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
}
