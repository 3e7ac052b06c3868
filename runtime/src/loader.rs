//! Loading compiled route libraries: the host side of the ABI.
//!
//! This is the one module of the runtime with `unsafe` code. A route library is loaded once per
//! build ("generation") and never unloaded:
//!
//! 1. The artifact is hard-linked (or copied, across file systems) to a unique file name,
//!    because `dlopen` returns the already-loaded image for a path or inode it has seen, which
//!    would serve stale code after a rebuild.
//! 2. It is opened with `RTLD_NOW | RTLD_LOCAL`: unresolved symbols fail here, where we can
//!    report them, and the generations' identical exports never clash.
//! 3. `NITRO_ROUTE_ABI` is read and compared with [`nitro_abi::NITRO_ABI_VERSION`] before
//!    anything else is called; a mismatch is refused with an error, never undefined behaviour.
//! 4. The route table is checked (`abi_version`, `struct_size`) and `init` hands the route its
//!    [`nitro_abi::HostApi`].
//! 5. The library handle is leaked. Unloading is unsound while anything from the image may
//!    still run or be referenced (in-flight calls, thread-local destructors), and glibc silently
//!    keeps such images mapped anyway; a generation costs about 0.6 MB.
//!
//! Calls go through [`LoadedRoute`]'s [`RouteModule`] impl. Everything handed to the route is
//! borrowed for the call; the route answers through callbacks that copy into host memory, so
//! neither side frees the other's allocations. The callbacks never unwind into the route: each
//! body runs under `catch_unwind` (a host panic crossing an `extern "C"` frame would abort).
#![allow(unsafe_code)]

use crate::Hub;
use crate::module::{
    CallError, HttpOutcome, MiddlewareOutcome, RequestInfo, RouteFuture, RouteModule,
    RouteResponse, StreamResponse, UpgradeDecision,
};
use crate::request_info::AbiRequest;
use crate::sse::EventPeer;
use crate::stream::StreamBody;
use crate::task::{Generation, RouteStream, RouteTask};
use crate::ws::peer::Outbound;
use crate::ws::queue::Receiver;
use crate::ws::{Peer, PeerRef, SendLimit};
use nitro_abi as abi;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a route library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot prepare `{}` for loading: {source}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load route library `{}` for `{file}`: {message}", path.display())]
    Open {
        path: PathBuf,
        file: String,
        message: String,
    },
    #[error(
        "`{}` (for `{file}`) is not a nitro route library: it does not export `{symbol}`",
        path.display()
    )]
    MissingSymbol {
        path: PathBuf,
        file: String,
        symbol: &'static str,
    },
    #[error(
        "route `{file}` was built for nitro ABI {found}, but this nitro speaks ABI {expected}: \
         delete the `.nitro/target` folder of the project and run again"
    )]
    AbiMismatch {
        file: String,
        found: u32,
        expected: u32,
    },
    #[error("route `{file}` exports a malformed route table: {problem}")]
    BadTable { file: String, problem: String },
    #[error("route `{file}` failed to initialise: {message}")]
    Init { file: String, message: String },
}

/// A loaded generation of one route's code.
///
/// Dropping the last reference retires the generation: once its in-flight async calls are gone
/// too (each holds the [`Generation`]), the route's `shutdown` entry stops its runtime.
#[derive(Debug)]
pub struct LoadedRoute {
    file: String,
    table: &'static abi::RouteV2,
    nitro_version: String,
    generation: u64,
    image: Arc<Generation>,
    /// The host services of this generation (leaked: they live as long as the image).
    host: &'static HostCtx,
}

/// Distinguishes loads within this process; combined with the pid for unique file names.
static LOAD_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Counts the generations (route libraries initialised) of this process.
static GENERATION: AtomicU64 = AtomicU64::new(0);

impl LoadedRoute {
    /// Loads `artifact` (a route `cdylib`) as the code of `route_file`.
    ///
    /// `cache_dir` receives the short-lived unique link the library is opened from. `hub` is the
    /// server's pub/sub hub, which the route's server-wide `publish` reaches. `assets_dir` is the
    /// folder `nitro::assets` reads from (it need not exist).
    pub fn load(
        artifact: &Path,
        route_file: &str,
        hub: &Arc<Hub>,
        assets_dir: &Path,
        cache_dir: &Path,
    ) -> Result<Arc<LoadedRoute>, LoadError> {
        let unique = unique_copy(artifact, cache_dir)?;
        let result = Self::open(&unique, route_file, hub, assets_dir);
        // The mapping keeps the inode alive; the name is no longer needed.
        let _ = std::fs::remove_file(&unique);
        result
    }

    fn open(
        path: &Path,
        route_file: &str,
        hub: &Arc<Hub>,
        assets_dir: &Path,
    ) -> Result<Arc<LoadedRoute>, LoadError> {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

        let file = route_file.to_string();
        // SAFETY: loading runs the library's initialisers. Route libraries are generated by
        // nitro from the user's own route files and contain no custom initialisers beyond
        // what Rust's std sets up; this is the trust boundary of `nitro dev` by design.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            LoadError::Open {
                path: path.to_path_buf(),
                file: file.clone(),
                message: e.to_string(),
            }
        })?;

        // SAFETY: `NITRO_ROUTE_ABI` is exported by every route as a `u32` static; we only read
        // it. A library that exports it with another type is not a nitro route library, which
        // the version check below rejects unless the bytes happen to match.
        let abi_version = unsafe {
            let sym = lib.get::<*const u32>(abi::ROUTE_ABI_SYMBOL).map_err(|_| {
                LoadError::MissingSymbol {
                    path: path.to_path_buf(),
                    file: file.clone(),
                    symbol: "NITRO_ROUTE_ABI",
                }
            })?;
            let ptr: *const u32 = *sym;
            ptr.read()
        };
        if abi_version != abi::NITRO_ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                file,
                found: abi_version,
                expected: abi::NITRO_ABI_VERSION,
            });
        }

        // SAFETY: with the ABI version checked, `nitro_route_v2` has the declared signature.
        let table_ptr = unsafe {
            let entry = lib
                .get::<unsafe extern "C" fn() -> *const abi::RouteV2>(abi::ROUTE_ENTRY_SYMBOL)
                .map_err(|_| LoadError::MissingSymbol {
                    path: path.to_path_buf(),
                    file: file.clone(),
                    symbol: "nitro_route_v2",
                })?;
            entry()
        };
        // The library is never unloaded (see the module docs), so its statics are 'static.
        std::mem::forget(lib);

        // SAFETY: the pointer comes from a route of our ABI version, pointing at a static in an
        // image that stays mapped for the rest of the process.
        let table: &'static abi::RouteV2 = match unsafe { table_ptr.as_ref() } {
            Some(t) => t,
            None => {
                return Err(LoadError::BadTable {
                    file,
                    problem: "`nitro_route_v2` returned null".into(),
                });
            }
        };
        if table.abi_version != abi::NITRO_ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                file,
                found: table.abi_version,
                expected: abi::NITRO_ABI_VERSION,
            });
        }
        if (table.struct_size as usize) < std::mem::size_of::<abi::RouteV2>() {
            return Err(LoadError::BadTable {
                file,
                problem: format!(
                    "table is {} bytes, expected at least {}",
                    table.struct_size,
                    std::mem::size_of::<abi::RouteV2>()
                ),
            });
        }
        // SAFETY: borrowed for as long as the image is mapped (forever).
        let nitro_version =
            String::from_utf8_lossy(unsafe { table.nitro_version.as_slice() }).into_owned();

        // Counted from 1 in this process; names the route's runtime threads.
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
        // Host services for this generation, valid until the process exits (leaked).
        let host_ctx: &'static HostCtx = Box::leak(Box::new(HostCtx {
            hub: hub.clone(),
            file: file.clone(),
            assets_dir: assets_dir.to_string_lossy().into_owned(),
        }));
        let host: &'static abi::HostApi = Box::leak(Box::new(abi::HostApi {
            abi_version: abi::NITRO_ABI_VERSION,
            struct_size: std::mem::size_of::<abi::HostApi>() as u32,
            generation,
            ctx: host_ctx as *const HostCtx as *const c_void,
            log: host_log,
            publish: host_publish,
            peers: host_peers,
            assets_dir: abi::Bytes::new(host_ctx.assets_dir.as_bytes()),
            runtime_config: host_runtime_config,
            storage: host_storage,
            http_responder_size: std::mem::size_of::<abi::HttpResponder>() as u32,
            max_level: crate::telemetry::bridge::max_level(),
            event: host_event,
            traceparent: host_traceparent,
            tracestate: host_tracestate,
        }));
        let image = Arc::new(Generation {
            file: file.clone(),
            shutdown: table.shutdown,
        });
        let route = LoadedRoute {
            file,
            table,
            nitro_version,
            generation,
            image,
            host: host_ctx,
        };
        // SAFETY: `init` has the declared signature; `host` lives forever; the outcome
        // lives for the call.
        route
            .call(|out| unsafe { (table.init)(host, out) })
            .map_err(|e| LoadError::Init {
                file: route.file.clone(),
                message: e.to_string(),
            })?;
        tracing::debug!(target: "nitro::loader", file = %route.file, nitro = %route.nitro_version, "route loaded");
        Ok(Arc::new(route))
    }

    /// The version of the `nitro` crate the route was built with.
    pub fn nitro_version(&self) -> &str {
        &self.nitro_version
    }

    /// Which load of a route library this is in the process (from 1); the route's runtime
    /// threads are named `nitro-<route>-g<generation>`.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Runs one call into the route with a fresh [`abi::Outcome`], mapping its status.
    fn call(&self, f: impl FnOnce(*const abi::Outcome) -> abi::Status) -> Result<(), CallError> {
        let mut failure: Option<String> = None;
        let out = abi::Outcome {
            ctx: &mut failure as *mut Option<String> as *mut c_void,
            fail: outcome_fail,
        };
        let status = f(&out);
        status_result(status, failure, &self.file)
    }
}

/// Waits at most `timeout` for the routes retired so far (dropped with the `App` that held them,
/// once their last call ended) to finish their `shutdown`: their `nitro::state` values dropped,
/// their runtimes stopped. For a process about to exit, after the server drained: without it,
/// the exit would cut a database pool off instead of closing it. Returns how many are still
/// shutting down.
pub fn wait_retired(timeout: std::time::Duration) -> usize {
    crate::task::wait_retired(timeout)
}

/// Maps a call's final status (and what it reported through its outcome) to a result.
fn status_result(
    status: abi::Status,
    failure: Option<String>,
    file: &str,
) -> Result<(), CallError> {
    match status {
        abi::Status::OK => Ok(()),
        abi::Status::MISSING => Err(CallError::Missing),
        abi::Status::FAILED => Err(CallError::Failed(
            failure.unwrap_or_else(|| "the hook returned an error".into()),
        )),
        abi::Status::PANICKED => Err(CallError::Panicked(
            failure.unwrap_or_else(|| format!("route `{file}` panicked")),
        )),
        abi::Status(other) => Err(CallError::Panicked(format!(
            "route `{file}` returned an unknown status {other}"
        ))),
    }
}

/// Hard-links `artifact` to a fresh name in `cache_dir`, or copies it across file systems.
fn unique_copy(artifact: &Path, cache_dir: &Path) -> Result<PathBuf, LoadError> {
    let link_err = |source| LoadError::Link {
        path: artifact.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(cache_dir).map_err(link_err)?;
    let stem = artifact
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("route");
    let n = LOAD_COUNTER.fetch_add(1, Ordering::Relaxed);
    let unique = cache_dir.join(format!("{stem}-{}-{n}.so", std::process::id()));
    let _ = std::fs::remove_file(&unique);
    if std::fs::hard_link(artifact, &unique).is_err() {
        std::fs::copy(artifact, &unique).map_err(link_err)?;
    }
    Ok(unique)
}

unsafe extern "C" fn outcome_fail(ctx: *mut c_void, message: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: `ctx` is the `Option<String>` of `LoadedRoute::call`, alive for the call;
        // `message` is borrowed for this callback.
        unsafe {
            let slot = &mut *(ctx as *mut Option<String>);
            *slot = Some(String::from_utf8_lossy(message.as_slice()).into_owned());
        }
    })
}

/// Runs a host callback body without letting a panic unwind into the route (which would
/// abort the process); a panic yields `default` and is logged.
fn no_unwind<R>(default: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(target: "nitro::loader", "a host callback panicked; the call was ignored");
            default
        }
    }
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Host services (`HostApi`)

#[derive(Debug)]
struct HostCtx {
    hub: Arc<Hub>,
    file: String,
    /// Borrowed by the route through `HostApi::assets_dir`, as long as the process lives.
    assets_dir: String,
}

unsafe extern "C" fn host_log(ctx: *const c_void, level: u8, message: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: `ctx` is the leaked `HostCtx` of this generation; `message` is borrowed.
        let (ctx, message) = unsafe { (&*(ctx as *const HostCtx), utf8(message.as_slice())) };
        let file = ctx.file.as_str();
        match level {
            abi::level::ERROR => tracing::error!(target: "nitro::route", route = file, "{message}"),
            abi::level::WARN => tracing::warn!(target: "nitro::route", route = file, "{message}"),
            abi::level::INFO => tracing::info!(target: "nitro::route", route = file, "{message}"),
            abi::level::DEBUG => tracing::debug!(target: "nitro::route", route = file, "{message}"),
            _ => tracing::trace!(target: "nitro::route", route = file, "{message}"),
        }
    })
}

unsafe extern "C" fn host_peers(
    ctx: *const c_void,
    namespace: abi::Bytes,
    sink: *const abi::PeerSink,
) {
    no_unwind((), || {
        // SAFETY: `ctx` is the leaked `HostCtx`; `namespace` is borrowed for the call; `sink`
        // is valid for the call. Each listed peer stays alive during its callback because
        // `peers` holds the `Arc`s; the route retains what it keeps.
        unsafe {
            let ctx = &*(ctx as *const HostCtx);
            let namespace = utf8(namespace.as_slice());
            let peers = ctx
                .hub
                .peers((!namespace.is_empty()).then_some(namespace.as_str()));
            for p in &peers {
                ((*sink).item)((*sink).ctx, peer_handle(p));
            }
        }
    })
}

unsafe extern "C" fn host_publish(
    ctx: *const c_void,
    namespace: abi::Bytes,
    topic: abi::Bytes,
    data: abi::Bytes,
    binary: bool,
) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: `ctx` is the leaked `HostCtx`; the byte slices are borrowed for the call.
        let (ctx, namespace, topic, data) = unsafe {
            (
                &*(ctx as *const HostCtx),
                utf8(namespace.as_slice()),
                utf8(topic.as_slice()),
                bytes::Bytes::copy_from_slice(data.as_slice()),
            )
        };
        let ns = (!namespace.is_empty()).then_some(namespace.as_str());
        ctx.hub.publish(ns, &topic, data, binary);
        abi::PEER_OK
    })
}

unsafe extern "C" fn host_event(ctx: *const c_void, event: *const abi::LogEvent) {
    no_unwind((), || {
        // SAFETY: `ctx` is the leaked `HostCtx` of this generation; `event`, its target and
        // fields are borrowed for the call.
        let (ctx, event) = unsafe { (&*(ctx as *const HostCtx), &*event) };
        // SAFETY: as above.
        let (target, raw) = unsafe { (event.target.as_slice(), event.fields()) };
        let text = |b: abi::Bytes| {
            // SAFETY: each field's bytes are borrowed for the call, as the event.
            let bytes = unsafe { b.as_slice() };
            String::from_utf8_lossy(bytes)
        };
        let owned: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>, u8)> = raw
            .iter()
            .map(|f| (text(f.name), text(f.value), f.kind))
            .collect();
        let fields: Vec<crate::telemetry::bridge::RouteField<'_>> = owned
            .iter()
            .map(|(name, value, kind)| crate::telemetry::bridge::RouteField {
                name,
                value,
                kind: *kind,
            })
            .collect();
        let target = String::from_utf8_lossy(target);
        crate::telemetry::bridge::route_event(&ctx.file, event.level, &target, &fields);
    })
}

unsafe extern "C" fn host_traceparent(_ctx: *const c_void, sink: *const abi::BytesSink) {
    no_unwind((), || {
        if let Some(value) = crate::telemetry::otel::current_traceparent() {
            // SAFETY: `sink` is the route's, valid for the call; the bytes are borrowed for it.
            unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(value.as_bytes())) };
        }
    })
}

unsafe extern "C" fn host_tracestate(_ctx: *const c_void, sink: *const abi::BytesSink) {
    no_unwind((), || {
        if let Some(value) = crate::telemetry::otel::current_tracestate() {
            // SAFETY: `sink` is the route's, valid for the call; the bytes are borrowed for it.
            unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(value.as_bytes())) };
        }
    })
}

unsafe extern "C" fn host_runtime_config(
    ctx: *const c_void,
    known: u64,
    sink: *const abi::BytesSink,
) -> u64 {
    no_unwind(0, || {
        // SAFETY: `ctx` is the leaked `HostCtx` of this generation.
        let ctx = unsafe { &*(ctx as *const HostCtx) };
        let (version, json) = ctx.hub.runtime_config().get();
        if version != known {
            // SAFETY: `sink` is the route's, valid for the call; the bytes are borrowed for it.
            unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(&json)) };
        }
        version
    })
}

unsafe extern "C" fn host_storage(
    ctx: *const c_void,
    call: *const abi::StorageCall,
    result: *const abi::BytesSink,
    task: *mut abi::Task,
) {
    // SAFETY: `ctx` is the leaked `HostCtx` of this generation; the route keeps `call`, `result`
    // and `task` valid as `HostApi::storage` requires, which is what `start` asks. `start`
    // catches panics itself and always writes the task.
    unsafe {
        let ctx = &*(ctx as *const HostCtx);
        crate::storage::task::start(ctx.hub.storage(), call, result, task)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

// ---------------------------------------------------------------------------------------------
// HTTP responder

struct ResponseSlot {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    error: Option<(u16, String, Option<String>)>,
    /// Whether any of `status`, `header`, `body`, `error` was called: a middleware answered.
    answered: bool,
    /// What a middleware's `context` calls set.
    context: Vec<(String, String)>,
    /// The route that answers: its hub (for an event stream's peer) and its image (which a
    /// body stream holds, as a task does).
    host: &'static HostCtx,
    image: Arc<Generation>,
    /// A body stream handed over by `stream`, with its keep-alive interval in ms.
    stream: Option<(RouteStream, u64)>,
    /// The peer made by `event_stream`, with its queue.
    event: Option<(PeerRef, Receiver<Outbound>)>,
}

impl ResponseSlot {
    fn new(host: &'static HostCtx, image: &Arc<Generation>) -> ResponseSlot {
        ResponseSlot {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            error: None,
            answered: false,
            context: Vec::new(),
            host,
            image: image.clone(),
            stream: None,
            event: None,
        }
    }

    /// The host's responder writing into the slot at `ctx`.
    fn responder(ctx: *mut ResponseSlot) -> abi::HttpResponder {
        abi::HttpResponder {
            ctx: ctx as *mut c_void,
            status: res_status,
            header: res_header,
            body: res_body,
            error: res_error,
            context: res_context,
            stream: res_stream,
            event_stream: res_event_stream,
        }
    }

    fn into_middleware_outcome(self) -> MiddlewareOutcome {
        if self.answered {
            MiddlewareOutcome::Answer(self.into_outcome())
        } else {
            MiddlewareOutcome::Continue {
                context: self.context,
            }
        }
    }

    /// The answer. An event stream's peer that did not end up in a streamed answer leaves the
    /// hub here (dropped with its `EventPeer`).
    fn into_outcome(self) -> HttpOutcome {
        let event = self.event.map(|(peer, outbound)| EventPeer {
            peer,
            outbound,
            hub: self.host.hub.clone(),
            keep_alive: None,
        });
        match (self.error, self.stream) {
            (Some((status, message, data)), _) => HttpOutcome::Error {
                status,
                message,
                data,
            },
            (None, Some((stream, keep_alive_ms))) => {
                let event = event.map(|mut event| {
                    event.keep_alive = (keep_alive_ms > 0)
                        .then(|| std::time::Duration::from_millis(keep_alive_ms));
                    event
                });
                HttpOutcome::Stream(StreamResponse {
                    status: self.status,
                    headers: self.headers,
                    body: StreamBody::from_parts(Box::pin(stream), event),
                })
            }
            (None, None) => HttpOutcome::Response(RouteResponse {
                status: self.status,
                headers: self.headers,
                body: self.body,
            }),
        }
    }
}

/// # Safety (shared by the responder callbacks)
/// `ctx` is the `ResponseSlot` of the running `http` call; byte arguments are borrowed.
unsafe fn slot<'a>(ctx: *mut c_void) -> &'a mut ResponseSlot {
    // SAFETY: see above.
    unsafe { &mut *(ctx as *mut ResponseSlot) }
}

unsafe extern "C" fn res_status(ctx: *mut c_void, code: u16) {
    // SAFETY: responder contract.
    no_unwind((), || unsafe {
        let slot = slot(ctx);
        slot.status = code;
        slot.answered = true;
    })
}

unsafe extern "C" fn res_header(ctx: *mut c_void, name: abi::Bytes, value: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: responder contract.
        unsafe {
            let slot = slot(ctx);
            slot.answered = true;
            slot.headers
                .push((utf8(name.as_slice()), value.as_slice().to_vec()))
        }
    })
}

unsafe extern "C" fn res_body(ctx: *mut c_void, chunk: abi::Bytes) {
    // SAFETY: responder contract.
    no_unwind((), || unsafe {
        let slot = slot(ctx);
        slot.answered = true;
        slot.body.extend_from_slice(chunk.as_slice())
    })
}

unsafe extern "C" fn res_stream(ctx: *mut c_void, body: abi::BodyStream, keep_alive_ms: u64) {
    // Owned from here: wrapped at once, so that it is dropped exactly once whatever happens.
    // SAFETY: responder contract.
    let slot = unsafe { slot(ctx) };
    let stream = RouteStream::new(body, &slot.image);
    no_unwind((), move || {
        slot.stream = Some((stream, keep_alive_ms));
        // A middleware that answers with a stream answered.
        slot.answered = true;
    })
}

unsafe extern "C" fn res_event_stream(
    ctx: *mut c_void,
    req: *const abi::HttpRequest,
    namespace: abi::Bytes,
    out: *mut abi::Peer,
) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: responder contract; `req` and `namespace` are borrowed for the call.
        let (slot, info, namespace) =
            unsafe { (slot(ctx), copy_request(&*req), utf8(namespace.as_slice())) };
        if slot.event.is_some() {
            return abi::PEER_INVALID;
        }
        let namespace = if namespace.is_empty() {
            info.path.clone()
        } else {
            namespace
        };
        let hub = &slot.host.hub;
        let limits = crate::Limits::default();
        let (peer, outbound) = Peer::new(
            hub,
            info.remote_addr.clone(),
            namespace,
            info,
            Vec::new(),
            SendLimit {
                bytes: limits.ws_send_queue,
                timeout: limits.ws_send_timeout,
            },
        );
        hub.register(&peer);
        // The route's handle: one strong reference, released through the vtable.
        let handle = peer_handle(&peer);
        // SAFETY: `handle` points at the live `peer`; `out` is valid for a write.
        unsafe {
            Arc::increment_strong_count(Arc::as_ptr(&peer));
            out.write(handle);
        }
        tracing::debug!(target: "nitro::sse", peer = %peer.id(), "an event stream opened");
        slot.event = Some((peer, outbound));
        abi::PEER_OK
    })
}

/// Copies a borrowed request.
///
/// # Safety
/// `req` and what it points to are valid for the call.
unsafe fn copy_request(req: &abi::HttpRequest) -> RequestInfo {
    // SAFETY (the blocks below): caller contract.
    let text = |b: abi::Bytes| utf8(unsafe { b.as_slice() });
    let pairs = |p: abi::Pairs| {
        unsafe { p.as_slice() }
            .iter()
            .map(|pair| (text(pair.name), text(pair.value)))
            .collect()
    };
    RequestInfo {
        method: text(req.method),
        path: text(req.path),
        query: text(req.query),
        headers: pairs(req.headers),
        params: pairs(req.params),
        body: bytes::Bytes::copy_from_slice(unsafe { req.body.as_slice() }),
        remote_addr: text(req.remote_addr),
        // Only the route's own view of the request reaches here (an event stream's): built
        // by the same `nitro`, so it has the field.
        context: pairs(req.context),
    }
}

unsafe extern "C" fn res_error(
    ctx: *mut c_void,
    status: u16,
    message: abi::Bytes,
    data: abi::Bytes,
) {
    no_unwind((), || {
        // SAFETY: responder contract.
        unsafe {
            let data = data.as_slice();
            slot(ctx).answered = true;
            slot(ctx).error = Some((
                status,
                utf8(message.as_slice()),
                (!data.is_empty()).then(|| utf8(data)),
            ));
        }
    })
}

unsafe extern "C" fn res_context(ctx: *mut c_void, key: abi::Bytes, value: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: responder contract.
        unsafe {
            slot(ctx)
                .context
                .push((utf8(key.as_slice()), utf8(value.as_slice())))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Upgrade responder

#[derive(Default)]
struct UpgradeSlot {
    reject: Option<u16>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    protocol: Option<String>,
    namespace: Option<String>,
    context: Vec<(String, String)>,
}

impl UpgradeSlot {
    /// The host's upgrade responder writing into the slot at `ctx`.
    fn responder(ctx: *mut UpgradeSlot) -> abi::UpgradeResponder {
        abi::UpgradeResponder {
            ctx: ctx as *mut c_void,
            reject: up_reject,
            header: up_header,
            body: up_body,
            protocol: up_protocol,
            namespace: up_namespace,
            context: up_context,
        }
    }

    fn into_decision(self) -> UpgradeDecision {
        match self.reject {
            Some(status) => UpgradeDecision::Reject {
                status,
                headers: self.headers,
                body: self.body,
            },
            None => UpgradeDecision::Accept {
                headers: self.headers,
                protocol: self.protocol,
                namespace: self.namespace,
                context: self.context,
            },
        }
    }
}

/// # Safety (shared by the upgrade callbacks)
/// `ctx` is the `UpgradeSlot` of the running `ws_upgrade` call; byte arguments are borrowed.
unsafe fn upgrade_slot<'a>(ctx: *mut c_void) -> &'a mut UpgradeSlot {
    // SAFETY: see above.
    unsafe { &mut *(ctx as *mut UpgradeSlot) }
}

unsafe extern "C" fn up_reject(ctx: *mut c_void, status: u16) {
    // SAFETY: upgrade responder contract.
    no_unwind((), || unsafe { upgrade_slot(ctx).reject = Some(status) })
}

unsafe extern "C" fn up_header(ctx: *mut c_void, name: abi::Bytes, value: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: upgrade responder contract.
        unsafe {
            upgrade_slot(ctx)
                .headers
                .push((utf8(name.as_slice()), value.as_slice().to_vec()))
        }
    })
}

unsafe extern "C" fn up_body(ctx: *mut c_void, chunk: abi::Bytes) {
    // SAFETY: upgrade responder contract.
    no_unwind((), || unsafe {
        upgrade_slot(ctx).body.extend_from_slice(chunk.as_slice())
    })
}

unsafe extern "C" fn up_protocol(ctx: *mut c_void, protocol: abi::Bytes) {
    // SAFETY: upgrade responder contract.
    no_unwind((), || unsafe {
        upgrade_slot(ctx).protocol = Some(utf8(protocol.as_slice()))
    })
}

unsafe extern "C" fn up_namespace(ctx: *mut c_void, namespace: abi::Bytes) {
    // SAFETY: upgrade responder contract.
    no_unwind((), || unsafe {
        upgrade_slot(ctx).namespace = Some(utf8(namespace.as_slice()))
    })
}

unsafe extern "C" fn up_context(ctx: *mut c_void, key: abi::Bytes, value: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: upgrade responder contract.
        unsafe {
            upgrade_slot(ctx)
                .context
                .push((utf8(key.as_slice()), utf8(value.as_slice())))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Peers

/// The vtable behind every [`abi::Peer`] handle: the handle is `Arc::as_ptr` of a [`Peer`].
static PEER_VTABLE: abi::PeerVTable = abi::PeerVTable {
    retain: peer_retain,
    release: peer_release,
    id: peer_id,
    remote_addr: peer_remote_addr,
    namespace: peer_namespace,
    request: peer_request,
    send: peer_send,
    publish: peer_publish,
    subscribe: peer_subscribe,
    unsubscribe: peer_unsubscribe,
    topics: peer_topics,
    close: peer_close,
    context_get: peer_context_get,
    context_set: peer_context_set,
    context_keys: peer_context_keys,
    peers: peer_peers,
    buffered_amount: peer_buffered_amount,
    protocol: peer_protocol,
    poll_drain: peer_poll_drain,
};

/// A borrowed handle for `peer`, valid while the caller keeps `peer` alive.
fn peer_handle(peer: &PeerRef) -> abi::Peer {
    abi::Peer {
        handle: Arc::as_ptr(peer) as *const c_void,
        vt: &PEER_VTABLE,
    }
}

/// # Safety (shared by the peer callbacks)
/// `handle` came from [`peer_handle`] and the route holds it borrowed for a hook call or
/// retained, so the `Peer` is alive.
unsafe fn peer<'a>(handle: *const c_void) -> &'a Peer {
    // SAFETY: see above.
    unsafe { &*(handle as *const Peer) }
}

unsafe extern "C" fn peer_retain(handle: *const c_void) {
    // SAFETY: the handle is `Arc::as_ptr` of a live `Arc<Peer>` (peer contract).
    no_unwind((), || unsafe {
        Arc::increment_strong_count(handle as *const Peer)
    })
}

unsafe extern "C" fn peer_release(handle: *const c_void) {
    // SAFETY: balances a `peer_retain` (or the retain done for a `peers` listing).
    no_unwind((), || unsafe {
        Arc::decrement_strong_count(handle as *const Peer)
    })
}

unsafe extern "C" fn peer_id(handle: *const c_void) -> abi::Bytes {
    // SAFETY: peer contract; the id lives as long as the peer.
    no_unwind(abi::Bytes::EMPTY, || unsafe {
        abi::Bytes::new(peer(handle).id().as_bytes())
    })
}

unsafe extern "C" fn peer_remote_addr(handle: *const c_void) -> abi::Bytes {
    // SAFETY: peer contract; the address lives as long as the peer.
    no_unwind(abi::Bytes::EMPTY, || unsafe {
        abi::Bytes::new(peer(handle).remote_addr().as_bytes())
    })
}

unsafe extern "C" fn peer_buffered_amount(handle: *const c_void) -> u64 {
    // SAFETY: peer contract.
    no_unwind(0, || unsafe { peer(handle).buffered_amount() as u64 })
}

unsafe extern "C" fn peer_protocol(handle: *const c_void) -> abi::Bytes {
    // SAFETY: peer contract; the protocol lives as long as the peer.
    no_unwind(abi::Bytes::EMPTY, || unsafe {
        abi::Bytes::new(peer(handle).protocol().as_bytes())
    })
}

unsafe extern "C" fn peer_poll_drain(handle: *const c_void, waker: *const abi::Waker) -> bool {
    no_unwind(true, || {
        // SAFETY: peer contract.
        let peer = unsafe { peer(handle) };
        if peer.buffered_amount() == 0 {
            return true; // no waker to keep
        }
        // SAFETY: `waker` is borrowed for this call; `clone` gives an owned one (ABI contract).
        let owned = unsafe { ((*(*waker).vt).clone)((*waker).data) };
        peer.poll_drained(&std::task::Waker::from(Arc::new(RouteWaker(owned))))
    })
}

/// An owned waker of a route library as a `std` waker of the host (released on drop).
struct RouteWaker(abi::Waker);

impl std::task::Wake for RouteWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SAFETY: an owned waker may be woken by reference any number of times, from any
        // thread (ABI contract); its functions never unwind.
        unsafe { ((*self.0.vt).wake_by_ref)(self.0.data) }
    }
}

impl Drop for RouteWaker {
    fn drop(&mut self) {
        // SAFETY: releases the owned clone exactly once (this value is its only owner).
        unsafe { ((*self.0.vt).drop)(self.0.data) }
    }
}

unsafe extern "C" fn peer_namespace(handle: *const c_void) -> abi::Bytes {
    // SAFETY: peer contract; the namespace lives as long as the peer.
    no_unwind(abi::Bytes::EMPTY, || unsafe {
        abi::Bytes::new(peer(handle).namespace().as_bytes())
    })
}

unsafe extern "C" fn peer_request(handle: *const c_void) -> *const abi::HttpRequest {
    no_unwind(std::ptr::null(), || {
        // SAFETY: peer contract.
        let peer = unsafe { peer(handle) };
        // The view lives in the peer and points into the peer's own request.
        peer.abi_request().as_abi() as *const abi::HttpRequest
    })
}

unsafe extern "C" fn peer_send(handle: *const c_void, data: abi::Bytes, binary: bool) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: peer contract; `data` is borrowed for the call and copied.
        let (peer, data) =
            unsafe { (peer(handle), bytes::Bytes::copy_from_slice(data.as_slice())) };
        if peer.send(data, binary) {
            abi::PEER_OK
        } else {
            abi::PEER_CLOSED
        }
    })
}

unsafe extern "C" fn peer_publish(
    handle: *const c_void,
    topic: abi::Bytes,
    data: abi::Bytes,
    binary: bool,
    self_too: bool,
) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: peer contract; the byte slices are borrowed for the call and copied.
        let (peer, topic, data) = unsafe {
            (
                peer(handle),
                utf8(topic.as_slice()),
                bytes::Bytes::copy_from_slice(data.as_slice()),
            )
        };
        peer.publish(&topic, data, binary, self_too);
        abi::PEER_OK
    })
}

unsafe extern "C" fn peer_subscribe(handle: *const c_void, topic: abi::Bytes) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: peer contract; `topic` is borrowed for the call.
        let (peer, topic) = unsafe { (peer(handle), utf8(topic.as_slice())) };
        peer.subscribe(&topic);
        abi::PEER_OK
    })
}

unsafe extern "C" fn peer_unsubscribe(handle: *const c_void, topic: abi::Bytes) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: peer contract; `topic` is borrowed for the call.
        let (peer, topic) = unsafe { (peer(handle), utf8(topic.as_slice())) };
        peer.unsubscribe(&topic);
        abi::PEER_OK
    })
}

/// Makes an `exit` called by route code (`std::process::exit`, which runs the C library's exit
/// handlers) leave a line on stderr naming the route, before the process goes: such an exit
/// is otherwise silent, with status 0 for `exit(0)`. Registered once per process; the line is
/// written only while a route call is running. (Aborts, signals and stack overflows run no
/// handler: a supervisor reports those, see `nitro start --supervise`.)
pub fn report_exit_from_routes() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        unsafe extern "C" {
            fn atexit(handler: extern "C" fn()) -> i32;
        }
        // SAFETY: `atexit` is the C library's (which std links); the handler is a plain
        // `extern "C" fn` that never unwinds (it only formats and writes, ignoring errors).
        let registered = unsafe { atexit(exit_handler) };
        if registered != 0 {
            tracing::debug!(target: "nitro::route", "cannot register the exit handler");
        }
    });
}

extern "C" fn exit_handler() {
    use std::io::Write;
    let _ = std::panic::catch_unwind(|| {
        if let Some((running, route)) = crate::route_pool::in_flight() {
            let _ = writeln!(
                std::io::stderr(),
                "nitro: the process is exiting while {running} route call(s) run (the last that started: `{route}`): did a route call `std::process::exit`?"
            );
        }
    });
}

/// Feeds `items` to a route's sink.
///
/// # Safety
/// `sink` must be a valid `BytesSink` for the call.
unsafe fn feed(sink: *const abi::BytesSink, items: impl IntoIterator<Item = String>) {
    for item in items {
        // SAFETY: caller contract; each item is borrowed for the callback.
        unsafe { ((*sink).item)((*sink).ctx, abi::Bytes::new(item.as_bytes())) };
    }
}

unsafe extern "C" fn peer_topics(handle: *const c_void, sink: *const abi::BytesSink) {
    // SAFETY: peer contract; `sink` is valid for the call.
    no_unwind((), || unsafe { feed(sink, peer(handle).topics()) })
}

unsafe extern "C" fn peer_close(handle: *const c_void, code: u16, reason: abi::Bytes) -> i32 {
    no_unwind(abi::PEER_INVALID, || {
        // SAFETY: peer contract; `reason` is borrowed for the call.
        let (peer, reason) = unsafe { (peer(handle), utf8(reason.as_slice())) };
        if peer.close(code, &reason) {
            abi::PEER_OK
        } else {
            abi::PEER_INVALID
        }
    })
}

unsafe extern "C" fn peer_context_get(
    handle: *const c_void,
    key: abi::Bytes,
    sink: *const abi::BytesSink,
) -> bool {
    no_unwind(false, || {
        // SAFETY: peer contract; `key` borrowed, `sink` valid for the call.
        unsafe {
            match peer(handle).context_get(&utf8(key.as_slice())) {
                Some(json) => {
                    feed(sink, [json]);
                    true
                }
                None => false,
            }
        }
    })
}

unsafe extern "C" fn peer_context_set(handle: *const c_void, key: abi::Bytes, value: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: peer contract; the byte slices are borrowed for the call.
        unsafe {
            let value = value.as_slice();
            peer(handle).context_set(
                &utf8(key.as_slice()),
                (!value.is_empty()).then(|| utf8(value)),
            );
        }
    })
}

unsafe extern "C" fn peer_context_keys(handle: *const c_void, sink: *const abi::BytesSink) {
    // SAFETY: peer contract; `sink` is valid for the call.
    no_unwind((), || unsafe { feed(sink, peer(handle).context_keys()) })
}

unsafe extern "C" fn peer_peers(handle: *const c_void, sink: *const abi::PeerSink) {
    no_unwind((), || {
        // SAFETY: peer contract; `sink` is valid for the call. Each listed peer stays alive
        // during its callback because `peers` holds the `Arc`s; the route retains what it keeps.
        unsafe {
            let peers = peer(handle).peers();
            for p in &peers {
                ((*sink).item)((*sink).ctx, peer_handle(p));
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Calls

impl RouteModule for LoadedRoute {
    fn file(&self) -> &str {
        &self.file
    }

    fn has_websocket_hooks(&self) -> bool {
        let t = self.table;
        t.ws_upgrade.is_some()
            || t.ws_open.is_some()
            || t.ws_message.is_some()
            || t.ws_close.is_some()
            || t.ws_error.is_some()
            || t.ws_upgrade_async.is_some()
            || t.ws_open_async.is_some()
            || t.ws_message_async.is_some()
            || t.ws_close_async.is_some()
            || t.ws_error_async.is_some()
    }

    fn http(&self, req: &RequestInfo) -> Result<HttpOutcome, CallError> {
        let Some(http) = self.table.http else {
            return Err(CallError::Missing);
        };
        let view = AbiRequest::new(req);
        let mut slot = ResponseSlot::new(self.host, &self.image);
        let responder = ResponseSlot::responder(&mut slot);
        // SAFETY: `http` has the ABI signature; the request view, responder and outcome live
        // for the call.
        self.call(|out| unsafe { http(out, view.as_abi(), &responder) })?;
        Ok(slot.into_outcome())
    }

    fn ws_upgrade(&self, req: &RequestInfo) -> Result<UpgradeDecision, CallError> {
        let Some(upgrade) = self.table.ws_upgrade else {
            return Ok(UpgradeDecision::accept());
        };
        let view = AbiRequest::new(req);
        let mut slot = UpgradeSlot::default();
        let responder = UpgradeSlot::responder(&mut slot);
        // SAFETY: `upgrade` has the ABI signature; everything passed lives for the call.
        self.call(|out| unsafe { upgrade(out, view.as_abi(), &responder) })?;
        Ok(slot.into_decision())
    }

    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        let Some(open) = self.table.ws_open else {
            return Ok(());
        };
        // SAFETY: ABI signature; the peer is kept alive by `peer` for the call.
        self.call(|out| unsafe { open(out, peer_handle(peer)) })
    }

    fn ws_message(&self, peer: &PeerRef, data: &[u8], binary: bool) -> Result<(), CallError> {
        let Some(message) = self.table.ws_message else {
            return Ok(());
        };
        // SAFETY: ABI signature; `data` and the peer live for the call.
        self.call(|out| unsafe { message(out, peer_handle(peer), abi::Bytes::new(data), binary) })
    }

    fn ws_close(&self, peer: &PeerRef, code: u16, reason: &str) -> Result<(), CallError> {
        let Some(close) = self.table.ws_close else {
            return Ok(());
        };
        // SAFETY: ABI signature; `reason` and the peer live for the call.
        self.call(|out| unsafe {
            close(
                out,
                peer_handle(peer),
                code,
                abi::Bytes::new(reason.as_bytes()),
            )
        })
    }

    fn ws_error(&self, peer: &PeerRef, error: &str) -> Result<(), CallError> {
        let Some(hook) = self.table.ws_error else {
            return Ok(());
        };
        // SAFETY: ABI signature; `error` and the peer live for the call.
        self.call(|out| unsafe { hook(out, peer_handle(peer), abi::Bytes::new(error.as_bytes())) })
    }

    fn http_async(&self, req: &RequestInfo) -> Option<RouteFuture<HttpOutcome>> {
        let start = self.table.http_async?;
        let view = AbiRequest::new(req);
        Some(self.start_task(
            ResponseSlot::new(self.host, &self.image),
            ResponseSlot::responder,
            // SAFETY: `http_async` has the ABI signature; the request view lives for the start
            // call, the outcome and responder until the task is dropped (`start_task`).
            |out, res, task| unsafe { start(out, view.as_abi(), res, task) },
            ResponseSlot::into_outcome,
        ))
    }

    fn middleware_async(&self, req: &RequestInfo) -> Option<RouteFuture<MiddlewareOutcome>> {
        let start = self.table.http_async?;
        let view = AbiRequest::new(req);
        Some(self.start_task(
            ResponseSlot::new(self.host, &self.image),
            ResponseSlot::responder,
            // SAFETY: as in `http_async`.
            |out, res, task| unsafe { start(out, view.as_abi(), res, task) },
            ResponseSlot::into_middleware_outcome,
        ))
    }

    fn plugin_setup(&self) -> Option<RouteFuture<()>> {
        let start = self.plugin_entry(std::mem::offset_of!(abi::RouteV2, plugin_setup))?;
        // SAFETY: ABI signature; the outcome lives until the task is dropped.
        Some(self.start_hook(|out, task| unsafe { start(out, task) }))
    }

    fn plugin_shutdown(&self) -> Option<RouteFuture<()>> {
        let start = self.plugin_entry(std::mem::offset_of!(abi::RouteV2, plugin_shutdown))?;
        // SAFETY: as in `plugin_setup`.
        Some(self.start_hook(|out, task| unsafe { start(out, task) }))
    }

    fn task_run(&self, payload: &str) -> Option<RouteFuture<String>> {
        let end = std::mem::offset_of!(abi::RouteV2, task_run) + std::mem::size_of::<usize>();
        if (self.table.struct_size as usize) < end {
            return None;
        }
        let start = self.table.task_run?;
        Some(self.start_task(
            Vec::<u8>::new(),
            result_sink,
            // SAFETY: ABI signature; `payload` is borrowed for the start call, the outcome and
            // the sink live until the task is dropped.
            |out, sink, task| unsafe {
                start(out, abi::Bytes::new(payload.as_bytes()), sink, task)
            },
            |bytes| String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    fn ws_upgrade_async(&self, req: &RequestInfo) -> Option<RouteFuture<UpgradeDecision>> {
        let start = self.table.ws_upgrade_async?;
        let view = AbiRequest::new(req);
        Some(self.start_task(
            UpgradeSlot::default(),
            UpgradeSlot::responder,
            // SAFETY: as in `http_async`.
            |out, res, task| unsafe { start(out, view.as_abi(), res, task) },
            UpgradeSlot::into_decision,
        ))
    }

    fn ws_open_async(&self, peer: &PeerRef) -> Option<RouteFuture<()>> {
        let start = self.table.ws_open_async?;
        // SAFETY: ABI signature; the peer is borrowed for the start call (the route retains
        // it if its task keeps it), the outcome lives until the task is dropped.
        Some(self.start_hook(|out, task| unsafe { start(out, peer_handle(peer), task) }))
    }

    fn ws_message_async(
        &self,
        peer: &PeerRef,
        data: &[u8],
        binary: bool,
    ) -> Option<RouteFuture<()>> {
        let start = self.table.ws_message_async?;
        // SAFETY: as in `ws_open_async`; `data` is borrowed for the start call.
        Some(self.start_hook(|out, task| unsafe {
            start(out, peer_handle(peer), abi::Bytes::new(data), binary, task)
        }))
    }

    fn ws_close_async(&self, peer: &PeerRef, code: u16, reason: &str) -> Option<RouteFuture<()>> {
        let start = self.table.ws_close_async?;
        // SAFETY: as in `ws_open_async`; `reason` is borrowed for the start call.
        Some(self.start_hook(|out, task| unsafe {
            start(
                out,
                peer_handle(peer),
                code,
                abi::Bytes::new(reason.as_bytes()),
                task,
            )
        }))
    }

    fn ws_error_async(&self, peer: &PeerRef, error: &str) -> Option<RouteFuture<()>> {
        let start = self.table.ws_error_async?;
        // SAFETY: as in `ws_open_async`; `error` is borrowed for the start call.
        Some(self.start_hook(|out, task| unsafe {
            start(
                out,
                peer_handle(peer),
                abi::Bytes::new(error.as_bytes()),
                task,
            )
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Async calls

/// The sink a task writes its result to: `ctx` is the `Vec<u8>` answer slot.
fn result_sink(slot: *mut Vec<u8>) -> abi::BytesSink {
    abi::BytesSink {
        ctx: slot as *mut c_void,
        item: result_item,
    }
}

unsafe extern "C" fn result_item(ctx: *mut c_void, item: abi::Bytes) {
    no_unwind((), || {
        // SAFETY: `ctx` is the task's answer slot (see `result_sink`), valid until the task is
        // dropped; `item` is borrowed for this call.
        unsafe {
            let slot = &mut *(ctx as *mut Vec<u8>);
            slot.clear();
            slot.extend_from_slice(item.as_slice());
        }
    })
}

/// A plugin's `setup` or `shutdown` entry point.
type PluginEntry = unsafe extern "C" fn(*const abi::Outcome, *mut abi::Task) -> abi::Status;

/// What an async call keeps on the host side for the route to write to until the task is
/// dropped: its outcome (a failure message), its answer and the responder writing into it.
struct TaskSlots<A, R> {
    failure: Option<String>,
    out: abi::Outcome,
    answer: A,
    responder: R,
}

// SAFETY: besides `A` (which is `Send`), the slots hold the outcome and responder tables, whose
// raw pointers point into this same allocation and are only used by the host callbacks, which
// the route may call from whichever thread polls the task (one at a time).
unsafe impl<A: Send, R> Send for TaskSlots<A, R> {}

impl LoadedRoute {
    /// Starts an async call and returns the future of its result. `responder` makes the
    /// responder table for the answer slot; `start` calls the entry point with the outcome, the
    /// responder and the task to fill in; `finish` turns the answer into the result.
    fn start_task<A, R, T>(
        &self,
        answer: A,
        responder: fn(*mut A) -> R,
        start: impl FnOnce(*const abi::Outcome, *const R, *mut abi::Task) -> abi::Status,
        finish: fn(A) -> T,
    ) -> RouteFuture<T>
    where
        A: Send + 'static,
        R: 'static,
        T: Send + 'static,
    {
        let slots = TaskSlots {
            failure: None,
            out: abi::Outcome {
                ctx: std::ptr::null_mut(),
                fail: outcome_fail,
            },
            answer,
            // Pointed at the answer below, once the slots have their final address.
            responder: responder(std::ptr::null_mut()),
        };
        let started = RouteTask::start(&self.image, slots, |slots, task| {
            // SAFETY: `slots` is the heap allocation `RouteTask` keeps until the route dropped
            // the task, so these pointers stay valid for as long as the ABI requires.
            unsafe {
                (*slots).out.ctx = &raw mut (*slots).failure as *mut c_void;
                (*slots).responder = responder(&raw mut (*slots).answer);
                start(&raw const (*slots).out, &raw const (*slots).responder, task)
            }
        });
        let file = self.file.clone();
        let mut task = match started {
            Ok(task) => task,
            Err((status, slots)) => {
                let error = status_result(status, slots.failure, &file)
                    .err()
                    .unwrap_or_else(|| {
                        CallError::Panicked(format!("route `{file}` started no task"))
                    });
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        Box::pin(async move {
            let status = (&mut task).await;
            let slots = task.into_slots();
            status_result(status, slots.failure, &file)?;
            Ok(finish(slots.answer))
        })
    }

    /// The plugin entry at `offset` (`plugin_setup` or `plugin_shutdown`), read only when the
    /// route's `struct_size` covers it (both were appended to `RouteV2`).
    fn plugin_entry(&self, offset: usize) -> Option<PluginEntry> {
        let end = offset + std::mem::size_of::<Option<PluginEntry>>();
        if (self.table.struct_size as usize) < end {
            return None;
        }
        if offset == std::mem::offset_of!(abi::RouteV2, plugin_setup) {
            self.table.plugin_setup
        } else {
            self.table.plugin_shutdown
        }
    }

    /// [`start_task`](Self::start_task) for a WebSocket hook, which answers nothing.
    fn start_hook(
        &self,
        start: impl FnOnce(*const abi::Outcome, *mut abi::Task) -> abi::Status,
    ) -> RouteFuture<()> {
        self.start_task((), |_| (), |out, _, task| start(out, task), |()| ())
    }
}
