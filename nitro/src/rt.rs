//! The route's own tokio runtime, and state built once per generation (feature `tokio`).
//!
//! Each route library statically links its own copy of tokio, and tokio finds "the current
//! runtime" through a thread-local of that copy: on a server thread, a route's tokio sees no
//! runtime even while the server's runtime is running the very same thread. So every route that
//! has an `async fn` hook builds a runtime of its own, on its first call: one worker thread and a
//! small blocking pool, named `nitro-<route>-g<generation>`. The server polls the route's futures
//! on its own workers (the handler's CPU work runs there); every poll and every drop of a route
//! future enters this runtime first (see [`enter`]), so `tokio::time::sleep`, `tokio::spawn`,
//! sockets and the crates built on them (reqwest, redis, sqlx) find a reactor. The runtime's
//! thread only drives timers and I/O, and runs what the route `tokio::spawn`s.
//!
//! A library image is one generation: `nitro dev` loads a new image for each build, whose statics
//! (this runtime among them) start empty. When the server retires a generation it calls the
//! route's `shutdown` entry ([`shutdown`]): per-generation [`state`] is dropped, then the runtime
//! stops, ending its threads, its background tasks and the sockets they own.
//!
//! Without the feature (a route with no `async fn`), none of this is compiled: the route links no
//! tokio, and [`enter`] does nothing.

#[cfg(feature = "tokio")]
pub use imp::state;
pub(crate) use imp::{configure, enter, shutdown};

#[cfg(feature = "tokio")]
mod imp {
    use std::any::{Any, TypeId};
    use std::future::Future;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};
    use std::time::Duration;

    use tokio::runtime::{Builder, EnterGuard, Handle, Runtime};
    use tokio::sync::OnceCell;

    /// Threads of the runtime's blocking pool (`spawn_blocking`, `tokio::fs`).
    const BLOCKING_THREADS: usize = 8;

    /// The thread name, from the route file and the generation (set by `init`).
    static NAME: OnceLock<String> = OnceLock::new();
    /// The runtime, owned here until `shutdown` takes it.
    static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);
    /// A handle to it, entered by every poll.
    static HANDLE: OnceLock<Handle> = OnceLock::new();

    type Slot = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;
    /// The values of [`state`], by type.
    static STATES: Mutex<Vec<(TypeId, Slot)>> = Mutex::new(Vec::new());

    /// Records the route file and generation, which name the runtime's threads.
    pub(crate) fn configure(route_file: &str, generation: u64) {
        let stem = route_file
            .rsplit('/')
            .next()
            .unwrap_or(route_file)
            .trim_end_matches(".rs");
        let _ = NAME.set(format!("nitro-{stem}-g{generation}"));
    }

    fn handle() -> &'static Handle {
        HANDLE.get_or_init(|| {
            let name = NAME
                .get()
                .cloned()
                .unwrap_or_else(|| "nitro-route".to_owned());
            let runtime = Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(BLOCKING_THREADS)
                .thread_name(name)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start the route's tokio runtime: {e}"));
            let handle = runtime.handle().clone();
            *RUNTIME.lock().unwrap_or_else(PoisonError::into_inner) = Some(runtime);
            handle
        })
    }

    /// Makes this route's runtime current on this thread until the guard is dropped, building
    /// it on first use. After [`shutdown`] the runtime stays current but refuses new work (tokio
    /// answers "being shutdown"), which is what a late call into a retired generation gets.
    pub(crate) fn enter() -> Option<EnterGuard<'static>> {
        Some(handle().enter())
    }

    /// Drops the per-generation state, then stops the runtime, waiting at most `timeout` for
    /// its threads. Called once, by the host, when no call of this generation is running.
    pub(crate) fn shutdown(timeout: Duration) {
        let states = std::mem::take(&mut *STATES.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(handle) = HANDLE.get() {
            // State may hold tokio resources (a connection pool), which want their runtime.
            let _entered = handle.enter();
            drop(states);
        }
        let runtime = RUNTIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(timeout);
        }
    }

    /// A value built once per generation of this route and shared by its calls: a database pool,
    /// an HTTP client, a cache.
    ///
    /// The first call runs `init` (concurrent first calls wait for it); later calls return the
    /// same value. There is one value per type `T` in each route file: wrap two values of the
    /// same type in types of their own. The value belongs to the route, not to the server: each
    /// route file that calls `state` builds its own, so keep pool sizes small (30 routes with a
    /// pool of 10 each is 300 connections). When `nitro dev` reloads the route, the new code
    /// builds a new value and the old one is dropped once the old generation's last call ended,
    /// before its runtime stops (so a pool closes its idle connections).
    ///
    /// ```ignore
    /// // routes/users.get.rs
    /// use std::sync::Arc;
    ///
    /// struct Api(reqwest::Client);
    ///
    /// pub async fn handler(_req: nitro::Request) -> nitro::Result<String> {
    ///     let api: Arc<Api> = nitro::state(|| async { Api(reqwest::Client::new()) }).await;
    ///     let text = api.0.get("http://127.0.0.1:9000/users").send().await?.text().await?;
    ///     Ok(text)
    /// }
    /// ```
    pub async fn state<T, F, Fut>(init: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let slot = {
            let mut states = STATES.lock().unwrap_or_else(PoisonError::into_inner);
            let id = TypeId::of::<T>();
            match states.iter().find(|(t, _)| *t == id) {
                Some((_, slot)) => slot.clone(),
                None => {
                    let slot = Slot::default();
                    states.push((id, slot.clone()));
                    slot
                }
            }
        };
        let value = slot
            .get_or_init(|| async { Arc::new(init().await) as Arc<dyn Any + Send + Sync> })
            .await
            .clone();
        match value.downcast::<T>() {
            Ok(value) => value,
            Err(_) => unreachable!("`nitro::state` slots are keyed by the type they hold"),
        }
    }
}

#[cfg(not(feature = "tokio"))]
mod imp {
    use std::time::Duration;

    pub(crate) fn configure(_route_file: &str, _generation: u64) {}

    /// No runtime without the `tokio` feature: nothing to enter.
    pub(crate) fn enter() -> Option<()> {
        None
    }

    pub(crate) fn shutdown(_timeout: Duration) {}
}
