//! The route rules of one server, kept by its `Hub` so that `nitro dev` can replace them when
//! `nitro.toml` changes, and the cache entries being refreshed (one refresh per entry at once).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::matching::RouteRules;

#[derive(Debug, Default)]
pub struct RouteRulesState {
    rules: ArcSwap<RouteRules>,
    refreshing: Mutex<HashSet<String>>,
    /// Part of every cache key: a new epoch makes every cached answer a miss (`nitro dev`
    /// starts one when it swaps in rebuilt routes; the old entries expire by their TTL).
    epoch: AtomicU64,
}

impl RouteRulesState {
    /// Replaces the rules; the next request uses them.
    pub fn set(&self, rules: RouteRules) {
        self.rules.store(Arc::new(rules));
    }

    /// Stops serving the answers cached so far (see `epoch`).
    pub fn new_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// The current rules.
    pub fn get(&self) -> Arc<RouteRules> {
        self.rules.load_full()
    }

    /// Marks `key` as being refreshed; false when it already is.
    pub(crate) fn claim(&self, key: &str) -> bool {
        let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        refreshing.insert(key.to_owned())
    }

    pub(crate) fn release(&self, key: &str) {
        let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        refreshing.remove(key);
    }
}
