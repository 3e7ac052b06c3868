//! What can be wrong with a `routes/` folder.

use std::path::PathBuf;

use crate::Method;

/// Everything wrong with a `routes/` folder, found in one pass.
///
/// [`scan`](crate::scan) and [`RouteTable::from_files`](crate::RouteTable::from_files)
/// do not stop at the first mistake: every problem is listed, so that a user
/// can fix them all in one go. `Display` prints one problem per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.problems))]
pub struct ScanError {
    problems: Vec<Problem>,
}

impl ScanError {
    /// Wraps a non-empty list of problems.
    pub(crate) fn new(problems: Vec<Problem>) -> ScanError {
        debug_assert!(!problems.is_empty());
        ScanError { problems }
    }

    /// Every problem found, at least one: I/O problems first, then problems
    /// of single files in file order, then conflicts between files.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Takes the problems out.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where in a route file's path a mistake sits: nothing for the file name,
/// the folder otherwise.
fn at(folder: &Option<String>) -> String {
    match folder {
        Some(folder) => format!(" in folder `{folder}`"),
        None => String::new(),
    }
}

fn claim(pattern: &str, method: &Option<Method>) -> String {
    match method {
        Some(method) => format!("`{method} {pattern}`"),
        None => format!("`{pattern}` (any method)"),
    }
}

fn same_route(first: &str, second: &str) -> String {
    if first == second {
        String::new()
    } else {
        format!(" (`{second}` is the same route: params match whatever their names)")
    }
}

/// One mistake in a `routes/` folder.
///
/// File names are relative to the project folder (`routes/users/[id].rs`).
/// Where a mistake is in a folder name rather than the file name, `folder`
/// names that folder. `suggestion` is what to write instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// `[id.rs`: a `[` without its `]`.
    #[error("route file `{file}` has an unclosed `[`{}: use `{suggestion}`", at(.folder))]
    UnclosedBracket {
        file: String,
        folder: Option<String>,
        suggestion: String,
    },

    /// `id].rs`: a `]` without a `[` before it.
    #[error("route file `{file}` has a stray `]`{}: use `{suggestion}`", at(.folder))]
    StrayBracket {
        file: String,
        folder: Option<String>,
        suggestion: String,
    },

    /// `[].rs`: a param without a name.
    #[error("route file `{file}` has an empty param `[]`{}: name it, e.g. `{suggestion}`", at(.folder))]
    EmptyParam {
        file: String,
        folder: Option<String>,
        suggestion: String,
    },

    /// `[user id].rs`: a param name with characters other than ASCII
    /// letters, digits, `_` and `-`.
    #[error(
        "route file `{file}` has an invalid param name `{name}`{}: use ASCII letters, digits, `_` and `-`, e.g. `{suggestion}`",
        at(.folder)
    )]
    InvalidParamName {
        file: String,
        folder: Option<String>,
        name: String,
        suggestion: String,
    },

    /// `[[...slug]].rs` (or `[[id]].rs`): optional segments are not supported.
    #[error(
        "route file `{file}` uses the optional segment `{segment}`{}, which is not supported: use `{suggestion}` plus an `index.rs` beside it for the path without the segment",
        at(.folder)
    )]
    OptionalSegment {
        file: String,
        folder: Option<String>,
        segment: String,
        suggestion: String,
    },

    /// `[a]-[b].rs`, `[name].[ext].rs`, `user-[id].rs`: a segment is either
    /// plain text or exactly one param.
    #[error(
        "route file `{file}` mixes text and params in the segment `{segment}`: a segment is plain text or exactly one `[param]`; use `{suggestion}` and split the value in the handler if needed"
    )]
    MixedSegment {
        file: String,
        folder: Option<String>,
        segment: String,
        suggestion: String,
    },

    /// `[...path]/edit.rs`: a catch-all takes the rest of the URL, so nothing
    /// can follow it.
    #[error(
        "route file `{file}` has the catch-all `{segment}` before other segments: a catch-all must be last; use `{suggestion}` and route on its value in the handler"
    )]
    CatchAllNotLast {
        file: String,
        segment: String,
        suggestion: String,
    },

    /// `[id]/[id].rs`: one route cannot have two params of the same name.
    #[error("route file `{file}` uses the param name `{name}` twice: rename one of them")]
    DuplicateParam { file: String, name: String },

    /// `_ws.get.rs`: a WebSocket route answers the upgrade whatever the method.
    #[error(
        "route file `{file}` is a WebSocket route and cannot have the method suffix `.{}`: use `{suggestion}`",
        .method.suffix()
    )]
    WebSocketMethod {
        file: String,
        method: Method,
        suggestion: String,
    },

    /// A `_ws.rs` file while `[features] websocket = false`.
    #[error(
        "route file `{file}` is a WebSocket route but WebSocket support is off: set `[features] websocket = true` in `nitro.toml` or remove the file"
    )]
    WebSocketDisabled { file: String },

    /// Two files that serve the same path for the same method.
    #[error(
        "route files `{first}` and `{second}` both claim {}{}: remove or rename one of them",
        claim(.pattern, .method),
        same_route(.pattern, .second_pattern)
    )]
    Conflict {
        /// The file that sorts first.
        first: String,
        second: String,
        /// The route as `first` spells it.
        pattern: String,
        /// The route as `second` spells it (differs in param names only).
        second_pattern: String,
        /// `None`: both files answer any method.
        method: Option<Method>,
    },

    /// A file or folder in `routes/` that could not be read.
    #[error("cannot read `{}`: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A route file or folder whose name is not UTF-8, which no URL can name.
    #[error("the name of `{}` is not valid UTF-8: rename it", .path.display())]
    NonUtf8Name { path: PathBuf },

    /// A symbolic link to a folder that contains it, which would make the
    /// routes infinite.
    #[error("`{}` links back to its own parent folder `{}`: remove the link", .path.display(), .target.display())]
    SymlinkLoop { path: PathBuf, target: PathBuf },
    /// A middleware file in a subfolder of `middleware/`: only the files directly in it are
    /// middleware.
    #[error(
        "middleware file `{file}` is in a subfolder: move it directly into `middleware/` (subfolders hold modules the middleware share, never middleware)"
    )]
    NestedMiddleware { file: String },
    /// A file in a subfolder of a flat project folder (`plugins/`): only the files directly
    /// in it count.
    #[error(
        "file `{file}` is in a subfolder: move it directly into `{folder}/` (subfolders hold modules the files share)"
    )]
    NestedFile { file: String, folder: String },
}

impl Problem {
    /// The route files (relative to the project folder) that this problem is
    /// about: one, two for a [`Problem::Conflict`], none for I/O problems.
    pub fn files(&self) -> Vec<&str> {
        match self {
            Problem::UnclosedBracket { file, .. }
            | Problem::StrayBracket { file, .. }
            | Problem::EmptyParam { file, .. }
            | Problem::InvalidParamName { file, .. }
            | Problem::OptionalSegment { file, .. }
            | Problem::MixedSegment { file, .. }
            | Problem::CatchAllNotLast { file, .. }
            | Problem::DuplicateParam { file, .. }
            | Problem::WebSocketMethod { file, .. }
            | Problem::WebSocketDisabled { file }
            | Problem::NestedMiddleware { file }
            | Problem::NestedFile { file, .. } => vec![file],
            Problem::Conflict { first, second, .. } => vec![first, second],
            Problem::Io { .. } | Problem::NonUtf8Name { .. } | Problem::SymlinkLoop { .. } => {
                Vec::new()
            }
        }
    }
}
