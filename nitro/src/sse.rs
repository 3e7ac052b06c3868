//! Server-sent events: an [`EventStream`] answer that the browser reads with `EventSource`.
//!
//! An event stream is a response that stays open: the server writes [`Event`]s to it as they
//! happen, and the browser reconnects (sending the last `id` it saw as `Last-Event-ID`) when
//! the connection drops. Every event stream is also a peer in the server's pub/sub hub
//! ([`EventStream::peer`]): subscribe it to topics, and a `publish` from a WebSocket peer, from
//! an HTTP route ([`crate::ws::publish`]) or from another instance over the Redis backplane
//! reaches it as a `data` event, exactly as it reaches WebSocket peers. Its namespace is the
//! request path unless [`EventStream::in_namespace`] names another (a WebSocket route's path,
//! to share that route's topics).
//!
//! ```
//! // routes/clock.get.rs  →  GET /clock: an event every second, and the "news" topic
//! use nitro::sse::{Event, EventStream};
//! use std::time::Duration;
//!
//! pub fn handler(req: &nitro::Request) -> nitro::Result<EventStream> {
//!     let stream = EventStream::new(req)?.retry(Duration::from_secs(2));
//!     stream.peer().subscribe("news");
//!     if let Some(last) = stream.last_event_id() {
//!         stream.send(Event::new(format!("welcome back after {last}")));
//!     }
//!     Ok(stream)
//! }
//! ```
//!
//! What goes out:
//! - [`EventStream::send`] (or an [`EventSender`] kept elsewhere) writes a full [`Event`]:
//!   `event`, multi-line `data`, `id`, `retry`.
//! - A text message sent or published to the peer is one `data` event (`event` `message`).
//! - [`EventStream::events`] adds a stream of events of the route's own (any
//!   `Stream` ([`crate::body::Stream`]) of [`Event`]s, such as the receiver of a
//!   `nitro::body::channel`); when it ends, the response ends.
//! - A comment (`: keep-alive`) after [`EventStream::keep_alive`] (15 s by default) without
//!   output, so proxies keep the connection and a client that went away is noticed.
//!
//! The response has `content-type: text/event-stream`, `cache-control: no-cache` and
//! `x-accel-buffering: no` (nginx passes each event on at once), and is never compressed. It
//! ends when the client goes away (the peer leaves the hub and its topics), when the peer is
//! closed ([`crate::ws::Peer::close`]), or when the server shuts down. The handler timeout
//! applies to the handler only: an event stream may stay silent for as long as it likes.

use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::streamed::Streamed;
use crate::ws::Peer;
use crate::{Error, IntoResponse, Request, Response};

/// How long an event stream stays silent before a keep-alive comment, by default.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `Last-Event-ID` the browser sent when it reconnected: the `id` of the last event it
/// received.
pub fn last_event_id(req: &Request) -> Option<&str> {
    req.header("last-event-id")
}

/// One server-sent event.
///
/// ```
/// use nitro::sse::Event;
/// let event = Event::new("line one\nline two").event("note").id("7");
/// assert_eq!(event.to_string(), "event: note\nid: 7\ndata: line one\ndata: line two\n\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<Duration>,
    comment: Option<String>,
}

impl Event {
    /// An event carrying `data` (any text: each line becomes a `data:` line, and the browser
    /// joins them again with `\n`).
    pub fn new(data: impl Into<String>) -> Event {
        Event {
            data: Some(data.into()),
            ..Event::default()
        }
    }

    /// An event whose data is `value` as JSON.
    pub fn json(value: &impl serde::Serialize) -> Result<Event, Error> {
        serde_json::to_string(value)
            .map(Event::new)
            .map_err(|e| Error::internal(format!("the event is not serialisable as JSON: {e}")))
    }

    /// A comment line (`: text`), which `EventSource` ignores: a keep-alive or a note.
    pub fn comment(text: impl Into<String>) -> Event {
        Event {
            comment: Some(text.into()),
            ..Event::default()
        }
    }

    /// The event's type (`addEventListener(name, …)` in the browser; without one it is
    /// `message`). Line breaks are removed.
    pub fn event(mut self, name: impl Into<String>) -> Event {
        self.event = Some(one_line(name.into()));
        self
    }

    /// The event's id, which the browser sends back as `Last-Event-ID` when it reconnects.
    /// Line breaks and NUL are removed (the browser ignores an id with NUL).
    pub fn id(mut self, id: impl Into<String>) -> Event {
        self.id = Some(one_line(id.into()).replace('\0', ""));
        self
    }

    /// How long the browser waits before reconnecting after the connection drops.
    pub fn retry(mut self, after: Duration) -> Event {
        self.retry = Some(after);
        self
    }

    /// The event in the wire format, ending with the blank line that dispatches it.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

/// Removes CR and LF, which would end a field early.
fn one_line(text: String) -> String {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], "")
    } else {
        text
    }
}

/// The lines of `text` as the SSE parser splits them: at CRLF, CR or LF.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split("\r\n").flat_map(|part| part.split(['\r', '\n']))
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        if let Some(comment) = &self.comment {
            for line in lines(comment) {
                let _ = writeln!(out, ": {line}");
            }
        }
        if let Some(event) = &self.event {
            let _ = writeln!(out, "event: {event}");
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "id: {id}");
        }
        if let Some(retry) = self.retry {
            let _ = writeln!(out, "retry: {}", retry.as_millis());
        }
        if let Some(data) = &self.data {
            for line in lines(data) {
                let _ = writeln!(out, "data: {line}");
            }
        }
        out.push('\n');
        f.write_str(&out)
    }
}

/// Sends events to one event stream from anywhere (a task, another route's call through
/// [`crate::ws::peers`]): a handle on its peer. Sending to a stream that ended does nothing.
#[derive(Clone, Debug)]
pub struct EventSender {
    peer: Peer,
}

impl EventSender {
    /// Writes `event` to the stream (queued; never blocks). Returns false once the stream
    /// has ended.
    pub fn send(&self, event: Event) -> bool {
        self.peer.try_send(&event.to_bytes(), true)
    }

    /// The stream's peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

/// A server-sent event stream, returned from a handler (plain `fn` or `async fn`). See the
/// [module docs](self).
pub struct EventStream {
    peer: Peer,
    last_event_id: Option<String>,
    keep_alive: Duration,
    retry: Option<Duration>,
    source: Option<Pin<Box<dyn Stream<Item = Event> + Send>>>,
    on_close: Option<OnClose>,
}

type OnClose = Box<dyn FnOnce(&Peer) + Send>;

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("peer", &self.peer.id())
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// Starts the answer to `req` as an event stream, in the request path's namespace. Call it
    /// in the handler itself (not in a task it spawned); a `500` otherwise.
    pub fn new(req: &Request) -> Result<EventStream, Error> {
        EventStream::in_namespace(req, req.path())
    }

    /// Like [`new`](Self::new), with the peer in `namespace`: a WebSocket route's path (the
    /// seed chat's `/_ws`) lets `publish` from its peers reach this stream.
    pub fn in_namespace(req: &Request, namespace: &str) -> Result<EventStream, Error> {
        let raw = crate::ffi::open_event_peer(req, namespace).map_err(Error::internal)?;
        Ok(EventStream {
            peer: Peer::from_raw(raw),
            last_event_id: last_event_id(req).map(str::to_owned),
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: None,
            source: None,
            on_close: None,
        })
    }

    /// The stream's peer in the pub/sub hub: its id, `subscribe`, `publish`, `send` (text: a
    /// `data` event), context. It is listed by [`crate::ws::peers`] while the stream is open.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// A handle that sends events to this stream from elsewhere.
    pub fn sender(&self) -> EventSender {
        EventSender {
            peer: self.peer.clone(),
        }
    }

    /// Writes `event` to the stream, after what was sent before.
    pub fn send(&self, event: Event) {
        self.peer.try_send(&event.to_bytes(), true);
    }

    /// The `Last-Event-ID` of the request, as [`last_event_id`].
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Sends a comment after `every` without output (`Duration::ZERO`: never). Default 15 s.
    pub fn keep_alive(mut self, every: Duration) -> EventStream {
        self.keep_alive = every;
        self
    }

    /// Tells the browser to wait `after` before reconnecting (a `retry` field sent first).
    pub fn retry(mut self, after: Duration) -> EventStream {
        self.retry = Some(after);
        self
    }

    /// Runs `f` when the stream ends (the client went away, the peer was closed, the route's
    /// events ended), while the peer is still in the hub: the place to `publish` that it left,
    /// as a WebSocket route's `close` hook does.
    pub fn on_close(mut self, f: impl FnOnce(&Peer) + Send + 'static) -> EventStream {
        self.on_close = Some(Box::new(f));
        self
    }

    /// Adds the route's own events: each item of `events` is written as it comes, and the
    /// response ends when `events` ends.
    pub fn events<S>(mut self, events: S) -> EventStream
    where
        S: Stream<Item = Event> + Send + 'static,
    {
        self.source = Some(Box::pin(events));
        self
    }
}

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        let keep_alive_ms = u64::try_from(self.keep_alive.as_millis()).unwrap_or(u64::MAX);
        let preamble = self.retry.map(|after| {
            Event {
                retry: Some(after),
                ..Event::default()
            }
            .to_bytes()
        });
        let body = Source {
            preamble,
            source: self.source,
            peer: self.peer,
            on_close: self.on_close,
        };
        Response::new()
            .with_header("content-type", "text/event-stream")
            .with_header("cache-control", "no-cache")
            .with_header("x-accel-buffering", "no")
            .with_stream(Streamed::new(Box::pin(body), keep_alive_ms))
    }
}

/// The route's part of an event stream: the `retry` preamble, then the route's own events.
/// The server adds what is sent or published to the peer, and the keep-alive comments.
///
/// It lives as long as the response (the server drops it when the response ends), so its
/// `Drop` runs the `on_close` callback.
struct Source {
    preamble: Option<Vec<u8>>,
    source: Option<Pin<Box<dyn Stream<Item = Event> + Send>>>,
    peer: Peer,
    on_close: Option<OnClose>,
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some(on_close) = self.on_close.take() {
            on_close(&self.peer);
        }
    }
}

impl Stream for Source {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(preamble) = this.preamble.take() {
            return Poll::Ready(Some(Ok(preamble)));
        }
        let Some(source) = this.source.as_mut() else {
            // Only the peer feeds the stream, which the server ends when the peer closes; this
            // part stays until then (nothing to wake: it never yields again).
            return Poll::Pending;
        };
        match source.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event.to_bytes()))),
            Poll::Ready(None) => {
                // The route's events ended: so does the response (after what is queued).
                this.source = None;
                this.peer.close(1000, "");
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_data_becomes_one_data_line_each() {
        let event = Event::new("a\nb\r\nc\rd");
        assert_eq!(event.to_string(), "data: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(Event::new("").to_string(), "data: \n\n");
    }

    #[test]
    fn fields_cannot_break_the_framing() {
        let event = Event::new("x")
            .event("a\nb")
            .id("1\r\n2\0")
            .retry(Duration::from_millis(1500));
        assert_eq!(
            event.to_string(),
            "event: ab\nid: 12\nretry: 1500\ndata: x\n\n"
        );
        assert_eq!(Event::comment("hi\nthere").to_string(), ": hi\n: there\n\n");
    }

    #[test]
    fn last_event_id_is_read_from_the_header() {
        let req = Request::builder("GET", "/events")
            .header("Last-Event-ID", "41")
            .build();
        assert_eq!(last_event_id(&req), Some("41"));
        assert_eq!(last_event_id(&Request::builder("GET", "/").build()), None);
    }

    #[test]
    fn outside_a_handler_an_event_stream_is_a_500() {
        let req = Request::builder("GET", "/events").build();
        let err = EventStream::new(&req).unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(err.message().contains("while a handler runs"), "{err}");
    }
}
