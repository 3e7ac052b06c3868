//! `scan` over on-disk projects: checked-in fixtures under
//! `tests/fixtures/<name>/`, and temporary folders for what git cannot hold
//! (symbolic links, non-UTF-8 names).

use std::path::{Path, PathBuf};

use nitro_router::{Match, Problem, RouteKind, ScanOptions, scan};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn basic_project() {
    let table = scan(&fixture("basic"), &ScanOptions::default()).unwrap();
    let routes: Vec<(&str, &str)> = table
        .routes()
        .iter()
        .map(|r| (r.file.as_str(), r.pattern.as_str()))
        .collect();
    // Dotfiles, dot folders, editor files and non-.rs files are not routes.
    assert_eq!(
        routes,
        [
            ("routes/(admin)/stats.rs", "/stats"),
            ("routes/_ws.rs", "/_ws"),
            ("routes/api/hello.get.rs", "/api/hello"),
            ("routes/blog/[...slug].rs", "/blog/**:slug"),
            ("routes/index.rs", "/"),
            ("routes/rooms/[room]/_ws.rs", "/rooms/:room/_ws"),
            ("routes/users/[id].get.rs", "/users/:id"),
            ("routes/users/[id].post.rs", "/users/:id"),
            ("routes/users/index.rs", "/users"),
        ]
    );
    let kinds: Vec<RouteKind> = table.routes().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == RouteKind::WebSocket).count(),
        2
    );

    let Match::Found { route, params } = table.find("GET", "/rooms/lobby/_ws") else {
        panic!("no match")
    };
    assert_eq!(route.file, "routes/rooms/[room]/_ws.rs");
    assert_eq!(params, [("room".to_owned(), "lobby".to_owned())]);
    assert_eq!(table.find("GET", "/.hidden"), Match::NotFound);
    assert_eq!(table.find("GET", "/README.md"), Match::NotFound);
}

#[test]
fn missing_routes_folder_is_an_empty_table() {
    let table = scan(&fixture("no-routes"), &ScanOptions::default()).unwrap();
    assert!(table.is_empty());
    let table = scan(&fixture("does-not-exist"), &ScanOptions::default()).unwrap();
    assert!(table.is_empty());
}

#[test]
fn routes_folder_without_route_files() {
    let table = scan(&fixture("empty-routes"), &ScanOptions::default()).unwrap();
    assert!(table.is_empty());
    assert_eq!(table.find("GET", "/"), Match::NotFound);
}

#[test]
fn bad_names_are_all_reported() {
    let error = scan(&fixture("bad-names"), &ScanOptions::default()).unwrap_err();
    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "route file `routes/[id.rs` has an unclosed `[`: use `[id].rs`",
            "route file `routes/chat/_ws.get.rs` is a WebSocket route and cannot have the method suffix `.get`: use `_ws.rs`",
            "route file `routes/docs/[...path]/edit.rs` has the catch-all `[...path]` before other segments: a catch-all must be last; use `routes/docs/[...path].rs` and route on its value in the handler",
            "route file `routes/files/[name].[ext].rs` mixes text and params in the segment `[name].[ext].rs`: a segment is plain text or exactly one `[param]`; use `[name]/[ext].rs` and split the value in the handler if needed",
            "route files `routes/users.rs` and `routes/users/index.rs` both claim `/users` (any method): remove or rename one of them",
        ]
    );
    assert_eq!(error.to_string(), lines.join("\n"));
}

#[test]
fn websocket_off() {
    let options = ScanOptions { websocket: false };
    let error = scan(&fixture("websocket"), &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "route file `routes/_ws.rs` is a WebSocket route but WebSocket support is off: set `[features] websocket = true` in `nitro.toml` or remove the file"
    );
    let table = scan(&fixture("websocket"), &ScanOptions::default()).unwrap();
    assert_eq!(table.len(), 2);
}

/// A temporary project folder, removed on drop.
struct TempProject(PathBuf);

impl TempProject {
    fn new(name: &str) -> TempProject {
        let dir = std::env::temp_dir().join(format!("nitro-router-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempProject(dir)
    }

    fn file(&self, rel: &str) -> &Self {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "// route\n").unwrap();
        self
    }
}

impl Drop for TempProject {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn routes_is_a_file() {
    let project = TempProject::new("routes-file");
    project.file("routes");
    let error = scan(&project.0, &ScanOptions::default()).unwrap_err();
    assert!(matches!(error.problems(), [Problem::Io { path, .. }] if path.ends_with("routes")));
    let message = error.to_string();
    assert!(message.starts_with("cannot read `"), "{message}");
    assert!(message.contains("routes`: not a folder"), "{message}");
}

#[cfg(unix)]
#[test]
fn symlinks() {
    use std::os::unix::fs::symlink;

    let project = TempProject::new("symlinks");
    project
        .file("routes/index.rs")
        .file("shared/api/hello.get.rs");
    // A linked folder of routes is routes.
    symlink(project.0.join("shared/api"), project.0.join("routes/api")).unwrap();
    let table = scan(&project.0, &ScanOptions::default()).unwrap();
    let files: Vec<&str> = table.routes().iter().map(|r| r.file.as_str()).collect();
    assert_eq!(files, ["routes/api/hello.get.rs", "routes/index.rs"]);

    // A link back to an ancestor is reported, not followed forever.
    symlink(project.0.join("routes"), project.0.join("shared/api/loop")).unwrap();
    let error = scan(&project.0, &ScanOptions::default()).unwrap_err();
    assert!(
        matches!(error.problems(), [Problem::SymlinkLoop { path, .. }] if path.ends_with("routes/api/loop")),
        "{error}"
    );

    // A dangling link named like a route is an I/O problem naming it.
    std::fs::remove_file(project.0.join("shared/api/loop")).unwrap();
    symlink(
        project.0.join("nowhere.rs"),
        project.0.join("routes/gone.rs"),
    )
    .unwrap();
    let error = scan(&project.0, &ScanOptions::default()).unwrap_err();
    assert!(error.to_string().contains("routes/gone.rs`"), "{error}");
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_names() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let project = TempProject::new("non-utf8");
    project.file("routes/index.rs");
    let bad = project
        .0
        .join("routes")
        .join(OsStr::from_bytes(b"caf\xE9.rs"));
    std::fs::write(&bad, "// route\n").unwrap();
    // A non-UTF-8 file that is not a route is ignored like any other.
    std::fs::write(
        project
            .0
            .join("routes")
            .join(OsStr::from_bytes(b"\xFF.txt")),
        "",
    )
    .unwrap();
    let error = scan(&project.0, &ScanOptions::default()).unwrap_err();
    assert!(
        matches!(error.problems(), [Problem::NonUtf8Name { path }] if *path == bad),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with(".rs` is not valid UTF-8: rename it"),
        "{error}"
    );
}

/// Issue 10: the `*.rs` files directly in `middleware/` are middleware, in byte-wise file-name
/// order, never matched by `find`; subfolders are not scanned (modules they include).
#[test]
fn middleware_files_come_first_in_file_name_order() {
    let tmp = TempProject::new("middleware");
    let dir = tmp.0.as_path();
    for file in [
        "middleware/2.log.rs",
        "middleware/10.cors.rs",
        "middleware/1.auth.rs",
        "middleware/.hidden.rs",
        "middleware/notes.md",
        "middleware/shared/helpers.rs",
        "routes/index.rs",
    ] {
        tmp.file(file);
    }
    let table = scan(dir, &ScanOptions::default()).unwrap();
    let files: Vec<(&str, RouteKind)> = table
        .routes()
        .iter()
        .map(|r| (r.file.as_str(), r.kind))
        .collect();
    assert_eq!(
        files,
        [
            ("middleware/1.auth.rs", RouteKind::Middleware),
            ("middleware/10.cors.rs", RouteKind::Middleware),
            ("middleware/2.log.rs", RouteKind::Middleware),
            ("routes/index.rs", RouteKind::Http),
        ]
    );
    assert_eq!(table.middleware().len(), 3);
    assert_eq!(
        table.find("GET", "/").route().unwrap().file,
        "routes/index.rs"
    );
    assert_eq!(table.find("GET", "/1.auth"), Match::NotFound);

    // Middleware without routes: still a table (they guard `public/` and the page).
    std::fs::remove_dir_all(dir.join("routes")).unwrap();
    assert_eq!(scan(dir, &ScanOptions::default()).unwrap().len(), 3);
}

#[test]
fn a_middleware_file_in_a_subfolder_is_a_problem() {
    let error = nitro_router::RouteTable::from_project_files(
        ["index.rs"],
        ["auth/check.rs"],
        &ScanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(
        error.problems(),
        [Problem::NestedMiddleware { file }] if file == "middleware/auth/check.rs"
    ));
}

/// Issue 13: the `*.rs` files directly in `plugins/` are plugins, after the middleware and
/// before the routes, in byte-wise file-name order, never matched; subfolders are modules.
#[test]
fn plugin_files_are_listed_in_file_name_order_and_never_matched() {
    let tmp = TempProject::new("plugins");
    let dir = tmp.0.as_path();
    for file in [
        "plugins/2.cache.rs",
        "plugins/10.metrics.rs",
        "plugins/1.db.rs",
        "plugins/.hidden.rs",
        "plugins/shared/pool.rs",
        "middleware/1.auth.rs",
        "routes/[name].rs",
    ] {
        tmp.file(file);
    }
    let table = scan(dir, &ScanOptions::default()).unwrap();
    let files: Vec<(&str, RouteKind)> = table
        .routes()
        .iter()
        .map(|r| (r.file.as_str(), r.kind))
        .collect();
    assert_eq!(
        files,
        [
            ("middleware/1.auth.rs", RouteKind::Middleware),
            ("plugins/1.db.rs", RouteKind::Plugin),
            ("plugins/10.metrics.rs", RouteKind::Plugin),
            ("plugins/2.cache.rs", RouteKind::Plugin),
            ("routes/[name].rs", RouteKind::Http),
        ]
    );
    let plugins: Vec<&str> = table.plugins().iter().map(|p| p.file.as_str()).collect();
    assert_eq!(
        plugins,
        [
            "plugins/1.db.rs",
            "plugins/10.metrics.rs",
            "plugins/2.cache.rs"
        ]
    );
    assert_eq!(table.middleware().len(), 1);
    // `/1.db` is the param route's, never the plugin's.
    assert_eq!(
        table.find("GET", "/1.db").route().unwrap().file,
        "routes/[name].rs"
    );

    // A file in a subfolder given by name (a built manifest) is a problem that says so.
    let folders = nitro_router::ProjectFolders {
        plugins: vec!["shared/pool.rs".into()],
        ..Default::default()
    };
    let error =
        nitro_router::RouteTable::from_project(["index.rs"], &folders, &ScanOptions::default())
            .unwrap_err();
    assert!(
        error.to_string().contains(
            "file `plugins/shared/pool.rs` is in a subfolder: move it directly into `plugins/`"
        ),
        "{error}"
    );
}

/// Issue 13: the `*.rs` files directly in `tasks/` are tasks, named by their stem, listed last.
#[test]
fn task_files_are_named_by_their_stem_and_never_matched() {
    let tmp = TempProject::new("tasks");
    let dir = tmp.0.as_path();
    for file in [
        "tasks/cleanup.rs",
        "tasks/backup.rs",
        "tasks/shared/db.rs",
        "routes/[name].rs",
    ] {
        tmp.file(file);
    }
    let table = scan(dir, &ScanOptions::default()).unwrap();
    let tasks: Vec<&str> = table.tasks().iter().map(|t| t.file.as_str()).collect();
    assert_eq!(tasks, ["tasks/backup.rs", "tasks/cleanup.rs"]);
    assert_eq!(table.task("cleanup").unwrap().kind, RouteKind::Task);
    assert!(table.task("shared/db").is_none());
    assert_eq!(nitro_router::task_name("tasks/cleanup.rs"), Some("cleanup"));
    assert_eq!(nitro_router::task_name("tasks/a/b.rs"), None);
    assert_eq!(
        table.find("GET", "/cleanup").route().unwrap().file,
        "routes/[name].rs"
    );
}
