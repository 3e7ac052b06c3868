//! Runs cargo on the generated workspace and reads its JSON messages.
//!
//! One `cargo build -p <route>… --keep-going --message-format=json-diagnostic-rendered-ansi`
//! builds any subset of the routes (all of them at startup, the changed ones on reload), so a
//! broken route never keeps another from building. stdout carries one JSON message per line
//! (parsed with `cargo_metadata`); stderr carries cargo's own status lines, used for progress
//! and for errors that happen before any JSON (a crate name in `[dependencies]` that does not
//! exist). Diagnostics name the user's files as the user knows them (`routes/x.rs:3:5`), never
//! the generated crate's path.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cargo_metadata::Message;
use cargo_metadata::diagnostic::DiagnosticLevel;

use crate::project::codegen::{CRATE_PREFIX, RouteCrate};

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct BuildRequest<'a> {
    /// `.nitro/Cargo.toml`.
    pub manifest_path: &'a Path,
    pub target_dir: &'a Path,
    /// The canonical project folder, stripped from paths in diagnostics.
    pub project_dir: &'a Path,
    /// `nitro.toml` as the user names it, for errors about `[dependencies]`.
    pub config_file: &'a Path,
    /// The routes to build: all at startup, a subset on reload.
    pub routes: &'a [RouteCrate],
    /// `--release` (for `nitro build`).
    pub release: bool,
}

/// A built route library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The uplifted library (`<target>/debug/lib<crate>.so`), as cargo reported it.
    pub path: PathBuf,
    /// Cargo did not rebuild it: nothing to reload.
    pub fresh: bool,
}

/// rustc's rendered diagnostics for one route, paths already rewritten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// With ANSI colours, as rustc renders them for a terminal.
    pub rendered: String,
    pub errors: usize,
    pub warnings: usize,
}

impl Diagnostics {
    /// The same text without ANSI escapes (for logs, files, HTTP error pages).
    pub fn plain(&self) -> String {
        strip_ansi(&self.rendered)
    }

    pub fn is_empty(&self) -> bool {
        self.rendered.is_empty()
    }

    fn push(&mut self, rendered: &str, level: &DiagnosticLevel) {
        match level {
            DiagnosticLevel::Error | DiagnosticLevel::Ice => self.errors += 1,
            DiagnosticLevel::Warning => self.warnings += 1,
            _ => {}
        }
        self.rendered.push_str(rendered);
        if !rendered.ends_with('\n') {
            self.rendered.push('\n');
        }
    }
}

/// The outcome of one cargo run.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// Route file → its library, for every route that built.
    pub artifacts: HashMap<String, Artifact>,
    /// Route file → why it did not build.
    pub failed: HashMap<String, Diagnostics>,
    /// Route file → warnings of a route that did build.
    pub warnings: HashMap<String, Diagnostics>,
    /// Errors in crates other than routes (a dependency).
    pub other: Diagnostics,
    /// Cargo's `build-finished.success`.
    pub success: bool,
    pub duration: Duration,
}

/// Cargo could not be run, or failed before building anything.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run `{}`", .program.to_string_lossy())]
    Spawn {
        program: OsString,
        #[source]
        source: io::Error,
    },
    #[error("cargo could not resolve `[dependencies]` of `{}`:\n{detail}", .config_file.display())]
    Dependencies {
        config_file: PathBuf,
        detail: String,
    },
    #[error("cargo failed ({status}):\n{detail}")]
    Cargo { status: String, detail: String },
    #[error("cannot read cargo's output")]
    Read(#[source] io::Error),
}

impl BuildError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => Some(
                "nitro compiles routes with cargo: install Rust from https://rustup.rs (or set `CARGO` to cargo's path)".into(),
            ),
            BuildError::Spawn { .. } | BuildError::Read(_) => None,
            BuildError::Dependencies { .. } => Some(
                "check the crate names and versions under `[dependencies]` (the syntax is Cargo.toml's)".into(),
            ),
            BuildError::Cargo { .. } => Some(
                "if `.nitro/` was edited or is stale, delete it; nitro regenerates it".into(),
            ),
        }
    }
}

/// Progress of a build, reported from cargo's messages.
pub trait Progress: Sync {
    /// A status line of cargo's (`Updating crates.io index`, `Downloaded 3 crates`).
    fn status(&self, line: &str);
    /// A crate that is not a route finished compiling.
    fn compiled(&self, crate_name: &str);
    /// The build is over: clear whatever is on screen.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn status(&self, _: &str) {}
    fn compiled(&self, _: &str) {}
    fn finish(&self) {}
}

/// A counter of compiled dependencies on stderr: one line rewritten in place on a terminal,
/// else a line every [`TerminalProgress::EVERY`] crates.
#[derive(Debug)]
pub struct TerminalProgress {
    tty: bool,
    state: Mutex<(usize, bool)>,
}

impl TerminalProgress {
    /// Lines are printed every this many crates when stderr is not a terminal.
    pub const EVERY: usize = 25;

    pub fn new() -> TerminalProgress {
        TerminalProgress {
            tty: io::stderr().is_terminal(),
            state: Mutex::new((0, false)),
        }
    }

    fn draw(&self, text: &str) {
        let mut err = io::stderr().lock();
        let width = 100;
        let text: String = text.chars().take(width).collect();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        TerminalProgress::new()
    }
}

impl Progress for TerminalProgress {
    fn status(&self, line: &str) {
        let line = line.trim();
        let interesting = ["Updating", "Downloading", "Downloaded", "Locking", "Adding"]
            .iter()
            .any(|w| line.starts_with(w));
        if !interesting {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty {
            state.1 = true;
            self.draw(&format!("  {line}"));
        } else if line.starts_with("Updating") || line.starts_with("Downloaded") {
            eprintln!("  {line}");
        }
    }

    fn compiled(&self, crate_name: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        let n = state.0;
        if self.tty {
            state.1 = true;
            self.draw(&format!(
                "  compiling dependencies: {n} done ({crate_name})"
            ));
        } else if n.is_multiple_of(Self::EVERY) {
            eprintln!("  compiling dependencies: {n} done");
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1 {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        *state = (0, false);
    }
}

/// The cargo program: `$CARGO` when set (nitro run by cargo), else `cargo` on `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// The arguments of the cargo command for `request`.
pub fn cargo_args(request: &BuildRequest<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--manifest-path".into(),
        request.manifest_path.into(),
        "--target-dir".into(),
        request.target_dir.into(),
        "--message-format=json-diagnostic-rendered-ansi".into(),
        "--keep-going".into(),
    ];
    if request.release {
        args.push("--release".into());
    }
    for route in request.routes {
        args.push("-p".into());
        args.push(route.crate_name.clone().into());
    }
    args
}

/// Builds the requested routes. Blocks until cargo exits; a compile error is not an `Err`
/// but a route in [`BuildReport::failed`].
pub fn build(
    request: &BuildRequest<'_>,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    if request.routes.is_empty() {
        return Ok(BuildReport {
            success: true,
            ..BuildReport::default()
        });
    }
    let program = cargo_program();
    let mut child = Command::new(&program)
        .args(cargo_args(request))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn {
            program: program.clone(),
            source,
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");

    let (parsed, stderr_text) = std::thread::scope(|scope| {
        let errors = scope.spawn(|| {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                progress.status(&line);
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let parsed = parse_messages(BufReader::new(stdout), request, progress);
        (parsed, errors.join().unwrap_or_default())
    });
    progress.finish();
    let status = child.wait().map_err(BuildError::Read)?;
    let mut parsed = parsed.map_err(BuildError::Read)?;

    if parsed.finished.is_none() && !status.success() {
        return Err(classify_failure(
            &stderr_text,
            &status.to_string(),
            request.config_file,
        ));
    }
    parsed.report.success = parsed.finished.unwrap_or(status.success());
    finish_report(&mut parsed.report, request.routes, &stderr_text);
    parsed.report.duration = started.elapsed();
    Ok(parsed.report)
}

/// The result of reading cargo's stdout.
#[derive(Debug, Default)]
pub struct Parsed {
    pub report: BuildReport,
    /// `build-finished.success`, if cargo got that far.
    pub finished: Option<bool>,
}

/// Reads cargo's JSON messages, attributing artifacts and diagnostics to route files.
pub fn parse_messages(
    reader: impl BufRead,
    request: &BuildRequest<'_>,
    progress: &dyn Progress,
) -> io::Result<Parsed> {
    let by_crate: HashMap<&str, &str> = request
        .routes
        .iter()
        .map(|r| (r.crate_name.as_str(), r.file.as_str()))
        .collect();
    let mut parsed = Parsed::default();
    let mut route_diagnostics: HashMap<String, Diagnostics> = HashMap::new();
    for message in Message::parse_stream(reader) {
        match message? {
            Message::CompilerArtifact(artifact) => {
                let route = by_crate.get(artifact.target.name.as_str());
                match route {
                    Some(file) if artifact.target.is_cdylib() => {
                        if let Some(path) = artifact.filenames.first() {
                            parsed.report.artifacts.insert(
                                (*file).to_owned(),
                                Artifact {
                                    path: path.clone().into_std_path_buf(),
                                    fresh: artifact.fresh,
                                },
                            );
                        }
                    }
                    Some(_) => {}
                    None if !artifact.fresh => progress.compiled(&artifact.target.name),
                    None => {}
                }
            }
            Message::CompilerMessage(msg) => {
                let Some(rendered) = &msg.message.rendered else {
                    continue;
                };
                let mut rendered = rewrite_paths(rendered, request.project_dir);
                if let Some(file) = by_crate.get(msg.target.name.as_str())
                    && let Ok(source) = std::fs::read_to_string(request.project_dir.join(file))
                {
                    rendered = point_at_route_file(&rendered, &msg.message.message, file, &source);
                }
                match by_crate.get(msg.target.name.as_str()) {
                    Some(file) => route_diagnostics
                        .entry((*file).to_owned())
                        .or_default()
                        .push(&rendered, &msg.message.level),
                    // Only errors of other crates: warnings in dependencies are not the user's
                    // business while serving.
                    None if matches!(
                        msg.message.level,
                        DiagnosticLevel::Error | DiagnosticLevel::Ice
                    ) =>
                    {
                        parsed.report.other.push(&rendered, &msg.message.level);
                    }
                    None => {}
                }
            }
            Message::BuildFinished(finished) => parsed.finished = Some(finished.success),
            _ => {}
        }
    }
    for (file, diagnostics) in route_diagnostics {
        if parsed.report.artifacts.contains_key(&file) {
            if diagnostics.warnings > 0 {
                parsed.report.warnings.insert(file, diagnostics);
            }
        } else {
            parsed.report.failed.insert(file, diagnostics);
        }
    }
    Ok(parsed)
}

/// Every requested route without an artifact is failed, with a reason even when rustc gave
/// none of its own (a dependency failed to compile).
fn finish_report(report: &mut BuildReport, routes: &[RouteCrate], stderr: &str) {
    for route in routes {
        if report.artifacts.contains_key(&route.file) {
            continue;
        }
        let entry = report.failed.entry(route.file.clone()).or_default();
        if entry.errors > 0 {
            continue;
        }
        if !report.other.is_empty() {
            entry.rendered.push_str(&report.other.rendered);
            entry.errors += report.other.errors;
        } else {
            let said: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("error") && !l.contains(CRATE_PREFIX))
                .collect();
            entry
                .rendered
                .push_str("error: cargo did not build this route");
            if said.is_empty() {
                entry.rendered.push('\n');
            } else {
                entry.rendered.push_str(":\n");
                for line in said {
                    entry.rendered.push_str(line);
                    entry.rendered.push('\n');
                }
            }
            entry.errors += 1;
        }
    }
}

/// An error from cargo before any build message: about `[dependencies]`, or anything else.
pub fn classify_failure(stderr: &str, status: &str, config_file: &Path) -> BuildError {
    // Keep cargo's own error paragraph, drop its status lines and the lines naming the
    // generated crate that required a dependency (the user never wrote that crate).
    let detail: Vec<String> = stderr
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("error"))
        .filter(|l| {
            !l.trim_start()
                .starts_with("required by package `nitro_route_")
        })
        .map(|l| format!("  {}", l.strip_prefix("error: ").unwrap_or(l)))
        .collect();
    let detail = if detail.is_empty() {
        stderr.trim_end().to_owned()
    } else {
        detail.join("\n")
    };
    const ABOUT_DEPENDENCIES: [&str; 6] = [
        "no matching package named",
        "failed to select a version",
        "failed to load source for dependency",
        "failed to get `",
        "failed to read `",
        "invalid type: ",
    ];
    if ABOUT_DEPENDENCIES.iter().any(|s| detail.contains(s)) {
        BuildError::Dependencies {
            config_file: config_file.to_owned(),
            detail,
        }
    } else {
        BuildError::Cargo {
            status: status.to_owned(),
            detail,
        }
    }
}

/// Makes paths in rendered diagnostics name the user's files: `<project>/routes/x.rs` becomes
/// `routes/x.rs`, and a generated crate's path (which rustc writes relative to `.nitro/`)
/// becomes `.nitro/routes/<crate>/…`, a path that exists from the project folder.
pub fn rewrite_paths(text: &str, project_dir: &Path) -> String {
    let mut prefix = project_dir.to_string_lossy().into_owned();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let mut text = text.replace(&prefix, "");
    for needle in [
        format!("routes/{CRATE_PREFIX}"),
        "crates/nitro/".to_owned(),
        "crates/nitro-abi/".to_owned(),
    ] {
        text = prefix_nitro_dir(&text, &needle);
    }
    text
}

/// An error rustc reports at the generated crate's `lib.rs` (the export macro: a handler or
/// hook with the wrong signature or return type) is about a function of the route file:
/// point its location at that function's line in the user's file instead
/// (`--> routes/x.rs:3:8`), which is what an editor or a terminal can jump to.
pub fn point_at_route_file(rendered: &str, message: &str, file: &str, source: &str) -> String {
    let generated = format!(".nitro/routes/{CRATE_PREFIX}");
    let Some(start) = rendered.find(&generated) else {
        return rendered.to_owned();
    };
    let after = &rendered[start..];
    let Some(lib) = after.find("/src/lib.rs:") else {
        return rendered.to_owned();
    };
    let digits_end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let numbers = &after[lib + "/src/lib.rs:".len()..];
    let line_len = digits_end(numbers);
    let mut end = lib + "/src/lib.rs:".len() + line_len;
    if after[end..].starts_with(':') {
        end += 1 + digits_end(&after[end + 1..]);
    }
    // Which function: the hook a message names in backticks, else the HTTP handler.
    let hook = ["upgrade", "open", "message", "close", "error"]
        .into_iter()
        .find(|h| message.contains(&format!("`{h}`")))
        .unwrap_or("handler");
    let needle = format!("fn {hook}");
    let Some((line, column)) = source.lines().enumerate().find_map(|(i, text)| {
        let at = text.find(&needle)?;
        let rest = &text[at + needle.len()..];
        rest.starts_with(|c: char| c == '(' || c == '<' || c.is_whitespace())
            .then_some((i + 1, at + 4))
    }) else {
        return rendered.to_owned();
    };
    format!(
        "{}{file}:{line}:{column}{}",
        &rendered[..start],
        &rendered[start + end..]
    )
}

/// Puts `.nitro/` before each `needle` that lacks it.
fn prefix_nitro_dir(text: &str, needle: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(needle) {
        out.push_str(&rest[..i]);
        if !out.ends_with(".nitro/") {
            out.push_str(".nitro/");
        }
        out.push_str(needle);
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// Removes ANSI escape sequences (CSI such as colours, OSC such as hyperlinks).
pub fn strip_ansi(text: &str) -> String {
    crate::devloop::ansi::strip(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nitro_router::RouteKind;
    use std::collections::BTreeSet;

    /// Captured from cargo 1.95 building two route crates of a project at
    /// `/home/ada/nitro-fixture`: `broken.rs` has a type error and an unused import, `ok.rs` an
    /// unused variable.
    const FIXTURE: &str = include_str!("../../tests/fixtures/cargo-build-broken.jsonl");
    const PROJECT: &str = "/home/ada/nitro-fixture";

    fn routes() -> Vec<RouteCrate> {
        ["broken", "ok"]
            .iter()
            .map(|n| RouteCrate {
                file: format!("routes/{n}.rs"),
                crate_name: format!("nitro_route_{n}_0badc0de"),
                kind: RouteKind::Http,
                hooks: BTreeSet::from(["handler".to_owned()]),
            })
            .collect()
    }

    fn request(routes: &[RouteCrate]) -> BuildRequest<'_> {
        BuildRequest {
            manifest_path: Path::new("/home/ada/nitro-fixture/.nitro/Cargo.toml"),
            target_dir: Path::new("/home/ada/nitro-fixture/target"),
            project_dir: Path::new(PROJECT),
            config_file: Path::new("nitro.toml"),
            routes,
            release: false,
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Progress for Recorder {
        fn status(&self, line: &str) {
            self.0.lock().unwrap().push(format!("status {line}"));
        }
        fn compiled(&self, name: &str) {
            self.0.lock().unwrap().push(format!("compiled {name}"));
        }
        fn finish(&self) {}
    }

    #[test]
    fn parses_a_recorded_build() {
        let routes = routes();
        let parsed = parse_messages(FIXTURE.as_bytes(), &request(&routes), &Silent).unwrap();
        let report = parsed.report;
        assert_eq!(parsed.finished, Some(false));

        assert_eq!(report.artifacts.len(), 1);
        assert_eq!(
            report.artifacts["routes/ok.rs"],
            Artifact {
                path: "/home/ada/nitro-fixture/target/debug/libnitro_route_ok_0badc0de.so".into(),
                fresh: false
            }
        );

        let broken = &report.failed["routes/broken.rs"];
        assert_eq!((broken.errors, broken.warnings), (1, 1));
        let plain = broken.plain();
        assert!(
            plain.contains("error[E0308]: mismatched types\n --> routes/broken.rs:4:18\n"),
            "{plain}"
        );
        assert!(
            plain.contains(
                "warning: unused import: `std::collections::HashMap`\n --> routes/broken.rs:1:5"
            ),
            "{plain}"
        );
        assert!(plain.contains("rustc --explain E0308"));
        assert!(!plain.contains(PROJECT), "{plain}");
        assert!(!plain.contains('\x1b'));
        assert!(broken.rendered.contains("\x1b[1m\x1b[91merror[E0308]"));

        let ok = &report.warnings["routes/ok.rs"];
        assert_eq!((ok.errors, ok.warnings), (0, 1));
        assert!(ok.plain().contains("--> routes/ok.rs:2:9"));
        assert!(report.other.is_empty());
    }

    #[test]
    fn only_requested_routes_are_attributed() {
        let routes = routes();
        let only_ok = &routes[1..];
        let parsed = parse_messages(FIXTURE.as_bytes(), &request(only_ok), &Silent).unwrap();
        assert!(parsed.report.failed.is_empty());
        assert_eq!(parsed.report.artifacts.len(), 1);
    }

    #[test]
    fn dependency_artifacts_drive_progress() {
        let lines = [
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.0","manifest_path":"/x/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"serde","src_path":"/x/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":0,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/t/libserde.rlib"],"executable":null,"fresh":false}"#,
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.0","manifest_path":"/x/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"itoa","src_path":"/x/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":0,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/t/libitoa.rlib"],"executable":null,"fresh":true}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        let recorder = Recorder::default();
        let routes = routes();
        let parsed = parse_messages(lines.as_bytes(), &request(&routes), &recorder).unwrap();
        assert_eq!(parsed.finished, Some(true));
        assert_eq!(*recorder.0.lock().unwrap(), ["compiled serde"]);
    }

    #[test]
    fn routes_without_an_artifact_always_get_a_reason() {
        let routes = routes();
        let mut report = BuildReport::default();
        finish_report(
            &mut report,
            &routes,
            "   Compiling foo v0.1.0\nerror: could not compile `foo` (lib) due to 2 previous errors\nerror: could not compile `nitro_route_ok_0badc0de`\n",
        );
        let plain = report.failed["routes/ok.rs"].plain();
        assert_eq!(
            plain,
            "error: cargo did not build this route:\nerror: could not compile `foo` (lib) due to 2 previous errors\n"
        );

        let mut report = BuildReport::default();
        report
            .other
            .push("error: in a dependency\n", &DiagnosticLevel::Error);
        finish_report(&mut report, &routes, "");
        assert_eq!(
            report.failed["routes/broken.rs"].rendered,
            "error: in a dependency\n"
        );
        assert_eq!(report.failed["routes/broken.rs"].errors, 1);
    }

    #[test]
    fn command_line() {
        let routes = routes();
        let mut req = request(&routes);
        let args: Vec<String> = cargo_args(&req)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "build",
                "--manifest-path",
                "/home/ada/nitro-fixture/.nitro/Cargo.toml",
                "--target-dir",
                "/home/ada/nitro-fixture/target",
                "--message-format=json-diagnostic-rendered-ansi",
                "--keep-going",
                "-p",
                "nitro_route_broken_0badc0de",
                "-p",
                "nitro_route_ok_0badc0de"
            ]
        );
        req.release = true;
        assert!(cargo_args(&req).contains(&"--release".into()));
    }

    #[test]
    fn nothing_to_build_runs_no_cargo() {
        let report = build(&request(&[]), &Silent).unwrap();
        assert!(report.success && report.artifacts.is_empty());
    }

    #[test]
    fn rewrites_project_and_generated_paths() {
        let project = Path::new("/home/ada/app");
        assert_eq!(
            rewrite_paths(
                " \x1b[1m--> \x1b[0m/home/ada/app/routes/users/[id].rs:3:5\n",
                project
            ),
            " \x1b[1m--> \x1b[0mroutes/users/[id].rs:3:5\n"
        );
        assert_eq!(
            rewrite_paths("--> routes/nitro_route_ws_0123abcd/src/lib.rs:3:1", project),
            "--> .nitro/routes/nitro_route_ws_0123abcd/src/lib.rs:3:1"
        );
        assert_eq!(
            rewrite_paths(
                "--> /home/ada/app/.nitro/routes/nitro_route_ws_0123abcd/src/lib.rs:3:1",
                project
            ),
            "--> .nitro/routes/nitro_route_ws_0123abcd/src/lib.rs:3:1"
        );
        assert_eq!(
            rewrite_paths(
                "--> crates/nitro/src/ffi.rs:418:23 and crates/nitro-abi/src/lib.rs",
                project
            ),
            "--> .nitro/crates/nitro/src/ffi.rs:418:23 and .nitro/crates/nitro-abi/src/lib.rs"
        );
        // Another project whose path merely starts the same is left alone.
        assert_eq!(
            rewrite_paths("/home/ada/app2/routes/x.rs", project),
            "/home/ada/app2/routes/x.rs"
        );
        // A trailing slash on the project dir changes nothing.
        assert_eq!(
            rewrite_paths("/home/ada/app/routes/x.rs", Path::new("/home/ada/app/")),
            "routes/x.rs"
        );
    }

    #[test]
    fn signature_errors_point_at_the_route_file() {
        let rendered = "error[E0277]: `handler` in this route file has the wrong signature\n \
                        --> .nitro/routes/nitro_route_x_0123abcd/src/lib.rs:4:1\n  |\n";
        let source =
            "use nitro::Request;\n\npub fn handler(req: &Request) -> Result<String, String> {\n";
        let out = point_at_route_file(
            rendered,
            "`handler` in this route file has the wrong signature",
            "routes/x.rs",
            source,
        );
        assert_eq!(
            out,
            "error[E0277]: `handler` in this route file has the wrong signature\n --> routes/x.rs:3:8\n  |\n"
        );
        // A hook's message names the hook; other diagnostics are left alone.
        let ws = "error: x\n --> .nitro/routes/nitro_route_ws_0123abcd/src/lib.rs:3:1\n";
        let out = point_at_route_file(
            ws,
            "`u8` cannot be returned from a WebSocket `upgrade` hook",
            "routes/_ws.rs",
            "pub fn open() {}\npub fn upgrade(r: &nitro::Request) -> u8 { 1 }\n",
        );
        assert_eq!(out, "error: x\n --> routes/_ws.rs:2:8\n");
        let other = "error: y\n --> routes/x.rs:1:1\n";
        assert_eq!(
            point_at_route_file(other, "y", "routes/x.rs", source),
            other
        );
    }

    #[test]
    fn strips_ansi() {
        assert_eq!(
            strip_ansi("\x1b[1m\x1b[91merror[E0308]\x1b[0m\x1b[1m: mismatched\x1b[0m"),
            "error[E0308]: mismatched"
        );
        assert_eq!(
            strip_ansi("a\x1b]8;;https://x\x1b\\link\x1b]8;;\x07b"),
            "alinkb"
        );
        assert_eq!(strip_ansi("plain ✔ text"), "plain ✔ text");
    }

    #[test]
    fn bad_dependency_names_nitro_toml() {
        let stderr = "    Updating crates.io index\nerror: no matching package named `serde_jsno_zz` found\nlocation searched: crates.io index\nrequired by package `nitro_route_ok_0badc0de v0.0.0 (/home/ada/nf2/routes/nitro_route_ok_0badc0de)`\n";
        let e = classify_failure(
            stderr,
            "exit status: 101",
            Path::new("examples/x/nitro.toml"),
        );
        assert!(matches!(e, BuildError::Dependencies { .. }));
        let text = e.to_string();
        assert!(
            text.starts_with("cargo could not resolve `[dependencies]` of `examples/x/nitro.toml`:\n  no matching package named `serde_jsno_zz` found\n  location searched: crates.io index"),
            "{text}"
        );
        assert!(!text.contains("Updating"));
        assert!(!text.contains("nitro_route_"), "{text}");
        assert!(e.hint().unwrap().contains("[dependencies]"));

        let other = classify_failure(
            "error: something else\n",
            "exit status: 101",
            Path::new("nitro.toml"),
        );
        assert!(matches!(other, BuildError::Cargo { .. }));
    }

    #[test]
    fn missing_cargo_has_a_hint() {
        let e = BuildError::Spawn {
            program: "cargo".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(e.to_string(), "cannot run `cargo`");
        assert!(e.hint().unwrap().contains("rustup"));
    }
}
