//! `nitro dev`: build every route, serve the project, stop on Ctrl-C or SIGTERM.
//!
//! The steps of [`crate::pipeline`] (scan, generate, build, load, outcomes), then
//! [`crate::serve`] with a dev client attached, and the dev loop ([`crate::devloop`]) on its own
//! thread: it owns everything that changes afterwards.
//!
//! On Linux all of that runs in a child process under [`crate::supervise`] (unless
//! `--no-supervise`): a route that aborts, overflows its stack, segfaults or calls
//! `std::process::exit` ends that process, and this one says which route was running and
//! starts it again on the last good build (cargo's build is then a no-op). The restarted
//! server shows the crash in the page overlay ([`DEV_CRASH_ENV`]). Port 0 is resolved here,
//! once, so a restarted server listens where the first one did ([`DEV_PORT_ENV`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nitro_runtime::{App, Hub, ServerConfig};

use crate::devloop::reload::DevLoop;
use crate::devloop::watch::Watcher;
use crate::pipeline;
use crate::project::config::{self, Overrides, ResolvedConfig};
use crate::project::config_pubsub;
use crate::serve::{self, Mode};
use crate::ui::Ui;

/// Arguments of `nitro dev`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DevArgs {
    /// The project folder: the one holding `routes/` (and optionally `nitro.toml`,
    /// `index.html`, `public/`).
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// Port to listen on; 0 picks a free one. Wins over `PORT` and `[dev] port` (default 3000).
    #[arg(long, short = 'p')]
    pub(crate) port: Option<u16>,

    /// Address to listen on. Wins over `HOST` and `[dev] host` (default 127.0.0.1, this
    /// machine only; 0.0.0.0 is every interface).
    #[arg(long)]
    pub(crate) host: Option<String>,

    /// Run the server in this process. By default (on Linux) it runs in a child process that
    /// is started again when a route crashes it (an abort, a stack overflow, a segfault,
    /// `std::process::exit`); without supervision such a crash ends `nitro dev`.
    #[arg(long)]
    pub(crate) no_supervise: bool,
}

/// Set by the supervising `nitro dev` for its server: the port the first server was given
/// when the user asked for port 0, so that a restarted one listens on the same port.
pub(crate) const DEV_PORT_ENV: &str = "NITRO_DEV_PORT";

/// Set by the supervising `nitro dev` for a restarted server: what ended the last one.
pub(crate) const DEV_CRASH_ENV: &str = "NITRO_DEV_CRASH";

/// Runs the server of `nitro dev` in a supervised child process (this same command).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn supervised(overrides: &Overrides, args: &DevArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("cannot find this program to run the server")?;
    let mut env = Vec::new();
    let config = config::load(&args.dir, overrides)?;
    if config.addr.port() == 0 {
        let listener = std::net::TcpListener::bind(config.addr)
            .with_context(|| format!("cannot find a free port on {}", config.addr.ip()))?;
        let port = listener.local_addr()?.port();
        env.push((
            OsString::from(DEV_PORT_ENV),
            OsString::from(port.to_string()),
        ));
    }
    let mut child = crate::supervise::Child::new(&exe, std::env::args_os().skip(1).collect());
    child.env = env;
    child.crash_env = Some(DEV_CRASH_ENV);
    crate::supervise::run(ui, &child, crate::supervise::Budget::dev())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn supervised(overrides: &Overrides, args: &DevArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    serve_here(overrides.clone(), args, ui, None)
}

/// Runs `nitro dev` until Ctrl-C or SIGTERM.
pub(crate) fn run(args: &DevArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let mut overrides = Overrides {
        port: args.port,
        host: args.host.clone(),
    };
    let Some(record) = crate::supervise::supervised_server() else {
        if args.no_supervise {
            return serve_here(overrides, args, ui, None);
        }
        return supervised(&overrides, args, ui);
    };
    if let Some(port) = std::env::var(DEV_PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
    {
        overrides.port = Some(port);
    }
    serve_here(overrides, args, ui, Some(record))
}

/// Builds, serves and watches in this process; `record` is the supervisor's call record.
fn serve_here(
    overrides: Overrides,
    args: &DevArgs,
    ui: &Ui,
    record: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = config::load(&args.dir, &overrides)?;
    tracing::debug!(target: "nitro::cli", "config: {config}");
    for warning in &config.warnings {
        ui.warn(warning);
    }
    // A taken port is said before a build that may take minutes.
    serve::check_addr(config.addr)?;
    // `[websocket] pubsub` needs a URL when serving: say so now, not after the build.
    let pubsub = config
        .pubsub
        .as_ref()
        .map(|settings| {
            settings.runtime(
                config_pubsub::env_url().as_deref(),
                &config.display_config_file().display().to_string(),
            )
        })
        .transpose()?;

    // Before the first build, so that edits made while it runs are not missed.
    let watcher = match Watcher::start(&config.project_dir) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            ui.warn(&format!(
                "cannot watch `{}` for changes ({error}): restart `nitro dev` after each edit",
                config.display_dir.display()
            ));
            None
        }
    };

    let table = pipeline::scan(&config)?;
    if table.is_empty() {
        ui.warn(&format!(
            "no route files in `{}`: serving only `public/` and `index.html`",
            config.display_dir.join("routes").display()
        ));
    }
    let generated = pipeline::generate_checked(&config, &table, ui)?;

    let report = pipeline::build_all(&config, &generated, false, ui)?;

    let hub = Hub::new();
    // Routes read `[runtime_config]` from their first load on.
    hub.runtime_config().set(&config.runtime_config);
    hub.route_rules().set(config.route_rules.clone());
    // The storage mounts, `fs` folders under the project, shared by every route and reload.
    pipeline::open_storage(&hub, &config)?;
    let loaded = pipeline::load(
        &report,
        &hub,
        &config.assets_dir(),
        &pipeline::cache_dir(&config),
        |_, _| false,
    );
    let outcomes = pipeline::outcomes(&table, &generated, &report, &loaded);
    for line in pipeline::summary(&table, report.duration, &outcomes, ui) {
        ui.status(&line);
    }
    pipeline::print_failures(&generated, &report, &outcomes, ui);
    let routes = pipeline::entries(&outcomes);
    let failing = pipeline::failures(&outcomes);
    // From here the routes belong to the `App` and the dev loop only: a build replaced by an
    // edit must not stay referenced, or its runtime would never be retired (issue 9).
    drop((loaded, outcomes));

    let config_file = config.display_config_file().display().to_string();
    crate::project::config_tasks::check_names(&config.scheduled_tasks, &table, &config_file)?;
    let schedules = crate::project::config_tasks::schedules(&config.scheduled_tasks, &config_file)?;

    let app = App::new(table.clone(), routes.clone());
    let mut server_config = server_config(&config);
    server_config.call_record = record;
    let plugin_timeout = server_config.shutdown_timeout;
    let crash = std::env::var(DEV_CRASH_ENV).ok();
    serve::serve(
        ui,
        Mode::Dev,
        server_config,
        hub.clone(),
        app,
        serve::Background { pubsub, schedules },
        |server, plugins| {
            let dev_client = nitro_runtime::DevClient::new();
            server.set_dev_client(dev_client.clone());
            let dev_loop = DevLoop {
                overrides,
                config,
                table,
                generated,
                routes,
                failing,
                config_error: None,
                handle: server.handle(),
                hub,
                dev_client,
                plugins: plugins.clone(),
                plugin_timeout,
                runtime: tokio::runtime::Handle::current(),
                ui: ui.clone(),
            };
            match &crash {
                Some(crash) => dev_loop.publish_crash(crash),
                None => dev_loop.publish_state(),
            }
            if let Some(watcher) = watcher {
                dev_loop
                    .spawn(watcher)
                    .map_err(serve::ServeError::Runtime)?;
            }
            Ok(())
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime's settings for the dev server.
pub(crate) fn server_config(config: &ResolvedConfig) -> ServerConfig {
    let index = config.index_html();
    let mut server = ServerConfig::new(config.addr);
    server.public_dir = Some(config.public_dir());
    server.index_html = (config.renderer_static && index.is_file()).then_some(index);
    server.dev = true;
    server.limits = config.limits.clone();
    // DNS rebinding: the dev server answers only the names it knows.
    server.allowed_hosts = Some(config.allowed_hosts.clone());
    server.allowed_origins = config.allowed_origins.clone();
    server.metrics = config.observability.as_ref().map(|o| o.endpoint());
    server
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{Env, resolve};

    #[test]
    fn server_config_follows_the_renderer_setting() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let config = |file: Option<&str>| {
            resolve(&dir, &dir, file, &Env::default(), &Overrides::default()).unwrap()
        };
        let c = server_config(&config(None));
        assert_eq!(c.index_html, None, "no index.html on disk");
        assert_eq!(c.public_dir, Some(dir.join("public")));
        assert!(c.dev);
        std::fs::write(dir.join("index.html"), "<h1>hi</h1>").unwrap();
        assert_eq!(
            server_config(&config(None)).index_html,
            Some(dir.join("index.html"))
        );
        assert_eq!(
            server_config(&config(Some("[renderer]\nstatic = false"))).index_html,
            None
        );
    }
}
