//! A storage operation as an [`abi::Task`] the route polls: the host side of
//! `HostApi::storage`, and the reverse of `crate::task` (there the host polls the route's task;
//! here the route polls the host's, with a waker of its own).
//!
//! The operation runs as a tokio task on the server's runtime, never in the route's poll, so
//! the route may poll from any thread (a worker of the server, its own runtime's thread, a sync
//! `fn` blocking on it). It finishes by filling the shared [`Slot`] and waking the route's
//! waker; the route's next poll hands the results to its sink. A memory mount answers at once:
//! the task is ready before it is returned. Dropping the task early aborts the operation.
//!
//! One of the runtime's three modules with `unsafe` (with `loader.rs` and `crate::task`): the
//! task's `poll` and `drop` receive the state pointer and the route's waker and sink.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nitro_abi as abi;

use super::{Op, Reply, Storage, StorageError};

/// The final status and results, once the operation is done, and the waker to call then.
#[derive(Default)]
struct Slot {
    done: Option<(i32, Vec<Vec<u8>>)>,
    /// An owned clone of the route's waker, from its last pending poll.
    waker: Option<abi::Waker>,
}

type Shared = Arc<Mutex<Slot>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Slot> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the outcome and wakes the route (outside the lock).
fn finish(shared: &Shared, status: i32, items: Vec<Vec<u8>>) {
    let waker = {
        let mut slot = lock(shared);
        if slot.done.is_some() {
            return;
        }
        slot.done = Some((status, items));
        slot.waker.take()
    };
    if let Some(waker) = waker {
        // SAFETY: an owned waker from the route's `clone`, consumed by exactly this `wake`;
        // the ABI allows it from any thread.
        unsafe { ((*waker.vt).wake)(waker.data) };
    }
}

fn finish_with(shared: &Shared, result: Result<Reply, StorageError>) {
    match result {
        Ok(reply) => finish(shared, abi::storage::OK, reply.into_items()),
        Err(error) => {
            let status = match &error {
                StorageError::NoMount { .. } => abi::storage::NO_MOUNT,
                StorageError::InvalidKey { .. } => abi::storage::INVALID_KEY,
                StorageError::TooLarge { .. } => abi::storage::TOO_LARGE,
                _ => abi::storage::FAILED,
            };
            finish(shared, status, vec![error.to_string().into_bytes()])
        }
    }
}

/// Finishes the slot with an error if the operation's tokio task is dropped before it did
/// (the server's runtime shutting down).
struct Unfinished(Shared);

impl Drop for Unfinished {
    fn drop(&mut self) {
        finish_with(
            &self.0,
            Err(StorageError::Stopped("the server is shutting down")),
        );
    }
}

/// What the task's `state` points to.
struct State {
    shared: Shared,
    sink: abi::BytesSink,
    /// The operation's tokio task, aborted when the route drops the task early.
    running: Option<tokio::task::AbortHandle>,
}

/// The operation of a call, with its arguments copied.
///
/// # Safety
/// `call`'s byte slices must be valid for the call.
unsafe fn decode(call: &abi::StorageCall) -> Result<(String, Op), StorageError> {
    let text = |bytes: abi::Bytes| {
        // SAFETY: caller contract.
        String::from_utf8_lossy(unsafe { bytes.as_slice() }).into_owned()
    };
    let mount = text(call.mount);
    let key = text(call.key);
    let op = match call.op {
        abi::storage::GET => Op::Get(key),
        abi::storage::SET => Op::Set(
            key,
            // SAFETY: caller contract.
            unsafe { call.value.as_slice() }.to_vec(),
            (call.ttl_ms > 0).then(|| Duration::from_millis(call.ttl_ms)),
        ),
        abi::storage::HAS => Op::Has(key),
        abi::storage::REMOVE => Op::Remove(key),
        abi::storage::KEYS => Op::Keys(key),
        abi::storage::CLEAR => Op::Clear(key),
        _ => {
            return Err(StorageError::Stopped(
                "the route asked for an unknown operation",
            ));
        }
    };
    Ok((mount, op))
}

/// Starts `call` on `storage` and writes its task to `task`.
///
/// # Safety
/// `call` and its slices must be valid for this call; `result` must be valid for this call and
/// its `ctx` until the task is dropped; `task` must be valid for a write.
pub(crate) unsafe fn start(
    storage: &Storage,
    call: *const abi::StorageCall,
    result: *const abi::BytesSink,
    task: *mut abi::Task,
) {
    let shared: Shared = Arc::default();
    // SAFETY: caller contract.
    let sink = unsafe {
        abi::BytesSink {
            ctx: (*result).ctx,
            item: (*result).item,
        }
    };
    let started = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: caller contract.
        let (mount, op) = match unsafe { decode(&*call) } {
            Ok(decoded) => decoded,
            Err(error) => {
                finish_with(&shared, Err(error));
                return None;
            }
        };
        let mount = match storage.mount(&mount) {
            Ok(mount) => mount,
            Err(error) => {
                finish_with(&shared, Err(error));
                return None;
            }
        };
        if mount.is_immediate() {
            use futures_util::FutureExt as _;
            match mount.run(op).now_or_never() {
                Some(result) => {
                    finish_with(&shared, result);
                    return None;
                }
                None => unreachable!("the memory driver never waits"),
            }
        }
        let Some(runtime) = storage.runtime() else {
            finish_with(
                &shared,
                Err(StorageError::Stopped(
                    "storage needs a running server (no tokio runtime is attached)",
                )),
            );
            return None;
        };
        let guard = Unfinished(shared.clone());
        let handle = runtime.spawn(async move {
            let result = mount.run(op).await;
            finish_with(&guard.0, result);
        });
        Some(handle.abort_handle())
    }));
    let running = match started {
        Ok(running) => running,
        Err(_) => {
            tracing::error!(target: "nitro::storage", "starting a storage operation panicked");
            finish_with(
                &shared,
                Err(StorageError::Stopped("the host failed to start it")),
            );
            None
        }
    };
    let state = Box::new(State {
        shared,
        sink,
        running,
    });
    // SAFETY: caller contract: `task` is valid for a write.
    unsafe {
        task.write(abi::Task {
            state: Box::into_raw(state) as *mut c_void,
            poll,
            drop: drop_task,
        })
    };
}

unsafe extern "C" fn poll(state: *mut c_void, waker: *const abi::Waker) -> i32 {
    // SAFETY: `state` is the `State` made by `start`, polled by one caller at a time until it
    // is dropped; `waker` is borrowed for this call.
    let (state, waker) = unsafe { (&*(state as *const State), &*waker) };
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let mut slot = lock(&state.shared);
        match slot.done.take() {
            Some((status, items)) => {
                drop(slot);
                for item in &items {
                    // SAFETY: the route keeps the sink's `ctx` valid until it drops the task;
                    // the item is borrowed for the callback.
                    unsafe { (state.sink.item)(state.sink.ctx, abi::Bytes::new(item)) };
                }
                status
            }
            None => {
                // SAFETY: the borrowed waker may be cloned; the clone is owned by the slot.
                let fresh = unsafe { ((*waker.vt).clone)(waker.data) };
                if let Some(old) = slot.waker.replace(fresh) {
                    // SAFETY: an owned clone from an earlier poll, released once.
                    unsafe { ((*old.vt).drop)(old.data) };
                }
                abi::TASK_PENDING
            }
        }
    }));
    polled.unwrap_or_else(|_| {
        tracing::error!(target: "nitro::storage", "polling a storage operation panicked");
        abi::storage::FAILED
    })
}

unsafe extern "C" fn drop_task(state: *mut c_void) {
    // SAFETY: `state` is the box made by `start`; the route drops a task once.
    let state = unsafe { Box::from_raw(state as *mut State) };
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        if let Some(running) = &state.running {
            running.abort();
        }
        let waker = lock(&state.shared).waker.take();
        if let Some(waker) = waker {
            // SAFETY: an owned clone the slot held, released once.
            unsafe { ((*waker.vt).drop)(waker.data) };
        }
    }));
    if dropped.is_err() {
        tracing::error!(target: "nitro::storage", "dropping a storage operation panicked");
    }
}
