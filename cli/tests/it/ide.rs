//! Editors: after `nitro init`, the real rust-analyzer resolves `nitro::` and the
//! `[dependencies]` crates in route files, without any setting (it finds `.nitro/Cargo.toml`
//! by itself). `scripts/test.sh` installs it (`rustup component add rust-analyzer`).

use crate::support::*;
use std::process::Command;

/// rust-analyzer's diagnostics of every crate under `dir`: one line per diagnostic.
fn rust_analyzer_diagnostics(dir: &std::path::Path) -> String {
    let out = Command::new("rust-analyzer")
        .arg("diagnostics")
        .arg(dir)
        // Build scripts and proc macros (serde's derive) compile where the tests' routes do.
        .env("CARGO_TARGET_DIR", routes_target_dir())
        .output()
        .expect("rust-analyzer is not installed: run `rustup component add rust-analyzer`");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("diagnostic scan complete"),
        "rust-analyzer did not finish (is the component installed?):\n{text}"
    );
    text
}

#[test]
fn rust_analyzer_resolves_route_files_of_a_new_project() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let out = nitro()
        .arg("init")
        .arg(&dir)
        .args(["--template", "api"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join(".nitro/Cargo.toml").is_file(),
        "init prepares `.nitro/`"
    );

    // Route files as a user writes them (the files exist, so `.nitro/` needs no update):
    // the issue's handler, and one import that does not exist, which must be reported.
    std::fs::write(
        dir.join("routes/api/users/[id].get.rs"),
        r#"use nitro::{Request, Result};
#[derive(serde::Deserialize)] struct Filter { verbose: Option<bool> }
pub fn handler(req: &Request) -> Result<String> {
    let id: u64 = req.param_as("id")?;
    let f: Filter = req.query_as()?;
    let n: i32 = std::fs::read_to_string(nitro::assets::path("limit.txt"))?.trim().parse()?;
    Ok(format!("{id} {:?} {n}", f.verbose))
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("routes/index.get.rs"),
        "use nitro::NoSuchThing;\npub fn handler() -> &'static str { \"hi\" }\n",
    )
    .unwrap();

    let text = rust_analyzer_diagnostics(&dir);
    let routes = format!("file {}/routes/", dir.canonicalize().unwrap().display());
    let in_routes: Vec<&str> = text
        .lines()
        .flat_map(|line| line.split("at crate "))
        .filter(|d| d.contains(&routes) && !d.contains("inactive-code"))
        .collect();
    assert_eq!(in_routes.len(), 1, "{in_routes:#?}\n{text}");
    assert!(
        in_routes[0].contains("routes/index.get.rs") && in_routes[0].contains("E0432"),
        "{in_routes:#?}"
    );
}
