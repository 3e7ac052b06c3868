//! Watching a project for `nitro dev`: file events → debounced batches of [`Change`]s.
//!
//! The project folder itself is watched non-recursively (for `nitro.toml`, `index.html`, and
//! `routes/` or `public/` appearing), `routes/` and `public/` recursively. Folders, never single
//! files: editors save by writing a temporary file and renaming it over the old one. Nothing
//! under `.nitro/` or a `target/` folder is watched, so cargo's own writes never wake us.
//!
//! Events are debounced by `notify-debouncer-full` (renames paired, bursts of one save
//! merged), then each path is classified by the pure [`classify`]. [`Watcher::next_batch`]
//! returns everything that arrived since the last call, so changes made while a build runs
//! are batched into the next one.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::{self, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};

/// Quiet time before a burst of events is handed over. Editors emit several events per save
/// within a few milliseconds; 10 ms was enough in measurements, 20 ms leaves a margin.
const DEBOUNCE: Duration = Duration::from_millis(20);
const TICK: Duration = Duration::from_millis(5);

/// What a changed path means for the dev server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// `nitro.toml`: resolve the config again.
    Config,
    /// `index.html`: reload open pages.
    Page,
    /// A file under `public/` (relative path): reload open pages.
    Asset(String),
    /// A route source file (`routes/users/[id].rs`), created, edited or deleted.
    Route(String),
    /// Something else under `routes/` that may hide route files (a renamed or deleted
    /// folder): scan `routes/` again.
    RouteTree,
}

/// Classifies a path relative to the project folder. `None`: not our business (build output,
/// editor swap files, hidden files, anything outside the watched set). Pure.
pub(crate) fn classify(rel: &Path) -> Option<Change> {
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (first, rest) = parts.split_first()?;
    if parts.iter().any(|p| is_noise(p)) {
        return None;
    }
    match (*first, rest) {
        ("nitro.toml", []) => Some(Change::Config),
        ("index.html", []) => Some(Change::Page),
        ("public", []) => Some(Change::Asset(String::new())),
        ("public", _) => Some(Change::Asset(rest.join("/"))),
        ("routes", []) | ("middleware", []) | ("plugins", []) | ("tasks", []) => {
            Some(Change::RouteTree)
        }
        // Only the files directly in `middleware/` (`plugins/`) are middleware (plugins);
        // their subfolders hold modules they include (rescanned, not rebuilt: the next build
        // of a middleware picks their edits up).
        (folder @ ("middleware" | "plugins" | "tasks"), [name]) if name.ends_with(".rs") => {
            Some(Change::Route(format!("{folder}/{name}")))
        }
        ("middleware" | "plugins" | "tasks", _) => Some(Change::RouteTree),
        ("routes", _) => {
            let last = rest.last().copied().unwrap_or_default();
            if rest.contains(&"target") {
                None
            } else if last.ends_with(".rs") {
                Some(Change::Route(format!("routes/{}", rest.join("/"))))
            } else if !last.contains('.') {
                // Maybe a folder (renamed, deleted): its route files changed with it.
                Some(Change::RouteTree)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Editor swap and backup files, hidden files and build folders.
pub(crate) fn is_noise(name: &str) -> bool {
    name.starts_with('.') // .nitro, .git, .#lock files, .x.swp
        || name.ends_with('~') // emacs, kate backups
        || (name.starts_with('#') && name.ends_with('#')) // emacs autosave
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp")
        || name.ends_with(".bak")
        || name.ends_with("___jb_tmp___") // JetBrains safe write
        || name.ends_with("___jb_old___")
        || name == "4913" // vim's probe file
        || name == "target"
        || name == "node_modules"
}

/// A debounced batch of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) changes: BTreeSet<Change>,
    /// When the earliest event of the batch happened (the save), for "rebuilt in …".
    pub(crate) first: Option<Instant>,
}

impl Batch {
    /// Adds classified paths.
    pub(crate) fn add(&mut self, project_dir: &Path, paths: &[PathBuf], time: Instant) {
        for path in paths {
            let Ok(rel) = path.strip_prefix(project_dir) else {
                continue;
            };
            if let Some(change) = classify(rel) {
                self.changes.insert(change);
                self.first = Some(self.first.map_or(time, |t| t.min(time)));
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub(crate) fn has(&self, change: &Change) -> bool {
        self.changes.contains(change)
    }

    /// The route files named by the batch.
    pub(crate) fn routes(&self) -> BTreeSet<String> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Route(file) => Some(file.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether route files may have appeared or gone: `routes/` must be scanned again.
    pub(crate) fn touches_routes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::Route(_) | Change::RouteTree))
    }

    /// What to tell pages that reload: `index.html`, `public/app.css`, or `None`.
    pub(crate) fn reload_reason(&self) -> Option<String> {
        self.changes.iter().find_map(|c| match c {
            Change::Page => Some("index.html".to_owned()),
            Change::Asset(path) if path.is_empty() => Some("public/".to_owned()),
            Change::Asset(path) => Some(format!("public/{path}")),
            _ => None,
        })
    }
}

/// Watches a project folder.
#[derive(Debug)]
pub(crate) struct Watcher {
    project_dir: PathBuf,
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    events: mpsc::Receiver<DebounceEventResult>,
    /// `routes/`, `middleware/`, `plugins/` and `public/`, once watched recursively.
    watched: BTreeSet<PathBuf>,
}

impl Watcher {
    /// Starts watching `project_dir` (canonical).
    pub(crate) fn start(project_dir: &Path) -> notify_debouncer_full::notify::Result<Watcher> {
        let (tx, events) = mpsc::channel();
        // Symlinks are not followed: inotify has one watch per folder, so a link in `public/`
        // to `routes/` would re-register `routes/` under the link's path, and every route
        // edit would be reported as an asset change (never rebuilt). Files reached through a
        // symlink are served, but editing them does not reload the page.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
            DEBOUNCE,
            Some(TICK),
            tx,
            RecommendedCache::new(),
            config,
        )?;
        debouncer.watch(project_dir, RecursiveMode::NonRecursive)?;
        let mut watcher = Watcher {
            project_dir: project_dir.to_owned(),
            debouncer,
            events,
            watched: BTreeSet::new(),
        };
        watcher.watch_folders();
        Ok(watcher)
    }

    /// Watches `routes/`, `middleware/`, `plugins/` and `public/` recursively if they exist and are not
    /// watched yet.
    fn watch_folders(&mut self) {
        for name in ["routes", "middleware", "plugins", "tasks", "public"] {
            let dir = self.project_dir.join(name);
            if self.watched.contains(&dir) || !dir.is_dir() {
                continue;
            }
            match self.debouncer.watch(&dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                Err(err) => {
                    tracing::warn!(target: "nitro::dev", "cannot watch `{}`: {err}", dir.display());
                }
            }
        }
        // A watched folder that was deleted loses its watch: forget it, so it is watched
        // again when it comes back.
        self.watched.retain(|dir| dir.is_dir());
    }

    /// Blocks until something changes; then returns every change that has arrived, as one
    /// batch. `None` when the watcher stopped.
    pub(crate) fn next_batch(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        while batch.is_empty() {
            let first = self.events.recv().ok()?;
            self.take(first, &mut batch);
            while let Ok(more) = self.events.try_recv() {
                self.take(more, &mut batch);
            }
        }
        Some(batch)
    }

    fn take(&mut self, result: DebounceEventResult, batch: &mut Batch) {
        match result {
            Ok(events) => {
                for event in events {
                    if matches!(event.kind, EventKind::Access(_)) {
                        continue;
                    }
                    tracing::debug!(target: "nitro::dev", "file event {:?} {:?}", event.kind, event.paths);
                    batch.add(&self.project_dir, &event.paths, event.time);
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(target: "nitro::dev", "file watcher: {error}");
                }
            }
        }
        if batch.has(&Change::RouteTree)
            || batch
                .changes
                .iter()
                .any(|c| matches!(c, Change::Asset(p) if p.is_empty()))
        {
            self.watch_folders();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(path: &str) -> Option<Change> {
        classify(Path::new(path))
    }

    #[test]
    #[cfg(unix)]
    fn a_symlink_in_public_to_routes_does_not_hide_route_edits() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(project.join("routes")).unwrap();
        std::fs::create_dir_all(project.join("public")).unwrap();
        std::fs::write(project.join("routes/index.rs"), "// v1\n").unwrap();
        std::os::unix::fs::symlink("../routes", project.join("public/src")).unwrap();
        let mut watcher = Watcher::start(&project).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(project.join("routes/index.rs"), "// v2\n").unwrap();
        let batch = watcher.next_batch().unwrap();
        assert!(
            batch.has(&Change::Route("routes/index.rs".into())),
            "{:?}",
            batch.changes
        );
        assert!(
            !batch.changes.iter().any(|c| matches!(c, Change::Asset(_))),
            "{:?}",
            batch.changes
        );
    }

    #[test]
    fn middleware_files_are_built_like_routes() {
        assert_eq!(
            c("middleware/01.auth.rs"),
            Some(Change::Route("middleware/01.auth.rs".into()))
        );
        assert_eq!(c("middleware"), Some(Change::RouteTree));
        // A module in a subfolder is no middleware of its own.
        assert_eq!(c("middleware/shared/x.rs"), Some(Change::RouteTree));
        assert_eq!(c("middleware/.01.auth.rs.swp"), None);
        assert_eq!(c("middleware/README.md"), Some(Change::RouteTree));
    }

    #[test]
    fn plugin_files_are_built_like_routes() {
        assert_eq!(
            c("plugins/01.db.rs"),
            Some(Change::Route("plugins/01.db.rs".into()))
        );
        assert_eq!(c("plugins"), Some(Change::RouteTree));
        assert_eq!(c("plugins/shared/pool.rs"), Some(Change::RouteTree));
        assert_eq!(c("plugins/.01.db.rs.swp"), None);
        assert_eq!(
            c("tasks/cleanup.rs"),
            Some(Change::Route("tasks/cleanup.rs".into()))
        );
        assert_eq!(c("tasks/shared/db.rs"), Some(Change::RouteTree));
    }

    #[test]
    fn classifies_project_files() {
        assert_eq!(c("nitro.toml"), Some(Change::Config));
        assert_eq!(c("index.html"), Some(Change::Page));
        assert_eq!(c("public/app.css"), Some(Change::Asset("app.css".into())));
        assert_eq!(
            c("public/img/logo.svg"),
            Some(Change::Asset("img/logo.svg".into()))
        );
        assert_eq!(c("public"), Some(Change::Asset(String::new())));
        assert_eq!(
            c("routes/_ws.rs"),
            Some(Change::Route("routes/_ws.rs".into()))
        );
        assert_eq!(
            c("routes/users/[id].get.rs"),
            Some(Change::Route("routes/users/[id].get.rs".into()))
        );
        assert_eq!(c("routes"), Some(Change::RouteTree));
        assert_eq!(c("routes/users"), Some(Change::RouteTree), "a folder");
    }

    #[test]
    fn ignores_build_output_swap_files_and_the_rest() {
        for ignored in [
            ".nitro/Cargo.toml",
            ".nitro/target/debug/libx.so",
            "target/debug/nitro",
            "routes/target/x.rs",
            "routes/.#index.rs",
            "routes/.index.rs.swp",
            "routes/index.rs~",
            "routes/#index.rs#",
            "routes/4913",
            "routes/index.rs___jb_tmp___",
            "routes/notes.txt",
            "routes/README.md",
            "routes/.hidden/x.rs",
            "public/.env",
            "public/app.css.swp",
            "README.md",
            "src/main.rs",
            "index.html~",
            ".git/HEAD",
            "node_modules/x/index.js",
            "",
        ] {
            assert_eq!(c(ignored), None, "{ignored}");
        }
        assert_eq!(classify(Path::new("/abs/routes/x.rs")), None);
        assert_eq!(classify(Path::new("../routes/x.rs")), None);
    }

    #[test]
    fn batches_merge_and_keep_the_earliest_time() {
        let dir = Path::new("/p");
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let mut batch = Batch::default();
        batch.add(dir, &[PathBuf::from("/p/.nitro/x")], t0);
        assert!(batch.is_empty() && batch.first.is_none());
        batch.add(dir, &[PathBuf::from("/p/routes/a.rs")], t1);
        batch.add(
            dir,
            &[
                PathBuf::from("/p/routes/a.rs"),
                PathBuf::from("/p/routes/b.rs"),
            ],
            t0,
        );
        batch.add(dir, &[PathBuf::from("/elsewhere/routes/c.rs")], t0);
        assert_eq!(batch.first, Some(t0));
        assert_eq!(
            batch.routes().into_iter().collect::<Vec<_>>(),
            ["routes/a.rs", "routes/b.rs"]
        );
        assert!(batch.touches_routes());
        assert_eq!(batch.reload_reason(), None);
        batch.add(dir, &[PathBuf::from("/p/public/app.css")], t1);
        assert_eq!(batch.reload_reason().as_deref(), Some("public/app.css"));
        batch.add(dir, &[PathBuf::from("/p/index.html")], t1);
        assert_eq!(batch.reload_reason().as_deref(), Some("index.html"));
    }
}
