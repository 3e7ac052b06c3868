//! The route side of streamed answers: a Rust stream of chunks as an [`abi::BodyStream`], and
//! the responder of the call being answered, which `nitro::sse` asks for its peer.
//!
//! The host polls a body stream only when its client is ready for more. Each poll and the final
//! drop enter the route's runtime and run under `catch_unwind`, as a task's do
//! ([`super::task`]): a panic ends the stream with [`abi::STREAM_ERROR`] and its message.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use nitro_abi as abi;

use super::guard::panic_report;
use super::host::{RawPeer, host_responder_size};
use super::task::{drop_future, waker_ref};
use crate::Request;
use crate::streamed::ChunkStream;

thread_local! {
    /// The responder of the `http` call running on this thread (inside the sync call, or
    /// inside each poll of the async handler's task): what `nitro::sse` opens its peer with.
    static CURRENT: Cell<*const abi::HttpResponder> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `res` as the responder of the current call (restoring the previous one).
pub(super) fn with_responder<R>(res: *const abi::HttpResponder, f: impl FnOnce() -> R) -> R {
    struct Restore(*const abi::HttpResponder);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(res)));
    f()
}

/// Whether the host's responder has the field that ends at `end` (see
/// [`abi::HostApi::http_responder_size`]).
fn responder_has(end: usize) -> bool {
    host_responder_size().is_some_and(|size| size >= end)
}

/// Whether the host takes body streams.
pub(crate) fn host_streams() -> bool {
    responder_has(
        std::mem::offset_of!(abi::HttpResponder, stream)
            + std::mem::size_of::<unsafe extern "C" fn()>(),
    )
}

/// Asks the host to make the answer of the current call an event stream: returns the host's
/// peer for it (owned), or why not.
pub(crate) fn open_event_peer(req: &Request, namespace: &str) -> Result<RawPeer, String> {
    let res = CURRENT.with(Cell::get);
    if res.is_null() {
        return Err(
            "an event stream can only be made while a handler runs (not in a task it spawned)"
                .into(),
        );
    }
    let end = std::mem::offset_of!(abi::HttpResponder, event_stream)
        + std::mem::size_of::<unsafe extern "C" fn()>();
    if !responder_has(end) {
        return Err("this server does not support event streams: rebuild the route with the `nitro` that serves it".into());
    }
    let pairs = |list: &[(String, String)]| -> Vec<abi::Pair> {
        list.iter()
            .map(|(name, value)| abi::Pair {
                name: abi::Bytes::new(name.as_bytes()),
                value: abi::Bytes::new(value.as_bytes()),
            })
            .collect()
    };
    let (headers, params, context) = (pairs(&req.headers), pairs(&req.params), pairs(&req.context));
    let view = abi::HttpRequest {
        method: abi::Bytes::new(req.method.as_bytes()),
        path: abi::Bytes::new(req.path.as_bytes()),
        query: abi::Bytes::new(req.query.as_bytes()),
        headers: abi::Pairs::new(&headers),
        params: abi::Pairs::new(&params),
        body: abi::Bytes::EMPTY,
        remote_addr: abi::Bytes::new(req.remote_addr.as_bytes()),
        context: abi::Pairs::new(&context),
    };
    let mut out = std::mem::MaybeUninit::<abi::Peer>::uninit();
    // SAFETY: `res` is the responder of the running call (set by `with_responder` for exactly
    // that call), whose host wrote `event_stream` (checked above); the request view and the
    // namespace are borrowed for the call, `out` is valid for a write.
    let status = unsafe {
        ((*res).event_stream)(
            (*res).ctx,
            &view,
            abi::Bytes::new(namespace.as_bytes()),
            out.as_mut_ptr(),
        )
    };
    if status != abi::PEER_OK {
        return Err("this answer already has an event stream".into());
    }
    // SAFETY: the host wrote a retained handle (it returned PEER_OK).
    Ok(RawPeer::owned(unsafe { out.assume_init() }))
}

/// Hands `stream` to the host as the body of the answer.
///
/// # Safety
/// `res` must be valid for the call (for an async call: inside the task's poll), and its host
/// must have the `stream` field ([`host_streams`]).
pub(super) unsafe fn answer_with(
    res: &abi::HttpResponder,
    stream: ChunkStream,
    keep_alive_ms: u64,
) {
    let state = Box::new(State {
        stream: Some(stream),
    });
    let body = abi::BodyStream {
        state: Box::into_raw(state) as *mut c_void,
        poll_next,
        drop: drop_stream,
    };
    // SAFETY: caller contract; the host owns `body` from here.
    unsafe { (res.stream)(res.ctx, body, keep_alive_ms) }
}

/// The stream's state behind `abi::BodyStream::state`. The stream is boxed (`ChunkStream` is
/// `Pin<Box<…>>`), so it never moves.
struct State {
    /// `None` once it ended, failed or panicked.
    stream: Option<ChunkStream>,
}

/// Sends `bytes` to the host's sink.
///
/// # Safety
/// `sink` must be valid for the call.
unsafe fn give(sink: *const abi::BytesSink, bytes: &[u8]) {
    // SAFETY: caller contract; the bytes are borrowed for the callback.
    unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(bytes)) }
}

unsafe extern "C" fn poll_next(
    state: *mut c_void,
    waker: *const abi::Waker,
    sink: *const abi::BytesSink,
) -> i32 {
    // SAFETY: `state` is the `State` made by `answer_with` (the host never polls concurrently or
    // after `drop`); `waker` and `sink` are valid for this call (ABI contract).
    let (state, waker) = unsafe { (&mut *(state as *mut State), waker_ref(waker)) };
    let Some(stream) = state.stream.as_mut() else {
        // SAFETY: `sink` is valid for the call.
        unsafe { give(sink, b"the host polled a body stream after its end") };
        return abi::STREAM_ERROR;
    };
    let mut cx = Context::from_waker(&waker);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let _runtime = crate::rt::enter();
        stream.as_mut().poll_next(&mut cx)
    }));
    let (code, message) = match polled {
        Ok(Poll::Pending) => return abi::TASK_PENDING,
        Ok(Poll::Ready(Some(Ok(chunk)))) => {
            // SAFETY: `sink` is valid for the call.
            unsafe { give(sink, &chunk) };
            return abi::STREAM_CHUNK;
        }
        Ok(Poll::Ready(None)) => (abi::STREAM_END, None),
        Ok(Poll::Ready(Some(Err(error)))) => (abi::STREAM_ERROR, Some(error)),
        Err(payload) => (abi::STREAM_ERROR, Some(panic_report(&*payload))),
    };
    drop_future(&mut state.stream, "after it ended");
    if let Some(message) = message {
        // SAFETY: `sink` is valid for the call.
        unsafe { give(sink, message.as_bytes()) };
    }
    code
}

unsafe extern "C" fn drop_stream(state: *mut c_void) {
    // SAFETY: `state` is the `Box<State>` made by `answer_with`; the host drops it once.
    let mut state = unsafe { Box::from_raw(state as *mut State) };
    drop_future(&mut state.stream, "its client went away");
}
