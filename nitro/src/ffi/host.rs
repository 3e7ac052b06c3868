//! Calls into the host: logging, publishing, and the peer vtable behind [`RawPeer`].
//!
//! Every pointer dereferenced here comes from the host, under the contract in [`super`].
#![allow(unsafe_code)]

use crate::Request;
use nitro_abi as abi;
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The host's services, set once by `init`.
static HOST: AtomicPtr<abi::HostApi> = AtomicPtr::new(std::ptr::null_mut());
/// Installs the host's services (from the route's `init`).
pub(crate) fn set_host(host: *const abi::HostApi) {
    HOST.store(host as *mut abi::HostApi, Ordering::Release);
}

pub(super) fn host() -> Option<&'static abi::HostApi> {
    let ptr = HOST.load(Ordering::Acquire);
    // SAFETY: `init` stores a pointer the host guarantees valid until the process exits; null
    // means not initialised (e.g. in unit tests), which maps to `None`.
    unsafe { ptr.as_ref() }
}

/// The app's assets folder as the host gave it, if there is a host that gives one.
pub(crate) fn host_assets_dir() -> Option<std::path::PathBuf> {
    let h = host()?;
    let end = std::mem::offset_of!(abi::HostApi, assets_dir) + std::mem::size_of::<abi::Bytes>();
    if (h.struct_size as usize) < end {
        return None;
    }
    // SAFETY: `struct_size` says the host wrote the field; it borrows host memory that lives
    // until the process exits.
    let bytes = unsafe { h.assets_dir.as_slice() };
    let dir = std::str::from_utf8(bytes).ok()?;
    (!dir.is_empty()).then(|| std::path::PathBuf::from(dir))
}

/// The size of the host's `HttpResponder`, when the host says (see
/// [`abi::HostApi::http_responder_size`]).
pub(crate) fn host_responder_size() -> Option<usize> {
    let h = host()?;
    let end = std::mem::offset_of!(abi::HostApi, http_responder_size) + std::mem::size_of::<u32>();
    ((h.struct_size as usize) >= end).then_some(h.http_responder_size as usize)
}

/// Logs through the host, or to stderr when there is no host (tests).
pub(crate) fn host_log(level: u8, message: &str) {
    match host() {
        // SAFETY: `log` is a host function taking a borrowed message valid for the call.
        Some(h) => unsafe { (h.log)(h.ctx, level, abi::Bytes::new(message.as_bytes())) },
        None => eprintln!("{message}"),
    }
}

/// The host's most verbose log level (one of `abi::level`, 0 for none), or `None` without a
/// host (unit tests) or with a host older than `HostApi::event`.
pub(crate) fn host_max_level() -> Option<u32> {
    let h = host()?;
    let needed = std::mem::offset_of!(abi::HostApi, event) + std::mem::size_of::<usize>();
    if (h.struct_size as usize) < needed {
        return None;
    }
    Some(h.max_level)
}

/// Records a `tracing` event on the host's subscriber (see `crate::trace`). Only called once
/// [`host_max_level`] said the host has `event`.
pub(crate) fn host_event(level: u8, target: &str, fields: &[abi::LogField]) {
    let Some(h) = host() else {
        return;
    };
    let event = abi::LogEvent {
        level,
        target: abi::Bytes::new(target.as_bytes()),
        fields: fields.as_ptr(),
        fields_len: fields.len(),
    };
    // SAFETY: `host_max_level` checked that `struct_size` covers `event` before the subscriber
    // calling this was installed; the event and what it points to are borrowed for the call.
    unsafe { (h.event)(h.ctx, &event) }
}

pub(crate) fn host_publish(namespace: &str, topic: &str, data: &[u8], binary: bool) {
    if let Some(h) = host() {
        // SAFETY: host function; all arguments are borrowed for the call.
        unsafe {
            (h.publish)(
                h.ctx,
                abi::Bytes::new(namespace.as_bytes()),
                abi::Bytes::new(topic.as_bytes()),
                abi::Bytes::new(data),
                binary,
            );
        }
    }
}

/// The open peers of `namespace` (all when empty); none without a host (unit tests) or with
/// a host too old to list them.
pub(crate) fn host_peers(namespace: &str) -> Vec<RawPeer> {
    let mut out: Vec<RawPeer> = Vec::new();
    let Some(h) = host() else {
        return out;
    };
    let needed = std::mem::offset_of!(abi::HostApi, peers) + std::mem::size_of::<usize>();
    if (h.struct_size as usize) < needed {
        return out;
    }
    let sink = abi::PeerSink {
        ctx: &mut out as *mut Vec<RawPeer> as *mut c_void,
        item: collect_peers,
    };
    // SAFETY: host function, present per `struct_size`; `namespace`, the sink and `out`
    // outlive the call.
    unsafe { (h.peers)(h.ctx, abi::Bytes::new(namespace.as_bytes()), &sink) };
    out
}

/// The host's runtime config: its version, and its JSON text when that version is not `known`.
/// `None` without a host (unit tests) or with a host older than `runtime_config`.
pub(crate) fn host_runtime_config(known: u64) -> Option<(u64, Option<Vec<u8>>)> {
    let h = host()?;
    let needed = std::mem::offset_of!(abi::HostApi, runtime_config) + std::mem::size_of::<usize>();
    if (h.struct_size as usize) < needed {
        return None;
    }
    let mut version = 0;
    // SAFETY: the host's table is at least `needed` bytes, so `runtime_config` is set; the sink
    // outlives the call.
    let mut items = with_bytes_sink(|sink| unsafe {
        version = (h.runtime_config)(h.ctx, known, sink);
    });
    Some((version, items.pop()))
}

/// The host's `traceparent` for an outgoing call from the current call of the route (see
/// [`abi::HostApi::traceparent`]). `None` without a host (unit tests), with a host older than
/// `traceparent`, or when the host does not export traces.
pub(crate) fn host_traceparent() -> Option<String> {
    let h = host()?;
    let needed = std::mem::offset_of!(abi::HostApi, traceparent) + std::mem::size_of::<usize>();
    if (h.struct_size as usize) < needed {
        return None;
    }
    // SAFETY: the host's table is at least `needed` bytes, so `traceparent` is set; the sink
    // outlives the call.
    let mut items = with_bytes_sink(|sink| unsafe { (h.traceparent)(h.ctx, sink) });
    String::from_utf8(items.pop()?).ok()
}

/// The host's `tracestate` to go with [`host_traceparent`]'s (see
/// [`abi::HostApi::tracestate`]). `None` without a host, with a host older than `tracestate`,
/// when the host does not export traces, or when the trace has no state.
pub(crate) fn host_tracestate() -> Option<String> {
    let h = host()?;
    let needed = std::mem::offset_of!(abi::HostApi, tracestate) + std::mem::size_of::<usize>();
    if (h.struct_size as usize) < needed {
        return None;
    }
    // SAFETY: the host's table is at least `needed` bytes, so `tracestate` is set; the sink
    // outlives the call.
    let mut items = with_bytes_sink(|sink| unsafe { (h.tracestate)(h.ctx, sink) });
    String::from_utf8(items.pop()?).ok()
}

/// A peer handle from the host; releases its reference on drop when it owns one.
pub(crate) struct RawPeer {
    peer: abi::Peer,
    owned: bool,
}

// SAFETY: the peer vtable is documented as callable from any thread, and the handle is a
// host-side reference-counted object.
unsafe impl Send for RawPeer {}
unsafe impl Sync for RawPeer {}

impl Drop for RawPeer {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we took this reference with `retain` (or received it retained).
            unsafe { (self.vt().release)(self.peer.handle) }
        }
    }
}

/// Collects byte strings from a `BytesSink`.
unsafe extern "C" fn collect_bytes(ctx: *mut c_void, item: abi::Bytes) {
    // SAFETY: `ctx` is the `Vec<Vec<u8>>` passed by `with_bytes_sink`, alive for the call;
    // `item` is borrowed for this callback.
    unsafe {
        let out = &mut *(ctx as *mut Vec<Vec<u8>>);
        out.push(item.as_slice().to_vec());
    }
}

unsafe extern "C" fn collect_peers(ctx: *mut c_void, peer: abi::Peer) {
    // SAFETY: `ctx` is the `Vec<RawPeer>` passed by `peers`, alive for the call; the handle is
    // borrowed for this callback, so we retain it before keeping it.
    unsafe {
        let out = &mut *(ctx as *mut Vec<RawPeer>);
        ((*peer.vt).retain)(peer.handle);
        out.push(RawPeer { peer, owned: true });
    }
}

/// A sink that appends each item to `out` (which must outlive every use of the sink).
pub(super) fn with_sink(out: &mut Vec<Vec<u8>>) -> abi::BytesSink {
    abi::BytesSink {
        ctx: out as *mut Vec<Vec<u8>> as *mut c_void,
        item: collect_bytes,
    }
}

fn with_bytes_sink(f: impl FnOnce(*const abi::BytesSink)) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let sink = abi::BytesSink {
        ctx: &mut out as *mut Vec<Vec<u8>> as *mut c_void,
        item: collect_bytes,
    };
    f(&sink);
    out
}

fn bytes_to_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl RawPeer {
    fn vt(&self) -> &abi::PeerVTable {
        // SAFETY: the host's vtable is a static that outlives every handle.
        unsafe { &*self.peer.vt }
    }

    /// A handle borrowed for one hook call: not released on drop.
    pub(crate) fn borrowed(peer: abi::Peer) -> RawPeer {
        RawPeer { peer, owned: false }
    }

    /// A handle the host gave us retained: released on drop.
    pub(crate) fn owned(peer: abi::Peer) -> RawPeer {
        RawPeer { peer, owned: true }
    }

    pub(crate) fn retain(&self) -> RawPeer {
        // SAFETY: the handle is valid (borrowed for the hook or retained by us).
        unsafe { (self.vt().retain)(self.peer.handle) };
        RawPeer {
            peer: self.peer,
            owned: true,
        }
    }

    fn str_from(&self, b: abi::Bytes) -> &str {
        // SAFETY: the host keeps these bytes alive as long as the handle, which `self` holds.
        let bytes = unsafe { b.as_slice() };
        std::str::from_utf8(bytes).unwrap_or("")
    }

    pub(crate) fn id(&self) -> &str {
        // SAFETY: valid handle; see `str_from`.
        self.str_from(unsafe { (self.vt().id)(self.peer.handle) })
    }

    pub(crate) fn remote_addr(&self) -> &str {
        // SAFETY: valid handle; see `str_from`.
        self.str_from(unsafe { (self.vt().remote_addr)(self.peer.handle) })
    }

    pub(crate) fn buffered_amount(&self) -> usize {
        // SAFETY: valid handle.
        unsafe { (self.vt().buffered_amount)(self.peer.handle) as usize }
    }

    pub(crate) fn protocol(&self) -> &str {
        // SAFETY: valid handle; see `str_from`.
        self.str_from(unsafe { (self.vt().protocol)(self.peer.handle) })
    }

    /// One poll of waiting for the outbound queue to empty: true when it is (or the peer is
    /// gone); otherwise the host wakes `waker` when it is.
    pub(crate) fn poll_drain(&self, waker: &std::task::Waker) -> bool {
        let waker = super::waker::borrowed(waker);
        // SAFETY: valid handle; the waker is borrowed for the call.
        unsafe { (self.vt().poll_drain)(self.peer.handle, &waker) }
    }

    pub(crate) fn namespace(&self) -> &str {
        // SAFETY: valid handle; see `str_from`.
        self.str_from(unsafe { (self.vt().namespace)(self.peer.handle) })
    }

    /// The upgrade request; empty when the host could not provide it (its callback failed,
    /// which the host logs).
    pub(crate) fn request(&self) -> Request {
        // SAFETY: valid handle.
        let request = unsafe { (self.vt().request)(self.peer.handle) };
        // SAFETY: the pointer is null or the upgrade request, which the host keeps alive as long
        // as the handle, which `self` holds.
        match unsafe { request.as_ref() } {
            // SAFETY: as above.
            Some(request) => unsafe { copy_request(request) },
            None => Request::default(),
        }
    }

    /// Queues a message; false when the peer is closed.
    pub(crate) fn send(&self, data: &[u8], binary: bool) -> bool {
        // SAFETY: valid handle, borrowed data.
        unsafe { (self.vt().send)(self.peer.handle, abi::Bytes::new(data), binary) == abi::PEER_OK }
    }

    pub(crate) fn publish(&self, topic: &str, data: &[u8], binary: bool, self_too: bool) {
        // SAFETY: valid handle, borrowed data.
        unsafe {
            (self.vt().publish)(
                self.peer.handle,
                abi::Bytes::new(topic.as_bytes()),
                abi::Bytes::new(data),
                binary,
                self_too,
            )
        };
    }

    pub(crate) fn subscribe(&self, topic: &str) {
        // SAFETY: valid handle, borrowed data.
        unsafe { (self.vt().subscribe)(self.peer.handle, abi::Bytes::new(topic.as_bytes())) };
    }

    pub(crate) fn unsubscribe(&self, topic: &str) {
        // SAFETY: valid handle, borrowed data.
        unsafe { (self.vt().unsubscribe)(self.peer.handle, abi::Bytes::new(topic.as_bytes())) };
    }

    pub(crate) fn topics(&self) -> Vec<String> {
        // SAFETY: valid handle; the sink outlives the call.
        with_bytes_sink(|sink| unsafe { (self.vt().topics)(self.peer.handle, sink) })
            .into_iter()
            .map(bytes_to_string)
            .collect()
    }

    pub(crate) fn close(&self, code: u16, reason: &str) {
        // SAFETY: valid handle, borrowed data.
        unsafe { (self.vt().close)(self.peer.handle, code, abi::Bytes::new(reason.as_bytes())) };
    }

    pub(crate) fn context_get(&self, key: &str) -> Option<Vec<u8>> {
        let mut found = false;
        // SAFETY: valid handle; the sink outlives the call.
        let mut items = with_bytes_sink(|sink| unsafe {
            found =
                (self.vt().context_get)(self.peer.handle, abi::Bytes::new(key.as_bytes()), sink);
        });
        if found { items.pop() } else { None }
    }

    pub(crate) fn context_set(&self, key: &str, json: &[u8]) {
        // SAFETY: valid handle, borrowed data.
        unsafe {
            (self.vt().context_set)(
                self.peer.handle,
                abi::Bytes::new(key.as_bytes()),
                abi::Bytes::new(json),
            )
        };
    }

    pub(crate) fn context_keys(&self) -> Vec<String> {
        // SAFETY: valid handle; the sink outlives the call.
        with_bytes_sink(|sink| unsafe { (self.vt().context_keys)(self.peer.handle, sink) })
            .into_iter()
            .map(bytes_to_string)
            .collect()
    }

    pub(crate) fn peers(&self) -> Vec<RawPeer> {
        let mut out: Vec<RawPeer> = Vec::new();
        let sink = abi::PeerSink {
            ctx: &mut out as *mut Vec<RawPeer> as *mut c_void,
            item: collect_peers,
        };
        // SAFETY: valid handle; the sink and `out` outlive the call.
        unsafe { (self.vt().peers)(self.peer.handle, &sink) };
        out
    }
}
fn pairs_to_vec(pairs: abi::Pairs) -> Vec<(String, String)> {
    // SAFETY: the caller of `copy_request` guarantees the request (and so its pairs) is valid.
    unsafe { pairs.as_slice() }
        .iter()
        .map(|p| {
            // SAFETY: as above.
            let (n, v) = unsafe { (p.name.as_slice(), p.value.as_slice()) };
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Copies a borrowed request into an owned [`Request`].
///
/// # Safety
/// `req` and everything it points to must be valid for the duration of the call.
pub(crate) unsafe fn copy_request(req: &abi::HttpRequest) -> Request {
    let s = |b: abi::Bytes| {
        // SAFETY: guaranteed by the caller.
        String::from_utf8_lossy(unsafe { b.as_slice() }).into_owned()
    };
    Request {
        method: s(req.method),
        path: s(req.path),
        query: s(req.query),
        headers: pairs_to_vec(req.headers),
        params: pairs_to_vec(req.params),
        // SAFETY: guaranteed by the caller.
        body: unsafe { req.body.as_slice() }.to_vec(),
        remote_addr: s(req.remote_addr),
        context: pairs_to_vec(req.context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A host whose peer functions do nothing, and whose `request` fails (returns null) or
    // returns a fixed request.
    unsafe extern "C" fn nothing(_: *const c_void) {}
    unsafe extern "C" fn no_bytes(_: *const c_void) -> abi::Bytes {
        abi::Bytes::EMPTY
    }
    unsafe extern "C" fn failing_request(_: *const c_void) -> *const abi::HttpRequest {
        std::ptr::null()
    }
    unsafe extern "C" fn fixed_request(_: *const c_void) -> *const abi::HttpRequest {
        &REQUEST
    }
    unsafe extern "C" fn send(_: *const c_void, _: abi::Bytes, _: bool) -> i32 {
        abi::PEER_INVALID
    }
    unsafe extern "C" fn publish(
        _: *const c_void,
        _: abi::Bytes,
        _: abi::Bytes,
        _: bool,
        _: bool,
    ) -> i32 {
        abi::PEER_INVALID
    }
    unsafe extern "C" fn topic(_: *const c_void, _: abi::Bytes) -> i32 {
        abi::PEER_INVALID
    }
    unsafe extern "C" fn list(_: *const c_void, _: *const abi::BytesSink) {}
    unsafe extern "C" fn close(_: *const c_void, _: u16, _: abi::Bytes) -> i32 {
        abi::PEER_INVALID
    }
    unsafe extern "C" fn context_get(
        _: *const c_void,
        _: abi::Bytes,
        _: *const abi::BytesSink,
    ) -> bool {
        false
    }
    unsafe extern "C" fn context_set(_: *const c_void, _: abi::Bytes, _: abi::Bytes) {}
    unsafe extern "C" fn peers(_: *const c_void, _: *const abi::PeerSink) {}
    unsafe extern "C" fn buffered_amount(_: *const c_void) -> u64 {
        0
    }
    unsafe extern "C" fn poll_drain(_: *const c_void, _: *const abi::Waker) -> bool {
        true
    }

    const fn vtable(
        request: unsafe extern "C" fn(*const c_void) -> *const abi::HttpRequest,
    ) -> abi::PeerVTable {
        abi::PeerVTable {
            retain: nothing,
            release: nothing,
            id: no_bytes,
            remote_addr: no_bytes,
            namespace: no_bytes,
            request,
            send,
            publish,
            subscribe: topic,
            unsubscribe: topic,
            topics: list,
            close,
            context_get,
            context_set,
            context_keys: list,
            peers,
            buffered_amount,
            protocol: no_bytes,
            poll_drain,
        }
    }

    static FAILING: abi::PeerVTable = vtable(failing_request);
    static FIXED: abi::PeerVTable = vtable(fixed_request);
    static PARAMS: [abi::Pair; 1] = [abi::Pair {
        name: abi::Bytes::new(b"room"),
        value: abi::Bytes::new(b"lobby"),
    }];
    static REQUEST: abi::HttpRequest = abi::HttpRequest {
        method: abi::Bytes::new(b"GET"),
        path: abi::Bytes::new(b"/rooms/lobby/_ws"),
        query: abi::Bytes::new(b"token=1"),
        headers: abi::Pairs::new(&[]),
        params: abi::Pairs::new(&PARAMS),
        body: abi::Bytes::EMPTY,
        remote_addr: abi::Bytes::new(b"127.0.0.1:5000"),
        context: abi::Pairs::new(&[]),
    };

    fn peer(vt: &'static abi::PeerVTable) -> RawPeer {
        RawPeer::borrowed(abi::Peer {
            handle: std::ptr::null(),
            vt,
        })
    }

    #[test]
    fn a_failed_request_callback_gives_an_empty_request() {
        let request = peer(&FAILING).request();
        assert_eq!((request.method(), request.path()), ("", ""));
        assert!(request.params().is_empty());
    }

    #[test]
    fn the_request_is_copied_from_the_host() {
        let request = peer(&FIXED).request();
        assert_eq!(request.method(), "GET");
        assert_eq!(request.path(), "/rooms/lobby/_ws");
        assert_eq!(request.query("token").as_deref(), Some("1"));
        assert_eq!(request.param("room"), Some("lobby"));
        assert_eq!(request.remote_addr(), "127.0.0.1:5000");
    }
}
