//! `nitro build`: release builds of every route, then a self-contained `.output/`.
//!
//! The steps of `nitro dev` up to the build ([`dev::scan`], [`codegen::generate`]), then one
//! `cargo build --release` of every route. Any route that fails stops the build with rustc's
//! diagnostics, before anything is written. The output (layout in
//! [`crate::output::manifest`]) is written to a staging folder beside `.output/` (same file
//! system) and renamed into place only when complete, so a failed or interrupted build never
//! leaves a half-written `.output/` where a good one was.
//!
//! `public/` is copied with the dev server's rules (no dotfiles but `.well-known`, nothing a
//! symbolic link leads to outside `public/`), and every compressible file of at least 1 KiB
//! (never a `.map`) gets `.gz` and `.br` siblings when they are smaller, as Nitro's
//! `compressPublicAssets` does; `nitro start` serves them to clients that accept them.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use clap::Args;
use nitro_router::{RouteKind, RouteTable};

use crate::commands::dev;
use crate::output::manifest::{
    self as output, BuiltConfig, Commands, MANIFEST, Manifest, NitroInfo, RouteInfo,
};
use crate::project::cargo_build::{self, BuildReport, BuildRequest, Progress};
use crate::project::codegen::Generated;
use crate::project::config::{self, Overrides, ResolvedConfig};
use crate::ui::Ui;

/// Files smaller than this are not precompressed (as Nitro).
pub const COMPRESS_MIN: u64 = 1024;

/// Arguments of `nitro build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The project folder. The output goes to `DIR/.output/`.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Why `nitro build` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BuildFailed {
    #[error("{} did not compile{}", routes(.failed), kept_note(.kept))]
    Routes { failed: Vec<String>, kept: bool },
    #[error("cannot write the output `{}`{}", .path.display(), kept_note(.kept))]
    Write {
        path: PathBuf,
        kept: bool,
        #[source]
        source: io::Error,
    },
}

fn routes(files: &[String]) -> String {
    let quoted: Vec<String> = files.iter().map(|f| format!("`{f}`")).collect();
    match quoted.len() {
        1 => format!("route {}", quoted[0]),
        _ => format!("routes {}", quoted.join(", ")),
    }
}

fn kept_note(kept: &bool) -> &'static str {
    if *kept {
        ": the previous `.output/` is unchanged"
    } else {
        ""
    }
}

impl BuildFailed {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildFailed::Routes { .. } => Some(
                "fix the errors above; `nitro dev` shows them too, and serves the other routes meanwhile".into(),
            ),
            BuildFailed::Write { .. } => None,
        }
    }
}

/// Runs `nitro build`.
pub fn run(args: &BuildArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The address settings do not matter to a build (`nitro start` reads its own).
    let env = config::Env {
        port: None,
        host: None,
        ..config::Env::from_process()
    };
    let config = config::load_with_env(&args.dir, &Overrides::default(), &env)?;
    for warning in config
        .warnings
        .iter()
        .filter(|w| !w.contains("every interface"))
    {
        ui.warn(warning);
    }
    let table = dev::scan(&config)?;
    let generated = dev::generate_checked(&config, &table, ui)?;
    let output_dir = config.project_dir.join(output::OUTPUT_DIR);
    let display_output = config.display_dir.join(output::OUTPUT_DIR);

    if !generated.routes.is_empty() {
        ui.status(&format!(
            "  building {} for release in `{}`…",
            plural(generated.routes.len(), "route"),
            config.display_dir.display()
        ));
    }
    let report = release_build(&config, &generated, dev::progress(ui).as_ref())?;
    let mut failed: Vec<String> = Vec::new();
    for route in &generated.routes {
        if dev::show_diagnostics(&route.file, &report, ui) {
            failed.push(route.file.clone());
        }
    }
    if !failed.is_empty() {
        return Err(BuildFailed::Routes {
            failed,
            kept: output_dir.exists(),
        }
        .into());
    }
    let build_time = started.elapsed();

    remove_stale_staging(&config.project_dir);
    let staging = config
        .project_dir
        .join(format!(".output.tmp-{}", std::process::id()));
    let written = write_output(&config, &table, &generated, &report, &staging)
        .and_then(|sizes| replace_dir(&staging, &output_dir).map(|()| sizes));
    let sizes = match written {
        Ok(sizes) => sizes,
        Err((path, source)) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(BuildFailed::Write {
                path,
                kept: output_dir.exists(),
                source,
            }
            .into());
        }
    };

    ui.status(&format!(
        "{} built {} in {:.1} s (cargo {:.1} s), output `{}`",
        ui.paint("✔", "32"),
        plural(table.len(), "route"),
        started.elapsed().as_secs_f64(),
        build_time.as_secs_f64(),
        display_output.display()
    ));
    for line in sizes.lines() {
        ui.status(&line);
    }
    ui.data(&format!(
        "  ➜ Run it: nitro start {}   (or {}/server/nitro start)",
        display_output.display(),
        display_output.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Runs cargo with `--release` over every route.
pub fn release_build(
    config: &ResolvedConfig,
    generated: &Generated,
    progress: &dyn Progress,
) -> Result<BuildReport, cargo_build::BuildError> {
    let config_file = config.display_config_file();
    let request = BuildRequest {
        manifest_path: &generated.manifest_path,
        target_dir: &config.target_dir,
        project_dir: &config.project_dir,
        config_file: &config_file,
        routes: &generated.routes,
        release: true,
    };
    cargo_build::build(&request, progress)
}

/// What went into the output, for the report at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sizes {
    pub server: u64,
    pub libraries: u64,
    pub library_count: usize,
    pub public: u64,
    pub public_files: usize,
    /// Files that got `.gz`/`.br` siblings, and the bytes of those siblings.
    pub compressed_files: usize,
    pub compressed: u64,
    pub index_html: u64,
}

impl Sizes {
    /// Lines for the terminal.
    pub fn lines(&self) -> Vec<String> {
        let total = self.server + self.libraries + self.public + self.compressed + self.index_html;
        let mut lines = vec![
            format!("  server/nitro      {:>10}", human(self.server)),
            format!(
                "  server/routes/    {:>10}  ({})",
                human(self.libraries),
                plural(self.library_count, "library")
            ),
        ];
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
pub fn human(bytes: u64) -> String {
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

fn plural(n: usize, word: &str) -> String {
    match (n, word) {
        (1, _) => format!("1 {word}"),
        (_, "library") => format!("{n} libraries"),
        _ => format!("{n} {word}s"),
    }
}

type WriteResult<T> = Result<T, (PathBuf, io::Error)>;

fn at<T>(path: &Path, result: io::Result<T>) -> WriteResult<T> {
    result.map_err(|e| (path.to_owned(), e))
}

/// Writes the whole output into `dir` (which must not exist yet).
pub fn write_output(
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

/// Whether a file is worth precompressing, by extension: text formats, SVG, JSON, WebAssembly,
/// uncompressed fonts. Never source maps (as Nitro), nor formats that are compressed already.
pub fn compressible(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "html"
            | "htm"
            | "css"
            | "js"
            | "mjs"
            | "cjs"
            | "json"
            | "jsonld"
            | "webmanifest"
            | "xml"
            | "rss"
            | "atom"
            | "svg"
            | "txt"
            | "md"
            | "csv"
            | "tsv"
            | "wasm"
            | "ttf"
            | "otf"
            | "eot"
            | "ico"
            | "yaml"
            | "yml"
            | "toml"
    )
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

fn brotli(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        // Quality 11 (the best), window 22: what build tools use for static assets.
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 << 10, 11, 22);
        writer.write_all(data)?;
        writer.flush()?;
    }
    Ok(out)
}

/// Removes `.output.tmp-<pid>` and `.output.old-<pid>` folders left by builds that were
/// interrupted (Ctrl-C while writing), when no process `<pid>` runs any more. Only where
/// `/proc` tells (Linux); elsewhere they stay, and are safe to delete by hand.
pub fn remove_stale_staging(project_dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(project_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".output.tmp-")
            .or_else(|| name.strip_prefix(".output.old-"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Moves `staging` to `target`, replacing an existing `target` only once `staging` is
/// complete: the old folder is renamed aside, the new one renamed in, the old one removed.
pub fn replace_dir(staging: &Path, target: &Path) -> WriteResult<()> {
    if !target.exists() {
        return at(target, std::fs::rename(staging, target));
    }
    let old = target.with_file_name(format!(".output.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    at(target, std::fs::rename(target, &old))?;
    if let Err(e) = std::fs::rename(staging, target) {
        // Put the old one back: never leave the project without its output.
        let _ = std::fs::rename(&old, target);
        return Err((target.to_owned(), e));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn what_gets_compressed() {
        for yes in [
            "app.js",
            "style.CSS",
            "data.json",
            "logo.svg",
            "a.b.html",
            "m.wasm",
        ] {
            assert!(compressible(yes), "{yes}");
        }
        for no in [
            "app.js.map",
            "photo.png",
            "font.woff2",
            "archive.gz",
            "README",
            "x.br",
        ] {
            assert!(!compressible(no), "{no}");
        }
    }

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
    fn compressors_round_trip() {
        let data = "hello nitro ".repeat(200).into_bytes();
        let gz = gzip(&data).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let br = brotli(&data).unwrap();
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(br.len() < data.len() / 10 && gz.len() < data.len() / 10);
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

    use std::collections::BTreeSet;

    #[test]
    fn stale_staging_folders_of_dead_builds_go() {
        let tmp = tempfile::tempdir().unwrap();
        // u32::MAX is never a pid; ours is alive.
        let dead = tmp.path().join(format!(".output.tmp-{}", u32::MAX));
        let alive = tmp
            .path()
            .join(format!(".output.tmp-{}", std::process::id()));
        let other = tmp.path().join(".output.tmp-notapid");
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir_all(dir.join("server")).unwrap();
        }
        remove_stale_staging(tmp.path());
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists());
        }
        assert!(alive.exists() && other.exists());
    }

    #[test]
    fn replacing_keeps_the_old_folder_until_the_new_one_is_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join(".output");
        let staging = tmp.path().join(".output.tmp");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old"), "").unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("new"), "").unwrap();
        replace_dir(&staging, &target).unwrap();
        assert!(target.join("new").is_file() && !target.join("old").exists());
        assert!(!staging.exists());
        // A staging folder that is not there: the old output stays.
        assert!(replace_dir(&staging, &target).is_err());
        assert!(target.join("new").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
