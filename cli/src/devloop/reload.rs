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
use std::time::Instant;

use nitro_router::{RouteKind, RouteTable};
use nitro_runtime::devclient::Overlay;
use nitro_runtime::loader::LoadedRoute;
use nitro_runtime::{App, DevClient, Hub, RouteEntry, ServerHandle};

use crate::commands::dev;
use crate::devloop::watch::{Batch, Change, Watcher};
use crate::project::cargo_build::{self, BuildReport, Progress, Silent, TerminalProgress};
use crate::project::codegen::{self, Generated, RouteProblem};
use crate::project::config::{self, Overrides, ResolvedConfig, WebSocketReload};
use crate::ui::Ui;

/// Everything the dev loop keeps between batches.
#[derive(Debug)]
pub struct DevLoop {
    pub overrides: Overrides,
    pub config: ResolvedConfig,
    pub table: RouteTable,
    pub generated: Generated,
    /// The code of every route, as served now.
    pub routes: HashMap<String, RouteEntry>,
    /// Route file → why it does not build now (rustc's rendered diagnostics, with colours).
    pub failing: BTreeMap<String, String>,
    /// Why `nitro.toml` could not be read again, while it cannot.
    pub config_error: Option<String>,
    pub handle: ServerHandle,
    pub hub: Arc<Hub>,
    pub dev_client: Arc<DevClient>,
    pub ui: Ui,
}

/// What changed in the config, for the dev loop.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigChanges {
    /// `[dependencies]`: rebuild every route.
    pub rebuild_all: bool,
    /// `[features]`: scan `routes/` again.
    pub rescan: bool,
    /// Settings that only a restart applies, with why.
    pub need_restart: Vec<String>,
}

/// Compares two resolved configs. Pure.
pub fn config_changes(old: &ResolvedConfig, new: &ResolvedConfig) -> ConfigChanges {
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
    out
}

impl DevLoop {
    /// Applies batches until the watcher stops.
    pub fn run(mut self, mut watcher: Watcher) {
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
    pub fn apply(&mut self, batch: &Batch) {
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

    /// Scans, regenerates, builds what changed, loads it and swaps the app.
    fn rebuild(&mut self, touched: &BTreeSet<String>, rebuild_all: bool, started: Instant) {
        let table = match dev::scan(&self.config) {
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

        // Crates whose generated files changed (a hook added, dependencies edited).
        let changed_crates: BTreeSet<String> = generated
            .changed
            .iter()
            .filter_map(|path| {
                let mut parts = path.components();
                (parts.next()?.as_os_str() == "routes")
                    .then(|| parts.next())
                    .flatten()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
            })
            .collect();
        let to_build: Vec<_> = generated
            .routes
            .iter()
            .filter(|r| {
                rebuild_all
                    || touched.contains(&r.file)
                    || changed_crates.contains(&r.crate_name)
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
            match dev::build(&self.config, &generated, &to_build, progress.as_ref()) {
                Ok(report) => report,
                Err(error) => {
                    self.report_build_error(&error);
                    return;
                }
            }
        };

        let old_files: BTreeSet<String> =
            self.table.routes().iter().map(|r| r.file.clone()).collect();
        let cache_dir = dev::cache_dir(&self.config);
        let mut entries = HashMap::new();
        let mut reloaded = Vec::new();
        let mut added = Vec::new();
        for route in table.routes() {
            let file = &route.file;
            let previous = self.routes.get(file).cloned();
            let previous_good = previous
                .clone()
                .filter(|e| matches!(e, RouteEntry::Loaded(_)));
            let is_new = !old_files.contains(file);
            let entry = if let Some(artifact) = report.artifacts.get(file) {
                if artifact.fresh && previous_good.is_some() {
                    tracing::debug!(target: "nitro::dev", "`{file}` is unchanged: nothing to reload");
                    self.failing.remove(file);
                    previous_good
                } else {
                    match LoadedRoute::load(&artifact.path, file, &self.hub, &cache_dir) {
                        Ok(module) => {
                            self.failing.remove(file);
                            if is_new {
                                added.push(route.clone());
                            } else {
                                reloaded.push(file.clone());
                            }
                            Some(RouteEntry::Loaded(module))
                        }
                        Err(error) => {
                            let message = error.to_string();
                            self.failing
                                .insert(file.clone(), format!("error: {message}\n"));
                            previous_good.or(Some(RouteEntry::Failed { message }))
                        }
                    }
                }
            } else if let Some(diagnostics) = report.failed.get(file) {
                self.failing
                    .insert(file.clone(), diagnostics.rendered.clone());
                previous_good.or(Some(RouteEntry::Failed {
                    message: diagnostics.plain(),
                }))
            } else if let Some(problem) =
                generated.problems.iter().find(|p| problem_file(p) == file)
            {
                let message = problem.to_string();
                self.failing
                    .insert(file.clone(), format!("error: {message}\n"));
                previous_good.or(Some(RouteEntry::Failed { message }))
            } else {
                previous.or_else(|| {
                    Some(RouteEntry::Failed {
                        message: format!("route `{file}` was not built"),
                    })
                })
            };
            if let Some(entry) = entry {
                entries.insert(file.clone(), entry);
            }
        }
        let new_files: BTreeSet<&str> = table.routes().iter().map(|r| r.file.as_str()).collect();
        let removed: Vec<String> = old_files
            .iter()
            .filter(|f| !new_files.contains(f.as_str()))
            .cloned()
            .collect();
        self.failing
            .retain(|file, _| new_files.contains(file.as_str()));
        // A route whose problem went away without a build (its file deleted) is fine again.
        for problem in &self.generated.problems {
            let file = problem_file(problem);
            if !generated.problems.contains(problem) && !report.failed.contains_key(file) {
                let loaded = matches!(entries.get(file), Some(RouteEntry::Loaded(_)));
                if loaded || !new_files.contains(file) {
                    self.failing.remove(file);
                }
            }
        }

        let restart: Vec<String> = reloaded
            .iter()
            .filter(|file| {
                table
                    .routes()
                    .iter()
                    .any(|r| &r.file == *file && r.kind == RouteKind::WebSocket)
            })
            .cloned()
            .collect();
        self.handle
            .set_app(App::new(table.clone(), entries.clone()));
        let elapsed = started.elapsed();
        let closed =
            if self.config.websocket_reload == WebSocketReload::Restart && !restart.is_empty() {
                self.handle
                    .close_route_peers(&restart, 1012, "route reloaded")
            } else {
                0
            };

        self.table = table;
        self.generated = generated;
        self.routes = entries;

        // Terminal.
        let ms = format!("{} ms", elapsed.as_millis());
        let ok = self.ui.paint("✔", "32");
        if !reloaded.is_empty() {
            let mut line = format!("{ok} rebuilt {} in {ms}", reloaded.join(", "));
            if closed > 0 {
                line.push_str(&format!(
                    " (closed {closed} WebSocket connection{} with 1012)",
                    if closed == 1 { "" } else { "s" }
                ));
            }
            self.ui.status(&line);
        }
        for route in &added {
            let method = match (route.kind, route.method) {
                (RouteKind::WebSocket, _) => "WS".to_owned(),
                (RouteKind::Http, Some(m)) => m.as_str().to_owned(),
                (RouteKind::Http, None) => "ANY".to_owned(),
            };
            self.ui.status(&format!(
                "{ok} added {} ({method} {}) in {ms}",
                route.file, route.pattern
            ));
        }
        for file in &removed {
            self.ui.status(&format!("{ok} removed {file}"));
        }
        for route in &to_build {
            if let Some(warnings) = report.warnings.get(&route.file)
                && !self.ui.is_quiet()
            {
                self.ui.diagnostics(warnings);
            }
        }
        for route in &to_build {
            let file = &route.file;
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
            let file = problem_file(problem);
            if !to_build.iter().any(|r| r.file == file) && self.failing.contains_key(file) {
                self.ui.error(&problem.to_string());
            }
        }

        self.dev_client.build_finished(self.overlay());
    }

    /// Tells the dev client the current build state (at startup).
    pub fn publish_state(&self) {
        self.dev_client.build_finished(self.overlay());
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
        let rendered: String = self
            .config_error
            .iter()
            .chain(self.failing.values())
            .map(String::as_str)
            .collect();
        Some(overlay_of(&rendered))
    }
}

/// The overlay for rendered diagnostics (ANSI colours allowed).
pub fn overlay_of(rendered: &str) -> Overlay {
    let text = cargo_build::strip_ansi(rendered);
    Overlay {
        html: crate::devloop::ansi::to_html(rendered),
        locations: error_locations(&text),
        text,
    }
}

/// The `file:line:col` of each error in plain rustc diagnostics (the `-->` line of every
/// `error` block; warnings are left out), in order, without repeats. Pure.
pub fn error_locations(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_error = false;
    for line in text.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.starts_with("warning") || line.starts_with("For more information") {
            in_error = false;
        } else if in_error && let Some(at) = line.trim_start().strip_prefix("--> ") {
            let at = at.trim().to_owned();
            if !out.contains(&at) {
                out.push(at);
            }
        }
    }
    out
}

fn problem_file(problem: &RouteProblem) -> &str {
    match problem {
        RouteProblem::MissingHandler { file } | RouteProblem::PrivateHandler { file } => file,
    }
}

/// The failing routes after the first build: rendered diagnostics by route file.
pub fn initial_failures(
    generated: &Generated,
    report: &BuildReport,
    loaded: &HashMap<String, Result<Arc<LoadedRoute>, nitro_runtime::loader::LoadError>>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (file, diagnostics) in &report.failed {
        out.insert(file.clone(), diagnostics.rendered.clone());
    }
    for (file, result) in loaded {
        if let Err(error) = result {
            out.insert(file.clone(), format!("error: {error}\n"));
        }
    }
    for problem in &generated.problems {
        out.insert(
            problem_file(problem).to_owned(),
            format!("error: {problem}\n"),
        );
    }
    out
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
    fn error_locations_come_from_error_blocks() {
        let text = "warning: unused variable: `x`\n --> routes/a.rs:1:5\n\nerror[E0308]: mismatched types\n --> routes/_ws.rs:16:21\n   |\n16 |     let oops: u32 = \"no\";\n\nerror: cannot find value `y`\n  --> routes/users/[id].rs:3:9\n\nFor more information about this error, try `rustc --explain E0308`.\n";
        assert_eq!(
            error_locations(text),
            ["routes/_ws.rs:16:21", "routes/users/[id].rs:3:9"]
        );
        assert!(error_locations("error: cargo did not build this route\n").is_empty());
        let overlay = overlay_of(
            "\x1b[1m\x1b[91merror\x1b[0m: x\n \x1b[1m\x1b[94m--> \x1b[0mroutes/a.rs:2:3\n",
        );
        assert_eq!(overlay.text, "error: x\n --> routes/a.rs:2:3\n");
        assert_eq!(overlay.locations, ["routes/a.rs:2:3"]);
        assert!(overlay.html.contains("<span"));
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
}
