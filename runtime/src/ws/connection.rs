//! One task per WebSocket connection: read frames, run hooks in order, write the queue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::peer::{Outbound, PeerRef};
use super::queue::{self, Receiver, Sender};
use crate::module::{CallError, RouteModule};
use crate::shared::Shared;
use crate::{App, RouteEntry};

/// How long the server waits for the client's reply to its close frame, and for the last
/// frames to be written, before dropping the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Events waiting for the hook runner. Bounded, so a slow hook slows the reading of this
/// peer's socket (TCP backpressure) instead of queueing without limit.
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

#[derive(Debug)]
enum Event {
    Open,
    Message(Bytes, bool),
    Close(u16, String),
    /// Answered once every event before it has been handled.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Runs a peer from the accepted upgrade to the end of its `close` hook.
pub(crate) async fn run_peer<S>(task: PeerTask, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let PeerTask {
        shared,
        peer,
        outbound,
        route_file,
    } = task;
    let (sink, mut stream) = ws.split();
    let stop_writer = CancellationToken::new();
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbound,
        peer.clone(),
        stop_writer.clone(),
    ));
    let (events, event_rx) = queue::queue(Some(EVENT_QUEUE));
    let hooks = tokio::spawn(hook_loop(
        shared.clone(),
        route_file.clone(),
        peer.clone(),
        event_rx,
    ));

    shared.hub.register(&peer);
    tracing::debug!(target: "nitro::ws", peer = %peer, route = %route_file, "peer connected");
    let _ = events.send(Event::Open).await;

    let (code, reason) = read_loop(
        &mut stream,
        &events,
        &peer,
        &shared.shutdown,
        shared.config.limits.ws_idle_timeout,
        &mut writer,
        &stop_writer,
    )
    .await;
    peer.set_closing();
    tracing::debug!(target: "nitro::ws", peer = %peer, code, reason = %reason, "peer disconnected");

    let _ = events.send(Event::Close(code, reason)).await;
    drop(events);
    let _ = hooks.await;
    // In case the hook runner could not do it.
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
    events: &Sender<Event>,
    peer: &PeerRef,
    shutdown: &CancellationToken,
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

    loop {
        let sleep_until = deadline.unwrap_or_else(Instant::now);
        let idle_check = if pinged {
            last_heard + idle_timeout
        } else {
            last_heard + idle_timeout / 2
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if deadline.is_none() => {
                peer.close_with(1001, "server shutting down");
                deadline = Some(Instant::now() + CLOSE_TIMEOUT);
            }
            _ = peer.closing_token().cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + CLOSE_TIMEOUT);
            }
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                tracing::debug!(target: "nitro::ws", peer = %peer, "closing handshake timed out");
                return finished(received);
            }
            _ = tokio::time::sleep_until(idle_check), if deadline.is_none() => {
                if pinged {
                    tracing::debug!(target: "nitro::ws", peer = %peer, "closing a peer silent for {idle_timeout:?}");
                    peer.close_with(1001, "idle timeout");
                    deadline = Some(Instant::now() + CLOSE_TIMEOUT);
                } else {
                    pinged = true;
                    peer.enqueue(Message::Ping(Bytes::new()));
                }
            }
            next = stream.next() => {
                if let Some(Ok(_)) = next {
                    last_heard = Instant::now();
                    pinged = false;
                }
                match next {
                    None => return finished(received),
                    Some(Ok(Message::Text(text))) => {
                        // Data after a close frame is dropped: the peer is no longer open.
                        if peer.is_open() {
                            let _ = events.send(Event::Message(Bytes::from(text), false)).await;
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        if peer.is_open() {
                            let _ = events.send(Event::Message(data, true)).await;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        peer.set_closing();
                        received = Some(match frame {
                            Some(frame) => (frame.code.into(), frame.reason.to_string()),
                            None => (1005, String::new()),
                        });
                        // tungstenite replies by itself; wait for the end of the stream.
                        deadline.get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
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
                        let (handled, barrier) = tokio::sync::oneshot::channel();
                        if events.send(Event::Barrier(handled)).await.is_ok() {
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, barrier).await;
                        }
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
    let overflowed = peer.overflowed().clone();
    let drained = tokio::select! {
        biased;
        () = overflowed.cancelled() => false,
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
    loop {
        let item = tokio::select! {
            biased;
            item = queue.recv() => item,
            _ = stop.cancelled() => None,
        };
        let Some(mut item) = item else { return };
        let mut batch = 0;
        loop {
            match item {
                Outbound::Frame(message) => {
                    peer.dequeued(message.len());
                    if sink.feed(message).await.is_err() {
                        return;
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

/// Runs the hooks of one peer strictly one at a time, in order.
async fn hook_loop(shared: Arc<Shared>, file: String, peer: PeerRef, mut events: Receiver<Event>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Open => {
                if run_hook(&shared, &file, &peer, Hook::Open).await.is_err() {
                    peer.close_with(1011, "internal error");
                }
            }
            Event::Message(data, binary) => {
                let _ = run_hook(&shared, &file, &peer, Hook::Message(data, binary)).await;
            }
            Event::Barrier(handled) => {
                let _ = handled.send(());
            }
            Event::Close(code, reason) => {
                // Leave before `close` runs (as crossws does): the peer is no longer among
                // `peers()`, and its `publish` still reaches the others.
                peer.set_closed();
                shared.hub.unregister(&peer);
                let _ = run_hook(&shared, &file, &peer, Hook::Close(code, reason)).await;
                return;
            }
        }
    }
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

/// Runs one hook of the route's current code. A failure is logged and reported to the
/// route's `error` hook; `Err` tells the caller it failed.
async fn run_hook(shared: &Shared, file: &str, peer: &PeerRef, hook: Hook) -> Result<(), ()> {
    let name = hook.name();
    let Some(module) = current_module(&shared.app(), file, name) else {
        return Ok(());
    };
    let pool = &shared.route_pool;
    // An `async fn` hook is polled here, in the peer's task; a sync one runs on the pool. Either
    // way the next event waits for it, so a peer's hooks run one at a time, in order.
    let started = match &hook {
        Hook::Open => module.ws_open_async(peer),
        Hook::Message(data, binary) => module.ws_message_async(peer, data, *binary),
        Hook::Close(code, reason) => module.ws_close_async(peer, *code, reason),
    };
    let result = match started {
        Some(call) => pool.run_async(file, call).await,
        None => {
            let (hook_module, hook_peer) = (module.clone(), peer.clone());
            pool.call(file, move || match hook {
                Hook::Open => hook_module.ws_open(&hook_peer),
                Hook::Message(data, binary) => hook_module.ws_message(&hook_peer, &data, binary),
                Hook::Close(code, reason) => hook_module.ws_close(&hook_peer, code, &reason),
            })
            .await
        }
    }
    .unwrap_or_else(|overrun| Err(overrun.into()));
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
        Some(call) => pool.run_async(file, call).await,
        None => {
            let error_peer = peer.clone();
            pool.call(file, move || module.ws_error(&error_peer, &message))
                .await
        }
    };
    match reported.unwrap_or_else(|overrun| Err(overrun.into())) {
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
