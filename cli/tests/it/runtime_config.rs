//! `[runtime_config]` end to end (issue #12): typed reads from a route, `NITRO_*` overrides of
//! each type, a bad override refused at start, an edit applied by `nitro dev` without a
//! rebuild, and overrides applied by `nitro start` on a copied `.output` with no sources.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

const NITRO_TOML: &str = r#"[dependencies]
serde = { version = "1", features = ["derive"] }

[runtime_config]
greeting = "hello"
count = 2
beta = false
ratio = 0.5
hosts = ["a"]

[runtime_config.database]
pool_size = 4
"#;

const SETTINGS_ROUTE: &str = r#"#[derive(serde::Deserialize)]
struct Database {
    pool_size: u32,
}

#[derive(serde::Deserialize)]
struct Settings {
    greeting: String,
    count: i64,
    beta: bool,
    ratio: f64,
    hosts: Vec<String>,
    database: Database,
}

pub fn handler() -> nitro::Result<String> {
    let s: Settings = nitro::config()?;
    Ok(format!(
        "{} {} {} {} {} {}",
        s.greeting,
        s.count,
        s.beta,
        s.ratio,
        s.hosts.join(","),
        s.database.pool_size
    ))
}
"#;

/// A route that reads the config as a `Value`.
const VALUE_ROUTE: &str = r#"pub fn handler() -> nitro::Json<nitro::Value> {
    nitro::Json((*nitro::config_value()).clone())
}
"#;

fn project() -> Project {
    Project::with_files(&[
        ("nitro.toml", NITRO_TOML),
        ("routes/settings.get.rs", SETTINGS_ROUTE),
        ("routes/value.get.rs", VALUE_ROUTE),
    ])
}

/// Every override, one per type.
const OVERRIDES: [(&str, &str); 6] = [
    ("NITRO_GREETING", "hi there"),
    ("NITRO_COUNT", "-7"),
    ("NITRO_BETA", "true"),
    ("NITRO_RATIO", "1.25"),
    ("NITRO_HOSTS", r#"["x", "y"]"#),
    ("NITRO_DATABASE_POOL_SIZE", "16"),
];

fn dev(dir: &Path, env: &[(&str, &str)]) -> NitroDev {
    let mut cmd = nitro();
    cmd.arg("dev")
        .arg(dir)
        .args(["--port", "0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wait_for_url(cmd.spawn().unwrap(), "nitro dev", Duration::from_secs(600))
}

#[test]
fn dev_reads_defaults_and_applies_an_edit_of_nitro_toml_without_a_rebuild() {
    let project = project();
    let dev = dev(project.path(), &[]);
    let first = dev.get("/settings");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.text(), "hello 2 false 0.5 a 4");
    assert_eq!(
        dev.get("/value").json(),
        serde_json::json!({
            "greeting": "hello", "count": 2, "beta": false, "ratio": 0.5, "hosts": ["a"],
            "database": { "pool_size": 4 }
        })
    );

    let builds = dev.stderr_count("built");
    project.write(
        "nitro.toml",
        &NITRO_TOML.replace("\"hello\"", "\"bonjour\""),
    );
    assert!(
        dev.wait_stderr("`[runtime_config]` applied", Duration::from_secs(60)),
        "{}",
        dev.stderr()
    );
    assert_eq!(dev.get("/settings").text(), "bonjour 2 false 0.5 a 4");
    assert_eq!(dev.stderr_count("built"), builds, "{}", dev.stderr());
}

#[test]
fn dev_applies_env_overrides_of_each_type() {
    let project = project();
    let dev = dev(project.path(), &OVERRIDES);
    assert_eq!(
        dev.get("/settings").text(),
        "hi there -7 true 1.25 x,y 16",
        "{}",
        dev.stderr()
    );
}

#[test]
fn a_bad_override_is_refused_at_start_naming_the_variable_and_the_type() {
    let project = project();
    let out = nitro()
        .arg("dev")
        .arg(project.path())
        .args(["--port", "0"])
        .env("NITRO_DATABASE_POOL_SIZE", "lots")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`NITRO_DATABASE_POOL_SIZE`"), "{stderr}");
    assert!(stderr.contains("`lots`"), "{stderr}");
    assert!(stderr.contains("an integer"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn start_applies_overrides_on_a_copied_output_without_sources() {
    let project = project();
    let out = nitro()
        .arg("build")
        .arg(project.path())
        // The builder's overrides are not baked into the output.
        .env("NITRO_GREETING", "from the build machine")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let work = tempfile::Builder::new()
        .prefix("nitro-test-")
        .tempdir()
        .unwrap();
    let deployed = work.path().join("srv-app");
    copy_dir(&project.path().join(".output"), &deployed);
    drop(project);

    let server = Server::start_output(start_deployed(&deployed, work.path(), &[]));
    assert_eq!(server.get("/settings").text(), "hello 2 false 0.5 a 4");
    drop(server);

    let server = Server::start_output(start_deployed(&deployed, work.path(), &OVERRIDES));
    assert_eq!(
        server.get("/settings").text(),
        "hi there -7 true 1.25 x,y 16",
        "{}",
        server.stderr()
    );
    drop(server);

    let out = start_deployed(&deployed, work.path(), &[("NITRO_BETA", "yes")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`NITRO_BETA`"), "{stderr}");
    assert!(stderr.contains("a boolean"), "{stderr}");
}
