//! `nitro task run NAME [DIR] [--payload JSON]`: builds one task of the project the way `nitro
//! dev` builds it (debug, the same `.nitro/` and target folder, so a warm dev cache makes it
//! quick), loads it in this process with the project's `[runtime_config]` and storage mounts,
//! runs it once and prints its result as JSON on stdout. A running `nitro dev` or `nitro start`
//! is not needed and not contacted: the run is this process's, so it does not count as "running" for the
//! server's scheduler.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use nitro_runtime::tasks::{TaskError, Tasks};
use nitro_runtime::{App, Hub, RouteEntry};

use crate::pipeline;
use crate::project::config::{self, Overrides};
use crate::ui::Ui;

/// Arguments of `nitro task`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TaskArgs {
    #[command(subcommand)]
    pub(crate) command: TaskCommand,
}

/// What `nitro task` does.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum TaskCommand {
    /// Build one task (`tasks/NAME.rs`) like `nitro dev`, run it once, print its result as
    /// JSON.
    Run(RunArgs),
}

/// Arguments of `nitro task run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The task: the file name in `tasks/` without `.rs` (`cleanup` is `tasks/cleanup.rs`).
    pub(crate) name: String,

    /// The project folder.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// The payload `run` gets, as JSON.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub(crate) payload: String,
}

/// Runs `nitro task`.
pub(crate) fn run(args: &TaskArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    match &args.command {
        TaskCommand::Run(args) => run_one(args, ui),
    }
}

fn run_one(args: &RunArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .with_context(|| format!("`--payload` is not JSON: `{}`", args.payload))?;
    let config = config::load_with_env(
        &args.dir,
        &Overrides::default(),
        &config::Env::from_process(),
    )?;
    let table = pipeline::scan(&config)?;
    let Some(task) = table.task(&args.name) else {
        return Err(TaskError::Unknown {
            name: args.name.clone(),
            known: table
                .tasks()
                .iter()
                .filter_map(|t| nitro_router::task_name(&t.file))
                .map(str::to_owned)
                .collect(),
        }
        .into());
    };
    let file = task.file.clone();
    let generated = pipeline::generate_checked(&config, &table, ui)?;
    let krate = generated
        .routes
        .iter()
        .find(|r| r.file == file)
        .cloned()
        .with_context(|| format!("no crate was generated for `{file}`"))?;
    ui.status(&format!("  building `{file}`…"));
    let report = pipeline::build(
        &config,
        &generated,
        std::slice::from_ref(&krate),
        false,
        pipeline::progress(ui).as_ref(),
    )?;
    if pipeline::show_diagnostics(&file, &report, ui) || !report.artifacts.contains_key(&file) {
        anyhow::bail!("task `{file}` did not build (its errors are above)");
    }

    let hub = Hub::new();
    hub.runtime_config().set(&config.runtime_config);
    // The storage mounts as `nitro dev` opens them: the `data` mount and `fs` mounts are the
    // project's files (a `memory` mount is this process's own, empty).
    pipeline::open_storage(&hub, &config)?;
    let mut loaded = pipeline::load(
        &report,
        &hub,
        &config.assets_dir(),
        &pipeline::cache_dir(&config),
        |built, _| built != file,
    );
    let module = loaded
        .remove(&file)
        .with_context(|| format!("`{file}` was built but not found"))?
        .with_context(|| format!("cannot load `{file}`"))?;
    let app = App::new(
        table,
        HashMap::from([(file.clone(), RouteEntry::Loaded(module))]),
    );
    ui.status(&format!("  running `{file}`…"));
    let result = tokio_block_on(Tasks::new().run(&app, &args.name, &payload.to_string()))?;
    drop(app);
    // Let the task's library stop its runtime (its `nitro::state` dropped) before exiting.
    nitro_runtime::loader::wait_retired(Duration::from_secs(5));
    let result = result?;
    println!("{result}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `future` on a small runtime of its own (the task has its own for its work).
fn tokio_block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}
