//! One route file's path → one [`Route`], or the problems with its name.

use crate::{Method, Problem, Route, RouteKind, ScanOptions, Segment};

/// Whether `rel` (relative to `routes/`, `/`-separated) names a route file:
/// it ends in `.rs` and no part of it starts with `.`.
pub(crate) fn is_route_file(rel: &str) -> bool {
    rel.ends_with(".rs") && !rel.split('/').any(|part| part.starts_with('.'))
}

/// Parses one route file. `rel` is relative to `routes/`, `/`-separated,
/// without empty parts, and passes [`is_route_file`].
pub(crate) fn parse_file(rel: &str, options: &ScanOptions) -> Result<Route, Vec<Problem>> {
    let file = format!("routes/{rel}");
    let parts: Vec<&str> = rel.split('/').collect();
    let (file_name, folders) = parts.split_last().expect("split yields at least one part");
    let stem = file_name
        .strip_suffix(".rs")
        .expect("route files end in .rs");
    let (stem, method) = split_method(stem);

    let mut problems = Vec::new();
    // Each segment with the index of the path part it came from, for suggestions.
    let mut segments: Vec<(Segment, usize)> = Vec::new();

    for (index, folder) in folders.iter().enumerate() {
        if is_group(folder) {
            continue;
        }
        let place = Place {
            file: &file,
            folder: Some(folder),
            suffix: "",
        };
        match parse_segment(folder, &place) {
            Ok(segment) => segments.push((segment, index)),
            Err(problem) => problems.push(problem),
        }
    }

    let kind = if stem == "_ws" {
        RouteKind::WebSocket
    } else {
        RouteKind::Http
    };
    let last = folders.len();
    match stem {
        "index" => {}
        "_ws" => segments.push((Segment::Static("_ws".to_owned()), last)),
        _ => {
            let place = Place {
                file: &file,
                folder: None,
                suffix: &file_name[stem.len()..],
            };
            match parse_segment(stem, &place) {
                Ok(segment) => segments.push((segment, last)),
                Err(problem) => problems.push(problem),
            }
        }
    }

    // Checks across segments only make sense once every segment parsed.
    let segments_parsed = problems.is_empty();

    if kind == RouteKind::WebSocket {
        if let Some(method) = method {
            problems.push(Problem::WebSocketMethod {
                file: file.clone(),
                method,
                suggestion: "_ws.rs".to_owned(),
            });
        }
        if !options.websocket {
            problems.push(Problem::WebSocketDisabled { file: file.clone() });
        }
    }

    if segments_parsed {
        let catch_all = segments[..segments.len().saturating_sub(1)]
            .iter()
            .find(|(segment, _)| matches!(segment, Segment::CatchAll(_)));
        if let Some((_, index)) = catch_all {
            problems.push(Problem::CatchAllNotLast {
                file: file.clone(),
                segment: parts[*index].to_owned(),
                suggestion: format!("routes/{}.rs", parts[..=*index].join("/")),
            });
        }

        let mut seen: Vec<&str> = Vec::new();
        let mut reported: Vec<&str> = Vec::new();
        for (segment, _) in &segments {
            if let Segment::Param(name) | Segment::CatchAll(name) = segment {
                if seen.contains(&name.as_str()) && !reported.contains(&name.as_str()) {
                    problems.push(Problem::DuplicateParam {
                        file: file.clone(),
                        name: name.clone(),
                    });
                    reported.push(name);
                }
                seen.push(name);
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let segments: Vec<Segment> = segments.into_iter().map(|(segment, _)| segment).collect();
    Ok(Route {
        file,
        pattern: pattern(&segments),
        // A WebSocket file with a method was rejected above.
        method,
        kind,
        segments,
    })
}

/// Splits a method suffix off a file stem: `[id].get` → (`[id]`, GET).
/// Only the last dot-part counts, and only the seven lower-case names.
fn split_method(stem: &str) -> (&str, Option<Method>) {
    if let Some((head, tail)) = stem.rsplit_once('.')
        && !head.is_empty()
        && let Some(method) = Method::from_suffix(tail)
    {
        return (head, Some(method));
    }
    (stem, None)
}

/// `(name)` folders group files without adding a segment.
fn is_group(folder: &str) -> bool {
    folder.len() >= 2 && folder.starts_with('(') && folder.ends_with(')')
}

/// The display form of a route: `/users/:id`, `/blog/**:slug`, `/**`.
fn pattern(segments: &[Segment]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    segments.iter().map(|s| format!("/{s}")).collect()
}

/// Where a segment comes from, for messages.
struct Place<'a> {
    /// `routes/...`
    file: &'a str,
    /// The folder the segment is, or `None` for the file name.
    folder: Option<&'a str>,
    /// What follows the segment in the path part: `.get.rs`, `.rs`, or
    /// nothing for a folder.
    suffix: &'a str,
}

impl Place<'_> {
    fn file(&self) -> String {
        self.file.to_owned()
    }

    fn folder(&self) -> Option<String> {
        self.folder.map(str::to_owned)
    }

    /// The whole path part with `segment` in it: a suggested replacement,
    /// or the part as written.
    fn suggest(&self, segment: &str) -> String {
        format!("{segment}{}", self.suffix)
    }
}

enum Piece<'a> {
    Text,
    Param(&'a str),
}

/// Parses one folder name or file stem (method suffix removed) into a segment.
fn parse_segment(name: &str, place: &Place<'_>) -> Result<Segment, Problem> {
    if !name.contains(['[', ']']) {
        return Ok(Segment::Static(name.to_owned()));
    }

    if name.len() > 4 && name.starts_with("[[") && name.ends_with("]]") {
        let inner = &name[2..name.len() - 2];
        return Err(Problem::OptionalSegment {
            file: place.file(),
            folder: place.folder(),
            segment: name.to_owned(),
            suggestion: place.suggest(&suggest_param(inner)),
        });
    }

    let mut pieces = Vec::new();
    let mut rest = name;
    loop {
        match (rest.find('['), rest.find(']')) {
            (None, None) => {
                if !rest.is_empty() {
                    pieces.push(Piece::Text);
                }
                break;
            }
            (Some(open), Some(close)) if open < close => {
                if open > 0 {
                    pieces.push(Piece::Text);
                }
                pieces.push(Piece::Param(&rest[open + 1..close]));
                rest = &rest[close + 1..];
            }
            (Some(open), None) => {
                return Err(Problem::UnclosedBracket {
                    file: place.file(),
                    folder: place.folder(),
                    suggestion: place.suggest(&suggest_param(&rest[open..])),
                });
            }
            (_, Some(_)) => {
                return Err(Problem::StrayBracket {
                    file: place.file(),
                    folder: place.folder(),
                    suggestion: place.suggest(&suggest_param(name)),
                });
            }
        }
    }

    let params: Vec<&str> = pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Param(inner) => Some(*inner),
            Piece::Text => None,
        })
        .collect();
    if pieces.len() > 1 {
        let suggestion = params
            .iter()
            .map(|inner| suggest_param(inner))
            .collect::<Vec<_>>()
            .join("/");
        return Err(Problem::MixedSegment {
            file: place.file(),
            folder: place.folder(),
            segment: place.suggest(name),
            suggestion: place.suggest(&suggestion),
        });
    }

    let inner = params[0];
    let (name, catch_all) = match inner.strip_prefix("...") {
        Some(name) => (name, true),
        None => (inner, false),
    };
    if inner.is_empty() {
        return Err(Problem::EmptyParam {
            file: place.file(),
            folder: place.folder(),
            suggestion: place.suggest("[id]"),
        });
    }
    if catch_all && name.is_empty() {
        return Ok(Segment::CatchAll("_".to_owned()));
    }
    if !is_param_name(name) {
        return Err(Problem::InvalidParamName {
            file: place.file(),
            folder: place.folder(),
            name: name.to_owned(),
            suggestion: place.suggest(&suggest_param(inner)),
        });
    }
    Ok(if catch_all {
        Segment::CatchAll(name.to_owned())
    } else {
        Segment::Param(name.to_owned())
    })
}

fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The param the user most likely meant by `raw`: brackets dropped, a
/// leading `...` kept, other characters outside the name alphabet turned
/// into `_` (as Nitro does).
fn suggest_param(raw: &str) -> String {
    let raw: String = raw.chars().filter(|c| *c != '[' && *c != ']').collect();
    let (prefix, name) = match raw.strip_prefix("...") {
        Some(name) => ("...", name),
        None => ("", raw.as_str()),
    };
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() && prefix.is_empty() {
        "id".to_owned()
    } else {
        name
    };
    format!("[{prefix}{name}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rel: &str) -> Route {
        match parse_file(rel, &ScanOptions::default()) {
            Ok(route) => route,
            Err(problems) => panic!("{rel}: {problems:?}"),
        }
    }

    fn err(rel: &str) -> Vec<String> {
        match parse_file(rel, &ScanOptions::default()) {
            Ok(route) => panic!("{rel}: expected an error, got {route:?}"),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    fn s(name: &str) -> Segment {
        Segment::Static(name.into())
    }
    fn p(name: &str) -> Segment {
        Segment::Param(name.into())
    }
    fn c(name: &str) -> Segment {
        Segment::CatchAll(name.into())
    }

    #[test]
    fn route_file_filter() {
        assert!(is_route_file("index.rs"));
        assert!(is_route_file("a/b/[id].get.rs"));
        assert!(!is_route_file("index.ts"));
        assert!(!is_route_file("README.md"));
        assert!(!is_route_file(".index.rs"));
        assert!(!is_route_file(".git/x.rs"));
        assert!(!is_route_file("a/.#b.rs"));
        assert!(!is_route_file("a.rs.swp"));
        assert!(!is_route_file("a.rs~"));
    }

    #[test]
    fn segments_and_patterns() {
        let cases: &[(&str, &str, &[Segment], Option<Method>)] = &[
            ("index.rs", "/", &[], None),
            ("index.get.rs", "/", &[], Some(Method::Get)),
            ("users/index.rs", "/users", &[s("users")], None),
            ("users.rs", "/users", &[s("users")], None),
            ("users/[id].rs", "/users/:id", &[s("users"), p("id")], None),
            (
                "users/[id].get.rs",
                "/users/:id",
                &[s("users"), p("id")],
                Some(Method::Get),
            ),
            (
                "[org]/[repo]/index.rs",
                "/:org/:repo",
                &[p("org"), p("repo")],
                None,
            ),
            (
                "blog/[...slug].rs",
                "/blog/**:slug",
                &[s("blog"), c("slug")],
                None,
            ),
            ("[...].rs", "/**", &[c("_")], None),
            ("[...]/index.rs", "/**", &[c("_")], None),
            ("(admin)/users.rs", "/users", &[s("users")], None),
            ("(a)/(b)/index.delete.rs", "/", &[], Some(Method::Delete)),
            ("x.y.rs", "/x.y", &[s("x.y")], None),
            ("x.y.post.rs", "/x.y", &[s("x.y")], Some(Method::Post)),
            ("icon.png.rs", "/icon.png", &[s("icon.png")], None),
            ("get.rs", "/get", &[s("get")], None),
            ("x.GET.rs", "/x.GET", &[s("x.GET")], None),
            ("x.trace.rs", "/x.trace", &[s("x.trace")], None),
            ("_private.rs", "/_private", &[s("_private")], None),
            ("index/index.rs", "/index", &[s("index")], None),
            ("(g).rs", "/(g)", &[s("(g)")], None),
            ("café.rs", "/café", &[s("café")], None),
            ("[user-id_2].rs", "/:user-id_2", &[p("user-id_2")], None),
            (
                "a/[...rest].options.rs",
                "/a/**:rest",
                &[s("a"), c("rest")],
                Some(Method::Options),
            ),
        ];
        for (rel, pattern, segments, method) in cases {
            let route = ok(rel);
            assert_eq!(route.file, format!("routes/{rel}"), "{rel}");
            assert_eq!(route.pattern, *pattern, "{rel}");
            assert_eq!(route.segments, *segments, "{rel}");
            assert_eq!(route.method, *method, "{rel}");
            assert_eq!(route.kind, RouteKind::Http, "{rel}");
        }
    }

    #[test]
    fn websocket_files() {
        for (rel, pattern) in [
            ("_ws.rs", "/_ws"),
            ("chat/_ws.rs", "/chat/_ws"),
            ("rooms/[room]/_ws.rs", "/rooms/:room/_ws"),
            ("(g)/_ws.rs", "/_ws"),
        ] {
            let route = ok(rel);
            assert_eq!(route.kind, RouteKind::WebSocket, "{rel}");
            assert_eq!(route.pattern, pattern, "{rel}");
            assert_eq!(route.method, None, "{rel}");
        }
        // Only a `_ws` file name makes a WebSocket route.
        assert_eq!(ok("_ws/index.rs").kind, RouteKind::Http);
        assert_eq!(ok("_wss.rs").kind, RouteKind::Http);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            (
                "[id.rs",
                "route file `routes/[id.rs` has an unclosed `[`: use `[id].rs`",
            ),
            (
                "[id.get.rs",
                "route file `routes/[id.get.rs` has an unclosed `[`: use `[id].get.rs`",
            ),
            (
                "[id/index.rs",
                "route file `routes/[id/index.rs` has an unclosed `[` in folder `[id`: use `[id]`",
            ),
            (
                "id].rs",
                "route file `routes/id].rs` has a stray `]`: use `[id].rs`",
            ),
            (
                "[id]].rs",
                "route file `routes/[id]].rs` has a stray `]`: use `[id].rs`",
            ),
            (
                "[...slug.rs",
                "route file `routes/[...slug.rs` has an unclosed `[`: use `[...slug].rs`",
            ),
            (
                "[].rs",
                "route file `routes/[].rs` has an empty param `[]`: name it, e.g. `[id].rs`",
            ),
            (
                "[user id].rs",
                "route file `routes/[user id].rs` has an invalid param name `user id`: use ASCII letters, digits, `_` and `-`, e.g. `[user_id].rs`",
            ),
            (
                "[...a.b].rs",
                "route file `routes/[...a.b].rs` has an invalid param name `a.b`: use ASCII letters, digits, `_` and `-`, e.g. `[...a_b].rs`",
            ),
            (
                "[[...slug]].rs",
                "route file `routes/[[...slug]].rs` uses the optional segment `[[...slug]]`, which is not supported: use `[...slug].rs` plus an `index.rs` beside it for the path without the segment",
            ),
            (
                "[a]-[b].rs",
                "route file `routes/[a]-[b].rs` mixes text and params in the segment `[a]-[b].rs`: a segment is plain text or exactly one `[param]`; use `[a]/[b].rs` and split the value in the handler if needed",
            ),
            (
                "files/[name].[ext].rs",
                "route file `routes/files/[name].[ext].rs` mixes text and params in the segment `[name].[ext].rs`: a segment is plain text or exactly one `[param]`; use `[name]/[ext].rs` and split the value in the handler if needed",
            ),
            (
                "user-[id]/index.rs",
                "route file `routes/user-[id]/index.rs` mixes text and params in the segment `user-[id]`: a segment is plain text or exactly one `[param]`; use `[id]` and split the value in the handler if needed",
            ),
            (
                "docs/[...path]/edit.rs",
                "route file `routes/docs/[...path]/edit.rs` has the catch-all `[...path]` before other segments: a catch-all must be last; use `routes/docs/[...path].rs` and route on its value in the handler",
            ),
            (
                "[...]/_ws.rs",
                "route file `routes/[...]/_ws.rs` has the catch-all `[...]` before other segments: a catch-all must be last; use `routes/[...].rs` and route on its value in the handler",
            ),
            (
                "[id]/[id].rs",
                "route file `routes/[id]/[id].rs` uses the param name `id` twice: rename one of them",
            ),
            (
                "_ws.get.rs",
                "route file `routes/_ws.get.rs` is a WebSocket route and cannot have the method suffix `.get`: use `_ws.rs`",
            ),
        ];
        for (rel, message) in cases {
            assert_eq!(err(rel), [*message], "{rel}");
        }
    }

    #[test]
    fn every_bad_segment_is_reported() {
        assert_eq!(
            err("[a/[b/[].rs"),
            [
                "route file `routes/[a/[b/[].rs` has an unclosed `[` in folder `[a`: use `[a]`",
                "route file `routes/[a/[b/[].rs` has an unclosed `[` in folder `[b`: use `[b]`",
                "route file `routes/[a/[b/[].rs` has an empty param `[]`: name it, e.g. `[id].rs`",
            ]
        );
    }

    #[test]
    fn websocket_problems_do_not_hide_others() {
        let options = ScanOptions { websocket: false };
        let problems: Vec<String> = parse_file("[...]/_ws.get.rs", &options)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("cannot have the method suffix `.get`"));
        assert!(problems[1].contains("WebSocket support is off"));
        assert!(problems[2].contains("has the catch-all `[...]` before other segments"));
    }

    #[test]
    fn websocket_disabled() {
        let options = ScanOptions { websocket: false };
        let problems = parse_file("chat/_ws.rs", &options).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "route file `routes/chat/_ws.rs` is a WebSocket route but WebSocket support is off: set `[features] websocket = true` in `nitro.toml` or remove the file"
        );
        // Other files are not affected.
        assert!(parse_file("chat/_ws/index.rs", &options).is_ok());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_param("id"), "[id]");
        assert_eq!(suggest_param("[id"), "[id]");
        assert_eq!(suggest_param("...slug"), "[...slug]");
        assert_eq!(suggest_param("..."), "[...]");
        assert_eq!(suggest_param(""), "[id]");
        assert_eq!(suggest_param("a b.c"), "[a_b_c]");
    }
}
