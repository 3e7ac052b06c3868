//! Where route code runs: a sync `fn` on a bounded number of threads of tokio's blocking pool,
//! an `async fn` inline on the server's workers; each call under a deadline.
//!
//! An `async fn` hook is polled where the request is served ([`RoutePool::run_async`]): no
//! thread hop, and a sleeping handler costs a future, not a thread. Its deadline really cancels:
//! past [`Limits::handler_timeout`] the route's future is dropped and the caller answers `504`.
//! It must not block (the watchdog in `task.rs` logs a poll that holds a worker too long).
//!
//! A sync `fn` means "may block or spin". On the async workers that would stall
//! every connection (measured: two spinning requests delayed an unrelated `/` by 2.7 s on two
//! workers), so every call into a route runs on the blocking pool, at most
//! [`Limits::route_threads`] at once, and the caller waits at most
//! [`Limits::handler_timeout`] (queueing for a thread included). Rust cannot stop a thread: a
//! call past its deadline keeps its thread (and its place in the bound) until it returns; the
//! caller answers without it (`504`) and the overrun is logged, with a count of such calls.
//!
//! [`Limits::route_threads`]: crate::Limits::route_threads
//! [`Limits::handler_timeout`]: crate::Limits::handler_timeout

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Semaphore;

use crate::http_error::HttpError;
use crate::module::{CallError, RouteFuture};

/// Route calls running now, in the whole process (any pool), and the route of the last one
/// that started: what an `exit` from route code is reported with ([`in_flight`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static LAST_STARTED: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// When route calls are running: how many, and the route of the last one that started.
pub(crate) fn in_flight() -> Option<(usize, String)> {
    let running = IN_FLIGHT.load(Ordering::Acquire);
    if running == 0 {
        return None;
    }
    // `try_lock`: this may run at exit, while a thread holds the lock.
    let last = LAST_STARTED
        .try_lock()
        .map(|last| last.clone())
        .unwrap_or_default();
    Some((running, last))
}

/// Marks a route call running until dropped.
struct Running;

impl Running {
    fn start(file: &str) -> Running {
        if let Ok(mut last) = LAST_STARTED.lock() {
            last.clear();
            last.push_str(file);
        }
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
/// The caller stopped waiting.
const ABANDONED: u8 = 2;

/// The bounded pool route calls run on.
#[derive(Debug)]
pub(crate) struct RoutePool {
    threads: Arc<Semaphore>,
    size: usize,
    timeout: Duration,
    /// Calls that passed their deadline and are still running.
    overrunning: Arc<AtomicUsize>,
    /// Where each call records its route as it starts ([`ServerConfig::call_record`]).
    ///
    /// [`ServerConfig::call_record`]: crate::ServerConfig::call_record
    record: Option<Arc<CallRecord>>,
}

/// The record file, and the route it names now: a call to the same route as the last one
/// writes nothing (a supervised server's hot path costs a lock, not a system call).
#[derive(Debug)]
struct CallRecord {
    file: std::fs::File,
    last: std::sync::Mutex<String>,
}

impl CallRecord {
    /// Records that a call to `route` starts.
    fn write(&self, route: &str) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != route {
            write_record(&self.file, route);
            route.clone_into(&mut last);
        }
    }
}

/// The bytes a call record takes: a route file name and a line break, zero-padded, so that
/// each record overwrites the whole previous one in one write.
const RECORD_LEN: usize = 512;

/// A route call that did not finish within the handler timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Overrun {
    /// It ran, and is still running.
    #[error("route `{file}` did not answer within {} s", timeout.as_secs_f64())]
    Running { file: String, timeout: Duration },
    /// It never got a thread: every route thread was busy for the whole time.
    #[error(
        "route `{file}` could not start within {} s: all {threads} route threads are busy",
        timeout.as_secs_f64()
    )]
    NoThread {
        file: String,
        timeout: Duration,
        threads: usize,
    },
}

impl Overrun {
    /// The `504` answered for it.
    pub(crate) fn http_error(&self) -> HttpError {
        HttpError::new(StatusCode::GATEWAY_TIMEOUT, self.to_string())
    }
}

/// Counts a timed-out or panicked call in the metrics (see `telemetry::metrics`).
fn counted<T>(
    file: &str,
    result: Result<Result<T, CallError>, Overrun>,
) -> Result<Result<T, CallError>, Overrun> {
    match &result {
        Err(_) => crate::telemetry::metrics::route_timeout(file),
        Ok(Err(CallError::Panicked(_))) => crate::telemetry::metrics::route_panic(file),
        Ok(_) => {}
    }
    result
}

impl From<Overrun> for CallError {
    fn from(overrun: Overrun) -> CallError {
        CallError::Failed(overrun.to_string())
    }
}

impl RoutePool {
    pub(crate) fn new(size: usize, timeout: Duration) -> RoutePool {
        RoutePool {
            threads: Arc::new(Semaphore::new(size)),
            size,
            timeout,
            overrunning: Arc::new(AtomicUsize::new(0)),
            record: None,
        }
    }

    /// Polls `call`, an async call into the route `file`, on this task, at most the handler
    /// timeout; past it, `call` is dropped, which drops the route's future.
    pub(crate) async fn run_async<T>(
        &self,
        file: &str,
        call: RouteFuture<T>,
    ) -> Result<Result<T, CallError>, Overrun> {
        if let Some(record) = &self.record {
            record.write(file);
        }
        counted(file, self.run_async_uncounted(file, call).await)
    }

    async fn run_async_uncounted<T>(
        &self,
        file: &str,
        call: RouteFuture<T>,
    ) -> Result<Result<T, CallError>, Overrun> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result),
            Err(_) => {
                tracing::warn!(
                    target: "nitro::route",
                    route = %file,
                    "route `{file}` did not answer within {} s: its future was dropped",
                    self.timeout.as_secs_f64()
                );
                Err(Overrun::Running {
                    file: file.to_owned(),
                    timeout: self.timeout,
                })
            }
        }
    }

    /// Records each call's route file in `path` (created or truncated) as it starts; an error
    /// is logged and nothing recorded.
    pub(crate) fn with_call_record(mut self, path: Option<&std::path::Path>) -> RoutePool {
        let Some(path) = path else { return self };
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
        {
            Ok(file) => {
                self.record = Some(Arc::new(CallRecord {
                    file,
                    last: std::sync::Mutex::new(String::new()),
                }));
            }
            Err(err) => {
                tracing::warn!(target: "nitro::route", "cannot record route calls in `{}`: {err}", path.display())
            }
        }
        self
    }

    /// Runs `f`, a call into the route `file`, on a pool thread, and waits for it at most the
    /// handler timeout. A panic that escapes `f` becomes [`CallError::Panicked`].
    pub(crate) async fn call<T, F>(&self, file: &str, f: F) -> Result<Result<T, CallError>, Overrun>
    where
        F: FnOnce() -> Result<T, CallError> + Send + 'static,
        T: Send + 'static,
    {
        counted(file, self.call_uncounted(file, f).await)
    }

    async fn call_uncounted<T, F>(&self, file: &str, f: F) -> Result<Result<T, CallError>, Overrun>
    where
        F: FnOnce() -> Result<T, CallError> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let permit = match tokio::time::timeout(self.timeout, self.threads.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(target: "nitro::route", route = %file, "every route thread is busy: a call to `{file}` waited {} s for one", self.timeout.as_secs_f64());
                return Err(Overrun::NoThread {
                    file: file.to_owned(),
                    timeout: self.timeout,
                    threads: self.size,
                });
            }
        };
        let state = Arc::new(AtomicU8::new(RUNNING));
        let run = {
            let state = state.clone();
            let overrunning = self.overrunning.clone();
            let file = file.to_owned();
            let record = self.record.clone();
            // The call runs in the request's (or peer's) span, as an async one does: opened
            // now, since the route's events on the pool's thread cannot open it.
            crate::telemetry::span::enter_request_span();
            let span = tracing::Span::current();
            move || {
                let _span = span.enter();
                if let Some(record) = record {
                    record.write(&file);
                }
                let running = Running::start(&file);
                let result = f();
                drop(running);
                drop(permit);
                if state.swap(DONE, Ordering::AcqRel) == ABANDONED {
                    let left = overrunning.fetch_sub(1, Ordering::AcqRel) - 1;
                    tracing::warn!(target: "nitro::route", route = %file, "route `{file}` returned after {:.1} s, past its deadline; {left} calls still overrunning", started.elapsed().as_secs_f64());
                }
                result
            }
        };
        let remaining = self.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, blocking(run)).await {
            Ok(result) => Ok(result),
            Err(_) => {
                // Counted before the call can see it abandoned, so the count never underflows.
                let overrunning = self.overrunning.fetch_add(1, Ordering::AcqRel) + 1;
                if state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // It returned just now; its answer is lost with the timed-out wait.
                    self.overrunning.fetch_sub(1, Ordering::AcqRel);
                }
                tracing::warn!(
                    target: "nitro::route",
                    route = %file,
                    "route `{file}` is still running after {} s: answering without it; its thread stays busy until it returns ({overrunning} calls overrunning, {} route threads in all)",
                    self.timeout.as_secs_f64(),
                    self.size
                );
                if overrunning * 2 >= self.size {
                    tracing::warn!(target: "nitro::route", "half of the route threads are held by calls that overran: restart the server to get them back");
                }
                Err(Overrun::Running {
                    file: file.to_owned(),
                    timeout: self.timeout,
                })
            }
        }
    }
}

/// Overwrites the call record with `file` (see [`RECORD_LEN`]).
fn write_record(record: &std::fs::File, file: &str) {
    use std::os::unix::fs::FileExt;
    let mut line = [0u8; RECORD_LEN];
    let name = &file.as_bytes()[..file.len().min(RECORD_LEN - 1)];
    line[..name.len()].copy_from_slice(name);
    line[name.len()] = b'\n';
    let _ = record.write_at(&line, 0);
}

/// Runs `f` (a call into a route) on tokio's blocking pool, so a slow or blocking route never
/// stalls the async workers. A panic that escapes `f` (an in-process [`RouteModule`] that
/// panics instead of returning [`CallError::Panicked`]) becomes `CallError::Panicked`.
///
/// [`RouteModule`]: crate::module::RouteModule
async fn blocking<T, F>(f: F) -> Result<T, CallError>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_call_records_its_route_as_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls");
        let pool = RoutePool::new(2, Duration::from_secs(5)).with_call_record(Some(&path));
        let read = || {
            let text = std::fs::read(&path).unwrap();
            let end = text.iter().position(|&b| b == b'\n').unwrap();
            String::from_utf8(text[..end].to_vec()).unwrap()
        };
        let seen = pool
            .call("routes/a-much-longer-name.rs", move || Ok(()))
            .await;
        assert!(matches!(seen, Ok(Ok(()))));
        assert_eq!(read(), "routes/a-much-longer-name.rs");
        let (path2, during) = (path.clone(), Arc::new(std::sync::Mutex::new(String::new())));
        let during2 = during.clone();
        pool.call("routes/b.rs", move || {
            let text = std::fs::read(&path2).unwrap();
            *during2.lock().unwrap() = String::from_utf8_lossy(&text[..12]).into_owned();
            Ok(())
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            *during.lock().unwrap(),
            "routes/b.rs\n",
            "written before the call runs"
        );
        assert_eq!(read(), "routes/b.rs");

        // An `async fn` call records its route too, before its first poll.
        let (path3, during) = (path.clone(), Arc::new(std::sync::Mutex::new(String::new())));
        let during3 = during.clone();
        let call: crate::module::RouteFuture<()> = Box::pin(async move {
            let text = std::fs::read(&path3).unwrap();
            *during3.lock().unwrap() = String::from_utf8_lossy(&text[..12]).into_owned();
            Ok(())
        });
        pool.run_async("routes/c.rs", call).await.unwrap().unwrap();
        assert_eq!(*during.lock().unwrap(), "routes/c.rs\n");
    }
}
