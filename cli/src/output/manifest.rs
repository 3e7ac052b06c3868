//! The built output folder (`.output/`) and its manifest, `nitro.json`.
//!
//! ```text
//! .output/
//!   nitro.json                 this module's [`Manifest`]
//!   server/nitro               the server: a copy of the `nitro` that built it
//!   server/routes/<crate>.so   one release library per route file
//!   index.html                 the renderer's page (when `[renderer] static` is on)
//!   public/                    `public/`, plus `.br` and `.gz` of compressible files ≥ 1 KiB
//! ```
//!
//! `nitro build` writes it (`output/write.rs`); `nitro start` reads it back with [`load`], which
//! checks everything it can before serving: the manifest parses and was written for this ABI,
//! every library is where it says, inside the folder, with the SHA-256 it recorded. A problem is
//! an [`OutputError`] naming the file, never a failure later.

use std::io;
use std::path::{Component, Path, PathBuf};

use nitro_router::{ProjectFolders, RouteTable, ScanOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name inside the output folder.
pub const MANIFEST: &str = "nitro.json";
/// The output folder inside a project.
pub const OUTPUT_DIR: &str = ".output";
/// The server assets inside the output folder: a copy of the project's `assets/`, which
/// `nitro start` hands to the routes' `nitro::assets`.
pub const ASSETS_DIR: &str = "server/assets";
/// The version of the manifest's format.
pub const FORMAT: u32 = 1;

/// `.output/nitro.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// When it was built, UTC, ISO 8601 (`2026-11-26T02:30:00Z`).
    pub date: String,
    pub nitro: NitroInfo,
    /// The server executable, relative to the output folder.
    pub server: String,
    /// `public/`, relative to the output folder, when the project has one.
    pub public_dir: Option<String>,
    /// The renderer's page, relative to the output folder, when the renderer is on.
    pub index_html: Option<String>,
    pub routes: Vec<RouteInfo>,
    /// The project's resolved settings that the build used.
    pub config: BuiltConfig,
    /// How to run it, for people reading the file.
    pub commands: Commands,
}

/// The nitro that built the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NitroInfo {
    pub version: String,
    /// The route ABI the libraries speak.
    pub abi: u32,
}

/// One route file and its library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// `routes/users/[id].get.rs`.
    pub file: String,
    /// `/users/:id`, for people.
    pub pattern: String,
    /// `http`, `websocket`, `middleware`, `plugin` or `task`.
    pub kind: String,
    /// `GET`, …, or `null` for any method.
    pub method: Option<String>,
    /// The library, relative to the output folder: `server/routes/<crate>.so`.
    pub library: String,
    /// Lower-case hex SHA-256 of the library.
    pub sha256: String,
}

/// Settings of `nitro.toml` that shaped the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltConfig {
    /// `[renderer] static`.
    pub renderer_static: bool,
    /// `[features] websocket`.
    pub websocket: bool,
    /// `[dependencies]`, as written (paths made absolute).
    pub dependencies: serde_json::Value,
    /// `[limits]`, every value resolved (absent in outputs of older builds: the defaults).
    #[serde(default)]
    pub limits: Option<crate::project::config_limits::BuiltLimits>,
    /// `[websocket] allowed_origins`.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// `[websocket] pubsub` (absent: publishes stay in the instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsub: Option<crate::project::config_pubsub::BuiltPubSub>,
    /// `[runtime_config]`, the defaults of `nitro.toml` (`nitro start` applies the `NITRO_*`
    /// overrides of its environment). Absent in outputs of older builds: `{}`.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub runtime_config: serde_json::Value,
    /// `[storage.NAME]` over the default mounts, `fs` folders as written (`nitro start` places
    /// relative ones under its working directory). Absent in outputs of older builds: the
    /// default mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<std::collections::BTreeMap<String, nitro_runtime::storage::MountSpec>>,
    /// `[route_rules]` (absent: none).
    #[serde(
        default,
        skip_serializing_if = "nitro_runtime::route_rules::RouteRules::is_empty"
    )]
    pub route_rules: nitro_runtime::route_rules::RouteRules,
    /// `[observability]` (absent: no metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<crate::project::config_observability::ObservabilitySettings>,
    /// `[scheduled_tasks]`: cron expression → task names (absent: none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scheduled_tasks: crate::project::config_tasks::ScheduledTasks,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn is_empty_object(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(|o| o.is_empty()) || value.is_null()
}

/// Commands, for people reading the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commands {
    pub start: String,
}

/// Why a built output cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("`{}` is not a built output: {reason}", .dir.display())]
    NotOutput { dir: PathBuf, reason: String },
    #[error("cannot read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is corrupted: {detail}", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "`{}` was written by nitro {found_version} for route ABI {found}, but this nitro {} speaks ABI {expected}",
        .path.display(), crate::project::embedded::VERSION
    )]
    Abi {
        path: PathBuf,
        found_version: String,
        found: u32,
        expected: u32,
    },
    #[error("`{}` is missing: `nitro.json` lists it as the {what}", .path.display())]
    MissingFile { path: PathBuf, what: &'static str },
    #[error("route library `{}` (for `{file}`) is missing", .path.display())]
    MissingLibrary { path: PathBuf, file: String },
    #[error(
        "route library `{}` (for `{file}`) does not match the manifest: its SHA-256 is `{found}`, `nitro.json` says `{expected}`",
        .path.display()
    )]
    HashMismatch {
        path: PathBuf,
        file: String,
        expected: String,
        found: String,
    },
}

impl OutputError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            OutputError::NotOutput { .. } => {
                "build one with `nitro build` in the project, then `nitro start PROJECT/.output`"
                    .into()
            }
            OutputError::Abi { .. } => {
                "start it with the `server/nitro` inside the output, or rebuild it with this nitro"
                    .into()
            }
            _ => "rebuild with `nitro build`, and copy the whole `.output/` folder".into(),
        })
    }
}

/// A verified output, ready to serve.
#[derive(Debug)]
pub struct Output {
    /// The output folder, absolute.
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub table: RouteTable,
}

impl Output {
    /// The absolute path of a path the manifest gives relative to the folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 << 10];
    loop {
        match io::Read::read(&mut file, &mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A relative path that stays inside the folder: no root, no `..`.
fn is_inside(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether the relative path `inner` is `outer` or under it (both inside the output folder).
fn contains(outer: &str, inner: &str) -> bool {
    let parts = |path: &str| -> Vec<String> {
        Path::new(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    parts(inner).starts_with(&parts(outer))
}

/// Reads and checks the output folder `dir` (see the module docs).
pub fn load(dir: &Path) -> Result<Output, OutputError> {
    let not_output = |reason: &str| OutputError::NotOutput {
        dir: dir.to_owned(),
        reason: reason.to_owned(),
    };
    let abs = match std::fs::canonicalize(dir) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => return Err(not_output("it is not a folder")),
        Err(_) => return Err(not_output("it does not exist")),
    };
    let manifest_path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(abs.join(MANIFEST)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_output(&format!("it has no `{MANIFEST}`")));
        }
        Err(source) => {
            return Err(OutputError::Read {
                path: manifest_path,
                source,
            });
        }
    };
    let manifest = parse(&text, &manifest_path)?;
    let table = check(&manifest, &manifest_path)?;

    let listed = [
        (manifest.public_dir.as_deref(), "public folder", true),
        (manifest.index_html.as_deref(), "renderer's page", false),
    ];
    for (rel, what, is_dir) in listed {
        let Some(rel) = rel else { continue };
        let present = if is_dir {
            abs.join(rel).is_dir()
        } else {
            abs.join(rel).is_file()
        };
        if !present {
            return Err(OutputError::MissingFile {
                path: dir.join(rel),
                what,
            });
        }
    }
    for route in &manifest.routes {
        let path = dir.join(&route.library);
        let found = match sha256_file(&abs.join(&route.library)) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutputError::MissingLibrary {
                    path,
                    file: route.file.clone(),
                });
            }
            Err(source) => return Err(OutputError::Read { path, source }),
        };
        if found != route.sha256 {
            return Err(OutputError::HashMismatch {
                path,
                file: route.file.clone(),
                expected: route.sha256.clone(),
                found,
            });
        }
    }
    Ok(Output {
        dir: abs,
        manifest,
        table,
    })
}

/// Parses the manifest's text.
pub fn parse(text: &str, path: &Path) -> Result<Manifest, OutputError> {
    // The format and ABI first, so that a newer manifest is reported as such rather than as
    // a field serde does not know.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| OutputError::Corrupt {
            path: path.to_owned(),
            detail: format!("not valid JSON ({e})"),
        })?;
    let found = value["nitro"]["abi"].as_u64();
    if let Some(found) = found
        && found != u64::from(nitro_abi::NITRO_ABI_VERSION)
    {
        return Err(OutputError::Abi {
            path: path.to_owned(),
            found_version: value["nitro"]["version"].as_str().unwrap_or("?").to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            expected: nitro_abi::NITRO_ABI_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| OutputError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if manifest.format != FORMAT {
        return Err(OutputError::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "format `{}`, this nitro reads format `{FORMAT}`",
                manifest.format
            ),
        });
    }
    Ok(manifest)
}

/// Checks the manifest's paths and rebuilds the route table from its files.
fn check(manifest: &Manifest, path: &Path) -> Result<RouteTable, OutputError> {
    let corrupt = |detail: String| OutputError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let mut paths: Vec<&str> = manifest.routes.iter().map(|r| r.library.as_str()).collect();
    paths.extend(manifest.public_dir.as_deref());
    paths.extend(manifest.index_html.as_deref());
    if let Some(bad) = paths.iter().find(|p| !is_inside(p)) {
        return Err(corrupt(format!(
            "`{bad}` is not a path inside the output folder"
        )));
    }
    // Everything under the public folder is served: it must not hold the server, the
    // manifest or a route library.
    if let Some(public) = manifest.public_dir.as_deref() {
        let private = std::iter::once(manifest.server.as_str())
            .chain([MANIFEST])
            .chain(manifest.routes.iter().map(|r| r.library.as_str()));
        for inner in private {
            if contains(public, inner) {
                return Err(corrupt(format!(
                    "the public folder `{public}` would publish `{inner}`: it must not contain the server, `{MANIFEST}` or the route libraries"
                )));
            }
        }
    }
    let mut files = Vec::new();
    let mut folders = ProjectFolders::default();
    for route in &manifest.routes {
        if let Some(name) = route.file.strip_prefix("middleware/") {
            folders.middleware.push(name.to_owned());
            continue;
        }
        if let Some(name) = route.file.strip_prefix("plugins/") {
            folders.plugins.push(name.to_owned());
            continue;
        }
        if let Some(name) = route.file.strip_prefix("tasks/") {
            folders.tasks.push(name.to_owned());
            continue;
        }
        let Some(rel) = route.file.strip_prefix("routes/") else {
            return Err(corrupt(format!(
                "route file `{}` is not under `routes/`, `middleware/`, `plugins/` or `tasks/`",
                route.file
            )));
        };
        files.push(rel);
    }
    let table = RouteTable::from_project(
        &files,
        &folders,
        &ScanOptions {
            websocket: manifest.config.websocket,
        },
    )
    .map_err(|e| corrupt(format!("its routes do not form a route table: {e}")))?;
    if table.len() != manifest.routes.len() {
        return Err(corrupt("it lists a route file twice".into()));
    }
    Ok(table)
}

/// `2026-11-26T02:30:00Z` for a time since the Unix epoch (UTC; leap seconds ignored).
pub fn iso8601(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            date: "2026-11-26T02:30:00Z".into(),
            nitro: NitroInfo {
                version: crate::project::embedded::VERSION.into(),
                abi: nitro_abi::NITRO_ABI_VERSION,
            },
            server: "server/nitro".into(),
            public_dir: Some("public".into()),
            index_html: None,
            routes: vec![RouteInfo {
                file: "routes/users/[id].get.rs".into(),
                pattern: "/users/:id".into(),
                kind: "http".into(),
                method: Some("GET".into()),
                library: "server/routes/users.so".into(),
                sha256: "00".into(),
            }],
            config: BuiltConfig {
                renderer_static: true,
                websocket: true,
                dependencies: serde_json::json!({}),
                limits: Some(crate::project::config_limits::BuiltLimits::from(
                    &nitro_runtime::Limits::default(),
                )),
                allowed_origins: None,
                pubsub: None,
                runtime_config: serde_json::json!({}),
                storage: Some(crate::project::config_storage::defaults()),
                route_rules: Default::default(),
                observability: None,
                scheduled_tasks: Default::default(),
            },
            commands: Commands {
                start: "./server/nitro start".into(),
            },
        }
    }

    #[test]
    fn dates() {
        assert_eq!(iso8601(Duration::ZERO), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            iso8601(Duration::from_secs(1_795_660_215)),
            "2026-11-26T02:30:15Z"
        );
    }

    #[test]
    fn manifest_round_trips_and_checks() {
        let m = sample();
        let text = serde_json::to_string_pretty(&m).unwrap();
        let path = Path::new(".output/nitro.json");
        assert_eq!(parse(&text, path).unwrap(), m);
        let table = check(&m, path).unwrap();
        assert_eq!(table.len(), 1);

        let mut escape = m.clone();
        escape.routes[0].library = "../elsewhere.so".into();
        let e = check(&escape, path).unwrap_err().to_string();
        assert!(e.contains("`../elsewhere.so` is not a path inside"), "{e}");

        for public in [".", "server", "./server/", "server/routes"] {
            let mut exposed = m.clone();
            exposed.public_dir = Some(public.into());
            let e = check(&exposed, path).unwrap_err().to_string();
            assert!(
                e.contains(&format!("the public folder `{public}` would publish")),
                "{e}"
            );
        }
        let mut fine = m.clone();
        fine.public_dir = Some("public".into());
        assert!(check(&fine, path).is_ok());

        let e = parse("{\"format\": 1", path).unwrap_err().to_string();
        assert!(
            e.starts_with("`.output/nitro.json` is corrupted: not valid JSON"),
            "{e}"
        );

        let mut other_abi: serde_json::Value = serde_json::to_value(&m).unwrap();
        other_abi["nitro"]["abi"] = 999.into();
        let e = parse(&other_abi.to_string(), path).unwrap_err();
        assert!(matches!(e, OutputError::Abi { found: 999, .. }), "{e}");

        let e = parse("{\"format\": 1}", path).unwrap_err().to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    #[test]
    fn inside_paths() {
        assert!(is_inside("server/routes/a.so"));
        assert!(is_inside("public"));
        assert!(!is_inside("/etc/passwd"));
        assert!(!is_inside("a/../../b"));
        assert!(!is_inside(""));
    }
}
