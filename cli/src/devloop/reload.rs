//! The dev loop of `nitro dev`: watch → rebuild what changed → swap it in under open
//! connections.
//!
//! One thread runs [`DevLoop::run`]: it waits for a [`Batch`] of changes, applies it, and waits
//! again. Builds therefore never overlap, and changes that arrive during a build are batched
//! into the next one. Applying a batch:
//!
//! 1. `nitro.toml` changed: resolve the config again. `[dependencies]` rebuild every route,
//!    `[features]` rescan `routes/`, `[dev] websocket_reload` applies at once; the address and
//!    `[renderer]` need a restart, which the terminal says.
//! 2. Route files changed (or appeared, or went): scan `routes/` again, regenerate `.nitro/`
//!    (cheap: unchanged files are not rewritten), and build only the routes that changed, were
//!    added, or whose generated crate changed, with one `cargo build -p … --keep-going`.
//! 3. Load each rebuilt library as a new generation (`fresh` artifacts are not reloaded) and
//!    swap in a new [`App`] atomically. A route that failed keeps its last good generation;
//!    one that never built answers `500` with its compile error.
//! 4. With `websocket_reload = "restart"`, open peers of rebuilt WebSocket routes are closed
//!    with `1012`; with `"keep"` they stay connected and their next event runs the new code.
//! 5. Tell the dev client: build errors (overlay) or ok; `index.html`/`public/` → reload.
//!
//! The terminal gets one line per rebuild (`✔ rebuilt routes/_ws.rs in 162 ms`), rustc's
//! diagnostics for failures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nitro_router::{RouteKind, RouteTable};
use nitro_runtime::devclient::Overlay;
use nitro_runtime::plugins::Plugins;
use nitro_runtime::{App, DevClient, Hub, RouteEntry, ServerHandle};

use crate::devloop::overlay::overlay_of;
use crate::devloop::watch::{Batch, Change, Watcher};
use crate::pipeline::{self, Outcome};
use crate::project::cargo_build::{self, BuildReport, Progress, Silent, TerminalProgress};
use crate::project::codegen::{self, Generated, RouteCrate, RouteProblem};
use crate::project::config::{self, Overrides, ResolvedConfig, WebSocketReload};
use crate::ui::Ui;

/// Everything the dev loop keeps between batches.
#[derive(Debug)]
pub(crate) struct DevLoop {
    pub(crate) overrides: Overrides,
    pub(crate) config: ResolvedConfig,
    pub(crate) table: RouteTable,
    pub(crate) generated: Generated,
    /// The code of every route, as served now.
    pub(crate) routes: HashMap<String, RouteEntry>,
    /// Route file → why it does not build now (rustc's rendered diagnostics, with colours).
    pub(crate) failing: BTreeMap<String, String>,
    /// Why `nitro.toml` could not be read again, while it cannot.
    pub(crate) config_error: Option<String>,
    pub(crate) handle: ServerHandle,
    pub(crate) hub: Arc<Hub>,
    pub(crate) dev_client: Arc<DevClient>,
    /// The set-up plugins: an edited one is shut down and set up again after the swap.
    pub(crate) plugins: Plugins,
    /// How long the shutdown of the plugins an edit replaced may take.
    pub(crate) plugin_timeout: Duration,
    /// The server's runtime, which runs the plugins' `shutdown` and `setup`.
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) ui: Ui,
}

/// What changed in the config, for the dev loop.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ConfigChanges {
    /// `[dependencies]`: rebuild every route.
    pub(crate) rebuild_all: bool,
    /// `[features]`: scan `routes/` again.
    pub(crate) rescan: bool,
    /// Settings that only a restart applies, with why.
    pub(crate) need_restart: Vec<String>,
}

/// Compares two resolved configs. Pure.
pub(crate) fn config_changes(old: &ResolvedConfig, new: &ResolvedConfig) -> ConfigChanges {
    let mut out = ConfigChanges {
        rebuild_all: old.dependencies != new.dependencies,
        rescan: old.websocket != new.websocket,
        need_restart: Vec::new(),
    };
    if old.addr != new.addr {
        out.need_restart.push(format!(
            "the address changed from `{}` to `{}`",
            old.addr, new.addr
        ));
    }
    if old.renderer_static != new.renderer_static {
        out.need_restart
            .push("`[renderer] static` changed".to_owned());
    }
    // The server's limits and Host/Origin checks are fixed when it starts (issue #5).
    if old.limits != new.limits {
        out.need_restart.push("`[limits]` changed".to_owned());
    }
    if old.allowed_hosts != new.allowed_hosts {
        out.need_restart
            .push("`[dev] allowed_hosts` changed".to_owned());
    }
    if old.allowed_origins != new.allowed_origins {
        out.need_restart
            .push("`[websocket] allowed_origins` changed".to_owned());
    }
    if old.pubsub != new.pubsub {
        out.need_restart
            .push("`[websocket] pubsub` changed".to_owned());
    }
    // The scheduler's timers start with the server.
    if old.scheduled_tasks != new.scheduled_tasks {
        out.need_restart
            .push("`[scheduled_tasks]` changed".to_owned());
    }
    out
}

impl DevLoop {
    /// Runs the loop on its own thread, `nitro-dev-loop`.
    pub(crate) fn spawn(self, watcher: Watcher) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("nitro-dev-loop".into())
            .spawn(move || self.run(watcher))
            .map(drop)
    }

    /// Applies batches until the watcher stops.
    pub(crate) fn run(mut self, mut watcher: Watcher) {
        while let Some(batch) = watcher.next_batch() {
            // A bug here must not end hot reload silently: say so, and take the next batch.
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.apply(&batch);
            }));
            if applied.is_err() {
                self.ui.error(
                    "nitro's dev loop failed while applying the last change (a bug; the panic is above): if the server looks stale, restart `nitro dev`",
                );
            }
        }
    }

    /// Applies one batch of changes.
    pub(crate) fn apply(&mut self, batch: &Batch) {
        let started = batch.first.unwrap_or_else(Instant::now);
        tracing::debug!(target: "nitro::dev", "changes: {:?}", batch.changes);
        let mut rebuild_all = false;
        let mut rescan = batch.touches_routes();

        if batch.has(&Change::Config) {
            match config::load(&self.config.display_dir, &self.overrides) {
                Ok(mut new) => {
                    let changes = config_changes(&self.config, &new);
                    for why in &changes.need_restart {
                        self.ui.warn(&format!(
                            "`{}` changed: {why}; restart `nitro dev` to apply it",
                            self.config.display_config_file().display()
                        ));
                    }
                    // Keep serving as started until the restart.
                    new.addr = self.config.addr;
                    new.renderer_static = self.config.renderer_static;
                    if new.websocket_reload != self.config.websocket_reload {
                        self.ui.status(&format!(
                            "  websocket_reload is now `{}`",
                            match new.websocket_reload {
                                WebSocketReload::Keep => "keep",
                                WebSocketReload::Restart => "restart",
                            }
                        ));
                    }
                    if new.runtime_config != self.config.runtime_config {
                        // Routes read the new value on their next `nitro::config()`.
                        self.hub.runtime_config().set(&new.runtime_config);
                        self.ui.status("  `[runtime_config]` applied");
                    }
                    if new.route_rules != self.config.route_rules {
                        self.hub.route_rules().set(new.route_rules.clone());
                        self.ui.status("  `[route_rules]` applied");
                    }
                    if new.storage != self.config.storage {
                        // Mounts that did not change keep their data.
                        let configured = crate::project::config_storage::placed(
                            &new.storage,
                            &new.project_dir,
                            &|name| std::env::var(name).ok(),
                        )
                        .map_err(|e| e.to_string())
                        .and_then(|mounts| {
                            self.hub
                                .storage()
                                .configure(&mounts)
                                .map_err(|e| e.to_string())
                        });
                        match configured {
                            Ok(()) => self.ui.status("  `[storage]` applied"),
                            Err(error) => self.ui.warn(&format!(
                                "`[storage]` not applied: {error}; restart `nitro dev`"
                            )),
                        }
                    }
                    rebuild_all = changes.rebuild_all;
                    rescan |= changes.rescan || changes.rebuild_all;
                    self.config = new;
                    if self.config_error.take().is_some() && !rescan {
                        self.publish_state();
                    }
                }
                Err(error) => {
                    let text = format!(
                        "{error}\n  (keeping the previous settings until `{}` is fixed)",
                        self.config.display_config_file().display()
                    );
                    self.ui.error(&text);
                    self.config_error = Some(format!("error: {text}\n"));
                    self.publish_state();
                }
            }
        }

        if rescan {
            self.rebuild(&batch.routes(), rebuild_all, started);
        }

        if let Some(reason) = batch.reload_reason() {
            self.ui.status(&format!(
                "{} {reason} changed: reloading pages",
                self.ui.paint("↻", "36")
            ));
            self.dev_client.reload(&reason);
        }
    }

    /// Scans, regenerates, builds what changed, loads it and swaps the app: outcomes → merge
    /// with the last good build → swap → report.
    fn rebuild(&mut self, touched: &BTreeSet<String>, rebuild_all: bool, started: Instant) {
        let table = match pipeline::scan(&self.config) {
            Ok(table) => table,
            Err(error) => {
                let text = error.to_string();
                self.ui
                    .error(&format!("{text}\n  (still serving the previous routes)"));
                self.dev_client.build_finished(Some(overlay_of(&text)));
                return;
            }
        };
        let generated = match codegen::generate(&self.config, &table) {
            Ok(generated) => generated,
            Err(error) => {
                self.ui.error(&format!("cannot update `.nitro/`: {error}"));
                return;
            }
        };
        for warning in &generated.warnings {
            if !self.generated.warnings.contains(warning) {
                self.ui.warn(warning);
            }
        }

        let to_build: Vec<RouteCrate> = generated
            .routes
            .iter()
            .filter(|r| {
                rebuild_all
                    || touched.contains(&r.file)
                    || generated.changed_crates.contains(&r.crate_name)
                    || !self.routes.contains_key(&r.file)
            })
            .cloned()
            .collect();
        tracing::debug!(
            target: "nitro::dev",
            "building {:?}",
            to_build.iter().map(|r| r.file.as_str()).collect::<Vec<_>>()
        );
        let report = if to_build.is_empty() {
            BuildReport {
                success: true,
                ..BuildReport::default()
            }
        } else {
            // Progress only when dependencies compile (a changed `[dependencies]`).
            let progress: Box<dyn Progress> = if rebuild_all && !self.ui.is_quiet() {
                Box::new(TerminalProgress::new())
            } else {
                Box::new(Silent)
            };
            match pipeline::build(
                &self.config,
                &generated,
                &to_build,
                false,
                progress.as_ref(),
            ) {
                Ok(report) => report,
                Err(error) => {
                    self.report_build_error(&error);
                    return;
                }
            }
        };

        // A fresh artifact of a route that is served already is not loaded again.
        let loaded = pipeline::load(
            &report,
            &self.hub,
            &self.config.assets_dir(),
            &pipeline::cache_dir(&self.config),
            |file, artifact| {
                artifact.fresh && matches!(self.routes.get(file), Some(RouteEntry::Loaded(_)))
            },
        );
        let outcomes = pipeline::outcomes(&table, &generated, &report, &loaded);
        let merged = merge(
            &Last {
                table: &self.table,
                routes: &self.routes,
                failing: &self.failing,
                problems: &self.generated.problems,
            },
            &table,
            &outcomes,
            &generated.problems,
            &report,
        );

        // Swap.
        let restart: Vec<String> = merged
            .reloaded
            .iter()
            .filter(|file| {
                table
                    .routes()
                    .iter()
                    .any(|r| &r.file == *file && r.kind == RouteKind::WebSocket)
            })
            .cloned()
            .collect();
        let stale = stale_routes(&merged.entries, &merged.failing);
        self.handle
            .set_app(App::new(table.clone(), merged.entries.clone()).with_stale(stale));
        // Answers the old code cached are not served for the new code.
        self.hub.route_rules().new_epoch();
        nitro_runtime::telemetry::metrics::dev_reload();
        let app = self.handle.app();
        for error in self
            .runtime
            .block_on(self.plugins.reload(&app, self.plugin_timeout))
        {
            self.ui.error(&error.to_string());
        }
        drop(app);
        let elapsed = started.elapsed();
        let closed =
            if self.config.websocket_reload == WebSocketReload::Restart && !restart.is_empty() {
                self.handle
                    .close_route_peers(&restart, 1012, "route reloaded")
            } else {
                0
            };

        self.table = table;
        let previous_problems = std::mem::replace(&mut self.generated, generated).problems;
        self.routes = merged.entries;
        let previous_failing = std::mem::replace(&mut self.failing, merged.failing);

        self.report_rebuild(&Rebuilt {
            touched,
            previous_failing: &previous_failing,
            previous_problems: &previous_problems,
            to_build: &to_build,
            report: &report,
            reloaded: &merged.reloaded,
            added: &merged.added,
            removed: &merged.removed,
            closed,
            elapsed,
        });
        self.dev_client.build_finished(self.overlay());
    }

    /// The terminal lines of a rebuild: what was rebuilt, added and removed, then rustc's
    /// warnings and errors of what was built.
    fn report_rebuild(&self, rebuilt: &Rebuilt<'_>) {
        let ms = format!("{} ms", rebuilt.elapsed.as_millis());
        let ok = self.ui.paint("✔", "32");
        if !rebuilt.reloaded.is_empty() {
            let mut line = format!("{ok} rebuilt {} in {ms}", rebuilt.reloaded.join(", "));
            let closed = rebuilt.closed;
            if closed > 0 {
                line.push_str(&format!(
                    " (closed {closed} WebSocket connection{} with 1012)",
                    if closed == 1 { "" } else { "s" }
                ));
            }
            self.ui.status(&line);
        }
        for file in rebuilt.added {
            if let Some(route) = self.table.routes().iter().find(|r| &r.file == file) {
                self.ui.status(&format!(
                    "{ok} added {} ({} {}) in {ms}",
                    route.file,
                    pipeline::method_label(route.kind, route.method),
                    route.pattern
                ));
            }
        }
        for file in rebuilt.removed {
            self.ui.status(&format!("{ok} removed {file}"));
        }
        let report = rebuilt.report;
        for route in rebuilt.to_build {
            if let Some(warnings) = report.warnings.get(&route.file)
                && !self.ui.is_quiet()
            {
                self.ui.diagnostics(warnings);
            }
        }
        for route in rebuilt.to_build {
            let file = &route.file;
            if let Some(rendered) = self.failing.get(file)
                && !rebuilt.touched.contains(file)
                && rebuilt.previous_failing.get(file) == Some(rendered)
            {
                continue; // the same errors as last time, its file not saved since: said already
            }
            if let Some(diagnostics) = report.failed.get(file) {
                self.ui.diagnostics(diagnostics);
            }
            if let Some(rendered) = self.failing.get(file) {
                if !report.failed.contains_key(file) {
                    self.ui.diagnostics(&cargo_build::Diagnostics {
                        rendered: rendered.clone(),
                        errors: 1,
                        warnings: 0,
                    });
                }
                let what = if matches!(self.routes.get(file), Some(RouteEntry::Loaded(_))) {
                    "still serving its last good build"
                } else {
                    "requests to it answer 500 with the error"
                };
                self.ui
                    .error(&format!("route `{file}` failed to build: {what}"));
            }
        }
        for problem in &self.generated.problems {
            let file = problem.file();
            let said =
                rebuilt.previous_problems.contains(problem) && !rebuilt.touched.contains(file);
            if !said
                && !rebuilt.to_build.iter().any(|r| r.file == file)
                && self.failing.contains_key(file)
            {
                self.ui.error(&problem.to_string());
            }
        }
    }

    /// Tells the dev client the current build state (at startup).
    pub(crate) fn publish_state(&self) {
        self.dev_client.build_finished(self.overlay());
    }

    /// Shows `crash` (what ended the previous server: the supervisor restarted this one) in
    /// the page overlay, above the build errors if any, until the next build.
    pub(crate) fn publish_crash(&self, crash: &str) {
        let mut rendered = format!("error: {crash}\n  (nitro dev restarted the server)\n\n");
        rendered.push_str(&self.rendered_errors());
        self.dev_client.build_finished(Some(overlay_of(&rendered)));
    }

    fn report_build_error(&mut self, error: &cargo_build::BuildError) {
        let mut text = error.to_string();
        if let Some(hint) = error.hint() {
            text.push_str(&format!("\nhint: {hint}"));
        }
        self.ui
            .error(&format!("{text}\n  (still serving the previous build)"));
        self.dev_client.build_finished(Some(overlay_of(&text)));
    }

    /// The errors of every failing route, for the browser.
    fn overlay(&self) -> Option<Overlay> {
        if self.failing.is_empty() && self.config_error.is_none() {
            return None;
        }
        Some(overlay_of(&self.rendered_errors()))
    }

    /// The config error and the errors of every failing route, as rustc rendered them.
    fn rendered_errors(&self) -> String {
        self.config_error
            .iter()
            .chain(self.failing.values())
            .map(String::as_str)
            .collect()
    }
}

/// What the dev loop served before a rebuild.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Last<'a> {
    pub(crate) table: &'a RouteTable,
    pub(crate) routes: &'a HashMap<String, RouteEntry>,
    pub(crate) failing: &'a BTreeMap<String, String>,
    pub(crate) problems: &'a [RouteProblem],
}

/// The routes after a rebuild, and what changed.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// The code of every route of the new table.
    pub(crate) entries: HashMap<String, RouteEntry>,
    /// Route file → why it does not build now (rendered diagnostics).
    pub(crate) failing: BTreeMap<String, String>,
    /// Routes of the old table with a new generation, in table order.
    pub(crate) reloaded: Vec<String>,
    /// Routes new to the table with a first generation, in table order.
    pub(crate) added: Vec<String>,
    /// Routes of the old table that are gone.
    pub(crate) removed: Vec<String>,
}

/// Merges the outcomes of a rebuild with the last build. Pure. A route that failed keeps its
/// last good generation (and is failing); one that was not built keeps what it had; one
/// that never built answers `500` with its error.
pub(crate) fn merge(
    last: &Last<'_>,
    table: &RouteTable,
    outcomes: &BTreeMap<String, Outcome>,
    problems: &[RouteProblem],
    report: &BuildReport,
) -> Merged {
    let old_files: BTreeSet<&str> = last
        .table
        .routes()
        .iter()
        .map(|r| r.file.as_str())
        .collect();
    let mut merged = Merged {
        failing: last.failing.clone(),
        ..Merged::default()
    };
    for route in table.routes() {
        let file = &route.file;
        let previous = last.routes.get(file).cloned();
        let previous_good = previous
            .clone()
            .filter(|e| matches!(e, RouteEntry::Loaded(_)));
        let entry = match outcomes.get(file) {
            Some(Outcome::Loaded(module)) => {
                merged.failing.remove(file);
                if old_files.contains(file.as_str()) {
                    merged.reloaded.push(file.clone());
                } else {
                    merged.added.push(file.clone());
                }
                RouteEntry::Loaded(module.clone())
            }
            Some(Outcome::Unchanged) => {
                tracing::debug!(target: "nitro::dev", "`{file}` is unchanged: nothing to reload");
                merged.failing.remove(file);
                previous_good.unwrap_or_else(|| pipeline::not_built(file))
            }
            Some(Outcome::Failed(failure)) => {
                merged
                    .failing
                    .insert(file.clone(), failure.rendered.clone());
                previous_good.unwrap_or_else(|| RouteEntry::Failed {
                    message: failure.message.clone(),
                })
            }
            Some(Outcome::NotBuilt) | None => previous.unwrap_or_else(|| pipeline::not_built(file)),
        };
        merged.entries.insert(file.clone(), entry);
    }
    let new_files: BTreeSet<&str> = table.routes().iter().map(|r| r.file.as_str()).collect();
    merged.removed = old_files
        .iter()
        .filter(|f| !new_files.contains(*f))
        .map(|f| (*f).to_owned())
        .collect();
    merged
        .failing
        .retain(|file, _| new_files.contains(file.as_str()));
    // A route whose problem went away without a build (its file deleted) is fine again.
    for problem in last.problems {
        let file = problem.file();
        if !problems.contains(problem) && !report.failed.contains_key(file) {
            let loaded = matches!(merged.entries.get(file), Some(RouteEntry::Loaded(_)));
            if loaded || !new_files.contains(file) {
                merged.failing.remove(file);
            }
        }
    }
    merged
}

/// The routes served from their last good build while their last edit fails to build, with
/// the first line of their errors (for the `x-nitro-stale` header and the log of each hit).
pub(crate) fn stale_routes(
    entries: &HashMap<String, RouteEntry>,
    failing: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    failing
        .iter()
        .filter(|(file, _)| matches!(entries.get(*file), Some(RouteEntry::Loaded(_))))
        .map(|(file, rendered)| {
            let plain = crate::devloop::ansi::strip(rendered);
            let first = plain
                .lines()
                .find(|line| line.starts_with("error"))
                .or_else(|| plain.lines().find(|line| !line.trim().is_empty()))
                .unwrap_or("see the terminal")
                .trim()
                .to_owned();
            (file.clone(), first)
        })
        .collect()
}

/// What a rebuild did, for the terminal.
struct Rebuilt<'a> {
    /// The route files saved in this batch: their errors are printed again even if unchanged.
    touched: &'a BTreeSet<String>,
    /// What was failing, and the problems found, before this rebuild: an error is printed once
    /// per change, not on every unrelated rebuild.
    previous_failing: &'a BTreeMap<String, String>,
    previous_problems: &'a [RouteProblem],
    to_build: &'a [RouteCrate],
    report: &'a BuildReport,
    reloaded: &'a [String],
    added: &'a [String],
    removed: &'a [String],
    closed: usize,
    elapsed: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{Env, resolve};
    use std::path::Path;

    fn config(file: &str) -> ResolvedConfig {
        resolve(
            Path::new("/p"),
            Path::new("p"),
            Some(file),
            &Env::default(),
            &Overrides::default(),
        )
        .unwrap()
    }

    #[test]
    fn config_changes_say_what_to_do() {
        let base = config("");
        assert_eq!(config_changes(&base, &base), ConfigChanges::default());
        let deps = config("[dependencies]\nserde_json = \"1\"\n");
        let c = config_changes(&base, &deps);
        assert!(c.rebuild_all && !c.rescan && c.need_restart.is_empty());
        let features = config("[features]\nwebsocket = false\n");
        let c = config_changes(&base, &features);
        assert!(c.rescan && !c.rebuild_all);
        let port = config("[dev]\nport = 4000\n");
        let c = config_changes(&base, &port);
        assert_eq!(
            c.need_restart,
            ["the address changed from `127.0.0.1:3000` to `127.0.0.1:4000`"]
        );
        let renderer = config("[renderer]\nstatic = false\n");
        assert_eq!(
            config_changes(&base, &renderer).need_restart,
            ["`[renderer] static` changed"]
        );
        let reload = config("[dev]\nwebsocket_reload = \"restart\"\n");
        assert_eq!(config_changes(&base, &reload), ConfigChanges::default());
    }

    fn loaded_file(entry: Option<&RouteEntry>) -> Option<String> {
        match entry {
            Some(RouteEntry::Loaded(module)) => Some(module.file().to_owned()),
            _ => None,
        }
    }

    fn failed_message(entry: Option<&RouteEntry>) -> Option<String> {
        match entry {
            Some(RouteEntry::Failed { message }) => Some(message.clone()),
            _ => None,
        }
    }

    fn failure(text: &str) -> Outcome {
        Outcome::Failed(pipeline::Failure {
            message: text.to_owned(),
            rendered: format!("\x1b[31m{text}\x1b[0m"),
        })
    }

    #[test]
    fn a_rebuild_merges_with_the_last_good_build() {
        use crate::test_util::module;
        let options = nitro_router::ScanOptions::default();
        let old_table =
            RouteTable::from_files(["good.rs", "edited.rs", "never.rs", "gone.rs"], &options)
                .unwrap();
        let routes: HashMap<String, RouteEntry> = [
            ("routes/good.rs", RouteEntry::Loaded(module("old good"))),
            ("routes/edited.rs", RouteEntry::Loaded(module("old edited"))),
            (
                "routes/never.rs",
                RouteEntry::Failed {
                    message: "old error".into(),
                },
            ),
            ("routes/gone.rs", RouteEntry::Loaded(module("old gone"))),
        ]
        .into_iter()
        .map(|(f, e)| (f.to_owned(), e))
        .collect();
        let failing = BTreeMap::from([
            ("routes/never.rs".to_owned(), "old error".to_owned()),
            ("routes/gone.rs".to_owned(), "gone error".to_owned()),
        ]);
        let last = Last {
            table: &old_table,
            routes: &routes,
            failing: &failing,
            problems: &[],
        };
        let table = RouteTable::from_files(
            [
                "good.rs",
                "edited.rs",
                "never.rs",
                "new.rs",
                "new_broken.rs",
            ],
            &options,
        )
        .unwrap();
        let outcomes = BTreeMap::from([
            ("routes/good.rs".to_owned(), Outcome::NotBuilt),
            ("routes/edited.rs".to_owned(), failure("edit broke it")),
            (
                "routes/never.rs".to_owned(),
                Outcome::Loaded(module("new never")),
            ),
            (
                "routes/new.rs".to_owned(),
                Outcome::Loaded(module("new new")),
            ),
            ("routes/new_broken.rs".to_owned(), failure("born broken")),
        ]);
        let merged = merge(&last, &table, &outcomes, &[], &BuildReport::default());

        // Not built: what it had. Failed: its last good build, and failing (rendered).
        assert_eq!(
            loaded_file(merged.entries.get("routes/good.rs")).as_deref(),
            Some("old good")
        );
        assert_eq!(
            loaded_file(merged.entries.get("routes/edited.rs")).as_deref(),
            Some("old edited")
        );
        assert_eq!(
            merged.failing["routes/edited.rs"],
            "\x1b[31medit broke it\x1b[0m"
        );
        // Loaded: the new generation, no longer failing.
        assert_eq!(
            loaded_file(merged.entries.get("routes/never.rs")).as_deref(),
            Some("new never")
        );
        assert!(!merged.failing.contains_key("routes/never.rs"));
        // Never built: a 500 with the plain message.
        assert_eq!(
            failed_message(merged.entries.get("routes/new_broken.rs")).as_deref(),
            Some("born broken")
        );
        // Gone: out of the app and of the failing list.
        assert!(!merged.entries.contains_key("routes/gone.rs"));
        assert!(!merged.failing.contains_key("routes/gone.rs"));
        assert_eq!(merged.entries.len(), 5);
        assert_eq!(merged.reloaded, ["routes/never.rs"]);
        assert_eq!(merged.added, ["routes/new.rs"]);
        assert_eq!(merged.removed, ["routes/gone.rs"]);
        assert_eq!(
            merged.failing.keys().collect::<Vec<_>>(),
            ["routes/edited.rs", "routes/new_broken.rs"]
        );
    }

    #[test]
    fn an_unchanged_route_keeps_its_generation_and_a_fixed_problem_clears() {
        use crate::test_util::module;
        let options = nitro_router::ScanOptions::default();
        let table = RouteTable::from_files(["a.rs", "b.rs"], &options).unwrap();
        let routes: HashMap<String, RouteEntry> = [
            ("routes/a.rs", RouteEntry::Loaded(module("a1"))),
            ("routes/b.rs", RouteEntry::Loaded(module("b1"))),
        ]
        .into_iter()
        .map(|(f, e)| (f.to_owned(), e))
        .collect();
        let problem = RouteProblem::MissingHandler {
            file: "routes/b.rs".into(),
        };
        let failing = BTreeMap::from([
            ("routes/a.rs".to_owned(), "a was broken".to_owned()),
            ("routes/b.rs".to_owned(), format!("error: {problem}\n")),
        ]);
        let problems = [problem];
        let last = Last {
            table: &table,
            routes: &routes,
            failing: &failing,
            problems: &problems,
        };
        // `a` built fresh (reverted to what is served); `b`'s problem went away unbuilt.
        let outcomes = BTreeMap::from([
            ("routes/a.rs".to_owned(), Outcome::Unchanged),
            ("routes/b.rs".to_owned(), Outcome::NotBuilt),
        ]);
        let merged = merge(&last, &table, &outcomes, &[], &BuildReport::default());
        assert_eq!(
            loaded_file(merged.entries.get("routes/a.rs")).as_deref(),
            Some("a1")
        );
        assert_eq!(
            loaded_file(merged.entries.get("routes/b.rs")).as_deref(),
            Some("b1")
        );
        assert!(merged.failing.is_empty(), "{:?}", merged.failing);
        assert!(merged.reloaded.is_empty() && merged.added.is_empty());
        assert!(merged.removed.is_empty());
    }
}
