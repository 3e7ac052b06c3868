//! The entry points a route library exports: the shims the `__export_route!` macro generates
//! call into [`__private`], which copies the host's borrowed arguments, runs the route's code
//! under `catch_unwind` and answers through the host's responders.
#![allow(unsafe_code)]

use super::answer::write_response;
use super::guard::{entered, guarded, panic_report, panic_text, record_panic, write_upgrade};
use super::host::{RawPeer, copy_request, host_log, set_host};
use super::stream::with_responder;
use crate::ws::{Close, HookOutput, IntoUpgrade, Message, Peer, WsError};
use crate::{IntoResponse, Request};
use std::panic::catch_unwind;

/// Items used by the code `nitro` generates for each route. Not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    pub use nitro_abi as abi;

    pub use super::super::async_export::{
        AsyncHandler, AsyncHook, AsyncWithRequest, AsyncWithoutRequest, http_async, ws_close_async,
        ws_error_async, ws_message_async, ws_open_async, ws_upgrade_async,
    };
    pub use super::super::middleware_export::middleware_async;
    pub use super::super::plugin_export::plugin_async;
    pub use super::super::task_export::task_async;

    /// The version of this crate, reported in the route table.
    pub const NITRO_VERSION: &str = env!("CARGO_PKG_VERSION");

    /// Installs the forwarding `tracing` subscriber as `init` does when the host's most
    /// verbose level is `max_level` (one of `abi::level`). For the `trace_levels` bench, which
    /// has no host: enabled events are collected and then dropped.
    pub fn install_trace_forwarding(max_level: u32) {
        crate::trace::install(Some(max_level));
    }

    /// The `init` entry's type, as a generated crate defines it (it names its file).
    pub type InitEntry =
        unsafe extern "C" fn(*const abi::HostApi, *const abi::Outcome) -> abi::Status;

    /// A route table with `init`, the `shutdown` entry and no other entry point: each kind of
    /// file ([`__export_table!`](crate::__export_table)) fills in its own.
    pub const fn route_table(init: InitEntry) -> abi::RouteV2 {
        unsafe extern "C" fn shutdown_entry(timeout_ms: u64) {
            shutdown(timeout_ms)
        }
        abi::RouteV2 {
            abi_version: abi::NITRO_ABI_VERSION,
            struct_size: core::mem::size_of::<abi::RouteV2>() as u32,
            nitro_version: abi::Bytes::new(NITRO_VERSION.as_bytes()),
            init,
            http: None,
            ws_upgrade: None,
            ws_open: None,
            ws_message: None,
            ws_close: None,
            ws_error: None,
            http_async: None,
            ws_upgrade_async: None,
            ws_open_async: None,
            ws_message_async: None,
            ws_close_async: None,
            ws_error_async: None,
            shutdown: Some(shutdown_entry),
            plugin_setup: None,
            plugin_shutdown: None,
            task_run: None,
        }
    }

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
                    panic_report(&*payload)
                ),
            );
        }
    }

    /// A handler function: `fn(&Request) -> impl IntoResponse` or `fn() -> impl IntoResponse`.
    #[diagnostic::on_unimplemented(
        message = "`handler` in this route file has the wrong signature",
        note = "write it as `pub fn handler(req: &nitro::Request) -> T` (or with no argument), where `T` is a `String`, `nitro::Json`, `nitro::Response`, `nitro::Result<T>`, `anyhow::Result<T>` or anything else that implements `nitro::IntoResponse`"
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
                set_host(host);
                crate::rt::configure(route_file, (*host).generation);
                crate::trace::install(crate::ffi::host::host_max_level());
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
                    let payload = panic_text(info.payload());
                    record_panic(format!("panicked at {location}:\n{payload}"));
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
                let response = with_responder(res, || handler.call(&request));
                write_response(&*res, &response)
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
                write_upgrade(&*res, &upgrade)
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
        let peer = Peer::from_raw(RawPeer::borrowed(peer));
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
        let peer = Peer::from_raw(RawPeer::borrowed(peer));
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
        let peer = Peer::from_raw(RawPeer::borrowed(peer));
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
        let peer = Peer::from_raw(RawPeer::borrowed(peer));
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

/// The part every kind of exported file shares (routes, middleware, plugins, tasks): the
/// `panic = "abort"` guard, the ABI version symbol, the route table with `init` and `shutdown`
/// and the entries `$fields` sets (every other entry `None`), and the function the host looks
/// up. Not a public API; `$kind`/`$kinds` name the kind in the guard's message.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_table {
    ($kind:literal, $kinds:literal, $file:literal, { $($field:ident: $value:expr),* $(,)? }) => {
        // The host cannot catch a panic that leaves a route library: with `panic = "abort"`
        // the first panic in any route would end the whole server. However it was set
        // (`CARGO_PROFILE_*_PANIC`, `RUSTFLAGS`, a cargo config), refuse to build.
        #[cfg(panic = "abort")]
        ::core::compile_error!(::core::concat!(
            $kind,
            " `",
            $file,
            "` is being built with `panic = \"abort\"`, which would let one ",
            "panic stop the whole server: nitro ",
            $kinds,
            " need `panic = \"unwind\"` (remove ",
            "`CARGO_PROFILE_*_PANIC` or `-C panic=abort` from the environment and cargo config)"
        ));

        #[unsafe(no_mangle)]
        pub static NITRO_ROUTE_ABI: u32 = $crate::__private::abi::NITRO_ABI_VERSION;

        static __NITRO_ROUTE: $crate::__private::abi::RouteV2 = $crate::__private::abi::RouteV2 {
            $($field: $value,)*
            ..$crate::__private::route_table({
                unsafe extern "C" fn init(
                    host: *const $crate::__private::abi::HostApi,
                    out: *const $crate::__private::abi::Outcome,
                ) -> $crate::__private::abi::Status {
                    // SAFETY: called by the host per the ABI contract.
                    unsafe { $crate::__private::init(host, out, $file) }
                }
                init
            })
        };

        #[unsafe(no_mangle)]
        pub extern "C" fn nitro_route_v2() -> *const $crate::__private::abi::RouteV2 {
            &__NITRO_ROUTE
        }
    };
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
        $crate::__export_table!("route", "routes", $file, {
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
        });
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
