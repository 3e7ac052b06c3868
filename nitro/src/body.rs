//! Streamed response bodies: [`Response::stream`] and [`Response::file`], and two ways to
//! make a stream without another crate: [`iter`] and (in a route with an `async fn`)
//! `channel`.
//!
//! A streamed body is polled by the server only when the client is ready for more, so a slow
//! client holds back the route's stream instead of filling the server's memory, and a client
//! that goes away drops the stream (and whatever it owns: run cleanup in a `Drop`). The
//! handler's timeout covers the handler up to its answer; after that, each chunk must come
//! within the same timeout of the server asking for it (`[limits] handler_timeout`): a stream
//! that makes progress runs as long as it likes. Event streams ([`crate::sse`]) have no such
//! limit.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use futures_core::Stream;

use crate::streamed::Streamed;
use crate::{Error, Response};

/// A stream of the items of `items`, one per poll (each `next` runs in the server's poll, so
/// it must be quick: generated data, not blocking I/O).
///
/// ```
/// pub fn handler() -> nitro::Response {
///     nitro::Response::stream(nitro::body::iter((1..=3).map(|n| format!("line {n}\n"))))
/// }
/// # assert!(handler().is_stream());
/// ```
pub fn iter<I>(items: I) -> Iter<I::IntoIter>
where
    I: IntoIterator,
{
    Iter(items.into_iter())
}

/// The stream made by [`iter`].
#[derive(Debug)]
pub struct Iter<I>(I);

impl<I: Iterator + Unpin> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.get_mut().0.next())
    }
}

/// A bounded channel whose receiving end is a stream: hand the [`Receiver`] to
/// [`Response::stream`] (or `EventStream::events`) and send from a task the handler spawns.
/// `send(…).await` waits while `capacity` items are queued, so a slow client slows the
/// producer down; it fails once the client went away (the receiver was dropped). Needs the
/// route's runtime (a route with an `async fn`).
///
/// ```
/// pub async fn handler() -> nitro::Response {
///     let (tx, rx) = nitro::body::channel::<String>(8);
///     tokio::spawn(async move {
///         for n in 1..=3 {
///             if tx.send(format!("tick {n}\n")).await.is_err() {
///                 break; // the client went away
///             }
///         }
///     });
///     nitro::Response::stream(rx)
/// }
/// ```
#[cfg(feature = "tokio")]
pub fn channel<T>(capacity: usize) -> (tokio::sync::mpsc::Sender<T>, Receiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    (tx, Receiver(rx))
}

/// The receiving end of a [`channel`], as a stream.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct Receiver<T>(tokio::sync::mpsc::Receiver<T>);

#[cfg(feature = "tokio")]
impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().0.poll_recv(cx)
    }
}

/// What a body stream may yield: bytes or text, or a `Result` of those whose error ends the
/// response (logged with the route file).
pub trait Chunk {
    /// The bytes of the chunk, or the error that ends the stream.
    fn into_chunk(self) -> Result<Vec<u8>, String>;
}

impl Chunk for Vec<u8> {
    fn into_chunk(self) -> Result<Vec<u8>, String> {
        Ok(self)
    }
}

impl Chunk for &'static [u8] {
    fn into_chunk(self) -> Result<Vec<u8>, String> {
        Ok(self.to_vec())
    }
}

impl Chunk for String {
    fn into_chunk(self) -> Result<Vec<u8>, String> {
        Ok(self.into_bytes())
    }
}

impl Chunk for &'static str {
    fn into_chunk(self) -> Result<Vec<u8>, String> {
        Ok(self.as_bytes().to_vec())
    }
}

impl<T: Chunk, E: fmt::Display> Chunk for Result<T, E> {
    fn into_chunk(self) -> Result<Vec<u8>, String> {
        self.map_err(|e| e.to_string())?.into_chunk()
    }
}

/// How much of a file one poll reads.
const FILE_CHUNK: usize = 64 * 1024;

impl Response {
    /// A `200` whose body is `stream`, sent chunk by chunk as the client reads it
    /// (`application/octet-stream` unless a `content-type` is set; no `content-length`, so
    /// HTTP/1.1 sends it chunked). Each item is bytes or text ([`Chunk`]); an `Err` item ends
    /// the response early and is logged. Works from a plain `fn` and an `async fn` handler.
    ///
    /// ```
    /// struct Count(u32);
    /// impl nitro::body::Stream for Count {
    ///     type Item = String;
    ///     fn poll_next(
    ///         mut self: std::pin::Pin<&mut Self>,
    ///         _cx: &mut std::task::Context<'_>,
    ///     ) -> std::task::Poll<Option<String>> {
    ///         self.0 += 1;
    ///         std::task::Poll::Ready((self.0 <= 3).then(|| format!("line {}\n", self.0)))
    ///     }
    /// }
    ///
    /// pub fn handler() -> nitro::Response {
    ///     nitro::Response::stream(Count(0)).with_header("content-type", "text/plain")
    /// }
    /// # assert_eq!(handler().header("content-type"), Some("text/plain"));
    /// ```
    pub fn stream<S>(stream: S) -> Response
    where
        S: Stream + Send + 'static,
        S::Item: Chunk,
    {
        Response::new()
            .with_header("content-type", "application/octet-stream")
            .with_stream(Streamed::new(Box::pin(Chunks(Box::pin(stream))), 0))
    }

    /// A `200` streaming the file at `path` from disk, 64 KiB at a time as the client reads it
    /// (`application/octet-stream` unless a `content-type` is set). A missing file is a `404`;
    /// another error opening it an unhandled `500`. In a route with an `async fn` each read runs
    /// on the route's blocking pool; in a route of plain `fn`s it runs in the server's poll.
    ///
    /// ```no_run
    /// pub fn handler() -> nitro::Result<nitro::Response> {
    ///     Ok(nitro::Response::file(nitro::assets::path("report.csv"))?
    ///         .with_header("content-type", "text/csv"))
    /// }
    /// ```
    pub fn file(path: impl AsRef<std::path::Path>) -> Result<Response, Error> {
        let path = path.as_ref();
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                return Err(Error::not_found(format!("no file `{name}`")));
            }
            Err(e) => return Err(Error::from(e)),
        };
        Ok(Response::stream(FileChunks::new(file)))
    }

    pub(crate) fn with_stream(mut self, stream: Streamed) -> Response {
        self.body.clear();
        self.stream = Some(stream);
        self
    }

    /// Whether the body is a stream ([`Response::stream`], [`Response::file`], an event stream).
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }
}

/// A user's stream with its items turned into chunks (boxed, so that a `!Unpin` stream needs
/// no pin projection).
struct Chunks<S>(Pin<Box<S>>);

impl<S> Stream for Chunks<S>
where
    S: Stream,
    S::Item: Chunk,
{
    type Item = Result<Vec<u8>, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(Chunk::into_chunk))
    }
}

/// A file read [`FILE_CHUNK`] bytes at a time.
struct FileChunks {
    state: FileState,
}

enum FileState {
    Idle(std::fs::File),
    /// A read on the route's blocking pool (routes with a runtime).
    #[cfg(feature = "tokio")]
    Reading(tokio::task::JoinHandle<(std::fs::File, std::io::Result<Vec<u8>>)>),
    Done,
}

impl FileChunks {
    fn new(file: std::fs::File) -> FileChunks {
        FileChunks {
            state: FileState::Idle(file),
        }
    }
}

/// Reads up to [`FILE_CHUNK`] bytes; an empty chunk is the end.
fn read_chunk(file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; FILE_CHUNK];
    let n = loop {
        match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    buf.truncate(n);
    Ok(buf)
}

impl Stream for FileChunks {
    type Item = Result<Vec<u8>, String>;

    // Without a runtime every read is done in the poll, so the loop never repeats.
    #[cfg_attr(not(feature = "tokio"), allow(unused_variables, clippy::never_loop))]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, FileState::Done) {
                FileState::Done => return Poll::Ready(None),
                #[cfg(feature = "tokio")]
                FileState::Idle(mut file) if tokio::runtime::Handle::try_current().is_ok() => {
                    this.state = FileState::Reading(tokio::task::spawn_blocking(move || {
                        let read = read_chunk(&mut file);
                        (file, read)
                    }));
                }
                FileState::Idle(mut file) => {
                    let read = read_chunk(&mut file);
                    return Poll::Ready(this.finish(file, read));
                }
                #[cfg(feature = "tokio")]
                FileState::Reading(mut reading) => {
                    match std::future::Future::poll(Pin::new(&mut reading), cx) {
                        Poll::Pending => {
                            this.state = FileState::Reading(reading);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok((file, read))) => {
                            return Poll::Ready(this.finish(file, read));
                        }
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Some(Err(format!("reading the file failed: {e}"))));
                        }
                    }
                }
            }
        }
    }
}

impl FileChunks {
    fn finish(
        &mut self,
        file: std::fs::File,
        read: std::io::Result<Vec<u8>>,
    ) -> Option<Result<Vec<u8>, String>> {
        match read {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => {
                self.state = FileState::Idle(file);
                Some(Ok(chunk))
            }
            Err(e) => Some(Err(format!("reading the file failed: {e}"))),
        }
    }
}
