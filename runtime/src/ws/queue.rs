//! An unbounded async queue with one receiver that holds no memory while it is empty: a peer's
//! frames to write.
//!
//! tokio's `mpsc` allocates a block of 32 slots per channel up front (about 1.5 KiB per peer);
//! this queue allocates on the first item and frees its buffer whenever it is drained, so
//! 10 000 idle peers hold nothing here.
//!
//! One task waits at most (`recv` takes `&mut self`), so its wake-up is an [`AtomicWaker`]: no
//! lock and no waiter list per item, as `Notify` would have. A receiver that stops waiting
//! drops its waker, so a busy task is not woken for nothing. [`Sender::send_now`] takes `&self`
//! and never waits, so it may be called from any thread.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
}

#[derive(Debug)]
struct Inner<T> {
    state: Mutex<State<T>>,
    /// The receiver, waiting for an item or the end.
    item_ready: AtomicWaker,
}

impl<T> Inner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Nothing can panic while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half.
#[derive(Debug)]
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
}

/// The receiving half.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// An empty queue.
pub(crate) fn queue<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        item_ready: AtomicWaker::new(),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Queues `item`. `Err` gives it back when the receiver is gone.
    pub(crate) fn send_now(&self, item: T) -> Result<(), T> {
        let mut state = self.inner.lock();
        if state.receiver_gone {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        self.inner.item_ready.wake();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.inner.lock().sender_gone = true;
        self.inner.item_ready.wake();
    }
}

impl<T> Receiver<T> {
    /// The next item, or `None` once the sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll (for a response body that drains a peer's queue).
    pub(crate) fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<T>> {
        // Registered before the check, so an item queued after it wakes this task.
        self.inner.item_ready.register(cx.waker());
        let mut state = self.inner.lock();
        if let Some(item) = pop(&mut state) {
            drop(state);
            // Not waiting any more: an item queued while this task runs (say, while it
            // runs a hook) must not poll it for nothing.
            self.inner.item_ready.take();
            return Poll::Ready(Some(item));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// The next item if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        pop(&mut self.inner.lock())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.receiver_gone = true;
        // What is still queued is never read: free it now.
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
    }
}

/// Pops the front item; a drained queue gives its buffer back.
fn pop<T>(state: &mut State<T>) -> Option<T> {
    let item = state.items.pop_front();
    if state.items.is_empty() && state.items.capacity() > 0 {
        state.items = VecDeque::new();
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_and_ends() {
        let (tx, mut rx) = queue();
        tx.send_now(1).unwrap();
        tx.send_now(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(rx.inner.lock().items.capacity(), 0, "drained: no buffer");
        drop(tx);
        assert_eq!(rx.recv().await, None);

        let (tx, rx) = queue::<u8>();
        drop(rx);
        assert_eq!(tx.send_now(1), Err(1));
    }

    /// Producers on other threads, one consumer: every item arrives, in order per producer,
    /// and the consumer misses no wake-up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_lost_wake_ups_across_threads() {
        let (tx, mut rx) = queue();
        let tx = Arc::new(tx);
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        tx.send_now((t, i)).unwrap();
                    }
                })
            })
            .collect();
        let mut last = [None::<u32>; 4];
        for _ in 0..40_000 {
            let (t, i) = rx.recv().await.unwrap();
            assert!(
                last[t as usize].is_none_or(|l| l + 1 == i),
                "per-thread order"
            );
            last[t as usize] = Some(i);
        }
        for thread in threads {
            thread.join().unwrap();
        }
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }
}
