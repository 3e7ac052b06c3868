//! The mounts of one server, by name, and how each is described ([`MountSpec`]: what
//! `[storage.NAME]` in `nitro.toml` resolves to, and what `nitro.json` records).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use serde::{Deserialize, Serialize};

use super::{DEFAULT_MAX_VALUE, Driver, FsDriver, MemoryDriver, Mount, StorageError};

/// Where a mount keeps its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "lowercase", deny_unknown_fields)]
pub enum DriverSpec {
    /// In the server's memory: shared by every route and kept across reloads, lost when the
    /// process exits.
    Memory,
    /// One file per key under `base`.
    Fs { base: PathBuf },
    /// In Redis at `url`, every key under `base:`.
    Redis { url: String, base: String },
}

/// One mount: a driver and the largest value it takes, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    #[serde(flatten)]
    pub driver: DriverSpec,
    #[serde(default = "default_max_value")]
    pub max_value: usize,
}

fn default_max_value() -> usize {
    DEFAULT_MAX_VALUE
}

impl MountSpec {
    /// A memory mount with the default size limit.
    pub fn memory() -> MountSpec {
        MountSpec {
            driver: DriverSpec::Memory,
            max_value: DEFAULT_MAX_VALUE,
        }
    }

    /// Opens the mount `name` (a Redis mount connects on its first operation).
    fn open(&self, name: &str) -> Result<Mount, StorageError> {
        let driver = match &self.driver {
            DriverSpec::Memory => Driver::Memory(MemoryDriver::default()),
            DriverSpec::Fs { base } => Driver::Fs(FsDriver::new(base.clone())),
            #[cfg(feature = "redis")]
            DriverSpec::Redis { url, base } => {
                Driver::Redis(Box::new(super::RedisDriver::lazy(url, base)?))
            }
            #[cfg(not(feature = "redis"))]
            DriverSpec::Redis { .. } => {
                return Err(StorageError::NoRedis {
                    mount: name.to_owned(),
                });
            }
        };
        let _ = name;
        Ok(Mount::new(driver, self.max_value))
    }
}

/// The storage mounts of one server, kept by its `Hub` so that every route library loaded
/// with that hub, and every reload of one, sees the same mounts and the same data.
///
/// A new `Storage` has one mount, `memory`; [`Storage::configure`] sets the app's mounts.
#[derive(Debug)]
pub struct Storage {
    mounts: RwLock<BTreeMap<String, (MountSpec, Arc<Mount>)>>,
    /// The server's runtime, where operations that wait (fs, Redis) run.
    runtime: OnceLock<tokio::runtime::Handle>,
}

impl Default for Storage {
    fn default() -> Storage {
        let storage = Storage {
            mounts: RwLock::new(BTreeMap::new()),
            runtime: OnceLock::new(),
        };
        let memory = BTreeMap::from([("memory".to_owned(), MountSpec::memory())]);
        storage
            .configure(&memory)
            .expect("a memory mount always opens");
        storage
    }
}

impl Storage {
    /// Sets the mounts to `specs`. A mount whose name and spec did not change is kept as it
    /// is, data and all (so `nitro dev` can apply an edit of other mounts). On an error
    /// nothing changes.
    pub fn configure(&self, specs: &BTreeMap<String, MountSpec>) -> Result<(), StorageError> {
        let mut mounts = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::new();
        for (name, spec) in specs {
            let mount = match mounts.get(name) {
                Some((old, mount)) if old == spec => mount.clone(),
                _ => Arc::new(spec.open(name)?),
            };
            next.insert(name.clone(), (spec.clone(), mount));
        }
        *mounts = next;
        Ok(())
    }

    /// The mount called `name`, or an error listing the mounts there are.
    pub fn mount(&self, name: &str) -> Result<Arc<Mount>, StorageError> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        match mounts.get(name) {
            Some((_, mount)) => Ok(mount.clone()),
            None => Err(StorageError::NoMount {
                mount: name.to_owned(),
                known: if mounts.is_empty() {
                    "none".to_owned()
                } else {
                    mounts
                        .keys()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
        }
    }

    /// The names of the mounts, sorted.
    pub fn names(&self) -> Vec<String> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        mounts.keys().cloned().collect()
    }

    /// Runs operations that wait on `runtime` from now on (the first call wins; `Server::bind`
    /// makes it with the server's runtime).
    pub fn attach_runtime(&self, runtime: tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime);
    }

    /// Where operations that wait run: the attached runtime, else the caller's, if any.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_as_nitro_json_writes_them() {
        let spec: MountSpec =
            serde_json::from_str(r#"{"driver":"fs","base":".data/kv","max_value":10}"#).unwrap();
        assert_eq!(
            spec,
            MountSpec {
                driver: DriverSpec::Fs {
                    base: ".data/kv".into()
                },
                max_value: 10
            }
        );
        let memory: MountSpec = serde_json::from_str(r#"{"driver":"memory"}"#).unwrap();
        assert_eq!(memory, MountSpec::memory());
        assert_eq!(
            serde_json::to_value(MountSpec::memory()).unwrap(),
            serde_json::json!({ "driver": "memory", "max_value": DEFAULT_MAX_VALUE })
        );
    }

    #[tokio::test]
    async fn configure_keeps_unchanged_mounts_and_their_data() {
        let storage = Storage::default();
        storage
            .mount("memory")
            .unwrap()
            .set("k", b"v", None)
            .await
            .unwrap();
        let mut specs = BTreeMap::from([("memory".to_owned(), MountSpec::memory())]);
        specs.insert("cache".to_owned(), MountSpec::memory());
        storage.configure(&specs).unwrap();
        assert_eq!(storage.names(), ["cache", "memory"]);
        let kept = storage.mount("memory").unwrap().get("k").await.unwrap();
        assert_eq!(kept.as_deref(), Some(&b"v"[..]));
        let error = storage.mount("nope").unwrap_err().to_string();
        assert_eq!(
            error,
            "there is no storage mount `nope`; the mounts are `cache`, `memory`"
        );
    }
}
