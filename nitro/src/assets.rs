//! Files that ship with the app: the project's `assets/` folder.
//!
//! Put data files a route reads (templates, fixtures, limits, certificates) in `assets/` beside
//! `routes/`. `nitro build` copies the folder into the output (`.output/server/assets/`), and
//! [`path`] finds a file there the same way under `nitro dev` and under `nitro start`, whatever
//! the working directory of the server. Unlike `public/`, nothing in `assets/` is served.
//!
//! ```no_run
//! // routes/limit.rs
//! pub fn handler() -> nitro::Result<String> {
//!     let limit = std::fs::read_to_string(nitro::assets::path("limit.txt"))?;
//!     Ok(format!("the limit is {}", limit.trim()))
//! }
//! ```
//!
//! Outside a server (in a route's unit tests under `nitro test`, or `cargo test` of a route
//! crate) the folder is `NITRO_ASSETS_DIR` when that is set, else `assets` in the working
//! directory.

use std::path::{Path, PathBuf};

/// The assets folder of the app (it need not exist).
pub fn dir() -> PathBuf {
    crate::ffi::host_assets_dir()
        .or_else(|| std::env::var_os("NITRO_ASSETS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("assets"))
}

/// The path of `file` (relative, `/`-separated, e.g. `"emails/welcome.html"`) in the assets
/// folder, for `std::fs` or any crate that opens files.
pub fn path(file: impl AsRef<Path>) -> PathBuf {
    dir().join(file)
}

/// Reads `file` from the assets folder.
///
/// Its error names the path, so `?` in a handler logs which file is missing.
pub fn read(file: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
    let path = path(file);
    std::fs::read(&path).map_err(|e| named(&path, e))
}

/// Reads `file` from the assets folder as UTF-8 text.
pub fn read_to_string(file: impl AsRef<Path>) -> std::io::Result<String> {
    let path = path(file);
    std::fs::read_to_string(&path).map_err(|e| named(&path, e))
}

fn named(path: &Path, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        error.kind(),
        format!("cannot read asset `{}`: {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_assets_name_the_file() {
        let err = super::read_to_string("no/such.txt").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no/such.txt"), "{err}");
    }
}
