//! Streamed response bodies: a route's stream of chunks, polled by hyper only when the client
//! is ready for the next frame.
//!
//! Backpressure is hyper's: it asks the body for a frame after the previous one was written,
//! so a client that reads slowly (or not at all) holds the route's stream back instead of
//! filling the server's memory; at most one chunk per response waits in the server (plus the
//! socket's buffers). When the connection goes away hyper drops the body, which drops the
//! route's stream (its `Drop` runs in the route).
//!
//! Timeouts: the handler timeout covers the handler up to its answer. After that a plain
//! stream must yield each chunk within `[limits] handler_timeout` of hyper asking for it (the
//! idle rule: time spent waiting for the client does not count), else the response is cut
//! off and the stream dropped, with a warning naming the route. An event stream has no idle
//! limit (see [`crate::sse`]): silence is its normal state, and its keep-alive comments notice
//! a client that went away.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Frame, SizeHint};

use crate::body::{Body, BoxError};
use crate::sse::{EventBody, EventPeer};

/// A stream of body chunks; an `Err` cuts the response off (the message is logged).
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// The body of a streamed answer ([`crate::module::HttpOutcome::Stream`]). It is sent once:
/// clones share it, and the first response that takes it streams it.
#[derive(Clone)]
pub struct StreamBody {
    inner: Arc<Mutex<Option<Streaming>>>,
}

/// What a [`StreamBody`] holds until it is sent.
pub(crate) struct Streaming {
    pub(crate) chunks: ChunkStream,
    /// The peer of an event stream, with its queue and keep-alive interval.
    pub(crate) event: Option<EventPeer>,
}

impl StreamBody {
    /// A body made of `chunks` (for a route module written in Rust in-process).
    pub fn new(chunks: ChunkStream) -> StreamBody {
        StreamBody::from_parts(chunks, None)
    }

    pub(crate) fn from_parts(chunks: ChunkStream, event: Option<EventPeer>) -> StreamBody {
        StreamBody {
            inner: Arc::new(Mutex::new(Some(Streaming { chunks, event }))),
        }
    }

    /// Whether this is a server-sent event stream.
    pub fn is_event_stream(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| s.event.is_some())
    }

    pub(crate) fn take(&self) -> Option<Streaming> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamBody(..)")
    }
}

impl PartialEq for StreamBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for StreamBody {}

/// The hyper body of a streamed answer from `file`; `idle` is the longest a plain stream may
/// keep hyper waiting for a chunk. An event stream ends when `shutdown` fires; a plain stream
/// is an in-flight response, which the shutdown lets finish (within its timeout).
pub(crate) fn body(
    file: &str,
    streaming: Streaming,
    idle: Duration,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Body {
    use http_body_util::BodyExt;
    match streaming.event {
        Some(event) => EventBody::new(file, streaming.chunks, event, shutdown).boxed_unsync(),
        None => ChunkBody {
            file: file.to_owned(),
            chunks: streaming.chunks,
            idle,
            deadline: None,
        }
        .boxed_unsync(),
    }
}

/// A plain streamed body: the route's chunks, each within `idle` of being asked for.
struct ChunkBody {
    file: String,
    chunks: ChunkStream,
    idle: Duration,
    /// Armed while the route keeps hyper waiting; cleared by each chunk.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for ChunkBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.chunks.as_mut().poll_next(cx) {
                // An empty chunk carries nothing (and must not end a chunked body early).
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.deadline = None;
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(Err(message))) => {
                    let file = &this.file;
                    tracing::error!(target: "nitro::route", route = %file, "the body stream of `{file}` failed, the response was cut off: {message}");
                    return Poll::Ready(Some(Err(message.into())));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        let idle = this.idle;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if deadline.as_mut().poll(cx).is_ready() {
            let file = &this.file;
            tracing::warn!(target: "nitro::route", route = %file, "the body stream of `{file}` gave no chunk for {} s: the response was cut off and the stream dropped", idle.as_secs_f64());
            return Poll::Ready(Some(Err(format!(
                "the body stream of `{file}` stalled for {} s",
                idle.as_secs_f64()
            )
            .into())));
        }
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

use std::future::Future as _;
