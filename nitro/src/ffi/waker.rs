//! A `std` waker of the route as a C [`abi::Waker`], for host calls that keep a waker
//! ([`abi::PeerVTable::poll_drain`]): the reverse of `task.rs`, which wraps the host's waker.
//!
//! The borrowed waker handed to the host points at the caller's `&std::task::Waker`; a clone
//! the host makes is a boxed `std::task::Waker`, released by `wake` or `drop`. Every function
//! catches panics (none may unwind into the host).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;

use nitro_abi as abi;

/// `waker` as a C waker borrowed for one host call (the host may `clone` and `wake_by_ref`
/// it during the call, never `wake` or `drop` it).
pub(crate) fn borrowed(waker: &Waker) -> abi::Waker {
    abi::Waker {
        data: waker as *const Waker as *const c_void,
        vt: &VTABLE,
    }
}

static VTABLE: abi::WakerVTable = abi::WakerVTable {
    clone,
    wake,
    wake_by_ref,
    drop: drop_waker,
};

/// What a clone gives when cloning panicked: a waker that does nothing.
static NOOP: abi::WakerVTable = abi::WakerVTable {
    clone: noop_clone,
    wake: noop,
    wake_by_ref: noop,
    drop: noop,
};

unsafe extern "C" fn clone(data: *const c_void) -> abi::Waker {
    catch_unwind(|| {
        // SAFETY: `data` is a `&Waker` (borrowed) or a boxed one (owned), valid for the call.
        let waker = unsafe { &*(data as *const Waker) };
        abi::Waker {
            data: Box::into_raw(Box::new(waker.clone())) as *const c_void,
            vt: &VTABLE,
        }
    })
    .unwrap_or(abi::Waker {
        data: std::ptr::null(),
        vt: &NOOP,
    })
}

unsafe extern "C" fn wake(data: *const c_void) {
    // SAFETY: only owned (boxed) wakers are consumed, exactly once (ABI contract).
    let waker = unsafe { Box::from_raw(data as *mut Waker) };
    let _ = catch_unwind(AssertUnwindSafe(|| waker.wake()));
}

unsafe extern "C" fn wake_by_ref(data: *const c_void) {
    // SAFETY: as in `clone`.
    let waker = unsafe { &*(data as *const Waker) };
    let _ = catch_unwind(|| waker.wake_by_ref());
}

unsafe extern "C" fn drop_waker(data: *const c_void) {
    // SAFETY: as in `wake`.
    let waker = unsafe { Box::from_raw(data as *mut Waker) };
    let _ = catch_unwind(AssertUnwindSafe(|| drop(waker)));
}

unsafe extern "C" fn noop_clone(_: *const c_void) -> abi::Waker {
    abi::Waker {
        data: std::ptr::null(),
        vt: &NOOP,
    }
}

unsafe extern "C" fn noop(_: *const c_void) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_clone_wakes_the_original_and_is_released() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let c = borrowed(&waker);
        // SAFETY: the ABI's use: clone the borrowed waker, wake the clone by reference, then
        // consume it with `wake`; a second clone is dropped.
        unsafe {
            let owned = ((*c.vt).clone)(c.data);
            ((*owned.vt).wake_by_ref)(owned.data);
            ((*owned.vt).wake)(owned.data);
            let other = ((*c.vt).clone)(c.data);
            ((*other.vt).drop)(other.data);
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(Arc::strong_count(&count), 2, "every clone released");
    }
}
