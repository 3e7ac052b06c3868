//! The steps that `nitro dev`, `nitro build` and the dev loop share, below the commands.
//!
//! 1. [`config::load`](crate::project::config::load) resolves `nitro.toml`, the environment
//!    and flags (the commands call it: each reads a different environment);
//! 2. [`scan`] reads `routes/` into a route table (every naming problem reported at once);
//! 3. [`generate_checked`] writes `.nitro/` (only what changed) and refuses route files that
//!    cannot be compiled as they are;
//! 4. [`build`] runs cargo over all routes, or a subset, with [`progress`] on the terminal;
//! 5. [`load`] opens built libraries with the runtime's loader;
//! 6. [`outcomes`] says, for every route of the table, whether it is served from a new
//!    generation or failed and why: the one place that rule is written. The first build turns
//!    them into [`entries`] and [`failures`]; the dev loop merges them with its last good build;
//! 7. [`summary`] and [`show_diagnostics`] tell the terminal.
//!
//! Serving (runtime, bind, the URL, signals) is `serve.rs`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nitro_router::{RouteKind, RouteTable, ScanError, ScanOptions};
use nitro_runtime::loader::{LoadError, LoadedRoute};
use nitro_runtime::module::RouteModule;
use nitro_runtime::{Hub, RouteEntry};

use crate::project::cargo_build::{
    self, Artifact, BuildReport, BuildRequest, Progress, Silent, TerminalProgress,
};
use crate::project::codegen::{self, Generated, RouteCrate, RouteProblem};
use crate::project::config::ResolvedConfig;
use crate::ui::{Ui, plural};

/// Why the routes of a project cannot be built at all.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Problems with route file names.
    #[error("{}", scan_message(.0))]
    Scan(ScanError),
    /// Route files that cannot be compiled as they are.
    #[error("{}", route_problems(.0))]
    Routes(Vec<RouteProblem>),
}

impl PipelineError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PipelineError::Scan(_) => Some(
                "rename the files above; the rules for route file names are at https://github.com/nitro-rs/nitro-rs/blob/main/docs/routing.md"
                    .into(),
            ),
            PipelineError::Routes(_) => None,
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

/// Scans `routes/` with the options of the config.
pub fn scan(config: &ResolvedConfig) -> Result<RouteTable, PipelineError> {
    nitro_router::scan(
        &config.project_dir,
        &ScanOptions {
            websocket: config.websocket,
        },
    )
    .map_err(PipelineError::Scan)
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
        return Err(PipelineError::Routes(generated.problems.clone()).into());
    }
    Ok(generated)
}

/// How a full build shows its progress: a counter of compiled crates, or nothing with `-q`.
pub fn progress(ui: &Ui) -> Box<dyn Progress> {
    if ui.is_quiet() {
        Box::new(Silent)
    } else {
        Box::new(TerminalProgress::new())
    }
}

/// Builds `routes` (all of `generated.routes`, or the changed ones), with `--release` for
/// `nitro build`.
pub fn build(
    config: &ResolvedConfig,
    generated: &Generated,
    routes: &[RouteCrate],
    release: bool,
    progress: &dyn Progress,
) -> Result<BuildReport, cargo_build::BuildError> {
    let config_file = config.display_config_file();
    let request = BuildRequest {
        manifest_path: &generated.manifest_path,
        target_dir: &config.target_dir,
        project_dir: &config.project_dir,
        config_file: &config_file,
        routes,
        release,
    };
    cargo_build::build(&request, progress)
}

/// Builds every generated route, saying so first (`nitro dev` and `nitro build` start this way);
/// `release` for `nitro build`, with the terminal's progress counter.
pub fn build_all(
    config: &ResolvedConfig,
    generated: &Generated,
    release: bool,
    ui: &Ui,
) -> Result<BuildReport, cargo_build::BuildError> {
    if !generated.routes.is_empty() {
        ui.status(&format!(
            "  building {}{} in `{}`…",
            routes_text(
                generated
                    .routes
                    .iter()
                    .filter(|r| {
                        !matches!(
                            r.kind,
                            RouteKind::Middleware | RouteKind::Plugin | RouteKind::Task
                        )
                    })
                    .count(),
                generated
                    .routes
                    .iter()
                    .filter(|r| r.kind == RouteKind::Middleware)
                    .count(),
                generated
                    .routes
                    .iter()
                    .filter(|r| r.kind == RouteKind::Plugin)
                    .count(),
                generated
                    .routes
                    .iter()
                    .filter(|r| r.kind == RouteKind::Task)
                    .count(),
            ),
            if release { " for release" } else { "" },
            config.display_dir.display()
        ));
    }
    build(
        config,
        generated,
        &generated.routes,
        release,
        progress(ui).as_ref(),
    )
}

/// `<project>/.nitro/loaded`: where the loader puts the unique links it opens.
/// Opens the project's storage mounts in `hub`, as `nitro dev` serves them: `fs` folders under
/// the project, redis URLs from `NITRO_STORAGE_<NAME>_URL` when set.
pub fn open_storage(hub: &Hub, config: &ResolvedConfig) -> anyhow::Result<()> {
    hub.storage()
        .configure(&crate::project::config_storage::placed(
            &config.storage,
            &config.project_dir,
            &|name| std::env::var(name).ok(),
        )?)
        .with_context(|| {
            format!(
                "the storage mounts of `{}`",
                config.display_config_file().display()
            )
        })
}

pub fn cache_dir(config: &ResolvedConfig) -> PathBuf {
    config.nitro_dir().join("loaded")
}

/// Route file → the code loaded from its new library, or why it could not be loaded.
pub type Loaded = HashMap<String, Result<Arc<dyn RouteModule>, LoadError>>;

/// Loads the artifacts of a build as new generations, but those for which `keep` says the
/// current generation stands (a `fresh` artifact already served). `assets_dir` is what the
/// routes' `nitro::assets` reads.
pub fn load(
    report: &BuildReport,
    hub: &Arc<Hub>,
    assets_dir: &Path,
    cache_dir: &Path,
    keep: impl Fn(&str, &Artifact) -> bool,
) -> Loaded {
    report
        .artifacts
        .iter()
        .filter(|(file, artifact)| !keep(file, artifact))
        .map(|(file, artifact)| {
            let loaded = LoadedRoute::load(&artifact.path, file, hub, assets_dir, cache_dir)
                .map(|module| module as Arc<dyn RouteModule>);
            (file.clone(), loaded)
        })
        .collect()
}

/// What a build means for one route.
#[derive(Clone)]
pub enum Outcome {
    /// Built and loaded: a new generation.
    Loaded(Arc<dyn RouteModule>),
    /// Built, but not loaded again (cargo found nothing to do): the current generation stands.
    Unchanged,
    /// It cannot be served from this build.
    Failed(Failure),
    /// Not part of this build.
    NotBuilt,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Loaded(module) => f.debug_tuple("Loaded").field(&module.file()).finish(),
            Outcome::Unchanged => f.write_str("Unchanged"),
            Outcome::Failed(failure) => f.debug_tuple("Failed").field(failure).finish(),
            Outcome::NotBuilt => f.write_str("NotBuilt"),
        }
    }
}

/// Why a route cannot be served from a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Plain text: the body of the `500` a request to the route gets.
    pub message: String,
    /// As the terminal and the browser's overlay show it (rustc's colours kept).
    pub rendered: String,
}

impl Failure {
    fn plain(message: String) -> Failure {
        Failure {
            rendered: format!("error: {message}\n"),
            message,
        }
    }
}

/// The outcome of every route in `table`, from the generated crates (their problems), cargo's
/// report and what loaded. Pure: the one statement of "which routes are broken, which are
/// loaded" for the first build and for every rebuild.
pub fn outcomes(
    table: &RouteTable,
    generated: &Generated,
    report: &BuildReport,
    loaded: &Loaded,
) -> BTreeMap<String, Outcome> {
    table
        .routes()
        .iter()
        .map(|route| {
            let file = &route.file;
            let outcome = if let Some(result) = loaded.get(file) {
                match result {
                    Ok(module) => Outcome::Loaded(module.clone()),
                    Err(error) => Outcome::Failed(Failure::plain(error.to_string())),
                }
            } else if report.artifacts.contains_key(file) {
                Outcome::Unchanged
            } else if let Some(diagnostics) = report.failed.get(file) {
                Outcome::Failed(Failure {
                    message: diagnostics.plain(),
                    rendered: diagnostics.rendered.clone(),
                })
            } else if let Some(problem) = generated.problems.iter().find(|p| p.file() == file) {
                Outcome::Failed(Failure::plain(problem.to_string()))
            } else {
                Outcome::NotBuilt
            };
            (file.clone(), outcome)
        })
        .collect()
}

/// The message of a route that has no code to serve.
pub fn not_built(file: &str) -> RouteEntry {
    RouteEntry::Failed {
        message: format!("route `{file}` was not built"),
    }
}

/// The code of every route after a first build: loaded, or failed with a plain-text message.
pub fn entries(outcomes: &BTreeMap<String, Outcome>) -> HashMap<String, RouteEntry> {
    outcomes
        .iter()
        .map(|(file, outcome)| {
            let entry = match outcome {
                Outcome::Loaded(module) => RouteEntry::Loaded(module.clone()),
                Outcome::Failed(failure) => RouteEntry::Failed {
                    message: failure.message.clone(),
                },
                Outcome::Unchanged | Outcome::NotBuilt => not_built(file),
            };
            (file.clone(), entry)
        })
        .collect()
}

/// The failing routes: rendered diagnostics by route file.
pub fn failures(outcomes: &BTreeMap<String, Outcome>) -> BTreeMap<String, String> {
    outcomes
        .iter()
        .filter_map(|(file, outcome)| match outcome {
            Outcome::Failed(failure) => Some((file.clone(), failure.rendered.clone())),
            _ => None,
        })
        .collect()
}

/// `4 routes`, or `4 routes and 2 middleware`, `4 routes, 2 middleware and 1 plugin` when
/// there are middleware or plugin files.
pub fn routes_text(routes: usize, middleware: usize, plugins: usize, tasks: usize) -> String {
    let mut parts = vec![plural(routes, "route")];
    if middleware > 0 {
        parts.push(format!("{middleware} middleware"));
    }
    if plugins > 0 {
        parts.push(plural(plugins, "plugin"));
    }
    if tasks > 0 {
        parts.push(plural(tasks, "task"));
    }
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.concat(),
    }
}

/// [`routes_text`] of a table.
pub fn table_text(table: &RouteTable) -> String {
    let middleware = table.middleware().len();
    let plugins = table.plugins().len();
    let tasks = table.tasks().len();
    routes_text(
        table.len() - middleware - plugins - tasks,
        middleware,
        plugins,
        tasks,
    )
}

/// `GET`, `ANY`, `WS`, `MW` (middleware), `PLUG` (plugin) or `TASK`: how the terminal names a
/// route's method.
pub fn method_label(kind: RouteKind, method: Option<nitro_router::Method>) -> String {
    match (kind, method) {
        (RouteKind::WebSocket, _) => "WS".to_owned(),
        (RouteKind::Http, Some(m)) => m.as_str().to_owned(),
        (RouteKind::Http, None) => "ANY".to_owned(),
        (RouteKind::Middleware, _) => "MW".to_owned(),
        (RouteKind::Plugin, _) => "PLUG".to_owned(),
        (RouteKind::Task, _) => "TASK".to_owned(),
    }
}

/// The startup summary: a headline, then one line per route (method, pattern, file), the
/// routes that are not loaded marked `(failed)`.
pub fn summary(
    table: &RouteTable,
    duration: Duration,
    outcomes: &BTreeMap<String, Outcome>,
    ui: &Ui,
) -> Vec<String> {
    let broken: BTreeSet<&str> = table
        .routes()
        .iter()
        .map(|r| r.file.as_str())
        .filter(|f| !matches!(outcomes.get(*f), Some(Outcome::Loaded(_))))
        .collect();
    summary_lines(table, duration, &broken, ui)
}

/// [`summary`] from the set of broken route files.
pub fn summary_lines(
    table: &RouteTable,
    duration: Duration,
    broken: &BTreeSet<&str>,
    ui: &Ui,
) -> Vec<String> {
    let total = table.len();
    if total == 0 {
        return Vec::new();
    }
    let ok = total - broken.len();
    let seconds = format!("{:.1} s", duration.as_secs_f64());
    let headline = if broken.is_empty() {
        format!(
            "{} built {} in {seconds}",
            ui.paint("✔", "32"),
            table_text(table),
        )
    } else {
        format!(
            "{} built {ok} of {} in {seconds}; {} failed (requests to {} answer 500 with the error)",
            ui.paint("✘", "31"),
            match table.middleware().len() + table.plugins().len() + table.tasks().len() {
                0 => plural(total, "route"),
                _ => format!("{total} ({})", table_text(table)),
            },
            broken.len(),
            if broken.len() == 1 { "it" } else { "them" }
        )
    };
    let mut lines = vec![headline];
    lines.extend(route_lines(table, broken, ui));
    lines
}

/// One line per route: method, pattern, file, and `(failed)` for the `broken` ones.
pub fn route_lines(table: &RouteTable, broken: &BTreeSet<&str>, ui: &Ui) -> Vec<String> {
    let rows: Vec<(String, &str, &str)> = table
        .routes()
        .iter()
        .map(|r| {
            (
                method_label(r.kind, r.method),
                r.pattern.as_str(),
                r.file.as_str(),
            )
        })
        .collect();
    let method_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let pattern_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    rows.into_iter()
        .map(|(method, pattern, file)| {
            let mut line = format!("  {method:<method_width$}  {pattern:<pattern_width$}  {file}");
            if broken.contains(file) {
                line.push_str(&format!("  {}", ui.paint("(failed)", "31")));
            }
            line.trim_end().to_owned()
        })
        .collect()
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

/// Shows what a full build left broken, in route order: compile errors of failed routes,
/// warnings of built ones, why a library did not load.
pub fn print_failures(
    generated: &Generated,
    report: &BuildReport,
    outcomes: &BTreeMap<String, Outcome>,
    ui: &Ui,
) {
    for route in &generated.routes {
        if show_diagnostics(&route.file, report, ui) {
            ui.error(&format!("route `{}` failed to build", route.file));
        } else if let Some(Outcome::Failed(failure)) = outcomes.get(&route.file) {
            ui.error(&failure.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{Env, Overrides, resolve};
    use crate::test_util::module;

    fn generated(problems: Vec<RouteProblem>) -> Generated {
        Generated {
            dir: PathBuf::new(),
            manifest_path: PathBuf::new(),
            routes: Vec::new(),
            problems,
            warnings: Vec::new(),
            changed: Vec::new(),
            changed_crates: BTreeSet::new(),
        }
    }

    fn diagnostics(rendered: &str) -> cargo_build::Diagnostics {
        cargo_build::Diagnostics {
            rendered: rendered.into(),
            errors: 1,
            warnings: 0,
        }
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
    fn the_summary_counts_middleware_apart_and_lists_them_first() {
        let table = RouteTable::from_project_files(
            ["index.rs", "_ws.rs"],
            ["2.log.rs", "1.auth.rs"],
            &ScanOptions::default(),
        )
        .unwrap();
        let ui = Ui::plain(false);
        let ok = summary_lines(&table, Duration::from_millis(900), &BTreeSet::new(), &ui);
        assert_eq!(
            ok,
            [
                "✔ built 2 routes and 2 middleware in 0.9 s",
                "  MW   *     middleware/1.auth.rs",
                "  MW   *     middleware/2.log.rs",
                "  WS   /_ws  routes/_ws.rs",
                "  ANY  /     routes/index.rs",
            ]
        );
        let broken = BTreeSet::from(["middleware/2.log.rs"]);
        let some = summary_lines(&table, Duration::from_millis(900), &broken, &ui);
        assert!(
            some[0].starts_with("✘ built 3 of 4 (2 routes and 2 middleware) in 0.9 s; 1 failed"),
            "{}",
            some[0]
        );
        assert_eq!(routes_text(1, 0, 0, 0), "1 route");
        assert_eq!(routes_text(2, 0, 1, 0), "2 routes and 1 plugin");
        assert_eq!(
            routes_text(2, 3, 2, 1),
            "2 routes, 3 middleware, 2 plugins and 1 task"
        );
    }

    #[test]
    fn dev_summary_text() {
        let table = RouteTable::from_files(
            [
                "index.rs",
                "api/hello.get.rs",
                "api/users/[id].post.rs",
                "blog/[...slug].rs",
                "_ws.rs",
                "broken.rs",
            ],
            &ScanOptions::default(),
        )
        .unwrap();
        let ui = Ui::plain(false);
        let ok = summary_lines(&table, Duration::from_millis(4321), &BTreeSet::new(), &ui);
        insta::assert_snapshot!("dev_summary_all_built", ok.join("\n"));
        let broken = BTreeSet::from(["routes/broken.rs", "routes/_ws.rs"]);
        let failed = summary_lines(&table, Duration::from_millis(987), &broken, &ui);
        insta::assert_snapshot!("dev_summary_two_failed", failed.join("\n"));
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
        let generated = generated(vec![RouteProblem::MissingHandler {
            file: "routes/c.rs".into(),
        }]);
        let mut report = BuildReport::default();
        report.failed.insert(
            "routes/a.rs".into(),
            diagnostics("\x1b[1merror\x1b[0m: boom\n"),
        );
        let outcomes = outcomes(&table, &generated, &report, &Loaded::new());
        let entries = entries(&outcomes);
        let message = |f: &str| match &entries[f] {
            RouteEntry::Failed { message } => message.clone(),
            RouteEntry::Loaded(_) => panic!("{f} loaded"),
        };
        assert_eq!(message("routes/a.rs"), "error: boom\n");
        assert_eq!(message("routes/b.rs"), "route `routes/b.rs` was not built");
        assert!(message("routes/c.rs").contains("has no `pub fn handler`"));
        // The overlay and the terminal get rustc's colours; the 500 page plain text.
        let failing = failures(&outcomes);
        assert_eq!(failing["routes/a.rs"], "\x1b[1merror\x1b[0m: boom\n");
        assert!(failing["routes/c.rs"].starts_with("error: route file `routes/c.rs` has no"));
        assert!(!failing.contains_key("routes/b.rs"));
    }

    #[test]
    fn every_route_gets_one_outcome() {
        let table = RouteTable::from_files(
            [
                "loaded.rs",
                "bad_lib.rs",
                "fresh.rs",
                "broken.rs",
                "gone.rs",
            ],
            &ScanOptions::default(),
        )
        .unwrap();
        let mut report = BuildReport::default();
        for file in ["loaded", "bad_lib", "fresh"] {
            report.artifacts.insert(
                format!("routes/{file}.rs"),
                Artifact {
                    path: PathBuf::from(format!("lib{file}.so")),
                    fresh: file == "fresh",
                },
            );
        }
        report
            .failed
            .insert("routes/broken.rs".into(), diagnostics("error: nope\n"));
        let mut loaded = Loaded::new();
        loaded.insert("routes/loaded.rs".into(), Ok(module("routes/loaded.rs")));
        loaded.insert(
            "routes/bad_lib.rs".into(),
            Err(LoadError::AbiMismatch {
                file: "routes/bad_lib.rs".into(),
                found: 0,
                expected: 1,
            }),
        );
        let out = outcomes(&table, &generated(Vec::new()), &report, &loaded);
        let kinds: Vec<(&str, &str)> = out
            .iter()
            .map(|(file, o)| {
                let kind = match o {
                    Outcome::Loaded(_) => "loaded",
                    Outcome::Unchanged => "unchanged",
                    Outcome::Failed(_) => "failed",
                    Outcome::NotBuilt => "not built",
                };
                (file.as_str(), kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("routes/bad_lib.rs", "failed"),
                ("routes/broken.rs", "failed"),
                ("routes/fresh.rs", "unchanged"),
                ("routes/gone.rs", "not built"),
                ("routes/loaded.rs", "loaded"),
            ]
        );
        let Outcome::Failed(load) = &out["routes/bad_lib.rs"] else {
            unreachable!()
        };
        assert!(
            load.message
                .starts_with("route `routes/bad_lib.rs` was built for")
        );
        assert_eq!(load.rendered, format!("error: {}\n", load.message));
        let ui = Ui::plain(false);
        let lines = summary(&table, Duration::ZERO, &out, &ui);
        assert!(lines[0].contains("built 1 of 5 routes"), "{}", lines[0]);
    }
}
