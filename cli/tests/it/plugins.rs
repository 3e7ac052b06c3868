//! `plugins/*.rs`: `setup` in file-name order before the server listens, a failing or panicking
//! `setup` refuses the start naming the file, `shutdown` after in-flight requests on SIGTERM,
//! an edit in `nitro dev` re-runs shutdown (old build) then setup (new build), and `nitro
//! build` ships them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

const BUILD: Duration = Duration::from_secs(600);

fn wait_events(dir: &Path, last: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = logged_events(dir);
        if now.iter().any(|e| e == last) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An async `setup` and `shutdown` logging `name`.
fn both(name: &str) -> String {
    format!(
        "#[path = \"shared/log.rs\"]\nmod log;\n\
         pub async fn setup() {{ log::event(\"setup {name}\"); }}\n\
         pub async fn shutdown() -> nitro::Result<()> {{ log::event(\"shutdown {name}\"); Ok(()) }}\n"
    )
}

const SLOW: &str = r#"#[path = "../plugins/shared/log.rs"]
mod log;

pub fn handler() -> &'static str {
    log::event("request start");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    log::event("request end");
    "done"
}
"#;

/// The `n`th Rust sample of the "Plugins" section of docs/routes.md, as written there.
fn doc_sample(n: usize) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find("\n## Plugins\n").unwrap()..];
    let section = &section[..section[1..].find("\n## ").unwrap()];
    let block = section.split("```rust\n").nth(n + 1).unwrap();
    block[..block.find("```").unwrap()].to_owned()
}

fn project() -> Project {
    let project = Project::with_files(&[
        (
            "nitro.toml",
            "[runtime_config]\napi_base = \"http://127.0.0.1:1\"\n",
        ),
        ("routes/slow.rs", SLOW),
        (
            "routes/instance.rs",
            "pub fn handler() -> nitro::Result<String> {\n    Ok(nitro::storage(\"memory\").get::<String>(\"instance:state\").wait()?.unwrap_or_default())\n}\n",
        ),
        // The guide's samples, as written: they build and their setup passes.
        ("plugins/01.check-config.rs", &doc_sample(0)),
        ("plugins/02.announce.rs", &doc_sample(1)),
    ]);
    let log = event_log_module(project.path());
    // Byte-wise file-name order: 1, 10, 2. `10` has a plain `fn setup` returning a `Result`
    // and no shutdown; `2` only a shutdown.
    write_files(
        project.path(),
        &[
            ("plugins/shared/log.rs", &log),
            ("plugins/1.first.rs", &both("1")),
            (
                "plugins/10.second.rs",
                "#[path = \"shared/log.rs\"]\nmod log;\npub fn setup() -> Result<(), String> { log::event(\"setup 10\"); Ok(()) }\n",
            ),
            (
                "plugins/2.third.rs",
                "#[path = \"shared/log.rs\"]\nmod log;\npub async fn shutdown() { log::event(\"shutdown 2\"); }\n",
            ),
        ],
    );
    project
}

#[test]
fn plugins_set_up_in_order_reload_in_dev_and_shut_down_after_in_flight_requests() {
    let project = project();
    let dir = project.path();
    let mut dev = NitroDev::start(dir);
    // Set up before the server listened, in file-name order.
    assert_eq!(logged_events(dir), ["setup 1", "setup 10"]);
    assert!(
        dev.stderr().contains("built 2 routes and 5 plugins"),
        "{}",
        dev.stderr()
    );
    assert!(dev.stderr().contains("PLUG"), "{}", dev.stderr());

    // The guide's samples ran: `nitro::log` lines name their file.
    assert!(
        dev.stderr().contains("calling `http://127.0.0.1:1`"),
        "{}",
        dev.stderr()
    );

    // What a plugin's setup stored, a route reads.
    assert_eq!(dev.get("/instance").text(), "up");

    // An edit: the old build's shutdown, then the new build's setup; the others stay.
    project.write("plugins/1.first.rs", &both("1b"));
    assert!(
        dev.wait_stderr("rebuilt plugins/1.first.rs", BUILD),
        "{}",
        dev.stderr()
    );
    let now = wait_events(dir, "setup 1b", Duration::from_secs(10));
    assert_eq!(
        now,
        ["setup 1", "setup 10", "shutdown 1", "setup 1b"],
        "{}",
        dev.stderr()
    );

    // SIGTERM while a request runs: it finishes, then the plugins shut down (reverse order).
    let port = dev.port;
    let request = std::thread::spawn(move || get(port, "/slow", &[]));
    wait_events(dir, "request start", Duration::from_secs(30));
    dev.signal("TERM");
    let res = request.join().unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "done"));
    let status = dev.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", dev.stderr());
    assert_eq!(
        logged_events(dir)[4..],
        ["request start", "request end", "shutdown 2", "shutdown 1b"],
        "{}",
        dev.stderr()
    );
    assert!(
        dev.stderr().contains("instance going away"),
        "{}",
        dev.stderr()
    );
}

/// A plugin whose `setup` fails when `PLUGIN_FAIL` says so: with an error, or a panic.
const GUARDED: &str = r#"#[path = "shared/log.rs"]
mod log;

pub async fn setup() -> nitro::Result<()> {
    match std::env::var("PLUGIN_FAIL").as_deref() {
        Ok("error") => Err(nitro::Error::internal("no database at 127.0.0.1:1")),
        Ok("panic") => panic!("the cache is gone"),
        _ => {
            log::event("setup db");
            Ok(())
        }
    }
}

pub async fn shutdown() {
    log::event("shutdown db");
}
"#;

#[test]
fn nitro_start_refuses_to_start_when_a_setup_fails_and_shuts_plugins_down_on_sigterm() {
    let project = Project::with_files(&[
        ("nitro.toml", ""),
        (
            "routes/index.rs",
            "pub fn handler() -> &'static str { \"hi\" }\n",
        ),
    ]);
    let dir = project.path();
    let log = event_log_module(dir);
    write_files(
        dir,
        &[
            ("plugins/shared/log.rs", &log),
            ("plugins/0.first.rs", &both("0")),
            ("plugins/1.db.rs", GUARDED),
        ],
    );
    nitro_build(dir);
    let manifest = output_manifest(dir);
    assert!(
        manifest_has(&manifest, "plugins/1.db.rs", "plugin"),
        "{manifest}"
    );

    // `nitro dev` refuses to start the same way (its supervisor does not restart it).
    let out = nitro()
        .arg("dev")
        .arg(dir)
        .args(["--port", "0"])
        .env("PLUGIN_FAIL", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin `plugins/1.db.rs` failed in `setup`"),
        "{stderr}"
    );
    assert!(stderr.contains("no database at 127.0.0.1:1"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("http://"),
        "it never listened"
    );
    assert_eq!(logged_events(dir), ["setup 0", "shutdown 0"], "{stderr}");
    std::fs::remove_file(dir.join("events.log")).unwrap();
    // `nitro start` needs nothing but the output.
    std::fs::remove_dir_all(dir.join("plugins")).unwrap();

    for (fail, expected) in [
        ("error", "no database at 127.0.0.1:1"),
        ("panic", "the cache is gone"),
    ] {
        let out = nitro()
            .arg("start")
            .arg(dir.join(".output"))
            .args(["--port", "0"])
            .env("PLUGIN_FAIL", fail)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("plugin `plugins/1.db.rs` failed in `setup`"),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{stderr}");
        assert!(out.stdout.is_empty(), "it never listened");
        // The plugin set up before it was shut down.
        assert_eq!(logged_events(dir), ["setup 0", "shutdown 0"], "{stderr}");
        std::fs::remove_file(dir.join("events.log")).unwrap();
    }

    let mut cmd = nitro();
    cmd.arg("start")
        .arg(dir.join(".output"))
        .args(["--port", "0"]);
    let mut server = Server::start_output(cmd);
    assert_eq!(logged_events(dir), ["setup 0", "setup db"]);
    assert_eq!(server.get("/").text(), "hi");
    let status = server.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert_eq!(
        logged_events(dir),
        ["setup 0", "setup db", "shutdown db", "shutdown 0"]
    );
}
