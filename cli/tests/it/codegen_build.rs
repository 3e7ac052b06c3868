//! Generates `.nitro/` for a temporary project and builds it with the real cargo.
//!
//! The route crates build in `<workspace>/target/nitro-test-routes-codegen`, not in the
//! `nitro-test-routes` that the other tests share: this test checks which artifacts cargo
//! reports `fresh`, and in one test binary the other tests' builds run at the same time (before
//! the binaries were merged they ran one binary after the other). Dependencies compile once
//! per target dir, not once per project.

use std::path::PathBuf;
use std::sync::Mutex;

use nitro_cli::pipeline;
use nitro_cli::project::cargo_build::Silent;
use nitro_cli::project::codegen;
use nitro_cli::project::config::{Env, Overrides, ResolvedConfig, resolve};

use crate::support::{Project, routes_target_dir};

/// Held by the tests of this module that run cargo: the `panic = "abort"` build would replace
/// dependencies under the other's routes.
static CARGO: Mutex<()> = Mutex::new(());

/// Where this module's route crates build (see the module docs).
fn target_dir() -> PathBuf {
    routes_target_dir().with_file_name("nitro-test-routes-codegen")
}

/// A temporary project with the given files, and its config.
fn project(files: &[(&str, &str)]) -> (Project, ResolvedConfig) {
    let project = Project::with_files(files);
    let dir = std::fs::canonicalize(project.path()).unwrap();
    let text = std::fs::read_to_string(dir.join("nitro.toml")).ok();
    let env = Env {
        target_dir: Some(target_dir()),
        ..Env::default()
    };
    let config = resolve(&dir, &dir, text.as_deref(), &env, &Overrides::default()).unwrap();
    (project, config)
}

const HELLO: &str = r#"
use nitro::Request;

pub fn handler(req: &Request) -> String {
    format!("hello {}", req.param("name").unwrap_or("world"))
}
"#;

const CHAT: &str = r#"
use nitro::ws::{Message, Peer};

pub fn open(peer: &Peer) {
    peer.subscribe("chat");
}

pub fn message(peer: &Peer, message: &Message) {
    peer.publish("chat", message.text());
}
"#;

const BROKEN: &str = r#"pub fn handler() -> String {
    let n: u32 = "not a number";
    n.to_string()
}
"#;

#[test]
fn builds_http_and_websocket_routes_and_reports_errors_in_user_terms() {
    let _cargo = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, config) = project(&[
        ("nitro.toml", "[dependencies]\nserde_json = \"1\"\n"),
        ("routes/hello/[name].rs", HELLO),
        ("routes/_ws.rs", CHAT),
        ("routes/broken.rs", BROKEN),
    ]);
    let table = pipeline::scan(&config).unwrap();
    let generated = codegen::generate(&config, &table).unwrap();
    assert!(generated.problems.is_empty(), "{:?}", generated.problems);
    assert!(generated.warnings.is_empty(), "{:?}", generated.warnings);

    let nitro_dir = config.project_dir.join(".nitro");
    assert_eq!(
        std::fs::read_to_string(nitro_dir.join(".gitignore")).unwrap(),
        "*\n"
    );
    let ws = generated.route("routes/_ws.rs").unwrap();
    let lib = std::fs::read_to_string(
        nitro_dir
            .join("routes")
            .join(&ws.crate_name)
            .join("src/lib.rs"),
    )
    .unwrap();
    assert!(
        lib.contains("http: _, upgrade: _, open: open, message: message, close: _, error: _"),
        "{lib}"
    );

    let report = pipeline::build(&config, &generated, &generated.routes, false, &Silent).unwrap();
    assert!(!report.success);

    for file in ["routes/hello/[name].rs", "routes/_ws.rs"] {
        let artifact = report
            .artifacts
            .get(file)
            .unwrap_or_else(|| panic!("no artifact for {file}: {report:#?}"));
        assert!(artifact.path.is_file(), "{}", artifact.path.display());
        assert!(
            artifact
                .path
                .starts_with(target_dir().canonicalize().unwrap())
                || artifact.path.starts_with(target_dir()),
            "{}",
            artifact.path.display()
        );
        let name = artifact.path.file_name().unwrap().to_string_lossy();
        assert!(
            name.contains(&generated.route(file).unwrap().crate_name),
            "{name}"
        );
    }

    let broken = &report.failed["routes/broken.rs"];
    assert!(broken.errors >= 1);
    let plain = broken.plain();
    assert!(plain.contains("--> routes/broken.rs:2:18"), "{plain}");
    assert!(!plain.contains(".nitro"), "{plain}");
    assert!(
        !plain.contains(&*config.project_dir.to_string_lossy()),
        "{plain}"
    );

    // Rebuilding only the fixed route: everything else stays fresh, and nothing is rewritten.
    std::fs::write(
        config.project_dir.join("routes/broken.rs"),
        "pub fn handler() -> String { 7.to_string() }\n",
    )
    .unwrap();
    let again = codegen::generate(&config, &table).unwrap();
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    let fixed = [again.route("routes/broken.rs").unwrap().clone()];
    let report = pipeline::build(&config, &again, &fixed, false, &Silent).unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(report.artifacts.len(), 1);
    assert!(!report.artifacts["routes/broken.rs"].fresh);

    let all = pipeline::build(&config, &again, &again.routes, false, &Silent).unwrap();
    assert!(all.success);
    assert!(all.artifacts.values().all(|a| a.fresh), "{all:#?}");
}

#[test]
fn a_missing_handler_is_reported_before_cargo_runs() {
    let (_tmp, config) = project(&[("routes/nothing.rs", "pub fn other() {}\n")]);
    let table = pipeline::scan(&config).unwrap();
    let generated = codegen::generate(&config, &table).unwrap();
    assert_eq!(
        generated.problems[0].to_string(),
        "route file `routes/nothing.rs` has no `pub fn handler`: add `pub fn handler(req: &nitro::Request) -> impl nitro::IntoResponse`"
    );
    assert!(generated.routes.is_empty());
}

/// Issue #5: a route built with `panic = "abort"` would take the whole server down on its
/// first panic; the route crate refuses to build, however the setting came in (here the
/// environment, which cargo lets override the generated profile).
#[test]
fn a_route_built_with_panic_abort_is_refused() {
    let _cargo = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, config) = project(&[("routes/hello/[name].rs", HELLO)]);
    let table = pipeline::scan(&config).unwrap();
    let generated = codegen::generate(&config, &table).unwrap();
    let route = generated.route("routes/hello/[name].rs").unwrap();
    let output = std::process::Command::new(nitro_cli::project::cargo_build::cargo_program())
        .arg("build")
        .arg("--manifest-path")
        .arg(config.project_dir.join(".nitro/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir())
        .args(["-p", &route.crate_name])
        .env("CARGO_PROFILE_DEV_PANIC", "abort")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("route `routes/hello/[name].rs` is being built with `panic = \"abort\"`"),
        "{stderr}"
    );
}
