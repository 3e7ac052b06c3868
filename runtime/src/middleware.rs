//! Running the app's middleware (`middleware/*.rs`) before a request's file, route or page.
//!
//! The chain is the [`App`]'s: the middleware of its route table, in file-name order, each
//! with its entry in [`App::routes`], so a request sees one consistent chain even while
//! `nitro dev` swaps in a new build. Each middleware is a route library whose async `http`
//! entry is the middleware; it is polled inline on the worker serving the request (no
//! thread hop), under `[limits] handler_timeout`. The first that answers ends the chain;
//! otherwise the context each one returns replaces the request's and the next one sees it.
//! A middleware that never built answers `500` for every request (it may be the app's
//! authentication: skipping it would open the app); one whose last edit failed keeps its
//! last good build, like a route.

use crate::module::{CallError, HttpOutcome, MiddlewareOutcome, RequestInfo};
use crate::route_pool::Overrun;
use crate::shared::Shared;
use crate::{App, RouteEntry};

/// What the middleware decided about a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Go on, with this request context (key and JSON text).
    Continue(Vec<(String, String)>),
    /// Middleware `file` answered, or failed (a panic, an unhandled error).
    Answer {
        file: String,
        answer: Result<HttpOutcome, CallError>,
    },
    /// Middleware `file` has no code to run: it never built, or is not loaded.
    Broken { file: String, message: String },
    /// A middleware did not answer within the handler timeout.
    Overrun(Overrun),
}

/// Runs the middleware of `app` on `info` (a request without its body), in order.
pub(crate) async fn run(shared: &Shared, app: &App, mut info: RequestInfo) -> Verdict {
    for middleware in app.table.middleware() {
        let file = &middleware.file;
        let module = match app.routes.get(file) {
            Some(RouteEntry::Loaded(module)) => module,
            Some(RouteEntry::Failed { message }) => {
                return Verdict::Broken {
                    file: file.clone(),
                    message: message.clone(),
                };
            }
            None => {
                return Verdict::Broken {
                    file: file.clone(),
                    message: format!("middleware `{file}` is not loaded"),
                };
            }
        };
        let Some(call) = module.middleware_async(&info) else {
            return Verdict::Broken {
                file: file.clone(),
                message: format!("`{file}` exports no middleware entry point"),
            };
        };
        match shared.route_pool.run_async(file, call).await {
            Err(overrun) => return Verdict::Overrun(overrun),
            Ok(Ok(MiddlewareOutcome::Continue { context })) => info.context = context,
            // Outside the middleware's `PATHS`.
            Ok(Err(CallError::Missing)) => {}
            Ok(Ok(MiddlewareOutcome::Answer(outcome))) => {
                return Verdict::Answer {
                    file: file.clone(),
                    answer: Ok(outcome),
                };
            }
            Ok(Err(error)) => {
                return Verdict::Answer {
                    file: file.clone(),
                    answer: Err(error),
                };
            }
        }
    }
    Verdict::Continue(info.context)
}
