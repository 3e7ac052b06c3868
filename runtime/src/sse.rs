//! The server's side of server-sent events: the body of an event stream.
//!
//! A route answers with an event stream through `nitro::sse` (ABI: `HttpResponder::
//! event_stream`, then `stream`). The host gives the stream a [`Peer`] in the hub, with no
//! socket of its own: subscribing, `publish` (local, or relayed by the Redis backplane),
//! `send`, `peers()` and closing all work as for a WebSocket peer. The response body
//! ([`EventBody`]) merges, in the order they come:
//!
//! - the route's own chunks (already framed as events by `nitro::sse`);
//! - the peer's outbound queue: a text message becomes one `data` event (each line a `data:`
//!   line), a binary message is written as is (`nitro::sse::Event`s travel this way);
//! - a `: keep-alive` comment after the keep-alive interval without output.
//!
//! The stream ends when the peer is closed (`peer.close()`, server shutdown's `1001`, a send
//! queue that overflowed: the same bounds as a WebSocket peer's), or when the route's own
//! events end (it closes the peer). When the response ends or the client goes away, the body
//! is dropped: the peer leaves the hub and its topics ([`EventPeer`]'s `Drop`), and the route's
//! stream is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use hyper::body::{Frame, SizeHint};
use tokio_tungstenite::tungstenite::Message;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::body::BoxError;
use crate::ws::Hub;
use crate::ws::peer::{Outbound, PeerRef};
use crate::ws::queue::Receiver;

/// The comment written after the keep-alive interval without output.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The hub peer of an event stream. Dropping it takes the peer out of the hub (and its
/// topics): when the response ends, when the client goes away, or when the answer was never
/// sent.
pub(crate) struct EventPeer {
    pub(crate) peer: PeerRef,
    pub(crate) outbound: Receiver<Outbound>,
    pub(crate) hub: Arc<Hub>,
    /// A comment after this long without output (`None`: never).
    pub(crate) keep_alive: Option<Duration>,
}

impl Drop for EventPeer {
    fn drop(&mut self) {
        self.peer.set_closing();
        self.peer.set_closed();
        self.hub.unregister(&self.peer);
        tracing::debug!(target: "nitro::sse", peer = %self.peer.id(), "an event stream ended");
    }
}

/// A text message as one `data` event: a `data:` line per line (split at CRLF, CR or LF, as
/// the browser's parser does), then the blank line that dispatches it.
pub(crate) fn data_event(text: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 16);
    let mut rest = text;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        out.put_slice(b"data: ");
        out.put_slice(&rest[..end]);
        out.put_u8(b'\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// The route's chunks (the same type as `stream::ChunkStream`, which this file does not import:
/// `stream.rs` imports this one).
type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// The body of an event stream.
pub(crate) struct EventBody {
    file: String,
    /// The route's own chunks, until they end.
    chunks: Option<Chunks>,
    event: EventPeer,
    /// Fires after the keep-alive interval without output.
    keep_alive: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Fires when the server shuts down: the peer is closed with `1001`, as WebSocket peers
    /// are, so the connection drains instead of holding the shutdown up.
    /// `None` once it fired.
    shutdown: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl EventBody {
    pub(crate) fn new(
        file: &str,
        chunks: Chunks,
        event: EventPeer,
        shutdown: &CancellationToken,
    ) -> EventBody {
        let keep_alive = event
            .keep_alive
            .map(|every| Box::pin(tokio::time::sleep(every)));
        EventBody {
            file: file.to_owned(),
            chunks: Some(chunks),
            event,
            keep_alive,
            shutdown: Some(Box::pin(shutdown.clone().cancelled_owned())),
        }
    }

    /// Something went out: the keep-alive clock starts again.
    fn wrote(&mut self) {
        if let (Some(timer), Some(every)) = (self.keep_alive.as_mut(), self.event.keep_alive) {
            timer.as_mut().reset(tokio::time::Instant::now() + every);
        }
    }
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // A peer whose queue overflowed is cut off at once (what is queued is dropped).
        if this.event.peer.is_overflowed() {
            return Poll::Ready(None);
        }
        if let Some(shutdown) = this.shutdown.as_mut()
            && shutdown.as_mut().poll(cx).is_ready()
        {
            this.shutdown = None;
            this.event.peer.close_with(1001, "server shutting down");
        }
        while let Some(chunks) = this.chunks.as_mut() {
            match chunks.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.wrote();
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(Err(message))) => {
                    let file = &this.file;
                    tracing::error!(target: "nitro::route", route = %file, "the event stream of `{file}` failed, the response was cut off: {message}");
                    return Poll::Ready(Some(Err(message.into())));
                }
                // The route's own events are done; the peer's go on until it closes.
                Poll::Ready(None) => this.chunks = None,
                Poll::Pending => break,
            }
        }
        loop {
            match this.event.outbound.poll_recv(cx) {
                Poll::Ready(Some(Outbound::Frame(message))) => {
                    let peer = &this.event.peer;
                    peer.dequeued(message.len());
                    peer.made_progress();
                    let data = match message {
                        Message::Text(text) => data_event(text.as_bytes()),
                        Message::Binary(bytes) => bytes,
                        // Nothing else is ever queued for a peer's data.
                        _ => continue,
                    };
                    if data.is_empty() {
                        continue;
                    }
                    this.wrote();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                // Closed: the stream ends after what was queued before the close.
                Poll::Ready(Some(Outbound::Close { .. })) | Poll::Ready(None) => {
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if let Some(timer) = this.keep_alive.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            this.wrote();
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
        }
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_of_a_text_message_is_a_data_line() {
        assert_eq!(&data_event(b"hi")[..], b"data: hi\n\n");
        assert_eq!(
            &data_event(b"a\nb\r\nc\rd")[..],
            b"data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(&data_event(b"")[..], b"data: \n\n");
        assert_eq!(&data_event(b"end\n")[..], b"data: end\ndata: \n\n");
    }
}
