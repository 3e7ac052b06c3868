//! `public/` files and the `index.html` renderer.
//!
//! One resolver, [`public_path`], decides both whether a URL may be served and which
//! file is opened: nothing outside `public/`, no dotfiles (except `.well-known`), no
//! directory listings. The canonical file it returns is handed to tower-http's `ServeFile`,
//! which provides the content type, `Last-Modified`/`If-Modified-Since`,
//! `ETag`/`If-None-Match`, `HEAD` and ranges. A built output (`nitro start`) also serves the
//! `.br`/`.gz` variant the client accepts ([`precompressed`]).
//!
//! A miss is not an error: the request goes on to routing.

mod precompressed;
mod public_path;

use std::io;
use std::path::Path;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::body::{Body, full};
use public_path::{Resolved, resolve, url_to_relative};

/// Serves the file of `public_dir` that `uri` names, or `None` when there is none (or the
/// path may not be served); with `precompressed` (see [`ServerConfig::precompressed`]), its
/// `.br`/`.gz` variant when the client accepts one.
///
/// [`ServerConfig::precompressed`]: crate::ServerConfig::precompressed
pub(crate) async fn serve_public(
    public_dir: &Path,
    precompressed: bool,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let rel = url_to_relative(uri.path())?;
    let wants_dir = uri.path().ends_with('/');
    let root = public_dir.to_owned();
    let resolved = tokio::task::spawn_blocking(move || resolve(&root, &rel, wants_dir))
        .await
        .ok()?;
    let file = match resolved {
        Ok(Resolved::File(file)) => file,
        Ok(Resolved::Refused(target)) => {
            tracing::debug!(target: "nitro::static", "refusing `{}`: it leads to `{}`, outside of the public folder or to a dotfile", uri.path(), target.display());
            return None;
        }
        Ok(Resolved::Nothing) => return None,
        Err(err) => {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::debug!(target: "nitro::static", "public file lookup failed: {err}");
            }
            return None;
        }
    };

    let mut request = Request::new(Empty::<Bytes>::new());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    let service = if precompressed {
        precompressed::serve_file(&file).await
    } else {
        ServeFile::new(&file)
    };
    let response = match service.oneshot(request).await {
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

/// Adds `; charset=utf-8` to text types that lack a charset (as Nitro's production server does).
fn add_charset(headers: &mut HeaderMap) {
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
