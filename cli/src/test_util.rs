//! Helpers shared by the unit tests of this crate.

use std::collections::BTreeSet;
use std::path::Path;

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
