//! `nitro.toml` and the settings of a run, resolved once.
//!
//! Every setting comes from four layers, each overriding the one before:
//!
//! 1. **defaults**: `127.0.0.1:3000`, `[renderer] static = true`, `[features] websocket = true`;
//! 2. **`nitro.toml`** in the project folder (optional; every key optional);
//! 3. **environment**: `PORT` and `HOST` (as Nitro reads them), `NITRO_TARGET_DIR`,
//!    `NITRO_PUBSUB_URL` (see [`crate::project::config_pubsub`]);
//! 4. **flags**: `--port`, `--host`.
//!
//! The result is one [`ResolvedConfig`] that the rest of the CLI takes. Resolution is pure: the
//! caller reads the file and the environment ([`Env::from_process`]) and passes them in, so every
//! layer and every message is unit-tested. [`load`] is the thin I/O wrapper.
//!
//! The file is read with serde and `deny_unknown_fields`; serde's error is then placed in the
//! document (which key of which table, which line) to say exactly what to change.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::project::config_limits::{HostName, LimitsSection, WebSocketSection};

/// The name of the config file in a project folder.
pub const CONFIG_FILE: &str = "nitro.toml";

/// The default address of `nitro dev`: loopback only (Nitro binds every interface; we do not,
/// so a dev server with unreviewed code is not reachable from the network by accident).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);

/// Everything a run needs to know, after all layers.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig {
    /// The project folder, absolute and canonical (symbolic links resolved). Generated code and
    /// the target dir are keyed by it.
    pub project_dir: PathBuf,
    /// The project folder as the user named it (`examples/websocket`), for messages.
    pub display_dir: PathBuf,
    /// `nitro.toml`, when the project has one.
    pub config_file: Option<PathBuf>,
    /// Where the dev server listens.
    pub addr: SocketAddr,
    /// `[renderer] static`: serve `index.html` for unmatched GET/HEAD.
    pub renderer_static: bool,
    /// `[features] websocket`: allow `_ws.rs` routes.
    pub websocket: bool,
    /// `[dependencies]`, with every `path = "…"` made absolute, ready to copy into each
    /// generated route crate.
    pub dependencies: toml::Table,
    /// Where cargo builds the routes: `NITRO_TARGET_DIR`, else `<project>/.nitro/target`.
    pub target_dir: PathBuf,
    /// `[dev] websocket_reload`: what a reload of a WebSocket route does to its open peers.
    pub websocket_reload: WebSocketReload,
    /// Things worth telling the user that are not errors (e.g. binding every interface).
    pub warnings: Vec<String>,
    /// `[limits]`: sizes and timeouts, over the runtime's defaults.
    pub limits: nitro_runtime::Limits,
    /// `[dev] allowed_hosts`: host names the dev server answers besides `localhost`,
    /// `*.localhost` and IP addresses.
    pub allowed_hosts: Vec<String>,
    /// `[websocket] allowed_origins`: the origins that may open the project's WebSocket
    /// routes (`None`: any local origin in dev, any origin in production).
    pub allowed_origins: Option<Vec<String>>,
    /// `[websocket] pubsub`: relay WebSocket publishes between instances through Redis.
    pub pubsub: Option<crate::project::config_pubsub::PubSubSettings>,
    /// `[observability]`: Prometheus metrics, when on.
    pub observability: Option<crate::project::config_observability::ObservabilitySettings>,
    /// `[runtime_config]` as JSON, with the `NITRO_*` overrides of [`Env::vars`] applied.
    pub runtime_config: serde_json::Value,
    /// `[scheduled_tasks]`: cron expression (checked) → task names.
    pub scheduled_tasks: crate::project::config_tasks::ScheduledTasks,
    /// `[storage.NAME]` over the default mounts, `fs` folders as written (see
    /// [`crate::project::config_storage::placed`]).
    pub storage: std::collections::BTreeMap<String, nitro_runtime::storage::MountSpec>,
    /// `[route_rules."/pattern"]`: headers, redirects, CORS and caching by path pattern.
    pub route_rules: nitro_runtime::route_rules::RouteRules,
}

impl ResolvedConfig {
    /// `<project>/.nitro`: the generated cargo workspace.
    pub fn nitro_dir(&self) -> PathBuf {
        self.project_dir.join(".nitro")
    }

    /// `nitro.toml` as the user would name it (`examples/x/nitro.toml`), for messages.
    pub fn display_config_file(&self) -> PathBuf {
        display_path(&self.display_dir, CONFIG_FILE)
    }

    /// `<project>/public`: static assets.
    pub fn public_dir(&self) -> PathBuf {
        self.project_dir.join("public")
    }

    /// `<project>/assets`: files that ship with the server, read by routes through
    /// `nitro::assets` (absolute, so that a route reads them from any working directory).
    pub fn assets_dir(&self) -> PathBuf {
        std::path::absolute(self.project_dir.join("assets"))
            .unwrap_or_else(|_| self.project_dir.join("assets"))
    }

    /// `<project>/index.html`: the static renderer's page.
    pub fn index_html(&self) -> PathBuf {
        self.project_dir.join("index.html")
    }
}

/// `[dev] websocket_reload`: what happens to the open peers of a WebSocket route whose code
/// was just rebuilt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebSocketReload {
    /// They keep their connection; their next event runs the new code.
    #[default]
    Keep,
    /// They are closed with `1012` (service restart) so that clients reconnect.
    Restart,
}

/// The environment variables that take part in resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `PORT`.
    pub port: Option<String>,
    /// `HOST`.
    pub host: Option<String>,
    /// `NITRO_TARGET_DIR`.
    pub target_dir: Option<PathBuf>,
    /// `NITRO_PUBSUB_URL`: the Redis URL of `[websocket] pubsub`, over the file's `url`.
    pub pubsub_url: Option<String>,
    /// Every `NITRO_*` variable, for the overrides of `[runtime_config]`
    /// (see [`crate::project::config_runtime`]). `nitro build` passes none: the output records
    /// the defaults, and `nitro start` applies the environment it runs in.
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Env {
    /// Reads `PORT`, `HOST`, `NITRO_TARGET_DIR` and `NITRO_PUBSUB_URL`. Empty values count as unset, as shells
    /// often leave `PORT=` behind.
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            port: var("PORT").map(|v| v.to_string_lossy().into_owned()),
            host: var("HOST").map(|v| v.to_string_lossy().into_owned()),
            target_dir: var("NITRO_TARGET_DIR").map(PathBuf::from),
            pubsub_url: var(crate::project::config_pubsub::URL_ENV)
                .map(|v| v.to_string_lossy().into_owned()),
            vars: nitro_vars(),
        }
    }
}

/// Every environment variable starting with `NITRO_` (values that are not UTF-8 are skipped).
pub fn nitro_vars() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(crate::project::config_runtime::ENV_PREFIX))
        .collect()
}

/// The flags that override everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--port`.
    pub port: Option<u16>,
    /// `--host`.
    pub host: Option<String>,
}

/// Why the configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The project folder is missing or not a folder.
    #[error("project folder `{}` {reason}", .dir.display())]
    ProjectDir { dir: PathBuf, reason: String },

    /// The folder has neither `routes/` nor `nitro.toml`.
    #[error("`{}` is not a nitro project: it has neither `routes/` nor `nitro.toml`", .dir.display())]
    NotAProject { dir: PathBuf },

    /// `nitro.toml` exists but cannot be read.
    #[error("cannot read `{}`", .file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `nitro.toml` is not valid TOML (with toml's own excerpt of the line).
    #[error("`{}` is not valid TOML:\n{detail}", .file.display())]
    Syntax { file: PathBuf, detail: String },

    /// A key the file may not have.
    #[error("unknown key `{}` in {at}: expected {expected}", .at.key)]
    UnknownKey {
        at: Box<KeyAt>,
        /// Serde's list of what is allowed: `` `static` `` or `` `port` or `host` ``.
        expected: String,
    },

    /// A value of the wrong type or range.
    #[error("`{}` in {at} must be {expected}, found {found}", .at.key)]
    InvalidValue {
        at: Box<KeyAt>,
        expected: String,
        found: String,
    },

    /// Any other problem with the file's content, as serde put it.
    #[error("{message} (at `{}:{line}`)", .file.display())]
    Other {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// `[dependencies]` lists a crate that nitro provides itself.
    #[error("`[dependencies]` of `{}` lists `{name}`, which nitro provides itself", .file.display())]
    ReservedDependency { file: PathBuf, name: String },

    /// `PORT` is set to something that is not a port number.
    #[error("environment variable `PORT` is `{value}`, which is not a port number (0 to 65535)")]
    EnvPort { value: String },

    /// A host that is not an IP address.
    #[error("{source_name} is `{value}`, which is not an IP address")]
    Host {
        /// Where the value came from: `` `HOST` ``, `` `--host` ``, `` `host` in `[dev]` of `nitro.toml` ``.
        source_name: String,
        value: String,
    },

    /// `[websocket] pubsub` or `NITRO_PUBSUB_URL` is wrong.
    #[error(transparent)]
    PubSub(#[from] crate::project::config_pubsub::PubSubConfigError),

    /// A `NITRO_*` override of `[runtime_config]` that does not parse as its default's type.
    #[error(transparent)]
    RuntimeConfig(#[from] crate::project::config_runtime::RuntimeConfigError),

    /// `[scheduled_tasks]` has a key that is not a cron expression.
    #[error(transparent)]
    ScheduledTasks(#[from] crate::project::config_tasks::ScheduledTasksError),
    /// A `[storage.NAME]` table, or its `NITRO_STORAGE_<NAME>_URL`, is wrong.
    #[error(transparent)]
    Storage(#[from] crate::project::config_storage::StorageConfigError),

    /// A `[route_rules."/pattern"]` table is wrong.
    #[error(transparent)]
    RouteRules(#[from] crate::project::config_rules::RuleConfigError),
    /// `[observability]` is wrong.
    #[error(transparent)]
    Observability(#[from] crate::project::config_observability::ObservabilityConfigError),
}

impl ConfigError {
    /// What to do about it, for the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::ProjectDir { .. } => Some(
                "pass the folder that holds `routes/` (and `nitro.toml`), e.g. `nitro dev my-app`; `nitro init my-app` makes one".into(),
            ),
            ConfigError::NotAProject { dir } => Some(format!(
                "run `nitro init {}` to make a project there, or pass the folder that holds `routes/`",
                dir.display()
            )),
            ConfigError::Read { .. } | ConfigError::Other { .. } => None,
            ConfigError::Syntax { .. } => {
                Some(format!("the format is documented at {CONFIG_DOCS}"))
            }
            ConfigError::UnknownKey { .. } | ConfigError::InvalidValue { .. } => Some(
                format!("every key of `nitro.toml` is listed at {CONFIG_DOCS}"),
            ),
            ConfigError::ReservedDependency { name, .. } => Some(format!(
                "remove `{name}` from `[dependencies]`: every route already gets the version that matches this `nitro`"
            )),
            ConfigError::EnvPort { .. } => {
                Some("unset `PORT`, or pass `--port`, which wins over it".into())
            }
            ConfigError::Host { .. } => Some(
                "use an address such as `127.0.0.1` (this machine only) or `0.0.0.0` (every interface); `localhost` also works".into(),
            ),
            ConfigError::PubSub(error) => error.hint(),
            ConfigError::RuntimeConfig(error) => error.hint(),
            ConfigError::ScheduledTasks(error) => error.hint(),
            ConfigError::Storage(error) => error.hint(),
            ConfigError::RouteRules(error) => error.hint(),
            ConfigError::Observability(error) => error.hint(),
        }
    }
}

/// Where a key sits in `nitro.toml`. Displays as `` `[dev]` of `nitro.toml:3` ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAt {
    pub file: PathBuf,
    /// The table holding the key, empty for the top level.
    pub table: Vec<String>,
    pub key: String,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for KeyAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of `{}:{}`",
            table_name(&self.table),
            self.file.display(),
            self.line
        )
    }
}

fn table_name(table: &[String]) -> String {
    if table.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`[{}]`", table.join("."))
    }
}

/// `nitro.toml` as written. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    renderer: RendererSection,
    #[serde(default)]
    features: FeaturesSection,
    #[serde(default)]
    dev: DevSection,
    #[serde(default)]
    dependencies: toml::Table,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    websocket: WebSocketSection,
    #[serde(default)]
    runtime_config: toml::Table,
    #[serde(default)]
    scheduled_tasks: crate::project::config_tasks::ScheduledTasks,
    #[serde(default)]
    storage: std::collections::BTreeMap<
        String,
        toml::Spanned<crate::project::config_storage::StorageSection>,
    >,
    #[serde(default)]
    route_rules: std::collections::BTreeMap<String, toml::Spanned<toml::Value>>,
    #[serde(default)]
    observability: crate::project::config_observability::ObservabilitySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RendererSection {
    #[serde(rename = "static")]
    static_: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesSection {
    websocket: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevSection {
    port: Option<u16>,
    host: Option<String>,
    websocket_reload: Option<WebSocketReload>,
    allowed_hosts: Option<Vec<HostName>>,
}

/// Where `nitro.toml` is documented, for hints (an installed `nitro` has no `docs/` beside it).
const CONFIG_DOCS: &str = "https://github.com/nitro-rs/nitro-rs/blob/main/docs/config.md";

/// Reads `nitro.toml` (if any) and the process environment, then [`resolve`]s.
pub fn load(dir: &Path, overrides: &Overrides) -> Result<ResolvedConfig, ConfigError> {
    load_with_env(dir, overrides, &Env::from_process())
}

/// [`load`] with the environment given: `nitro build`, which listens on nothing, passes one
/// without `PORT` and `HOST` so that a stray value of theirs cannot fail a build.
pub fn load_with_env(
    dir: &Path,
    overrides: &Overrides,
    env: &Env,
) -> Result<ResolvedConfig, ConfigError> {
    let project_dir = match std::fs::canonicalize(dir) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => {
            return Err(ConfigError::ProjectDir {
                dir: dir.to_owned(),
                reason: "is not a folder".into(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ConfigError::ProjectDir {
                dir: dir.to_owned(),
                reason: "does not exist".into(),
            });
        }
        Err(e) => {
            return Err(ConfigError::ProjectDir {
                dir: dir.to_owned(),
                reason: format!("cannot be opened: {e}"),
            });
        }
    };
    let file = project_dir.join(CONFIG_FILE);
    if !file.exists() && !project_dir.join("routes").exists() {
        return Err(ConfigError::NotAProject {
            dir: dir.to_owned(),
        });
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                file: display_path(dir, CONFIG_FILE),
                source,
            });
        }
    };
    resolve(&project_dir, dir, text.as_deref(), env, overrides)
}

/// Joins for display without a leading `./`.
fn display_path(dir: &Path, name: &str) -> PathBuf {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

/// Resolves every layer into one [`ResolvedConfig`]. Pure: `project_dir` must already be
/// absolute (canonical); `display_dir` is how the user named it; `file` is the content of
/// `nitro.toml`, if the project has one.
pub fn resolve(
    project_dir: &Path,
    display_dir: &Path,
    file: Option<&str>,
    env: &Env,
    overrides: &Overrides,
) -> Result<ResolvedConfig, ConfigError> {
    let display_file = display_path(display_dir, CONFIG_FILE);
    let parsed = match file {
        Some(text) => parse_file(text, &display_file)?,
        None => FileConfig::default(),
    };

    let mut dependencies = parsed.dependencies;
    for reserved in ["nitro", "nitro-abi", "nitro_abi"] {
        if dependencies.contains_key(reserved) {
            return Err(ConfigError::ReservedDependency {
                file: display_file,
                name: reserved.to_owned(),
            });
        }
    }
    absolutise_paths(&mut dependencies, project_dir);

    // Host: file ← env ← flag, each parsed where it came from so an error names its source.
    let mut ip = DEFAULT_ADDR.ip();
    if let Some(host) = &parsed.dev.host {
        ip = parse_host(host, || {
            format!("`host` in `[dev]` of `{}`", display_file.display())
        })?;
    }
    if let Some(host) = &env.host {
        ip = parse_host(host, || "environment variable `HOST`".to_owned())?;
    }
    if let Some(host) = &overrides.host {
        ip = parse_host(host, || "`--host`".to_owned())?;
    }

    let mut port = parsed.dev.port.unwrap_or(DEFAULT_ADDR.port());
    if let Some(value) = &env.port {
        port = value.trim().parse().map_err(|_| ConfigError::EnvPort {
            value: value.clone(),
        })?;
    }
    if let Some(p) = overrides.port {
        port = p;
    }

    let mut warnings = Vec::new();
    if ip.is_unspecified() {
        warnings.push(format!(
            "listening on every interface (`{ip}`): the dev server, which runs your code with debug error pages, is reachable from the network"
        ));
    }

    let pubsub = match parsed.websocket.pubsub {
        Some(table) => {
            let line = line_of(file.unwrap_or(""), table.span().start);
            let location = format!("{}:{line}", display_file.display());
            Some(crate::project::config_pubsub::resolve(
                table.into_inner(),
                &location,
                env.pubsub_url.as_deref(),
            )?)
        }
        None => None,
    };

    let observability = crate::project::config_observability::resolve(
        parsed.observability,
        &display_file.display().to_string(),
    )?;

    let runtime_config = crate::project::config_runtime::apply_env(
        &crate::project::config_runtime::to_json(&parsed.runtime_config),
        &|name| env.vars.get(name).cloned(),
    )?;

    crate::project::config_tasks::schedules(
        &parsed.scheduled_tasks,
        &display_file.display().to_string(),
    )?;

    let storage = crate::project::config_storage::resolve(
        parsed
            .storage
            .into_iter()
            .map(|(name, table)| {
                let line = line_of(file.unwrap_or(""), table.span().start);
                let location = format!("{}:{line}", display_file.display());
                (name, table.into_inner(), location)
            })
            .collect(),
        &|name| env.vars.get(name).cloned(),
    )?;

    let route_rules = crate::project::config_rules::resolve(
        parsed
            .route_rules
            .into_iter()
            .map(|(pattern, table)| {
                let line = line_of(file.unwrap_or(""), table.span().start);
                let location = format!("{}:{line}", display_file.display());
                (pattern, table.into_inner(), location)
            })
            .collect(),
    )?;

    let target_dir = match &env.target_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        // Relative to where nitro was started, as cargo treats CARGO_TARGET_DIR.
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => project_dir.join(".nitro").join("target"),
    };

    Ok(ResolvedConfig {
        project_dir: project_dir.to_owned(),
        display_dir: display_dir.to_owned(),
        config_file: file.map(|_| project_dir.join(CONFIG_FILE)),
        addr: SocketAddr::new(ip, port),
        renderer_static: parsed.renderer.static_.unwrap_or(true),
        websocket: parsed.features.websocket.unwrap_or(true),
        dependencies,
        target_dir,
        websocket_reload: parsed.dev.websocket_reload.unwrap_or_default(),
        warnings,
        limits: parsed.limits.resolve(),
        allowed_hosts: parsed
            .dev
            .allowed_hosts
            .unwrap_or_default()
            .into_iter()
            .map(|host| host.0)
            .collect(),
        allowed_origins: parsed
            .websocket
            .allowed_origins
            .map(|origins| origins.into_iter().map(|origin| origin.0).collect()),
        pubsub,
        runtime_config,
        scheduled_tasks: parsed.scheduled_tasks,
        storage,
        route_rules,
        observability,
    })
}

/// Reads a listening address as people write it: an IP (`::1` or `[::1]`, as in URLs) or
/// `localhost` (127.0.0.1). Host names are not resolved.
pub fn host_addr(value: &str) -> Option<IpAddr> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    bare.parse().ok()
}

fn parse_host(value: &str, source_name: impl FnOnce() -> String) -> Result<IpAddr, ConfigError> {
    host_addr(value).ok_or_else(|| ConfigError::Host {
        source_name: source_name(),
        value: value.to_owned(),
    })
}

/// Makes `path = "…"` of every dependency absolute (relative to the project), since the
/// generated crates live elsewhere.
fn absolutise_paths(dependencies: &mut toml::Table, project_dir: &Path) {
    for (_, value) in dependencies.iter_mut() {
        if let toml::Value::Table(spec) = value
            && let Some(toml::Value::String(path)) = spec.get_mut("path")
            && Path::new(path.as_str()).is_relative()
        {
            let joined = normalise(&project_dir.join(path.as_str()));
            *path = joined.to_string_lossy().into_owned();
        }
    }
}

/// Removes `.` and `..` parts lexically (the target may not exist yet; cargo will say so).
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_file(text: &str, file: &Path) -> Result<FileConfig, ConfigError> {
    match toml::from_str::<FileConfig>(text) {
        Ok(config) => Ok(config),
        Err(error) => Err(explain(text, file, &error)),
    }
}

/// Turns toml/serde's error into one that names the table, the key and the line.
fn explain(text: &str, file: &Path, error: &toml::de::Error) -> ConfigError {
    let file = file.to_owned();
    // Syntax errors come from the parser: the document itself does not parse.
    let Ok(document) = toml::de::DeTable::parse(text) else {
        return ConfigError::Syntax {
            file,
            detail: error.to_string().trim_end().to_owned(),
        };
    };
    let span = error.span().unwrap_or(0..0);
    let line = line_of(text, span.start);
    let mut path = Vec::new();
    locate(document.get_ref(), &span, &mut path);
    let message = error.message();

    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once("`, expected ")
    {
        let mut table = path;
        if table.last().is_some_and(|last| last == key) {
            table.pop();
        }
        return ConfigError::UnknownKey {
            at: Box::new(KeyAt {
                file,
                table,
                key: key.to_owned(),
                line,
            }),
            expected: expected.to_owned(),
        };
    }

    let found = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.rsplit_once(", expected "))
        .map(|(found, _)| found.to_owned());
    if let (Some(found), Some(key)) = (found, path.last().cloned()) {
        let table = path[..path.len() - 1].to_vec();
        let expected = expected_for(&table, &key);
        return ConfigError::InvalidValue {
            at: Box::new(KeyAt {
                file,
                table,
                key,
                line,
            }),
            expected,
            found,
        };
    }

    ConfigError::Other {
        file,
        line,
        message: message.to_owned(),
    }
}

/// What a key takes, in words.
fn expected_for(table: &[String], key: &str) -> String {
    match (table.first().map(String::as_str), key) {
        (None, "dependencies") => "a table of crates, as in `Cargo.toml`".into(),
        (None, _) => format!("a table (`[{key}]`)"),
        (Some("dev"), "port") => "a port number from 0 to 65535".into(),
        (Some("dev"), "host") => "a string, such as `\"127.0.0.1\"`".into(),
        (Some("dev"), "websocket_reload") => "`\"keep\"` or `\"restart\"`".into(),
        (Some("dev"), "allowed_hosts") => crate::project::config_limits::HOSTS.into(),
        (Some("websocket"), "allowed_origins") => crate::project::config_limits::ORIGINS.into(),
        (Some("websocket"), "pubsub") => {
            "a table such as `{ url = \"redis://127.0.0.1:6379\", channel = \"my-app\" }`".into()
        }
        (Some("limits"), key) => crate::project::config_limits::expected(key),
        (Some("observability"), "metrics") => "a path, such as `\"/__nitro/metrics\"`".into(),
        (Some("observability"), "metrics_bind") => {
            "an address with a port, such as `\"127.0.0.1:9464\"`".into()
        }
        (Some("renderer" | "features"), _) => "`true` or `false`".into(),
        _ => "a different type".into(),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the key path whose key or value covers `span`, the deepest one.
fn locate(table: &toml::de::DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    let covers = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        if let toml::de::DeValue::Table(inner) = value.get_ref()
            && locate(inner, span, path)
        {
            return true;
        }
        if covers(key.span()) || covers(value.span()) {
            return true;
        }
        path.pop();
    }
    false
}

impl fmt::Display for ResolvedConfig {
    /// A one-line summary for `-v` logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "project `{}`, address {}, renderer static {}, websocket {}, {} dependencies, target `{}`",
            self.project_dir.display(),
            self.addr,
            self.renderer_static,
            self.websocket,
            self.dependencies.len(),
            self.target_dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/home/ada/app")
    }

    fn run(
        file: Option<&str>,
        env: Env,
        overrides: Overrides,
    ) -> Result<ResolvedConfig, ConfigError> {
        resolve(&dir(), Path::new("examples/x"), file, &env, &overrides)
    }

    fn ok(file: &str) -> ResolvedConfig {
        run(Some(file), Env::default(), Overrides::default()).unwrap()
    }

    fn err(file: &str) -> String {
        run(Some(file), Env::default(), Overrides::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_without_a_file() {
        let c = run(None, Env::default(), Overrides::default()).unwrap();
        assert_eq!(c.addr, "127.0.0.1:3000".parse().unwrap());
        assert!(c.renderer_static);
        assert!(c.websocket);
        assert!(c.dependencies.is_empty());
        assert_eq!(c.config_file, None);
        assert_eq!(c.target_dir, dir().join(".nitro/target"));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = ok("");
        assert_eq!(c.addr, DEFAULT_ADDR);
        assert!(c.renderer_static && c.websocket);
        assert_eq!(c.config_file, Some(dir().join("nitro.toml")));
    }

    #[test]
    fn every_key() {
        let c = ok(r#"
            [renderer]
            static = false
            [features]
            websocket = false
            [dev]
            port = 8080
            host = "::1"
            websocket_reload = "restart"
            [dependencies]
            serde_json = "1"
            rand = { version = "0.9", features = ["small_rng"] }
        "#);
        assert_eq!(c.addr, "[::1]:8080".parse().unwrap());
        assert!(!c.renderer_static);
        assert!(!c.websocket);
        assert_eq!(c.websocket_reload, WebSocketReload::Restart);
        assert_eq!(c.dependencies["serde_json"].as_str(), Some("1"));
        assert_eq!(
            c.dependencies["rand"]["features"][0].as_str(),
            Some("small_rng")
        );
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let file = Some("[dev]\nport = 4000\nhost = \"127.0.0.2\"\n");
        let env = Env {
            port: Some("5000".into()),
            host: Some("127.0.0.3".into()),
            ..Env::default()
        };
        let only_file = run(file, Env::default(), Overrides::default()).unwrap();
        assert_eq!(only_file.addr, "127.0.0.2:4000".parse().unwrap());

        let with_env = run(file, env.clone(), Overrides::default()).unwrap();
        assert_eq!(with_env.addr, "127.0.0.3:5000".parse().unwrap());

        let flags = Overrides {
            port: Some(6000),
            host: Some("localhost".into()),
        };
        let with_flags = run(file, env.clone(), flags).unwrap();
        assert_eq!(with_flags.addr, "127.0.0.1:6000".parse().unwrap());

        // A flag for one value leaves the other to the lower layers.
        let port_only = Overrides {
            port: Some(0),
            host: None,
        };
        assert_eq!(
            run(file, env, port_only).unwrap().addr,
            "127.0.0.3:0".parse().unwrap()
        );
    }

    #[test]
    fn target_dir_from_env() {
        let env = Env {
            target_dir: Some("/srv/shared-target".into()),
            ..Env::default()
        };
        let c = run(None, env, Overrides::default()).unwrap();
        assert_eq!(c.target_dir, PathBuf::from("/srv/shared-target"));
    }

    #[test]
    fn unknown_key_names_table_file_line_and_the_right_key() {
        assert_eq!(
            err("[renderer]\nstatik = true\n"),
            "unknown key `statik` in `[renderer]` of `examples/x/nitro.toml:2`: expected `static`"
        );
        assert_eq!(
            err("[dev]\nport = 1\n\nhots = \"x\"\n"),
            "unknown key `hots` in `[dev]` of `examples/x/nitro.toml:4`: expected one of `port`, `host`, `websocket_reload`, `allowed_hosts`"
        );
        assert_eq!(
            err("[features]\nwebsockets = true"),
            "unknown key `websockets` in `[features]` of `examples/x/nitro.toml:2`: expected `websocket`"
        );
    }

    #[test]
    fn websocket_reload_is_keep_or_restart() {
        assert_eq!(ok("").websocket_reload, WebSocketReload::Keep);
        assert_eq!(
            ok("[dev]\nwebsocket_reload = \"keep\"").websocket_reload,
            WebSocketReload::Keep
        );
        let e = err("[dev]\nwebsocket_reload = \"reload\"\n");
        assert!(e.contains("`keep`") && e.contains("`restart`"), "{e}");
        assert!(e.contains("nitro.toml:2"), "{e}");
    }

    #[test]
    fn runtime_config_takes_any_toml_and_the_nitro_variables_of_the_env() {
        let file = "[runtime_config]\napi_url = \"http://a\"\n[runtime_config.db]\npool = 4\n";
        assert_eq!(
            ok(file).runtime_config,
            serde_json::json!({ "api_url": "http://a", "db": { "pool": 4 } })
        );
        assert_eq!(ok("").runtime_config, serde_json::json!({}));
        let env = |value: &str| Env {
            vars: [("NITRO_DB_POOL".to_owned(), value.to_owned())].into(),
            ..Env::default()
        };
        let c = run(Some(file), env("9"), Overrides::default()).unwrap();
        assert_eq!(c.runtime_config["db"]["pool"], 9);
        let e = run(Some(file), env("nine"), Overrides::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable `NITRO_DB_POOL` is `nine`, but `db.pool` in `[runtime_config]` is an integer"
        );
        assert!(e.hint().unwrap().contains("`NITRO_DB_POOL`"));
    }

    #[test]
    fn unknown_top_level_key() {
        assert_eq!(
            err("[server]\nport = 1\n"),
            "unknown key `server` in the top level of `examples/x/nitro.toml:1`: expected one of `renderer`, `features`, `dev`, `dependencies`, `limits`, `websocket`, `runtime_config`, `scheduled_tasks`, `storage`, `route_rules`, `observability`"
        );
        assert_eq!(
            err("port = 1\n"),
            "unknown key `port` in the top level of `examples/x/nitro.toml:1`: expected one of `renderer`, `features`, `dev`, `dependencies`, `limits`, `websocket`, `runtime_config`, `scheduled_tasks`, `storage`, `route_rules`, `observability`"
        );
    }

    #[test]
    fn dotted_and_inline_tables_are_located_too() {
        assert_eq!(
            err("renderer.statik = true\n"),
            "unknown key `statik` in `[renderer]` of `examples/x/nitro.toml:1`: expected `static`"
        );
        assert_eq!(
            err("\ndev = { port = \"80\" }\n"),
            "`port` in `[dev]` of `examples/x/nitro.toml:2` must be a port number from 0 to 65535, found string \"80\""
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            err("[dev]\nport = \"3000\"\n"),
            "`port` in `[dev]` of `examples/x/nitro.toml:2` must be a port number from 0 to 65535, found string \"3000\""
        );
        assert_eq!(
            err("[dev]\nport = 70000\n"),
            "`port` in `[dev]` of `examples/x/nitro.toml:2` must be a port number from 0 to 65535, found integer `70000`"
        );
        assert_eq!(
            err("[dev]\nhost = 127\n"),
            "`host` in `[dev]` of `examples/x/nitro.toml:2` must be a string, such as `\"127.0.0.1\"`, found integer `127`"
        );
        assert_eq!(
            err("[renderer]\nstatic = \"yes\"\n"),
            "`static` in `[renderer]` of `examples/x/nitro.toml:2` must be `true` or `false`, found string \"yes\""
        );
        assert_eq!(
            err("# comment\nfeatures = true\n"),
            "`features` in the top level of `examples/x/nitro.toml:2` must be a table (`[features]`), found boolean `true`"
        );
        assert_eq!(
            err("dependencies = [\"serde\"]\n"),
            "`dependencies` in the top level of `examples/x/nitro.toml:1` must be a table of crates, as in `Cargo.toml`, found sequence"
        );
    }

    #[test]
    fn syntax_error_keeps_tomls_excerpt() {
        let message = err("[dev\nport = 1\n");
        assert!(
            message.starts_with("`examples/x/nitro.toml` is not valid TOML:\n"),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn file_in_current_dir_has_no_dot_prefix() {
        let e = resolve(
            &dir(),
            Path::new("."),
            Some("x = 1"),
            &Env::default(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("of `nitro.toml:1`"), "{e}");
    }

    #[test]
    fn bad_env_port_names_variable_and_value() {
        let env = Env {
            port: Some("http".into()),
            ..Env::default()
        };
        let e = run(None, env, Overrides::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable `PORT` is `http`, which is not a port number (0 to 65535)"
        );
        assert!(e.hint().unwrap().contains("--port"));

        let env = Env {
            port: Some("99999".into()),
            ..Env::default()
        };
        assert!(matches!(
            run(None, env, Overrides::default()),
            Err(ConfigError::EnvPort { .. })
        ));
    }

    #[test]
    fn bad_env_port_is_an_error_even_with_a_flag() {
        // A broken environment is reported rather than silently shadowed.
        let env = Env {
            port: Some("x".into()),
            ..Env::default()
        };
        let flags = Overrides {
            port: Some(1),
            host: None,
        };
        assert!(run(None, env, flags).is_err());
    }

    #[test]
    fn bad_hosts_name_their_source() {
        let e = err("[dev]\nhost = \"my-box\"\n");
        assert_eq!(
            e,
            "`host` in `[dev]` of `examples/x/nitro.toml` is `my-box`, which is not an IP address"
        );
        let env = Env {
            host: Some("my-box".into()),
            ..Env::default()
        };
        assert_eq!(
            run(None, env, Overrides::default())
                .unwrap_err()
                .to_string(),
            "environment variable `HOST` is `my-box`, which is not an IP address"
        );
        let flags = Overrides {
            host: Some("nope".into()),
            port: None,
        };
        assert_eq!(
            run(None, Env::default(), flags).unwrap_err().to_string(),
            "`--host` is `nope`, which is not an IP address"
        );
    }

    #[test]
    fn every_interface_warns() {
        for host in ["0.0.0.0", "::", "[::]"] {
            let flags = Overrides {
                host: Some(host.into()),
                port: None,
            };
            let c = run(None, Env::default(), flags).unwrap();
            assert!(c.addr.ip().is_unspecified());
            assert_eq!(c.warnings.len(), 1, "{host}");
            assert!(c.warnings[0].contains("reachable from the network"));
        }
    }

    #[test]
    fn dependency_paths_become_absolute() {
        let c = ok(r#"
            [dependencies]
            shared = { path = "../shared" }
            local = { path = "./crates/local", features = ["x"] }
            abs = { path = "/opt/abs" }
            plain = "1"
        "#);
        assert_eq!(
            c.dependencies["shared"]["path"].as_str(),
            Some("/home/ada/shared")
        );
        assert_eq!(
            c.dependencies["local"]["path"].as_str(),
            Some("/home/ada/app/crates/local")
        );
        assert_eq!(c.dependencies["local"]["features"][0].as_str(), Some("x"));
        assert_eq!(c.dependencies["abs"]["path"].as_str(), Some("/opt/abs"));
        assert_eq!(c.dependencies["plain"].as_str(), Some("1"));
    }

    /// The example at the top of `docs/config.md` is a valid `nitro.toml`.
    #[test]
    fn the_documented_example_is_valid() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
        )
        .unwrap();
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let c = ok(example);
        assert_eq!(c.addr.port(), 3000);
        assert_eq!(c.dependencies.len(), 3);
    }

    #[test]
    fn nitro_itself_is_not_a_dependency() {
        let e = run(
            Some("[dependencies]\nnitro = \"0.1\"\n"),
            Env::default(),
            Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`[dependencies]` of `examples/x/nitro.toml` lists `nitro`, which nitro provides itself"
        );
    }

    #[test]
    fn every_error_has_a_hint_where_there_is_something_to_do() {
        let e = run(Some("[x]"), Env::default(), Overrides::default()).unwrap_err();
        assert!(e.hint().unwrap().contains(CONFIG_DOCS));
    }

    #[test]
    fn load_reports_a_missing_folder() {
        let e = load(Path::new("/definitely/not/here"), &Overrides::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "project folder `/definitely/not/here` does not exist"
        );
    }

    #[test]
    fn load_reads_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("nitro.toml"),
            "[renderer]\nstatic = false\n",
        )
        .unwrap();
        let c = load(tmp.path(), &Overrides::default()).unwrap();
        assert!(!c.renderer_static);
        assert_eq!(c.project_dir, std::fs::canonicalize(tmp.path()).unwrap());
    }
}
