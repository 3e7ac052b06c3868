//! Running route code on the blocking pool.

use std::any::Any;

use crate::module::CallError;

/// Runs `f` (a call into a route) on tokio's blocking pool, so a slow or blocking route never
/// stalls the async workers. A panic that escapes `f` (an in-process [`RouteModule`] that
/// panics instead of returning [`CallError::Panicked`]) becomes `CallError::Panicked`.
///
/// [`RouteModule`]: crate::module::RouteModule
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, CallError>
where
    F: FnOnce() -> Result<T, CallError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => Err(CallError::Panicked(panic_message(&*err.into_panic()))),
        Err(err) => Err(CallError::Failed(format!("the call was cancelled: {err}"))),
    }
}

/// The message of a panic payload (`&str` or `String`, as `panic!` produces).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
