//! The entry point of a task library (`tasks/*.rs`): the `__export_task!` macro and the shim
//! it calls.
//!
//! A task exports the route table with only `task_run` set. Its `run` gets the payload as a
//! [`Value`](crate::Value) and returns a [`TaskOutput`]; the shim writes the output as JSON
//! text to the host's sink in the task's last poll, or reports the error (or the panic) through
//! the outcome. A plain `fn run` runs in the task's first poll.
#![allow(unsafe_code)]

use std::future::Future;

use nitro_abi as abi;

use super::async_export::{Responder, start_guarded};
use crate::task::TaskOutput;

/// Starts a task's `run` with the payload `payload` (JSON text; empty is `null`).
///
/// # Safety
/// ABI contract of `task_run`: `payload` valid for this call; `out` and `result` until the
/// task is dropped; `task` valid for a write.
pub unsafe fn task_async<F, Fut, O>(
    out: *const abi::Outcome,
    payload: abi::Bytes,
    result: *const abi::BytesSink,
    task: *mut abi::Task,
    run: F,
) -> abi::Status
where
    F: FnOnce(crate::Value) -> Fut,
    Fut: Future<Output = O> + Send + 'static,
    O: TaskOutput,
{
    // SAFETY: `payload` is valid for this call, where `make` runs (under the shim's guard).
    let text = unsafe { payload.as_slice() }.to_vec();
    let make = move || {
        let parsed = if text.is_empty() {
            Ok(crate::Value::Null)
        } else {
            serde_json::from_slice::<crate::Value>(&text)
                .map_err(|e| format!("the payload is not JSON: {e}"))
        };
        let sink = Responder(result);
        let future = parsed.map(run);
        async move {
            let output = future?.await.into_result()?;
            let json = output.to_string();
            // SAFETY: inside the task's poll, so the sink is valid; the bytes are borrowed
            // for the callback.
            unsafe {
                let sink = sink.get();
                (sink.item)(sink.ctx, abi::Bytes::new(json.as_bytes()));
            }
            Ok(())
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// Exports a task's entry point from a generated crate. Not a public API: `nitro dev`,
/// `nitro build` and `nitro task run` generate the invocation. `run` is `(async run)` for an
/// `async fn`, or `run`.
///
/// ```ignore
/// #[path = "../../../tasks/cleanup.rs"]
/// mod route;
/// nitro::__export_task!(route, "tasks/cleanup.rs", run: (async run));
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __export_task {
    ($module:ident, $file:literal, run: $run:tt $(,)?) => {
        $crate::__export_table!("task", "tasks", $file, {
            task_run: {
                unsafe extern "C" fn shim(
                    out: *const $crate::__private::abi::Outcome,
                    payload: $crate::__private::abi::Bytes,
                    result: *const $crate::__private::abi::BytesSink,
                    task: *mut $crate::__private::abi::Task,
                ) -> $crate::__private::abi::Status {
                    // SAFETY: called by the host per the ABI contract.
                    unsafe {
                        $crate::__private::task_async(
                            out,
                            payload,
                            result,
                            task,
                            |payload: $crate::Value| async move {
                                $crate::__export_task!(@call $module $run payload)
                            },
                        )
                    }
                }
                Some(shim)
            },
        });
    };
    (@call $m:ident (async $f:ident) $payload:ident) => {
        $m::$f($payload).await
    };
    (@call $m:ident $f:ident $payload:ident) => {
        $m::$f($payload)
    };
}
