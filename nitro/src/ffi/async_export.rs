//! `async fn` handlers and hooks: the traits their signatures must meet, and the shims that start
//! them as [`abi::Task`]s.
//!
//! An async entry point copies everything it is given (the request, the message; it retains the
//! peer), builds the user's future, and hands the host a task. The answer is written to the
//! responder from inside the task's last poll (the ABI keeps the responder valid until the host
//! drops the task). The futures are owned (`Request`, `Peer`, `Message` by value) and must be
//! `Send`: the host may poll them on any of its workers.
#![allow(unsafe_code)]

use std::future::Future;

use nitro_abi as abi;

use super::answer::write_response;
use super::guard::{guarded, write_upgrade};
use super::host::{RawPeer, copy_request};
use super::stream::with_responder;
use super::task::{self, CallResult};
use crate::ws::{Close, HookOutput, IntoUpgrade, Message, Peer, WsError};
use crate::{IntoResponse, Request};

/// An `async fn handler(req: Request)` (or with no argument).
#[diagnostic::on_unimplemented(
    message = "`handler` in this route file is not a valid `async fn` handler",
    note = "write it as `pub async fn handler(req: nitro::Request) -> impl nitro::IntoResponse` (or with no argument)",
    note = "its future must be `Send`: a `MutexGuard`, `RefCell` borrow or `Rc` must not be held across an `.await` (drop it before, or use `tokio::sync::Mutex`)"
)]
pub trait AsyncHandler<M> {
    type Future: Future<Output = Self::Output> + Send + 'static;
    type Output: IntoResponse;
    fn call(&self, req: Request) -> Self::Future;
}

#[derive(Debug)]
pub struct AsyncWithRequest;
#[derive(Debug)]
pub struct AsyncWithoutRequest;

impl<F, Fut> AsyncHandler<AsyncWithRequest> for F
where
    F: Fn(Request) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, req: Request) -> Fut {
        self(req)
    }
}

impl<F, Fut> AsyncHandler<AsyncWithoutRequest> for F
where
    F: Fn() -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, _req: Request) -> Fut {
        self()
    }
}

/// An `async fn` WebSocket hook taking `Args` by value: `upgrade(Request)`, `open(Peer)`,
/// `message(Peer, Message)`, `close(Peer, Close)`, `error(Peer, WsError)`.
#[diagnostic::on_unimplemented(
    message = "this `async fn` WebSocket hook has the wrong signature",
    note = "the async hooks take their arguments by value: `async fn upgrade(req: Request)`, `async fn open(peer: Peer)`, `async fn message(peer: Peer, message: Message)`, `async fn close(peer: Peer, close: Close)`, `async fn error(peer: Peer, error: WsError)`",
    note = "their futures must be `Send`: a `MutexGuard`, `RefCell` borrow or `Rc` must not be held across an `.await` (drop it before, or use `tokio::sync::Mutex`)"
)]
pub trait AsyncHook<Args> {
    type Future: Future<Output = Self::Output> + Send + 'static;
    type Output;
    fn call(&self, args: Args) -> Self::Future;
}

impl<F, Fut, A> AsyncHook<(A,)> for F
where
    F: Fn(A) -> Fut,
    Fut: Future + Send + 'static,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, (a,): (A,)) -> Fut {
        self(a)
    }
}

impl<F, Fut, A, B> AsyncHook<(A, B)> for F
where
    F: Fn(A, B) -> Fut,
    Fut: Future + Send + 'static,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, (a, b): (A, B)) -> Fut {
        self(a, b)
    }
}

/// A responder pointer the task may carry to whichever worker polls it.
pub(super) struct Responder<T>(pub(super) *const T);

// SAFETY: the host's responders may be called from any thread, one call at a time, and the
// pointer stays valid until the host drops the task (ABI rule for async calls).
unsafe impl<T> Send for Responder<T> {}

impl<T> Responder<T> {
    /// # Safety
    /// Only while the task is alive (inside its polls).
    pub(super) unsafe fn get(&self) -> &T {
        // SAFETY: caller contract.
        unsafe { &*self.0 }
    }
}

/// The handler's future, polled with its call's responder current (what `nitro::sse` opens
/// its peer through).
struct WithResponder<F> {
    res: Responder<abi::HttpResponder>,
    future: F,
}

impl<F: Future> Future for WithResponder<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let res = self.res.0;
        // SAFETY: structural pinning of `future`: it is never moved out of the pinned
        // `WithResponder`, which has no `Drop` and is `Unpin` only when `F` is.
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.future) };
        with_responder(res, || future.poll(cx))
    }
}

/// Starts `future` as the task of an async call, under the shim's panic guard.
///
/// # Safety
/// ABI contract of the async entry points.
pub(super) unsafe fn start_guarded<F>(
    out: *const abi::Outcome,
    task: *mut abi::Task,
    make: impl FnOnce() -> F,
) -> abi::Status
where
    F: Future<Output = CallResult> + Send + 'static,
{
    // SAFETY: forwarded caller contract: `task` is valid for a write and `out` until the task
    // is dropped.
    unsafe {
        guarded(out, || {
            task::start(out, task, make());
            Ok(())
        })
    }
}

/// A borrowed peer handle turned into an owned `Peer` the future can keep.
fn owned_peer(peer: abi::Peer) -> Peer {
    Peer::from_raw(RawPeer::borrowed(peer).retain())
}

/// # Safety
/// ABI contract: `req` valid for the call; `out` and `res` until the task is dropped.
pub unsafe fn http_async<M, H: AsyncHandler<M>>(
    out: *const abi::Outcome,
    req: *const abi::HttpRequest,
    res: *const abi::HttpResponder,
    task: *mut abi::Task,
    handler: H,
) -> abi::Status {
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let request = unsafe { copy_request(&*req) };
        let future = with_responder(res, || handler.call(request));
        let future = WithResponder {
            res: Responder(res),
            future,
        };
        let res = Responder(res);
        async move {
            let response = future.await.into_response();
            // SAFETY: inside the task's poll, so the responder is valid.
            unsafe { write_response(res.get(), &response) }
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// # Safety
/// ABI contract: `req` valid for the call; `out` and `res` until the task is dropped.
pub unsafe fn ws_upgrade_async<H>(
    out: *const abi::Outcome,
    req: *const abi::HttpRequest,
    res: *const abi::UpgradeResponder,
    task: *mut abi::Task,
    hook: H,
) -> abi::Status
where
    H: AsyncHook<(Request,)>,
    H::Output: IntoUpgrade,
{
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let future = hook.call((unsafe { copy_request(&*req) },));
        let res = Responder(res);
        async move {
            let upgrade = future.await.into_upgrade();
            // SAFETY: inside the task's poll, so the responder is valid.
            unsafe { write_upgrade(res.get(), &upgrade) }
        }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// # Safety
/// ABI contract: `peer` borrowed for the call; `out` valid until the task is dropped.
pub unsafe fn ws_open_async<H>(
    out: *const abi::Outcome,
    peer: abi::Peer,
    task: *mut abi::Task,
    hook: H,
) -> abi::Status
where
    H: AsyncHook<(Peer,)>,
    H::Output: HookOutput,
{
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let future = hook.call((owned_peer(peer),));
        async move { future.await.into_outcome() }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// # Safety
/// ABI contract: `peer` and `data` borrowed for the call; `out` valid until the task is dropped.
pub unsafe fn ws_message_async<H>(
    out: *const abi::Outcome,
    peer: abi::Peer,
    data: abi::Bytes,
    binary: bool,
    task: *mut abi::Task,
    hook: H,
) -> abi::Status
where
    H: AsyncHook<(Peer, Message)>,
    H::Output: HookOutput,
{
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let message = Message {
            data: unsafe { data.as_slice() }.to_vec(),
            binary,
        };
        let future = hook.call((owned_peer(peer), message));
        async move { future.await.into_outcome() }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// # Safety
/// ABI contract: `peer` and `reason` borrowed for the call; `out` valid until the task is
/// dropped.
pub unsafe fn ws_close_async<H>(
    out: *const abi::Outcome,
    peer: abi::Peer,
    code: u16,
    reason: abi::Bytes,
    task: *mut abi::Task,
    hook: H,
) -> abi::Status
where
    H: AsyncHook<(Peer, Close)>,
    H::Output: HookOutput,
{
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let details = Close {
            code,
            reason: String::from_utf8_lossy(unsafe { reason.as_slice() }).into_owned(),
        };
        let future = hook.call((owned_peer(peer), details));
        async move { future.await.into_outcome() }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}

/// # Safety
/// ABI contract: `peer` and `error` borrowed for the call; `out` valid until the task is
/// dropped.
pub unsafe fn ws_error_async<H>(
    out: *const abi::Outcome,
    peer: abi::Peer,
    error: abi::Bytes,
    task: *mut abi::Task,
    hook: H,
) -> abi::Status
where
    H: AsyncHook<(Peer, WsError)>,
    H::Output: HookOutput,
{
    // SAFETY (the `unsafe` blocks in `make`): the borrowed inputs are valid for this start
    // call, where `make` runs; the responder inside the task's polls.
    let make = || {
        let error = WsError {
            message: String::from_utf8_lossy(unsafe { error.as_slice() }).into_owned(),
        };
        let future = hook.call((owned_peer(peer), error));
        async move { future.await.into_outcome() }
    };
    // SAFETY: forwarded caller contract.
    unsafe { start_guarded(out, task, make) }
}
