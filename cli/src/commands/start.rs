//! `nitro start` (alias `preview`): serve a built `.output/` for production.
//!
//! Needs no cargo, no sources and no watching: [`output::load`] checks the manifest and every
//! library (present, inside the folder, with the recorded SHA-256) before anything is served,
//! then each library is loaded with the runtime's loader (ABI checked) and the server runs with
//! production settings: error bodies hide unhandled errors' messages, `public/` files are
//! served with their precompressed variants, one log line per request (off with `-q`).
//!
//! Where it listens, each layer overriding the one before: `127.0.0.1:3000` ← `PORT` ←
//! `NITRO_PORT` (and `HOST` ← `NITRO_HOST`, as Nitro's node server reads them) ← `--port`,
//! `--host`. Shutdown on SIGINT or SIGTERM is graceful: stop accepting, finish in-flight
//! requests, close WebSocket peers with `1001`, all within `NITRO_SHUTDOWN_TIMEOUT` (default
//! 30 s); a second signal exits at once.
//!
//! With `[websocket] pubsub` in the manifest, publishes are relayed through Redis (the URL of
//! `NITRO_PUBSUB_URL`, else the one recorded; see [`crate::project::config_pubsub`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use nitro_runtime::loader::LoadedRoute;
use nitro_runtime::{App, Hub, RouteEntry, ServerConfig};

use crate::output::manifest::{self as output, ASSETS_DIR, MANIFEST, OUTPUT_DIR, Output};
use crate::pipeline;
use crate::serve::{self, Mode};
use crate::ui::Ui;

/// The default address: loopback only, like `nitro dev`; `HOST=0.0.0.0` to serve the network.
pub(crate) const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);
/// How long shutdown waits for in-flight requests and WebSocket closes, by default.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `nitro start`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StartArgs {
    /// The built output folder, or a project folder holding `.output/`. Default: the output
    /// this `nitro` belongs to when run as `<output>/server/nitro`, else `./.output`.
    pub(crate) output: Option<PathBuf>,

    /// Port to listen on; 0 picks a free one. Wins over `NITRO_PORT` and `PORT` (default
    /// 3000).
    #[arg(long, short = 'p')]
    pub(crate) port: Option<u16>,

    /// Address to listen on. Wins over `NITRO_HOST` and `HOST` (default 127.0.0.1; 0.0.0.0 is
    /// every interface).
    #[arg(long)]
    pub(crate) host: Option<String>,

    /// Run the server in a child process and start it again when a fault no thread can
    /// catch ends it (a stack overflow, an abort, a segfault, `exit`), saying which route was
    /// running; at most 10 restarts a minute, with a growing wait. Not needed under an init
    /// system that restarts the service (see docs/deploy.md). Linux only.
    #[arg(long)]
    pub(crate) supervise: bool,
}

/// The environment `nitro start` reads. Empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StartEnv {
    pub(crate) nitro_port: Option<String>,
    pub(crate) port: Option<String>,
    pub(crate) nitro_host: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) shutdown_timeout: Option<String>,
}

impl StartEnv {
    pub(crate) fn from_process() -> StartEnv {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().into_owned())
        };
        StartEnv {
            nitro_port: var("NITRO_PORT"),
            port: var("PORT"),
            nitro_host: var("NITRO_HOST"),
            host: var("HOST"),
            shutdown_timeout: var("NITRO_SHUTDOWN_TIMEOUT"),
        }
    }
}

/// A setting of `nitro start` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("{source_name} is `{value}`, which is not a port number (0 to 65535)")]
    Port { source_name: String, value: String },
    #[error("{source_name} is `{value}`, which is not an IP address")]
    Host { source_name: String, value: String },
    #[error(
        "environment variable `NITRO_SHUTDOWN_TIMEOUT` is `{value}`, which is not a duration (milliseconds, or with a unit: `30s`, `500ms`)"
    )]
    ShutdownTimeout { value: String },
    #[error("route `{file}` cannot be loaded from `{}`: {message}", .library.display())]
    Load {
        file: String,
        library: PathBuf,
        message: String,
    },
}

impl StartError {
    /// What to do about it.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            StartError::Port { .. } | StartError::Host { .. } => Some(
                "flags win over the environment: pass `--port`/`--host`, or fix the variable"
                    .into(),
            ),
            StartError::Load { .. } => Some(
                "serve it with the `server/nitro` of the same output, or rebuild with `nitro build`"
                    .into(),
            ),
            StartError::ShutdownTimeout { .. } => None,
        }
    }
}

/// Resolves the address from the flags and the environment. Pure.
pub(crate) fn resolve_addr(args: &StartArgs, env: &StartEnv) -> Result<SocketAddr, StartError> {
    let port = match (args.port, &env.nitro_port, &env.port) {
        (Some(port), _, _) => port,
        (None, Some(value), _) => parse_port(value, "NITRO_PORT")?,
        (None, None, Some(value)) => parse_port(value, "PORT")?,
        (None, None, None) => DEFAULT_ADDR.port(),
    };
    let ip = match (&args.host, &env.nitro_host, &env.host) {
        (Some(host), _, _) => parse_host(host, "`--host`")?,
        (None, Some(host), _) => parse_host(host, "environment variable `NITRO_HOST`")?,
        (None, None, Some(host)) => parse_host(host, "environment variable `HOST`")?,
        (None, None, None) => DEFAULT_ADDR.ip(),
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(value: &str, name: &str) -> Result<u16, StartError> {
    value.trim().parse().map_err(|_| StartError::Port {
        source_name: format!("environment variable `{name}`"),
        value: value.to_owned(),
    })
}

fn parse_host(value: &str, source_name: &str) -> Result<IpAddr, StartError> {
    crate::project::config::host_addr(value).ok_or_else(|| StartError::Host {
        source_name: source_name.to_owned(),
        value: value.to_owned(),
    })
}

/// `NITRO_SHUTDOWN_TIMEOUT`: milliseconds as Nitro reads it (`30000`), or with a unit (`30s`,
/// `500ms`).
pub(crate) fn parse_timeout(value: Option<&str>) -> Result<Duration, StartError> {
    let Some(value) = value else {
        return Ok(DEFAULT_SHUTDOWN_TIMEOUT);
    };
    let text = value.trim();
    let bad = || StartError::ShutdownTimeout {
        value: value.to_owned(),
    };
    if let Some(ms) = text.strip_suffix("ms") {
        ms.trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| bad())
    } else if let Some(s) = text.strip_suffix('s') {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(bad)
    } else {
        text.parse().map(Duration::from_millis).map_err(|_| bad())
    }
}

/// The output folder to serve: the argument (an output, or a project holding `.output/`), else
/// the output around this executable (`<output>/server/nitro`), else `./.output`.
pub(crate) fn output_dir(arg: Option<&Path>, exe: Option<&Path>) -> PathBuf {
    if let Some(arg) = arg {
        let inner = arg.join(OUTPUT_DIR);
        if !arg.join(MANIFEST).exists() && inner.join(MANIFEST).exists() {
            return inner;
        }
        return arg.to_owned();
    }
    if let Some(output) = exe
        .and_then(Path::parent)
        .filter(|server| server.file_name().is_some_and(|n| n == "server"))
        .and_then(Path::parent)
        .filter(|output| output.join(MANIFEST).is_file())
    {
        return output.to_owned();
    }
    PathBuf::from(OUTPUT_DIR)
}

/// `--supervise`: this same command, without the flag, in a child process.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn supervised(ui: &Ui) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("cannot find this program to run the server")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|arg| arg != "--supervise")
        .collect();
    crate::supervise::run(
        ui,
        &crate::supervise::Child::new(&exe, args),
        crate::supervise::Budget::production(),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn supervised(_: &Ui) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "`nitro start --supervise` is only available on Linux: use your init system to restart the server"
    )
}

/// The record file when a supervisor runs this server (see `supervise.rs`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn call_record() -> Option<PathBuf> {
    crate::supervise::supervised_server()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn call_record() -> Option<PathBuf> {
    None
}

/// Runs `nitro start` until a signal.
pub(crate) fn run(args: &StartArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    if args.supervise {
        return supervised(ui);
    }
    let env = StartEnv::from_process();
    let addr = resolve_addr(args, &env)?;
    // A taken port is said before the output is read and its routes loaded.
    serve::check_addr(addr)?;
    let shutdown_timeout = parse_timeout(env.shutdown_timeout.as_deref())?;
    let exe = std::env::current_exe().ok();
    let dir = output_dir(args.output.as_deref(), exe.as_deref());
    let output = output::load(&dir)?;
    let manifest = &output.manifest;
    if manifest.nitro.version != crate::project::embedded::VERSION {
        ui.warn(&format!(
            "`{}` was built by nitro {}, this is nitro {}",
            dir.join(MANIFEST).display(),
            manifest.nitro.version,
            crate::project::embedded::VERSION
        ));
    }

    // Checked before anything is loaded: a bad URL is a start error, not a later surprise.
    let pubsub = manifest
        .config
        .pubsub
        .as_ref()
        .map(|built| {
            built.settings().runtime(
                crate::project::config_pubsub::env_url().as_deref(),
                &dir.join(MANIFEST).display().to_string(),
            )
        })
        .transpose()?;
    // `[runtime_config]` with this machine's `NITRO_*` overrides, set before any route loads.
    let runtime_config =
        crate::project::config_runtime::apply_env(&manifest.config.runtime_config, &|name| {
            std::env::var(name).ok()
        })?;
    let hub = Hub::new();
    hub.runtime_config().set(&runtime_config);
    // The storage mounts: relative `fs` folders under the working directory (as Nitro's
    // `.data/kv`), redis URLs from `NITRO_STORAGE_<NAME>_URL` when set.
    let mounts = manifest
        .config
        .storage
        .clone()
        .unwrap_or_else(crate::project::config_storage::defaults);
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    hub.storage()
        .configure(&crate::project::config_storage::placed(
            &mounts,
            &cwd,
            &|name| std::env::var(name).ok(),
        )?)
        .with_context(|| format!("the storage mounts of `{}`", dir.join(MANIFEST).display()))?;
    hub.route_rules().set(manifest.config.route_rules.clone());
    let routes = load_routes(&output, &dir, &hub)?;
    crate::logging::set_request_log(!ui.is_quiet());
    let config = ServerConfig {
        public_dir: manifest.public_dir.as_deref().map(|p| output.path(p)),
        index_html: manifest.index_html.as_deref().map(|p| output.path(p)),
        dev: false,
        precompressed: true,
        cache_files: true,
        shutdown_timeout,
        limits: manifest
            .config
            .limits
            .as_ref()
            .map(crate::project::config_limits::BuiltLimits::to_limits)
            .unwrap_or_default(),
        allowed_origins: manifest.config.allowed_origins.clone(),
        call_record: call_record(),
        metrics: manifest.config.observability.as_ref().map(|o| o.endpoint()),
        ..ServerConfig::new(addr)
    };
    ui.status(&format!(
        "  serving `{}`: {} built {} by nitro {}",
        dir.display(),
        pipeline::table_text(&output.table),
        manifest.date,
        manifest.nitro.version
    ));
    // The route lines of `nitro dev`'s summary (method, pattern, file), without its headline.
    for line in pipeline::route_lines(&output.table, &BTreeSet::new(), ui) {
        ui.status(&line);
    }

    // `[scheduled_tasks]` as recorded: every name a task of the output.
    let manifest_file = dir.join(MANIFEST).display().to_string();
    let scheduled = &manifest.config.scheduled_tasks;
    crate::project::config_tasks::check_names(scheduled, &output.table, &manifest_file)?;
    let schedules = crate::project::config_tasks::schedules(scheduled, &manifest_file)?;

    let app = App::new(output.table, routes);
    serve::serve(
        ui,
        Mode::Start,
        config,
        hub,
        app,
        serve::Background { pubsub, schedules },
        |_, _| Ok(()),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Loads every library of the output; the first failure stops the start.
fn load_routes(
    output: &Output,
    display_dir: &Path,
    hub: &std::sync::Arc<Hub>,
) -> Result<HashMap<String, RouteEntry>, StartError> {
    // The loader opens each library through a unique link; the output folder may be read-only,
    // so the links go to a private temporary folder, removed once everything is loaded.
    let cache = std::env::temp_dir().join(format!("nitro-start-{}", std::process::id()));
    let assets = output.path(ASSETS_DIR);
    let assets = std::path::absolute(&assets).unwrap_or(assets);
    let mut routes = HashMap::new();
    let mut result = Ok(());
    for route in &output.manifest.routes {
        match LoadedRoute::load(
            &output.path(&route.library),
            &route.file,
            hub,
            &assets,
            &cache,
        ) {
            Ok(module) => {
                routes.insert(route.file.clone(), RouteEntry::Loaded(module));
            }
            Err(error) => {
                result = Err(StartError::Load {
                    file: route.file.clone(),
                    library: display_dir.join(&route.library),
                    message: error.to_string(),
                });
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    result.map(|()| routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(port: Option<u16>, host: Option<&str>) -> StartArgs {
        StartArgs {
            output: None,
            port,
            host: host.map(str::to_owned),
            supervise: false,
        }
    }

    #[test]
    fn address_layers() {
        let env = StartEnv::default();
        assert_eq!(resolve_addr(&args(None, None), &env).unwrap(), DEFAULT_ADDR);
        let env = StartEnv {
            port: Some("4000".into()),
            host: Some("0.0.0.0".into()),
            ..StartEnv::default()
        };
        assert_eq!(
            resolve_addr(&args(None, None), &env).unwrap(),
            "0.0.0.0:4000".parse().unwrap()
        );
        let env = StartEnv {
            nitro_port: Some("5000".into()),
            port: Some("4000".into()),
            nitro_host: Some("[::1]".into()),
            host: Some("0.0.0.0".into()),
            ..StartEnv::default()
        };
        assert_eq!(
            resolve_addr(&args(None, None), &env).unwrap(),
            "[::1]:5000".parse().unwrap()
        );
        assert_eq!(
            resolve_addr(&args(Some(6000), Some("localhost")), &env).unwrap(),
            "127.0.0.1:6000".parse().unwrap()
        );
        let bad = StartEnv {
            nitro_port: Some("http".into()),
            ..StartEnv::default()
        };
        assert_eq!(
            resolve_addr(&args(None, None), &bad)
                .unwrap_err()
                .to_string(),
            "environment variable `NITRO_PORT` is `http`, which is not a port number (0 to 65535)"
        );
        assert!(
            resolve_addr(&args(Some(1), None), &bad).is_ok(),
            "the flag wins"
        );
        let bad_host = StartEnv {
            host: Some("example.com".into()),
            ..StartEnv::default()
        };
        assert!(matches!(
            resolve_addr(&args(None, None), &bad_host),
            Err(StartError::Host { .. })
        ));
    }

    #[test]
    fn shutdown_timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_timeout(Some("30000")).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(parse_timeout(Some("2s")).unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_timeout(Some("0.5s")).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_timeout(Some("250ms")).unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["soon", "-1s", "1h", ""] {
            assert!(parse_timeout(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn which_output() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("app");
        let out = project.join(".output");
        std::fs::create_dir_all(out.join("server")).unwrap();
        std::fs::write(out.join("nitro.json"), "{}").unwrap();
        assert_eq!(output_dir(Some(&out), None), out);
        assert_eq!(output_dir(Some(&project), None), out);
        let elsewhere = tmp.path().join("nothing");
        assert_eq!(output_dir(Some(&elsewhere), None), elsewhere);
        let exe = out.join("server/nitro");
        assert_eq!(output_dir(None, Some(&exe)), out);
        assert_eq!(
            output_dir(None, Some(Path::new("/usr/bin/nitro"))),
            PathBuf::from(".output")
        );
    }
}
