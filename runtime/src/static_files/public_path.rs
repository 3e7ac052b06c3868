//! The one resolver of `public/` paths: which file, if any, a URL path names.
//!
//! It decides both whether a URL may be served and which file is opened, so the check and the
//! use can never see two different paths (the pattern behind most dev-server file-serving
//! advisories: Vite CVE-2025-30208, -31486, -46565, -58752, -62522):
//!
//! 1. The URL path (never the query; hyper strips `#`) is split on `/` and each segment is
//!    percent-decoded exactly once (`%252e` stays the literal `%2e`).
//! 2. A segment that decodes to `.` or `..`, is empty, holds `/`, `\`, NUL or `:` (NTFS
//!    streams, drive letters), starts with `.` (dotfiles, except `.well-known`), or is not
//!    UTF-8 makes the whole path a miss; so do raw backslashes and NUL and a leading `//`.
//! 3. The rest is joined onto the canonical root and canonicalized, which follows symlinks;
//!    the result must still be under the root, and no part of it below the root may be a
//!    dotfile (a symlink to `.env` is not a way around rule 2).
//! 4. A directory gives its `index.html`, never a listing; a file asked for with a trailing
//!    `/` is not that file.
//!
//! This file depends only on std and `percent-encoding`, so that the fuzz target (`fuzz/`)
//! compiles it as is.

use std::io;
use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

/// What a URL path resolves to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The canonical path of the file to serve.
    File(PathBuf),
    /// The path leads outside the root, or to a dotfile, through a symlink: refused.
    Refused(PathBuf),
    /// Nothing to serve (a directory without `index.html`, a special file, `/file/`).
    Nothing,
}

/// The relative file-system path a URL path names, or `None` when it may not be served.
pub(crate) fn url_to_relative(path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') || path.starts_with("//") || path.contains(['\\', '\0']) {
        return None;
    }
    let mut rel = PathBuf::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        let forbidden = decoded.is_empty()
            || decoded == "."
            || decoded == ".."
            || decoded.contains(['/', '\\', '\0', ':'])
            || is_hidden(&decoded);
        if forbidden {
            return None;
        }
        rel.push(&*decoded);
    }
    Some(rel)
}

/// A dotfile or dot-directory other than `.well-known`.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.') && name != ".well-known"
}

/// Resolves `rel` (from [`url_to_relative`]) under `root`. `wants_dir`: the URL ended in `/`.
/// Errors are the file system's (`NotFound` for a miss).
pub(crate) fn resolve(root: &Path, rel: &Path, wants_dir: bool) -> io::Result<Resolved> {
    let root = root.canonicalize()?;
    let inside = |path: &Path| -> io::Result<Result<(PathBuf, std::fs::Metadata), PathBuf>> {
        let canonical = path.canonicalize()?;
        let Ok(below) = canonical.strip_prefix(&root) else {
            return Ok(Err(canonical));
        };
        let hidden = below.components().any(|part| match part {
            Component::Normal(name) => name.to_str().is_none_or(is_hidden),
            _ => true,
        });
        if hidden {
            return Ok(Err(canonical));
        }
        let metadata = canonical.metadata()?;
        Ok(Ok((canonical, metadata)))
    };
    let (canonical, metadata) = match inside(&root.join(rel))? {
        Ok(found) => found,
        Err(refused) => return Ok(Resolved::Refused(refused)),
    };
    if metadata.is_file() {
        return Ok(if wants_dir {
            Resolved::Nothing
        } else {
            Resolved::File(canonical)
        });
    }
    if !metadata.is_dir() {
        return Ok(Resolved::Nothing);
    }
    match inside(&canonical.join("index.html")) {
        Ok(Ok((index, metadata))) if metadata.is_file() => Ok(Resolved::File(index)),
        Ok(Err(refused)) => Ok(Resolved::Refused(refused)),
        Ok(Ok(_)) => Ok(Resolved::Nothing),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Resolved::Nothing),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let ok = |path: &str, want: &str| {
            assert_eq!(url_to_relative(path), Some(PathBuf::from(want)), "{path}")
        };
        ok("/", "");
        ok("/app.js", "app.js");
        ok("/a/b%20c.txt", "a/b c.txt");
        ok("/caf%C3%A9", "café");
        ok("/.well-known/x", ".well-known/x");
        ok("/%252e%252e/x", "%2e%2e/x"); // decoded once: stays literal
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/a%2f..%2fx",
            "/..%5cx",
            "/..\\x",
            "/a%00.html",
            "//etc/passwd",
            "/.env",
            "/.env/.",
            "/.git/config",
            "/x/./y",
            "/file.txt::$DATA",
            "/%c0%ae%c0%ae/x",
            "/%ff",
            "*",
        ] {
            assert_eq!(url_to_relative(bad), None, "{bad}");
        }
    }

    /// Every combination of hostile segments up to three deep: whatever is served is a file
    /// under the root that is not a dotfile. (The fuzz target checks the same property on
    /// arbitrary input.)
    #[test]
    fn no_combination_of_hostile_segments_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(root.join("sub/.hidden")).unwrap();
        std::fs::create_dir_all(root.join(".well-known")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join(".env"), "secret").unwrap();
        std::fs::write(root.join("sub/index.html"), "sub").unwrap();
        std::fs::write(root.join("sub/.hidden/x"), "x").unwrap();
        std::fs::write(root.join(".well-known/w"), "w").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join(".env"), root.join("env-link")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/.hidden"), root.join("hidden-dir")).unwrap();
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("inner")).unwrap();
        let canonical_root = root.canonicalize().unwrap();

        let segments = [
            "",
            ".",
            "..",
            "%2e",
            "%2e%2e",
            "%2E%2e",
            "..%2f",
            "%2f",
            "%5c",
            "\\",
            "%00",
            "%252e%252e",
            ".env",
            "%2eenv",
            "a.txt",
            "sub",
            "up",
            "leak",
            "env-link",
            "hidden-dir",
            "inner",
            ".well-known",
            "w",
            "x",
            ".hidden",
            "secret.txt",
            "index.html",
            "%c0%ae",
            "a.txt::$DATA",
        ];
        let mut served = 0;
        let mut checked = 0;
        let mut check = |path: String| {
            checked += 1;
            let Some(rel) = url_to_relative(&path) else {
                return;
            };
            if let Ok(Resolved::File(file)) = resolve(&root, &rel, path.ends_with('/')) {
                served += 1;
                let below = file
                    .strip_prefix(&canonical_root)
                    .unwrap_or_else(|_| panic!("{path} served {}", file.display()));
                assert!(
                    !below
                        .components()
                        .any(|c| c.as_os_str().to_str().unwrap().starts_with(".e")
                            || c.as_os_str() == ".hidden"),
                    "{path} served the dotfile {}",
                    file.display()
                );
            }
        };
        for a in segments {
            check(format!("/{a}"));
            check(format!("/{a}/"));
            for b in segments {
                check(format!("/{a}/{b}"));
                for c in segments {
                    check(format!("/{a}/{b}/{c}"));
                }
            }
        }
        assert!(checked > 20_000, "{checked}");
        assert!(served > 0, "some paths are files");
    }
}
