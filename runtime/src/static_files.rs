//! `public/` files and the `index.html` renderer.
//!
//! One resolver decides both whether a URL may be served and which file is opened
//! (reliability rules 6–8): the URL path (never the query, and `#` never reaches us) is split
//! into segments, each percent-decoded exactly once; a segment that decodes to `.` or `..`, or
//! holds `/`, `\`, NUL or `:`, or starts with `.` (dotfiles, except `.well-known`), or is not
//! UTF-8, makes the whole path a miss, as do raw backslashes, NUL and a leading `//`. The rest
//! is joined onto the canonical `public/` root and canonicalized, which follows symlinks; the
//! result must still be under the root. A directory serves its `index.html` and is never
//! listed. The canonical file is then handed to tower-http's `ServeFile`, which provides the
//! content type, `Last-Modified`/`If-Modified-Since`, `ETag`/`If-None-Match`, `HEAD` and ranges.
//!
//! A miss is not an error: the request goes on to routing.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use percent_encoding::percent_decode_str;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::body::{Body, full};

/// Serves the file of `public_dir` that `uri` names, or `None` when there is none (or the
/// path may not be served).
pub(crate) async fn serve_public(
    public_dir: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let rel = url_to_relative(uri.path())?;
    let wants_dir = uri.path().ends_with('/');
    let root = public_dir.to_owned();
    let file = tokio::task::spawn_blocking(move || resolve(&root, &rel, wants_dir))
        .await
        .ok()?
        .inspect_err(|err| {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::debug!(target: "nitro::static", "public file lookup failed: {err}");
            }
        })
        .ok()??;

    let mut request = Request::new(Empty::<Bytes>::new());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    let response = match ServeFile::new(&file).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        return None; // removed between the check and the open
    }
    let mut response = response.map(|body| body.map_err(Into::into).boxed_unsync());
    add_charset(response.headers_mut());
    Some(response)
}

/// Serves the renderer's `index.html`, read from disk on every request (dev edits show at
/// once). Only that one file is ever served here.
pub(crate) async fn serve_index_html(index_html: &Path, method: &Method) -> Option<Response<Body>> {
    let html = match tokio::fs::read(index_html).await {
        Ok(html) => html,
        Err(err) => {
            tracing::warn!(target: "nitro::static", "cannot read the renderer's `{}`: {err}", index_html.display());
            return None;
        }
    };
    let length = html.len();
    let mut response = Response::new(if method == Method::HEAD {
        crate::body::empty()
    } else {
        full(html)
    });
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

/// The file-system path a URL path names under the public root, or `None` when the path may
/// not be served (see the module docs).
pub(crate) fn url_to_relative(path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') || path.starts_with("//") || path.contains(['\\', '\0']) {
        return None;
    }
    let mut rel = PathBuf::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        let forbidden = decoded.is_empty()
            || decoded == "."
            || decoded == ".."
            || decoded.contains(['/', '\\', '\0', ':'])
            || (decoded.starts_with('.') && decoded != ".well-known");
        if forbidden {
            return None;
        }
        rel.push(&*decoded);
    }
    Some(rel)
}

/// Canonicalizes `root/rel` and checks it stays under the canonical root; a directory gives
/// its `index.html`. `Ok(None)`: nothing to serve.
pub(crate) fn resolve(root: &Path, rel: &Path, wants_dir: bool) -> io::Result<Option<PathBuf>> {
    let root = root.canonicalize()?;
    let inside = |path: &Path| -> io::Result<Option<(PathBuf, std::fs::Metadata)>> {
        let canonical = path.canonicalize()?;
        if !canonical.starts_with(&root) {
            tracing::debug!(target: "nitro::static", "refusing `{}`: it leads outside of the public folder", path.display());
            return Ok(None);
        }
        let metadata = canonical.metadata()?;
        Ok(Some((canonical, metadata)))
    };
    let Some((canonical, metadata)) = inside(&root.join(rel))? else {
        return Ok(None);
    };
    if metadata.is_file() {
        // `/app.js/` is not `/app.js`.
        return Ok((!wants_dir).then_some(canonical));
    }
    if !metadata.is_dir() {
        return Ok(None);
    }
    match inside(&canonical.join("index.html"))? {
        Some((index, metadata)) if metadata.is_file() => Ok(Some(index)),
        _ => Ok(None),
    }
}

/// Adds `; charset=utf-8` to text types that lack a charset (as Nitro's production server does).
pub(crate) fn add_charset(headers: &mut HeaderMap) {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return;
    };
    let Ok(text) = value.to_str() else {
        return;
    };
    let textual = text.starts_with("text/")
        || matches!(
            text,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if textual
        && !text.contains("charset")
        && let Ok(with) = HeaderValue::from_str(&format!("{text}; charset=utf-8"))
    {
        headers.insert(header::CONTENT_TYPE, with);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let ok = |path: &str, want: &str| {
            assert_eq!(url_to_relative(path), Some(PathBuf::from(want)), "{path}")
        };
        ok("/", "");
        ok("/app.js", "app.js");
        ok("/a/b%20c.txt", "a/b c.txt");
        ok("/caf%C3%A9", "café");
        ok("/.well-known/x", ".well-known/x");
        ok("/%252e%252e/x", "%2e%2e/x"); // decoded once: stays literal
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/a%2f..%2fx",
            "/..%5cx",
            "/..\\x",
            "/a%00.html",
            "//etc/passwd",
            "/.env",
            "/.env/.",
            "/.git/config",
            "/x/./y",
            "/file.txt::$DATA",
            "/%c0%ae%c0%ae/x",
            "/%ff",
            "*",
        ] {
            assert_eq!(url_to_relative(bad), None, "{bad}");
        }
    }
}
