//! Helpers shared by the unit tests of this crate.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use nitro_runtime::module::RouteModule;

/// A route module that is never called: outcomes and app entries only hold it.
struct Module(&'static str);

impl RouteModule for Module {
    fn file(&self) -> &str {
        self.0
    }
}

/// Loaded code for `file`, without a library.
pub(crate) fn module(file: &'static str) -> Arc<dyn RouteModule> {
    Arc::new(Module(file))
}

/// Every file below `dir`, as `/`-separated paths relative to it and prefixed with `prefix`
/// (`"src"` gives `src/lib.rs`), skipping build caches (`.nitro`, `.output`, `target`).
pub(crate) fn files_under(dir: &Path, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(dir, prefix, &mut out);
    out
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if [".nitro", ".output", "target"].contains(&name.as_str()) {
            continue;
        }
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().unwrap().is_dir() {
            walk(&entry.path(), &rel, out);
        } else {
            out.insert(rel);
        }
    }
}
