//! File routing for nitro: turns the files of a project's `routes/` folder
//! into a [`RouteTable`], and finds the route for a request.
//!
//! ```
//! use nitro_router::{Match, Method, RouteTable, ScanOptions};
//!
//! let table = RouteTable::from_files(
//!     ["index.rs", "users/[id].get.rs", "users/[id].post.rs", "blog/[...slug].rs", "_ws.rs"],
//!     &ScanOptions::default(),
//! )?;
//!
//! let Match::Found { route, params } = table.find("GET", "/users/42") else { panic!() };
//! assert_eq!(route.file, "routes/users/[id].get.rs");
//! assert_eq!(route.pattern, "/users/:id");
//! assert_eq!(params, [("id".to_owned(), "42".to_owned())]);
//!
//! let Match::Found { route, params } = table.find("GET", "/blog/2024/hello%20world") else { panic!() };
//! assert_eq!(route.file, "routes/blog/[...slug].rs");
//! assert_eq!(params, [("slug".to_owned(), "2024/hello world".to_owned())]);
//!
//! assert_eq!(
//!     table.find("DELETE", "/users/42"),
//!     Match::MethodNotAllowed { allow: vec![Method::Get, Method::Post, Method::Head] },
//! );
//! assert_eq!(table.find("GET", "/nope"), Match::NotFound);
//! # Ok::<(), nitro_router::ScanError>(())
//! ```
//!
//! [`scan`] reads the file names from disk and is the only function that
//! touches the file system; [`RouteTable::from_files`] does the rest and
//! is pure. The crate never prints. The user guide is `docs/routing.md`.
//!
//! # File names
//!
//! A route file path, relative to `routes/`, becomes a route like this:
//!
//! 1. Files whose name does not end in `.rs`, and anything whose name starts
//!    with `.`, are not routes.
//! 2. `.rs` is stripped. If the rest ends in `.get`, `.post`, `.put`,
//!    `.patch`, `.delete`, `.head` or `.options` (lower case), that part is
//!    stripped too and the route only answers that method
//!    ([`Route::method`]); otherwise it answers any method. Only the last
//!    dot-part counts: `x.y.rs` is the segment `x.y`.
//! 3. Each folder is a segment, except `(group)` folders, which add none.
//! 4. The file name is the last segment, except `index`, which adds none
//!    (`users/index.rs` is `/users`), and `_ws`, which makes a WebSocket
//!    route ([`RouteKind::WebSocket`]) at the folder's path plus `/_ws`.
//!    A WebSocket route has no method suffix and answers any method.
//! 5. A segment is either plain text ([`Segment::Static`]), or exactly one
//!    `[name]` (a [`Segment::Param`] matching one URL segment), or exactly
//!    one `[...name]` (a [`Segment::CatchAll`] matching one or more URL
//!    segments; `[...]` is named `_`). Names use ASCII letters, digits, `_`
//!    and `-`. A catch-all must be the last segment, and a route cannot use
//!    a name twice.
//! 6. No two files may claim the same route for the same method (or both
//!    for any method). Params compare equal whatever their names, so
//!    `[id].rs` and `[name].rs` in one folder conflict, and so do
//!    `users.rs` and `users/index.rs`, or `(a)/x.rs` and `(b)/x.rs`.
//!
//! Every mistake is a [`Problem`] naming the file and saying what to write
//! instead; all of them are reported at once in a [`ScanError`].
//!
//! # Matching
//!
//! [`RouteTable::find`] takes the method and the URL path (percent-encoded,
//! without the query):
//!
//! - The path is split at `/`; empty segments are ignored, so a trailing
//!   slash and doubled slashes make no difference. Each segment is
//!   percent-decoded once (UTF-8, invalid bytes replaced) before it is
//!   compared with static names (`/caf%C3%A9` matches `café.rs`) or
//!   captured as a param. Matching is case-sensitive. `.` and `..` are
//!   ordinary segments: they are not resolved, and a param can capture them.
//! - At each segment a static name is tried first, then a param, then a
//!   catch-all, depth-first with backtracking: when a branch has no route
//!   that accepts the request, the next one is tried.
//! - Among the routes of one path, a route for the request's method wins
//!   over a route for any method; for `HEAD`, a `.get` route is taken when
//!   the path has no route for `HEAD` or for any method.
//! - If the best path has no route for the method, lower-priority paths are
//!   tried (`api/users.post.rs` and `api/[...].rs`: `GET /api/users` is the
//!   catch-all's). Only when no path has a route for the method, but some
//!   path matched, the result is [`Match::MethodNotAllowed`] with every
//!   method those routes accept (plus `HEAD` with `GET`).
//! - A catch-all needs at least one segment: `/blog` does not match
//!   `blog/[...slug].rs`, and `/` does not match `[...].rs` (`index.rs`
//!   serves `/`).
//!
//! The table is a trie of segments, so finding a route costs about the
//! depth of the path, whatever the number of routes.
//!
//! # Middleware
//!
//! The `*.rs` files directly in the project's `middleware/` folder (not in
//! its subfolders, which may hold modules they share) are middleware:
//! [`RouteTable::from_project_files`] adds them to the table as routes of
//! kind [`RouteKind::Middleware`], file `middleware/<name>.rs`, pattern `*`,
//! in byte-wise file-name order ([`RouteTable::middleware`]): the order the
//! server runs them in. They are built and loaded like routes, and never
//! matched by [`RouteTable::find`].
//!
//! ```
//! use nitro_router::{RouteTable, ScanOptions};
//!
//! let table = RouteTable::from_project_files(
//!     ["index.rs"],
//!     ["2.log.rs", "10.cors.rs", "1.auth.rs"],
//!     &ScanOptions::default(),
//! )?;
//! let order: Vec<&str> = table.middleware().iter().map(|m| m.file.as_str()).collect();
//! assert_eq!(order, ["middleware/1.auth.rs", "middleware/10.cors.rs", "middleware/2.log.rs"]);
//! assert_eq!(table.len(), 4);
//! # Ok::<(), nitro_router::ScanError>(())
//! ```
//!
//! # Plugins
//!
//! The `*.rs` files directly in `plugins/` are plugins, added the same way by
//! [`RouteTable::from_project`] as routes of kind [`RouteKind::Plugin`], file
//! `plugins/<name>.rs`, in byte-wise file-name order ([`RouteTable::plugins`]):
//! the order their `setup` runs in. They are built and loaded like routes,
//! and never matched.
//!
//! ```
//! use nitro_router::{ProjectFolders, RouteTable, ScanOptions};
//!
//! let folders = ProjectFolders {
//!     plugins: vec!["2.cache.rs".into(), "1.db.rs".into()],
//!     ..ProjectFolders::default()
//! };
//! let table = RouteTable::from_project(["index.rs"], &folders, &ScanOptions::default())?;
//! let order: Vec<&str> = table.plugins().iter().map(|p| p.file.as_str()).collect();
//! assert_eq!(order, ["plugins/1.db.rs", "plugins/2.cache.rs"]);
//! assert!(table.middleware().is_empty());
//! # Ok::<(), nitro_router::ScanError>(())
//! ```

mod error;
mod method;
mod parse;
mod scan;
mod table;

use std::fmt;

pub use error::{Problem, ScanError};
pub use method::{Method, UnknownMethod};
pub use scan::scan;
pub use table::{Match, RouteTable};

/// What `nitro.toml` says about routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// `[features] websocket`: whether `_ws.rs` files are allowed.
    /// Default `true`.
    pub websocket: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { websocket: true }
    }
}

/// One route file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The file, relative to the project folder: `routes/users/[id].get.rs`.
    pub file: String,
    /// The route in Nitro's notation, for display: `/users/:id`,
    /// `/blog/**:slug`, `/**` (unnamed catch-all), `/_ws`, `/`.
    pub pattern: String,
    /// The method the route answers, or `None` for any method (always `None`
    /// for a WebSocket route).
    pub method: Option<Method>,
    pub kind: RouteKind,
    /// The route's path, one entry per URL segment it matches (a catch-all:
    /// one or more).
    pub segments: Vec<Segment>,
}

/// Whether a route answers HTTP requests or WebSocket upgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// An ordinary route file.
    Http,
    /// A `_ws.rs` file. It matches any method; the server decides between
    /// the upgrade and `426 Upgrade Required`.
    WebSocket,
    /// A file of `middleware/` (not `routes/`): it runs before every
    /// request and is never matched by [`RouteTable::find`]. See
    /// [`RouteTable::middleware`].
    Middleware,
    /// A file of `plugins/`: its `setup` runs before the server listens, its
    /// `shutdown` after it stopped. Never matched by [`RouteTable::find`]. See
    /// [`RouteTable::plugins`].
    Plugin,
    /// A file of `tasks/`: a task run on a schedule or by `nitro task run`,
    /// named by its file stem. Never matched by [`RouteTable::find`]. See
    /// [`RouteTable::tasks`].
    Task,
}

/// The files of a project's flat folders, each relative to its folder (`"01.auth.rs"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFolders {
    /// `middleware/`.
    pub middleware: Vec<String>,
    /// `plugins/`.
    pub plugins: Vec<String>,
    /// `tasks/`.
    pub tasks: Vec<String>,
}

/// The name of the task in `file` (`tasks/cleanup.rs` is `cleanup`), or `None` when `file`
/// is not directly in `tasks/`.
pub fn task_name(file: &str) -> Option<&str> {
    let name = file.strip_prefix("tasks/")?.strip_suffix(".rs")?;
    (!name.contains('/') && !name.is_empty()).then_some(name)
}

/// One part of a route's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Plain text, matched exactly (after percent-decoding the request).
    Static(String),
    /// `[name]`: any one segment.
    Param(String),
    /// `[...name]`: one or more segments; `[...]` is named `_`.
    CatchAll(String),
}

impl fmt::Display for Segment {
    /// The segment in Nitro's notation: `users`, `:id`, `**:slug`, `**`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Static(name) => f.write_str(name),
            Segment::Param(name) => write!(f, ":{name}"),
            Segment::CatchAll(name) if name == "_" => f.write_str("**"),
            Segment::CatchAll(name) => write!(f, "**:{name}"),
        }
    }
}
