//! The hidden cargo workspace in `<project>/.nitro/` that compiles each route file.
//!
//! ```text
//! .nitro/.gitignore                 *
//! .nitro/Cargo.toml                 [workspace] of the route crates, profile settings
//! .nitro/crates/nitro-abi/          materialised from this binary (see `embedded`)
//! .nitro/crates/nitro/              likewise
//! .nitro/routes/<crate>/Cargo.toml  one cdylib per route file
//! .nitro/routes/<crate>/src/lib.rs  `#[path = "<route file>"] mod route;` + the exported shims
//! ```
//!
//! Text generation is pure ([`plan`] and the functions it calls); [`generate`] reads the route
//! files, plans, and writes. It writes a file only when its content changed: cargo fingerprints
//! path dependencies by mtime, so rewriting identical files would rebuild every route. It is
//! cheap and meant to be called again on every change (a route gaining a `pub fn close` changes
//! its generated `lib.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use nitro_router::{Route, RouteKind, RouteTable};

use crate::project::config::ResolvedConfig;
use crate::project::toml_text::{literal, toml_key};
use crate::project::{embedded, ide};

/// Prefix of every generated route crate's name; [`generate`] only ever deletes folders
/// carrying it.
pub const CRATE_PREFIX: &str = "nitro_route_";

/// The WebSocket hooks, in the order of `__export_route!`'s arguments.
pub const WS_HOOKS: [&str; 5] = ["upgrade", "open", "message", "close", "error"];

/// A plugin's functions, in the order of `__export_plugin!`'s arguments.
pub const PLUGIN_HOOKS: [&str; 2] = ["setup", "shutdown"];

/// The constant that limits a middleware to some paths (`pub const PATHS: &[&str]`).
pub const MIDDLEWARE_PATHS: &str = "PATHS";

/// One generated route crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCrate {
    /// The route file, relative to the project: `routes/users/[id].rs`.
    pub file: String,
    /// The cargo package (and library) name.
    pub crate_name: String,
    pub kind: RouteKind,
    /// The hooks passed to `__export_route!`, by name (`handler`, `open`, …).
    pub hooks: BTreeSet<String>,
}

/// What `syn` found at the top level of a route file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definitions {
    /// Functions the generated crate can call: `pub fn` (any `pub(…)` but `pub(self)`) and
    /// `pub use` names.
    pub public: BTreeSet<String>,
    /// `fn` without `pub`.
    pub private: BTreeSet<String>,
    /// The `async fn`s among `public`: their hooks are exported as async entry points, and
    /// the route is built with the `nitro` crate's `tokio` feature.
    pub asynchronous: BTreeSet<String>,
    /// The file has a `pub use …::*`, so any name may be defined.
    pub glob: bool,
    /// `pub const`s (a middleware's `PATHS`).
    pub consts: BTreeSet<String>,
}

/// Lists the top-level functions of a route file, or `None` if it does not parse (then rustc
/// will report the real syntax error through cargo).
pub fn definitions(source: &str) -> Option<Definitions> {
    let file = syn::parse_file(source).ok()?;
    let mut out = Definitions::default();
    for item in &file.items {
        match item {
            syn::Item::Fn(f) => {
                let name = f.sig.ident.to_string();
                if is_visible(&f.vis) {
                    if f.sig.asyncness.is_some() {
                        out.asynchronous.insert(name.clone());
                    }
                    out.public.insert(name);
                } else {
                    out.private.insert(name);
                }
            }
            syn::Item::Use(u) if is_visible(&u.vis) => use_names(&u.tree, &mut out),
            syn::Item::Const(c) if is_visible(&c.vis) => {
                out.consts.insert(c.ident.to_string());
            }
            _ => {}
        }
    }
    Some(out)
}

/// Whether a route file may call `Request::multipart` or name `nitro::multipart`: then its
/// crate is built with the `nitro` crate's `multipart` feature. Any mention counts, in any
/// case (a comment too: that only costs compiling multer), so a file that uses the API always
/// has it; the API cannot be reached without writing its name, since a route's other crates
/// cannot depend on the generated `nitro`. (The IDE crates keep the default features, so an
/// editor offers the method before the file names it.)
pub fn uses_multipart(source: &str) -> bool {
    source.to_ascii_lowercase().contains("multipart")
}

/// Visible from the crate root that includes the file as `mod route`.
fn is_visible(vis: &syn::Visibility) -> bool {
    match vis {
        syn::Visibility::Public(_) => true,
        syn::Visibility::Restricted(r) => !r.path.is_ident("self"),
        syn::Visibility::Inherited => false,
    }
}

fn use_names(tree: &syn::UseTree, out: &mut Definitions) {
    match tree {
        syn::UseTree::Path(p) => use_names(&p.tree, out),
        syn::UseTree::Name(n) => {
            out.public.insert(n.ident.to_string());
        }
        syn::UseTree::Rename(r) => {
            out.public.insert(r.rename.to_string());
        }
        syn::UseTree::Glob(_) => out.glob = true,
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_names(t, out)),
    }
}

/// A route file that cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteProblem {
    /// An HTTP route without its handler.
    #[error(
        "route file `{file}` has no `pub fn handler`: add `pub fn handler(req: &nitro::Request) -> impl nitro::IntoResponse`"
    )]
    MissingHandler { file: String },
    /// An HTTP route whose handler is not `pub`.
    #[error("route file `{file}` defines `fn handler` without `pub`: write `pub fn handler`")]
    PrivateHandler { file: String },
    /// A middleware file without its handler.
    #[error(
        "middleware file `{file}` has no `pub fn handler`: add `pub async fn handler(req: &mut nitro::Request) -> nitro::Result<()>`"
    )]
    MissingMiddleware { file: String },
    /// A task file without `pub fn run`.
    #[error(
        "task file `{file}` has no `pub fn run`: add `pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value>`"
    )]
    MissingRun { file: String },
}

impl RouteProblem {
    /// The route file it is about.
    pub fn file(&self) -> &str {
        match self {
            RouteProblem::MissingHandler { file }
            | RouteProblem::PrivateHandler { file }
            | RouteProblem::MissingMiddleware { file }
            | RouteProblem::MissingRun { file } => file,
        }
    }
}

/// Decides which hooks to export for a route, from its source (`None`: unreadable or
/// unparsable, in which case the required function is assumed). Returns the hooks and
/// warnings.
pub fn route_hooks(
    file: &str,
    kind: RouteKind,
    defs: Option<&Definitions>,
) -> Result<(BTreeSet<String>, Vec<String>), RouteProblem> {
    let mut warnings = Vec::new();
    let mut hooks = BTreeSet::new();
    match kind {
        RouteKind::Http => {
            // `pub` WebSocket hooks make the route the WebSocket endpoint at its path too;
            // its handler, then optional, answers the plain requests there.
            if let Some(d) = defs {
                for hook in WS_HOOKS {
                    if d.public.contains(hook) {
                        hooks.insert(hook.to_owned());
                    }
                }
            }
            match defs {
                Some(d) if !d.public.contains("handler") && !d.glob && !hooks.is_empty() => {
                    return Ok((hooks, warnings));
                }
                Some(d) if !d.public.contains("handler") && !d.glob => {
                    return Err(if d.private.contains("handler") {
                        RouteProblem::PrivateHandler { file: file.into() }
                    } else {
                        RouteProblem::MissingHandler { file: file.into() }
                    });
                }
                _ => {}
            }
            hooks.insert("handler".to_owned());
        }
        RouteKind::Middleware => {
            if let Some(d) = defs {
                if !d.public.contains("handler") && !d.glob {
                    return Err(if d.private.contains("handler") {
                        RouteProblem::PrivateHandler { file: file.into() }
                    } else {
                        RouteProblem::MissingMiddleware { file: file.into() }
                    });
                }
                if d.consts.contains(MIDDLEWARE_PATHS) {
                    hooks.insert(MIDDLEWARE_PATHS.to_owned());
                }
            }
            hooks.insert("handler".to_owned());
        }
        RouteKind::Task => {
            if let Some(d) = defs
                && !d.public.contains("run")
                && !d.glob
            {
                return Err(RouteProblem::MissingRun { file: file.into() });
            }
            hooks.insert("run".to_owned());
        }
        RouteKind::Plugin => {
            let Some(d) = defs else {
                // Unparsable: export nothing; rustc reports the syntax error.
                return Ok((hooks, warnings));
            };
            for hook in PLUGIN_HOOKS {
                if d.public.contains(hook) {
                    hooks.insert(hook.to_owned());
                } else if d.private.contains(hook) {
                    warnings.push(format!(
                        "`fn {hook}` in `{file}` is not `pub`, so it is never called: write `pub async fn {hook}`"
                    ));
                }
            }
            if hooks.is_empty() && !d.glob {
                warnings.push(format!(
                    "plugin `{file}` defines neither `pub async fn setup` nor `pub async fn shutdown`: it does nothing"
                ));
            }
        }
        RouteKind::WebSocket => {
            let Some(d) = defs else {
                // Unparsable: export nothing; rustc reports the syntax error.
                return Ok((hooks, warnings));
            };
            for hook in WS_HOOKS {
                if d.public.contains(hook) {
                    hooks.insert(hook.to_owned());
                } else if d.private.contains(hook) {
                    warnings.push(format!(
                        "`fn {hook}` in `{file}` is not `pub`, so it is never called: write `pub fn {hook}`"
                    ));
                }
            }
            if hooks.is_empty() && !d.glob {
                warnings.push(format!(
                    "WebSocket route `{file}` defines none of the hooks `upgrade`, `open`, `message`, `close`, `error`: connections are accepted and ignored"
                ));
            }
            if d.public.contains("handler") {
                warnings.push(format!(
                    "`handler` in WebSocket route `{file}` is never called: a `_ws.rs` file answers upgrades through its hooks"
                ));
            }
        }
    }
    Ok((hooks, warnings))
}

/// A stable 8-hex-digit hash of the canonical project folder, so that projects sharing one
/// target dir never share a crate name. FNV-1a: `std`'s hasher may change between releases.
pub fn project_hash(project_dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in project_dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", (hash >> 32) as u32 ^ hash as u32)
}

/// `routes/users/[id].get.rs` → `users_id_get`: lower-case ASCII letters and digits, runs of
/// anything else as one `_`.
pub fn sanitise(file: &str) -> String {
    let stem = file.strip_prefix("routes/").unwrap_or(file);
    let stem = stem.strip_suffix(".rs").unwrap_or(stem);
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        return "route".to_owned();
    }
    if trimmed.len() > MAX_STEM {
        // The crate's folder name must fit a file name (255 bytes); a long route file name
        // keeps its start and gets a hash of the whole name, so it stays unique.
        let own = project_hash_of_str(file);
        return format!("{}_{own}", trimmed[..MAX_STEM - 9].trim_end_matches('_'));
    }
    trimmed.to_owned()
}

/// The longest sanitised stem in a crate name (`nitro_route_<stem>_<hash>`, at most about
/// 100 bytes: far under the 255 a file name may have).
const MAX_STEM: usize = 64;

/// Crate names for route files (same order). Files whose sanitised names collide
/// (`a-b.rs`, `a_b.rs`) get a hash of their own path appended.
pub fn crate_names(files: &[&str], project_hash: &str) -> Vec<String> {
    let stems: Vec<String> = files.iter().map(|f| sanitise(f)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for stem in &stems {
        *counts.entry(stem).or_default() += 1;
    }
    files
        .iter()
        .zip(&stems)
        .map(|(file, stem)| {
            if counts[stem.as_str()] > 1 {
                let own = &project_hash_of_str(file)[..4];
                format!("{CRATE_PREFIX}{stem}_{own}_{project_hash}")
            } else {
                format!("{CRATE_PREFIX}{stem}_{project_hash}")
            }
        })
        .collect()
}

fn project_hash_of_str(s: &str) -> String {
    project_hash(Path::new(s))
}

/// `.nitro/Cargo.toml`. Profile settings live here, not in `RUSTFLAGS`, so the user's own
/// cargo runs keep their cache (measurements: `shared/reference/hot-reload.md` C.3).
pub fn workspace_manifest(members: &[String]) -> String {
    let mut out = format!(
        "# @generated by nitro {}; do not edit. Rewritten by every `nitro dev`.\n\
         [workspace]\nresolver = \"3\"\nmembers = [\n",
        embedded::VERSION
    );
    for member in members {
        out.push_str(&format!("    \"routes/{member}\",\n"));
        out.push_str(&format!("    \"routes/{member}/ide\",\n"));
    }
    out.push_str(
        r#"]

[profile.dev]
# Backtraces keep file:line; 5-10 ms faster per rebuild and a 20% smaller library.
debug = "line-tables-only"
incremental = true
# Required: every route catches its own panics.
panic = "unwind"

[profile.dev.package."*"]
debug = false

[profile.release]
panic = "unwind"
"#,
    );
    out
}

/// `.nitro/routes/<crate>/Cargo.toml`. The `nitro` crate comes without its default features,
/// plus the ones the file needs: a route with an `async fn` hook (`tokio`) gets `tokio`, its
/// own runtime, and one whose file names `multipart` ([`uses_multipart`]) gets `multipart`;
/// the others compile without tokio and multer.
pub fn route_manifest(
    crate_name: &str,
    file: &str,
    dependencies: &toml::Table,
    tokio: bool,
    multipart: bool,
) -> String {
    let wanted: Vec<&str> = [("multipart", multipart), ("tokio", tokio)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    let features = match wanted.as_slice() {
        [] => ", default-features = false".to_owned(),
        names => format!(
            ", default-features = false, features = [{}]",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut out = format!(
        "# @generated by nitro from {}; do not edit.\n\
         [package]\nname = \"{crate_name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\npath = \"src/lib.rs\"\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nnitro = {{ path = \"../../crates/nitro\"{features} }}\n",
        // A comment ends at a line break: a file name with one must not add TOML lines.
        file.escape_debug()
    );
    for (name, spec) in dependencies {
        out.push_str(&format!("{} = {spec}\n", toml_key(name)));
    }
    out
}

/// `.nitro/routes/<crate>/src/lib.rs`. An `async fn` hook is passed as `(async name)`.
pub fn route_lib(
    file: &str,
    absolute: &str,
    hooks: &BTreeSet<String>,
    asynchronous: &BTreeSet<String>,
) -> String {
    let arg = |name: &str| {
        if hooks.contains(name) && asynchronous.contains(name) {
            format!("(async {name})")
        } else if hooks.contains(name) {
            name.to_owned()
        } else {
            "_".to_owned()
        }
    };
    let mut args = format!("http: {}", arg("handler"));
    for hook in WS_HOOKS {
        args.push_str(&format!(", {hook}: {}", arg(hook)));
    }
    format!(
        "// @generated by nitro from {}; do not edit.\n\
         #[path = {}]\nmod route;\n\
         nitro::__export_route!(route, {}, {args});\n",
        file.replace(['\n', '\r'], " "),
        literal(absolute),
        literal(file),
    )
}

/// `.nitro/routes/<crate>/src/lib.rs` of a middleware file: its `handler` (`(async handler)`
/// for an `async fn`) and its `PATHS`, if `hooks` has it.
pub fn middleware_lib(
    file: &str,
    absolute: &str,
    hooks: &BTreeSet<String>,
    asynchronous: &BTreeSet<String>,
) -> String {
    let handler = if asynchronous.contains("handler") {
        "(async handler)"
    } else {
        "handler"
    };
    let paths = if hooks.contains(MIDDLEWARE_PATHS) {
        MIDDLEWARE_PATHS
    } else {
        "_"
    };
    format!(
        "// @generated by nitro from {}; do not edit.\n\
         #[path = {}]\nmod route;\n\
         nitro::__export_middleware!(route, {}, handler: {handler}, paths: {paths});\n",
        file.replace(['\n', '\r'], " "),
        literal(absolute),
        literal(file),
    )
}

/// `.nitro/routes/<crate>/src/lib.rs` of a plugin file: its `setup` and `shutdown` (each
/// `(async name)` for an `async fn`, or `_` when `hooks` does not have it).
pub fn plugin_lib(
    file: &str,
    absolute: &str,
    hooks: &BTreeSet<String>,
    asynchronous: &BTreeSet<String>,
) -> String {
    let arg = |hook: &str| {
        if !hooks.contains(hook) {
            "_".to_owned()
        } else if asynchronous.contains(hook) {
            format!("(async {hook})")
        } else {
            hook.to_owned()
        }
    };
    format!(
        "// @generated by nitro from {}; do not edit.\n\
         #[path = {}]\nmod route;\n\
         nitro::__export_plugin!(route, {}, setup: {}, shutdown: {});\n",
        file.replace(['\n', '\r'], " "),
        literal(absolute),
        literal(file),
        arg("setup"),
        arg("shutdown"),
    )
}

/// `.nitro/routes/<crate>/src/lib.rs` of a task file: its `run` (`(async run)` for an
/// `async fn`).
pub fn task_lib(file: &str, absolute: &str, asynchronous: &BTreeSet<String>) -> String {
    let run = if asynchronous.contains("run") {
        "(async run)"
    } else {
        "run"
    };
    format!(
        "// @generated by nitro from {}; do not edit.\n\
         #[path = {}]\nmod route;\n\
         nitro::__export_task!(route, {}, run: {run});\n",
        file.replace(['\n', '\r'], " "),
        literal(absolute),
        literal(file),
    )
}

/// Everything to write into `.nitro/`, relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub files: BTreeMap<PathBuf, String>,
    pub routes: Vec<RouteCrate>,
    pub problems: Vec<RouteProblem>,
    pub warnings: Vec<String>,
}

/// A route to plan: the router's route and its source (`None` if unreadable).
#[derive(Debug, Clone, Copy)]
pub struct RouteSource<'a> {
    pub route: &'a Route,
    pub source: Option<&'a str>,
}

/// Plans the whole generated workspace. Pure. Routes with a [`RouteProblem`] get no crate.
pub fn plan(config: &ResolvedConfig, routes: &[RouteSource<'_>]) -> Plan {
    let mut plan = Plan::default();
    let hash = project_hash(&config.project_dir);
    let files: Vec<&str> = routes.iter().map(|r| r.route.file.as_str()).collect();
    let names = crate_names(&files, &hash);

    plan.files.insert(".gitignore".into(), "*\n".into());
    for (krate, manifest) in [
        (embedded::ABI, embedded::abi_manifest()),
        (embedded::NITRO, embedded::nitro_manifest()),
    ] {
        let dir = Path::new("crates").join(krate.dir);
        plan.files.insert(dir.join("Cargo.toml"), manifest);
        for (path, content) in krate.sources {
            plan.files.insert(dir.join(path), (*content).to_owned());
        }
    }

    for (r, crate_name) in routes.iter().zip(names) {
        let file = &r.route.file;
        let defs = r.source.and_then(definitions);
        let hooks = match route_hooks(file, r.route.kind, defs.as_ref()) {
            Ok((hooks, warnings)) => {
                plan.warnings.extend(warnings);
                hooks
            }
            Err(problem) => {
                plan.problems.push(problem);
                continue;
            }
        };
        let absolute = config.project_dir.join(file);
        let dir = route_dir(&crate_name);
        let asynchronous = defs.map(|d| d.asynchronous).unwrap_or_default();
        let tokio = hooks.iter().any(|hook| asynchronous.contains(hook));
        let multipart = r.source.is_some_and(uses_multipart);
        plan.files.insert(
            dir.join("Cargo.toml"),
            route_manifest(&crate_name, file, &config.dependencies, tokio, multipart),
        );
        let lib = match r.route.kind {
            RouteKind::Middleware => {
                middleware_lib(file, &absolute.to_string_lossy(), &hooks, &asynchronous)
            }
            RouteKind::Plugin => {
                plugin_lib(file, &absolute.to_string_lossy(), &hooks, &asynchronous)
            }
            RouteKind::Task => task_lib(file, &absolute.to_string_lossy(), &asynchronous),
            _ => route_lib(file, &absolute.to_string_lossy(), &hooks, &asynchronous),
        };
        plan.files.insert(dir.join("src/lib.rs"), lib);
        plan.files.insert(
            ide::ide_dir(&dir).join("Cargo.toml"),
            ide::ide_manifest(
                &crate_name,
                file,
                &absolute.to_string_lossy(),
                &config.dependencies,
                tokio,
            ),
        );
        plan.routes.push(RouteCrate {
            file: file.clone(),
            crate_name,
            kind: r.route.kind,
            hooks,
        });
    }

    let members: Vec<String> = plan.routes.iter().map(|r| r.crate_name.clone()).collect();
    plan.files
        .insert("Cargo.toml".into(), workspace_manifest(&members));
    plan
}

/// The folder of a route crate, relative to `.nitro/`.
fn route_dir(crate_name: &str) -> PathBuf {
    Path::new("routes").join(crate_name)
}

/// I/O failures while generating.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("cannot write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove `{}`", .path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the project path `{}` is not valid UTF-8", .0.display())]
    NonUtf8Project(PathBuf),
}

impl CodegenError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CodegenError::Write { .. } | CodegenError::Remove { .. } => Some(
                "nitro keeps generated code in `.nitro/` inside the project: make that folder writable, or delete it to start afresh".into(),
            ),
            CodegenError::NonUtf8Project(_) => {
                Some("move the project to a path that is valid UTF-8".into())
            }
        }
    }
}

/// The generated workspace, as written.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `<project>/.nitro`.
    pub dir: PathBuf,
    /// `<project>/.nitro/Cargo.toml`.
    pub manifest_path: PathBuf,
    /// One per route that has a crate, in route-file order.
    pub routes: Vec<RouteCrate>,
    /// Routes that could not be generated (e.g. no `handler`).
    pub problems: Vec<RouteProblem>,
    pub warnings: Vec<String>,
    /// Files whose content changed, relative to `.nitro/`.
    pub changed: Vec<PathBuf>,
    /// The route crates (by crate name) with a changed file: a hook added, `[dependencies]`
    /// edited. They need a build even when their route file did not change.
    pub changed_crates: BTreeSet<String>,
}

impl Generated {
    /// The crate of a route file.
    pub fn route(&self, file: &str) -> Option<&RouteCrate> {
        self.routes.iter().find(|r| r.file == file)
    }
}

/// Reads the route files, plans and writes `.nitro/`, removing what no longer belongs there.
pub fn generate(config: &ResolvedConfig, table: &RouteTable) -> Result<Generated, CodegenError> {
    if config.project_dir.to_str().is_none() {
        return Err(CodegenError::NonUtf8Project(config.project_dir.clone()));
    }
    // An unreadable file is planned as if it were fine: cargo will report the read error.
    let sources: Vec<Option<String>> = table
        .routes()
        .iter()
        .map(|r| std::fs::read_to_string(config.project_dir.join(&r.file)).ok())
        .collect();
    let inputs: Vec<RouteSource<'_>> = table
        .routes()
        .iter()
        .zip(&sources)
        .map(|(route, source)| RouteSource {
            route,
            source: source.as_deref(),
        })
        .collect();
    let plan = plan(config, &inputs);

    let dir = config.nitro_dir();
    let mut changed = Vec::new();
    for (rel, content) in &plan.files {
        if write_if_changed(&dir.join(rel), content)? {
            changed.push(rel.clone());
        }
    }
    remove_stale(&dir, &plan)?;
    let changed_crates = plan
        .routes
        .iter()
        .filter(|r| {
            let crate_dir = route_dir(&r.crate_name);
            changed.iter().any(|path| path.starts_with(&crate_dir))
        })
        .map(|r| r.crate_name.clone())
        .collect();

    Ok(Generated {
        manifest_path: dir.join("Cargo.toml"),
        dir,
        routes: plan.routes,
        problems: plan.problems,
        warnings: plan.warnings,
        changed,
        changed_crates,
    })
}

/// Writes `content` unless the file already holds exactly that. Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &str) -> Result<bool, CodegenError> {
    match std::fs::read(path) {
        Ok(existing) if existing == content.as_bytes() => return Ok(false),
        _ => {}
    }
    let err = |source| CodegenError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, content).map_err(err)?;
    Ok(true)
}

/// Removes route crates of deleted route files, and files of the embedded crates that this
/// version no longer has.
fn remove_stale(dir: &Path, plan: &Plan) -> Result<(), CodegenError> {
    let keep: BTreeSet<&str> = plan.routes.iter().map(|r| r.crate_name.as_str()).collect();
    let routes_dir = dir.join("routes");
    for entry in read_dir(&routes_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(CRATE_PREFIX) && !keep.contains(name.as_str()) {
            let path = entry.path();
            std::fs::remove_dir_all(&path)
                .map_err(|source| CodegenError::Remove { path, source })?;
        }
    }
    for krate in [embedded::ABI, embedded::NITRO] {
        let crate_dir = Path::new("crates").join(krate.dir);
        let mut stack = vec![crate_dir.join("src")];
        while let Some(rel_dir) = stack.pop() {
            for entry in read_dir(&dir.join(&rel_dir))? {
                let rel = rel_dir.join(entry.file_name());
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(rel);
                } else if !plan.files.contains_key(&rel) {
                    let path = dir.join(&rel);
                    std::fs::remove_file(&path)
                        .map_err(|source| CodegenError::Remove { path, source })?;
                }
            }
        }
    }
    Ok(())
}

fn read_dir(path: &Path) -> Result<Vec<std::fs::DirEntry>, CodegenError> {
    match std::fs::read_dir(path) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CodegenError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{Env, Overrides, resolve};
    use nitro_router::ScanOptions;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn config(project: &Path, file: Option<&str>) -> ResolvedConfig {
        resolve(
            project,
            project,
            file,
            &Env::default(),
            &Overrides::default(),
        )
        .unwrap()
    }

    #[test]
    fn definitions_lists_top_level_functions() {
        let d = definitions(
            r#"
            use nitro::Request;
            pub fn handler(req: &Request) -> String { inner(); String::new() }
            fn inner() {}
            pub(crate) fn open() {}
            pub(self) fn close() {}
            pub use helpers::message;
            pub use more::{a as error, b::{c}};
            mod helpers { pub fn message() {} pub fn nested() {} }
            impl Foo { pub fn upgrade() {} }
            struct Foo;
            "#,
        )
        .unwrap();
        assert_eq!(d.public, set(&["handler", "open", "message", "error", "c"]));
        assert_eq!(d.private, set(&["inner", "close"]));
        assert!(!d.glob);
        assert!(definitions("pub use x::*;").unwrap().glob);
    }

    #[test]
    fn async_hooks_are_exported_as_async_and_turn_tokio_on() {
        let d = definitions(
            "pub async fn open(peer: Peer) {}\npub fn close(peer: &Peer, c: &Close) {}\nasync fn helper() {}\n",
        )
        .unwrap();
        assert_eq!(d.asynchronous, set(&["open"]));
        let lib = route_lib(
            "routes/_ws.rs",
            "/p/routes/_ws.rs",
            &set(&["open", "close"]),
            &d.asynchronous,
        );
        assert!(
            lib.contains(
                "http: _, upgrade: _, open: (async open), message: _, close: close, error: _"
            ),
            "{lib}"
        );
        let deps = toml::Table::new();
        assert!(
            route_manifest("c", "routes/_ws.rs", &deps, true, false).contains(
                "nitro = { path = \"../../crates/nitro\", default-features = false, features = [\"tokio\"] }\n"
            )
        );
        assert!(
            route_manifest("c", "routes/x.rs", &deps, false, false)
                .contains("nitro = { path = \"../../crates/nitro\", default-features = false }\n")
        );

        // Through the whole plan: only the async routes get tokio, only the routes that name
        // `multipart` get multipart.
        let config = config(Path::new("/p"), None);
        let table =
            RouteTable::from_files(["a.rs", "b.rs", "c.rs", "d.rs"], &ScanOptions::default())
                .unwrap();
        let source = |file: &str| match file {
            "routes/a.rs" => {
                "pub async fn handler(req: nitro::Request) -> String { String::new() }"
            }
            "routes/b.rs" => "pub fn handler() {}",
            "routes/c.rs" => {
                "pub async fn handler(req: nitro::Request) -> nitro::Result<String> { Ok(req.multipart()?.parts().len().to_string()) }"
            }
            _ => "use nitro::multipart::Multipart;\npub fn handler() {}",
        };
        let routes: Vec<RouteSource<'_>> = table
            .routes()
            .iter()
            .map(|route| RouteSource {
                route,
                source: Some(source(&route.file)),
            })
            .collect();
        let plan = plan(&config, &routes);
        let manifest = |name: &str| {
            plan.files
                .iter()
                .find(|(path, _)| {
                    path.to_string_lossy()
                        .starts_with(&format!("routes/nitro_route_{name}_"))
                        && path.ends_with("Cargo.toml")
                })
                .map(|(_, text)| text.clone())
                .unwrap()
        };
        assert!(manifest("a").contains("default-features = false, features = [\"tokio\"]"));
        assert!(manifest("b").contains("nitro\", default-features = false }"));
        assert!(manifest("c").contains("features = [\"multipart\", \"tokio\"]"));
        assert!(manifest("d").contains("default-features = false, features = [\"multipart\"]"));
        assert!(uses_multipart("let form = req.Multipart();") && !uses_multipart("req.form()"));
    }

    #[test]
    fn middleware_export_their_handler_and_paths() {
        let d = definitions(
            "pub const PATHS: &[&str] = &[\"/api/**\"];\npub async fn handler(req: &mut nitro::Request) {}\n",
        )
        .unwrap();
        let (hooks, warnings) =
            route_hooks("middleware/1.a.rs", RouteKind::Middleware, Some(&d)).unwrap();
        assert_eq!(
            (hooks.clone(), warnings),
            (set(&["PATHS", "handler"]), vec![])
        );
        let lib = middleware_lib(
            "middleware/1.a.rs",
            "/p/middleware/1.a.rs",
            &hooks,
            &d.asynchronous,
        );
        assert!(
            lib.contains(
                "nitro::__export_middleware!(route, \"middleware/1.a.rs\", handler: (async handler), paths: PATHS);"
            ),
            "{lib}"
        );
        let sync = definitions("pub fn handler(req: &nitro::Request) {}").unwrap();
        let (hooks, _) =
            route_hooks("middleware/2.b.rs", RouteKind::Middleware, Some(&sync)).unwrap();
        let lib = middleware_lib("middleware/2.b.rs", "/p/m.rs", &hooks, &sync.asynchronous);
        assert!(lib.contains("handler: handler, paths: _);"), "{lib}");

        let none = definitions("pub fn other() {}").unwrap();
        let e = route_hooks("middleware/3.c.rs", RouteKind::Middleware, Some(&none)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "middleware file `middleware/3.c.rs` has no `pub fn handler`: add `pub async fn handler(req: &mut nitro::Request) -> nitro::Result<()>`"
        );
        let private = definitions("fn handler() {}").unwrap();
        assert!(matches!(
            route_hooks("middleware/3.c.rs", RouteKind::Middleware, Some(&private)),
            Err(RouteProblem::PrivateHandler { .. })
        ));
    }

    #[test]
    fn tasks_export_their_run() {
        let d = definitions("pub async fn run(payload: nitro::Value) {}").unwrap();
        let (hooks, _) = route_hooks("tasks/a.rs", RouteKind::Task, Some(&d)).unwrap();
        assert_eq!(hooks, set(&["run"]));
        let lib = task_lib("tasks/a.rs", "/p/tasks/a.rs", &d.asynchronous);
        assert!(
            lib.contains("nitro::__export_task!(route, \"tasks/a.rs\", run: (async run));"),
            "{lib}"
        );
        let sync = definitions("pub fn run(payload: nitro::Value) {}").unwrap();
        assert!(task_lib("tasks/b.rs", "/p/b.rs", &sync.asynchronous).contains("run: run);"));
        let none = definitions("fn run() {}").unwrap();
        assert_eq!(
            route_hooks("tasks/c.rs", RouteKind::Task, Some(&none))
                .unwrap_err()
                .to_string(),
            "task file `tasks/c.rs` has no `pub fn run`: add `pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value>`"
        );
    }

    #[test]
    fn plugins_export_their_setup_and_shutdown() {
        let d = definitions(
            "pub async fn setup() -> nitro::Result<()> { Ok(()) }\npub fn shutdown() {}\n",
        )
        .unwrap();
        let (hooks, warnings) =
            route_hooks("plugins/1.db.rs", RouteKind::Plugin, Some(&d)).unwrap();
        assert_eq!(
            (hooks.clone(), warnings),
            (set(&["setup", "shutdown"]), vec![])
        );
        let lib = plugin_lib(
            "plugins/1.db.rs",
            "/p/plugins/1.db.rs",
            &hooks,
            &d.asynchronous,
        );
        assert!(
            lib.contains(
                "nitro::__export_plugin!(route, \"plugins/1.db.rs\", setup: (async setup), shutdown: shutdown);"
            ),
            "{lib}"
        );

        let only = definitions("pub async fn shutdown() {}\nfn setup() {}\n").unwrap();
        let (hooks, warnings) =
            route_hooks("plugins/2.b.rs", RouteKind::Plugin, Some(&only)).unwrap();
        assert_eq!(
            warnings,
            [
                "`fn setup` in `plugins/2.b.rs` is not `pub`, so it is never called: write `pub async fn setup`"
            ]
        );
        let lib = plugin_lib("plugins/2.b.rs", "/p/b.rs", &hooks, &only.asynchronous);
        assert!(
            lib.contains("setup: _, shutdown: (async shutdown));"),
            "{lib}"
        );

        let none = definitions("pub fn other() {}").unwrap();
        let (hooks, warnings) =
            route_hooks("plugins/3.c.rs", RouteKind::Plugin, Some(&none)).unwrap();
        assert!(hooks.is_empty());
        assert_eq!(
            warnings,
            [
                "plugin `plugins/3.c.rs` defines neither `pub async fn setup` nor `pub async fn shutdown`: it does nothing"
            ]
        );
    }

    #[test]
    fn unparsable_source_is_none() {
        assert_eq!(definitions("pub fn handler( {"), None);
    }

    #[test]
    fn http_route_needs_a_public_handler() {
        let ok = definitions("pub fn handler() -> &'static str { \"hi\" }").unwrap();
        assert_eq!(
            route_hooks("routes/x.rs", RouteKind::Http, Some(&ok)).unwrap(),
            (set(&["handler"]), vec![])
        );

        let none = definitions("pub fn other() {}").unwrap();
        let e = route_hooks("routes/x.rs", RouteKind::Http, Some(&none)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route file `routes/x.rs` has no `pub fn handler`: add `pub fn handler(req: &nitro::Request) -> impl nitro::IntoResponse`"
        );

        let private = definitions("fn handler() {}").unwrap();
        assert_eq!(
            route_hooks("routes/x.rs", RouteKind::Http, Some(&private))
                .unwrap_err()
                .to_string(),
            "route file `routes/x.rs` defines `fn handler` without `pub`: write `pub fn handler`"
        );
    }

    #[test]
    fn http_route_with_websocket_hooks_exports_them_and_needs_no_handler() {
        let both = definitions(
            "pub fn handler() -> &'static str { \"hi\" }\npub async fn open() {}\npub fn message() {}\nfn close() {}",
        )
        .unwrap();
        let (hooks, warnings) =
            route_hooks("routes/index.rs", RouteKind::Http, Some(&both)).unwrap();
        assert_eq!(hooks, set(&["handler", "message", "open"]));
        assert!(warnings.is_empty(), "{warnings:?}");
        let lib = route_lib("routes/index.rs", "/p/routes/index.rs", &hooks, &set(&[]));
        assert!(
            lib.contains(
                "http: handler, upgrade: _, open: open, message: message, close: _, error: _"
            ),
            "{lib}"
        );

        let hooks_only = definitions("pub fn open() {}").unwrap();
        let (hooks, _) = route_hooks("routes/chat.rs", RouteKind::Http, Some(&hooks_only)).unwrap();
        assert_eq!(hooks, set(&["open"]));
        let lib = route_lib("routes/chat.rs", "/p/routes/chat.rs", &hooks, &set(&[]));
        assert!(lib.contains("http: _, upgrade: _, open: open"), "{lib}");
    }

    #[test]
    fn http_route_that_does_not_parse_assumes_a_handler() {
        assert_eq!(
            route_hooks("routes/x.rs", RouteKind::Http, None).unwrap(),
            (set(&["handler"]), vec![])
        );
        let glob = definitions("pub use other::*;").unwrap();
        assert_eq!(
            route_hooks("routes/x.rs", RouteKind::Http, Some(&glob))
                .unwrap()
                .0,
            set(&["handler"])
        );
    }

    #[test]
    fn websocket_hooks_every_combination() {
        // All 32 subsets of the five hooks.
        for mask in 0u32..32 {
            let chosen: Vec<&str> = WS_HOOKS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, h)| *h)
                .collect();
            let source: String = chosen
                .iter()
                .map(|h| format!("pub fn {h}() {{}}\n"))
                .collect();
            let d = definitions(&source).unwrap();
            let (hooks, warnings) =
                route_hooks("routes/_ws.rs", RouteKind::WebSocket, Some(&d)).unwrap();
            assert_eq!(hooks, set(&chosen), "mask {mask}");
            assert_eq!(
                warnings.len(),
                usize::from(chosen.is_empty()),
                "mask {mask}"
            );

            let lib = route_lib("routes/_ws.rs", "/p/routes/_ws.rs", &hooks, &set(&[]));
            for hook in WS_HOOKS {
                let expected = if chosen.contains(&hook) {
                    format!("{hook}: {hook}")
                } else {
                    format!("{hook}: _")
                };
                assert!(lib.contains(&expected), "{lib}");
            }
            assert!(lib.contains("http: _"));
        }
    }

    #[test]
    fn websocket_route_warnings() {
        let d = definitions("pub fn message() {}\nfn open() {}\npub fn handler() {}").unwrap();
        let (hooks, warnings) =
            route_hooks("routes/_ws.rs", RouteKind::WebSocket, Some(&d)).unwrap();
        assert_eq!(hooks, set(&["message"]));
        assert_eq!(
            warnings,
            [
                "`fn open` in `routes/_ws.rs` is not `pub`, so it is never called: write `pub fn open`",
                "`handler` in WebSocket route `routes/_ws.rs` is never called: a `_ws.rs` file answers upgrades through its hooks",
            ]
        );

        let empty = definitions("").unwrap();
        let (_, warnings) =
            route_hooks("routes/chat/_ws.rs", RouteKind::WebSocket, Some(&empty)).unwrap();
        assert_eq!(
            warnings,
            [
                "WebSocket route `routes/chat/_ws.rs` defines none of the hooks `upgrade`, `open`, `message`, `close`, `error`: connections are accepted and ignored"
            ]
        );

        // Unparsable: no hooks, no warning (rustc will speak).
        assert_eq!(
            route_hooks("routes/_ws.rs", RouteKind::WebSocket, None).unwrap(),
            (BTreeSet::new(), vec![])
        );
    }

    #[test]
    fn sanitised_names() {
        assert_eq!(sanitise("routes/index.rs"), "index");
        assert_eq!(sanitise("routes/users/[id].get.rs"), "users_id_get");
        assert_eq!(sanitise("routes/blog/[...slug].rs"), "blog_slug");
        assert_eq!(sanitise("routes/(admin)/Café.rs"), "admin_caf");
        assert_eq!(sanitise("routes/_ws.rs"), "ws");
        assert_eq!(sanitise("routes/[...].rs"), "route");
    }

    #[test]
    fn crate_names_carry_the_project_hash_and_stay_unique() {
        let names = crate_names(
            &[
                "routes/index.rs",
                "routes/a-b.rs",
                "routes/a_b.rs",
                "routes/_ws.rs",
            ],
            "0123abcd",
        );
        assert_eq!(names[0], "nitro_route_index_0123abcd");
        assert_eq!(names[3], "nitro_route_ws_0123abcd");
        assert_ne!(names[1], names[2]);
        assert!(names[1].starts_with("nitro_route_a_b_") && names[1].ends_with("_0123abcd"));
        assert_eq!(names[1].len(), "nitro_route_a_b_xxxx_0123abcd".len());
    }

    #[test]
    fn long_file_names_get_short_unique_crate_names() {
        let long = format!("routes/{}.rs", "a".repeat(240));
        let longer = format!("routes/{}b.rs", "a".repeat(240));
        let names = crate_names(&[&long, &longer], "0123abcd");
        for name in &names {
            assert!(name.len() <= 100, "{name} ({} bytes)", name.len());
        }
        assert_ne!(names[0], names[1]);
    }

    #[test]
    fn a_line_break_in_a_file_name_adds_no_toml() {
        let file = "routes/x\n[dependencies]\nevil = { path = \"/tmp\" }\n#.rs";
        let text = route_manifest(
            "nitro_route_x_0123abcd",
            file,
            &toml::Table::new(),
            false,
            false,
        );
        let manifest: toml::Table = toml::from_str(&text).expect("valid TOML");
        let dependencies = manifest["dependencies"].as_table().unwrap();
        assert_eq!(dependencies.keys().collect::<Vec<_>>(), ["nitro"]);
        assert_eq!(
            manifest["package"]["name"].as_str(),
            Some("nitro_route_x_0123abcd")
        );
    }

    #[test]
    fn project_hash_is_stable_and_distinct() {
        // Pinned: a change would orphan every existing build cache.
        assert_eq!(
            project_hash(Path::new("/home/ada/app")),
            project_hash(Path::new("/home/ada/app"))
        );
        assert_eq!(project_hash(Path::new("/home/ada/app")).len(), 8);
        assert_ne!(
            project_hash(Path::new("/home/ada/app")),
            project_hash(Path::new("/home/ada/app2"))
        );
        assert_eq!(project_hash(Path::new("")), "4fd0bfc1");
        assert_eq!(project_hash(Path::new("/home/ada/app")), "46665e97");
    }

    #[test]
    fn route_lib_text() {
        assert_eq!(
            route_lib(
                "routes/users/[id].rs",
                "/home/ada/app/routes/users/[id].rs",
                &set(&["handler"]),
                &set(&[])
            ),
            "// @generated by nitro from routes/users/[id].rs; do not edit.\n\
             #[path = \"/home/ada/app/routes/users/[id].rs\"]\n\
             mod route;\n\
             nitro::__export_route!(route, \"routes/users/[id].rs\", http: handler, upgrade: _, open: _, message: _, close: _, error: _);\n"
        );
        assert_eq!(
            route_lib(
                "routes/_ws.rs",
                "C:\\p\\\"q\"\\routes\\_ws.rs",
                &set(&["open", "close"]),
                &set(&[])
            ),
            "// @generated by nitro from routes/_ws.rs; do not edit.\n\
             #[path = \"C:\\\\p\\\\\\\"q\\\"\\\\routes\\\\_ws.rs\"]\n\
             mod route;\n\
             nitro::__export_route!(route, \"routes/_ws.rs\", http: _, upgrade: _, open: open, message: _, close: close, error: _);\n"
        );
    }

    #[test]
    fn route_manifest_text() {
        let deps: toml::Table = toml::from_str(
            r#"
            serde_json = "1"
            rand = { version = "0.9", features = ["small_rng"] }
            "we.ird" = { path = "/abs/weird" }
            "#,
        )
        .unwrap();
        let text = route_manifest(
            "nitro_route_index_0123abcd",
            "routes/index.rs",
            &deps,
            false,
            false,
        );
        assert_eq!(
            text,
            "# @generated by nitro from routes/index.rs; do not edit.\n\
             [package]\n\
             name = \"nitro_route_index_0123abcd\"\n\
             version = \"0.0.0\"\n\
             edition = \"2024\"\n\
             publish = false\n\
             \n\
             [lib]\n\
             path = \"src/lib.rs\"\n\
             crate-type = [\"cdylib\"]\n\
             \n\
             [dependencies]\n\
             nitro = { path = \"../../crates/nitro\", default-features = false }\n\
             rand = { features = [\"small_rng\"], version = \"0.9\" }\n\
             serde_json = \"1\"\n\
             \"we.ird\" = { path = \"/abs/weird\" }\n"
        );
        // And it is valid TOML with the same dependencies.
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let got = parsed["dependencies"].as_table().unwrap();
        assert_eq!(got["rand"], deps["rand"]);
        assert_eq!(got["we.ird"], deps["we.ird"]);
    }

    #[test]
    fn workspace_manifest_text() {
        let text = workspace_manifest(&["nitro_route_a_1".into(), "nitro_route_b_1".into()]);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["workspace"]["resolver"].as_str(), Some("3"));
        assert_eq!(
            parsed["workspace"]["members"].as_array().unwrap(),
            &vec![
                toml::Value::from("routes/nitro_route_a_1"),
                toml::Value::from("routes/nitro_route_a_1/ide"),
                toml::Value::from("routes/nitro_route_b_1"),
                toml::Value::from("routes/nitro_route_b_1/ide")
            ]
        );
        let dev = &parsed["profile"]["dev"];
        assert_eq!(dev["debug"].as_str(), Some("line-tables-only"));
        assert_eq!(dev["incremental"].as_bool(), Some(true));
        assert_eq!(dev["panic"].as_str(), Some("unwind"));
        assert_eq!(
            parsed["profile"]["dev"]["package"]["*"]["debug"].as_bool(),
            Some(false)
        );
        assert_eq!(
            parsed["profile"]["release"]["panic"].as_str(),
            Some("unwind")
        );
    }

    #[test]
    fn plan_of_a_project() {
        let project = Path::new("/home/ada/app");
        let c = config(project, Some("[dependencies]\nserde = \"1\"\n"));
        let table =
            RouteTable::from_files(["index.rs", "_ws.rs", "broken.rs"], &ScanOptions::default())
                .unwrap();
        let by_file = |f: &str| table.routes().iter().find(|r| r.file == f).unwrap();
        let inputs = [
            RouteSource {
                route: by_file("routes/index.rs"),
                source: Some("pub fn handler() {}"),
            },
            RouteSource {
                route: by_file("routes/_ws.rs"),
                source: Some("pub fn open() {}"),
            },
            RouteSource {
                route: by_file("routes/broken.rs"),
                source: Some("fn other() {}"),
            },
        ];
        let plan = plan(&c, &inputs);
        let hash = project_hash(project);
        let index = format!("nitro_route_index_{hash}");
        let ws = format!("nitro_route_ws_{hash}");

        assert_eq!(
            plan.problems,
            [RouteProblem::MissingHandler {
                file: "routes/broken.rs".into()
            }]
        );
        let names: Vec<_> = plan.routes.iter().map(|r| r.crate_name.clone()).collect();
        assert_eq!(names, [index.clone(), ws.clone()]);
        let files: BTreeSet<String> = plan
            .files
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut expected = vec![
            ".gitignore".to_owned(),
            "Cargo.toml".to_owned(),
            "crates/nitro-abi/Cargo.toml".to_owned(),
            "crates/nitro-abi/src/lib.rs".to_owned(),
            "crates/nitro/Cargo.toml".to_owned(),
        ];
        for (path, _) in embedded::NITRO.sources {
            expected.push(format!("crates/nitro/{path}"));
        }
        for n in [&index, &ws] {
            expected.push(format!("routes/{n}/Cargo.toml"));
            expected.push(format!("routes/{n}/ide/Cargo.toml"));
            expected.push(format!("routes/{n}/src/lib.rs"));
        }
        assert_eq!(files, expected.into_iter().collect());
        assert_eq!(plan.files[Path::new(".gitignore")], "*\n");
        assert!(plan.files[Path::new("Cargo.toml")].contains(&format!("\"routes/{ws}\"")));
        assert!(!plan.files[Path::new("Cargo.toml")].contains("broken"));
        let lib = &plan.files[&PathBuf::from(format!("routes/{index}/src/lib.rs"))];
        assert!(
            lib.contains("#[path = \"/home/ada/app/routes/index.rs\"]"),
            "{lib}"
        );
        let manifest = &plan.files[&PathBuf::from(format!("routes/{ws}/Cargo.toml"))];
        assert!(manifest.ends_with("serde = \"1\"\n"), "{manifest}");
    }

    #[test]
    fn generate_writes_only_changes_and_removes_stale_crates() {
        let tmp = tempfile::tempdir().unwrap();
        let project = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(project.join("routes")).unwrap();
        std::fs::write(project.join("routes/index.rs"), "pub fn handler() {}").unwrap();
        std::fs::write(project.join("routes/gone.rs"), "pub fn handler() {}").unwrap();
        let c = config(&project, None);
        let scan = |c: &ResolvedConfig| {
            nitro_router::scan(&c.project_dir, &ScanOptions::default()).unwrap()
        };

        let first = generate(&c, &scan(&c)).unwrap();
        assert_eq!(first.routes.len(), 2);
        assert!(first.changed.len() >= 10);
        assert_eq!(first.manifest_path, project.join(".nitro/Cargo.toml"));
        let gone = first.route("routes/gone.rs").unwrap().crate_name.clone();
        assert!(project.join(".nitro/routes").join(&gone).is_dir());
        let lib = project
            .join(".nitro/routes")
            .join(&first.route("routes/index.rs").unwrap().crate_name)
            .join("src/lib.rs");
        let mtime = std::fs::metadata(&lib).unwrap().modified().unwrap();

        // Nothing changed: nothing written.
        let second = generate(&c, &scan(&c)).unwrap();
        assert!(second.changed.is_empty(), "{:?}", second.changed);
        assert!(second.changed_crates.is_empty());
        assert_eq!(std::fs::metadata(&lib).unwrap().modified().unwrap(), mtime);

        // A hook appears in a route: only its lib.rs changes. A file goes: its crate goes.
        std::fs::remove_file(project.join("routes/gone.rs")).unwrap();
        std::fs::write(project.join("routes/_ws.rs"), "pub fn open() {}").unwrap();
        std::fs::write(project.join(".nitro/crates/nitro/src/old.rs"), "").unwrap();
        let third = generate(&c, &scan(&c)).unwrap();
        assert!(!project.join(".nitro/routes").join(&gone).exists());
        assert!(!project.join(".nitro/crates/nitro/src/old.rs").exists());
        assert!(third.changed.contains(&PathBuf::from("Cargo.toml")));
        assert!(!third.changed.iter().any(|p| p.starts_with("crates")));
        std::fs::write(
            project.join("routes/_ws.rs"),
            "pub fn open() {}\npub fn close() {}",
        )
        .unwrap();
        let fourth = generate(&c, &scan(&c)).unwrap();
        let ws = fourth.route("routes/_ws.rs").unwrap();
        assert_eq!(
            fourth.changed,
            [PathBuf::from("routes")
                .join(&ws.crate_name)
                .join("src/lib.rs")]
        );
        // The crates that changed, by name: the dev loop rebuilds them.
        assert_eq!(
            fourth.changed_crates,
            BTreeSet::from([ws.crate_name.clone()])
        );
    }
}
