//! Fuzzes the `public/` resolver: for any URL path, what it serves is a file under the public
//! folder that is not a dotfile (except under `.well-known`), and it never panics.
//!
//! The resolver is compiled from the runtime's own source file, which depends only on std and
//! `percent-encoding`, so this target builds in seconds and tests exactly the shipped code.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../runtime/src/static_files/public_path.rs"]
mod public_path;

use public_path::{Resolved, resolve, url_to_relative};

/// The fixture folder, `public/` in it, and the canonical `public/`.
struct Site {
    /// Kept for the whole process (libFuzzer exits without dropping it).
    dir: tempfile::TempDir,
    root: PathBuf,
    canonical_root: PathBuf,
}

/// `public/` with files, dotfiles and symlinks that lead outside, to a dotfile and inside;
/// a secret next to it. Created once per fuzzing process.
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        let mkdir = |path: &Path| std::fs::create_dir_all(path).unwrap();
        let write = |path: PathBuf| std::fs::write(path, "x").unwrap();
        mkdir(&root.join("sub/.hidden"));
        mkdir(&root.join(".well-known"));
        mkdir(&root.join("empty"));
        write(root.join("a.txt"));
        write(root.join(".env"));
        write(root.join("sub/index.html"));
        write(root.join("sub/.hidden/x"));
        write(root.join(".well-known/w"));
        write(dir.path().join("secret.txt"));
        let link = |to: &Path, at: PathBuf| std::os::unix::fs::symlink(to, at).unwrap();
        link(&dir.path().join("secret.txt"), root.join("leak"));
        link(dir.path(), root.join("up"));
        link(&root.join(".env"), root.join("env-link"));
        link(&root.join("sub/.hidden"), root.join("hidden-dir"));
        link(&root.join("a.txt"), root.join("inner"));
        link(Path::new("/etc"), root.join("etc"));
        let canonical_root = root.canonicalize().unwrap();
        Site {
            dir,
            root,
            canonical_root,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // hyper hands over the path of a request target as text; anything else never arrives.
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let site = site();
    let (root, canonical_root) = (&site.root, &site.canonical_root);
    debug_assert!(site.dir.path().is_dir());
    let Some(rel) = url_to_relative(path) else {
        return;
    };
    if let Ok(Resolved::File(file)) = resolve(root, &rel, path.ends_with('/')) {
        let below = file
            .strip_prefix(canonical_root)
            .unwrap_or_else(|_| panic!("{path:?} served {} outside", file.display()));
        for part in below.components() {
            let name = part.as_os_str().to_string_lossy();
            assert!(
                !name.starts_with('.') || name == ".well-known",
                "{path:?} served the dotfile {}",
                file.display()
            );
        }
    }
});
