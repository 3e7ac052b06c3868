//! A peer served inside the route library: the [`abi::PeerVTable`] implemented over a
//! [`PeerBackend`], for the test doubles of `nitro::testing`.
//!
//! A [`Peer`](crate::ws::Peer) only ever talks to its vtable, so a peer whose vtable is this
//! one behaves, for the hook under test, as a server's peer does; the backend (safe code in
//! `testing.rs`) records what the hook did. The handle is an `Arc<Handle>` turned into a raw
//! pointer: `retain` and `release` are its strong count, so a `Peer` clone kept by the hook
//! keeps the backend alive, as the host's reference count does.
#![allow(unsafe_code)]

use super::host::RawPeer;
use crate::Request;
use nitro_abi as abi;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};

/// What a local peer does; every method is called from the vtable, on any thread.
pub(crate) trait PeerBackend: Send + Sync + 'static {
    fn id(&self) -> &str;
    fn remote_addr(&self) -> &str;
    fn namespace(&self) -> &str;
    fn protocol(&self) -> &str;
    /// Queues a message; false when the peer is closed.
    fn send(&self, data: &[u8], binary: bool) -> bool;
    fn publish(&self, topic: &str, data: &[u8], binary: bool, self_too: bool);
    fn subscribe(&self, topic: &str);
    fn unsubscribe(&self, topic: &str);
    fn topics(&self) -> Vec<String>;
    /// Starts closing; false for an invalid code or reason, or a peer already closing.
    fn close(&self, code: u16, reason: &str) -> bool;
    fn context_get(&self, key: &str) -> Option<Vec<u8>>;
    /// Sets a context entry (JSON text); an empty value removes it.
    fn context_set(&self, key: &str, json: &[u8]);
    fn context_keys(&self) -> Vec<String>;
    /// The open peers of the namespace, this one included.
    fn peers(&self) -> Vec<LocalPeer>;
}

/// A strong reference to a local peer.
#[derive(Clone)]
pub(crate) struct LocalPeer(Arc<Handle>);

/// A weak reference to a local peer (what a registry of them keeps).
#[derive(Clone)]
pub(crate) struct WeakLocalPeer(Weak<Handle>);

struct Handle {
    backend: Box<dyn PeerBackend>,
    request: RequestView,
}

impl LocalPeer {
    /// A peer served by `backend`, whose upgrade request is `request`.
    pub(crate) fn new(backend: impl PeerBackend, request: Request) -> LocalPeer {
        LocalPeer(Arc::new(Handle {
            backend: Box::new(backend),
            request: RequestView::new(request),
        }))
    }

    /// A handle for a [`Peer`](crate::ws::Peer), holding its own reference.
    pub(crate) fn raw(&self) -> RawPeer {
        RawPeer::owned(abi::Peer {
            handle: Arc::into_raw(self.0.clone()) as *const c_void,
            vt: &VTABLE,
        })
    }

    pub(crate) fn downgrade(&self) -> WeakLocalPeer {
        WeakLocalPeer(Arc::downgrade(&self.0))
    }
}

impl WeakLocalPeer {
    /// The peer, while any reference to it is left.
    pub(crate) fn upgrade(&self) -> Option<LocalPeer> {
        self.0.upgrade().map(LocalPeer)
    }
}

/// The upgrade request with the `abi::HttpRequest` view that `request` hands out: the view
/// points into `request`'s strings and the pair lists, which are never changed once built, so
/// it stays valid as long as the handle (moving this struct moves no heap buffer).
struct RequestView {
    _request: Request,
    _pairs: [Vec<abi::Pair>; 3],
    view: abi::HttpRequest,
}

impl RequestView {
    fn new(request: Request) -> RequestView {
        let pairs = |list: &[(String, String)]| -> Vec<abi::Pair> {
            list.iter()
                .map(|(name, value)| abi::Pair {
                    name: abi::Bytes::new(name.as_bytes()),
                    value: abi::Bytes::new(value.as_bytes()),
                })
                .collect()
        };
        let lists = [
            pairs(&request.headers),
            pairs(&request.params),
            pairs(&request.context),
        ];
        let view = abi::HttpRequest {
            method: abi::Bytes::new(request.method.as_bytes()),
            path: abi::Bytes::new(request.path.as_bytes()),
            query: abi::Bytes::new(request.query.as_bytes()),
            headers: abi::Pairs::new(&lists[0]),
            params: abi::Pairs::new(&lists[1]),
            body: abi::Bytes::new(&request.body),
            remote_addr: abi::Bytes::new(request.remote_addr.as_bytes()),
            context: abi::Pairs::new(&lists[2]),
        };
        RequestView {
            _request: request,
            _pairs: lists,
            view,
        }
    }
}

/// Runs a vtable function's body; a panic (a bug in the backend) becomes `fallback` instead
/// of unwinding out of an `extern "C"` function, which would abort the test process.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The backend behind `peer`.
///
/// # Safety
/// `peer` must be a handle made by [`LocalPeer::raw`] (or lent by `peers`) that is still
/// retained.
unsafe fn backend<'a>(peer: *const c_void) -> &'a Handle {
    // SAFETY: per the contract, `peer` came from `Arc::into_raw` of an `Arc<Handle>` whose
    // strong count is still held, so it points to a live `Handle`.
    unsafe { &*(peer as *const Handle) }
}

fn code(ok: bool, failure: i32) -> i32 {
    if ok { abi::PEER_OK } else { failure }
}

/// Writes each string into `sink`.
///
/// # Safety
/// `sink` must be a valid `BytesSink`, as the vtable's contract says.
unsafe fn write_all(sink: *const abi::BytesSink, items: &[String]) {
    for item in items {
        // SAFETY: the caller passes a valid sink; each item is borrowed for the callback.
        unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(item.as_bytes())) };
    }
}

/// Reads borrowed bytes as text (lossy: the route side always writes UTF-8).
///
/// # Safety
/// `bytes` must be valid for the call, as the vtable's contract says.
unsafe fn text<'a>(bytes: abi::Bytes) -> std::borrow::Cow<'a, str> {
    // SAFETY: guaranteed by the caller.
    String::from_utf8_lossy(unsafe { bytes.as_slice() })
}

static VTABLE: abi::PeerVTable = abi::PeerVTable {
    retain,
    release,
    id,
    remote_addr,
    namespace,
    request,
    send,
    publish,
    subscribe,
    unsubscribe,
    topics,
    close,
    context_get,
    context_set,
    context_keys,
    peers,
    buffered_amount,
    protocol,
    poll_drain,
};

// Every function below receives a handle made by `LocalPeer::raw` or lent by `peers`, retained
// for the call (that is the vtable's contract with its callers, `RawPeer` and the test code).

unsafe extern "C" fn retain(peer: *const c_void) {
    // SAFETY: a live handle from `Arc::into_raw`: taking one more strong reference is what
    // `retain` means.
    unsafe { Arc::increment_strong_count(peer as *const Handle) }
}

unsafe extern "C" fn release(peer: *const c_void) {
    // SAFETY: a reference taken by `raw` or `retain`, given back once.
    unsafe { Arc::decrement_strong_count(peer as *const Handle) }
}

unsafe extern "C" fn id(peer: *const c_void) -> abi::Bytes {
    // SAFETY: a live handle; the id lives as long as it.
    let handle = unsafe { backend(peer) };
    guarded(abi::Bytes::EMPTY, || {
        abi::Bytes::new(handle.backend.id().as_bytes())
    })
}

unsafe extern "C" fn remote_addr(peer: *const c_void) -> abi::Bytes {
    // SAFETY: a live handle; the address lives as long as it.
    let handle = unsafe { backend(peer) };
    guarded(abi::Bytes::EMPTY, || {
        abi::Bytes::new(handle.backend.remote_addr().as_bytes())
    })
}

unsafe extern "C" fn namespace(peer: *const c_void) -> abi::Bytes {
    // SAFETY: a live handle; the namespace lives as long as it.
    let handle = unsafe { backend(peer) };
    guarded(abi::Bytes::EMPTY, || {
        abi::Bytes::new(handle.backend.namespace().as_bytes())
    })
}

unsafe extern "C" fn protocol(peer: *const c_void) -> abi::Bytes {
    // SAFETY: a live handle; the protocol lives as long as it.
    let handle = unsafe { backend(peer) };
    guarded(abi::Bytes::EMPTY, || {
        abi::Bytes::new(handle.backend.protocol().as_bytes())
    })
}

unsafe extern "C" fn request(peer: *const c_void) -> *const abi::HttpRequest {
    // SAFETY: a live handle; its request view lives as long as it.
    let handle = unsafe { backend(peer) };
    &handle.request.view
}

unsafe extern "C" fn send(peer: *const c_void, data: abi::Bytes, binary: bool) -> i32 {
    // SAFETY: a live handle; `data` is borrowed for the call.
    let (handle, data) = unsafe { (backend(peer), data.as_slice()) };
    guarded(abi::PEER_INVALID, || {
        code(handle.backend.send(data, binary), abi::PEER_CLOSED)
    })
}

unsafe extern "C" fn publish(
    peer: *const c_void,
    topic: abi::Bytes,
    data: abi::Bytes,
    binary: bool,
    self_too: bool,
) -> i32 {
    // SAFETY: a live handle; `topic` and `data` are borrowed for the call.
    let (handle, topic, data) = unsafe { (backend(peer), text(topic), data.as_slice()) };
    guarded(abi::PEER_INVALID, || {
        handle.backend.publish(&topic, data, binary, self_too);
        abi::PEER_OK
    })
}

unsafe extern "C" fn subscribe(peer: *const c_void, topic: abi::Bytes) -> i32 {
    // SAFETY: a live handle; `topic` is borrowed for the call.
    let (handle, topic) = unsafe { (backend(peer), text(topic)) };
    guarded(abi::PEER_INVALID, || {
        handle.backend.subscribe(&topic);
        abi::PEER_OK
    })
}

unsafe extern "C" fn unsubscribe(peer: *const c_void, topic: abi::Bytes) -> i32 {
    // SAFETY: a live handle; `topic` is borrowed for the call.
    let (handle, topic) = unsafe { (backend(peer), text(topic)) };
    guarded(abi::PEER_INVALID, || {
        handle.backend.unsubscribe(&topic);
        abi::PEER_OK
    })
}

unsafe extern "C" fn topics(peer: *const c_void, sink: *const abi::BytesSink) {
    // SAFETY: a live handle.
    let handle = unsafe { backend(peer) };
    let topics = guarded(Vec::new(), || handle.backend.topics());
    // SAFETY: the caller's sink is valid for the call.
    unsafe { write_all(sink, &topics) };
}

unsafe extern "C" fn close(peer: *const c_void, code_: u16, reason: abi::Bytes) -> i32 {
    // SAFETY: a live handle; `reason` is borrowed for the call.
    let (handle, reason) = unsafe { (backend(peer), text(reason)) };
    guarded(abi::PEER_INVALID, || {
        code(handle.backend.close(code_, &reason), abi::PEER_INVALID)
    })
}

unsafe extern "C" fn context_get(
    peer: *const c_void,
    key: abi::Bytes,
    sink: *const abi::BytesSink,
) -> bool {
    // SAFETY: a live handle; `key` is borrowed for the call.
    let (handle, key) = unsafe { (backend(peer), text(key)) };
    match guarded(None, || handle.backend.context_get(&key)) {
        Some(json) => {
            // SAFETY: the caller's sink is valid for the call; `json` outlives the callback.
            unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(&json)) };
            true
        }
        None => false,
    }
}

unsafe extern "C" fn context_set(peer: *const c_void, key: abi::Bytes, value: abi::Bytes) {
    // SAFETY: a live handle; `key` and `value` are borrowed for the call.
    let (handle, key, value) = unsafe { (backend(peer), text(key), value.as_slice()) };
    guarded((), || handle.backend.context_set(&key, value));
}

unsafe extern "C" fn context_keys(peer: *const c_void, sink: *const abi::BytesSink) {
    // SAFETY: a live handle.
    let handle = unsafe { backend(peer) };
    let keys = guarded(Vec::new(), || handle.backend.context_keys());
    // SAFETY: the caller's sink is valid for the call.
    unsafe { write_all(sink, &keys) };
}

unsafe extern "C" fn peers(peer: *const c_void, sink: *const abi::PeerSink) {
    // SAFETY: a live handle.
    let handle = unsafe { backend(peer) };
    // Held until every callback returned: each handle is lent for its callback only.
    let peers = guarded(Vec::new(), || handle.backend.peers());
    for other in &peers {
        let lent = abi::Peer {
            handle: Arc::as_ptr(&other.0) as *const c_void,
            vt: &VTABLE,
        };
        // SAFETY: the caller's sink is valid for the call; `peers` keeps the handle alive
        // through the callback, which retains it to keep it.
        unsafe { ((*sink).item)((*sink).ctx, lent) };
    }
}

unsafe extern "C" fn buffered_amount(_peer: *const c_void) -> u64 {
    // Sends are recorded at once: nothing is ever waiting for a socket.
    0
}

unsafe extern "C" fn poll_drain(_peer: *const c_void, _waker: *const abi::Waker) -> bool {
    true
}
