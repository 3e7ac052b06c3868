//! The route side of async calls: a Rust future as an [`abi::Task`], the host's waker as a
//! [`std::task::Waker`].
//!
//! The host polls the task on its own workers. Each poll and the final drop:
//! - enter the route's runtime ([`crate::rt::enter`]), so tokio inside the route finds its
//!   reactor and timers (and tokio resources are dropped with their runtime current);
//! - run under `catch_unwind`: a panic in `poll` is reported through the call's
//!   [`abi::Outcome`] as [`abi::Status::PANICKED`], and the future is dropped at once; a panic
//!   in `drop` leaks the rest of the future rather than unwinding into the host.
//!
//! No `std::task::Context` crosses: the host hands a C [`abi::Waker`], which [`waker_ref`] wraps
//! in a `std` waker whose clones are owned host wakers.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use nitro_abi as abi;

use super::guard::{panic_report, report};
use super::host::host_log;

/// What an async call's future yields: `Ok(())` when it answered (through the responder it
/// captured), or the error of a hook.
pub(crate) type CallResult = Result<(), String>;

/// The task's state, owned by the route behind `abi::Task::state`.
struct State<F> {
    out: *const abi::Outcome,
    /// `None` once finished (or dropped after a panic). Never moved while `Some`: the state
    /// lives in a `Box` for the task's whole life, so the future is pinned in place.
    future: Option<F>,
}

/// Writes a task that runs `future` to `task`.
///
/// # Safety
/// `task` must be valid for a write, and `out` valid until the host drops the task (the ABI's
/// rule for async calls).
pub(crate) unsafe fn start<F>(out: *const abi::Outcome, task: *mut abi::Task, future: F)
where
    F: Future<Output = CallResult> + Send + 'static,
{
    let state = Box::new(State {
        out,
        future: Some(future),
    });
    // SAFETY: caller contract: `task` is valid for a write.
    unsafe {
        task.write(abi::Task {
            state: Box::into_raw(state) as *mut c_void,
            poll: poll::<F>,
            drop: drop_task::<F>,
        })
    };
}

/// Drops the future in place, with the runtime entered and panics caught: a panicking drop
/// leaks what was left, and is logged through the host with `when` (the panic's report is taken
/// here, so that it is not mistaken for a later panic's).
pub(super) fn drop_future<F>(future: &mut Option<F>, when: &str) {
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        let _runtime = crate::rt::enter();
        // Assignment drops the old value where it is: the pinned future never moves.
        *future = None;
    }));
    if let Err(payload) = dropped {
        host_log(
            abi::level::ERROR,
            &format!(
                "a route future or stream panicked while being dropped ({when}); what was left of it is leaked: {}",
                panic_report(&*payload)
            ),
        );
    }
}

unsafe extern "C" fn poll<F>(state: *mut c_void, waker: *const abi::Waker) -> i32
where
    F: Future<Output = CallResult> + Send + 'static,
{
    // SAFETY: `state` is the `State<F>` made by `start` (the host never polls concurrently or
    // after `drop`), and `waker` is valid for this call (ABI contract).
    let (state, waker) = unsafe { (&mut *(state as *mut State<F>), waker_ref(waker)) };
    let Some(future) = state.future.as_mut() else {
        // Polled after it finished: the host breaks the contract; say so rather than panic.
        // SAFETY: `out` is valid until the task is dropped.
        unsafe { report(state.out, "the host polled a finished task") };
        return abi::Status::PANICKED.0;
    };
    let mut cx = Context::from_waker(&waker);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let _runtime = crate::rt::enter();
        // SAFETY: the future lives in the boxed state and is never moved (see `State`).
        unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
    }));
    let (status, message) = match polled {
        Ok(Poll::Pending) => return abi::TASK_PENDING,
        Ok(Poll::Ready(Ok(()))) => (abi::Status::OK, None),
        Ok(Poll::Ready(Err(error))) => (abi::Status::FAILED, Some(error)),
        Err(payload) => (abi::Status::PANICKED, Some(panic_report(&*payload))),
    };
    // Finished: release what the future holds now rather than when the host gets to `drop`.
    drop_future(&mut state.future, "after it finished");
    if let Some(message) = message {
        // SAFETY: `out` is valid until the task is dropped.
        unsafe { report(state.out, &message) };
    }
    status.0
}

unsafe extern "C" fn drop_task<F>(state: *mut c_void) {
    // SAFETY: `state` is the `Box<State<F>>` made by `start`; the host drops a task once.
    let mut state = unsafe { Box::from_raw(state as *mut State<F>) };
    drop_future(&mut state.future, "cancelled or past its deadline");
}

// ---------------------------------------------------------------------------------------------
// The host's waker as a `std::task::Waker`

/// Wraps the host's borrowed waker for one poll. The result must not outlive the call, which
/// `ManuallyDrop` and the `Context` borrow ensure: whoever keeps a waker clones it, and clones
/// are owned host wakers ([`OWNED`]).
///
/// # Safety
/// `waker` must be valid for the current `poll` call.
pub(super) unsafe fn waker_ref(waker: *const abi::Waker) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new(waker as *const (), &BORROWED);
    // SAFETY: `BORROWED` upholds `RawWaker`'s contract for a pointer valid during the poll.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}

/// For the borrowed waker of a poll: `data` is `*const abi::Waker`. It is never dropped or
/// woken by value (it sits in a `ManuallyDrop` and is only lent out), so `wake` is `wake_by_ref`
/// and `drop` does nothing.
static BORROWED: RawWakerVTable = RawWakerVTable::new(
    clone_waker,
    borrowed_wake_by_ref,
    borrowed_wake_by_ref,
    |_| (),
);

/// For owned clones: `data` is `Box<abi::Waker>` holding an owned host waker.
static OWNED: RawWakerVTable =
    RawWakerVTable::new(clone_waker, owned_wake, borrowed_wake_by_ref, owned_drop);

unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: `data` points to a live `abi::Waker` (borrowed for the poll, or boxed and owned);
    // `clone` returns a new owned host waker, which the box now owns.
    unsafe {
        let waker = &*(data as *const abi::Waker);
        let owned = ((*waker.vt).clone)(waker.data);
        RawWaker::new(Box::into_raw(Box::new(owned)) as *const (), &OWNED)
    }
}

unsafe fn borrowed_wake_by_ref(data: *const ()) {
    // SAFETY: `data` points to a live `abi::Waker`.
    unsafe {
        let waker = &*(data as *const abi::Waker);
        ((*waker.vt).wake_by_ref)(waker.data)
    }
}

unsafe fn owned_wake(data: *const ()) {
    // SAFETY: `data` is the box made by `clone_waker`; `wake` consumes the owned host waker.
    unsafe {
        let waker = Box::from_raw(data as *mut abi::Waker);
        ((*waker.vt).wake)(waker.data)
    }
}

unsafe fn owned_drop(data: *const ()) {
    // SAFETY: `data` is the box made by `clone_waker`; `drop` releases the owned host waker.
    unsafe {
        let waker = Box::from_raw(data as *mut abi::Waker);
        ((*waker.vt).drop)(waker.data)
    }
}
