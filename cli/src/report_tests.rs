//! What `nitro` prints for each kind of error ([`crate::report`]), as snapshots, and a check
//! that the hint of every error type reaches the user.
//!
//! Errors are produced by the real code where that is cheap (a bad `nitro.toml`, a bad route
//! name, a folder that is not an output, …), else built by hand. Temporary folders are
//! replaced by `[TMP]` in the snapshots.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::commands::build::BuildFailed;
use crate::commands::init::{InitError, Template};
use crate::commands::start::{StartArgs, StartEnv, StartError, resolve_addr};
use crate::output::manifest::OutputError;
use crate::pipeline::{self, PipelineError};
use crate::project::cargo_build::BuildError;
use crate::project::codegen::{CodegenError, RouteProblem};
use crate::project::config::{self, ConfigError, Overrides};
use crate::report;
use crate::serve::ServeError;

/// One error as a command returns it, and the hint its type gives.
struct Sample {
    name: &'static str,
    /// The error type, as named in the source.
    type_name: &'static str,
    error: anyhow::Error,
    hint: Option<String>,
}

fn sample<E>(name: &'static str, error: E, hint: impl Fn(&E) -> Option<String>) -> Sample
where
    E: std::error::Error + Send + Sync + 'static,
{
    let full = std::any::type_name::<E>();
    Sample {
        name,
        type_name: full.rsplit("::").next().unwrap_or(full),
        hint: hint(&error),
        error: anyhow::Error::new(error),
    }
}

impl Sample {
    /// Adds the context a command adds around it.
    fn context(mut self, context: String) -> Sample {
        self.error = self.error.context(context);
        self
    }
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = tmp.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    tmp
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap()
}

/// One sample per kind of error the commands return.
fn samples(tmp: &Path) -> Vec<Sample> {
    let mut out = Vec::new();

    // Config: the real loader over real files.
    let bad_key = project(&[("nitro.toml", "[renderer]\nstatik = true\n")]);
    let e = config::load(bad_key.path(), &Overrides::default()).unwrap_err();
    out.push(sample("config_unknown_key", e, ConfigError::hint));
    let e = config::load(&tmp.join("missing"), &Overrides::default()).unwrap_err();
    out.push(sample("config_missing_project", e, ConfigError::hint));
    let empty = tmp.join("notes");
    std::fs::create_dir_all(&empty).unwrap();
    let e = config::load(&empty, &Overrides::default()).unwrap_err();
    out.push(sample("config_not_a_project", e, ConfigError::hint));
    let e = ConfigError::EnvPort { value: "x".into() };
    out.push(
        sample("config_env_port", e, ConfigError::hint)
            .context("cannot start the dev server".into()),
    );

    // Route names and route files.
    let names = project(&[
        ("nitro.toml", "[features]\nwebsocket = false\n"),
        ("routes/[id.rs", ""),
        ("routes/_ws.rs", ""),
    ]);
    let c = config::load(names.path(), &Overrides::default()).unwrap();
    let e = pipeline::scan(&c).unwrap_err();
    out.push(sample("pipeline_scan", e, PipelineError::hint));
    let e = PipelineError::Routes(vec![RouteProblem::MissingHandler {
        file: "routes/index.rs".into(),
    }]);
    out.push(sample("pipeline_route_problem", e, PipelineError::hint));

    // Code generation: what `generate_checked` adds around an I/O error.
    let nitro_dir = canonical(tmp).join(".nitro");
    let e = CodegenError::Write {
        path: nitro_dir.join("Cargo.toml"),
        source: io::Error::from(io::ErrorKind::PermissionDenied),
    };
    out.push(
        sample("codegen_write", e, CodegenError::hint)
            .context(format!("cannot generate `{}`", nitro_dir.display())),
    );

    // Cargo.
    let e = BuildError::Spawn {
        program: "cargo".into(),
        source: io::Error::from(io::ErrorKind::NotFound),
    };
    out.push(sample("cargo_spawn", e, BuildError::hint));
    let e = BuildError::Dependencies {
        config_file: "nitro.toml".into(),
        detail: "error: no matching package named `serde_jsno` found".into(),
    };
    out.push(sample("cargo_dependencies", e, BuildError::hint));

    // `nitro build`.
    let e = BuildFailed::Routes {
        failed: vec!["routes/a.rs".into(), "routes/b.rs".into()],
        kept: true,
    };
    out.push(sample("build_routes", e, BuildFailed::hint));

    // `nitro start`: a folder that is not an output, a bad variable, a library that fails.
    let e = crate::output::manifest::load(tmp).unwrap_err();
    out.push(sample("output_not_an_output", e, OutputError::hint));
    let args = StartArgs {
        output: None,
        port: None,
        host: None,
        supervise: false,
    };
    let env = StartEnv {
        nitro_port: Some("http".into()),
        ..StartEnv::default()
    };
    let e = resolve_addr(&args, &env).unwrap_err();
    out.push(sample("start_port", e, StartError::hint));
    let e = StartError::Load {
        file: "routes/index.rs".into(),
        library: ".output/server/routes/nitro_route_index.so".into(),
        message: "route `routes/index.rs` was built for nitro ABI 1, but this nitro speaks ABI 2"
            .into(),
    };
    out.push(sample("start_load", e, StartError::hint));

    // Serving.
    let e = ServeError::Server(nitro_runtime::ServerError::AddrInUse {
        addr: "127.0.0.1:3000".parse().unwrap(),
    });
    out.push(sample("serve_addr_in_use", e, |_| None));

    // `[websocket] pubsub` at `nitro start`: a malformed `NITRO_PUBSUB_URL`.
    let built = crate::project::config_pubsub::BuiltPubSub {
        url: None,
        channel: "chat".into(),
        queue: 10_000,
        stats_interval: Some(60.0),
    };
    let e = built
        .settings()
        .runtime(Some("redis//:secret@127.0.0.1:6379"), ".output/nitro.json")
        .unwrap_err();
    out.push(sample(
        "pubsub_url",
        e,
        crate::project::config_pubsub::PubSubConfigError::hint,
    ));

    // `[observability]`: a metrics address without a port, through the real loader.
    let observability = project(&[(
        "nitro.toml",
        "[observability]\nmetrics = \"/__nitro/metrics\"\nmetrics_bind = \"localhost\"\n",
    )]);
    let e = match config::load(observability.path(), &Overrides::default()).unwrap_err() {
        ConfigError::Observability(e) => e,
        other => panic!("expected an `[observability]` error, got {other:?}"),
    };
    out.push(sample(
        "observability_bind",
        e,
        crate::project::config_observability::ObservabilityConfigError::hint,
    ));

    // `[runtime_config]` at `nitro start`: an override that does not parse as its default.
    let e = crate::project::config_runtime::apply_env(
        &serde_json::json!({ "database": { "pool_size": 8 } }),
        &|name| (name == "NITRO_DATABASE_POOL_SIZE").then(|| "lots".to_owned()),
    )
    .unwrap_err();
    out.push(sample(
        "runtime_config_override",
        e,
        crate::project::config_runtime::RuntimeConfigError::hint,
    ));

    // `[scheduled_tasks]` naming a task without a file (`nitro dev`, `nitro start`).
    let e = crate::project::config_tasks::check_names(
        &[("*/5 * * * * *".to_owned(), vec!["cleanup".to_owned()])].into(),
        &nitro_router::RouteTable::default(),
        "nitro.toml",
    )
    .unwrap_err();
    out.push(sample(
        "scheduled_tasks_unknown",
        e,
        crate::project::config_tasks::ScheduledTasksError::hint,
    ));

    // `[storage.NAME]`: a driver nitro does not have.
    let dir = project(&[
        ("routes/index.rs", "pub fn handler() {}"),
        ("nitro.toml", "[storage.cache]\ndriver = \"s3\"\n"),
    ]);
    let ConfigError::Storage(e) = config::load(dir.path(), &Overrides::default()).unwrap_err()
    else {
        panic!("not a storage error");
    };
    out.push(sample(
        "storage_driver",
        e,
        crate::project::config_storage::StorageConfigError::hint,
    ));

    // `[route_rules]`: a cache that would never expire.
    let dir = project(&[
        ("routes/index.rs", "pub fn handler() {}"),
        (
            "nitro.toml",
            "[route_rules.\"/api/**\"]\ncache = { swr = 60 }\n",
        ),
    ]);
    let ConfigError::RouteRules(e) = config::load(dir.path(), &Overrides::default()).unwrap_err()
    else {
        panic!("not a route rules error");
    };
    out.push(sample(
        "route_rules_cache",
        e,
        crate::project::config_rules::RuleConfigError::hint,
    ));

    // `nitro init` into a folder that has files.
    let full = project(&[("notes.txt", "")]);
    let e = crate::commands::init::init(full.path(), Template::Websocket, false).unwrap_err();
    out.push(sample("init_not_empty", e, InitError::hint));
    out
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // tempfile's folders: `<temp dir>/.tmpXXXXXX`, canonical or not.
    settings.add_filter(r"(/[^\s`/]+)*/\.tmp[A-Za-z0-9]{6}", "[TMP]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn report_of_each_error_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = settings().bind_to_scope();
    for sample in samples(tmp.path()) {
        insta::assert_snapshot!(format!("report_{}", sample.name), report(&sample.error));
    }
}

#[test]
fn every_hint_reaches_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let samples = samples(tmp.path());
    let mut hinted = BTreeSet::new();
    for sample in &samples {
        let text = report(&sample.error);
        if let Some(hint) = &sample.hint {
            assert!(
                text.ends_with(&format!("hint: {hint}\n")),
                "{}: the hint of `{}` is not shown:\n{text}",
                sample.name,
                sample.type_name
            );
            hinted.insert(sample.type_name);
        } else {
            assert!(!text.contains("hint:"), "{}: {text}", sample.name);
        }
    }
    // Every error type with a `hint` has a sample above whose hint is shown: a new type (or a
    // type left out of `crate::hint`) fails here.
    let defined = types_with_hints(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path());
    let missing: Vec<&String> = defined
        .iter()
        .filter(|name| !hinted.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "error types with a `hint` but no sample that shows it: {missing:?}"
    );
    assert!(defined.len() >= 8, "{defined:?}");
}

/// The types whose `impl` block defines `fn hint(&self)`, in every source file below `dir`.
fn types_with_hints(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in crate::test_util::files_under(dir, "") {
        if !file.ends_with(".rs") {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&file)).unwrap();
        let mut current: Option<&str> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("impl ") {
                current = rest.strip_suffix(" {").filter(|t| !t.contains(' '));
            } else if line == "}" {
                current = None;
            } else if let Some(ty) = current
                && line
                    .trim_start()
                    .contains("fn hint(&self) -> Option<String>")
            {
                out.insert(ty.to_owned());
            }
        }
    }
    out
}
