//! The host side of async calls: polling a route's [`abi::Task`] on the server's workers.
//!
//! An `async fn` hook of a route starts a task (see `nitro-abi`'s crate docs). [`RouteTask`] is
//! the Rust future over it: each `poll` hands the route a C [`abi::Waker`] made from the
//! worker's `std` waker, and dropping it drops the route's future, which is how
//! `handler_timeout` cancels an async call. Every poll is timed: one that holds the worker
//! longer than [`SLOW_POLL`] is logged with the route file, because a blocking `async fn`
//! stalls every connection served by that worker (the route pool exists for code that blocks).
//!
//! Each task also holds its route library's [`Generation`]. The generation's `shutdown` runs
//! when the last holder lets go: the loaded route (when the server retires it) and every task
//! still in flight. That is the drain: in-flight calls finish on the old code (or are dropped at
//! their deadline), then the old runtime stops.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nitro_abi as abi;

/// A poll longer than this is reported: it held an async worker that other connections need.
pub(crate) const SLOW_POLL: Duration = Duration::from_millis(10);

/// How long a retired generation's `shutdown` waits for its runtime's threads.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The threads running a retired generation's `shutdown`. Process-wide, like the images
/// themselves (`dlopen` is per process): [`wait_retired`] lets a process that is about to exit
/// give them their moment.
static RETIRING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits at most `timeout` for the `shutdown` of every retired generation to finish; returns
/// how many are still running.
pub(crate) fn wait_retired(timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let running = {
            let mut retiring = RETIRING.lock().unwrap_or_else(PoisonError::into_inner);
            retiring.retain(|thread| !thread.is_finished());
            retiring.len()
        };
        if running == 0 || Instant::now() >= deadline {
            return running;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One loaded image of a route library, shared by the loaded route and its in-flight tasks.
/// Dropped when the generation is retired and drained; then its `shutdown` entry runs on a
/// thread of its own (it blocks until the route's runtime threads have exited).
#[derive(Debug)]
pub(crate) struct Generation {
    pub(crate) file: String,
    pub(crate) shutdown: Option<unsafe extern "C" fn(timeout_ms: u64)>,
}

impl Drop for Generation {
    fn drop(&mut self) {
        let Some(shutdown) = self.shutdown else {
            return;
        };
        let file = std::mem::take(&mut self.file);
        let spawned = std::thread::Builder::new()
            .name("nitro-shutdown".to_owned())
            .spawn(move || {
                let started = Instant::now();
                let timeout_ms = u64::try_from(SHUTDOWN_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
                // SAFETY: `shutdown` comes from the route table of a library that stays mapped;
                // no task or call of this generation is left (this is the last reference), and
                // it is called once.
                unsafe { shutdown(timeout_ms) };
                tracing::debug!(target: "nitro::loader", route = %file, "retired a generation of `{file}` in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
            });
        match spawned {
            Ok(thread) => {
                let mut retiring = RETIRING.lock().unwrap_or_else(PoisonError::into_inner);
                retiring.retain(|thread| !thread.is_finished());
                retiring.push(thread);
            }
            Err(error) => {
                tracing::warn!(target: "nitro::loader", "cannot start a thread to retire a route generation: {error}");
            }
        }
    }
}

/// A started route task, as a future of its final [`abi::Status`]. Owns `slots` (the outcome
/// and responder the route writes to, which must outlive the task) and frees them after the
/// route dropped the task.
pub(crate) struct RouteTask<S> {
    task: abi::Task,
    finished: bool,
    slots: *mut S,
    generation: Arc<Generation>,
}

// SAFETY: the route's future is `Send` (the route API requires it) and the ABI lets `poll` and
// `drop` run on any thread, one call at a time (`&mut self`); the slots are plain host data of
// type `S: Send`.
unsafe impl<S: Send> Send for RouteTask<S> {}

impl<S> RouteTask<S> {
    /// Moves `slots` to the heap and calls `start` with a pointer to them and to the task to
    /// fill in. `Err` carries the start call's status (no task was made) and the slots back.
    pub(crate) fn start(
        generation: &Arc<Generation>,
        slots: S,
        start: impl FnOnce(*mut S, *mut abi::Task) -> abi::Status,
    ) -> Result<RouteTask<S>, (abi::Status, Box<S>)> {
        let slots = Box::into_raw(Box::new(slots));
        let mut task = std::mem::MaybeUninit::<abi::Task>::uninit();
        let status = start(slots, task.as_mut_ptr());
        if status != abi::Status::OK {
            // SAFETY: no task was written, so the route holds no pointer to the slots.
            return Err((status, unsafe { Box::from_raw(slots) }));
        }
        Ok(RouteTask {
            // SAFETY: the route wrote the task (it returned OK, per the ABI).
            task: unsafe { task.assume_init() },
            finished: false,
            slots,
            generation: generation.clone(),
        })
    }

    /// Drops the route's task and hands back the slots it wrote to.
    pub(crate) fn into_slots(self) -> Box<S> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used again; the task is dropped once, before the slots are
        // taken back (the route may write to them until then).
        unsafe {
            (this.task.drop)(this.task.state);
            drop(std::ptr::read(&this.generation));
            Box::from_raw(this.slots)
        }
    }
}

impl<S> Drop for RouteTask<S> {
    fn drop(&mut self) {
        // SAFETY: the task is dropped exactly once, here (or in `into_slots`, which skips this);
        // only then are the slots freed.
        unsafe {
            (self.task.drop)(self.task.state);
            drop(Box::from_raw(self.slots));
        }
    }
}

impl<S> Future for RouteTask<S> {
    type Output = abi::Status;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<abi::Status> {
        // `RouteTask` is `Unpin`: the route's future lives behind `task.state`.
        let this = self.get_mut();
        assert!(!this.finished, "a route task was polled after it finished");
        let waker = abi::Waker {
            data: cx.waker() as *const Waker as *const c_void,
            vt: &BORROWED,
        };
        let started = Instant::now();
        // SAFETY: the task is live (not finished, not dropped) and polled from `&mut self` only;
        // the waker is valid for the call.
        let status = unsafe { (this.task.poll)(this.task.state, &waker) };
        let held = started.elapsed();
        if held > SLOW_POLL {
            let file = &this.generation.file;
            tracing::warn!(
                target: "nitro::route",
                route = %file,
                "route `{file}` blocked an async worker for {} ms in one poll: use a sync `fn` (it runs on the route pool) or `tokio::task::spawn_blocking` for blocking work",
                held.as_millis()
            );
        }
        if status == abi::TASK_PENDING {
            return Poll::Pending;
        }
        this.finished = true;
        Poll::Ready(abi::Status(status))
    }
}

// ---------------------------------------------------------------------------------------------
// The worker's waker as an `abi::Waker`

/// For the waker borrowed for one poll: `data` is `*const std::task::Waker`. The route only
/// clones it or wakes it by reference (ABI contract); `wake` and `drop` are harmless anyway.
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

/// Runs a waker function body without letting a panic unwind into the route.
fn no_unwind(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!(target: "nitro::loader", "a waker panicked; the wake-up was ignored");
    }
}

unsafe extern "C" fn waker_clone(data: *const c_void) -> abi::Waker {
    // SAFETY: `data` is a live `std::task::Waker` (borrowed for the poll, or boxed and owned).
    let waker = unsafe { &*(data as *const Waker) };
    match catch_unwind(AssertUnwindSafe(|| Box::new(waker.clone()))) {
        Ok(owned) => abi::Waker {
            data: Box::into_raw(owned) as *const c_void,
            vt: &OWNED,
        },
        Err(_) => {
            tracing::error!(target: "nitro::loader", "cloning a waker panicked");
            abi::Waker {
                data: std::ptr::null(),
                vt: &NOOP,
            }
        }
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

/// A waker that does nothing (what a failed clone yields).
static NOOP: abi::WakerVTable = abi::WakerVTable {
    clone: noop_clone,
    wake: borrowed_drop,
    wake_by_ref: borrowed_drop,
    drop: borrowed_drop,
};

unsafe extern "C" fn noop_clone(_data: *const c_void) -> abi::Waker {
    abi::Waker {
        data: std::ptr::null(),
        vt: &NOOP,
    }
}

// ---------------------------------------------------------------------------------------------
// Body streams

/// A route's [`abi::BodyStream`] as a stream of chunks: polled by the response body when the
/// client is ready for more, dropped (the route's stream with it) when the response ends or the
/// client goes away. Holds its route library's [`Generation`], like a task.
pub(crate) struct RouteStream {
    body: abi::BodyStream,
    /// Set after `STREAM_END` or `STREAM_ERROR`: not polled again.
    finished: bool,
    generation: Arc<Generation>,
}

// SAFETY: the route's stream is `Send` (the route API requires it) and the ABI lets
// `poll_next` and `drop` run on any thread, one call at a time (`&mut self`).
unsafe impl Send for RouteStream {}

impl std::fmt::Debug for RouteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStream")
            .field("route", &self.generation.file)
            .field("finished", &self.finished)
            .finish()
    }
}

impl RouteStream {
    /// Takes ownership of a stream the route handed over.
    pub(crate) fn new(body: abi::BodyStream, generation: &Arc<Generation>) -> RouteStream {
        RouteStream {
            body,
            finished: false,
            generation: generation.clone(),
        }
    }
}

/// Receives the one chunk (or error message) of a `poll_next` call.
unsafe extern "C" fn take_chunk(ctx: *mut c_void, item: abi::Bytes) {
    no_unwind(|| {
        // SAFETY: `ctx` is the `Option<bytes::Bytes>` of the running `poll_next`, and `item` is
        // borrowed for this callback.
        unsafe {
            let slot = &mut *(ctx as *mut Option<bytes::Bytes>);
            *slot = Some(bytes::Bytes::copy_from_slice(item.as_slice()));
        }
    })
}

impl futures_util::Stream for RouteStream {
    type Item = Result<bytes::Bytes, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let waker = abi::Waker {
            data: cx.waker() as *const Waker as *const c_void,
            vt: &BORROWED,
        };
        let mut item: Option<bytes::Bytes> = None;
        let sink = abi::BytesSink {
            ctx: &mut item as *mut Option<bytes::Bytes> as *mut c_void,
            item: take_chunk,
        };
        let started = Instant::now();
        // SAFETY: the stream is live (not finished, not dropped) and polled from `&mut self`
        // only; the waker and the sink are valid for the call.
        let code = unsafe { (this.body.poll_next)(this.body.state, &waker, &sink) };
        let held = started.elapsed();
        if held > SLOW_POLL {
            let file = &this.generation.file;
            tracing::warn!(
                target: "nitro::route",
                route = %file,
                "the body stream of route `{file}` blocked an async worker for {} ms in one poll: do blocking work in `tokio::task::spawn_blocking`",
                held.as_millis()
            );
        }
        match code {
            abi::TASK_PENDING => Poll::Pending,
            abi::STREAM_CHUNK => Poll::Ready(Some(Ok(item.unwrap_or_default()))),
            abi::STREAM_END => {
                this.finished = true;
                Poll::Ready(None)
            }
            other => {
                this.finished = true;
                let message = match (other, item) {
                    (abi::STREAM_ERROR, Some(message)) => {
                        String::from_utf8_lossy(&message).into_owned()
                    }
                    (abi::STREAM_ERROR, None) => "the stream failed".to_owned(),
                    (other, _) => format!("the stream answered an unknown code {other}"),
                };
                Poll::Ready(Some(Err(message)))
            }
        }
    }
}

impl Drop for RouteStream {
    fn drop(&mut self) {
        // SAFETY: the stream is dropped exactly once, here.
        unsafe { (self.body.drop)(self.body.state) };
    }
}
