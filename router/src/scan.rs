//! The one part of the crate that touches the file system.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{Problem, ProjectFolders, RouteTable, ScanError, ScanOptions};

/// Scans `project_dir/routes` (and the files of `project_dir/middleware` and `plugins`) into a route
/// table.
///
/// Walks the folder recursively in sorted order, following symbolic links,
/// and passes every `*.rs` file to [`RouteTable::from_files`]. Files and
/// folders whose name starts with `.` (editor temp files, `.git`) and files
/// not ending in `.rs` are skipped. A project without a `routes/` folder has
/// an empty table.
///
/// Every problem is reported, I/O problems (naming the path) as well as
/// problems with route file names.
pub fn scan(project_dir: &Path, options: &ScanOptions) -> Result<RouteTable, ScanError> {
    let root = project_dir.join("routes");
    let mut walk = Walk::default();
    match fs::metadata(&root) {
        // No `routes/`: no routes (middleware alone still run before files and the page).
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => walk.problems.push(Problem::Io { path: root, error }),
        Ok(metadata) if !metadata.is_dir() => walk.problems.push(Problem::Io {
            path: root,
            error: io::Error::new(io::ErrorKind::NotADirectory, "not a folder"),
        }),
        Ok(_) => walk.folder(&root, ""),
    }

    let folders = ProjectFolders {
        middleware: flat_files(&project_dir.join("middleware"), &mut walk.problems),
        plugins: flat_files(&project_dir.join("plugins"), &mut walk.problems),
        tasks: flat_files(&project_dir.join("tasks"), &mut walk.problems),
    };
    let mut problems = walk.problems;
    match RouteTable::from_project(&walk.files, &folders, options) {
        Ok(table) if problems.is_empty() => Ok(table),
        Ok(_) => Err(ScanError::new(problems)),
        Err(error) => {
            problems.extend(error.into_problems());
            Err(ScanError::new(problems))
        }
    }
}

/// The `*.rs` files directly in `dir` (`middleware/`, `plugins/`), by name; none when it does
/// not exist. Subfolders are not walked: they hold modules that the files include.
fn flat_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            problems.push(Problem::Io {
                path: dir.to_owned(),
                error,
            });
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                problems.push(Problem::Io {
                    path: dir.to_owned(),
                    error,
                });
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if lossy.starts_with('.') || !lossy.ends_with(".rs") || !path.is_file() {
            continue;
        }
        match name.to_str() {
            Some(name) => names.push(name.to_owned()),
            None => problems.push(Problem::NonUtf8Name { path }),
        }
    }
    names
}

#[derive(Default)]
struct Walk {
    /// Relative to `routes/`, `/`-separated.
    files: Vec<String>,
    problems: Vec<Problem>,
    /// The canonical paths of the folders being walked, to stop symlink loops.
    ancestors: Vec<PathBuf>,
}

impl Walk {
    fn folder(&mut self, dir: &Path, rel: &str) {
        let canonical = match fs::canonicalize(dir) {
            Ok(canonical) => canonical,
            Err(error) => return self.io(dir, error),
        };
        if self.ancestors.contains(&canonical) {
            self.problems.push(Problem::SymlinkLoop {
                path: dir.to_owned(),
                target: canonical,
            });
            return;
        }

        let entries =
            match fs::read_dir(dir).and_then(|entries| entries.collect::<io::Result<Vec<_>>>()) {
                Ok(entries) => entries,
                Err(error) => return self.io(dir, error),
            };
        let mut entries: Vec<_> = entries
            .into_iter()
            .map(|entry| (entry.file_name(), entry.path()))
            .collect();
        entries.sort();

        self.ancestors.push(canonical);
        for (name, path) in entries {
            let lossy = name.to_string_lossy();
            if lossy.starts_with('.') {
                continue;
            }
            // Follows symbolic links: a linked folder of routes is routes.
            let metadata = match fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    self.io(&path, error);
                    continue;
                }
            };
            let is_dir = metadata.is_dir();
            if !is_dir && !lossy.ends_with(".rs") {
                continue;
            }
            let Some(name) = name.to_str() else {
                self.problems.push(Problem::NonUtf8Name { path });
                continue;
            };
            let rel = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            if is_dir {
                self.folder(&path, &rel);
            } else if metadata.is_file() {
                self.files.push(rel);
            }
        }
        self.ancestors.pop();
    }

    fn io(&mut self, path: &Path, error: io::Error) {
        self.problems.push(Problem::Io {
            path: path.to_owned(),
            error,
        });
    }
}
