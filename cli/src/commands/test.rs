//! `nitro test`: runs the `#[test]` functions written in route files, reported by route file.
//!
//! Each route file is the crate root of its IDE crate (`crate::project::ide`), so its tests
//! are that crate's unit tests: `cargo test` compiles them all at once, then runs them one
//! route file at a time, and the summary names the files whose tests failed. `nitro::assets`
//! reads the project's `assets/` (through `NITRO_ASSETS_DIR`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;

use crate::pipeline;
use crate::project::cargo_build::cargo_program;
use crate::project::codegen::Generated;
use crate::project::config::{self, Overrides, ResolvedConfig};
use crate::project::ide::ide_crate_name;
use crate::ui::{Ui, plural};

/// Arguments of `nitro test`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TestArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// Arguments for the test harness after `--`, as with `cargo test` (a name filter,
    /// `--nocapture`, …).
    #[arg(last = true)]
    pub(crate) harness: Vec<OsString>,
}

/// Runs `nitro test`: exit status 0 when every route file's tests pass.
pub(crate) fn run(args: &TestArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = config::load_with_env(
        &args.dir,
        &Overrides::default(),
        &config::Env::from_process(),
    )?;
    let table = pipeline::scan(&config)?;
    let generated = pipeline::generate_checked(&config, &table, ui)?;
    if generated.routes.is_empty() {
        ui.warn(&format!(
            "no route files in `{}`: nothing to test",
            config.display_dir.join("routes").display()
        ));
        return Ok(ExitCode::SUCCESS);
    }

    // One compile of every route's tests; a compile error is reported by cargo and stops here.
    ui.status(&format!(
        "  compiling the tests of {}…",
        plural(generated.routes.len(), "route file")
    ));
    let all: Vec<&str> = generated
        .routes
        .iter()
        .map(|r| r.crate_name.as_str())
        .collect();
    let status = cargo_test(&config, &generated, &all, &["--no-run".into()])
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo: {e}"))?;
    if !status.success() {
        ui.error("the tests of the routes did not compile (the errors are above)");
        return Ok(ExitCode::FAILURE);
    }

    let mut failed = Vec::new();
    for route in &generated.routes {
        ui.status(&format!("  testing {}", route.file));
        let mut extra: Vec<OsString> = vec!["--".into(), "--color=never".into()];
        extra.extend(args.harness.iter().cloned());
        let status = cargo_test(&config, &generated, &[route.crate_name.as_str()], &extra)
            .arg("-q")
            .status()
            .map_err(|e| anyhow::anyhow!("cannot run cargo: {e}"))?;
        if !status.success() {
            failed.push(route.file.clone());
        }
    }
    if failed.is_empty() {
        ui.status(&format!(
            "{} the tests of {} passed",
            ui.paint("✔", "32"),
            plural(generated.routes.len(), "route file")
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        for file in &failed {
            ui.error(&format!("the tests of `{file}` failed"));
        }
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo test` over the IDE crates of `crates` (route crate names), with `extra` arguments.
fn cargo_test(
    config: &ResolvedConfig,
    generated: &Generated,
    crates: &[&str],
    extra: &[OsString],
) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.arg("test")
        .arg("--manifest-path")
        .arg(&generated.manifest_path)
        .arg("--target-dir")
        .arg(&config.target_dir)
        .arg("--lib");
    for name in crates {
        cmd.arg("-p").arg(ide_crate_name(name));
    }
    cmd.args(extra).env("NITRO_ASSETS_DIR", config.assets_dir());
    cmd
}
