//! `nitro init`: a new project from a template, asking nothing.
//!
//! Every template is one of the repository's examples, compiled into the binary
//! (`include_bytes!`), so an example and its template cannot drift apart: a test fails when an
//! example gains a file that is not embedded here. Every example carries its own `README.md`
//! and `.gitignore` (`.nitro/`, `.output/`, `.data/`), so generated projects do too.
//!
//! A folder that exists and is not empty is refused unless `--force`; even then nothing that
//! exists is overwritten: each such file is kept and reported.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::ui::Ui;

/// Arguments of `nitro init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// The folder to create the project in (created if missing).
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// What to start from.
    #[arg(long, short = 't', value_enum, default_value_t = Template::Websocket)]
    pub(crate) template: Template,

    /// Add the template's files to a folder that is not empty. Files that exist are kept, never
    /// overwritten.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The templates: each is `examples/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Template {
    /// The WebSocket chat: a `_ws.rs` route and a page.
    Websocket,
    /// A JSON API: params, a POST with a JSON body, errors.
    Api,
    /// One route, `routes/index.rs`.
    Minimal,
    /// A WebSocket echo and a page to try it.
    Echo,
}

type Files = &'static [(&'static str, &'static [u8])];

macro_rules! example {
    ($name:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_bytes!(concat!("../../embedded/examples/", $name, "/", $file)))),+]
    };
}

const WEBSOCKET: Files = example!("websocket":
    ".gitignore",
    "README.md",
    "index.html",
    "nitro.toml",
    "public/favicon.svg",
    "routes/_ws.rs",
    "routes/sse.get.rs",
    "routes/sse.post.rs",
);

const API: Files = example!("api":
    ".gitignore",
    "README.md",
    "nitro.toml",
    "routes/api/users.post.rs",
    "routes/api/users/[id].get.rs",
    "routes/index.get.rs",
);

const MINIMAL: Files = example!("minimal":
    ".gitignore",
    "README.md",
    "nitro.toml",
    "routes/index.rs",
);

const ECHO: Files = example!("echo":
    ".gitignore",
    "README.md",
    "index.html",
    "nitro.toml",
    "routes/_ws.rs",
);

impl Template {
    /// The example folder's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Template::Websocket => "websocket",
            Template::Api => "api",
            Template::Minimal => "minimal",
            Template::Echo => "echo",
        }
    }

    /// The files, relative to the project, `/`-separated.
    pub(crate) fn files(self) -> Files {
        match self {
            Template::Websocket => WEBSOCKET,
            Template::Api => API,
            Template::Minimal => MINIMAL,
            Template::Echo => ECHO,
        }
    }
}

/// Why `nitro init` did nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error("`{}` is not empty (it has {})", .dir.display(), list(.entries))]
    NotEmpty { dir: PathBuf, entries: Vec<String> },
    #[error("`{}` exists and is not a folder", .dir.display())]
    NotAFolder { dir: PathBuf },
    #[error("cannot write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl InitError {
    /// What to do about it.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            InitError::NotEmpty { dir, .. } => Some(format!(
                "pick a new folder (`nitro init my-app`), or add the template to this one with `nitro init {} --force` (files that exist are kept)",
                dir.display()
            )),
            InitError::NotAFolder { .. } => Some("pick another name".into()),
            InitError::Write { .. } => None,
        }
    }
}

fn list(entries: &[String]) -> String {
    let shown: Vec<String> = entries.iter().take(3).map(|e| format!("`{e}`")).collect();
    let mut text = shown.join(", ");
    if entries.len() > 3 {
        text.push_str(&format!(" and {} more", entries.len() - 3));
    }
    text
}

/// What [`init`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    /// Files written, relative to the project.
    pub(crate) written: Vec<String>,
    /// Files of the template that already existed and were left as they were.
    pub(crate) kept: Vec<String>,
}

/// Writes `template` into `dir` (see the module docs).
pub(crate) fn init(dir: &Path, template: Template, force: bool) -> Result<Created, InitError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            if !names.is_empty() && !force {
                return Err(InitError::NotEmpty {
                    dir: dir.to_owned(),
                    entries: names,
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) if dir.exists() => {
            return Err(InitError::NotAFolder {
                dir: dir.to_owned(),
            });
        }
        Err(source) => {
            return Err(InitError::Write {
                path: dir.to_owned(),
                source,
            });
        }
    }
    let mut created = Created::default();
    for (rel, content) in template.files() {
        let path = dir.join(rel);
        let err = |source| InitError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        // `create_new`: an existing file (or one appearing meanwhile) is never replaced.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                io::Write::write_all(&mut file, content).map_err(err)?;
                created.written.push((*rel).to_owned());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                created.kept.push((*rel).to_owned());
            }
            Err(source) => return Err(err(source)),
        }
    }
    Ok(created)
}

/// Runs `nitro init`.
pub(crate) fn run(args: &InitArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let created = init(&args.dir, args.template, args.force)?;
    for kept in &created.kept {
        ui.warn(&format!(
            "kept `{}`: it already exists (the template's version was not written)",
            args.dir.join(kept).display()
        ));
    }
    ui.status(&format!(
        "{} created `{}` from the `{}` template ({} files)",
        ui.paint("✔", "32"),
        args.dir.display(),
        args.template.name(),
        created.written.len()
    ));
    // The generated workspace, so that an editor resolves `nitro::` in route files before
    // the first `nitro dev` (see `project::ide`). Nothing is built; a failure only warns.
    if let Err(error) = prepare_workspace(&args.dir) {
        ui.warn(&format!(
            "cannot prepare `.nitro/` for editors ({error:#}): `nitro dev` will"
        ));
    }
    let cd = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", args.dir.display())
    };
    ui.status(&format!(
        "  next: {cd}nitro dev      (then `nitro build` and `nitro start`; see README.md)"
    ));
    Ok(ExitCode::SUCCESS)
}

/// Scans the new project and writes its generated workspace (no build).
fn prepare_workspace(dir: &Path) -> anyhow::Result<()> {
    let config = crate::project::config::load_with_env(
        dir,
        &crate::project::config::Overrides::default(),
        &crate::project::config::Env::default(),
    )?;
    let table = crate::pipeline::scan(&config)?;
    crate::project::codegen::generate(&config, &table)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_example_file_is_in_its_template() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&examples).unwrap() {
            names.insert(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
        let templates = [
            Template::Websocket,
            Template::Api,
            Template::Minimal,
            Template::Echo,
        ];
        let expected: BTreeSet<String> = templates.iter().map(|t| t.name().to_owned()).collect();
        assert_eq!(
            names, expected,
            "every example is a template: add it to `Template` in cli/src/init.rs"
        );
        for template in templates {
            let mut on_disk = BTreeSet::new();
            on_disk.extend(crate::test_util::files_under(
                &examples.join(template.name()),
                "",
            ));
            let embedded: BTreeSet<String> = template
                .files()
                .iter()
                .map(|(p, _)| p.to_string())
                .collect();
            assert_eq!(
                on_disk,
                embedded,
                "`examples/{}` and its template in cli/src/init.rs differ",
                template.name()
            );
            for (rel, content) in template.files() {
                let real = std::fs::read(examples.join(template.name()).join(rel)).unwrap();
                assert_eq!(&real[..], *content, "{rel}");
            }
            assert!(embedded.contains(".gitignore") && embedded.contains("README.md"));
            let gitignore = template
                .files()
                .iter()
                .find(|(p, _)| *p == ".gitignore")
                .unwrap()
                .1;
            let gitignore = std::str::from_utf8(gitignore).unwrap();
            assert!(gitignore.contains(".nitro/") && gitignore.contains(".output/"));
        }
    }

    #[test]
    fn writes_into_a_new_folder_and_refuses_a_full_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        let created = init(&dir, Template::Minimal, false).unwrap();
        assert_eq!(created.written.len(), MINIMAL.len());
        assert!(created.kept.is_empty());
        assert!(dir.join("routes/index.rs").is_file());

        let e = init(&dir, Template::Minimal, false).unwrap_err();
        assert!(matches!(e, InitError::NotEmpty { .. }));
        assert!(
            e.to_string().ends_with(
                "is not empty (it has `.gitignore`, `README.md`, `nitro.toml` and 1 more)"
            ),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("--force"));
    }

    #[test]
    fn force_keeps_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("nitro.toml"), "# mine\n").unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let created = init(tmp.path(), Template::Api, true).unwrap();
        assert_eq!(created.kept, ["nitro.toml"]);
        assert_eq!(created.written.len(), API.len() - 1);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("nitro.toml")).unwrap(),
            "# mine\n"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
            "mine"
        );
        assert!(tmp.path().join("routes/api/users/[id].get.rs").is_file());
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("x");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            init(&file, Template::Minimal, false).unwrap_err(),
            InitError::NotAFolder { .. }
        ));
    }
}
