//! Table-driven matching tests: each case lists route files (relative to
//! `routes/`) and requests with the expected outcome; `run` checks them all
//! and reports every failure at once.

use nitro_router::{Match, Method, RouteTable, ScanOptions};

use Expect::{NotAllowed, NotFound, Route};
use Method::{Delete, Get, Head, Options, Patch, Post, Put};

#[derive(Debug)]
enum Expect {
    /// The route file (relative to the project) and its params.
    Route(&'static str, &'static [(&'static str, &'static str)]),
    /// 405 with this `Allow` list.
    NotAllowed(&'static [Method]),
    NotFound,
}

struct Case {
    name: &'static str,
    files: &'static [&'static str],
    requests: &'static [(&'static str, &'static str, Expect)],
}

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let table = match RouteTable::from_files(case.files, &ScanOptions::default()) {
            Ok(table) => table,
            Err(error) => {
                failures.push(format!("[{}] the files do not scan:\n{error}", case.name));
                continue;
            }
        };
        for (method, path, expect) in case.requests {
            let found = table.find(method, path);
            let ok = match (expect, &found) {
                (Route(file, params), Match::Found { route, params: got }) => {
                    route.file == *file
                        && got.len() == params.len()
                        && got
                            .iter()
                            .zip(params.iter())
                            .all(|((k, v), (ek, ev))| k == ek && v == ev)
                }
                (NotAllowed(allow), Match::MethodNotAllowed { allow: got }) => got == allow,
                (NotFound, Match::NotFound) => true,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "[{}] {method} {path}: expected {expect:?}, got {found:?}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn static_routes() {
    run(&[Case {
        name: "index files and nesting",
        files: &[
            "index.rs",
            "about.rs",
            "users/index.rs",
            "users/list/all.rs",
            "x.y.rs",
            "icon.png.rs",
        ],
        requests: &[
            ("GET", "/", Route("routes/index.rs", &[])),
            ("GET", "", Route("routes/index.rs", &[])),
            ("GET", "/about", Route("routes/about.rs", &[])),
            ("GET", "/users", Route("routes/users/index.rs", &[])),
            (
                "GET",
                "/users/list/all",
                Route("routes/users/list/all.rs", &[]),
            ),
            ("GET", "/users/list", NotFound),
            ("GET", "/x.y", Route("routes/x.y.rs", &[])),
            ("GET", "/x", NotFound),
            ("GET", "/icon.png", Route("routes/icon.png.rs", &[])),
            ("GET", "/index", NotFound),
            ("GET", "/users/index", NotFound),
            ("GET", "/about/more", NotFound),
        ],
    }]);
}

#[test]
fn slashes_and_case() {
    run(&[Case {
        name: "trailing and doubled slashes are ignored, case is not",
        files: &[
            "index.rs",
            "users/index.rs",
            "users/[id].rs",
            "Hello/World.rs",
        ],
        requests: &[
            ("GET", "/users/", Route("routes/users/index.rs", &[])),
            ("GET", "//users", Route("routes/users/index.rs", &[])),
            ("GET", "/users//", Route("routes/users/index.rs", &[])),
            (
                "GET",
                "/users//7/",
                Route("routes/users/[id].rs", &[("id", "7")]),
            ),
            (
                "GET",
                "users/7",
                Route("routes/users/[id].rs", &[("id", "7")]),
            ),
            ("GET", "//", Route("routes/index.rs", &[])),
            ("GET", "/Hello/World", Route("routes/Hello/World.rs", &[])),
            ("GET", "/hello/world", NotFound),
            ("GET", "/USERS", NotFound),
        ],
    }]);
}

#[test]
fn params() {
    run(&[
        Case {
            name: "one and several params",
            files: &[
                "users/[id].rs",
                "[org]/[repo]/issues/[number].rs",
                "p/[user-id_2].rs",
            ],
            requests: &[
                (
                    "GET",
                    "/users/42",
                    Route("routes/users/[id].rs", &[("id", "42")]),
                ),
                ("GET", "/users", NotFound),
                ("GET", "/users/42/more", NotFound),
                (
                    "GET",
                    "/nitro/rs/issues/7",
                    Route(
                        "routes/[org]/[repo]/issues/[number].rs",
                        &[("org", "nitro"), ("repo", "rs"), ("number", "7")],
                    ),
                ),
                (
                    "GET",
                    "/p/x",
                    Route("routes/p/[user-id_2].rs", &[("user-id_2", "x")]),
                ),
            ],
        },
        Case {
            name: "params in folders",
            files: &["[id]/index.rs", "[id]/edit.rs"],
            requests: &[
                ("GET", "/7", Route("routes/[id]/index.rs", &[("id", "7")])),
                (
                    "GET",
                    "/7/edit",
                    Route("routes/[id]/edit.rs", &[("id", "7")]),
                ),
                ("GET", "/", NotFound),
            ],
        },
        Case {
            name: "same-shape params with different names for different methods",
            files: &["items/[id].get.rs", "items/[name].post.rs"],
            requests: &[
                (
                    "GET",
                    "/items/a",
                    Route("routes/items/[id].get.rs", &[("id", "a")]),
                ),
                (
                    "POST",
                    "/items/a",
                    Route("routes/items/[name].post.rs", &[("name", "a")]),
                ),
            ],
        },
        Case {
            name: "dot segments are not resolved",
            files: &["files/[name].rs"],
            requests: &[
                (
                    "GET",
                    "/files/..",
                    Route("routes/files/[name].rs", &[("name", "..")]),
                ),
                (
                    "GET",
                    "/files/%2E%2E",
                    Route("routes/files/[name].rs", &[("name", "..")]),
                ),
                (
                    "GET",
                    "/files/.",
                    Route("routes/files/[name].rs", &[("name", ".")]),
                ),
            ],
        },
    ]);
}

#[test]
fn catch_alls() {
    run(&[
        Case {
            name: "named catch-all takes one or more segments",
            files: &["blog/[...slug].rs", "blog/index.rs"],
            requests: &[
                (
                    "GET",
                    "/blog/a",
                    Route("routes/blog/[...slug].rs", &[("slug", "a")]),
                ),
                (
                    "GET",
                    "/blog/a/b/c",
                    Route("routes/blog/[...slug].rs", &[("slug", "a/b/c")]),
                ),
                (
                    "GET",
                    "/blog/a//b/",
                    Route("routes/blog/[...slug].rs", &[("slug", "a/b")]),
                ),
                ("GET", "/blog", Route("routes/blog/index.rs", &[])),
                ("GET", "/blog/", Route("routes/blog/index.rs", &[])),
            ],
        },
        Case {
            name: "a catch-all needs at least one segment",
            files: &["blog/[...slug].rs"],
            requests: &[
                ("GET", "/blog", NotFound),
                (
                    "GET",
                    "/blog/x",
                    Route("routes/blog/[...slug].rs", &[("slug", "x")]),
                ),
            ],
        },
        Case {
            name: "root catch-all is unnamed and does not match /",
            files: &["[...].rs"],
            requests: &[
                ("GET", "/", NotFound),
                ("GET", "/a", Route("routes/[...].rs", &[("_", "a")])),
                (
                    "POST",
                    "/a/b/c",
                    Route("routes/[...].rs", &[("_", "a/b/c")]),
                ),
            ],
        },
        Case {
            name: "catch-all as a folder index",
            files: &["docs/[...path]/index.rs"],
            requests: &[(
                "GET",
                "/docs/a/b",
                Route("routes/docs/[...path]/index.rs", &[("path", "a/b")]),
            )],
        },
        Case {
            name: "params before a catch-all",
            files: &["[owner]/[repo]/tree/[...path].rs"],
            requests: &[(
                "GET",
                "/a/b/tree/src/lib.rs",
                Route(
                    "routes/[owner]/[repo]/tree/[...path].rs",
                    &[("owner", "a"), ("repo", "b"), ("path", "src/lib.rs")],
                ),
            )],
        },
    ]);
}

#[test]
fn priority() {
    run(&[
        Case {
            name: "static beats param beats catch-all",
            files: &["hello/world.rs", "hello/[name].rs", "hello/[...rest].rs"],
            requests: &[
                ("GET", "/hello/world", Route("routes/hello/world.rs", &[])),
                (
                    "GET",
                    "/hello/bob",
                    Route("routes/hello/[name].rs", &[("name", "bob")]),
                ),
                (
                    "GET",
                    "/hello/bob/x",
                    Route("routes/hello/[...rest].rs", &[("rest", "bob/x")]),
                ),
                (
                    "GET",
                    "/hello/world/x",
                    Route("routes/hello/[...rest].rs", &[("rest", "world/x")]),
                ),
            ],
        },
        Case {
            name: "backtracking from a static branch to a param branch",
            files: &["a/b/c.rs", "a/[x]/d.rs", "[y]/b/e.rs"],
            requests: &[
                ("GET", "/a/b/c", Route("routes/a/b/c.rs", &[])),
                ("GET", "/a/b/d", Route("routes/a/[x]/d.rs", &[("x", "b")])),
                ("GET", "/a/b/e", Route("routes/[y]/b/e.rs", &[("y", "a")])),
                ("GET", "/a/b/f", NotFound),
            ],
        },
        Case {
            name: "deeper static beats shallower catch-all",
            files: &["[...].rs", "api/[...].rs", "api/v1/status.rs"],
            requests: &[
                (
                    "GET",
                    "/api/v1/status",
                    Route("routes/api/v1/status.rs", &[]),
                ),
                (
                    "GET",
                    "/api/v1/other",
                    Route("routes/api/[...].rs", &[("_", "v1/other")]),
                ),
                ("GET", "/api", Route("routes/[...].rs", &[("_", "api")])),
                ("GET", "/other", Route("routes/[...].rs", &[("_", "other")])),
            ],
        },
    ]);
}

#[test]
fn groups() {
    run(&[Case {
        name: "(group) folders add no segment",
        files: &[
            "(admin)/stats.rs",
            "(admin)/users/[id].rs",
            "(a)/(b)/deep.rs",
            "(site)/index.rs",
        ],
        requests: &[
            ("GET", "/stats", Route("routes/(admin)/stats.rs", &[])),
            (
                "GET",
                "/users/1",
                Route("routes/(admin)/users/[id].rs", &[("id", "1")]),
            ),
            ("GET", "/deep", Route("routes/(a)/(b)/deep.rs", &[])),
            ("GET", "/", Route("routes/(site)/index.rs", &[])),
            ("GET", "/(admin)/stats", NotFound),
            ("GET", "/admin/stats", NotFound),
        ],
    }]);
}

#[test]
fn methods() {
    run(&[
        Case {
            name: "method suffixes",
            files: &[
                "users/[id].get.rs",
                "users/[id].post.rs",
                "method.delete.rs",
            ],
            requests: &[
                (
                    "GET",
                    "/users/1",
                    Route("routes/users/[id].get.rs", &[("id", "1")]),
                ),
                (
                    "POST",
                    "/users/1",
                    Route("routes/users/[id].post.rs", &[("id", "1")]),
                ),
                ("PUT", "/users/1", NotAllowed(&[Get, Post, Head])),
                ("DELETE", "/method", Route("routes/method.delete.rs", &[])),
                ("GET", "/method", NotAllowed(&[Delete])),
                ("GET", "/users", NotFound),
            ],
        },
        Case {
            name: "a method-specific route beats an any-method route on the same path",
            files: &["thing.rs", "thing.get.rs"],
            requests: &[
                ("GET", "/thing", Route("routes/thing.get.rs", &[])),
                ("POST", "/thing", Route("routes/thing.rs", &[])),
                ("HEAD", "/thing", Route("routes/thing.rs", &[])),
                ("PROPFIND", "/thing", Route("routes/thing.rs", &[])),
            ],
        },
        Case {
            name: "every method suffix",
            files: &[
                "m.get.rs",
                "m.post.rs",
                "m.put.rs",
                "m.patch.rs",
                "m.delete.rs",
                "m.head.rs",
                "m.options.rs",
            ],
            requests: &[
                ("GET", "/m", Route("routes/m.get.rs", &[])),
                ("POST", "/m", Route("routes/m.post.rs", &[])),
                ("PUT", "/m", Route("routes/m.put.rs", &[])),
                ("PATCH", "/m", Route("routes/m.patch.rs", &[])),
                ("DELETE", "/m", Route("routes/m.delete.rs", &[])),
                ("HEAD", "/m", Route("routes/m.head.rs", &[])),
                ("OPTIONS", "/m", Route("routes/m.options.rs", &[])),
                (
                    "TRACE",
                    "/m",
                    NotAllowed(&[Get, Post, Put, Patch, Delete, Head, Options]),
                ),
            ],
        },
        Case {
            name: "methods are case-sensitive; unknown methods only match any-method routes",
            files: &["strict.get.rs", "loose.rs"],
            requests: &[
                ("get", "/strict", NotAllowed(&[Get, Head])),
                ("TRACE", "/strict", NotAllowed(&[Get, Head])),
                ("TRACE", "/loose", Route("routes/loose.rs", &[])),
                ("CONNECT", "/loose", Route("routes/loose.rs", &[])),
            ],
        },
        Case {
            name: "index with a method",
            files: &["index.get.rs", "index.post.rs"],
            requests: &[
                ("GET", "/", Route("routes/index.get.rs", &[])),
                ("POST", "/", Route("routes/index.post.rs", &[])),
                ("PATCH", "/", NotAllowed(&[Get, Post, Head])),
            ],
        },
    ]);
}

#[test]
fn head() {
    run(&[
        Case {
            name: "HEAD falls back to a GET route",
            files: &["page.get.rs", "users/[id].get.rs"],
            requests: &[
                ("HEAD", "/page", Route("routes/page.get.rs", &[])),
                (
                    "HEAD",
                    "/users/9",
                    Route("routes/users/[id].get.rs", &[("id", "9")]),
                ),
            ],
        },
        Case {
            name: "an explicit HEAD route wins",
            files: &["page.get.rs", "page.head.rs"],
            requests: &[
                ("HEAD", "/page", Route("routes/page.head.rs", &[])),
                ("GET", "/page", Route("routes/page.get.rs", &[])),
            ],
        },
        Case {
            name: "HEAD takes the GET route of the best path before a lower-priority any-method route",
            files: &["api/hello.get.rs", "[...].rs"],
            requests: &[
                ("HEAD", "/api/hello", Route("routes/api/hello.get.rs", &[])),
                (
                    "HEAD",
                    "/other",
                    Route("routes/[...].rs", &[("_", "other")]),
                ),
            ],
        },
        Case {
            name: "HEAD without a GET route",
            files: &["form.post.rs"],
            requests: &[("HEAD", "/form", NotAllowed(&[Post]))],
        },
    ]);
}

#[test]
fn method_fallthrough() {
    run(&[
        Case {
            name: "a path without a route for the method falls through to a catch-all",
            files: &["api/users.post.rs", "api/[...].rs"],
            requests: &[
                ("POST", "/api/users", Route("routes/api/users.post.rs", &[])),
                (
                    "GET",
                    "/api/users",
                    Route("routes/api/[...].rs", &[("_", "users")]),
                ),
                (
                    "DELETE",
                    "/api/users/1",
                    Route("routes/api/[...].rs", &[("_", "users/1")]),
                ),
            ],
        },
        Case {
            name: "static falls through to a param with the method",
            files: &["users/me.get.rs", "users/[id].delete.rs"],
            requests: &[
                ("GET", "/users/me", Route("routes/users/me.get.rs", &[])),
                (
                    "DELETE",
                    "/users/me",
                    Route("routes/users/[id].delete.rs", &[("id", "me")]),
                ),
                ("POST", "/users/me", NotAllowed(&[Get, Delete, Head])),
                ("POST", "/users/you", NotAllowed(&[Delete])),
            ],
        },
        Case {
            name: "405 lists the methods of every matching path",
            files: &[
                "a/b.get.rs",
                "a/[x].put.rs",
                "a/[...rest].patch.rs",
                "other.post.rs",
            ],
            requests: &[
                ("DELETE", "/a/b", NotAllowed(&[Get, Put, Patch, Head])),
                ("DELETE", "/a/c", NotAllowed(&[Put, Patch])),
                ("DELETE", "/a/c/d", NotAllowed(&[Patch])),
                (
                    "PATCH",
                    "/a/b",
                    Route("routes/a/[...rest].patch.rs", &[("rest", "b")]),
                ),
                ("DELETE", "/nothing", NotFound),
            ],
        },
    ]);
}

#[test]
fn decoding() {
    run(&[
        Case {
            name: "params are percent-decoded",
            files: &["hello/[name].rs", "blog/[...slug].rs"],
            requests: &[
                (
                    "GET",
                    "/hello/a%20b",
                    Route("routes/hello/[name].rs", &[("name", "a b")]),
                ),
                (
                    "GET",
                    "/hello/a+b",
                    Route("routes/hello/[name].rs", &[("name", "a+b")]),
                ),
                (
                    "GET",
                    "/hello/caf%C3%A9",
                    Route("routes/hello/[name].rs", &[("name", "café")]),
                ),
                (
                    "GET",
                    "/hello/%E2%9C%93",
                    Route("routes/hello/[name].rs", &[("name", "✓")]),
                ),
                (
                    "GET",
                    "/hello/a%2Fb",
                    Route("routes/hello/[name].rs", &[("name", "a/b")]),
                ),
                (
                    "GET",
                    "/hello/%FF",
                    Route("routes/hello/[name].rs", &[("name", "\u{FFFD}")]),
                ),
                (
                    "GET",
                    "/hello/100%",
                    Route("routes/hello/[name].rs", &[("name", "100%")]),
                ),
                (
                    "GET",
                    "/hello/%zz",
                    Route("routes/hello/[name].rs", &[("name", "%zz")]),
                ),
                (
                    "GET",
                    "/blog/a%20b/c%2Fd",
                    Route("routes/blog/[...slug].rs", &[("slug", "a b/c/d")]),
                ),
            ],
        },
        Case {
            name: "static names match decoded segments",
            files: &["café.rs", "a b.rs", "x%y.rs"],
            requests: &[
                ("GET", "/caf%C3%A9", Route("routes/café.rs", &[])),
                ("GET", "/café", Route("routes/café.rs", &[])),
                ("GET", "/a%20b", Route("routes/a b.rs", &[])),
                ("GET", "/x%25y", Route("routes/x%y.rs", &[])),
                ("GET", "/caf%C3%89", NotFound),
            ],
        },
    ]);
}

#[test]
fn websocket() {
    run(&[
        Case {
            name: "_ws files match any method",
            files: &["_ws.rs", "chat/_ws.rs", "rooms/[room]/_ws.rs", "index.rs"],
            requests: &[
                ("GET", "/_ws", Route("routes/_ws.rs", &[])),
                ("POST", "/_ws", Route("routes/_ws.rs", &[])),
                ("GET", "/_ws/", Route("routes/_ws.rs", &[])),
                ("GET", "/chat/_ws", Route("routes/chat/_ws.rs", &[])),
                (
                    "GET",
                    "/rooms/lobby/_ws",
                    Route("routes/rooms/[room]/_ws.rs", &[("room", "lobby")]),
                ),
                ("GET", "/chat", NotFound),
                ("GET", "/rooms/lobby", NotFound),
            ],
        },
        Case {
            name: "_ws beside a param: static wins",
            files: &["[page].rs", "_ws.rs"],
            requests: &[
                ("GET", "/_ws", Route("routes/_ws.rs", &[])),
                (
                    "GET",
                    "/about",
                    Route("routes/[page].rs", &[("page", "about")]),
                ),
            ],
        },
        Case {
            name: "other leading underscores are ordinary routes",
            files: &["_private.rs", "_ws/index.get.rs"],
            requests: &[
                ("GET", "/_private", Route("routes/_private.rs", &[])),
                ("GET", "/_ws", Route("routes/_ws/index.get.rs", &[])),
            ],
        },
    ]);
}

#[test]
fn empty_table() {
    run(&[Case {
        name: "no routes",
        files: &[],
        requests: &[("GET", "/", NotFound), ("POST", "/x", NotFound)],
    }]);
}

#[test]
fn non_routes_are_ignored() {
    run(&[Case {
        name: "from_files skips what scan skips",
        files: &[
            "a.rs",
            "b.ts",
            "c.rs~",
            ".d.rs",
            ".git/e.rs",
            "README.md",
            "/f.rs",
            "g//h.rs",
            "a.rs",
        ],
        requests: &[
            ("GET", "/a", Route("routes/a.rs", &[])),
            ("GET", "/b", NotFound),
            ("GET", "/c", NotFound),
            ("GET", "/.d", NotFound),
            ("GET", "/.git/e", NotFound),
            ("GET", "/f", Route("routes/f.rs", &[])),
            ("GET", "/g/h", Route("routes/g/h.rs", &[])),
        ],
    }]);
}

/// A few hundred routes: everything still matches where it should.
#[test]
fn many_routes() {
    let mut files = Vec::new();
    for i in 0..100 {
        files.push(format!("s{i}/index.get.rs"));
        files.push(format!("s{i}/[id].post.rs"));
        files.push(format!("s{i}/[id]/edit/[...rest].rs"));
    }
    files.push("[...].rs".to_owned());
    let table = RouteTable::from_files(&files, &ScanOptions::default()).unwrap();
    assert_eq!(table.len(), 301);
    for i in 0..100 {
        let route = table
            .find("GET", &format!("/s{i}"))
            .route()
            .map(|r| r.file.clone());
        assert_eq!(
            route.as_deref(),
            Some(format!("routes/s{i}/index.get.rs").as_str())
        );
        let found = table.find("POST", &format!("/s{i}/7"));
        assert_eq!(
            found.route().map(|r| r.file.as_str()),
            Some(format!("routes/s{i}/[id].post.rs").as_str())
        );
        // GET /sN/7 has only a POST route: falls through to the root catch-all.
        let found = table.find("GET", &format!("/s{i}/7"));
        assert_eq!(
            found.route().map(|r| r.file.as_str()),
            Some("routes/[...].rs")
        );
        let Match::Found { params, .. } = table.find("PUT", &format!("/s{i}/7/edit/a/b")) else {
            panic!("s{i}: no match")
        };
        assert_eq!(
            params,
            [
                ("id".to_owned(), "7".to_owned()),
                ("rest".to_owned(), "a/b".to_owned())
            ]
        );
    }
}

#[test]
fn table_accessors() {
    let table =
        RouteTable::from_files(["b.rs", "a/[id].get.rs", "_ws.rs"], &ScanOptions::default())
            .unwrap();
    assert!(!table.is_empty());
    assert_eq!(table.len(), 3);
    let files: Vec<&str> = table.routes().iter().map(|r| r.file.as_str()).collect();
    assert_eq!(
        files,
        ["routes/_ws.rs", "routes/a/[id].get.rs", "routes/b.rs"]
    );
    let patterns: Vec<&str> = table.routes().iter().map(|r| r.pattern.as_str()).collect();
    assert_eq!(patterns, ["/_ws", "/a/:id", "/b"]);
    assert!(RouteTable::default().is_empty());
}
