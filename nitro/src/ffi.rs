//! The route side of the ABI: exported shims and calls into the host.
//!
//! This is the only module of the crate with `unsafe` code. Every pointer it dereferences comes
//! from the host through `nitro-abi`, whose contract is: borrowed data is valid for the call
//! that received it, peer handles for as long as they are retained, and `HostApi` until the
//! process exits. Every exported entry point catches panics here, inside the route, because a
//! panic cannot cross the boundary (each route library has its own Rust runtime, so the host
//! could not catch it even through `extern "C-unwind"`).
#![allow(unsafe_code)]

use crate::ws::{Close, IntoUpgrade, Message, Peer, WsError};
use crate::{IntoResponse, Request};
use nitro_abi as abi;
use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicPtr, Ordering};

/// The host's services, set once by `init`.
static HOST: AtomicPtr<abi::HostApi> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    /// The message of the last panic on this thread, captured by the hook `init` installs.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn host() -> Option<&'static abi::HostApi> {
    let ptr = HOST.load(Ordering::Acquire);
    // SAFETY: `init` stores a pointer the host guarantees valid until the process exits; null
    // means not initialised (e.g. in unit tests), which maps to `None`.
    unsafe { ptr.as_ref() }
}

/// Logs through the host, or to stderr when there is no host (tests).
pub(crate) fn host_log(level: u8, message: &str) {
    match host() {
        // SAFETY: `log` is a host function taking a borrowed message valid for the call.
        Some(h) => unsafe { (h.log)(h.ctx, level, abi::Bytes::new(message.as_bytes())) },
        None => eprintln!("{message}"),
    }
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
    // SAFETY: `ctx` is the `Vec<Peer>` passed by `peers`, alive for the call; the handle is
    // borrowed for this callback, so we retain it before keeping it.
    unsafe {
        let out = &mut *(ctx as *mut Vec<Peer>);
        ((*peer.vt).retain)(peer.handle);
        out.push(Peer {
            raw: RawPeer { peer, owned: true },
        });
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

    pub(crate) fn borrowed(peer: abi::Peer) -> RawPeer {
        RawPeer { peer, owned: false }
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

    pub(crate) fn namespace(&self) -> &str {
        // SAFETY: valid handle; see `str_from`.
        self.str_from(unsafe { (self.vt().namespace)(self.peer.handle) })
    }

    pub(crate) fn request(&self) -> Request {
        // SAFETY: the host keeps the upgrade request alive as long as the handle.
        unsafe { copy_request(&*(self.vt().request)(self.peer.handle)) }
    }

    pub(crate) fn send(&self, data: &[u8], binary: bool) {
        // SAFETY: valid handle, borrowed data.
        unsafe { (self.vt().send)(self.peer.handle, abi::Bytes::new(data), binary) };
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

    pub(crate) fn peers(&self) -> Vec<Peer> {
        let mut out: Vec<Peer> = Vec::new();
        let sink = abi::PeerSink {
            ctx: &mut out as *mut Vec<Peer> as *mut c_void,
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
    }
}

/// Sends `message` to the call's [`abi::Outcome::fail`].
///
/// # Safety
/// `out` must be a valid `Outcome` (for the call; for an async call, until the task is dropped).
pub(crate) unsafe fn report(out: *const abi::Outcome, message: &str) {
    // SAFETY: caller contract; the message is borrowed for the callback.
    unsafe { ((*out).fail)((*out).ctx, abi::Bytes::new(message.as_bytes())) }
}

/// The report of a panic just caught on this thread: the message the panic hook recorded (with
/// its location), or the payload's text.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            format!("panicked: {text}")
        })
}

/// Runs `f`, turning a panic into [`abi::Status::PANICKED`] reported through `out`.
///
/// # Safety
/// `out` must be a valid `Outcome` for the call.
pub(crate) unsafe fn guarded(
    out: *const abi::Outcome,
    f: impl FnOnce() -> Result<(), String>,
) -> abi::Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => abi::Status::OK,
        Ok(Err(message)) => {
            // SAFETY: caller contract.
            unsafe { report(out, &message) };
            abi::Status::FAILED
        }
        Err(payload) => {
            // SAFETY: caller contract.
            unsafe { report(out, &panic_text(&*payload)) };
            abi::Status::PANICKED
        }
    }
}

/// [`guarded`] with the route's runtime entered (when it has one: feature `tokio`), so that
/// `tokio::spawn` and `Handle::current()` work in sync handlers and hooks too.
///
/// # Safety
/// As [`guarded`].
unsafe fn entered(out: *const abi::Outcome, f: impl FnOnce() -> Result<(), String>) -> abi::Status {
    // SAFETY: forwarded caller contract.
    unsafe {
        guarded(out, || {
            let _runtime = crate::rt::enter();
            f()
        })
    }
}

/// Answers through the host's HTTP responder.
///
/// # Safety
/// `res` must be valid for the call (for an async call: inside the task's poll).
pub(crate) unsafe fn write_response(res: &abi::HttpResponder, response: &crate::Response) {
    // SAFETY: caller contract; every argument is borrowed for its callback.
    unsafe {
        if let Some(err) = &response.error {
            let data = err.data().map(|d| d.to_string()).unwrap_or_default();
            (res.error)(
                res.ctx,
                err.status(),
                abi::Bytes::new(err.message().as_bytes()),
                abi::Bytes::new(data.as_bytes()),
            );
            return;
        }
        (res.status)(res.ctx, response.status);
        for (name, value) in &response.headers {
            (res.header)(
                res.ctx,
                abi::Bytes::new(name.as_bytes()),
                abi::Bytes::new(value.as_bytes()),
            );
        }
        (res.body)(res.ctx, abi::Bytes::new(&response.body));
    }
}

/// Answers an upgrade through the host's upgrade responder.
///
/// # Safety
/// `res` must be valid for the call (for an async call: inside the task's poll).
pub(crate) unsafe fn write_upgrade(res: &abi::UpgradeResponder, upgrade: &crate::ws::Upgrade) {
    let b = |s: &str| abi::Bytes::new(s.as_bytes());
    // SAFETY: caller contract; every argument is borrowed for its callback.
    unsafe {
        if let Some(rejection) = &upgrade.rejection {
            (res.reject)(res.ctx, rejection.status());
            let (headers, body) = match &rejection.error {
                Some(err) => (
                    vec![(
                        "content-type".to_string(),
                        "application/json; charset=utf-8".to_string(),
                    )],
                    err.to_json().to_string().into_bytes(),
                ),
                None => (rejection.headers.clone(), rejection.body.clone()),
            };
            for (name, value) in &headers {
                (res.header)(res.ctx, b(name), b(value));
            }
            (res.body)(res.ctx, abi::Bytes::new(&body));
            return;
        }
        for (name, value) in &upgrade.headers {
            (res.header)(res.ctx, b(name), b(value));
        }
        if let Some(p) = &upgrade.protocol {
            (res.protocol)(res.ctx, b(p));
        }
        if let Some(ns) = &upgrade.namespace {
            (res.namespace)(res.ctx, b(ns));
        }
        for (key, json) in &upgrade.context {
            (res.context)(res.ctx, b(key), b(json));
        }
    }
}

/// What a hook may return: `()` or `Result<(), E: Display>` (an `Err` goes to the `error` hook
/// and the log).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a WebSocket hook",
    note = "return nothing (`()`) or a `Result<(), E>` whose error implements `Display`"
)]
pub trait HookOutput {
    /// Converts into `Ok(())` or the error's text.
    fn into_outcome(self) -> Result<(), String>;
}

impl HookOutput for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> HookOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Items used by the code `nitro` generates for each route. Not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    pub use nitro_abi as abi;

    pub use crate::async_hooks::{
        AsyncHandler, AsyncHook, AsyncWithRequest, AsyncWithoutRequest, http_async, ws_close_async,
        ws_error_async, ws_message_async, ws_open_async, ws_upgrade_async,
    };

    /// The version of this crate, reported in the route table.
    pub const NITRO_VERSION: &str = env!("CARGO_PKG_VERSION");

    /// The `shutdown` entry: drops per-generation state and stops the route's runtime. A panic
    /// (from a value's `Drop`) is logged and ends the shutdown early; it never unwinds.
    pub fn shutdown(timeout_ms: u64) {
        let stopped = catch_unwind(|| {
            crate::rt::shutdown(std::time::Duration::from_millis(timeout_ms));
        });
        if let Err(payload) = stopped {
            host_log(
                abi::level::ERROR,
                &format!(
                    "shutting down the route's runtime failed: {}",
                    panic_text(&*payload)
                ),
            );
        }
    }

    /// A handler function: `fn(&Request) -> impl IntoResponse` or `fn() -> impl IntoResponse`.
    #[diagnostic::on_unimplemented(
        message = "`handler` in this route file has the wrong signature",
        note = "write it as `pub fn handler(req: &nitro::Request) -> impl nitro::IntoResponse` (or with no argument)"
    )]
    pub trait Handler<M> {
        fn call(&self, req: &Request) -> crate::Response;
    }

    #[derive(Debug)]
    pub struct WithRequest;
    #[derive(Debug)]
    pub struct WithoutRequest;

    impl<F: Fn(&Request) -> R, R: IntoResponse> Handler<WithRequest> for F {
        fn call(&self, req: &Request) -> crate::Response {
            self(req).into_response()
        }
    }

    impl<F: Fn() -> R, R: IntoResponse> Handler<WithoutRequest> for F {
        fn call(&self, _req: &Request) -> crate::Response {
            self().into_response()
        }
    }

    /// Installs the host and the panic hook. Called once per loaded library.
    ///
    /// # Safety
    /// `host` and `out` must be valid; `host` until the process exits.
    pub unsafe fn init(
        host: *const abi::HostApi,
        out: *const abi::Outcome,
        route_file: &'static str,
    ) -> abi::Status {
        // SAFETY: forwarded caller contract.
        unsafe {
            guarded(out, || {
                HOST.store(host as *mut abi::HostApi, Ordering::Release);
                crate::rt::configure(route_file, (*host).generation);
                std::panic::set_hook(Box::new(move |info| {
                    let location = info
                        .location()
                        .map(|l| {
                            // Show the user's file as they name it, not the path the generated
                            // crate used to include it.
                            let file = l.file().replace('\\', "/");
                            let file = if file.ends_with(route_file) {
                                route_file
                            } else {
                                l.file()
                            };
                            format!("{file}:{}:{}", l.line(), l.column())
                        })
                        .unwrap_or_else(|| route_file.to_string());
                    let payload = info
                        .payload()
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| info.payload().downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "Box<dyn Any>".to_string());
                    let message = format!("panicked at {location}:\n{payload}");
                    LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
                }));
                Ok(())
            })
        }
    }

    /// # Safety
    /// ABI contract: all pointers valid for the call.
    pub unsafe fn http<M>(
        out: *const abi::Outcome,
        req: *const abi::HttpRequest,
        res: *const abi::HttpResponder,
        handler: impl Handler<M>,
    ) -> abi::Status {
        // SAFETY: forwarded caller contract.
        unsafe {
            entered(out, || {
                let request = copy_request(&*req);
                let response = handler.call(&request);
                write_response(&*res, &response);
                Ok(())
            })
        }
    }

    /// # Safety
    /// ABI contract: all pointers valid for the call.
    pub unsafe fn ws_upgrade<R: IntoUpgrade>(
        out: *const abi::Outcome,
        req: *const abi::HttpRequest,
        res: *const abi::UpgradeResponder,
        hook: impl Fn(&Request) -> R,
    ) -> abi::Status {
        // SAFETY: forwarded caller contract.
        unsafe {
            entered(out, || {
                let request = copy_request(&*req);
                let upgrade = hook(&request).into_upgrade();
                write_upgrade(&*res, &upgrade);
                Ok(())
            })
        }
    }

    /// # Safety
    /// ABI contract: `out` valid for the call, `peer` borrowed for the call.
    pub unsafe fn ws_open<R: HookOutput>(
        out: *const abi::Outcome,
        peer: abi::Peer,
        hook: impl Fn(&Peer) -> R,
    ) -> abi::Status {
        let peer = Peer {
            raw: RawPeer::borrowed(peer),
        };
        // SAFETY: forwarded caller contract.
        unsafe { entered(out, || hook(&peer).into_outcome()) }
    }

    /// # Safety
    /// ABI contract: `out` valid for the call, `peer` and `data` borrowed for the call.
    pub unsafe fn ws_message<R: HookOutput>(
        out: *const abi::Outcome,
        peer: abi::Peer,
        data: abi::Bytes,
        binary: bool,
        hook: impl Fn(&Peer, &Message) -> R,
    ) -> abi::Status {
        let peer = Peer {
            raw: RawPeer::borrowed(peer),
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            entered(out, || {
                let message = Message {
                    data: data.as_slice().to_vec(),
                    binary,
                };
                hook(&peer, &message).into_outcome()
            })
        }
    }

    /// # Safety
    /// ABI contract: `out` valid for the call, `peer` and `reason` borrowed for the call.
    pub unsafe fn ws_close<R: HookOutput>(
        out: *const abi::Outcome,
        peer: abi::Peer,
        code: u16,
        reason: abi::Bytes,
        hook: impl Fn(&Peer, &Close) -> R,
    ) -> abi::Status {
        let peer = Peer {
            raw: RawPeer::borrowed(peer),
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            entered(out, || {
                let details = Close {
                    code,
                    reason: String::from_utf8_lossy(reason.as_slice()).into_owned(),
                };
                hook(&peer, &details).into_outcome()
            })
        }
    }

    /// # Safety
    /// ABI contract: `out` valid for the call, `peer` and `error` borrowed for the call.
    pub unsafe fn ws_error<R: HookOutput>(
        out: *const abi::Outcome,
        peer: abi::Peer,
        error: abi::Bytes,
        hook: impl Fn(&Peer, &WsError) -> R,
    ) -> abi::Status {
        let peer = Peer {
            raw: RawPeer::borrowed(peer),
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            entered(out, || {
                let error = WsError {
                    message: String::from_utf8_lossy(error.as_slice()).into_owned(),
                };
                hook(&peer, &error).into_outcome()
            })
        }
    }
}

/// Exports a route's entry points from a generated route crate. Not a public API: `nitro dev`
/// and `nitro build` generate the invocation.
///
/// ```ignore
/// #[path = "../../../routes/_ws.rs"]
/// mod route;
/// nitro::__export_route!(route, "routes/_ws.rs", http: _, upgrade: _, open: open, message: message, close: close, error: _);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __export_route {
    ($module:ident, $file:literal, http: $http:tt, upgrade: $upgrade:tt, open: $open:tt,
     message: $message:tt, close: $close:tt, error: $error:tt $(,)?) => {
        // The host cannot catch a panic that leaves a route library: with `panic = "abort"`
        // the first panic in any route would end the whole server. However it was set
        // (`CARGO_PROFILE_*_PANIC`, `RUSTFLAGS`, a cargo config), refuse to build.
        #[cfg(panic = "abort")]
        ::core::compile_error!(::core::concat!(
            "route `",
            $file,
            "` is being built with `panic = \"abort\"`, which would let one ",
            "panic stop the whole server: nitro routes need `panic = \"unwind\"` (remove ",
            "`CARGO_PROFILE_*_PANIC` or `-C panic=abort` from the environment and cargo config)"
        ));

        #[unsafe(no_mangle)]
        pub static NITRO_ROUTE_ABI: u32 = $crate::__private::abi::NITRO_ABI_VERSION;

        static __NITRO_ROUTE: $crate::__private::abi::RouteV2 = $crate::__private::abi::RouteV2 {
            abi_version: $crate::__private::abi::NITRO_ABI_VERSION,
            struct_size: ::core::mem::size_of::<$crate::__private::abi::RouteV2>() as u32,
            nitro_version: $crate::__private::abi::Bytes::new(
                $crate::__private::NITRO_VERSION.as_bytes(),
            ),
            init: {
                unsafe extern "C" fn init(
                    host: *const $crate::__private::abi::HostApi,
                    out: *const $crate::__private::abi::Outcome,
                ) -> $crate::__private::abi::Status {
                    // SAFETY: called by the host per the ABI contract.
                    unsafe { $crate::__private::init(host, out, $file) }
                }
                init
            },
    http: $crate::__export_route!(@http $module $http),
    ws_upgrade: $crate::__export_route!(@upgrade $module $upgrade),
    ws_open: $crate::__export_route!(@open $module $open),
    ws_message: $crate::__export_route!(@message $module $message),
    ws_close: $crate::__export_route!(@close $module $close),
    ws_error: $crate::__export_route!(@error $module $error),
    http_async: $crate::__export_route!(@http_async $module $http),
    ws_upgrade_async: $crate::__export_route!(@upgrade_async $module $upgrade),
    ws_open_async: $crate::__export_route!(@open_async $module $open),
    ws_message_async: $crate::__export_route!(@message_async $module $message),
    ws_close_async: $crate::__export_route!(@close_async $module $close),
    ws_error_async: $crate::__export_route!(@error_async $module $error),
            shutdown: {
                unsafe extern "C" fn shutdown(timeout_ms: u64) {
                    $crate::__private::shutdown(timeout_ms)
                }
                Some(shutdown)
            },
        };

        #[unsafe(no_mangle)]
        pub extern "C" fn nitro_route_v2() -> *const $crate::__private::abi::RouteV2 {
            &__NITRO_ROUTE
        }
    };
    (@http $m:ident _) => {
        None
    };
    (@http $m:ident (async $f:ident)) => {
        None
    };
    (@http $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            req: *const $crate::__private::abi::HttpRequest,
            res: *const $crate::__private::abi::HttpResponder,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::http(out, req, res, $m::$f) }
        }
        Some(shim)
    }};
    (@upgrade $m:ident _) => {
        None
    };
    (@upgrade $m:ident (async $f:ident)) => {
        None
    };
    (@upgrade $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            req: *const $crate::__private::abi::HttpRequest,
            res: *const $crate::__private::abi::UpgradeResponder,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_upgrade(out, req, res, $m::$f) }
        }
        Some(shim)
    }};
    (@open $m:ident _) => {
        None
    };
    (@open $m:ident (async $f:ident)) => {
        None
    };
    (@open $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_open(out, peer, $m::$f) }
        }
        Some(shim)
    }};
    (@message $m:ident _) => {
        None
    };
    (@message $m:ident (async $f:ident)) => {
        None
    };
    (@message $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            data: $crate::__private::abi::Bytes,
            binary: bool,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_message(out, peer, data, binary, $m::$f) }
        }
        Some(shim)
    }};
    (@close $m:ident _) => {
        None
    };
    (@close $m:ident (async $f:ident)) => {
        None
    };
    (@close $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            code: u16,
            reason: $crate::__private::abi::Bytes,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_close(out, peer, code, reason, $m::$f) }
        }
        Some(shim)
    }};
    (@error $m:ident _) => {
        None
    };
    (@error $m:ident (async $f:ident)) => {
        None
    };
    (@error $m:ident $f:ident) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            error: $crate::__private::abi::Bytes,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_error(out, peer, error, $m::$f) }
        }
        Some(shim)
    }};
    (@http_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            req: *const $crate::__private::abi::HttpRequest,
            res: *const $crate::__private::abi::HttpResponder,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::http_async(out, req, res, task, $m::$f) }
        }
        Some(shim)
    }};
    (@upgrade_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            req: *const $crate::__private::abi::HttpRequest,
            res: *const $crate::__private::abi::UpgradeResponder,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_upgrade_async(out, req, res, task, $m::$f) }
        }
        Some(shim)
    }};
    (@open_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_open_async(out, peer, task, $m::$f) }
        }
        Some(shim)
    }};
    (@message_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            data: $crate::__private::abi::Bytes,
            binary: bool,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_message_async(out, peer, data, binary, task, $m::$f) }
        }
        Some(shim)
    }};
    (@close_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            code: u16,
            reason: $crate::__private::abi::Bytes,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_close_async(out, peer, code, reason, task, $m::$f) }
        }
        Some(shim)
    }};
    (@error_async $m:ident (async $f:ident)) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            peer: $crate::__private::abi::Peer,
            error: $crate::__private::abi::Bytes,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe { $crate::__private::ws_error_async(out, peer, error, task, $m::$f) }
        }
        Some(shim)
    }};
    // A sync hook or none: no async entry point.
    (@$async_hook:ident $m:ident $f:tt) => {
        None
    };
}
