//! The C ABI between the `nitro` host and a compiled route library.
//!
//! Every route file is compiled into its own `cdylib`. That library has its own copy of `std`,
//! its own allocator state and its own panic runtime, so nothing but plain `#[repr(C)]` data and
//! `extern "C"` function pointers may cross the boundary. The rules:
//!
//! - **Versioned first.** A route exports [`ROUTE_ABI_SYMBOL`] (`NITRO_ROUTE_ABI: u32`). The host
//!   reads it before anything else and refuses a library whose value is not [`NITRO_ABI_VERSION`].
//!   Then it calls [`ROUTE_ENTRY_SYMBOL`] to get a [`RouteV2`] table, whose `struct_size` lets
//!   later versions append fields.
//! - **Borrowed bytes only.** Every [`Bytes`] handed across is valid for the duration of the call
//!   that received it; the receiver copies what it keeps. The route answers through host callbacks
//!   (the host copies), so no side ever frees memory the other side allocated.
//! - **No unwinding.** Every exported function of a route catches panics inside the route and
//!   reports them through [`Outcome::fail`]; a panic never crosses the boundary. That includes
//!   [`Task::poll`] and [`Task::drop`]: a panic while dropping a task leaks what was left of it.
//!
//! ## Async calls (ABI 2)
//!
//! Each entry point of [`RouteV2`] has an `*_async` twin. A route fills in one of the two for each
//! hook: the sync one for a `fn` (the host runs it on a bounded pool of threads, where it may
//! block), the async one for an `async fn`. An async entry point copies its borrowed inputs at once
//! and writes a [`Task`] to its out-pointer; the host then polls the task on its own async workers
//! with a [`Waker`] it implements, and drops it exactly once (when it finished, or to cancel it).
//! The lifetime rule differs from a sync call in one place: the [`Outcome`] and the responder
//! passed to an async entry point stay valid **until the host drops the task** (the route answers
//! from inside `poll`), while the request, the peer handle and the other arguments are still
//! borrowed for the start call only. This is the layout of the `async-ffi` crate, written here so
//! that both sides depend on nothing: host and route may be built by different compilers, so no
//! `std::task::Context` ever crosses.
//!
//! ## Streamed bodies and event streams (appended)
//!
//! A route may answer with a [`BodyStream`] instead of bytes ([`HttpResponder::stream`]): a
//! stream the route owns and the host polls with a [`Waker`], like a [`Task`], one chunk per
//! poll and only when its client is ready for more; the host drops it exactly once. For a
//! server-sent event stream the route first asks for a peer ([`HttpResponder::event_stream`]):
//! a host peer with no socket, whose queue the host writes into the same response. Both fields
//! were appended to the responder: a route uses them only when
//! [`HostApi::http_responder_size`] covers them.
//!
//! This crate has no dependencies: it is compiled into the host and, materialised from the host
//! binary, into every route library, so both sides always agree on these layouts.
#![no_std]
#![deny(improper_ctypes, improper_ctypes_definitions)]

use core::ffi::c_void;

/// The version of this ABI. Bump it on any change to a type in this crate.
pub const NITRO_ABI_VERSION: u32 = 2;

/// Name of the exported `u32` static holding the route's [`NITRO_ABI_VERSION`].
pub const ROUTE_ABI_SYMBOL: &[u8] = b"NITRO_ROUTE_ABI\0";

/// Name of the exported `extern "C" fn() -> *const RouteV2`.
pub const ROUTE_ENTRY_SYMBOL: &[u8] = b"nitro_route_v2\0";

/// A borrowed byte slice, valid for the duration of the call that received it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    /// An empty slice (a dangling but non-null, aligned pointer and length 0).
    pub const EMPTY: Bytes = Bytes {
        ptr: core::ptr::NonNull::<u8>::dangling().as_ptr(),
        len: 0,
    };

    /// Borrows `slice` for a call.
    pub const fn new(slice: &[u8]) -> Bytes {
        Bytes {
            ptr: slice.as_ptr(),
            len: slice.len(),
        }
    }

    /// Views the bytes as a slice.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised bytes that stay valid and unchanged for `'a`
    /// (which the ABI guarantees for the duration of the call that received the value).
    #[allow(unsafe_code)]
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: non-empty, and the caller upholds the pointer/length contract above.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A borrowed `name: value` pair.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub name: Bytes,
    pub value: Bytes,
}

/// A borrowed list of pairs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Pairs {
    pub ptr: *const Pair,
    pub len: usize,
}

impl Pairs {
    /// Borrows `slice` for a call.
    pub const fn new(slice: &[Pair]) -> Pairs {
        Pairs {
            ptr: slice.as_ptr(),
            len: slice.len(),
        }
    }

    /// Views the pairs as a slice.
    ///
    /// # Safety
    /// As [`Bytes::as_slice`].
    #[allow(unsafe_code)]
    pub unsafe fn as_slice<'a>(self) -> &'a [Pair] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: non-empty, and the caller upholds the pointer/length contract.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The result of a call into a route.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub i32);

impl Status {
    /// The call completed.
    pub const OK: Status = Status(0);
    /// The route panicked; the message was sent to [`Outcome::fail`].
    pub const PANICKED: Status = Status(1);
    /// The route lacks the hook that was called (the host treats it as a no-op).
    pub const MISSING: Status = Status(2);
    /// The hook returned an error; the message was sent to [`Outcome::fail`].
    pub const FAILED: Status = Status(3);
}

/// What [`Task::poll`] returns while the task has not finished. Any other value is the final
/// [`Status`] of the call.
pub const TASK_PENDING: i32 = -1;

/// A waker handed across the boundary: `data` plus the functions of the side that made it.
///
/// The waker passed to [`Task::poll`] is borrowed for that call: the callee may call `clone` and
/// `wake_by_ref` on it, and must not call `wake` or `drop`. A waker obtained from `clone` is
/// owned: it is consumed by exactly one `wake` or `drop`. Every function may be called from any
/// thread and never unwinds.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Waker {
    pub data: *const c_void,
    pub vt: *const WakerVTable,
}

/// The functions of a [`Waker`]; `data` is the waker's own.
#[repr(C)]
#[derive(Debug)]
pub struct WakerVTable {
    /// Returns a new, owned waker for the same task.
    pub clone: unsafe extern "C" fn(data: *const c_void) -> Waker,
    /// Wakes the task and consumes an owned waker.
    pub wake: unsafe extern "C" fn(data: *const c_void),
    /// Wakes the task; the waker stays valid.
    pub wake_by_ref: unsafe extern "C" fn(data: *const c_void),
    /// Releases an owned waker without waking.
    pub drop: unsafe extern "C" fn(data: *const c_void),
}

/// A future handed across the boundary: `state` is owned by the side that made the task, which
/// alone interprets it.
///
/// The receiver calls `poll` (never concurrently, from any thread) until it returns something
/// other than [`TASK_PENDING`], and calls `drop` exactly once: after the final `poll`, or earlier
/// to cancel the task. Neither function unwinds.
#[repr(C)]
#[derive(Debug)]
pub struct Task {
    pub state: *mut c_void,
    /// Polls once with a borrowed waker; returns [`TASK_PENDING`] or the final [`Status`] (the
    /// value of its `.0`). A task that returned a final status is not polled again.
    pub poll: unsafe extern "C" fn(state: *mut c_void, waker: *const Waker) -> i32,
    /// Drops the task's state (the future, and whatever it holds). A task that panics here leaks
    /// the rest of its state rather than unwinding.
    pub drop: unsafe extern "C" fn(state: *mut c_void),
}

// SAFETY: a task's functions may be called from any thread (one call at a time, which `&mut`
// access to the `Task` gives), and a waker's from any thread at once: both are documented above
// and required of every implementation.
#[allow(unsafe_code)]
unsafe impl Send for Task {}
#[allow(unsafe_code)]
unsafe impl Send for Waker {}
#[allow(unsafe_code)]
unsafe impl Sync for Waker {}
#[allow(unsafe_code)]
unsafe impl Sync for WakerVTable {}

/// Per-call channel for what the route reports besides its answer.
#[repr(C)]
#[derive(Debug)]
pub struct Outcome {
    pub ctx: *mut c_void,
    /// Called at most once, before the entry point (or, for an async call, the task's final
    /// `poll`) returns [`Status::PANICKED`] (with the panic message and location:
    /// `panicked at routes/x.rs:3:5:\nboom`) or [`Status::FAILED`] (with the error the hook
    /// returned).
    pub fail: unsafe extern "C" fn(ctx: *mut c_void, message: Bytes),
}

/// An HTTP request (or the upgrade request of a WebSocket), borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct HttpRequest {
    /// `GET`, `POST`, … (upper case).
    pub method: Bytes,
    /// The URL path, as received (percent-encoded).
    pub path: Bytes,
    /// The raw query string without `?` (empty when there is none).
    pub query: Bytes,
    /// Header names in lower case, in the order received.
    pub headers: Pairs,
    /// Route parameters from the file name (`[id].rs` → `id`), percent-decoded.
    pub params: Pairs,
    /// The request body, fully buffered by the host.
    pub body: Bytes,
    /// The peer's socket address, `ip:port`.
    pub remote_addr: Bytes,
    /// Request context set by the middleware that ran before this call (`middleware/*.rs`):
    /// key and JSON text. Appended after the first release; the host always fills it in (it
    /// is empty when no middleware set anything).
    pub context: Pairs,
}

/// How a route answers an HTTP request. Implemented by the host; the route calls these during
/// the `http` call (or the polls of the `http_async` task), and the host copies everything it is
/// given.
#[repr(C)]
#[derive(Debug)]
pub struct HttpResponder {
    pub ctx: *mut c_void,
    pub status: unsafe extern "C" fn(ctx: *mut c_void, code: u16),
    /// Appends a header (several calls with the same name add several headers).
    pub header: unsafe extern "C" fn(ctx: *mut c_void, name: Bytes, value: Bytes),
    /// Appends to the body; may be called repeatedly.
    pub body: unsafe extern "C" fn(ctx: *mut c_void, chunk: Bytes),
    /// Answers with an error the host renders (JSON or HTML by `Accept`). `data` is JSON text or
    /// empty. Overrides status, headers and body set so far.
    pub error: unsafe extern "C" fn(ctx: *mut c_void, status: u16, message: Bytes, data: Bytes),
    /// Sets a request context entry (`value` is JSON text) for the steps after a middleware
    /// (the next middleware, the route, the WebSocket peer). Only a middleware's answer reads
    /// it: a middleware that calls `context` and none of `status`, `header`, `body`, `error`
    /// lets the request go on, with exactly the entries it set. Appended after the first
    /// release.
    pub context: unsafe extern "C" fn(ctx: *mut c_void, key: Bytes, value: Bytes),
    /// Answers with a body stream instead of the bytes given to `body` (status and headers as
    /// set). The host owns `body` from here: it polls it when the client is ready for more and
    /// drops it exactly once (at the end, on an error, or when the client goes away).
    /// `keep_alive_ms` only applies to an event stream (see `event_stream`): a comment line is
    /// sent after that long without output (0: never). Appended after `error`: use it only when
    /// [`HostApi::http_responder_size`] covers it.
    pub stream: unsafe extern "C" fn(ctx: *mut c_void, body: BodyStream, keep_alive_ms: u64),
    /// Makes this answer a server-sent event stream: the host creates a peer for it in its hub
    /// (in `namespace`; empty: the request path), whose topics, `send` and `publish` work as a
    /// WebSocket peer's, and writes a retained handle to `out` (the route releases it). A text
    /// message sent to the peer goes out as one `data` event, a binary one as is (already
    /// framed). `req` is borrowed for the call (the peer's request). The answer must then be a
    /// `stream`; otherwise the peer leaves the hub when the call ends. Returns [`PEER_OK`], or
    /// [`PEER_INVALID`] (nothing written) when called twice. Appended: see `stream`.
    pub event_stream: unsafe extern "C" fn(
        ctx: *mut c_void,
        req: *const HttpRequest,
        namespace: Bytes,
        out: *mut Peer,
    ) -> i32,
}

/// What [`BodyStream::poll_next`] returns when it handed one chunk to its sink.
pub const STREAM_CHUNK: i32 = 0;
/// What [`BodyStream::poll_next`] returns at the end of the body.
pub const STREAM_END: i32 = 1;
/// What [`BodyStream::poll_next`] returns when the stream failed (or panicked): the message
/// went to its sink; the host aborts the response.
pub const STREAM_ERROR: i32 = 2;

/// A response body produced by the route, chunk by chunk: `state` is owned by the route, which
/// alone interprets it (the same ownership rule as [`Task`]).
///
/// The host calls `poll_next` (never concurrently, from any thread) only when the client is
/// ready for more, so a slow reader holds back the route instead of filling the server's
/// memory; it calls `drop` exactly once, after [`STREAM_END`] or [`STREAM_ERROR`], or earlier
/// when the client went away. Neither function unwinds.
#[repr(C)]
#[derive(Debug)]
pub struct BodyStream {
    pub state: *mut c_void,
    /// Polls for the next chunk with a borrowed waker: returns [`TASK_PENDING`], or
    /// [`STREAM_CHUNK`] after one call of `sink` (the chunk, borrowed for that callback), or
    /// [`STREAM_END`], or [`STREAM_ERROR`] after one call of `sink` with the message.
    pub poll_next: unsafe extern "C" fn(
        state: *mut c_void,
        waker: *const Waker,
        sink: *const BytesSink,
    ) -> i32,
    /// Drops the stream's state (entering the route's runtime); a panic here leaks the rest.
    pub drop: unsafe extern "C" fn(state: *mut c_void),
}

// SAFETY: as for `Task`: the functions may be called from any thread, one call at a time.
#[allow(unsafe_code)]
unsafe impl Send for BodyStream {}

/// How the `upgrade` hook answers. Implemented by the host.
#[repr(C)]
#[derive(Debug)]
pub struct UpgradeResponder {
    pub ctx: *mut c_void,
    /// Refuses the upgrade with this status; `header`/`body` then shape the refusal.
    pub reject: unsafe extern "C" fn(ctx: *mut c_void, status: u16),
    /// Adds a header to the `101` (or to the refusal after `reject`).
    pub header: unsafe extern "C" fn(ctx: *mut c_void, name: Bytes, value: Bytes),
    /// Appends to the refusal's body.
    pub body: unsafe extern "C" fn(ctx: *mut c_void, chunk: Bytes),
    /// Accepts this subprotocol (must be one the client offered).
    pub protocol: unsafe extern "C" fn(ctx: *mut c_void, protocol: Bytes),
    /// Sets the pub/sub namespace of the peer (default: the URL path).
    pub namespace: unsafe extern "C" fn(ctx: *mut c_void, namespace: Bytes),
    /// Sets a per-peer context entry; `value` is JSON text.
    pub context: unsafe extern "C" fn(ctx: *mut c_void, key: Bytes, value: Bytes),
}

/// Receives byte strings from the host, one call per item.
#[repr(C)]
#[derive(Debug)]
pub struct BytesSink {
    pub ctx: *mut c_void,
    pub item: unsafe extern "C" fn(ctx: *mut c_void, item: Bytes),
}

/// Receives peer handles from the host, one call per peer. The handle is borrowed for the
/// callback; call [`PeerVTable::retain`] to keep it.
#[repr(C)]
#[derive(Debug)]
pub struct PeerSink {
    pub ctx: *mut c_void,
    pub item: unsafe extern "C" fn(ctx: *mut c_void, peer: Peer),
}

/// Return code of peer operations: 0 ok, [`PEER_CLOSED`] when the peer is gone.
pub const PEER_OK: i32 = 0;
/// The peer's connection is closed; the operation did nothing.
pub const PEER_CLOSED: i32 = 1;
/// The arguments were rejected (e.g. an invalid close code).
pub const PEER_INVALID: i32 = 2;

/// A host-owned WebSocket peer: socket, topics and context live in the host and survive
/// reloads of the route. Every function is non-blocking and safe to call from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct PeerVTable {
    /// Takes a reference: the handle stays valid until the matching `release`.
    pub retain: unsafe extern "C" fn(peer: *const c_void),
    pub release: unsafe extern "C" fn(peer: *const c_void),
    /// The peer's id (a UUID v4), valid as long as the handle.
    pub id: unsafe extern "C" fn(peer: *const c_void) -> Bytes,
    /// The remote address, `ip:port`, valid as long as the handle.
    pub remote_addr: unsafe extern "C" fn(peer: *const c_void) -> Bytes,
    /// The pub/sub namespace, valid as long as the handle.
    pub namespace: unsafe extern "C" fn(peer: *const c_void) -> Bytes,
    /// The upgrade request, valid as long as the handle; null when the host could not
    /// provide it.
    pub request: unsafe extern "C" fn(peer: *const c_void) -> *const HttpRequest,
    pub send: unsafe extern "C" fn(peer: *const c_void, data: Bytes, binary: bool) -> i32,
    /// Sends to every subscriber of `topic` in the peer's namespace, except the peer itself
    /// unless `self_too`.
    pub publish: unsafe extern "C" fn(
        peer: *const c_void,
        topic: Bytes,
        data: Bytes,
        binary: bool,
        self_too: bool,
    ) -> i32,
    pub subscribe: unsafe extern "C" fn(peer: *const c_void, topic: Bytes) -> i32,
    pub unsubscribe: unsafe extern "C" fn(peer: *const c_void, topic: Bytes) -> i32,
    /// Lists the peer's topics into `sink`.
    pub topics: unsafe extern "C" fn(peer: *const c_void, sink: *const BytesSink),
    /// Starts the closing handshake with `code` and `reason`.
    pub close: unsafe extern "C" fn(peer: *const c_void, code: u16, reason: Bytes) -> i32,
    /// Reads a context entry (JSON text) into `sink`; returns false when absent.
    pub context_get:
        unsafe extern "C" fn(peer: *const c_void, key: Bytes, sink: *const BytesSink) -> bool,
    /// Sets a context entry (JSON text); an empty value removes it.
    pub context_set: unsafe extern "C" fn(peer: *const c_void, key: Bytes, value: Bytes),
    /// Lists every context key into `sink`.
    pub context_keys: unsafe extern "C" fn(peer: *const c_void, sink: *const BytesSink),
    /// Lists the open peers of the same namespace (this one included) into `sink`.
    pub peers: unsafe extern "C" fn(peer: *const c_void, sink: *const PeerSink),
    /// Bytes of data frames queued for the peer and not yet handed to its socket.
    pub buffered_amount: unsafe extern "C" fn(peer: *const c_void) -> u64,
    /// The subprotocol the `101` named (empty: none), valid as long as the handle.
    pub protocol: unsafe extern "C" fn(peer: *const c_void) -> Bytes,
    /// One poll of "wait until the outbound queue is empty": true when it is empty or the
    /// connection is gone; otherwise false, and the host keeps a clone of `waker` (borrowed for
    /// the call, as in [`Task::poll`]) and wakes it once when that happens. Appended after the
    /// first release.
    pub poll_drain: unsafe extern "C" fn(peer: *const c_void, waker: *const Waker) -> bool,
}

/// A peer handle plus its functions. Borrowed for the hook call unless retained.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub handle: *const c_void,
    pub vt: *const PeerVTable,
}

/// The W3C trace context's `traceparent` header, read the same way by the host (its request
/// spans) and by routes (what `Request::traceparent` passes on).
pub mod trace_context {
    /// A valid `traceparent`: `<version>-<trace id>-<parent id>-<flags>`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TraceParent<'a> {
        /// 32 lowercase hex digits, not all zero.
        pub trace_id: &'a str,
        /// 16 lowercase hex digits, not all zero.
        pub parent_id: &'a str,
        /// The `sampled` flag.
        pub sampled: bool,
    }

    impl<'a> TraceParent<'a> {
        /// Parses a `traceparent` value (surrounding spaces allowed); `None` when it is not
        /// valid per the W3C spec: lowercase hex of 2, 32, 16 and 2 digits, version `ff`
        /// forbidden, all-zero ids forbidden; version `00` has exactly these four fields, a
        /// later version may append more.
        pub fn parse(value: &'a str) -> Option<TraceParent<'a>> {
            let value = value.trim();
            let mut parts = value.split('-');
            let version = parts.next()?;
            let trace_id = parts.next()?;
            let parent_id = parts.next()?;
            let flags = parts.next()?;
            let hex = |s: &str, len: usize| {
                s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            };
            if !hex(version, 2) || version == "ff" || !hex(trace_id, 32) || !hex(parent_id, 16) {
                return None;
            }
            if !hex(flags, 2) || (version == "00" && parts.next().is_some()) {
                return None;
            }
            if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
                return None;
            }
            let flags = u8::from_str_radix(flags, 16).ok()?;
            Some(TraceParent {
                trace_id,
                parent_id,
                sampled: flags & 1 == 1,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn traceparent() {
            let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            assert_eq!(
                TraceParent::parse(ok),
                Some(TraceParent {
                    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                    parent_id: "00f067aa0ba902b7",
                    sampled: true,
                })
            );
            assert_eq!(
                TraceParent::parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 "),
                TraceParent::parse(ok)
            );
            let not_sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            assert!(!TraceParent::parse(not_sampled).unwrap().sampled);
            // A later version may append fields.
            assert!(
                TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                    .is_some()
            );
            for bad in [
                "",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            ] {
                assert_eq!(TraceParent::parse(bad), None, "{bad}");
            }
        }
    }
}

/// Log levels for [`HostApi::log`].
pub mod level {
    pub const ERROR: u8 = 1;
    pub const WARN: u8 = 2;
    pub const INFO: u8 = 3;
    pub const DEBUG: u8 = 4;
    pub const TRACE: u8 = 5;
}

/// Services of the host, handed to the route's `init` and valid until the process exits.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    pub abi_version: u32,
    pub struct_size: u32,
    /// Which load of a route library this is, counted per process from 1 (names the route's
    /// runtime threads: `nitro-<route>-g<generation>`).
    pub generation: u64,
    pub ctx: *const c_void,
    /// Logs a line on the host's terminal, attributed to the route.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u8, message: Bytes),
    /// Publishes to every subscriber of `topic` (in `namespace`, or in all namespaces when it is
    /// empty): the adapter-level publish, usable from HTTP routes.
    pub publish: unsafe extern "C" fn(
        ctx: *const c_void,
        namespace: Bytes,
        topic: Bytes,
        data: Bytes,
        binary: bool,
    ) -> i32,
    /// Lists the open peers (of `namespace`, or of every namespace when it is empty) into
    /// `sink`; each handle is borrowed for its callback. Read it only when `struct_size`
    /// covers it.
    pub peers: unsafe extern "C" fn(ctx: *const c_void, namespace: Bytes, sink: *const PeerSink),
    /// The folder of the app's server assets (`assets/` of the project under `nitro dev`,
    /// `server/assets/` of the built output under `nitro start`), as an absolute path in UTF-8.
    /// Appended after the first release: read it only when `struct_size` covers it.
    pub assets_dir: Bytes,
    /// The app's `[runtime_config]` (environment overrides applied) as JSON text. Returns its
    /// version (from 1, bumped whenever `nitro dev` applies an edit); writes the JSON into
    /// `sink` (one item) only when that version differs from `known`, so a route that cached
    /// version `known` pays one call and no copy. Appended after `publish`: check
    /// [`HostApi::struct_size`] before calling.
    pub runtime_config:
        unsafe extern "C" fn(ctx: *const c_void, known: u64, sink: *const BytesSink) -> u64,
    /// Starts an operation on a storage mount (see [`storage`]) and writes a [`Task`] to `task`
    /// (always: an immediate error is a task that is ready with it). The route polls the task
    /// with a waker of its own and drops it once; the final status is one of [`storage`]'s
    /// codes, and the results go to `result` during that final poll (`OK`: the value of `GET`,
    /// `b"1"` for a present `HAS`, one item per key of `KEYS`; an error: one item, its message).
    /// `call` is borrowed for the start only; `result` is copied at the start, and its `ctx`
    /// must stay valid until the task is dropped. Appended after `runtime_config`: check
    /// [`HostApi::struct_size`] before calling.
    pub storage: unsafe extern "C" fn(
        ctx: *const c_void,
        call: *const StorageCall,
        result: *const BytesSink,
        task: *mut Task,
    ),
    /// `size_of::<HttpResponder>()` of the host: the route calls a responder field appended
    /// after `error` (`stream`, `event_stream`) only when this covers it. Appended after
    /// `storage`: read it only when `struct_size` covers it.
    pub http_responder_size: u32,
    /// The most verbose [`level`] the host's subscriber records anything at (`0`: nothing), as it
    /// was when the route was loaded. The route's `tracing` subscriber reports it as its
    /// `max_level_hint`, so a disabled event costs the route one comparison. Appended after
    /// `http_responder_size`: read it (and [`event`](HostApi::event)) only when `struct_size`
    /// covers `event`.
    pub max_level: u32,
    /// Records one `tracing` event of the route (or one `log` record) on the host's subscriber,
    /// inside the span current on the calling thread (the request's, while the host polls or
    /// calls the route), with the route file attached. `event` is borrowed for the call.
    pub event: unsafe extern "C" fn(ctx: *const c_void, event: *const LogEvent),
    /// Writes into `sink` (one item) the W3C `traceparent` value for an outgoing call made
    /// inside the span current on the calling thread (the request's or the peer's, while the
    /// host calls or polls the route): `00-<trace id>-<span id>-<flags>` of the host's span, when
    /// the server exports traces; writes nothing otherwise. Appended after `event`: call it only
    /// when `struct_size` covers it.
    pub traceparent: unsafe extern "C" fn(ctx: *const c_void, sink: *const BytesSink),
    /// Writes into `sink` (one item) the W3C `tracestate` value that goes with
    /// [`traceparent`](HostApi::traceparent)'s on an outgoing call: the vendor entries of the
    /// trace of the span current on the calling thread (the caller's `tracestate`, when its
    /// request came with a `traceparent`), when the server exports traces and there are any;
    /// writes nothing otherwise. Appended after `traceparent`: call it only when `struct_size`
    /// covers it.
    pub tracestate: unsafe extern "C" fn(ctx: *const c_void, sink: *const BytesSink),
}

/// One storage operation, borrowed for [`HostApi::storage`]'s start call.
#[repr(C)]
#[derive(Debug)]
pub struct StorageCall {
    /// One of [`storage`]'s `GET` … `CLEAR`.
    pub op: u32,
    /// The mount's name (`[storage.NAME]` in `nitro.toml`).
    pub mount: Bytes,
    /// The key (`GET`, `SET`, `HAS`, `REMOVE`) or the prefix (`KEYS`, `CLEAR`).
    pub key: Bytes,
    /// The value of a `SET` (empty otherwise).
    pub value: Bytes,
    /// The time to live of a `SET` in milliseconds; 0: none.
    pub ttl_ms: u64,
}

/// Storage operations and the final statuses of their tasks (see [`HostApi::storage`]).
pub mod storage {
    pub const GET: u32 = 1;
    pub const SET: u32 = 2;
    pub const HAS: u32 = 3;
    pub const REMOVE: u32 = 4;
    pub const KEYS: u32 = 5;
    pub const CLEAR: u32 = 6;

    /// Done; the results went to the sink.
    pub const OK: i32 = 0;
    /// The driver failed (I/O, Redis, the server shutting down); the message went to the sink.
    pub const FAILED: i32 = 1;
    /// No mount has that name.
    pub const NO_MOUNT: i32 = 2;
    /// The key or prefix is refused (empty, traversal, too long, …).
    pub const INVALID_KEY: i32 = 3;
    /// The value is over the mount's size limit.
    pub const TOO_LARGE: i32 = 4;
}

/// How a [`LogField`]'s value is written: its text is parsed back into this type by the host.
pub mod field_kind {
    /// Text, recorded as a string.
    pub const STR: u8 = 0;
    /// A value already formatted with `Debug`/`Display`, recorded as is.
    pub const DEBUG: u8 = 1;
    /// A signed integer in decimal.
    pub const I64: u8 = 2;
    /// An unsigned integer in decimal.
    pub const U64: u8 = 3;
    /// A float in Rust's `Display` form.
    pub const F64: u8 = 4;
    /// `true` or `false`.
    pub const BOOL: u8 = 5;
}

/// One field of a [`LogEvent`]: the event's own fields, then those of the route-side spans it
/// is inside (innermost first), `message` among them. Borrowed for the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogField {
    pub name: Bytes,
    pub value: Bytes,
    /// One of [`field_kind`].
    pub kind: u8,
}

/// A route's `tracing` event (or `log` record) for [`HostApi::event`]. Borrowed for the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogEvent {
    /// One of [`level`].
    pub level: u8,
    /// The event's target (by default the module path in the route library).
    pub target: Bytes,
    pub fields: *const LogField,
    pub fields_len: usize,
}

impl LogEvent {
    /// The fields as a slice.
    ///
    /// # Safety
    /// As [`Bytes::as_slice`], for `fields` and `fields_len`.
    #[allow(unsafe_code)]
    pub unsafe fn fields<'a>(&self) -> &'a [LogField] {
        if self.fields_len == 0 {
            return &[];
        }
        // SAFETY: non-empty, and the caller upholds the pointer/length contract.
        unsafe { core::slice::from_raw_parts(self.fields, self.fields_len) }
    }
}

/// The table a route library exports through [`ROUTE_ENTRY_SYMBOL`].
///
/// Entry points the route does not define are `None`. For each hook at most one of the sync entry
/// and its `*_async` twin is set: the sync one runs to completion in the call (the host calls it
/// on a thread where it may block), the async one starts a [`Task`] (see the crate docs).
///
/// An async entry point returns [`Status::OK`] after writing the task to `task`; any other status
/// means no task was written (and, for [`Status::PANICKED`], the message went to `out`).
///
/// A **middleware** library (`middleware/*.rs`) exports the same table with only `http_async`
/// (and `init`, `shutdown`) set: the host calls it before the route of every request. It answers
/// through [`HttpResponder`]: a response (any of `status`, `header`, `body`, `error`) ends the
/// request there; otherwise the request goes on with the context it set
/// ([`HttpResponder::context`]). It returns [`Status::MISSING`] without a task for a request
/// outside its paths (the request goes on untouched).
///
/// A **plugin** library (`plugins/*.rs`) sets only `plugin_setup` and `plugin_shutdown` (each
/// when the file defines it), besides `init` and `shutdown`; a **task** library (`tasks/*.rs`)
/// only `task_run`.
#[repr(C)]
#[derive(Debug)]
pub struct RouteV2 {
    /// Equals [`NITRO_ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<RouteV2>()` when the route was built; fields may be appended later.
    pub struct_size: u32,
    /// Version of the `nitro` crate the route was built with (diagnostics only).
    pub nitro_version: Bytes,
    /// Called once after loading, before any other entry point.
    pub init: unsafe extern "C" fn(host: *const HostApi, out: *const Outcome) -> Status,
    pub http: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            req: *const HttpRequest,
            res: *const HttpResponder,
        ) -> Status,
    >,
    pub ws_upgrade: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            req: *const HttpRequest,
            res: *const UpgradeResponder,
        ) -> Status,
    >,
    pub ws_open: Option<unsafe extern "C" fn(out: *const Outcome, peer: Peer) -> Status>,
    pub ws_message: Option<
        unsafe extern "C" fn(out: *const Outcome, peer: Peer, data: Bytes, binary: bool) -> Status,
    >,
    pub ws_close: Option<
        unsafe extern "C" fn(out: *const Outcome, peer: Peer, code: u16, reason: Bytes) -> Status,
    >,
    pub ws_error:
        Option<unsafe extern "C" fn(out: *const Outcome, peer: Peer, error: Bytes) -> Status>,
    /// `http` as a task: `out` and `res` stay valid until the task is dropped.
    pub http_async: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            req: *const HttpRequest,
            res: *const HttpResponder,
            task: *mut Task,
        ) -> Status,
    >,
    /// `ws_upgrade` as a task: `out` and `res` stay valid until the task is dropped.
    pub ws_upgrade_async: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            req: *const HttpRequest,
            res: *const UpgradeResponder,
            task: *mut Task,
        ) -> Status,
    >,
    /// `ws_open` as a task; the route retains the peer if the task keeps it.
    pub ws_open_async:
        Option<unsafe extern "C" fn(out: *const Outcome, peer: Peer, task: *mut Task) -> Status>,
    pub ws_message_async: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            peer: Peer,
            data: Bytes,
            binary: bool,
            task: *mut Task,
        ) -> Status,
    >,
    pub ws_close_async: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            peer: Peer,
            code: u16,
            reason: Bytes,
            task: *mut Task,
        ) -> Status,
    >,
    pub ws_error_async: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            peer: Peer,
            error: Bytes,
            task: *mut Task,
        ) -> Status,
    >,
    /// Called once when the host retires this library image, after its last task was dropped
    /// and with no call running: the route drops its per-generation state and stops its runtime
    /// (threads, background tasks, sockets), waiting at most `timeout_ms`. It may block; the host
    /// calls it on a thread of its own. The image stays mapped; no entry point is called after.
    pub shutdown: Option<unsafe extern "C" fn(timeout_ms: u64)>,
    /// A plugin's `setup` (`plugins/*.rs`) as a task: the host runs it once, in file-name order
    /// with the other plugins, before the server listens (and in `nitro dev` again after an
    /// edit). A task that ends with [`Status::FAILED`] or [`Status::PANICKED`] (the message
    /// went to `out`) stops the start. `out` stays valid until the task is dropped. `None` in
    /// routes and in plugins without `setup`. Appended after the first release: the host reads
    /// it only when `struct_size` covers it.
    pub plugin_setup: Option<unsafe extern "C" fn(out: *const Outcome, task: *mut Task) -> Status>,
    /// A plugin's `shutdown` as a task: the host runs it once on a graceful shutdown after the
    /// connections drained (and in `nitro dev` before the setup of an edited plugin's new
    /// build), bounded by the shutdown timeout. As `plugin_setup` otherwise.
    pub plugin_shutdown:
        Option<unsafe extern "C" fn(out: *const Outcome, task: *mut Task) -> Status>,
    /// A task's `run` (`tasks/*.rs`) as a task: `payload` is JSON text (borrowed for the start
    /// call); the route writes its result, JSON text, to `result` (one item) before the task
    /// ends with [`Status::OK`]; an error or a panic ends it with [`Status::FAILED`] or
    /// [`Status::PANICKED`] and the message in `out`. `out` and `result` stay valid until the
    /// task is dropped. `None` in routes and plugins. Appended after the first release: the
    /// host reads it only when `struct_size` covers it.
    pub task_run: Option<
        unsafe extern "C" fn(
            out: *const Outcome,
            payload: Bytes,
            result: *const BytesSink,
            task: *mut Task,
        ) -> Status,
    >,
}

// SAFETY (for the three impls below): these tables hold only function pointers and pointers to
// data that the exporting side keeps alive and never mutates while shared; the functions
// themselves are documented as callable from any thread.
#[allow(unsafe_code)]
unsafe impl Sync for RouteV2 {}
#[allow(unsafe_code)]
unsafe impl Sync for PeerVTable {}
#[allow(unsafe_code)]
unsafe impl Sync for HostApi {}
#[allow(unsafe_code)]
unsafe impl Send for HostApi {}

// SAFETY (for the four impls below): `Bytes` and `Pairs` are borrowed views. Sending or sharing
// the pointer between threads reads nothing; every read goes through `as_slice`, which is
// `unsafe` and whose caller guarantees the data is valid and unchanged for the borrow, from
// whichever thread. This lets the host keep a view (a peer's upgrade request as an
// `HttpRequest`) inside the object that owns the data it points into.
#[allow(unsafe_code)]
unsafe impl Send for Bytes {}
#[allow(unsafe_code)]
unsafe impl Sync for Bytes {}
#[allow(unsafe_code)]
unsafe impl Send for Pairs {}
#[allow(unsafe_code)]
unsafe impl Sync for Pairs {}
