//! `public/` files of a built output: the precompressed variant the client accepts.
//!
//! `nitro build` writes `app.js.br` and `app.js.gz` beside every compressible file of at least
//! 1 KiB (as Nitro's `compressPublicAssets`). With [`ServerConfig::precompressed`] on, a request
//! for `/app.js` is resolved exactly as in dev ([`static_files`]: same rules, same root), then
//! served by tower-http's `ServeFile` with both variants enabled: the client's
//! `Accept-Encoding` picks the variant (by q-value, `br` before `gzip` on a tie, identity when
//! the variant is missing), the response carries `Content-Encoding` and always
//! `Vary: Accept-Encoding` (the answer depends on that header even when it is identity), and
//! each variant has its own strong `ETag` and `Last-Modified`, so `If-None-Match` and
//! `If-Modified-Since` give `304` per representation. The content type is the original
//! file's. Variants are looked up only as siblings of a file that passed the resolver, and only
//! when the sibling is a regular file: a `.br`/`.gz` that is a symlink (which `nitro build`
//! never writes) could point anywhere, so it is ignored and the file itself is served.
//!
//! [`ServerConfig::precompressed`]: crate::ServerConfig::precompressed

use std::path::Path;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::public_path::{Resolved, resolve, url_to_relative};
use crate::ServerConfig;
use crate::body::Body;
use crate::static_files;

/// Serves the `public/` file `uri` names, or `None` (a miss goes on to routing). Without
/// [`ServerConfig::precompressed`] this is the dev server's [`static_files::serve_public`].
pub(crate) async fn serve_public(
    config: &ServerConfig,
    public_dir: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if !config.precompressed {
        return static_files::serve_public(public_dir, method, uri, headers).await;
    }
    let rel = url_to_relative(uri.path())?;
    let wants_dir = uri.path().ends_with('/');
    let root = public_dir.to_owned();
    let Ok(Ok(Resolved::File(file))) =
        tokio::task::spawn_blocking(move || resolve(&root, &rel, wants_dir)).await
    else {
        return None;
    };

    let mut request = Request::new(Empty::<Bytes>::new());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    let (br, gzip) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || (plain_sibling(&file, "br"), plain_sibling(&file, "gz"))
    })
    .await
    .unwrap_or((false, false));
    let mut service = ServeFile::new(&file);
    if br {
        service = service.precompressed_br();
    }
    if gzip {
        service = service.precompressed_gzip();
    }
    let response = match service.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        return None;
    }
    let mut response = response.map(|body| body.map_err(Into::into).boxed_unsync());
    static_files::add_charset(response.headers_mut());
    Some(response)
}

/// Whether `file.<ext>` exists as a regular file (not a symlink, not a folder).
fn plain_sibling(file: &Path, ext: &str) -> bool {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    std::fs::symlink_metadata(Path::new(&name)).is_ok_and(|m| m.file_type().is_file())
}
