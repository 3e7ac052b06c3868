//! The route table: a segment trie built once, walked per request.
//!
//! Each trie node has static children (looked up by the decoded segment),
//! at most one param child (params match whatever their names, so `[id]` and
//! `[name]` in one folder share a node), the routes that end at the node, and
//! the catch-all routes that start at it. A request walks the trie depth-first
//! in priority order, static, then param, then catch-all, backtracking when a
//! branch has no route for the request. The cost is proportional to the depth
//! of the path (times the rare backtracking), not to the number of routes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use crate::parse::{is_route_file, parse_file};
use crate::{Method, Problem, ProjectFolders, Route, RouteKind, ScanError, ScanOptions, Segment};

/// All the routes of a project, ready to match requests.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Sorted by file: the middleware first, then the plugins, then the routes.
    routes: Vec<Route>,
    /// How many of `routes` are middleware.
    middleware: usize,
    /// How many of `routes` are plugins (right after the middleware: `plugins/…` sorts
    /// between `middleware/…` and `routes/…`).
    plugins: usize,
    /// How many of `routes` are tasks (the last ones: `tasks/…` sorts after `routes/…`).
    tasks: usize,
    root: Node,
}

/// The result of [`RouteTable::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    /// A route accepts the request.
    Found {
        route: &'a Route,
        /// Each param and catch-all of the route, in path order, with its
        /// percent-decoded value. A catch-all's value is its decoded
        /// segments joined by `/`.
        params: Vec<(String, String)>,
    },
    /// Routes exist for the path, but none for the request's method.
    MethodNotAllowed {
        /// Every method those routes accept, sorted in [`Method`] order and
        /// deduplicated, with `HEAD` added when `GET` is there: the value of
        /// an `Allow` header.
        allow: Vec<Method>,
    },
    /// No route matches the path.
    NotFound,
}

impl Match<'_> {
    /// The matched route, if any.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Match::Found { route, .. } => Some(route),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Node {
    statics: BTreeMap<String, Node>,
    param: Option<Box<Node>>,
    /// Routes whose path ends here (indices into `RouteTable::routes`).
    ends: Vec<usize>,
    /// Catch-all routes that take the rest of the path from here.
    catch_alls: Vec<usize>,
}

impl RouteTable {
    /// Builds a table from route file paths, relative to `routes/` and
    /// `/`-separated: `"index.rs"`, `"users/[id].get.rs"`.
    ///
    /// Touches no file. Paths that do not end in `.rs`, or that have a part
    /// starting with `.`, are ignored, as [`scan`](crate::scan) ignores them;
    /// empty parts (`a//b.rs`) are dropped and duplicates are merged.
    /// Every problem with every file is collected into the error.
    pub fn from_files<I, S>(files: I, options: &ScanOptions) -> Result<RouteTable, ScanError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RouteTable::from_project_files(files, std::iter::empty::<&str>(), options)
    }

    /// [`from_files`](RouteTable::from_files) plus the files of `middleware/`, relative to
    /// it (`"01.auth.rs"`). Names that are not `*.rs` or start with `.` are ignored; a name
    /// with a `/` (a file in a subfolder) is a problem.
    pub fn from_project_files<I, S, M, T>(
        files: I,
        middleware: M,
        options: &ScanOptions,
    ) -> Result<RouteTable, ScanError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        M: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let folders = ProjectFolders {
            middleware: middleware
                .into_iter()
                .map(|name| name.as_ref().to_owned())
                .collect(),
            ..ProjectFolders::default()
        };
        RouteTable::from_project(files, &folders, options)
    }

    /// [`from_files`](RouteTable::from_files) plus the files of the project's flat folders
    /// (`middleware/`, `plugins/`), each relative to its folder. Names that are not `*.rs` or
    /// start with `.` are ignored; a name with a `/` (a file in a subfolder) is a problem.
    pub fn from_project<I, S>(
        files: I,
        folders: &ProjectFolders,
        options: &ScanOptions,
    ) -> Result<RouteTable, ScanError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = Vec::new();
        let mut routes = Vec::new();
        folder_entries(
            "middleware",
            RouteKind::Middleware,
            &folders.middleware,
            &mut routes,
            &mut problems,
        );
        let middleware = routes.len();
        folder_entries(
            "plugins",
            RouteKind::Plugin,
            &folders.plugins,
            &mut routes,
            &mut problems,
        );
        let plugins = routes.len() - middleware;
        let skip = routes.len();

        let mut rels: Vec<String> = files
            .into_iter()
            .map(|file| {
                file.as_ref()
                    .split('/')
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .filter(|rel| is_route_file(rel))
            .collect();
        rels.sort();
        rels.dedup();

        routes.reserve(rels.len());
        for rel in &rels {
            match parse_file(rel, options) {
                Ok(route) => routes.push(route),
                Err(found) => problems.extend(found),
            }
        }

        // `tasks/…` sorts after `routes/…`: the tasks go last, after the trie is built.
        let mut tasks = Vec::new();
        folder_entries(
            "tasks",
            RouteKind::Task,
            &folders.tasks,
            &mut tasks,
            &mut problems,
        );

        let mut root = Node::default();
        for (index, route) in routes.iter().enumerate().skip(skip) {
            if let Err(other) = root.insert(index, &route.segments, &routes) {
                let first = &routes[other];
                problems.push(Problem::Conflict {
                    first: first.file.clone(),
                    second: route.file.clone(),
                    pattern: first.pattern.clone(),
                    second_pattern: route.pattern.clone(),
                    method: route.method,
                });
            }
        }

        let task_count = tasks.len();
        routes.extend(tasks);
        if problems.is_empty() {
            Ok(RouteTable {
                routes,
                middleware,
                plugins,
                tasks: task_count,
                root,
            })
        } else {
            Err(ScanError::new(problems))
        }
    }

    /// Every route, sorted by file, the middleware and plugins first (they are built and
    /// loaded like routes).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The middleware, in the order they run (byte-wise by file name).
    pub fn middleware(&self) -> &[Route] {
        &self.routes[..self.middleware]
    }

    /// The plugins, in the order their `setup` runs (byte-wise by file name).
    pub fn plugins(&self) -> &[Route] {
        &self.routes[self.middleware..self.middleware + self.plugins]
    }

    /// The tasks, by file name (`tasks/cleanup.rs`; see [`task_name`](crate::task_name)).
    pub fn tasks(&self) -> &[Route] {
        &self.routes[self.routes.len() - self.tasks..]
    }

    /// The task named `name` (the file stem: `cleanup` is `tasks/cleanup.rs`).
    pub fn task(&self, name: &str) -> Option<&Route> {
        self.tasks()
            .iter()
            .find(|t| crate::task_name(&t.file) == Some(name))
    }

    /// Whether the table has no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Finds the route for a request.
    ///
    /// `method` is the request method as sent (`"GET"`; methods are
    /// case-sensitive and a method outside [`Method`] only matches routes
    /// without a method suffix). `path` is the URL path, still
    /// percent-encoded, without the query string.
    ///
    /// The rules are in the [crate documentation](crate#matching).
    pub fn find(&self, method: &str, path: &str) -> Match<'_> {
        let method = Method::ALL.into_iter().find(|m| m.as_str() == method);
        let segments: Vec<Cow<'_, str>> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| percent_decode_str(segment).decode_utf8_lossy())
            .collect();

        let mut search = Search {
            routes: &self.routes,
            segments: &segments,
            method,
            allow: Vec::new(),
        };
        match search.node(&self.root, 0) {
            Some(index) => {
                let route = &self.routes[index];
                Match::Found {
                    route,
                    params: params(route, &segments),
                }
            }
            None if search.allow.is_empty() => Match::NotFound,
            None => {
                let mut allow = search.allow;
                if allow.contains(&Method::Get) {
                    allow.push(Method::Head);
                }
                allow.sort();
                allow.dedup();
                Match::MethodNotAllowed { allow }
            }
        }
    }
}

impl Node {
    /// Adds route `index`; on a conflict returns the route already there.
    fn insert(
        &mut self,
        index: usize,
        segments: &[Segment],
        routes: &[Route],
    ) -> Result<(), usize> {
        let mut node = self;
        for segment in segments {
            node = match segment {
                Segment::Static(name) => node.statics.entry(name.clone()).or_default(),
                Segment::Param(_) => &mut **node.param.get_or_insert_with(Default::default),
                // A catch-all is always last (checked when parsing).
                Segment::CatchAll(_) => return claim(&mut node.catch_alls, index, routes),
            };
        }
        claim(&mut node.ends, index, routes)
    }
}

/// Adds route `index` to routes of one path, unless one of them already has
/// its method. A WebSocket route has no method: it answers any, like a route
/// without a method suffix, and the server decides between upgrade and 426.
fn claim(same_path: &mut Vec<usize>, index: usize, routes: &[Route]) -> Result<(), usize> {
    let method = routes[index].method;
    match same_path
        .iter()
        .find(|&&other| routes[other].method == method)
    {
        Some(&other) => Err(other),
        None => {
            same_path.push(index);
            Ok(())
        }
    }
}

/// One request's walk through the trie.
struct Search<'r, 's> {
    routes: &'r [Route],
    segments: &'s [Cow<'s, str>],
    /// `None`: a method outside [`Method`].
    method: Option<Method>,
    /// The methods of routes that matched the path but not the method.
    allow: Vec<Method>,
}

impl Search<'_, '_> {
    /// The route for the rest of the path from `node`, at segment `at`.
    fn node(&mut self, node: &Node, at: usize) -> Option<usize> {
        let Some(segment) = self.segments.get(at) else {
            return self.pick(&node.ends);
        };
        if let Some(child) = node.statics.get(segment.as_ref())
            && let Some(found) = self.node(child, at + 1)
        {
            return Some(found);
        }
        if let Some(child) = &node.param
            && let Some(found) = self.node(child, at + 1)
        {
            return Some(found);
        }
        // At least one segment is left here, as a catch-all needs.
        self.pick(&node.catch_alls)
    }

    /// Among routes with the same path, the one for the method: an exact
    /// method, else a route for any method, else for HEAD a GET route.
    fn pick(&mut self, candidates: &[usize]) -> Option<usize> {
        let accepts = |want: Option<Method>| {
            candidates
                .iter()
                .copied()
                .find(|&index| self.routes[index].method == want)
        };
        if let Some(method) = self.method
            && let Some(found) = accepts(Some(method))
        {
            return Some(found);
        }
        if let Some(found) = accepts(None) {
            return Some(found);
        }
        if self.method == Some(Method::Head)
            && let Some(found) = accepts(Some(Method::Get))
        {
            return Some(found);
        }
        self.allow.extend(
            candidates
                .iter()
                .filter_map(|&index| self.routes[index].method),
        );
        None
    }
}

/// The route's params with their values from the request's segments.
fn params(route: &Route, segments: &[Cow<'_, str>]) -> Vec<(String, String)> {
    route
        .segments
        .iter()
        .zip(0..)
        .filter_map(|(segment, at)| match segment {
            Segment::Static(_) => None,
            Segment::Param(name) => Some((name.clone(), segments[at].clone().into_owned())),
            Segment::CatchAll(name) => Some((name.clone(), segments[at..].join("/"))),
        })
        .collect()
}

/// The files of one flat project folder (`middleware/`, `plugins/`, `tasks/`) as table entries of `kind`,
/// by file name: pattern `*`, never in the trie.
fn folder_entries(
    folder: &str,
    kind: RouteKind,
    names: &[String],
    routes: &mut Vec<Route>,
    problems: &mut Vec<Problem>,
) {
    let mut names: Vec<&String> = names.iter().filter(|name| is_route_file(name)).collect();
    names.sort();
    names.dedup();
    for name in names {
        let file = format!("{folder}/{name}");
        if name.contains('/') {
            problems.push(match kind {
                RouteKind::Middleware => Problem::NestedMiddleware { file },
                _ => Problem::NestedFile {
                    file,
                    folder: folder.to_owned(),
                },
            });
            continue;
        }
        routes.push(Route {
            file,
            pattern: "*".to_owned(),
            method: None,
            kind,
            segments: Vec::new(),
        });
    }
}
