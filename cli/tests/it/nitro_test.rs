//! `nitro test` runs the tests written in route files, by route file; `nitro doc` builds the
//! `nitro` crate's docs from an installed `nitro` (no clone).

use crate::support::*;

const SUM: &str = r#"use nitro::{Request, Result};

pub fn handler(req: &Request) -> Result<String> {
    let a: i64 = req.param_as("a")?;
    let limit: i64 = nitro::assets::read_to_string("limit.txt")?.trim().parse()?;
    Ok((a.min(limit) * 2).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_the_limit() {
        let req = Request::builder("GET", "/sum/21").param("a", "21").build();
        assert_eq!(handler(&req).unwrap(), "42");
        let req = Request::builder("GET", "/sum/x").param("a", "x").build();
        assert_eq!(handler(&req).unwrap_err().status(), 400);
    }
}
"#;

fn broken_test(expected: &str) -> String {
    format!(
        "pub fn handler() -> &'static str {{ \"pong\" }}\n\n\
         #[test]\nfn answers_pong() {{\n    assert_eq!(handler(), \"{expected}\");\n}}\n"
    )
}

#[test]
fn nitro_test_runs_route_tests_and_names_the_failing_file() {
    let project = Project::with_files(&[
        ("routes/sum/[a].get.rs", SUM),
        ("routes/ping.rs", &broken_test("ping")),
        ("assets/limit.txt", "100\n"),
    ]);
    let run = || {
        let out = nitro().arg("test").arg(project.path()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run();
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("the tests of `routes/ping.rs` failed"),
        "{all}"
    );
    assert!(
        !all.contains("the tests of `routes/sum/[a].get.rs` failed"),
        "{all}"
    );
    assert!(all.contains("answers_pong"), "{all}");

    project.write("routes/ping.rs", &broken_test("pong"));
    let (code, stdout, stderr) = run();
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("the tests of 2 route files passed"), "{all}");
    assert!(all.contains("testing routes/sum/[a].get.rs"), "{all}");
}

#[test]
fn nitro_doc_builds_the_route_api_docs() {
    let project = Project::with_files(&[(
        "routes/index.rs",
        "pub fn handler() -> &'static str { \"hi\" }\n",
    )]);
    let out = nitro()
        .arg("doc")
        .arg(project.path())
        .arg("--no-open")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::path::PathBuf::from(stdout.trim());
    assert!(index.ends_with("doc/nitro/index.html"), "{stdout}");
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(
        html.contains("param_as") || html.contains("Request"),
        "the nitro crate's docs"
    );
}
