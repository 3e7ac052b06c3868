//! Host-owned key-value storage: what routes reach with `nitro::storage("name")`.
//!
//! A [`Mount`] is one named store (`[storage.NAME]` in `nitro.toml`, described by a
//! [`MountSpec`]): a driver plus a size limit. The server's [`Storage`] (kept by its `Hub`)
//! holds the mounts by name. Because the host owns it, every route sees the same data, and the data
//! outlives route reloads. Keys are `:`-separated segments (`/` is read as `:`, as in
//! unstorage); a key is checked before any driver sees it, so no key can reach outside an fs
//! mount's folder. Values are bytes with an optional time to live; an expired value reads as
//! absent and is dropped when it is met.
//!
//! Drivers: memory, fs, and redis (feature `redis`).
//!
//! Routes reach a mount through `HostApi::storage` (`task.rs`: each operation is an
//! `abi::Task` the route polls; anything but the memory driver runs on the server's runtime,
//! so a route may await it from any thread, or block on it from a sync `fn`).

mod fs;
mod memory;
mod op;
#[cfg(feature = "redis")]
mod redis;
mod registry;
pub(crate) mod task;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use fs::FsDriver;
pub use memory::MemoryDriver;
pub use op::{Op, Reply};
#[cfg(feature = "redis")]
pub use redis::RedisDriver;
pub use registry::{DriverSpec, MountSpec, Storage};

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The default size limit of one value.
pub const DEFAULT_MAX_VALUE: usize = 1024 * 1024;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage key `{key}` is not allowed: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("the value for storage key `{key}` is {size} bytes, over the mount's limit of {limit}")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    #[error("storage in Redis: {0}")]
    Redis(String),
    #[error("there is no storage mount `{mount}`; the mounts are {known}")]
    NoMount { mount: String, known: String },
    #[error("storage mount `{mount}` needs the `redis` feature of nitro-runtime")]
    NoRedis { mount: String },
    #[error("the storage operation did not finish: {0}")]
    Stopped(&'static str),
    #[error("storage file `{}`: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A key in its one spelling (`a/b` → `a:b`), or why it is refused: empty, too long, an empty
/// segment, a segment starting with `.` (no `.`/`..`, no hidden files), a `\`, or a control
/// character.
pub fn normalize_key(key: &str) -> Result<String, StorageError> {
    let refuse = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return refuse("it is longer than 512 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return refuse("it has a control character or a `\\`");
    }
    let normal = key.replace('/', ":");
    for segment in normal.split(':') {
        if segment.is_empty() {
            return refuse("it has an empty segment (`::`, `//`, or one at either end)");
        }
        if segment.starts_with('.') {
            return refuse("a segment starts with `.`");
        }
    }
    Ok(normal)
}

/// A prefix for [`Mount::keys`] and [`Mount::clear`]: empty (everything) or checked like a key
/// after a trailing `:` is dropped.
pub fn normalize_prefix(prefix: &str) -> Result<String, StorageError> {
    let trimmed = prefix.trim_end_matches([':', '/']);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    normalize_key(trimmed)
}

/// Whether `key` is under `prefix` (a whole-segment match: `a` holds `a` and `a:b`, not `ab`).
pub(crate) fn under(key: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || key == prefix
        || (key.starts_with(prefix) && key.as_bytes().get(prefix.len()) == Some(&b':'))
}

/// When a value set now with `ttl` expires, in milliseconds since the Unix epoch.
pub(crate) fn expiry(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| now_ms().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64))
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A driver: where a mount keeps its values.
#[derive(Debug)]
pub enum Driver {
    Memory(MemoryDriver),
    Fs(FsDriver),
    #[cfg(feature = "redis")]
    Redis(Box<RedisDriver>),
}

/// One named store: a driver and a size limit.
#[derive(Debug)]
pub struct Mount {
    driver: Driver,
    max_value: usize,
}

impl Mount {
    pub fn new(driver: Driver, max_value: usize) -> Mount {
        Mount { driver, max_value }
    }

    /// Whether every operation finishes without waiting (the memory driver): the host then
    /// answers in the route's call rather than on the server's runtime.
    pub fn is_immediate(&self) -> bool {
        matches!(self.driver, Driver::Memory(_))
    }

    /// The value of `key`, if it is set and not expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = normalize_key(key)?;
        match &self.driver {
            Driver::Memory(d) => Ok(d.get(&key)),
            Driver::Fs(d) => d.get(&key).await,
            #[cfg(feature = "redis")]
            Driver::Redis(d) => d.get(&key).await,
        }
    }

    /// Sets `key`, expiring after `ttl` when given.
    pub async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        let key = normalize_key(key)?;
        if value.len() > self.max_value {
            return Err(StorageError::TooLarge {
                key,
                size: value.len(),
                limit: self.max_value,
            });
        }
        let expires = expiry(ttl);
        match &self.driver {
            Driver::Memory(d) => {
                d.set(key, value, expires);
                Ok(())
            }
            Driver::Fs(d) => d.set(&key, value, expires).await,
            #[cfg(feature = "redis")]
            Driver::Redis(d) => {
                let ttl_ms = ttl.map(|t| t.as_millis().min(u64::MAX as u128) as u64);
                d.set(&key, value, ttl_ms).await
            }
        }
    }

    /// Whether `key` is set and not expired.
    pub async fn has(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.get(key).await?.is_some())
    }

    /// Removes `key` (nothing when it is not set).
    pub async fn remove(&self, key: &str) -> Result<(), StorageError> {
        let key = normalize_key(key)?;
        match &self.driver {
            Driver::Memory(d) => {
                d.remove(&key);
                Ok(())
            }
            Driver::Fs(d) => d.remove(&key).await,
            #[cfg(feature = "redis")]
            Driver::Redis(d) => d.remove(&key).await,
        }
    }

    /// The keys under `prefix` (all when empty) that are set and not expired, sorted.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = normalize_prefix(prefix)?;
        let mut keys = match &self.driver {
            Driver::Memory(d) => d.keys(&prefix),
            Driver::Fs(d) => d.keys(&prefix).await?,
            #[cfg(feature = "redis")]
            Driver::Redis(d) => d.keys(&prefix).await?,
        };
        keys.sort();
        Ok(keys)
    }

    /// Removes every key under `prefix` (all when empty).
    pub async fn clear(&self, prefix: &str) -> Result<(), StorageError> {
        for key in self.keys(prefix).await? {
            self.remove(&key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
