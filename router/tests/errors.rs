//! Scan-time errors: each case lists route files and every problem message
//! expected, in order. Messages name the file(s) and say what to write.

use nitro_router::{Method, Problem, RouteTable, ScanOptions};

struct Case {
    files: &'static [&'static str],
    websocket: bool,
    problems: &'static [&'static str],
}

const fn case(files: &'static [&'static str], problems: &'static [&'static str]) -> Case {
    Case {
        files,
        websocket: true,
        problems,
    }
}

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let options = ScanOptions {
            websocket: case.websocket,
        };
        match RouteTable::from_files(case.files, &options) {
            Ok(table) => failures.push(format!(
                "{:?}: expected problems, got {:?}",
                case.files,
                table.routes()
            )),
            Err(error) => {
                let got: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
                if got != case.problems {
                    failures.push(format!(
                        "{:?}:\nexpected:\n  {}\ngot:\n  {}",
                        case.files,
                        case.problems.join("\n  "),
                        got.join("\n  ")
                    ));
                }
                // Display is every problem, one per line.
                if error.to_string() != got.join("\n") {
                    failures.push(format!(
                        "{:?}: Display is not one problem per line",
                        case.files
                    ));
                }
                // Every message names the files the problem is about.
                for problem in error.problems() {
                    for file in problem.files() {
                        if !problem.to_string().contains(&format!("`{file}`")) {
                            failures.push(format!("{problem}: does not name `{file}`"));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn brackets() {
    run(&[
        case(
            &["[id.rs"],
            &["route file `routes/[id.rs` has an unclosed `[`: use `[id].rs`"],
        ),
        case(
            &["users/[id.post.rs"],
            &["route file `routes/users/[id.post.rs` has an unclosed `[`: use `[id].post.rs`"],
        ),
        case(
            &["[org/repo.rs"],
            &["route file `routes/[org/repo.rs` has an unclosed `[` in folder `[org`: use `[org]`"],
        ),
        case(
            &["id].rs"],
            &["route file `routes/id].rs` has a stray `]`: use `[id].rs`"],
        ),
        case(
            &["a/x]y/b.rs"],
            &["route file `routes/a/x]y/b.rs` has a stray `]` in folder `x]y`: use `[xy]`"],
        ),
        case(
            &["[].rs"],
            &["route file `routes/[].rs` has an empty param `[]`: name it, e.g. `[id].rs`"],
        ),
        case(
            &["[]/x.rs"],
            &[
                "route file `routes/[]/x.rs` has an empty param `[]` in folder `[]`: name it, e.g. `[id]`",
            ],
        ),
    ]);
}

#[test]
fn param_names() {
    run(&[
        case(
            &["[user id].rs"],
            &[
                "route file `routes/[user id].rs` has an invalid param name `user id`: use ASCII letters, digits, `_` and `-`, e.g. `[user_id].rs`",
            ],
        ),
        case(
            &["[café].rs"],
            &[
                "route file `routes/[café].rs` has an invalid param name `café`: use ASCII letters, digits, `_` and `-`, e.g. `[caf_].rs`",
            ],
        ),
        case(
            &["[...a.b].rs"],
            &[
                "route file `routes/[...a.b].rs` has an invalid param name `a.b`: use ASCII letters, digits, `_` and `-`, e.g. `[...a_b].rs`",
            ],
        ),
        case(
            &["[id]/[id].rs"],
            &[
                "route file `routes/[id]/[id].rs` uses the param name `id` twice: rename one of them",
            ],
        ),
        case(
            &["[a]/[b]/[a]/[...b].rs"],
            &[
                "route file `routes/[a]/[b]/[a]/[...b].rs` uses the param name `a` twice: rename one of them",
                "route file `routes/[a]/[b]/[a]/[...b].rs` uses the param name `b` twice: rename one of them",
            ],
        ),
    ]);
}

#[test]
fn optional_segments() {
    run(&[
        case(
            &["opt/[[...slug]].rs"],
            &[
                "route file `routes/opt/[[...slug]].rs` uses the optional segment `[[...slug]]`, which is not supported: use `[...slug].rs` plus an `index.rs` beside it for the path without the segment",
            ],
        ),
        case(
            &["[[id]].get.rs"],
            &[
                "route file `routes/[[id]].get.rs` uses the optional segment `[[id]]`, which is not supported: use `[id].get.rs` plus an `index.rs` beside it for the path without the segment",
            ],
        ),
    ]);
}

#[test]
fn mixed_segments() {
    run(&[
        case(
            &["multi/[a]-[b].rs"],
            &[
                "route file `routes/multi/[a]-[b].rs` mixes text and params in the segment `[a]-[b].rs`: a segment is plain text or exactly one `[param]`; use `[a]/[b].rs` and split the value in the handler if needed",
            ],
        ),
        case(
            &["files/[name].[ext].rs"],
            &[
                "route file `routes/files/[name].[ext].rs` mixes text and params in the segment `[name].[ext].rs`: a segment is plain text or exactly one `[param]`; use `[name]/[ext].rs` and split the value in the handler if needed",
            ],
        ),
        case(
            &["v[version]/api.rs"],
            &[
                "route file `routes/v[version]/api.rs` mixes text and params in the segment `v[version]`: a segment is plain text or exactly one `[param]`; use `[version]` and split the value in the handler if needed",
            ],
        ),
        case(
            &["[id]x.get.rs"],
            &[
                "route file `routes/[id]x.get.rs` mixes text and params in the segment `[id]x.get.rs`: a segment is plain text or exactly one `[param]`; use `[id].get.rs` and split the value in the handler if needed",
            ],
        ),
    ]);
}

#[test]
fn catch_all_not_last() {
    run(&[
        case(
            &["docs/[...path]/edit.rs"],
            &[
                "route file `routes/docs/[...path]/edit.rs` has the catch-all `[...path]` before other segments: a catch-all must be last; use `routes/docs/[...path].rs` and route on its value in the handler",
            ],
        ),
        case(
            &["[...]/(g)/[id].rs"],
            &[
                "route file `routes/[...]/(g)/[id].rs` has the catch-all `[...]` before other segments: a catch-all must be last; use `routes/[...].rs` and route on its value in the handler",
            ],
        ),
    ]);
}

#[test]
fn websocket() {
    run(&[
        case(
            &["_ws.get.rs"],
            &[
                "route file `routes/_ws.get.rs` is a WebSocket route and cannot have the method suffix `.get`: use `_ws.rs`",
            ],
        ),
        case(
            &["chat/_ws.post.rs"],
            &[
                "route file `routes/chat/_ws.post.rs` is a WebSocket route and cannot have the method suffix `.post`: use `_ws.rs`",
            ],
        ),
        Case {
            files: &["index.rs", "_ws.rs", "rooms/[room]/_ws.rs"],
            websocket: false,
            problems: &[
                "route file `routes/_ws.rs` is a WebSocket route but WebSocket support is off: set `[features] websocket = true` in `nitro.toml` or remove the file",
                "route file `routes/rooms/[room]/_ws.rs` is a WebSocket route but WebSocket support is off: set `[features] websocket = true` in `nitro.toml` or remove the file",
            ],
        },
    ]);
}

#[test]
fn conflicts() {
    run(&[
        case(
            &["users.rs", "users/index.rs"],
            &[
                "route files `routes/users.rs` and `routes/users/index.rs` both claim `/users` (any method): remove or rename one of them",
            ],
        ),
        case(
            &["index.rs", "(site)/index.rs"],
            &[
                "route files `routes/(site)/index.rs` and `routes/index.rs` both claim `/` (any method): remove or rename one of them",
            ],
        ),
        case(
            &["(a)/x.rs", "(b)/x.rs"],
            &[
                "route files `routes/(a)/x.rs` and `routes/(b)/x.rs` both claim `/x` (any method): remove or rename one of them",
            ],
        ),
        case(
            &["[id].rs", "[name].rs"],
            &[
                "route files `routes/[id].rs` and `routes/[name].rs` both claim `/:id` (any method) (`/:name` is the same route: params match whatever their names): remove or rename one of them",
            ],
        ),
        case(
            &[
                "users/[id].get.rs",
                "users/[uid]/index.get.rs",
                "users/[id].post.rs",
            ],
            &[
                "route files `routes/users/[id].get.rs` and `routes/users/[uid]/index.get.rs` both claim `GET /users/:id` (`/users/:uid` is the same route: params match whatever their names): remove or rename one of them",
            ],
        ),
        case(
            &["blog/[...slug].rs", "blog/[...rest]/index.rs"],
            &[
                "route files `routes/blog/[...rest]/index.rs` and `routes/blog/[...slug].rs` both claim `/blog/**:rest` (any method) (`/blog/**:slug` is the same route: params match whatever their names): remove or rename one of them",
            ],
        ),
        case(
            &["_ws.rs", "_ws/index.rs"],
            &[
                "route files `routes/_ws.rs` and `routes/_ws/index.rs` both claim `/_ws` (any method): remove or rename one of them",
            ],
        ),
        case(
            &["a.rs", "a/index.rs", "(g)/a.rs"],
            &[
                "route files `routes/(g)/a.rs` and `routes/a.rs` both claim `/a` (any method): remove or rename one of them",
                "route files `routes/(g)/a.rs` and `routes/a/index.rs` both claim `/a` (any method): remove or rename one of them",
            ],
        ),
    ]);
}

#[test]
fn not_conflicts() {
    // Same path, different methods, or any-method beside a method: fine.
    for files in [
        &["x.rs", "x.get.rs", "x.post.rs"][..],
        &["[id].get.rs", "[name].post.rs"],
        &["[id].rs", "[...rest].rs"],
        &["_ws.rs", "_ws/index.get.rs"],
        &["[...].rs", "index.rs"],
    ] {
        if let Err(error) = RouteTable::from_files(files, &ScanOptions::default()) {
            panic!("{files:?}: {error}");
        }
    }
}

#[test]
fn every_problem_is_collected() {
    run(&[case(
        &[
            "[id.rs",
            "ok.rs",
            "a.rs",
            "a/index.rs",
            "b/[x]-[y].rs",
            "_ws.get.rs",
            "c/[...r]/d.rs",
        ],
        &[
            "route file `routes/[id.rs` has an unclosed `[`: use `[id].rs`",
            "route file `routes/_ws.get.rs` is a WebSocket route and cannot have the method suffix `.get`: use `_ws.rs`",
            "route file `routes/b/[x]-[y].rs` mixes text and params in the segment `[x]-[y].rs`: a segment is plain text or exactly one `[param]`; use `[x]/[y].rs` and split the value in the handler if needed",
            "route file `routes/c/[...r]/d.rs` has the catch-all `[...r]` before other segments: a catch-all must be last; use `routes/c/[...r].rs` and route on its value in the handler",
            "route files `routes/a.rs` and `routes/a/index.rs` both claim `/a` (any method): remove or rename one of them",
        ],
    )]);
}

#[test]
fn problem_values() {
    let error = RouteTable::from_files(
        ["x.get.rs", "x/index.get.rs", "[bad name].rs"],
        &ScanOptions::default(),
    )
    .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 2);
    assert!(matches!(
        &problems[0],
        Problem::InvalidParamName { file, folder: None, name, suggestion }
            if file == "routes/[bad name].rs" && name == "bad name" && suggestion == "[bad_name].rs"
    ));
    assert!(matches!(
        &problems[1],
        Problem::Conflict { first, second, pattern, method: Some(Method::Get), .. }
            if first == "routes/x.get.rs" && second == "routes/x/index.get.rs" && pattern == "/x"
    ));
    assert_eq!(
        problems[1].files(),
        ["routes/x.get.rs", "routes/x/index.get.rs"]
    );
}
