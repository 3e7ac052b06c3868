//! `tasks/*.rs`: `[scheduled_tasks]` with a seconds-resolution schedule fires, a task never
//! runs twice at once (the tick is skipped and logged), a panicking task is logged with its
//! file and the server goes on, and `nitro task run NAME --payload JSON` prints the result.

use std::time::{Duration, Instant};

use crate::support::*;

const TICK: &str = r#"#[path = "shared/log.rs"]
mod log;

pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value> {
    // The scheduler says when the tick was due.
    let due = payload["scheduled_time"].is_string();
    log::event(&format!("tick {due}"));
    Ok(nitro::Value::Null)
}
"#;

/// A plain `fn` that blocks for longer than the schedule's period.
const SLOW: &str = r#"#[path = "shared/log.rs"]
mod log;

pub fn run(_payload: nitro::Value) -> Result<(), String> {
    log::event("slow start");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    log::event("slow end");
    Ok(())
}
"#;

const BOOM: &str = r#"use nitro::{Value, json};

pub async fn run(payload: Value) -> nitro::Result<Value> {
    if payload.get("scheduled_time").is_some() {
        panic!("boom on schedule");
    }
    Ok(json!({ "echo": payload }))
}
"#;

/// The `n`th Rust sample of the "Tasks" section of docs/routes.md, as written there.
fn doc_sample(n: usize) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find("\n## Tasks\n").unwrap()..];
    let section = &section[..section[1..].find("\n## ").unwrap()];
    let block = section.split("```rust\n").nth(n + 1).unwrap();
    block[..block.find("```").unwrap()].to_owned()
}

fn project() -> Project {
    let project = Project::with_files(&[
        // The guide's sample, as written (not scheduled).
        ("tasks/cleanup.rs", &doc_sample(0)),
        (
            "nitro.toml",
            "[scheduled_tasks]\n\"* * * * * *\" = [\"tick\", \"slow\", \"boom\"]\n",
        ),
        (
            "routes/index.rs",
            "pub fn handler() -> &'static str { \"up\" }\n",
        ),
        ("tasks/tick.rs", TICK),
        ("tasks/slow.rs", SLOW),
        ("tasks/boom.rs", BOOM),
        (
            "tasks/store.rs",
            "pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value> {\n    let data = nitro::storage(\"data\");\n    data.set(\"last-payload\", &payload).await?;\n    Ok(data.get::<nitro::Value>(\"last-payload\").await?.unwrap_or_default())\n}\n",
        ),
    ]);
    let log = event_log_module(project.path());
    project.write("tasks/shared/log.rs", &log);
    project
}

#[test]
fn scheduled_tasks_fire_every_second_never_overlap_and_survive_a_panic() {
    let project = project();
    let dir = project.path();
    let dev = NitroDev::start(dir);
    assert!(
        dev.stderr().contains("1 route and 5 tasks"),
        "{}",
        dev.stderr()
    );
    // Long enough for two runs of `slow` (2.5 s each) and a skipped tick between them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_events(dir)
        .iter()
        .filter(|e| *e == "slow start")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{}",
            logged_events(dir),
            dev.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = logged_events(dir);
    let ticks = seen.iter().filter(|e| *e == "tick true").count();
    assert!(ticks >= 3, "{seen:?}");
    // Never twice at once: every start of `slow` follows the end of the one before.
    let mut running = false;
    for event in &seen {
        match event.as_str() {
            "slow start" => {
                assert!(!running, "two runs of `slow` at once: {seen:?}");
                running = true;
            }
            "slow end" => running = false,
            _ => {}
        }
    }
    let stderr = dev.stderr();
    assert!(
        stderr.contains("task `tasks/slow.rs` is still running: this run is skipped"),
        "{stderr}"
    );
    // The panic is logged with the file and its message, every second, and the server serves.
    assert!(stderr.contains("task `tasks/boom.rs` failed"), "{stderr}");
    assert!(stderr.contains("boom on schedule"), "{stderr}");
    assert_eq!(dev.get("/").text(), "up");
}

#[test]
fn nitro_task_run_runs_one_task_with_a_payload() {
    let project = project();
    let dir = project.path();
    let out = nitro()
        .args(["task", "run", "boom"])
        .arg(dir)
        .args(["--payload", r#"{"n": 1, "names": ["a"]}"#])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result,
        serde_json::json!({ "echo": { "n": 1, "names": ["a"] } })
    );

    // The guide's sample: a fresh file is kept, an old one removed.
    let scratch = dir.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(scratch.join("new.txt"), "x").unwrap();
    let old = std::fs::File::create(scratch.join("old.txt")).unwrap();
    old.set_modified(std::time::SystemTime::now() - Duration::from_secs(10 * 24 * 3600))
        .unwrap();
    drop(old);
    let payload = serde_json::json!({ "dir": scratch, "days": 7 }).to_string();
    let out = nitro()
        .args(["task", "run", "cleanup"])
        .arg(dir)
        .args(["--payload", &payload])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"removed\":1,\"older_than_days\":7}\n"
    );
    assert!(scratch.join("new.txt").exists() && !scratch.join("old.txt").exists());

    // The storage mounts of `nitro dev`: `data` is the project's `.data/kv`.
    let out = nitro()
        .args(["task", "run", "store"])
        .arg(dir)
        .args(["--payload", "[1, 2]"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[1,2]\n");
    assert!(dir.join(".data/kv/last-payload").is_file(), "{stderr}");

    // A panic: status 1, the file and the message.
    let out = nitro()
        .args(["task", "run", "boom"])
        .arg(dir)
        .args(["--payload", r#"{"scheduled_time": "now"}"#])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("task `tasks/boom.rs` failed"), "{stderr}");
    assert!(stderr.contains("boom on schedule"), "{stderr}");
    assert!(out.stdout.is_empty());

    // No such task, and a payload that is not JSON: said before any build.
    let out = nitro()
        .args(["task", "run", "nope"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no task `nope`: the tasks are `boom`, `cleanup`, `slow`, `store`, `tick`"),
        "{stderr}"
    );
    let out = nitro()
        .args(["task", "run", "boom"])
        .arg(dir)
        .args(["--payload", "{n: 1}"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`--payload` is not JSON"), "{stderr}");
}

#[test]
fn nitro_build_records_the_schedule_and_nitro_start_runs_it() {
    let project = project();
    let dir = project.path();
    nitro_build(dir);
    let manifest = output_manifest(dir);
    assert_eq!(
        manifest["config"]["scheduled_tasks"],
        serde_json::json!({ "* * * * * *": ["tick", "slow", "boom"] })
    );
    assert!(
        manifest_has(&manifest, "tasks/tick.rs", "task"),
        "{manifest}"
    );
    // `nitro start` needs nothing but the output.
    std::fs::remove_dir_all(dir.join("tasks")).unwrap();
    let mut cmd = nitro();
    cmd.arg("start")
        .arg(dir.join(".output"))
        .args(["--port", "0"]);
    let mut server = Server::start_output(cmd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logged_events(dir).iter().any(|e| e == "tick true") {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.get("/").text(), "up");
    let status = server.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status:?}\n{}", server.stderr());
}
