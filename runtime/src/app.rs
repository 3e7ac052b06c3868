//! What the server serves: a route table and each route's code.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use nitro_router::RouteTable;

use crate::module::RouteModule;

/// One generation of the application: the route table and the code of every route file.
///
/// The server holds the current `App` behind an atomic pointer; [`ServerHandle::set_app`]
/// swaps it. Each request runs on the `App` it started with; each WebSocket event looks its
/// route up in the `App` current at that event.
///
/// [`ServerHandle::set_app`]: crate::ServerHandle::set_app
#[derive(Default)]
pub struct App {
    pub table: RouteTable,
    /// Keyed by route file as in [`nitro_router::Route::file`] (`routes/_ws.rs`).
    pub routes: HashMap<String, RouteEntry>,
    /// In dev, the routes served from their last good build because their last edit failed
    /// to build, with the first error. Their responses carry `x-nitro-stale: <file>`, and
    /// each request logs the failure again.
    pub stale: HashMap<String, String>,
}

impl App {
    pub fn new(table: RouteTable, routes: HashMap<String, RouteEntry>) -> App {
        App {
            table,
            routes,
            stale: HashMap::new(),
        }
    }

    /// Marks routes as stale (see [`App::stale`]).
    pub fn with_stale(mut self, stale: HashMap<String, String>) -> App {
        self.stale = stale;
        self
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut files: Vec<_> = self.routes.iter().collect();
        files.sort_by(|a, b| a.0.cmp(b.0));
        f.debug_struct("App")
            .field("table", &self.table)
            .field("routes", &files)
            .field("stale", &self.stale)
            .finish()
    }
}

/// The code of one route file.
#[derive(Clone)]
pub enum RouteEntry {
    /// Ready to serve.
    Loaded(Arc<dyn RouteModule>),
    /// The route never built; requests to it get a 500 with this message (in dev).
    Failed {
        /// The compile error, plain text.
        message: String,
    },
}

impl fmt::Debug for RouteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteEntry::Loaded(module) => f.debug_tuple("Loaded").field(&module.file()).finish(),
            RouteEntry::Failed { message } => {
                f.debug_struct("Failed").field("message", message).finish()
            }
        }
    }
}
