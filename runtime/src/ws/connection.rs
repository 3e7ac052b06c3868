//! One task per WebSocket connection: read frames, run hooks in order, write the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::fragment;
use super::peer::{Outbound, PeerRef};
use super::queue::Receiver;
use crate::module::{CallError, RouteModule};
use crate::shared::Shared;
use crate::{App, RouteEntry};

/// How long the server waits for the client's reply to its close frame, and for the last
/// frames to be written, before dropping the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Events waiting for their hook. Bounded, so a slow hook slows the reading of this peer's
/// socket (TCP backpressure) instead of queueing without limit.
const EVENT_QUEUE: usize = 16;

/// At most this many queued frames are written before a flush.
const WRITE_BATCH: usize = 64;

/// Everything the connection task needs besides the socket.
#[derive(Debug)]
pub(crate) struct PeerTask {
    pub(crate) shared: Arc<Shared>,
    pub(crate) peer: PeerRef,
    pub(crate) outbound: Receiver<Outbound>,
    /// The route file (`routes/_ws.rs`), looked up in the current app at each event.
    pub(crate) route_file: String,
}

/// A peer whose `open` hook has run ([`open`]), waiting for its connection.
#[derive(Debug)]
pub(crate) struct OpenedPeer {
    task: PeerTask,
    /// The `open` call, when it passed the handler timeout and is still running: the next
    /// hook waits for it.
    late: Late,
}

impl OpenedPeer {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.task.shared
    }
}

/// Runs the peer's `open` hook. It runs before the dispatcher answers `101`, so whatever
/// `open` does (subscribe to a topic above all) has happened by the time the client learns it
/// is connected: a message published to that topic by anyone after that point reaches it, as
/// with Nitro on Node, whose single thread runs `open` before anything else. Frames `open`
/// sends wait in the peer's queue until the connection is handed over.
pub(crate) async fn open(task: PeerTask) -> OpenedPeer {
    let late = handle_event(
        &task.shared,
        &task.route_file,
        &task.peer,
        Event::Open,
        Late(None),
    )
    .await;
    OpenedPeer { task, late }
}

/// Ends a peer whose `open` ran but whose connection never came (the client left before hyper
/// handed it over): its `close` hook runs with `1006`, and it leaves the hub.
pub(crate) async fn abandon(opened: OpenedPeer) {
    let OpenedPeer {
        task:
            PeerTask {
                shared,
                peer,
                route_file,
                ..
            },
        late,
    } = opened;
    peer.set_closing();
    let mut hooks = Hooks::new(&shared, &route_file, &peer);
    hooks.late = Some(late);
    hooks.push(Event::Close(1006, String::new()));
    hooks.run().await;
    peer.set_closed();
    shared.hub.unregister(&peer);
}

#[derive(Debug)]
enum Event {
    Open,
    Message(Bytes, bool),
    Close(u16, String),
}

/// Runs a peer from the accepted upgrade to the end of its `close` hook.
pub(crate) async fn run_peer<S>(opened: OpenedPeer, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let OpenedPeer {
        task:
            PeerTask {
                shared,
                peer,
                outbound,
                route_file,
            },
        late,
    } = opened;
    let (sink, mut stream) = ws.split();
    let stop_writer = CancellationToken::new();
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbound,
        peer.clone(),
        stop_writer.clone(),
    ));
    let mut hooks = Hooks::new(&shared, &route_file, &peer);
    hooks.late = Some(late);
    if shared.shutdown.is_cancelled() {
        // Upgraded after the server closed every peer (`Server::run`).
        peer.close_with(1001, "server shutting down");
    }

    // Registered, and opened, by the dispatcher before the `101` was sent.
    tracing::debug!(target: "nitro::ws", peer = %peer, route = %route_file, "peer connected");

    let (code, reason) = read_loop(
        &mut stream,
        &mut hooks,
        &peer,
        shared.config.limits.ws_idle_timeout,
        &mut writer,
        &stop_writer,
    )
    .await;
    peer.set_closing();
    tracing::debug!(target: "nitro::ws", peer = %peer, code, reason = %reason, "peer disconnected");

    hooks.push(Event::Close(code, reason));
    hooks.run().await;
    // In case the `close` event could not run.
    peer.set_closed();
    shared.hub.unregister(&peer);

    stop_writer.cancel();
    // The read loop may already have waited for it (after a protocol error); a finished
    // `JoinHandle` must not be polled again.
    if !writer.is_finished()
        && tokio::time::timeout(CLOSE_TIMEOUT, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

/// Reads until the connection ends; returns the close code and reason for the `close` hook.
async fn read_loop<S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    hooks: &mut Hooks<'_>,
    peer: &PeerRef,
    idle_timeout: Duration,
    writer: &mut tokio::task::JoinHandle<()>,
    stop_writer: &CancellationToken,
) -> (u16, String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The client's close frame, once received.
    let mut received: Option<(u16, String)> = None;
    // Armed when either side starts closing: the handshake must finish by then.
    let mut deadline: Option<Instant> = None;
    let finished = |received: Option<(u16, String)>| {
        received
            .or_else(|| peer.sent_close().cloned())
            .unwrap_or((1006, String::new()))
    };
    // Silence for half the idle timeout gets a ping; for the whole of it, a close.
    let mut last_heard = Instant::now();
    let mut pinged = false;
    // One timer, for the life of the loop, serves the idle check and, once closing, the
    // handshake's deadline: a frame costs no timer registration. The idle check is not moved
    // when a frame arrives; when it fires early it is set again from `last_heard`. (Keeping
    // the two cancellation futures for the life of the loop as well would save their waiter
    // registration per frame, but costs about 100 bytes per idle peer.)
    let timer = tokio::time::sleep_until(last_heard + idle_timeout / 2);
    tokio::pin!(timer);

    loop {
        tokio::select! {
            biased;
            // Also at shutdown: the server closes every peer with `1001`.
            () = peer.server_closing(), if deadline.is_none() => {
                let at = Instant::now() + CLOSE_TIMEOUT;
                deadline = Some(at);
                timer.as_mut().reset(at);
            }
            // The hooks of the frames read so far run here, on this task, before more is read:
            // a frame reaches its hook without waking another task (a hook task of its own
            // would cost a wake-up per message, often on the other worker).
            () = hooks.run(), if !hooks.is_idle() => {}
            () = &mut timer => {
                if deadline.is_some() {
                    tracing::debug!(target: "nitro::ws", peer = %peer, "closing handshake timed out");
                    return finished(received);
                }
                let due = last_heard + if pinged { idle_timeout } else { idle_timeout / 2 };
                if Instant::now() < due {
                    // Heard from the client since the timer was set.
                    timer.as_mut().reset(due);
                } else if pinged {
                    tracing::debug!(target: "nitro::ws", peer = %peer, "closing a peer silent for {idle_timeout:?}");
                    peer.close_with(1001, "idle timeout");
                    let at = Instant::now() + CLOSE_TIMEOUT;
                    deadline = Some(at);
                    timer.as_mut().reset(at);
                } else {
                    pinged = true;
                    peer.enqueue(Message::Ping(Bytes::new()));
                    timer.as_mut().reset(last_heard + idle_timeout);
                }
            }
            next = stream.next(), if !hooks.is_full() => {
                if let Some(Ok(_)) = next {
                    last_heard = Instant::now();
                    pinged = false;
                }
                match next {
                    None => return finished(received),
                    Some(Ok(Message::Text(text))) => {
                        crate::telemetry::metrics::ws_received();
                        // Data after a close frame is dropped: the peer is no longer open.
                        if peer.is_open() {
                            hooks.push(Event::Message(Bytes::from(text), false));
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        crate::telemetry::metrics::ws_received();
                        if peer.is_open() {
                            hooks.push(Event::Message(data, true));
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        peer.set_closing();
                        received = Some(match frame {
                            Some(frame) => (frame.code.into(), frame.reason.to_string()),
                            None => (1005, String::new()),
                        });
                        // tungstenite replies by itself; wait for the end of the stream.
                        if deadline.is_none() {
                            let at = Instant::now() + CLOSE_TIMEOUT;
                            deadline = Some(at);
                            timer.as_mut().reset(at);
                        }
                    }
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(err)) => {
                        let Some((code, reason)) = close_for(&err) else {
                            tracing::debug!(target: "nitro::ws", peer = %peer, "connection error: {err}");
                            return finished(received);
                        };
                        tracing::debug!(target: "nitro::ws", peer = %peer, code, "closing after a protocol error: {err}");
                        // The messages that came before the bad frame are handled first (their
                        // answers go out before the close frame), within the close timeout.
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, hooks.run()).await;
                        if peer.close_with(code, reason) {
                            // Let the writer send the close frame, then drop the connection:
                            // after a protocol error the rest of the input cannot be trusted.
                            stop_writer.cancel();
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut *writer).await;
                        }
                        return (code, reason.to_owned());
                    }
                }
            }
        }
    }
}

/// The close frame to answer a read error with, or `None` when the connection is gone.
fn close_for(err: &WsError) -> Option<(u16, &'static str)> {
    match err {
        WsError::Utf8(_) => Some((1007, "invalid UTF-8")),
        // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
        WsError::Capacity(CapacityError::MessageTooLong { size, .. })
            if *size as u64 > i64::MAX as u64 =>
        {
            Some((1002, "protocol error"))
        }
        WsError::Capacity(_) => Some((1009, "message too big")),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) | WsError::AttackAttempt => Some((1002, "protocol error")),
        _ => None,
    }
}

/// Writes queued frames, flushing after each batch, until a close frame was sent, the queue
/// is closed, or `stop` is cancelled and the queue is empty. When the peer's queue overflows
/// (a client that does not read), whatever is queued is dropped at once and `1008` is sent
/// (if the socket takes it within the close timeout).
async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut queue: Receiver<Outbound>,
    peer: PeerRef,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let drained = tokio::select! {
        biased;
        () = peer.overflow() => false,
        () = write_queue(&mut sink, &mut queue, &peer, stop) => true,
    };
    if drained {
        return;
    }
    // Release the memory now; the frames would never be read anyway.
    while let Some(item) = queue.try_recv() {
        if let Outbound::Frame(message) = item {
            peer.dequeued(message.len());
        }
    }
    drop(queue);
    let (code, reason) = peer.sent_close().cloned().unwrap_or((1008, String::new()));
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

async fn write_queue<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    queue: &mut Receiver<Outbound>,
    peer: &PeerRef,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let item = tokio::select! {
            biased;
            item = queue.recv() => item,
            () = &mut stopped => None,
        };
        let Some(mut item) = item else { return };
        let mut batch = 0;
        loop {
            match item {
                Outbound::Frame(message) => {
                    peer.dequeued(message.len());
                    crate::telemetry::metrics::ws_sent();
                    for frame in fragment::fragments(message) {
                        if sink.feed(frame).await.is_err() {
                            return;
                        }
                        // The socket took the frame before it (`feed` waits for room).
                        peer.made_progress();
                    }
                }
                Outbound::Close { code, reason } => {
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            }
            batch += 1;
            match queue.try_recv() {
                Some(next) if batch < WRITE_BATCH => item = next,
                Some(next) => {
                    if sink.flush().await.is_err() {
                        return;
                    }
                    batch = 0;
                    item = next;
                }
                None => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The hooks of one peer, run strictly one at a time, in order, on the peer's own task. A hook
/// that passes the handler timeout is reported as failed at once, but the peer's next hook (its
/// `error` hook first) waits until it has returned: a peer's hooks never overlap.
struct Hooks<'a> {
    shared: &'a Shared,
    file: &'a str,
    peer: &'a PeerRef,
    /// Events read but not yet started, at most [`EVENT_QUEUE`].
    pending: VecDeque<Event>,
    /// The event being handled; it owns `late` until it finishes.
    current: Option<Pin<Box<dyn Future<Output = Late> + Send + 'a>>>,
    late: Option<Late>,
}

impl<'a> Hooks<'a> {
    fn new(shared: &'a Shared, file: &'a str, peer: &'a PeerRef) -> Self {
        Hooks {
            shared,
            file,
            peer,
            pending: VecDeque::new(),
            current: None,
            late: Some(Late(None)),
        }
    }

    /// Queues an event; it starts when every event before it has been handled.
    fn push(&mut self, event: Event) {
        self.pending.push_back(event);
        self.start_next();
    }

    /// True when the reader should wait for the hooks before reading more.
    fn is_full(&self) -> bool {
        self.pending.len() >= EVENT_QUEUE
    }

    fn is_idle(&self) -> bool {
        self.current.is_none() && self.pending.is_empty()
    }

    fn start_next(&mut self) {
        if self.current.is_some() {
            return;
        }
        let Some(event) = self.pending.pop_front() else {
            return;
        };
        let late = self.late.take().unwrap_or(Late(None));
        let (shared, file, peer) = (self.shared, self.file, self.peer);
        self.current = Some(Box::pin(handle_event(shared, file, peer, event, late)));
    }

    /// Handles the queued events; finishes when there are none left.
    fn run(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_run(cx))
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(current) = self.current.as_mut() {
            let late = std::task::ready!(current.as_mut().poll(cx));
            self.current = None;
            self.late = Some(late);
            self.start_next();
        }
        Poll::Ready(())
    }
}

/// Runs the hook of one event; gives back the peer's late call, if any, for the next one.
async fn handle_event(
    shared: &Shared,
    file: &str,
    peer: &PeerRef,
    event: Event,
    mut late: Late,
) -> Late {
    match event {
        Event::Open => {
            if run_hook(shared, file, peer, Hook::Open, &mut late)
                .await
                .is_err()
            {
                peer.close_with(1011, "internal error");
            }
        }
        Event::Message(data, binary) => {
            let _ = run_hook(shared, file, peer, Hook::Message(data, binary), &mut late).await;
        }
        Event::Close(code, reason) => {
            // Leave before `close` runs (as crossws does): the peer is no longer among
            // `peers()`, and its `publish` still reaches the others.
            peer.set_closed();
            shared.hub.unregister(peer);
            let _ = run_hook(shared, file, peer, Hook::Close(code, reason), &mut late).await;
        }
    }
    late
}

#[derive(Debug)]
enum Hook {
    Open,
    Message(Bytes, bool),
    Close(u16, String),
}

impl Hook {
    fn name(&self) -> &'static str {
        match self {
            Hook::Open => "open",
            Hook::Message(..) => "message",
            Hook::Close(..) => "close",
        }
    }
}

/// A hook call of this peer that passed the handler timeout and may still be running: it
/// finishes when the sender, moved into the call, is dropped.
#[derive(Debug)]
struct Late(Option<tokio::sync::oneshot::Receiver<()>>);

impl Late {
    /// Waits until the late call (if any) has returned.
    async fn wait(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.await;
        }
    }
}

/// Runs `call` on the route pool after any late hook of this peer has returned; if it passes
/// the handler timeout itself, it becomes the late one.
async fn call_in_order(
    shared: &Shared,
    file: &str,
    late: &mut Late,
    call: impl FnOnce() -> Result<(), CallError> + Send + 'static,
) -> Result<(), CallError> {
    late.wait().await;
    let (finished, done) = tokio::sync::oneshot::channel::<()>();
    let result = shared
        .route_pool
        .call(file, move || {
            let result = call();
            drop(finished);
            result
        })
        .await;
    match result {
        Ok(result) => result,
        Err(overrun) => {
            late.0 = Some(done);
            Err(overrun.into())
        }
    }
}

/// Runs one hook of the route's current code. A failure is logged and reported to the
/// route's `error` hook; `Err` tells the caller it failed.
async fn run_hook(
    shared: &Shared,
    file: &str,
    peer: &PeerRef,
    hook: Hook,
    late: &mut Late,
) -> Result<(), ()> {
    let name = hook.name();
    let Some(module) = current_module(&shared.app(), file, name) else {
        return Ok(());
    };
    // An `async fn` hook is polled here, in the peer's task; a sync one runs on the pool. Either
    // way the next event waits for it, so a peer's hooks run one at a time, in order (a sync
    // hook past the handler timeout keeps its thread: `call_in_order` makes the next one wait).
    let started = match &hook {
        Hook::Open => module.ws_open_async(peer),
        Hook::Message(data, binary) => module.ws_message_async(peer, data, *binary),
        Hook::Close(code, reason) => module.ws_close_async(peer, *code, reason),
    };
    let result = match started {
        Some(call) => {
            late.wait().await;
            shared
                .route_pool
                .run_async(file, call)
                .await
                .unwrap_or_else(|overrun| Err(overrun.into()))
        }
        None => {
            let (hook_module, hook_peer) = (module.clone(), peer.clone());
            call_in_order(shared, file, late, move || match hook {
                Hook::Open => hook_module.ws_open(&hook_peer),
                Hook::Message(data, binary) => hook_module.ws_message(&hook_peer, &data, binary),
                Hook::Close(code, reason) => hook_module.ws_close(&hook_peer, code, &reason),
            })
            .await
        }
    };
    let err = match result {
        Ok(()) | Err(CallError::Missing) => return Ok(()),
        Err(err) => err,
    };
    tracing::error!(
        target: "nitro::route",
        route = %file,
        peer = %peer,
        "the WebSocket `{name}` hook of `{file}` failed: {err}"
    );
    let message = err.to_string();
    let reported = match module.ws_error_async(peer, &message) {
        Some(call) => {
            late.wait().await;
            shared
                .route_pool
                .run_async(file, call)
                .await
                .unwrap_or_else(|overrun| Err(overrun.into()))
        }
        None => {
            let error_peer = peer.clone();
            call_in_order(shared, file, late, move || {
                module.ws_error(&error_peer, &message)
            })
            .await
        }
    };
    match reported {
        Ok(()) | Err(CallError::Missing) => {}
        Err(err) => tracing::error!(
            target: "nitro::route",
            route = %file,
            peer = %peer,
            "the WebSocket `error` hook of `{file}` failed: {err}"
        ),
    }
    Err(())
}

/// The route's code in `app`, or `None` (logged) when it is not loaded.
fn current_module(app: &App, file: &str, hook: &str) -> Option<Arc<dyn RouteModule>> {
    match app.routes.get(file) {
        Some(RouteEntry::Loaded(module)) => Some(module.clone()),
        Some(RouteEntry::Failed { .. }) => {
            tracing::warn!(target: "nitro::route", route = %file, "skipping the WebSocket `{hook}` hook: route `{file}` failed to build");
            None
        }
        None => {
            tracing::warn!(target: "nitro::route", route = %file, "skipping the WebSocket `{hook}` hook: route `{file}` is not loaded");
            None
        }
    }
}
