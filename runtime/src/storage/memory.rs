//! The memory driver: a map in the host process, shared by every route, kept across reloads
//! (lost when the process exits).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A value and when it expires (ms since the Unix epoch).
#[derive(Debug)]
struct Entry {
    value: Arc<[u8]>,
    expires: Option<u64>,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Default)]
pub struct MemoryDriver {
    map: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryDriver {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut map = self.map();
        let now = super::now_ms();
        match map.get(key) {
            Some(entry) if entry.live(now) => Some(entry.value.to_vec()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn set(&self, key: String, value: &[u8], expires: Option<u64>) {
        self.map().insert(
            key,
            Entry {
                value: value.into(),
                expires,
            },
        );
    }

    pub(crate) fn remove(&self, key: &str) {
        self.map().remove(key);
    }

    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        let mut map = self.map();
        let now = super::now_ms();
        map.retain(|_, entry| entry.live(now));
        map.keys()
            .filter(|key| super::under(key, prefix))
            .cloned()
            .collect()
    }
}
