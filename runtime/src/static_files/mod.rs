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
//!
//! [`StaticFiles`] is what the server holds: the folders, and with
//! [`ServerConfig::cache_files`] (`nitro start`) what was read at start ([`memory`]).
//!
//! [`ServerConfig::cache_files`]: crate::ServerConfig::cache_files

mod memory;
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
use crate::config::ServerConfig;
use memory::FileCache;
use public_path::{Resolved, resolve, url_to_relative};

/// `public/` and the renderer's page of one server.
#[derive(Debug, Default)]
pub(crate) struct StaticFiles {
    public_dir: Option<std::path::PathBuf>,
    index_html: Option<std::path::PathBuf>,
    precompressed: bool,
    /// What was read at start ([`ServerConfig::cache_files`]).
    cache: FileCache,
}

impl StaticFiles {
    /// The files `config` names; with `cache_files`, read now (on the blocking pool).
    pub(crate) async fn load(config: &ServerConfig) -> StaticFiles {
        let public_dir = config.public_dir.clone();
        let index_html = config.index_html.clone();
        let cache = if config.cache_files {
            let (public_dir, index_html) = (public_dir.clone(), index_html.clone());
            tokio::task::spawn_blocking(move || {
                FileCache::load(public_dir.as_deref(), index_html.as_deref())
            })
            .await
            .unwrap_or_default()
        } else {
            FileCache::default()
        };
        StaticFiles {
            public_dir,
            index_html,
            precompressed: config.precompressed,
            cache,
        }
    }

    /// The file of `public/` that `uri` names, or `None` (a miss goes on to routing).
    pub(crate) async fn serve_public(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        let public_dir = self.public_dir.as_ref()?;
        if let Some(answer) = self.cache.serve_public(method, uri, headers).await {
            return answer.map(|mut response| {
                add_charset(response.headers_mut());
                response
            });
        }
        serve_public(public_dir, self.precompressed, method, uri, headers).await
    }

    /// The renderer's page, when there is one.
    pub(crate) async fn serve_page(&self, method: &Method) -> Option<Response<Body>> {
        let index_html = self.index_html.as_ref()?;
        match self.cache.page() {
            Some(page) => Some(page_response(page.clone(), method)),
            None => serve_index_html(index_html, method).await,
        }
    }
}

/// Serves the file of `public_dir` that `uri` names, or `None` when there is none (or the
/// path may not be served); with `precompressed` (see [`ServerConfig::precompressed`]), its
/// `.br`/`.gz` variant when the client accepts one.
///
/// [`ServerConfig::precompressed`]: crate::ServerConfig::precompressed
async fn serve_public(
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
            crate::telemetry::span::enter_request_span();
            tracing::debug!(target: "nitro::static", "refusing `{}`: it leads to `{}`, outside of the public folder or to a dotfile", uri.path(), target.display());
            return None;
        }
        Ok(Resolved::Nothing) => return None,
        Err(err) => {
            if err.kind() != io::ErrorKind::NotFound {
                crate::telemetry::span::enter_request_span();
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
async fn serve_index_html(index_html: &Path, method: &Method) -> Option<Response<Body>> {
    let html = match tokio::fs::read(index_html).await {
        Ok(html) => html,
        Err(err) => {
            crate::telemetry::span::enter_request_span();
            tracing::warn!(target: "nitro::static", "cannot read the renderer's `{}`: {err}", index_html.display());
            return None;
        }
    };
    Some(page_response(Bytes::from(html), method))
}

/// The renderer's answer: the page, never cached by the browser without asking.
fn page_response(html: Bytes, method: &Method) -> Response<Body> {
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
    if method == Method::HEAD {
        // The body is empty: say how long a `GET` would be. For a `GET`, hyper writes the
        // length of the body itself (without a header value built and allocated here).
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
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
