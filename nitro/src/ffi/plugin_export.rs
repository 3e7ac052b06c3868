//! The entry points of a plugin library (`plugins/*.rs`): the `__export_plugin!` macro and the
//! shim it calls.
//!
//! A plugin exports the route table with only `plugin_setup` and `plugin_shutdown` set (each
//! when the file defines the function). Both are tasks, whatever the user wrote: a plain `fn`
//! runs in the task's first poll. Their output is a [`HookOutput`] (`()` or a `Result` whose
//! error is `Display`): an error or a panic is reported to the host through the outcome, which
//! stops the start for a `setup`.
#![allow(unsafe_code)]

use std::future::Future;

use nitro_abi as abi;

use super::async_export::start_guarded;
use crate::ws::HookOutput;

/// Starts a plugin's `setup` or `shutdown`: `make` builds its future.
///
/// # Safety
/// ABI contract of the async entry points: `task` is valid for a write, `out` until the task is
/// dropped.
pub unsafe fn plugin_async<F, Fut, O>(
    out: *const abi::Outcome,
    task: *mut abi::Task,
    make: F,
) -> abi::Status
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = O> + Send + 'static,
    O: HookOutput,
{
    // SAFETY: forwarded caller contract.
    unsafe {
        start_guarded(out, task, || {
            let future = make();
            async move { future.await.into_outcome() }
        })
    }
}

/// Exports a plugin's entry points from a generated crate. Not a public API: `nitro dev` and
/// `nitro build` generate the invocation. `setup` and `shutdown` are `(async name)` for an
/// `async fn`, the name for a plain `fn`, or `_` when the file does not define it.
///
/// ```ignore
/// #[path = "../../../plugins/01.db.rs"]
/// mod route;
/// nitro::__export_plugin!(route, "plugins/01.db.rs", setup: (async setup), shutdown: _);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($module:ident, $file:literal, setup: $setup:tt, shutdown: $shutdown:tt $(,)?) => {
        $crate::__export_table!("plugin", "plugins", $file, {
            plugin_setup: $crate::__export_plugin!(@hook $module $setup),
            plugin_shutdown: $crate::__export_plugin!(@hook $module $shutdown),
        });
    };
    (@hook $m:ident _) => {
        None
    };
    (@hook $m:ident $f:tt) => {{
        unsafe extern "C" fn shim(
            out: *const $crate::__private::abi::Outcome,
            task: *mut $crate::__private::abi::Task,
        ) -> $crate::__private::abi::Status {
            // SAFETY: called by the host per the ABI contract.
            unsafe {
                $crate::__private::plugin_async(out, task, || async move {
                    $crate::__export_plugin!(@call $m $f)
                })
            }
        }
        Some(shim)
    }};
    (@call $m:ident (async $f:ident)) => {
        $m::$f().await
    };
    (@call $m:ident $f:ident) => {
        $m::$f()
    };
}
