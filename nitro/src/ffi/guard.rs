//! What every entry point shares: catching panics (and reporting them through the call's
//! [`abi::Outcome`]), entering the route's runtime, and answering through the host's responders.
#![allow(unsafe_code)]

use crate::ws::Upgrade;
use nitro_abi as abi;
use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// The message of the last panic on this thread, captured by the hook `init` installs.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records the message of a panic on this thread (from the panic hook), for the `catch_unwind`
/// that catches it.
pub(super) fn record_panic(message: String) {
    LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
}

/// The text of a panic payload: what `panic!` was given (`&str` or `String`), else
/// `Box<dyn Any>` (as std's own hook says).
pub(super) fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

/// The report of a panic just caught on this thread: the message the panic hook recorded (with
/// its location), or the payload's text.
pub(super) fn panic_report(payload: &(dyn Any + Send)) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| format!("panicked: {}", panic_text(payload)))
}

/// Sends `message` to the call's [`abi::Outcome::fail`].
///
/// # Safety
/// `out` must be a valid `Outcome` (for the call; for an async call, until the task is dropped).
pub(super) unsafe fn report(out: *const abi::Outcome, message: &str) {
    // SAFETY: caller contract; the message is borrowed for the callback.
    unsafe { ((*out).fail)((*out).ctx, abi::Bytes::new(message.as_bytes())) }
}

/// Runs `f`, turning a panic into [`abi::Status::PANICKED`] reported through `out`.
///
/// # Safety
/// `out` must be a valid `Outcome` for the call.
pub(super) unsafe fn guarded(
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
            unsafe { report(out, &panic_report(&*payload)) };
            abi::Status::PANICKED
        }
    }
}

/// [`guarded`] with the route's runtime entered (when it has one: feature `tokio`), so that
/// `tokio::spawn` and `Handle::current()` work in sync handlers and hooks too.
///
/// # Safety
/// As [`guarded`].
pub(super) unsafe fn entered(
    out: *const abi::Outcome,
    f: impl FnOnce() -> Result<(), String>,
) -> abi::Status {
    // SAFETY: forwarded caller contract.
    unsafe {
        guarded(out, || {
            let _runtime = crate::rt::enter();
            f()
        })
    }
}

/// Answers an upgrade through the host's upgrade responder; an unhandled error fails the call,
/// as in [`write_response`].
///
/// # Safety
/// `res` must be valid for the call (for an async call: inside the task's poll).
pub(super) unsafe fn write_upgrade(
    res: &abi::UpgradeResponder,
    upgrade: &Upgrade,
) -> Result<(), String> {
    let b = |s: &str| abi::Bytes::new(s.as_bytes());
    // SAFETY: caller contract; every argument is borrowed for its callback.
    unsafe {
        if let Some(rejection) = &upgrade.rejection {
            if let Some(err) = rejection.error.as_ref().filter(|e| e.is_unhandled()) {
                return Err(err.message().to_owned());
            }
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
            return Ok(());
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_text_reads_what_panic_was_given() {
        let text = |payload: Box<dyn Any + Send>| panic_text(&*payload).to_owned();
        assert_eq!(text(Box::new("literal")), "literal");
        assert_eq!(text(Box::new(format!("formatted {}", 1))), "formatted 1");
        assert_eq!(text(Box::new(42_u8)), "Box<dyn Any>");
    }
}
