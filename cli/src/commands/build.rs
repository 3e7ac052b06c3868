//! `nitro build`: release builds of every route, then a self-contained `.output/`.
//!
//! The steps of [`crate::pipeline`] up to the build, with `--release`. Any route that fails
//! stops the build with rustc's diagnostics, before anything is written. The output
//! ([`crate::output::write`]) goes to a staging folder and is renamed into place only when
//! complete ([`crate::output::staging`]), so a failed or interrupted build never leaves a
//! half-written `.output/` where a good one was.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use crate::output::manifest as output;
use crate::output::staging::{remove_stale_staging, replace_dir};
use crate::output::write::write_output;
use crate::pipeline::{self, Loaded, Outcome};
use crate::project::config::{self, Overrides};
use crate::ui::Ui;

/// Arguments of `nitro build`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildArgs {
    /// The project folder. The output goes to `DIR/.output/`.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
}

/// Why `nitro build` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildFailed {
    #[error("{} did not compile{}", routes(.failed), kept_note(.kept))]
    Routes { failed: Vec<String>, kept: bool },
    #[error("cannot write the output `{}`{}", .path.display(), kept_note(.kept))]
    Write {
        path: PathBuf,
        kept: bool,
        #[source]
        source: io::Error,
    },
}

fn routes(files: &[String]) -> String {
    let quoted: Vec<String> = files.iter().map(|f| format!("`{f}`")).collect();
    match quoted.len() {
        1 => format!("route {}", quoted[0]),
        _ => format!("routes {}", quoted.join(", ")),
    }
}

fn kept_note(kept: &bool) -> &'static str {
    if *kept {
        ": the previous `.output/` is unchanged"
    } else {
        ""
    }
}

impl BuildFailed {
    /// What to do about it.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            BuildFailed::Routes { .. } => Some(
                "fix the errors above; `nitro dev` shows them too, and serves the other routes meanwhile".into(),
            ),
            BuildFailed::Write { .. } => None,
        }
    }
}

/// Runs `nitro build`.
pub(crate) fn run(args: &BuildArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The address settings, the pub/sub URL and the `[runtime_config]` overrides do not matter
    // to a build (`nitro start` reads its own): the output records the defaults.
    let env = config::Env {
        port: None,
        host: None,
        pubsub_url: None,
        vars: Default::default(),
        ..config::Env::from_process()
    };
    let config = config::load_with_env(&args.dir, &Overrides::default(), &env)?;
    for warning in config
        .warnings
        .iter()
        .filter(|w| !w.contains("every interface"))
    {
        ui.warn(warning);
    }
    let table = pipeline::scan(&config)?;
    let generated = pipeline::generate_checked(&config, &table, ui)?;
    let output_dir = config.project_dir.join(output::OUTPUT_DIR);
    let display_output = config.display_dir.join(output::OUTPUT_DIR);

    let report = pipeline::build_all(&config, &generated, true, ui)?;
    // Nothing is loaded: a route that built is `Unchanged`, one that did not is `Failed`.
    let outcomes = pipeline::outcomes(&table, &generated, &report, &Loaded::new());
    let mut failed: Vec<String> = Vec::new();
    for route in &generated.routes {
        pipeline::show_diagnostics(&route.file, &report, ui);
        if matches!(outcomes.get(&route.file), Some(Outcome::Failed(_))) {
            failed.push(route.file.clone());
        }
    }
    if !failed.is_empty() {
        return Err(BuildFailed::Routes {
            failed,
            kept: output_dir.exists(),
        }
        .into());
    }
    let build_time = started.elapsed();

    remove_stale_staging(&config.project_dir);
    let staging = config
        .project_dir
        .join(format!(".output.tmp-{}", std::process::id()));
    let written = write_output(&config, &table, &generated, &report, &staging)
        .and_then(|sizes| replace_dir(&staging, &output_dir).map(|()| sizes));
    let sizes = match written {
        Ok(sizes) => sizes,
        Err((path, source)) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(BuildFailed::Write {
                path,
                kept: output_dir.exists(),
                source,
            }
            .into());
        }
    };

    ui.status(&format!(
        "{} built {} in {:.1} s (cargo {:.1} s), output `{}`",
        ui.paint("✔", "32"),
        pipeline::table_text(&table),
        started.elapsed().as_secs_f64(),
        build_time.as_secs_f64(),
        display_output.display()
    ));
    for line in sizes.lines() {
        ui.status(&line);
    }
    ui.data(&format!(
        "  ➜ Run it: nitro start {}   (or {}/server/nitro start)",
        display_output.display(),
        display_output.display()
    ));
    Ok(ExitCode::SUCCESS)
}
