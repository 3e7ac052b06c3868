//! The contents of `.output/`: the server binary, one library per route, `index.html`,
//! `public/` (with precompressed variants) and the manifest ([`crate::output::manifest`]).
//!
//! `public/` is copied with the dev server's rules (no dotfiles but `.well-known`, nothing a
//! symbolic link leads to outside `public/`), and every compressible file of at least 1 KiB
//! (never a `.map`) gets `.gz` and `.br` siblings when they are smaller.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nitro_router::{RouteKind, RouteTable};

use crate::output::compress::{COMPRESS_MIN, brotli, compressible, gzip};
use crate::output::manifest::{
    self as output, BuiltConfig, Commands, MANIFEST, Manifest, NitroInfo, RouteInfo,
};
use crate::project::cargo_build::BuildReport;
use crate::project::codegen::Generated;
use crate::project::config::ResolvedConfig;
use crate::ui::plural;

/// What went into the output, for the report at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(crate) server: u64,
    pub(crate) libraries: u64,
    pub(crate) library_count: usize,
    pub(crate) public: u64,
    pub(crate) public_files: usize,
    /// Files that got `.gz`/`.br` siblings, and the bytes of those siblings.
    pub(crate) compressed_files: usize,
    pub(crate) compressed: u64,
    pub(crate) index_html: u64,
    /// The copy of `assets/`.
    pub(crate) assets: u64,
    pub(crate) assets_files: usize,
}

impl Sizes {
    /// Lines for the terminal.
    pub(crate) fn lines(&self) -> Vec<String> {
        let total = self.server
            + self.libraries
            + self.assets
            + self.public
            + self.compressed
            + self.index_html;
        let mut lines = vec![
            format!("  server/nitro      {:>10}", human(self.server)),
            format!(
                "  server/routes/    {:>10}  ({})",
                human(self.libraries),
                plural(self.library_count, "library")
            ),
        ];
        if self.assets_files > 0 {
            lines.push(format!(
                "  server/assets/    {:>10}  ({})",
                human(self.assets),
                plural(self.assets_files, "file")
            ));
        }
        if self.index_html > 0 {
            lines.push(format!(
                "  index.html        {:>10}",
                human(self.index_html)
            ));
        }
        if self.public_files > 0 {
            lines.push(format!(
                "  public/           {:>10}  ({}, {} precompressed: +{} of .gz/.br)",
                human(self.public),
                plural(self.public_files, "file"),
                self.compressed_files,
                human(self.compressed)
            ));
        }
        lines.push(format!("  total             {:>10}", human(total)));
        lines
    }
}

/// `1.2 MB`, `980 B`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(crate) type WriteResult<T> = Result<T, (PathBuf, io::Error)>;

pub(crate) fn at<T>(path: &Path, result: io::Result<T>) -> WriteResult<T> {
    result.map_err(|e| (path.to_owned(), e))
}

/// Writes the whole output into `dir` (which must not exist yet).
pub(crate) fn write_output(
    config: &ResolvedConfig,
    table: &RouteTable,
    generated: &Generated,
    report: &BuildReport,
    dir: &Path,
) -> WriteResult<Sizes> {
    let mut sizes = Sizes::default();
    if dir.exists() {
        at(dir, std::fs::remove_dir_all(dir))?;
    }
    let routes_dir = dir.join("server/routes");
    at(&routes_dir, std::fs::create_dir_all(&routes_dir))?;

    let exe = at(Path::new("nitro"), std::env::current_exe())?;
    let server = dir.join("server/nitro");
    sizes.server = at(&server, std::fs::copy(&exe, &server))?;

    let mut routes = Vec::new();
    for route in table.routes() {
        let Some(krate) = generated.route(&route.file) else {
            continue;
        };
        let Some(artifact) = report.artifacts.get(&route.file) else {
            continue;
        };
        let ext = artifact
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("so");
        let library = format!("server/routes/{}.{ext}", krate.crate_name);
        let dest = dir.join(&library);
        sizes.libraries += at(&dest, std::fs::copy(&artifact.path, &dest))?;
        sizes.library_count += 1;
        routes.push(RouteInfo {
            file: route.file.clone(),
            pattern: route.pattern.clone(),
            kind: match route.kind {
                RouteKind::Http => "http",
                RouteKind::WebSocket => "websocket",
                RouteKind::Middleware => "middleware",
                RouteKind::Plugin => "plugin",
                RouteKind::Task => "task",
            }
            .to_owned(),
            method: route.method.map(|m| m.as_str().to_owned()),
            library,
            sha256: at(&dest, output::sha256_file(&dest))?,
        });
    }

    let index = config.index_html();
    let index_html = if config.renderer_static && index.is_file() {
        let dest = dir.join("index.html");
        sizes.index_html = at(&dest, std::fs::copy(&index, &dest))?;
        Some("index.html".to_owned())
    } else {
        None
    };

    let public = config.public_dir();
    let public_dir = if public.is_dir() {
        let root = at(&public, public.canonicalize())?;
        copy_public(&root, &root, &dir.join("public"), &mut sizes)?;
        Some("public".to_owned())
    } else {
        None
    };

    let assets = config.assets_dir();
    if assets.is_dir() {
        copy_assets(&assets, &dir.join(output::ASSETS_DIR), &mut sizes)?;
    }

    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let manifest = Manifest {
        format: output::FORMAT,
        date: output::iso8601(now),
        nitro: NitroInfo {
            version: crate::project::embedded::VERSION.to_owned(),
            abi: nitro_abi::NITRO_ABI_VERSION,
        },
        server: "server/nitro".into(),
        public_dir,
        index_html,
        routes,
        config: BuiltConfig {
            renderer_static: config.renderer_static,
            websocket: config.websocket,
            dependencies: serde_json::to_value(&config.dependencies)
                .unwrap_or(serde_json::Value::Null),
            limits: Some(crate::project::config_limits::BuiltLimits::from(
                &config.limits,
            )),
            allowed_origins: config.allowed_origins.clone(),
            pubsub: config
                .pubsub
                .as_ref()
                .map(crate::project::config_pubsub::BuiltPubSub::from),
            runtime_config: config.runtime_config.clone(),
            storage: Some(config.storage.clone()),
            route_rules: config.route_rules.clone(),
            observability: config.observability.clone(),
            scheduled_tasks: config.scheduled_tasks.clone(),
        },
        commands: Commands {
            start: "./server/nitro start".into(),
        },
    };
    let path = dir.join(MANIFEST);
    let mut text = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
    text.push('\n');
    at(&path, std::fs::write(&path, text))?;
    Ok(sizes)
}

/// Copies the project's `assets/` folder as it is (links followed: the output is
/// self-contained), for `nitro::assets` under `nitro start`.
fn copy_assets(src: &Path, dst: &Path, sizes: &mut Sizes) -> WriteResult<()> {
    at(dst, std::fs::create_dir_all(dst))?;
    for entry in at(src, std::fs::read_dir(src))? {
        let entry = at(src, entry)?;
        let (path, target) = (entry.path(), dst.join(entry.file_name()));
        if path.is_dir() {
            let (real, here) = (path.canonicalize(), src.canonicalize());
            if let (Ok(real), Ok(here)) = (real, here)
                && here.starts_with(real)
            {
                continue; // a link back up: the copy would never end
            }
            copy_assets(&path, &target, sizes)?;
        } else if path.is_file() {
            sizes.assets += at(&target, std::fs::copy(&path, &target))?;
            sizes.assets_files += 1;
        }
    }
    Ok(())
}

/// Copies `src` (under the canonical public `root`) to `dst`, compressing what is worth it.
fn copy_public(root: &Path, src: &Path, dst: &Path, sizes: &mut Sizes) -> WriteResult<()> {
    at(dst, std::fs::create_dir_all(dst))?;
    let mut entries: Vec<_> = at(src, std::fs::read_dir(src))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        // The dev server never serves dotfiles (but `.well-known`): neither does the output.
        if name_str.starts_with('.') && name_str != ".well-known" {
            continue;
        }
        let path = entry.path();
        // Symbolic links are followed, but only within `public/`, as the dev server does.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            tracing::warn!(target: "nitro::build", "skipping `{}`: it leads outside of `public/`", path.display());
            continue;
        }
        // A link to a dotfile (`env -> .env`) is refused too, as the dev server does.
        let hidden = real.strip_prefix(root).is_ok_and(|below| {
            below.components().any(|part| {
                let name = part.as_os_str().to_string_lossy();
                name.starts_with('.') && name != ".well-known"
            })
        });
        if hidden {
            tracing::warn!(target: "nitro::build", "skipping `{}`: it leads to a dotfile", path.display());
            continue;
        }
        let target = dst.join(&name);
        if real.is_dir() {
            if src.starts_with(&real) {
                continue; // a link back up: the copy would never end
            }
            copy_public(root, &real, &target, sizes)?;
        } else if real.is_file() {
            let size = at(&target, std::fs::copy(&real, &target))?;
            // The source's modification time, not the build's: `ETag` and `Last-Modified`
            // derive from it, so an unchanged file keeps its validators across rebuilds and
            // browsers keep their caches over a redeploy.
            let modified = at(&real, real.metadata().and_then(|m| m.modified()))?;
            at(&target, set_modified(&target, modified))?;
            sizes.public += size;
            sizes.public_files += 1;
            let has_own_variant = ["gz", "br"].iter().any(|ext| {
                let mut sibling = path.clone().into_os_string();
                sibling.push(format!(".{ext}"));
                Path::new(&sibling).exists()
            });
            if size >= COMPRESS_MIN && compressible(&name_str) && !has_own_variant {
                let data = at(&real, std::fs::read(&real))?;
                let gz = at(&real, gzip(&data))?;
                let br = at(&real, brotli(&data))?;
                // Validators derive from size and time, which the variants share with the
                // file: the variants are written only when smaller than the file, and `.gz`
                // not when exactly as large as `.br`, so no two representations share an ETag.
                let gz_too = gz.len() != br.len();
                let mut any = false;
                for (ext, compressed) in [("gz", gz), ("br", br)] {
                    if compressed.len() as u64 >= size || (ext == "gz" && !gz_too) {
                        continue; // no gain: clients get the file itself
                    }
                    let mut variant = target.clone().into_os_string();
                    variant.push(format!(".{ext}"));
                    let variant = PathBuf::from(variant);
                    at(&variant, std::fs::write(&variant, &compressed))?;
                    at(&variant, set_modified(&variant, modified))?;
                    sizes.compressed += compressed.len() as u64;
                    any = true;
                }
                sizes.compressed_files += usize::from(any);
            }
        }
    }
    Ok(())
}

fn set_modified(path: &Path, time: SystemTime) -> io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(999), "999 B");
        assert_eq!(human(1_500), "1.5 kB");
        assert_eq!(human(12_345_678), "12.3 MB");
        let lines = Sizes {
            server: 9_000_000,
            libraries: 1_000_000,
            library_count: 1,
            public: 3_000,
            public_files: 2,
            compressed_files: 1,
            compressed: 800,
            index_html: 0,
            assets: 0,
            assets_files: 0,
        }
        .lines();
        assert_eq!(lines[1], "  server/routes/        1.0 MB  (1 library)");
        assert_eq!(
            lines[2],
            "  public/               3.0 kB  (2 files, 1 precompressed: +800 B of .gz/.br)"
        );
        assert_eq!(lines[3], "  total                10.0 MB");
    }

    #[test]
    fn build_size_table_text() {
        let all = Sizes {
            server: 9_412_345,
            libraries: 2_345_678,
            library_count: 3,
            public: 123_456,
            public_files: 7,
            compressed_files: 2,
            compressed: 23_456,
            index_html: 1_234,
            assets: 4_321,
            assets_files: 2,
        };
        insta::assert_snapshot!("build_size_table", all.lines().join("\n"));
        let bare = Sizes {
            server: 9_412_345,
            libraries: 456_789,
            library_count: 1,
            ..Sizes::default()
        };
        insta::assert_snapshot!("build_size_table_no_public", bare.lines().join("\n"));
    }

    #[test]
    fn public_copy_follows_the_dev_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("public");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(src.join(".well-known")).unwrap();
        std::fs::write(src.join("big.js"), "let x = 1;\n".repeat(200)).unwrap();
        std::fs::write(src.join("big.js.map"), "{}".repeat(1000)).unwrap();
        std::fs::write(src.join("small.css"), "a{}").unwrap();
        std::fs::write(src.join(".env"), "SECRET=1").unwrap();
        std::fs::write(src.join(".well-known/security.txt"), "x").unwrap();
        std::fs::write(src.join("sub/page.html"), "<p>hi</p>".repeat(200)).unwrap();
        std::fs::write(tmp.path().join("outside.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(tmp.path().join("outside.txt"), src.join("link.txt")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&src, src.join("loop")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(src.join(".env"), src.join("env-link")).unwrap();

        let root = src.canonicalize().unwrap();
        let dst = tmp.path().join("out");
        let mut sizes = Sizes::default();
        copy_public(&root, &root, &dst, &mut sizes).unwrap();
        let mut files = BTreeSet::new();
        files.extend(crate::test_util::files_under(&dst, ""));
        let expected = [
            ".well-known/security.txt",
            "big.js",
            "big.js.br",
            "big.js.gz",
            "big.js.map",
            "small.css",
            "sub/page.html",
            "sub/page.html.br",
            "sub/page.html.gz",
        ];
        assert_eq!(files, expected.iter().map(|s| s.to_string()).collect());
        assert_eq!(sizes.public_files, 5);
        assert_eq!(sizes.compressed_files, 2);
        let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(modified(&dst.join("big.js")), modified(&src.join("big.js")));
        assert_eq!(
            modified(&dst.join("big.js.br")),
            modified(&src.join("big.js"))
        );
    }
}
