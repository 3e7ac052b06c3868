//! The app's `[runtime_config]`, owned by the host and read by every route through
//! [`nitro_abi::HostApi::runtime_config`].
//!
//! One value per server, kept by its [`crate::Hub`] (the host services every route library is
//! loaded with): the CLI sets it before loading routes (`nitro dev` from `nitro.toml`,
//! `nitro start` from `nitro.json`, both with the `NITRO_*` environment overrides applied) and
//! `nitro dev` sets it again when `nitro.toml` is edited. Each set bumps a version, so routes
//! copy the JSON again only after a change.

use std::sync::{Arc, RwLock};

/// The runtime config of one server: a version (0 before the first set) and JSON text.
#[derive(Debug, Default)]
pub struct RuntimeConfig {
    current: RwLock<(u64, Option<Arc<[u8]>>)>,
}

impl RuntimeConfig {
    /// Replaces the value; routes see it on their next read. Returns the new version.
    pub fn set(&self, value: &serde_json::Value) -> u64 {
        let json: Arc<[u8]> = serde_json::to_vec(value)
            .expect("a serde_json::Value always serialises")
            .into();
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.0 += 1;
        current.1 = Some(json);
        current.0
    }

    /// The version and JSON text of the current value (`{}` before the first [`Self::set`]).
    pub fn get(&self) -> (u64, Arc<[u8]>) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let json = current.1.clone().unwrap_or_else(|| Arc::from(&b"{}"[..]));
        (current.0, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_bumps_the_version_and_replaces_the_value() {
        let config = RuntimeConfig::default();
        assert_eq!(config.get(), (0, Arc::from(&b"{}"[..])));
        let first = config.set(&serde_json::json!({ "a": 1 }));
        assert_eq!(&*config.get().1, br#"{"a":1}"#);
        let second = config.set(&serde_json::json!({ "a": 2 }));
        assert!(second > first);
        assert_eq!(config.get(), (second, Arc::from(&br#"{"a":2}"#[..])));
    }
}
