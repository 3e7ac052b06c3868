//! `public/` and the renderer's page held in memory, for a server whose files do not change
//! while it runs ([`ServerConfig::cache_files`]: `nitro start` serving a built output).
//!
//! At start the `public/` tree is walked once and every URL path the resolver
//! ([`public_path`](super::public_path)) would serve is recorded with the file it serves, so a
//! request costs a hash-map probe: no `canonicalize`, no `stat`, no blocking-pool hop, for a
//! hit or a miss. Files of at most [`MAX_FILE`] bytes, with their `.br`/`.gz` siblings and
//! within [`MAX_TOTAL`] bytes in all, are read into memory with their size and modification
//! time and served by tower-http's `ServeDir` over an in-memory [`Backend`]: the code that
//! serves them from disk, fed the same size and time, so the content type, `ETag` and
//! `Last-Modified`, `304`/`412`, ranges, `HEAD`, `Vary` and the choice of variant are the
//! same. Larger files are served from disk by `ServeFile` as before, minus the lookup.
//!
//! Where a symlink leads is the resolver's to decide, on each request: a `public/` with a
//! symlink below it (which `nitro build` never writes) is not indexed, and is served as in dev.
//! So is a tree of more than [`MAX_PATHS`] files and folders.
//!
//! [`ServerConfig::cache_files`]: crate::ServerConfig::cache_files

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tower::ServiceExt;
use tower_http::services::fs::{Backend, File, Metadata};
use tower_http::services::{ServeDir, ServeFile};

use super::precompressed::plain_sibling;
use super::public_path::{self, Resolved, resolve, url_to_relative};
use crate::body::Body;

/// The largest file held in memory; larger ones are read from disk on each request.
pub(crate) const MAX_FILE: u64 = 1 << 20;
/// The most bytes held in memory in all (files and variants).
pub(crate) const MAX_TOTAL: u64 = 64 << 20;
/// The most files and folders indexed; a larger `public/` is served as in dev.
pub(crate) const MAX_PATHS: usize = 100_000;

/// What the server holds in memory. Built once, before serving ([`FileCache::load`]).
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    /// `None`: not indexed (no `public/` configured, a symlink in it, too large).
    public: Option<PublicIndex>,
    /// The renderer's `index.html`, when it could be read.
    page: Option<Bytes>,
}

#[derive(Debug, Default)]
struct PublicIndex {
    /// (relative path, the URL ended in `/`) → what to serve.
    paths: HashMap<(PathBuf, bool), Arc<Entry>>,
    memory: MemoryBackend,
}

#[derive(Debug)]
enum Entry {
    /// Served by `ServeDir` from [`MemoryBackend`] at this URI (its path below `public/`).
    Memory { uri: Uri, br: bool, gzip: bool },
    /// Served by `ServeFile` from disk.
    Disk { file: PathBuf, br: bool, gzip: bool },
}

impl FileCache {
    /// Reads what can be held: the index of `public_dir` and the renderer's page. Blocking.
    pub(crate) fn load(public_dir: Option<&Path>, index_html: Option<&Path>) -> FileCache {
        let public = public_dir.and_then(|root| match PublicIndex::load(root) {
            Ok(index) => Some(index),
            Err(why) => {
                tracing::debug!(target: "nitro::static", "serving `{}` from disk on each request: {why}", root.display());
                None
            }
        });
        let page = index_html.and_then(|path| match std::fs::read(path) {
            Ok(page) => Some(Bytes::from(page)),
            Err(err) => {
                tracing::warn!(target: "nitro::static", "cannot read the renderer's `{}`: {err}", path.display());
                None
            }
        });
        FileCache { public, page }
    }

    /// The renderer's page, when it is held.
    pub(crate) fn page(&self) -> Option<&Bytes> {
        self.page.as_ref()
    }

    /// `None`: `public/` is not indexed; ask the file system. `Some(None)`: no file for this
    /// URL (a miss goes on to routing). `Some(Some(response))`: the file, as tower-http
    /// answers it (the caller adds the charset, as for the disk's answers).
    pub(crate) async fn serve_public(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Option<Response<Body>>> {
        let index = self.public.as_ref()?;
        let Some(rel) = url_to_relative(uri.path()) else {
            return Some(None);
        };
        let Some(entry) = index.paths.get(&(rel, uri.path().ends_with('/'))) else {
            return Some(None);
        };
        Some(index.serve(entry, method, headers).await)
    }
}

impl PublicIndex {
    fn load(root: &Path) -> Result<PublicIndex, String> {
        let mut index = PublicIndex::default();
        let Ok(canonical_root) = root.canonicalize() else {
            // As the resolver: no root, nothing to serve.
            return Ok(index);
        };
        let mut paths = vec![PathBuf::new()];
        let mut folders = vec![PathBuf::new()];
        while let Some(folder) = folders.pop() {
            let entries = std::fs::read_dir(canonical_root.join(&folder))
                .map_err(|err| format!("cannot list `{}`: {err}", folder.display()))?;
            for entry in entries {
                let entry = entry.map_err(|err| err.to_string())?;
                let kind = entry.file_type().map_err(|err| err.to_string())?;
                let rel = folder.join(entry.file_name());
                if kind.is_symlink() {
                    return Err(format!("`{}` is a symlink", rel.display()));
                }
                // A name no URL can reach (hidden, not UTF-8) is not indexed, nor is what is
                // under it; the resolver's answer for the rest decides.
                if entry
                    .file_name()
                    .to_str()
                    .is_none_or(public_path::is_hidden)
                {
                    continue;
                }
                if kind.is_dir() {
                    folders.push(rel.clone());
                }
                paths.push(rel);
                if paths.len() > MAX_PATHS {
                    return Err(format!("more than {MAX_PATHS} files and folders"));
                }
            }
        }

        let mut budget = MAX_TOTAL;
        let mut files: HashMap<PathBuf, Arc<Entry>> = HashMap::new();
        for rel in paths {
            for wants_dir in [false, true] {
                let Ok(Resolved::File(file)) = resolve(root, &rel, wants_dir) else {
                    continue;
                };
                let entry = match files.get(&file) {
                    Some(entry) => entry.clone(),
                    None => {
                        let entry = Arc::new(index.entry(&canonical_root, &file, &mut budget)?);
                        files.insert(file, entry.clone());
                        entry
                    }
                };
                index.paths.insert((rel.clone(), wants_dir), entry);
            }
        }
        Ok(index)
    }

    /// How to serve `file` (canonical, under `root`): from memory while the budget lasts.
    fn entry(&mut self, root: &Path, file: &Path, budget: &mut u64) -> Result<Entry, String> {
        let (br, gzip) = (plain_sibling(file, "br"), plain_sibling(file, "gz"));
        let mut parts = vec![file.to_owned()];
        if br {
            parts.push(sibling(file, "br"));
        }
        if gzip {
            parts.push(sibling(file, "gz"));
        }
        let mut sizes = Vec::with_capacity(parts.len());
        for part in &parts {
            let metadata = std::fs::metadata(part).map_err(|err| err.to_string())?;
            sizes.push(metadata.len());
        }
        let total: u64 = sizes.iter().sum();
        let below = file.strip_prefix(root).map_err(|err| err.to_string())?;
        let uri = below.to_str().and_then(|below| file_uri(below).ok());
        let (Some(uri), true) = (uri, sizes[0] <= MAX_FILE && total <= *budget) else {
            return Ok(Entry::Disk {
                file: file.to_owned(),
                br,
                gzip,
            });
        };
        for part in &parts {
            let metadata = std::fs::metadata(part).map_err(|err| err.to_string())?;
            let bytes = std::fs::read(part).map_err(|err| err.to_string())?;
            let modified = metadata.modified().map_err(|err| err.to_string())?;
            let key = part.strip_prefix(root).map_err(|err| err.to_string())?;
            Arc::make_mut(&mut self.memory.files).insert(
                key.to_owned(),
                MemoryFile {
                    bytes: Bytes::from(bytes),
                    modified,
                },
            );
        }
        *budget -= total;
        Ok(Entry::Memory { uri, br, gzip })
    }

    async fn serve(
        &self,
        entry: &Entry,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = method.clone();
        *request.headers_mut() = headers.clone();
        let response = match entry {
            Entry::Memory { uri, br, gzip } => {
                *request.uri_mut() = uri.clone();
                let mut service = ServeDir::with_backend("/", self.memory.clone());
                if *br {
                    service = service.precompressed_br();
                }
                if *gzip {
                    service = service.precompressed_gzip();
                }
                service.oneshot(request).await
            }
            Entry::Disk { file, br, gzip } => {
                let mut service = ServeFile::new(file);
                if *br {
                    service = service.precompressed_br();
                }
                if *gzip {
                    service = service.precompressed_gzip();
                }
                service.oneshot(request).await
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        Some(response.map(|body| body.map_err(Into::into).boxed_unsync()))
    }
}

fn sibling(file: &Path, ext: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Every byte but the unreserved ones is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/a/b%20c.txt` for `a/b c.txt`: what `ServeDir` decodes back to that path.
fn file_uri(rel: &str) -> Result<Uri, http::uri::InvalidUri> {
    let mut path = String::with_capacity(rel.len() + 1);
    for segment in rel.split('/') {
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    path.parse()
}

/// Files held in memory, by their path below `public/`.
#[derive(Debug, Clone, Default)]
struct MemoryBackend {
    files: Arc<HashMap<PathBuf, MemoryFile>>,
}

#[derive(Debug, Clone)]
struct MemoryFile {
    bytes: Bytes,
    modified: SystemTime,
}

impl MemoryBackend {
    fn find(&self, path: &Path) -> io::Result<&MemoryFile> {
        // `ServeDir` joins the URI's segments onto its base, `/`.
        let key = path.strip_prefix("/").unwrap_or(path);
        self.files
            .get(key)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

impl Backend for MemoryBackend {
    type File = MemoryReader;
    type Metadata = MemoryMetadata;
    type OpenFuture = Ready<io::Result<MemoryReader>>;
    type MetadataFuture = Ready<io::Result<MemoryMetadata>>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        ready(self.find(&path).map(|file| MemoryReader {
            metadata: MemoryMetadata::of(file),
            cursor: io::Cursor::new(file.bytes.clone()),
        }))
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        ready(self.find(&path).map(MemoryMetadata::of))
    }
}

#[derive(Debug, Clone, Copy)]
struct MemoryMetadata {
    len: u64,
    modified: SystemTime,
}

impl MemoryMetadata {
    fn of(file: &MemoryFile) -> MemoryMetadata {
        MemoryMetadata {
            len: file.bytes.len() as u64,
            modified: file.modified,
        }
    }
}

impl Metadata for MemoryMetadata {
    fn is_dir(&self) -> bool {
        false
    }

    fn modified(&self) -> io::Result<SystemTime> {
        Ok(self.modified)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// An open file: a cursor over the shared bytes.
#[derive(Debug)]
struct MemoryReader {
    cursor: io::Cursor<Bytes>,
    metadata: MemoryMetadata,
}

impl AsyncRead for MemoryReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.cursor).poll_read(cx, buf)
    }
}

impl AsyncSeek for MemoryReader {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.cursor).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.cursor).poll_complete(cx)
    }
}

impl File for MemoryReader {
    type Metadata = MemoryMetadata;
    type MetadataFuture<'a> = Ready<io::Result<MemoryMetadata>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        ready(Ok(self.metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_decode_back_to_the_path() {
        assert_eq!(file_uri("a/b c.txt").unwrap().path(), "/a/b%20c.txt");
        assert_eq!(file_uri("café.js").unwrap().path(), "/caf%C3%A9.js");
        assert_eq!(file_uri("x%2e.txt").unwrap().path(), "/x%252e.txt");
        assert_eq!(file_uri("index.html").unwrap().path(), "/index.html");
    }

    #[test]
    fn the_index_holds_what_the_resolver_serves_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::create_dir_all(root.join(".well-known")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("a b.txt"), "a").unwrap();
        std::fs::write(root.join("sub/index.html"), "sub").unwrap();
        std::fs::write(root.join("sub/deeper/x.js"), "x").unwrap();
        std::fs::write(root.join(".hidden/h.txt"), "h").unwrap();
        std::fs::write(root.join(".env"), "secret").unwrap();
        std::fs::write(root.join(".well-known/w"), "w").unwrap();
        let index = PublicIndex::load(&root).unwrap();
        let mut keys: Vec<String> = index
            .paths
            .keys()
            .map(|(rel, dir)| format!("{}{}", rel.display(), if *dir { "/" } else { "" }))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ".well-known/w",
                "a b.txt",
                "sub",
                "sub/",
                "sub/deeper/x.js",
                "sub/index.html"
            ]
        );
        // What the resolver does not serve is not a key.
        for (rel, wants_dir) in [
            ("", true),
            ("empty", false),
            ("empty", true),
            ("a b.txt", true),
            ("sub/deeper", false),
            ("missing", false),
        ] {
            let rel = PathBuf::from(rel);
            assert!(!matches!(
                resolve(&root, &rel, wants_dir),
                Ok(Resolved::File(_))
            ));
            assert!(!index.paths.contains_key(&(rel, wants_dir)));
        }
        // Every key is served by the resolver, from the file it names.
        for ((rel, wants_dir), entry) in &index.paths {
            let Ok(Resolved::File(file)) = resolve(&root, rel, *wants_dir) else {
                panic!("{rel:?} is not served by the resolver");
            };
            match &**entry {
                Entry::Memory { uri, .. } => {
                    let below = file.strip_prefix(root.canonicalize().unwrap()).unwrap();
                    assert_eq!(
                        uri.path(),
                        file_uri(below.to_str().unwrap()).unwrap().path()
                    );
                }
                Entry::Disk { .. } => panic!("small files are held"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_leaves_the_tree_to_the_resolver() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("b.txt")).unwrap();
        assert!(PublicIndex::load(&root).is_err());
        assert!(
            PublicIndex::load(&dir.path().join("missing"))
                .unwrap()
                .paths
                .is_empty()
        );
    }

    #[test]
    fn large_files_stay_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("big.bin"), vec![0u8; MAX_FILE as usize + 1]).unwrap();
        std::fs::write(root.join("small.bin"), [0u8; 10]).unwrap();
        let index = PublicIndex::load(&root).unwrap();
        let entry = |name: &str| index.paths[&(PathBuf::from(name), false)].clone();
        assert!(matches!(*entry("big.bin"), Entry::Disk { .. }));
        assert!(matches!(*entry("small.bin"), Entry::Memory { .. }));
        assert_eq!(index.memory.files.len(), 1);
    }
}
