//! The `nitro` command: file-routed Rust servers with hot reload.
//!
//! The binary (`src/main.rs`) only calls [`run`] and turns its error into an exit code with
//! [`report`]. The layers, each using only the ones below it:
//!
//! - `commands/`: one module per command (`init`, `dev`, `build`, `start`), its arguments and
//!   its `run`; no command imports another;
//! - `serve`: the async runtime, the bind, the URL, signals and shutdown, for `dev` and
//!   `start`; `devloop/`: what `nitro dev` does after its first build (watch → rebuild →
//!   swap, the browser's error overlay);
//! - [`pipeline`]: the steps the commands and the dev loop share (scan, generate, build, load,
//!   the outcome of every route, the summary);
//! - [`project`]: a project on disk (its config, the generated workspace, the cargo runs) and
//!   [`output`]: the built `.output/` folder (manifest, writing, compression, staging);
//! - [`ui`] and `logging`: what reaches the terminal; `otel`: the OTLP export of traces and
//!   metrics, for the commands that serve.
//!
//! Only this crate prints or installs a tracing subscriber.

pub(crate) mod commands;
pub(crate) mod devloop;
pub(crate) mod logging;
pub(crate) mod otel;
pub mod output;
pub mod pipeline;
pub mod project;
pub(crate) mod serve;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) mod supervise;
pub mod ui;

/// For `benches/request_instrumentation.rs` only: not an API.
#[doc(hidden)]
pub mod __bench {
    use crate::logging::{BenchLines, LogFormat};

    /// Installs the subscriber `nitro start` installs (human or JSON lines) at its default
    /// level with the request log on (`log`), or at `warn` without it (`-q`); the request log's
    /// lines collect in memory instead of going to stderr.
    pub fn install_log(json: bool, log: bool) -> Lines {
        let lines = BenchLines::new();
        let format = if json {
            LogFormat::Json
        } else {
            LogFormat::Human
        };
        lines.install(format, log);
        Lines(lines)
    }

    /// Request log lines kept in memory.
    #[derive(Debug)]
    pub struct Lines(BenchLines);

    impl Lines {
        /// Empties them; the bytes they held.
        pub fn drain(&self) -> usize {
            self.0.drain()
        }
    }
}

#[cfg(test)]
mod report_tests;
#[cfg(test)]
mod test_util;

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{build, dev, doc, init, start, task, test};

/// File-routed Rust servers: one Rust file per route, compiled and hot-reloaded.
#[derive(Debug, Parser)]
#[command(name = "nitro", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More output: `-v` debug logs of nitro, `-vv` of everything, `-vvv` trace.
    /// `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less output: only errors, warnings and the URL.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// The format of the log on stderr: `human` lines, or `json` (one object per line, for log
    /// collectors; fields in docs/deploy.md).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "NITRO_LOG_FORMAT",
        default_value_t
    )]
    pub log_format: logging::LogFormat,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build every route and serve the project for development.
    Dev(dev::DevArgs),
    /// Build every route for release into a self-contained `.output/` folder.
    Build(build::BuildArgs),
    /// Serve a built `.output/` (no cargo or sources needed).
    #[command(visible_alias = "preview")]
    Start(start::StartArgs),
    /// Create a new project from a template.
    Init(init::InitArgs),
    /// Run the `#[test]` functions of the route files.
    Test(test::TestArgs),
    /// Run a task of `tasks/` once.
    Task(task::TaskArgs),
    /// Build and open the API docs of the `nitro` crate that routes use.
    Doc(doc::DocArgs),
}

/// Parses the command line and runs the command. Returns the process exit code; an error is
/// for [`report`].
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    logging::init(
        cli.verbose,
        cli.quiet,
        cli.log_format,
        serves_here(&cli.command),
    );
    let ui = ui::Ui::new(cli.quiet).with_json_logs(cli.log_format == logging::LogFormat::Json);
    let result = match &cli.command {
        Command::Dev(args) => dev::run(args, &ui),
        Command::Build(args) => build::run(args, &ui),
        Command::Start(args) => start::run(args, &ui),
        Command::Init(args) => init::run(args, &ui),
        Command::Test(args) => test::run(args, &ui),
        Command::Task(args) => task::run(args, &ui),
        Command::Doc(args) => doc::run(args, &ui),
    };
    otel::shutdown();
    logging::flush();
    result
}

/// Whether this process serves HTTP, and so exports its spans when asked to: `nitro start`
/// without `--supervise`, and the server of `nitro dev` (the supervised child, or the one
/// process under `--no-supervise`), not their supervisors.
fn serves_here(command: &Command) -> bool {
    match command {
        Command::Start(args) => !args.supervise,
        Command::Dev(args) => args.no_supervise || is_supervised_server(),
        _ => false,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_supervised_server() -> bool {
    std::env::var_os(supervise::CALL_RECORD_ENV).is_some()
}

/// Elsewhere `nitro dev` serves in its one process.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_supervised_server() -> bool {
    true
}

/// Formats an error for the terminal: `error: …`, each cause as `  caused by: …`, then the
/// `hint: …` of the first typed error in the chain that has one.
pub fn report(error: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut lines = error.to_string();
    if lines.is_empty() {
        lines = "unknown error".into();
    }
    let _ = writeln!(out, "error: {lines}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    if let Some(hint) = hint(error) {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

/// The hint of the first error in the chain that has one. Every error type with a `hint`
/// method is listed here (a test fails when one is not).
fn hint(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|e| {
        hint_of::<project::config::ConfigError>(e, |e| e.hint())
            .or_else(|| hint_of::<project::codegen::CodegenError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::cargo_build::BuildError>(e, |e| e.hint()))
            .or_else(|| hint_of::<pipeline::PipelineError>(e, |e| e.hint()))
            .or_else(|| hint_of::<build::BuildFailed>(e, |e| e.hint()))
            .or_else(|| hint_of::<output::manifest::OutputError>(e, |e| e.hint()))
            .or_else(|| hint_of::<start::StartError>(e, |e| e.hint()))
            .or_else(|| hint_of::<init::InitError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::config_pubsub::PubSubConfigError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::config_runtime::RuntimeConfigError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::config_tasks::ScheduledTasksError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::config_storage::StorageConfigError>(e, |e| e.hint()))
            .or_else(|| hint_of::<project::config_rules::RuleConfigError>(e, |e| e.hint()))
            .or_else(|| {
                hint_of::<project::config_observability::ObservabilityConfigError>(e, |e| e.hint())
            })
    })
}

fn hint_of<E: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
    hint: impl Fn(&E) -> Option<String>,
) -> Option<String> {
    error.downcast_ref::<E>().and_then(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_arguments() {
        let cli = Cli::try_parse_from(["nitro", "dev"]).unwrap();
        let Command::Dev(args) = &cli.command else {
            panic!("not dev")
        };
        assert_eq!(args.dir, std::path::PathBuf::from("."));
        assert_eq!((args.port, args.host.as_deref()), (None, None));

        let cli = Cli::try_parse_from([
            "nitro",
            "dev",
            "examples/websocket",
            "--port",
            "0",
            "--host",
            "0.0.0.0",
            "-vv",
        ])
        .unwrap();
        let Command::Dev(args) = &cli.command else {
            panic!("not dev")
        };
        assert_eq!(args.dir, std::path::PathBuf::from("examples/websocket"));
        assert_eq!(args.port, Some(0));
        assert_eq!(args.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(cli.verbose, 2);

        assert!(Cli::try_parse_from(["nitro", "dev", "--port", "http"]).is_err());
        assert!(Cli::try_parse_from(["nitro", "dev", "-q", "-v"]).is_err());
        assert!(Cli::try_parse_from(["nitro", "-q", "dev"]).unwrap().quiet);
    }

    #[test]
    fn build_start_init_arguments() {
        let cli = Cli::try_parse_from(["nitro", "build"]).unwrap();
        assert!(matches!(&cli.command, Command::Build(a) if a.dir == std::path::Path::new(".")));

        for name in ["start", "preview"] {
            let cli = Cli::try_parse_from(["nitro", name, "out", "-p", "0", "--host", "::1", "-q"])
                .unwrap();
            let Command::Start(args) = &cli.command else {
                panic!("{name} is not start")
            };
            assert_eq!(args.output.as_deref(), Some(std::path::Path::new("out")));
            assert_eq!((args.port, args.host.as_deref()), (Some(0), Some("::1")));
            assert!(cli.quiet);
        }
        let cli = Cli::try_parse_from(["nitro", "start"]).unwrap();
        assert!(matches!(&cli.command, Command::Start(a) if a.output.is_none()));

        let cli = Cli::try_parse_from(["nitro", "init", "app", "-t", "api", "--force"]).unwrap();
        let Command::Init(args) = &cli.command else {
            panic!("not init")
        };
        assert_eq!(args.template, init::Template::Api);
        assert!(args.force);
        let cli = Cli::try_parse_from(["nitro", "init"]).unwrap();
        assert!(
            matches!(&cli.command, Command::Init(a) if a.template == init::Template::Websocket && !a.force)
        );
        assert!(Cli::try_parse_from(["nitro", "init", "--template", "vite"]).is_err());
    }

    #[test]
    fn report_has_error_causes_and_hint() {
        let inner = project::config::ConfigError::EnvPort { value: "x".into() };
        let error = anyhow::Error::new(inner).context("cannot start the dev server");
        assert_eq!(
            report(&error),
            "error: cannot start the dev server\n  caused by: environment variable `PORT` is `x`, which is not a port number (0 to 65535)\nhint: unset `PORT`, or pass `--port`, which wins over it\n"
        );
        let plain: anyhow::Result<()> = Err(anyhow::anyhow!("plain"));
        let plain = plain.context("outer").unwrap_err();
        assert_eq!(report(&plain), "error: outer\n  caused by: plain\n");
    }
}
