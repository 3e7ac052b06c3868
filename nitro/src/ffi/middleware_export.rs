//! The entry point of a middleware library (`middleware/*.rs`): the `__export_middleware!`
//! macro and the shim it calls.
//!
//! A middleware exports the route table with only `http_async` set, whatever the user wrote: a
//! plain `fn handler` is wrapped in a future that is ready at its first poll, so every
//! middleware is polled inline by the host, with no hop to a thread pool (middleware run on
//! every request). The task answers through the host's responder: the response when the
//! middleware answers, otherwise every context entry of the request (the host then goes on with
//! exactly those).
#![allow(unsafe_code)]

use std::future::Future;

use nitro_abi as abi;

use super::answer::write_response;
use super::async_export::{Responder, start_guarded};
use super::host::copy_request;
use crate::Request;
use crate::middleware::{MiddlewareOutput, path_matches};

/// Starts a middleware call: `run` gets the request and gives it back with the middleware's
/// output. `paths` is the file's `PATHS` (`None`: every request); a request outside them gets
/// [`abi::Status::MISSING`] and no task.
///
/// # Safety
/// ABI contract: `req` valid for the call; `out` and `res` until the task is dropped.
pub unsafe fn middleware_async<F, Fut, O>(
    out: *const abi::Outcome,
    req: *const abi::HttpRequest,
    res: *const abi::HttpResponder,
    task: *mut abi::Task,
    paths: Option<&'static [&'static str]>,
    run: F,
) -> abi::Status
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = (Request, O)> + Send + 'static,
    O: MiddlewareOutput,
{
    if let Some(paths) = paths {
        // SAFETY: `req` is valid for this call.
        let path = unsafe { (*req).path.as_slice() };
        let path = String::from_utf8_lossy(path);
        // A panic here must not unwind into the host; if it ever happened, run the middleware.
        let inside = std::panic::catch_unwind(|| path_matches(paths, &path)).unwrap_or(true);
        if !inside {
            return abi::Status::MISSING;
        }
    }
    // SAFETY (the `unsafe` blocks in `make`): the request is valid for this start call, where
    // `make` runs; the responder inside the task's polls.
    let make = || {
        let future = run(unsafe { copy_request(&*req) });
        let res = Responder(res);
        async move {
            let (req, output) = future.await;
            // SAFETY: inside the task's poll, so the responder is valid.
            let res = unsafe { res.get() };
            match output.into_answer() {
                // SAFETY: as above.
                Some(response) => unsafe { write_response(res, &response) },
                None => {
                    for (key, json) in &req.context {
                        // SAFETY: as above; the bytes are borrowed for the callback.
                        unsafe {
                            (res.context)(
                                res.ctx,
                                abi::Bytes::new(key.as_bytes()),
                                abi::Bytes::new(json.as_bytes()),
                            )
                        }
                    }
                    Ok(())
                }
            }
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// Exports a middleware's entry points from a generated crate. Not a public API: `nitro dev`
/// and `nitro build` generate the invocation. `handler` is `(async handler)` for an `async fn`;
/// `paths` names the file's `PATHS` constant, or is `_`.
///
/// ```ignore
/// #[path = "../../../middleware/01.auth.rs"]
/// mod route;
/// nitro::__export_middleware!(route, "middleware/01.auth.rs", handler: (async handler), paths: PATHS);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __export_middleware {
    ($module:ident, $file:literal, handler: $handler:tt, paths: $paths:tt $(,)?) => {
        $crate::__export_table!("middleware", "middleware", $file, {
            http_async: {
                unsafe extern "C" fn shim(
                    out: *const $crate::__private::abi::Outcome,
                    req: *const $crate::__private::abi::HttpRequest,
                    res: *const $crate::__private::abi::HttpResponder,
                    task: *mut $crate::__private::abi::Task,
                ) -> $crate::__private::abi::Status {
                    // SAFETY: called by the host per the ABI contract.
                    unsafe {
                        $crate::__private::middleware_async(
                            out,
                            req,
                            res,
                            task,
                            $crate::__export_middleware!(@paths $module $paths),
                            |mut req: $crate::Request| async move {
                                let output =
                                    $crate::__export_middleware!(@call $module $handler req);
                                (req, output)
                            },
                        )
                    }
                }
                Some(shim)
            },
        });
    };
    (@call $m:ident (async $f:ident) $req:ident) => {
        $m::$f(&mut $req).await
    };
    (@call $m:ident $f:ident $req:ident) => {
        $m::$f(&mut $req)
    };
    (@paths $m:ident _) => {
        None
    };
    (@paths $m:ident $p:ident) => {
        Some($m::$p)
    };
}
