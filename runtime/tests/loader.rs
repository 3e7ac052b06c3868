//! The loader against real route libraries built with cargo: ABI checks, calls, panics.

use nitro_runtime::Hub;
use nitro_runtime::loader::{LoadError, LoadedRoute};
use nitro_runtime::module::{CallError, HttpOutcome, RequestInfo, RouteModule};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds a one-file cdylib crate and returns the library's path.
fn build_cdylib(name: &str, deps: &str, source: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/loader-test-crates")
        .join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\
             [lib]\ncrate-type = [\"cdylib\"]\n[dependencies]\n{deps}\n[workspace]\n\
             [profile.dev]\npanic = \"unwind\"\ndebug = \"line-tables-only\"\nincremental = true\n\
             [profile.dev.package.\"*\"]\ndebug = false\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), source).unwrap();
    let target = workspace_root().join("target/nitro-test-routes");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cargo build of test crate `{name}` failed"
    );
    target.join("debug").join(format!("lib{name}.so"))
}

#[test]
fn an_abi_version_mismatch_is_refused_before_anything_runs() {
    // A library claiming ABI 999 whose entry point would abort if it were ever called.
    let lib = build_cdylib(
        "nitro_loader_test_abi_mismatch",
        "",
        "#[unsafe(no_mangle)] pub static NITRO_ROUTE_ABI: u32 = 999;\n\
         #[unsafe(no_mangle)] pub extern \"C\" fn nitro_route_v2() -> *const u8 { std::process::abort() }\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let err = LoadedRoute::load(
        &lib,
        "routes/old.rs",
        &Hub::new(),
        cache.path(),
        cache.path(),
    )
    .unwrap_err();
    assert!(
        matches!(err, LoadError::AbiMismatch { found: 999, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("routes/old.rs"), "{text}");
    assert!(text.contains("ABI 999"), "{text}");
    assert!(text.contains(".nitro/target"), "says what to do: {text}");
}

#[test]
fn a_library_without_the_abi_symbol_is_refused() {
    let lib = build_cdylib(
        "nitro_loader_test_not_a_route",
        "",
        "#[unsafe(no_mangle)] pub extern \"C\" fn something_else() {}\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let err = LoadedRoute::load(&lib, "routes/x.rs", &Hub::new(), cache.path(), cache.path())
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::MissingSymbol {
                symbol: "NITRO_ROUTE_ABI",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn calls_reach_the_route_and_panics_are_contained() {
    let nitro = workspace_root().join("nitro");
    let lib = build_cdylib(
        "nitro_loader_test_http",
        &format!("nitro = {{ path = {:?} }}", nitro.display().to_string()),
        r#"
mod route {
    use nitro::{Error, Request, Response};
    pub fn handler(req: &Request) -> Result<Response, Error> {
        match req.param("what") {
            Some("panic") => panic!("route panicked: {}", req.path()),
            Some("error") => Err(Error::new(418, "teapot").with_data(nitro::json!({"a": 1}))),
            _ => Ok(Response::text(format!("{} {} {:?}", req.method(), req.path(), req.body()))
                .with_status(201)
                .with_header("x-route", "yes")),
        }
    }
}
nitro::__export_route!(route, "routes/[what].rs", http: handler, upgrade: _, open: _, message: _, close: _, error: _);
"#,
    );
    let cache = tempfile::tempdir().unwrap();
    let route = LoadedRoute::load(
        &lib,
        "routes/[what].rs",
        &Hub::new(),
        cache.path(),
        cache.path(),
    )
    .unwrap();
    assert_eq!(route.file(), "routes/[what].rs");
    assert!(
        std::fs::read_dir(cache.path()).unwrap().next().is_none(),
        "the unique link is removed"
    );

    let req = |what: &str| RequestInfo {
        method: "POST".into(),
        path: format!("/{what}"),
        params: vec![("what".into(), what.into())],
        body: bytes::Bytes::from_static(b"hi"),
        ..RequestInfo::default()
    };
    match route.http(&req("ok")).unwrap() {
        HttpOutcome::Response(res) => {
            assert_eq!(res.status, 201);
            assert_eq!(res.body, b"POST /ok [104, 105]");
            assert!(res.headers.contains(&("x-route".into(), b"yes".to_vec())));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        route.http(&req("error")).unwrap(),
        HttpOutcome::Error {
            status: 418,
            message: "teapot".into(),
            data: Some(r#"{"a":1}"#.into())
        }
    );
    for _ in 0..3 {
        match route.http(&req("panic")) {
            Err(CallError::Panicked(msg)) => {
                assert!(msg.contains("route panicked: /panic"), "{msg}");
                assert!(msg.contains("src/lib.rs:"), "has the location: {msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Still fine after the panics.
    assert!(matches!(
        route.http(&req("ok")),
        Ok(HttpOutcome::Response(_))
    ));
    // Hooks it does not define are no-ops or missing.
    assert!(route.ws_upgrade(&req("ok")).is_ok());

    // A second load of the same artifact is an independent generation.
    let again = LoadedRoute::load(
        &lib,
        "routes/[what].rs",
        &Hub::new(),
        cache.path(),
        cache.path(),
    )
    .unwrap();
    assert!(matches!(
        again.http(&req("ok")),
        Ok(HttpOutcome::Response(_))
    ));
}
