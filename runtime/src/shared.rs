//! The state every part of a running server shares: [`Shared`].

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::App;
use crate::config::ServerConfig;
use crate::devclient::DevClient;
use crate::route_pool::RoutePool;
use crate::static_files::StaticFiles;
use crate::ws::Hub;

/// State shared by the listener, the connections and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    app: ArcSwap<App>,
    pub(crate) hub: Arc<Hub>,
    /// Cancelled when the server stops: connections finish, peers close with 1001.
    pub(crate) shutdown: CancellationToken,
    /// Every connection and WebSocket task.
    pub(crate) tracker: TaskTracker,
    /// Where route code runs.
    pub(crate) route_pool: RoutePool,
    /// `nitro dev`'s client: injected into HTML responses, with its dev socket.
    pub(crate) dev_client: OnceLock<Arc<DevClient>>,
    /// `public/` and the renderer's page.
    pub(crate) files: StaticFiles,
}

impl Shared {
    /// The state of a server about to serve `app` with `config` (its limits already
    /// sanitized) and the static `files` it names.
    pub(crate) fn new(config: ServerConfig, hub: Arc<Hub>, app: App, files: StaticFiles) -> Shared {
        Shared {
            route_pool: RoutePool::new(config.limits.route_threads, config.limits.handler_timeout)
                .with_call_record(config.call_record.as_deref()),
            config,
            app: ArcSwap::from_pointee(app),
            hub,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            dev_client: OnceLock::new(),
            files,
        }
    }

    /// Swaps in a new app (see [`ServerHandle::set_app`](crate::ServerHandle::set_app)).
    pub(crate) fn set_app(&self, app: App) {
        self.app.store(Arc::new(app));
    }

    /// The current app.
    pub(crate) fn app(&self) -> Arc<App> {
        self.app.load_full()
    }
}
