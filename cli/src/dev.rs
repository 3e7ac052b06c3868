//! `nitro dev`: build every route, serve the project, stop on Ctrl-C or SIGTERM.
//!
//! The pipeline, each step a public function so the watch loop can run any of them again:
//!
//! 1. [`config::load`] resolves `nitro.toml`, the environment and flags;
//! 2. [`scan`] reads `routes/` into a route table (every naming problem reported at once);
//! 3. [`codegen::generate`] writes `.nitro/` (only what changed);
//! 4. [`build`] runs cargo over all routes, or a subset;
//! 5. [`load`] opens each built library with the runtime's loader; [`entries`] turns the
//!    outcome into the [`RouteEntry`]s of an [`App`] (a route that did not build answers `500`
//!    with its compile error);
//! 6. the runtime's [`Server`] serves the app; its [`ServerHandle::set_app`] swaps in the next
//!    one.
//!
//! [`ServerHandle::set_app`]: nitro_runtime::ServerHandle::set_app

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use nitro_router::{RouteKind, RouteTable, ScanError, ScanOptions};
use nitro_runtime::loader::{LoadError, LoadedRoute};
use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig, ServerError};

use crate::cargo_build::{self, BuildReport, BuildRequest, Progress, Silent, TerminalProgress};
use crate::codegen::{self, Generated, RouteCrate, RouteProblem};
use crate::config::{self, Overrides, ResolvedConfig};
use crate::ui::Ui;

/// Arguments of `nitro dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// The project folder: the one holding `routes/` (and optionally `nitro.toml`,
    /// `index.html`, `public/`).
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Port to listen on; 0 picks a free one. Wins over `PORT` and `[dev] port` (default 3000).
    #[arg(long, short = 'p')]
    pub port: Option<u16>,

    /// Address to listen on. Wins over `HOST` and `[dev] host` (default 127.0.0.1, this
    /// machine only; 0.0.0.0 is every interface).
    #[arg(long)]
    pub host: Option<String>,
}

/// Why `nitro dev` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Problems with route file names.
    #[error("{}", scan_message(.0))]
    Scan(ScanError),
    /// Route files that cannot be compiled as they are.
    #[error("{}", route_problems(.0))]
    Routes(Vec<RouteProblem>),
    /// The server could not start (the port is in use, …).
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
}

impl DevError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            DevError::Scan(_) => Some(
                "rename the files above; the rules for route file names are in `docs/routing.md`"
                    .into(),
            ),
            DevError::Routes(_) | DevError::Server(_) | DevError::Runtime(_) => None,
        }
    }
}

fn scan_message(error: &ScanError) -> String {
    match error.problems() {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} problems with the files in `routes/`:", many.len());
            for problem in many {
                out.push_str("\n  ");
                out.push_str(&problem.to_string());
            }
            out
        }
    }
}

fn route_problems(problems: &[RouteProblem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} route files cannot be compiled:", many.len());
            for problem in many {
                out.push_str("\n  ");
                out.push_str(&problem.to_string());
            }
            out
        }
    }
}

/// Runs `nitro dev` until Ctrl-C or SIGTERM.
pub fn run(args: &DevArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        port: args.port,
        host: args.host.clone(),
    };
    let config = config::load(&args.dir, &overrides)?;
    tracing::debug!(target: "nitro::cli", "config: {config}");
    for warning in &config.warnings {
        ui.warn(warning);
    }

    // Before the first build, so that edits made while it runs are not missed.
    let watcher = match crate::watch::Watcher::start(&config.project_dir) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            ui.warn(&format!(
                "cannot watch `{}` for changes ({error}): restart `nitro dev` after each edit",
                config.display_dir.display()
            ));
            None
        }
    };

    let table = scan(&config)?;
    if table.is_empty() {
        ui.warn(&format!(
            "no route files in `{}`: serving only `public/` and `index.html`",
            config.display_dir.join("routes").display()
        ));
    }
    let generated = generate_checked(&config, &table, ui)?;

    if !generated.routes.is_empty() {
        ui.status(&format!(
            "  building {} in `{}`…",
            plural(generated.routes.len(), "route"),
            config.display_dir.display()
        ));
    }
    let report = build(
        &config,
        &generated,
        &generated.routes,
        progress(ui).as_ref(),
    )?;

    let hub = Hub::new();
    let loaded = load(&report, &hub, &cache_dir(&config));
    let routes = entries(&table, &generated, &report, &loaded);

    for line in summary(&table, &report, &loaded, ui) {
        ui.status(&line);
    }
    print_failures(&generated, &report, &loaded, ui);
    let failing = crate::reload::initial_failures(&generated, &report, &loaded);
    // From here the routes belong to the `App` and the dev loop only: a build replaced by an
    // edit must not stay referenced, or its runtime would never be retired (issue 9).
    drop(loaded);

    let server_config = server_config(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nitro")
        .build()
        .map_err(DevError::Runtime)?;
    let served = runtime.block_on(async move {
        let server = Server::bind(
            server_config,
            hub.clone(),
            App::new(table.clone(), routes.clone()),
        )
        .await
        .map_err(DevError::Server)?;
        let dev_client = nitro_runtime::DevClient::new();
        server.set_dev_client(dev_client.clone());
        let dev_loop = crate::reload::DevLoop {
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
            ui: ui.clone(),
        };
        dev_loop.publish_state();
        if let Some(watcher) = watcher {
            std::thread::Builder::new()
                .name("nitro-dev-loop".into())
                .spawn(move || dev_loop.run(watcher))
                .map_err(DevError::Runtime)?;
        }
        let addr = server.local_addr();
        ui.data(&format!("  ➜ Local: {}", url(addr)));
        if addr.ip().is_unspecified() {
            ui.status(&format!(
                "  ➜ Network: every interface of this machine, port {}",
                addr.port()
            ));
        }
        server
            .run_until(shutdown_signal())
            .await
            .map_err(DevError::Server)?;
        ui.status("  stopped");
        Ok::<_, anyhow::Error>(())
    });
    // A route call stuck past its deadline keeps its blocking thread; dropping the runtime
    // would wait for it forever, so the exit would hang (issue #5).
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `.nitro/` for `table` and shows codegen warnings; route files that cannot be
/// compiled as they are (an HTTP route without `handler`, …) are an error.
pub fn generate_checked(
    config: &ResolvedConfig,
    table: &RouteTable,
    ui: &Ui,
) -> anyhow::Result<Generated> {
    let generated = codegen::generate(config, table)
        .with_context(|| format!("cannot generate `{}`", config.nitro_dir().display()))?;
    for warning in &generated.warnings {
        ui.warn(warning);
    }
    if !generated.problems.is_empty() {
        return Err(DevError::Routes(generated.problems.clone()).into());
    }
    Ok(generated)
}

/// How a first build shows its progress: a counter of compiled crates, or nothing with `-q`.
pub fn progress(ui: &Ui) -> Box<dyn Progress> {
    if ui.is_quiet() {
        Box::new(Silent)
    } else {
        Box::new(TerminalProgress::new())
    }
}

/// Scans `routes/` with the options of the config.
pub fn scan(config: &ResolvedConfig) -> Result<RouteTable, DevError> {
    nitro_router::scan(
        &config.project_dir,
        &ScanOptions {
            websocket: config.websocket,
        },
    )
    .map_err(DevError::Scan)
}

/// Builds `routes` (all of `generated.routes`, or the changed ones).
pub fn build(
    config: &ResolvedConfig,
    generated: &Generated,
    routes: &[RouteCrate],
    progress: &dyn Progress,
) -> Result<BuildReport, cargo_build::BuildError> {
    let config_file = config.display_config_file();
    let request = BuildRequest {
        manifest_path: &generated.manifest_path,
        target_dir: &config.target_dir,
        project_dir: &config.project_dir,
        config_file: &config_file,
        routes,
        release: false,
    };
    cargo_build::build(&request, progress)
}

/// `<project>/.nitro/loaded`: where the loader puts the unique links it opens.
pub fn cache_dir(config: &ResolvedConfig) -> PathBuf {
    config.nitro_dir().join("loaded")
}

/// Loads every artifact of a build (fresh or not: at startup nothing is loaded yet).
pub fn load(
    report: &BuildReport,
    hub: &Arc<Hub>,
    cache_dir: &Path,
) -> HashMap<String, Result<Arc<LoadedRoute>, LoadError>> {
    report
        .artifacts
        .iter()
        .map(|(file, artifact)| {
            let loaded = LoadedRoute::load(&artifact.path, file, hub, cache_dir);
            (file.clone(), loaded)
        })
        .collect()
}

/// The code of every route in `table`: loaded, or failed with a plain-text message (compile
/// errors, a load error, a codegen problem).
pub fn entries(
    table: &RouteTable,
    generated: &Generated,
    report: &BuildReport,
    loaded: &HashMap<String, Result<Arc<LoadedRoute>, LoadError>>,
) -> HashMap<String, RouteEntry> {
    let mut out = HashMap::new();
    for route in table.routes() {
        let file = &route.file;
        let entry = if let Some(result) = loaded.get(file) {
            match result {
                Ok(module) => RouteEntry::Loaded(module.clone()),
                Err(error) => RouteEntry::Failed {
                    message: error.to_string(),
                },
            }
        } else if let Some(diagnostics) = report.failed.get(file) {
            RouteEntry::Failed {
                message: diagnostics.plain(),
            }
        } else if let Some(problem) = generated.problems.iter().find(|p| problem_file(p) == file) {
            RouteEntry::Failed {
                message: problem.to_string(),
            }
        } else {
            RouteEntry::Failed {
                message: format!("route `{file}` was not built"),
            }
        };
        out.insert(file.clone(), entry);
    }
    out
}

fn problem_file(problem: &RouteProblem) -> &str {
    match problem {
        RouteProblem::MissingHandler { file } | RouteProblem::PrivateHandler { file } => file,
    }
}

/// The runtime's settings for the dev server.
pub fn server_config(config: &ResolvedConfig) -> ServerConfig {
    let index = config.index_html();
    let mut server = ServerConfig::new(config.addr);
    server.public_dir = Some(config.public_dir());
    server.index_html = (config.renderer_static && index.is_file()).then_some(index);
    server.dev = true;
    server.limits = config.limits.clone();
    // DNS rebinding: the dev server answers only the names it knows.
    server.allowed_hosts = Some(config.allowed_hosts.clone());
    server.allowed_origins = config.allowed_origins.clone();
    server
}

/// The URL to open for a bound address: loopback when bound to every interface.
pub fn url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The startup summary: a headline, then one line per route (method, pattern, file).
pub fn summary(
    table: &RouteTable,
    report: &BuildReport,
    loaded: &HashMap<String, Result<Arc<LoadedRoute>, LoadError>>,
    ui: &Ui,
) -> Vec<String> {
    let broken: BTreeSet<&str> = table
        .routes()
        .iter()
        .map(|r| r.file.as_str())
        .filter(|f| !matches!(loaded.get(*f), Some(Ok(_))))
        .collect();
    summary_lines(table, report.duration, &broken, ui)
}

/// [`summary`] without the loader's types, for tests.
pub fn summary_lines(
    table: &RouteTable,
    duration: Duration,
    broken: &BTreeSet<&str>,
    ui: &Ui,
) -> Vec<String> {
    let total = table.len();
    let mut lines = Vec::new();
    if total == 0 {
        return lines;
    }
    let ok = total - broken.len();
    if broken.is_empty() {
        lines.push(format!(
            "{} built {} in {}",
            ui.paint("✔", "32"),
            plural(total, "route"),
            seconds(duration)
        ));
    } else {
        lines.push(format!(
            "{} built {ok} of {} in {}; {} failed (requests to {} answer 500 with the error)",
            ui.paint("✘", "31"),
            plural(total, "route"),
            seconds(duration),
            broken.len(),
            if broken.len() == 1 { "it" } else { "them" }
        ));
    }
    let rows: Vec<(String, &str, &str)> = table
        .routes()
        .iter()
        .map(|r| {
            let method = match (r.kind, r.method) {
                (RouteKind::WebSocket, _) => "WS".to_owned(),
                (RouteKind::Http, Some(m)) => m.as_str().to_owned(),
                (RouteKind::Http, None) => "ANY".to_owned(),
            };
            (method, r.pattern.as_str(), r.file.as_str())
        })
        .collect();
    let method_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let pattern_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (method, pattern, file) in rows {
        let mut line = format!("  {method:<method_width$}  {pattern:<pattern_width$}  {file}");
        if broken.contains(file) {
            line.push_str(&format!("  {}", ui.paint("(failed)", "31")));
        }
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// Prints rustc's warnings (unless `-q`) and errors for `file`; true when it failed to build.
pub fn show_diagnostics(file: &str, report: &BuildReport, ui: &Ui) -> bool {
    if let Some(warnings) = report.warnings.get(file)
        && !ui.is_quiet()
    {
        ui.diagnostics(warnings);
    }
    match report.failed.get(file) {
        Some(diagnostics) => {
            ui.diagnostics(diagnostics);
            true
        }
        None => false,
    }
}

/// Shows what failed: compile errors of failed routes, warnings of built ones, load errors.
fn print_failures(
    generated: &Generated,
    report: &BuildReport,
    loaded: &HashMap<String, Result<Arc<LoadedRoute>, LoadError>>,
    ui: &Ui,
) {
    // Route order, so the output is stable.
    for route in &generated.routes {
        if show_diagnostics(&route.file, report, ui) {
            ui.error(&format!("route `{}` failed to build", route.file));
        }
        if let Some(Err(error)) = loaded.get(&route.file) {
            ui.error(&error.to_string());
        }
    }
}

/// Completes on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, resolve};

    #[test]
    fn urls() {
        assert_eq!(
            url("127.0.0.1:3000".parse().unwrap()),
            "http://127.0.0.1:3000/"
        );
        assert_eq!(url("0.0.0.0:80".parse().unwrap()), "http://127.0.0.1:80/");
        assert_eq!(url("[::]:8080".parse().unwrap()), "http://[::1]:8080/");
        assert_eq!(url("[::1]:1".parse().unwrap()), "http://[::1]:1/");
    }

    #[test]
    fn summary_lists_routes_and_failures() {
        let table = RouteTable::from_files(
            ["index.rs", "users/[id].get.rs", "_ws.rs", "broken.rs"],
            &ScanOptions::default(),
        )
        .unwrap();
        let ui = Ui::plain(false);
        let none = BTreeSet::new();
        let all_ok = summary_lines(&table, Duration::from_millis(1234), &none, &ui);
        assert_eq!(
            all_ok,
            [
                "✔ built 4 routes in 1.2 s",
                "  WS   /_ws        routes/_ws.rs",
                "  ANY  /broken     routes/broken.rs",
                "  ANY  /           routes/index.rs",
                "  GET  /users/:id  routes/users/[id].get.rs",
            ]
        );
        let broken = BTreeSet::from(["routes/broken.rs"]);
        let some = summary_lines(&table, Duration::from_millis(50), &broken, &ui);
        assert_eq!(
            some[0],
            "✘ built 3 of 4 routes in 0.1 s; 1 failed (requests to it answer 500 with the error)"
        );
        assert_eq!(some[2], "  ANY  /broken     routes/broken.rs  (failed)");
        let empty = RouteTable::default();
        assert!(summary_lines(&empty, Duration::ZERO, &none, &ui).is_empty());
    }

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

    #[test]
    fn scan_errors_list_every_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(dir.join("routes")).unwrap();
        std::fs::write(dir.join("routes/[id.rs"), "").unwrap();
        std::fs::write(dir.join("routes/_ws.rs"), "").unwrap();
        let c = resolve(
            &dir,
            &dir,
            Some("[features]\nwebsocket = false"),
            &Env::default(),
            &Overrides::default(),
        )
        .unwrap();
        let e = scan(&c).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("2 problems with the files in `routes/`:\n  "),
            "{text}"
        );
        assert!(text.contains("routes/[id.rs"), "{text}");
        assert!(text.contains("routes/_ws.rs"), "{text}");
        assert!(e.hint().unwrap().contains("docs/routing.md"));
    }

    #[test]
    fn failed_entries_carry_their_reason() {
        let table =
            RouteTable::from_files(["a.rs", "b.rs", "c.rs"], &ScanOptions::default()).unwrap();
        let generated = Generated {
            dir: PathBuf::new(),
            manifest_path: PathBuf::new(),
            routes: Vec::new(),
            problems: vec![RouteProblem::MissingHandler {
                file: "routes/c.rs".into(),
            }],
            warnings: Vec::new(),
            changed: Vec::new(),
        };
        let mut report = BuildReport::default();
        report.failed.insert(
            "routes/a.rs".into(),
            cargo_build::Diagnostics {
                rendered: "\x1b[1merror\x1b[0m: boom\n".into(),
                errors: 1,
                warnings: 0,
            },
        );
        let entries = entries(&table, &generated, &report, &HashMap::new());
        let message = |f: &str| match &entries[f] {
            RouteEntry::Failed { message } => message.clone(),
            RouteEntry::Loaded(_) => panic!("{f} loaded"),
        };
        assert_eq!(message("routes/a.rs"), "error: boom\n");
        assert_eq!(message("routes/b.rs"), "route `routes/b.rs` was not built");
        assert!(message("routes/c.rs").contains("has no `pub fn handler`"));
    }
}
