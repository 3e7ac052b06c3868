//! Key-value storage owned by the server: `nitro::storage("mount")`, Nitro's `useStorage`.
//!
//! A mount is declared in `nitro.toml` (`[storage.NAME]`, driver `memory`, `fs` or `redis`; see
//! `docs/config.md`). Two are there without any config: `memory` (in the server's memory) and
//! `data` (files under `.data/kv`). The server owns the data, so every route file sees the same
//! values, and they survive `nitro dev` reloading a route (the memory mount is lost only when
//! the process exits).
//!
//! Values are JSON (anything `serde` can write and read) or raw bytes; keys are `:`-separated
//! (`todos:1`; `/` reads as `:`); an optional time to live per value.
//!
//! ```no_run
//! use nitro::{Json, Request, Result};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Todo {
//!     title: String,
//! }
//!
//! // routes/todos.post.rs
//! pub async fn handler(req: Request) -> Result<String> {
//!     let store = nitro::storage("data");
//!     let id = store.keys("todos").await?.len() + 1;
//!     let todo = Todo { title: req.text()?.to_owned() };
//!     store.set(&format!("todos:{id}"), &todo).await?;
//!     store.set_raw("last-post", "now").ttl(Duration::from_secs(60)).await?;
//!     Ok(format!("todo {id} saved"))
//! }
//!
//! // routes/todos.get.rs: a plain `fn` may block on the same operations with `wait()`
//! pub fn list() -> Result<Json<Vec<Todo>>> {
//!     let store = nitro::storage("data");
//!     let mut todos = Vec::new();
//!     for key in store.keys("todos").wait()? {
//!         todos.extend(store.get::<Todo>(&key).wait()?);
//!     }
//!     Ok(Json(todos))
//! }
//! ```
//!
//! Each operation is a future (`.await` it in an `async fn` or a WebSocket hook) that also has
//! [`Op::wait`], which blocks the thread until it is done: for plain `fn`s, which run on a pool
//! where blocking is fine. Never `wait()` in an `async fn`; `.await` there. Errors are
//! [`StorageError`]s; `?` turns them into a `500` that names the mount or the key.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use nitro_abi as abi;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ffi::{HostCall, HostResult};

/// The storage mount called `mount` (`[storage.NAME]` in `nitro.toml`, or the default `memory`
/// and `data`). Cheap: nothing is checked until an operation runs, which fails with
/// [`StorageErrorKind::NoMount`] if there is no such mount.
pub fn storage(mount: &str) -> Storage {
    Storage {
        mount: mount.to_owned(),
    }
}

/// A storage mount; see [`storage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    mount: String,
}

/// What went wrong, for code that treats cases differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// No mount has that name.
    NoMount,
    /// The key (or prefix) is refused: empty, over 512 bytes, an empty segment, a segment
    /// starting with `.` (no traversal), a `\` or a control character.
    InvalidKey,
    /// The value is larger than the mount's `max_value`.
    TooLarge,
    /// The value is not the JSON of the type asked for, or the type could not be written.
    Json,
    /// The driver failed (a file, Redis), or the server stopped.
    Failed,
    /// No server: route code running outside `nitro dev`/`nitro start` (unit tests).
    NoServer,
}

/// A storage operation that failed; its text names the mount, the key or the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    kind: StorageErrorKind,
    message: String,
}

impl StorageError {
    fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

/// How a finished call's items become the operation's answer.
type Decode<T> = fn(&Call, Vec<Vec<u8>>) -> Result<T, StorageError>;

/// An operation, owned until it is started.
#[derive(Debug)]
struct Call {
    op: u32,
    mount: String,
    key: String,
    value: Vec<u8>,
    ttl: Option<Duration>,
}

/// One storage operation: a future, or [`Op::wait`] to block on it. Nothing happens until it is
/// first polled (or waited on).
#[must_use = "a storage operation does nothing until it is awaited or waited on"]
pub struct Op<T> {
    call: Call,
    /// Set once started.
    running: Option<HostCall>,
    /// An error found before starting (a value that does not serialise).
    early: Option<StorageError>,
    decode: Decode<T>,
    _answer: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op")
            .field("call", &self.call)
            .field("started", &self.running.is_some())
            .finish()
    }
}

impl Storage {
    /// The mount's name.
    pub fn name(&self) -> &str {
        &self.mount
    }

    fn op<T>(&self, op: u32, key: &str, decode: Decode<T>) -> Op<T> {
        Op {
            call: Call {
                op,
                mount: self.mount.clone(),
                key: key.to_owned(),
                value: Vec::new(),
                ttl: None,
            },
            running: None,
            early: None,
            decode,
            _answer: PhantomData,
        }
    }

    /// The value of `key` read as JSON into `T`; `None` when it is not set (or expired).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Op<Option<T>> {
        self.op(abi::storage::GET, key, |call, items| {
            match items.into_iter().next() {
                None => Ok(None),
                Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    StorageError::new(
                        StorageErrorKind::Json,
                        format!(
                            "the value of `{}` in storage `{}` is not the JSON of a `{}`: {e}",
                            call.key,
                            call.mount,
                            std::any::type_name::<T>()
                        ),
                    )
                }),
            }
        })
    }

    /// The bytes of `key`; `None` when it is not set (or expired).
    pub fn get_raw(&self, key: &str) -> Op<Option<Vec<u8>>> {
        self.op(abi::storage::GET, key, |_, items| {
            Ok(items.into_iter().next())
        })
    }

    /// Sets `key` to `value` as JSON (add [`Set::ttl`] to let it expire).
    pub fn set<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Set {
        let mut op = self.op(abi::storage::SET, key, |_, _| Ok(()));
        match serde_json::to_vec(value) {
            Ok(json) => op.call.value = json,
            Err(e) => {
                op.early = Some(StorageError::new(
                    StorageErrorKind::Json,
                    format!(
                        "the value for `{key}` in storage `{}` cannot be written as JSON: {e}",
                        self.mount
                    ),
                ))
            }
        }
        Set(op)
    }

    /// Sets `key` to these bytes (add [`Set::ttl`] to let it expire).
    pub fn set_raw(&self, key: &str, value: impl Into<Vec<u8>>) -> Set {
        let mut op = self.op(abi::storage::SET, key, |_, _| Ok(()));
        op.call.value = value.into();
        Set(op)
    }

    /// Whether `key` is set (and not expired).
    pub fn has(&self, key: &str) -> Op<bool> {
        self.op(abi::storage::HAS, key, |_, items| Ok(!items.is_empty()))
    }

    /// Removes `key` (nothing happens when it is not set).
    pub fn remove(&self, key: &str) -> Op<()> {
        self.op(abi::storage::REMOVE, key, |_, _| Ok(()))
    }

    /// The keys under `prefix`, by whole segments (`todos` lists `todos:1`, not `todosx`),
    /// sorted; every key when `prefix` is empty.
    pub fn keys(&self, prefix: &str) -> Op<Vec<String>> {
        self.op(abi::storage::KEYS, prefix, |_, items| {
            Ok(items
                .into_iter()
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .collect())
        })
    }

    /// Removes every key under `prefix` (every key of the mount when it is empty).
    pub fn clear(&self, prefix: &str) -> Op<()> {
        self.op(abi::storage::CLEAR, prefix, |_, _| Ok(()))
    }
}

impl<T> Op<T> {
    /// Blocks this thread until the operation is done. For plain `fn` handlers and hooks
    /// (they run on a pool of threads where blocking is fine); in an `async fn`, `.await`.
    pub fn wait(mut self) -> Result<T, StorageError> {
        let thread = Arc::new(Unpark(std::thread::current()));
        let waker = Waker::from(thread);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(result) = self.poll_op(&mut cx) {
                return result;
            }
            std::thread::park();
        }
    }

    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, StorageError>> {
        if let Some(error) = self.early.take() {
            return Poll::Ready(Err(error));
        }
        if self.running.is_none() {
            let ttl_ms = self
                .call
                .ttl
                .map_or(0, |t| (t.as_millis().min(u64::MAX as u128) as u64).max(1));
            let raw = abi::StorageCall {
                op: self.call.op,
                mount: abi::Bytes::new(self.call.mount.as_bytes()),
                key: abi::Bytes::new(self.call.key.as_bytes()),
                value: abi::Bytes::new(&self.call.value),
                ttl_ms,
            };
            match HostCall::storage(&raw) {
                Some(running) => self.running = Some(running),
                None => {
                    return Poll::Ready(Err(StorageError::new(
                        StorageErrorKind::NoServer,
                        format!(
                            "storage `{}` is only there when the route runs in `nitro dev` or `nitro start`",
                            self.call.mount
                        ),
                    )));
                }
            }
        }
        let running = self.running.as_mut().expect("started above");
        let (status, items): HostResult = match running.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(done) => done,
        };
        let kind = match status {
            abi::storage::OK => return Poll::Ready((self.decode)(&self.call, items)),
            abi::storage::NO_MOUNT => StorageErrorKind::NoMount,
            abi::storage::INVALID_KEY => StorageErrorKind::InvalidKey,
            abi::storage::TOO_LARGE => StorageErrorKind::TooLarge,
            _ => StorageErrorKind::Failed,
        };
        let message = items
            .into_iter()
            .next()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .unwrap_or_else(|| "the storage operation failed".to_owned());
        let message = if kind == StorageErrorKind::NoMount {
            format!(
                "{message} (declare it as `[storage.{}]` in `nitro.toml`)",
                self.call.mount
            )
        } else {
            message
        };
        Poll::Ready(Err(StorageError::new(kind, message)))
    }
}

impl<T> Future for Op<T> {
    type Output = Result<T, StorageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Op` is `Unpin`: nothing in it is pinned (the host's task is behind a pointer).
        self.get_mut().poll_op(cx)
    }
}

/// A `set`: an [`Op`] that can be given a time to live first.
#[must_use = "a storage operation does nothing until it is awaited or waited on"]
#[derive(Debug)]
pub struct Set(Op<()>);

impl Set {
    /// The value expires after `ttl` (then it reads as absent, and is dropped).
    pub fn ttl(mut self, ttl: Duration) -> Set {
        self.0.call.ttl = Some(ttl);
        self
    }

    /// Blocks until it is done; see [`Op::wait`].
    pub fn wait(self) -> Result<(), StorageError> {
        self.0.wait()
    }
}

impl Future for Set {
    type Output = Result<(), StorageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_op(cx)
    }
}

/// Wakes a thread blocked in [`Op::wait`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_server_an_operation_says_so() {
        let error = storage("data").get::<String>("k").wait().unwrap_err();
        assert_eq!(error.kind(), StorageErrorKind::NoServer);
        assert!(error.to_string().contains("`data`"), "{error}");
    }

    #[test]
    fn a_value_that_cannot_be_json_fails_before_reaching_the_host() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let error = storage("memory").set("k", &map).wait().unwrap_err();
        assert_eq!(error.kind(), StorageErrorKind::Json);
        assert!(error.to_string().contains("`k`"), "{error}");
    }
}
