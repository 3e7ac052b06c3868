//! `public/` files of a built output: the precompressed variant the client accepts.
//!
//! `nitro build` writes `app.js.br` and `app.js.gz` beside every compressible file of at least
//! 1 KiB (as Nitro's `compressPublicAssets`). With [`ServerConfig::precompressed`] on, a request
//! for `/app.js` is resolved exactly as in dev (the same resolver, the same root), then
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

use tower_http::services::ServeFile;

/// `ServeFile` for `file` (a file the resolver returned), with the `.br` and `.gz` variants
/// that exist beside it as regular files.
pub(super) async fn serve_file(file: &Path) -> ServeFile {
    let (br, gzip) = tokio::task::spawn_blocking({
        let file = file.to_owned();
        move || (plain_sibling(&file, "br"), plain_sibling(&file, "gz"))
    })
    .await
    .unwrap_or((false, false));
    let mut service = ServeFile::new(file);
    if br {
        service = service.precompressed_br();
    }
    if gzip {
        service = service.precompressed_gzip();
    }
    service
}

/// Whether `file.<ext>` exists as a regular file (not a symlink, not a folder).
pub(super) fn plain_sibling(file: &Path, ext: &str) -> bool {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    std::fs::symlink_metadata(Path::new(&name)).is_ok_and(|m| m.file_type().is_file())
}
