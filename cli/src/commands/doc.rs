//! `nitro doc`: the API docs of the `nitro` crate that this `nitro` builds routes against,
//! built from the sources it embeds (no clone of nitro-rs needed), and opened in a browser.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;

use crate::pipeline;
use crate::project::cargo_build::cargo_program;
use crate::project::config::{self, Overrides};
use crate::ui::Ui;

/// Arguments of `nitro doc`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DocArgs {
    /// The project folder (its `.nitro/` holds the sources the docs are built from).
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// Build the docs and print where they are, without opening a browser.
    #[arg(long)]
    pub(crate) no_open: bool,
}

/// Runs `nitro doc`.
pub(crate) fn run(args: &DocArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = config::load_with_env(
        &args.dir,
        &Overrides::default(),
        &config::Env::from_process(),
    )?;
    let table = pipeline::scan(&config)?;
    let generated = pipeline::generate_checked(&config, &table, ui)?;
    let mut cmd = Command::new(cargo_program());
    cmd.arg("doc")
        .arg("--manifest-path")
        .arg(&generated.manifest_path)
        .arg("--target-dir")
        .arg(&config.target_dir)
        .args(["-p", "nitro", "--no-deps"]);
    if !args.no_open {
        cmd.arg("--open");
    }
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo: {e}"))?;
    if !status.success() {
        ui.error("cargo could not build the docs (its errors are above)");
        return Ok(ExitCode::FAILURE);
    }
    ui.data(&format!(
        "  {}",
        config.target_dir.join("doc/nitro/index.html").display()
    ));
    Ok(ExitCode::SUCCESS)
}
