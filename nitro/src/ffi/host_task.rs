//! Tasks the host hands the route (`HostApi::storage`): the route polls them with its own
//! waker, turned here into an [`abi::Waker`], and drops each once. The reverse of [`super::task`]
//! (there the host polls the route's tasks).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll, Waker};

use nitro_abi as abi;

use super::host::{host, with_sink};

/// A storage operation running in the host; its results arrive in `items`.
pub(crate) struct HostCall {
    task: Option<abi::Task>,
    /// The sink's `ctx`: boxed, so the `Vec` itself stays where it is while the call moves.
    #[allow(clippy::box_collection)]
    items: Box<Vec<Vec<u8>>>,
}

/// What a finished host call gives: one of `abi::storage`'s statuses and the items.
pub(crate) type HostResult = (i32, Vec<Vec<u8>>);

impl HostCall {
    /// Starts `call` in the host; `None` without a host (unit tests) or with a host older
    /// than storage.
    pub(crate) fn storage(call: &abi::StorageCall) -> Option<HostCall> {
        let h = host()?;
        let needed = std::mem::offset_of!(abi::HostApi, storage) + std::mem::size_of::<usize>();
        if (h.struct_size as usize) < needed {
            return None;
        }
        let mut items: Box<Vec<Vec<u8>>> = Box::default();
        let sink = with_sink(&mut items);
        let mut task = std::mem::MaybeUninit::<abi::Task>::uninit();
        // SAFETY: the host's table covers `storage` (checked above). `call` is borrowed for the
        // call; the sink's `ctx` is the boxed `items`, which lives until this `HostCall` drops
        // the task; the host always writes the task.
        let task = unsafe {
            (h.storage)(h.ctx, call, &sink, task.as_mut_ptr());
            task.assume_init()
        };
        Some(HostCall {
            task: Some(task),
            items,
        })
    }

    /// Polls the host's task; ready with its status and items once it finished.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<HostResult> {
        let Some(task) = &self.task else {
            return Poll::Ready((
                abi::storage::FAILED,
                vec![b"polled after it finished".to_vec()],
            ));
        };
        let waker = abi::Waker {
            data: cx.waker() as *const Waker as *const c_void,
            vt: &BORROWED,
        };
        // SAFETY: the task is live (not finished, not dropped) and polled from `&mut self`
        // only; the waker is valid for the call.
        let status = unsafe { (task.poll)(task.state, &waker) };
        if status == abi::TASK_PENDING {
            return Poll::Pending;
        }
        self.drop_task();
        Poll::Ready((status, std::mem::take(&mut *self.items)))
    }

    fn drop_task(&mut self) {
        if let Some(task) = self.task.take() {
            // SAFETY: the task is dropped exactly once, here.
            unsafe { (task.drop)(task.state) };
        }
    }
}

impl Drop for HostCall {
    fn drop(&mut self) {
        self.drop_task();
    }
}

// ---------------------------------------------------------------------------------------------
// The route's waker as an `abi::Waker`

/// For the waker borrowed for one poll: `data` is `*const std::task::Waker`. The host only
/// clones it or wakes it by reference (ABI contract).
static BORROWED: abi::WakerVTable = abi::WakerVTable {
    clone: waker_clone,
    wake: waker_wake_by_ref,
    wake_by_ref: waker_wake_by_ref,
    drop: borrowed_drop,
};

/// For owned clones: `data` is `Box<std::task::Waker>`.
static OWNED: abi::WakerVTable = abi::WakerVTable {
    clone: waker_clone,
    wake: owned_wake,
    wake_by_ref: waker_wake_by_ref,
    drop: owned_drop,
};

/// A waker that does nothing (what a failed clone yields).
static NOOP: abi::WakerVTable = abi::WakerVTable {
    clone: noop_clone,
    wake: borrowed_drop,
    wake_by_ref: borrowed_drop,
    drop: borrowed_drop,
};

/// Runs a waker function body without letting a panic unwind into the host.
fn no_unwind(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

unsafe extern "C" fn waker_clone(data: *const c_void) -> abi::Waker {
    // SAFETY: `data` is a live `std::task::Waker` (borrowed for the poll, or boxed and owned).
    let waker = unsafe { &*(data as *const Waker) };
    match catch_unwind(AssertUnwindSafe(|| Box::new(waker.clone()))) {
        Ok(owned) => abi::Waker {
            data: Box::into_raw(owned) as *const c_void,
            vt: &OWNED,
        },
        Err(_) => abi::Waker {
            data: std::ptr::null(),
            vt: &NOOP,
        },
    }
}

unsafe extern "C" fn waker_wake_by_ref(data: *const c_void) {
    // SAFETY: `data` is a live `std::task::Waker`.
    no_unwind(|| unsafe { &*(data as *const Waker) }.wake_by_ref())
}

unsafe extern "C" fn borrowed_drop(_data: *const c_void) {}

unsafe extern "C" fn owned_wake(data: *const c_void) {
    // SAFETY: `data` is a box made by `waker_clone`, consumed here.
    no_unwind(|| unsafe { Box::from_raw(data as *mut Waker) }.wake())
}

unsafe extern "C" fn owned_drop(data: *const c_void) {
    // SAFETY: `data` is a box made by `waker_clone`, consumed here.
    no_unwind(|| drop(unsafe { Box::from_raw(data as *mut Waker) }))
}

unsafe extern "C" fn noop_clone(_data: *const c_void) -> abi::Waker {
    abi::Waker {
        data: std::ptr::null(),
        vt: &NOOP,
    }
}
