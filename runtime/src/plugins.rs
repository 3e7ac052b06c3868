//! The app's plugins (`plugins/*.rs`): their `setup` before the server listens, their
//! `shutdown` after it stopped, and, in `nitro dev`, both again for an edited plugin.
//!
//! [`Plugins`] remembers which plugin builds were set up (the *active* ones), so that exactly
//! those are shut down, each with the build whose `setup` ran. It holds their modules, so a
//! plugin's library is not retired (its `nitro::state` dropped, its runtime stopped) before its
//! `shutdown` ran.
//!
//! - [`Plugins::setup`] runs every plugin's `setup` of an [`App`] in file-name order and stops
//!   at the first that fails or panics. A plugin that never built (only in `nitro dev`) is
//!   skipped with a warning: it is set up when an edit builds it.
//! - [`Plugins::shutdown`] runs the active plugins' `shutdown` in the reverse order, within one
//!   time budget; a plugin still running at the end is abandoned (its task dropped) and named.
//! - [`Plugins::reload`] (dev) compares the active builds with a new `App`: a plugin whose
//!   build changed or that was removed is shut down, then every new build is set up.
//!
//! A `setup` has no time limit: connecting to a database may take as long as it takes (the
//! command that starts the server stops it on Ctrl-C).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::module::{CallError, RouteFuture, RouteModule};
use crate::{App, RouteEntry};

/// What went wrong with a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// Its `setup` returned an error or panicked.
    #[error("plugin `{file}` failed in `setup`: {message}")]
    Setup { file: String, message: String },
    /// Its `shutdown` returned an error or panicked.
    #[error("plugin `{file}` failed in `shutdown`: {message}")]
    Shutdown { file: String, message: String },
    /// Its `shutdown` was still running when the time budget ended.
    #[error("plugin `{file}` did not finish its `shutdown` within {:.1} s", timeout.as_secs_f64())]
    ShutdownTimeout { file: String, timeout: Duration },
}

impl PluginError {
    /// The plugin file (`plugins/01.db.rs`).
    pub fn file(&self) -> &str {
        match self {
            PluginError::Setup { file, .. }
            | PluginError::Shutdown { file, .. }
            | PluginError::ShutdownTimeout { file, .. } => file,
        }
    }
}

/// One plugin build whose `setup` ran (or that has none).
struct Active {
    file: String,
    module: Arc<dyn RouteModule>,
}

/// The set-up plugins of a server. Cloning gives another handle to the same set.
#[derive(Clone, Default)]
pub struct Plugins {
    active: Arc<Mutex<Vec<Active>>>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins").finish_non_exhaustive()
    }
}

impl Plugins {
    /// A set with no plugin set up.
    pub fn new() -> Plugins {
        Plugins::default()
    }

    /// Runs the `setup` of every plugin of `app`, in file-name order. The first failure stops
    /// it: the plugins set up before stay active (shut them down with
    /// [`shutdown`](Plugins::shutdown)).
    pub async fn setup(&self, app: &App) -> Result<(), PluginError> {
        let mut active = self.active.lock().await;
        for plugin in app.table.plugins() {
            let file = &plugin.file;
            let module = match app.routes.get(file) {
                Some(RouteEntry::Loaded(module)) => module.clone(),
                Some(RouteEntry::Failed { .. }) | None => {
                    tracing::warn!(file = %file, "plugin `{file}` did not build: its `setup` runs once it builds");
                    continue;
                }
            };
            setup_one(file, &module).await?;
            active.push(Active {
                file: file.clone(),
                module,
            });
        }
        Ok(())
    }

    /// Runs the `shutdown` of every active plugin, in the reverse order of their setup, all
    /// within `timeout`; returns what failed. Afterwards no plugin is active.
    pub async fn shutdown(&self, timeout: Duration) -> Vec<PluginError> {
        let mut active = self.active.lock().await;
        let plugins = std::mem::take(&mut *active);
        let deadline = Instant::now() + timeout;
        let mut errors = Vec::new();
        for plugin in plugins.into_iter().rev() {
            if let Err(error) = shutdown_one(&plugin, deadline, timeout).await {
                errors.push(error);
            }
        }
        errors
    }

    /// `nitro dev` after a rebuild: shuts down the active plugins whose build `app` replaced
    /// or no longer has (reverse order, within `timeout`), then sets up the new builds in
    /// file-name order. Returns every failure; a plugin whose new `setup` failed is not active
    /// (it is set up again after its next edit).
    pub async fn reload(&self, app: &App, timeout: Duration) -> Vec<PluginError> {
        let mut active = self.active.lock().await;
        let current = |file: &str| match app.routes.get(file) {
            Some(RouteEntry::Loaded(module))
                if app.table.plugins().iter().any(|p| p.file == file) =>
            {
                Some(module.clone())
            }
            _ => None,
        };
        let (kept, retired): (Vec<Active>, Vec<Active>) = std::mem::take(&mut *active)
            .into_iter()
            .partition(|plugin| match current(&plugin.file) {
                Some(module) => same_module(&module, &plugin.module),
                None => false,
            });
        let mut errors = Vec::new();
        let deadline = Instant::now() + timeout;
        for plugin in retired.into_iter().rev() {
            if let Err(error) = shutdown_one(&plugin, deadline, timeout).await {
                errors.push(error);
            }
        }
        *active = kept;
        for plugin in app.table.plugins() {
            let file = &plugin.file;
            if active.iter().any(|a| &a.file == file) {
                continue;
            }
            let Some(module) = current(file) else {
                continue;
            };
            match setup_one(file, &module).await {
                Ok(()) => active.push(Active {
                    file: file.clone(),
                    module,
                }),
                Err(error) => errors.push(error),
            }
        }
        // Keep the setup order (file names) for the shutdown.
        active.sort_by(|a, b| a.file.cmp(&b.file));
        errors
    }

    /// The files of the active plugins, in setup order.
    pub async fn active(&self) -> Vec<String> {
        let active = self.active.lock().await;
        active.iter().map(|plugin| plugin.file.clone()).collect()
    }
}

/// Whether two handles are the same build (the same loaded module).
fn same_module(a: &Arc<dyn RouteModule>, b: &Arc<dyn RouteModule>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

async fn setup_one(file: &str, module: &Arc<dyn RouteModule>) -> Result<(), PluginError> {
    let Some(call) = module.plugin_setup() else {
        return Ok(());
    };
    tracing::debug!(file = %file, "plugin setup");
    call.await.map_err(|error| PluginError::Setup {
        file: file.to_owned(),
        message: message(error),
    })
}

async fn shutdown_one(
    plugin: &Active,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), PluginError> {
    let Some(call): Option<RouteFuture<()>> = plugin.module.plugin_shutdown() else {
        return Ok(());
    };
    tracing::debug!(file = %plugin.file, "plugin shutdown");
    match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(PluginError::Shutdown {
            file: plugin.file.clone(),
            message: message(error),
        }),
        Err(_) => Err(PluginError::ShutdownTimeout {
            file: plugin.file.clone(),
            timeout,
        }),
    }
}

fn message(error: CallError) -> String {
    match error {
        CallError::Missing => "the plugin does not define this function".to_owned(),
        other => other.to_string(),
    }
}
