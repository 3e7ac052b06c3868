//! `[storage.NAME]`: the key-value mounts routes reach with `nitro::storage("NAME")`
//! (`docs/config.md`).
//!
//! ```toml
//! [storage.cache]
//! driver = "redis"
//! url = "redis://127.0.0.1:6379"
//! base = "my-app:cache"
//! max_value = 65536
//! ```
//!
//! Two mounts exist without a table, as in Nitro: `memory` (driver `memory`) and `data`
//! (driver `fs`, under `.data/kv`); a table of the same name replaces either. Options by
//! driver: `fs` takes `base` (a folder; relative to the project in `nitro dev`, to the working
//! directory in `nitro start`; default `.data/<name>`, `.data/kv` for `data`); `redis` takes
//! `url` (or `NITRO_STORAGE_<NAME>_URL`, which wins, so passwords stay out of files) and `base`
//! (the prefix of its keys, default the mount's name); every driver takes `max_value`, the
//! largest value in bytes (default 1 MiB). `nitro build` records the mounts in `nitro.json`.
//!
//! Resolution is pure: [`resolve`] turns the tables into [`MountSpec`]s, and [`placed`] makes
//! `fs` folders absolute and applies the URL variables for a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nitro_runtime::storage::{DEFAULT_MAX_VALUE, DriverSpec, MountSpec};
use serde::Deserialize;

/// The largest `max_value`: 512 MiB.
const MAX_MAX_VALUE: usize = 512 * 1024 * 1024;

/// `[storage.NAME]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageSection {
    driver: Option<String>,
    base: Option<String>,
    url: Option<String>,
    max_value: Option<Size>,
}

/// A size as written: bytes, or a string with a unit (`"64 KiB"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(i64),
    Text(String),
}

/// A mistake in a `[storage.NAME]` table; `location` is `nitro.toml:3`.
#[derive(Debug, thiserror::Error)]
pub enum StorageConfigError {
    #[error("`[storage.{name}]` of `{location}` has no `driver`")]
    NoDriver { name: String, location: String },
    #[error(
        "`driver` in `[storage.{name}]` of `{location}` is `{value}`; it must be `\"memory\"`, `\"fs\"` or `\"redis\"`"
    )]
    Driver {
        name: String,
        location: String,
        value: String,
    },
    #[error(
        "the mount name `{name}` in `{location}` is not allowed: use letters, digits, `_` and `-`"
    )]
    Name { name: String, location: String },
    #[error(
        "`{key}` in `[storage.{name}]` of `{location}` is not an option of the `{driver}` driver"
    )]
    Option {
        name: String,
        location: String,
        key: &'static str,
        driver: &'static str,
    },
    #[error("`{key}` in `[storage.{name}]` of `{location}` must be {expected}")]
    Value {
        name: String,
        location: String,
        key: &'static str,
        expected: &'static str,
    },
    #[error("storage mount `{name}` uses redis but has no `url`, and `{variable}` is not set")]
    NoUrl { name: String, variable: String },
    #[error("{source_name} is `{value}`, which is not a Redis URL: {reason}")]
    Url {
        source_name: String,
        value: String,
        reason: String,
    },
}

impl StorageConfigError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StorageConfigError::NoDriver { .. } | StorageConfigError::Driver { .. } => {
                "for example `[storage.cache]` with `driver = \"memory\"`; see `docs/config.md`"
                    .into()
            }
            StorageConfigError::Name { .. } => "for example `[storage.cache]`".into(),
            StorageConfigError::Option { .. } | StorageConfigError::Value { .. } => {
                "the options of each driver are listed in `docs/config.md`".into()
            }
            StorageConfigError::NoUrl { variable, .. } => {
                format!("add `url = \"redis://127.0.0.1:6379\"` to the table, or set `{variable}`")
            }
            StorageConfigError::Url { .. } => {
                "write it as `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS"
                    .into()
            }
        })
    }
}

/// The variable that gives (and overrides) the URL of the redis mount `name`:
/// `NITRO_STORAGE_<NAME>_URL`, the name in upper case with `-` as `_`.
pub fn url_variable(name: &str) -> String {
    format!(
        "NITRO_STORAGE_{}_URL",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The mounts every app has, before its tables.
pub fn defaults() -> BTreeMap<String, MountSpec> {
    BTreeMap::from([
        ("memory".to_owned(), MountSpec::memory()),
        (
            "data".to_owned(),
            MountSpec {
                driver: DriverSpec::Fs {
                    base: PathBuf::from(".data/kv"),
                },
                max_value: DEFAULT_MAX_VALUE,
            },
        ),
    ])
}

/// The mounts of `tables` (each with the `nitro.toml:LINE` it starts at) over [`defaults`].
/// `env` reads a variable, for checking `NITRO_STORAGE_<NAME>_URL` where the file has no URL.
pub(crate) fn resolve(
    tables: Vec<(String, StorageSection, String)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, MountSpec>, StorageConfigError> {
    let mut mounts = defaults();
    for (name, section, location) in tables {
        let spec = resolve_one(&name, section, &location, env)?;
        mounts.insert(name, spec);
    }
    Ok(mounts)
}

fn resolve_one(
    name: &str,
    section: StorageSection,
    location: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<MountSpec, StorageConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(StorageConfigError::Name {
            name: name.to_owned(),
            location: location.to_owned(),
        });
    }
    let refuse = |key: &'static str, driver: &'static str| StorageConfigError::Option {
        name: name.to_owned(),
        location: location.to_owned(),
        key,
        driver,
    };
    let value_error = |key: &'static str, expected: &'static str| StorageConfigError::Value {
        name: name.to_owned(),
        location: location.to_owned(),
        key,
        expected,
    };
    let max_value = match section.max_value {
        None => DEFAULT_MAX_VALUE,
        Some(size) => {
            let bytes = match size {
                Size::Bytes(n) => usize::try_from(n).ok(),
                Size::Text(text) => crate::project::config_limits::parse_size(&text),
            };
            match bytes {
                Some(n) if (1..=MAX_MAX_VALUE).contains(&n) => n,
                _ => {
                    return Err(value_error(
                        "max_value",
                        "a size from 1 byte to 512 MiB, such as `65536` or `\"64 KiB\"`",
                    ));
                }
            }
        }
    };
    let driver = match section.driver.as_deref() {
        None => {
            return Err(StorageConfigError::NoDriver {
                name: name.to_owned(),
                location: location.to_owned(),
            });
        }
        Some("memory") => {
            if section.base.is_some() {
                return Err(refuse("base", "memory"));
            }
            if section.url.is_some() {
                return Err(refuse("url", "memory"));
            }
            DriverSpec::Memory
        }
        Some("fs") => {
            if section.url.is_some() {
                return Err(refuse("url", "fs"));
            }
            let base = match section.base {
                Some(base) if base.trim().is_empty() => {
                    return Err(value_error("base", "a folder, such as `\".data/cache\"`"));
                }
                Some(base) => PathBuf::from(base),
                None if name == "data" => PathBuf::from(".data/kv"),
                None => Path::new(".data").join(name),
            };
            DriverSpec::Fs { base }
        }
        Some("redis") => {
            let variable = url_variable(name);
            let from_env = env(&variable);
            if let Some(url) = &section.url {
                check_url(url, || {
                    format!("`url` in `[storage.{name}]` of `{location}`")
                })?;
            }
            if let Some(url) = &from_env {
                check_url(url, || format!("environment variable `{variable}`"))?;
            }
            // The variable is applied by `placed`, for the run (never baked into a build);
            // no URL at all is an error there.
            let url = section.url.unwrap_or_default();
            let base = section.base.unwrap_or_else(|| name.to_owned());
            if base.is_empty() {
                return Err(value_error("base", "a key prefix, such as `\"my-app\"`"));
            }
            DriverSpec::Redis { url, base }
        }
        Some(other) => {
            return Err(StorageConfigError::Driver {
                name: name.to_owned(),
                location: location.to_owned(),
                value: other.to_owned(),
            });
        }
    };
    Ok(MountSpec { driver, max_value })
}

fn check_url(url: &str, source_name: impl FnOnce() -> String) -> Result<(), StorageConfigError> {
    nitro_runtime::storage::RedisDriver::lazy(url, "check")
        .map(drop)
        .map_err(|error| StorageConfigError::Url {
            source_name: source_name(),
            value: url.to_owned(),
            reason: error.to_string(),
        })
}

/// The mounts of a run: each relative `fs` folder under `dir` (the project in `nitro dev`,
/// the working directory in `nitro start`), and each redis URL from its
/// `NITRO_STORAGE_<NAME>_URL` when that is set.
/// A redis mount with no URL in the file nor in its variable is an error here.
pub fn placed(
    mounts: &BTreeMap<String, MountSpec>,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, MountSpec>, StorageConfigError> {
    mounts
        .iter()
        .map(|(name, spec)| {
            let mut spec = spec.clone();
            match &mut spec.driver {
                DriverSpec::Fs { base } if base.is_relative() => *base = dir.join(&*base),
                DriverSpec::Redis { url, .. } => {
                    let variable = url_variable(name);
                    if let Some(from_env) = env(&variable) {
                        check_url(&from_env, || format!("environment variable `{variable}`"))?;
                        *url = from_env;
                    }
                    if url.is_empty() {
                        return Err(StorageConfigError::NoUrl {
                            name: name.clone(),
                            variable,
                        });
                    }
                }
                _ => {}
            }
            Ok((name.clone(), spec))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> StorageSection {
        toml::from_str(text).unwrap()
    }

    fn one(text: &str) -> Result<MountSpec, StorageConfigError> {
        let mounts = resolve(
            vec![("cache".into(), table(text), "nitro.toml:3".into())],
            &|_| None,
        )?;
        Ok(mounts["cache"].clone())
    }

    #[test]
    fn every_app_has_memory_and_data() {
        let mounts = resolve(Vec::new(), &|_| None).unwrap();
        assert_eq!(mounts["memory"], MountSpec::memory());
        assert_eq!(
            mounts["data"].driver,
            DriverSpec::Fs {
                base: ".data/kv".into()
            }
        );
    }

    #[test]
    fn each_driver_and_its_options() {
        assert_eq!(one("driver = \"memory\"").unwrap(), MountSpec::memory());
        assert_eq!(
            one("driver = \"fs\"\nmax_value = \"10 KiB\"").unwrap(),
            MountSpec {
                driver: DriverSpec::Fs {
                    base: ".data/cache".into()
                },
                max_value: 10 << 10
            }
        );
        assert_eq!(
            one("driver = \"redis\"\nurl = \"redis://127.0.0.1:1\"").unwrap(),
            MountSpec {
                driver: DriverSpec::Redis {
                    url: "redis://127.0.0.1:1".into(),
                    base: "cache".into()
                },
                max_value: DEFAULT_MAX_VALUE
            }
        );
    }

    #[test]
    fn mistakes_name_the_table_the_file_and_the_value() {
        let error = |text| one(text).unwrap_err().to_string();
        assert_eq!(
            error("driver = \"s3\""),
            "`driver` in `[storage.cache]` of `nitro.toml:3` is `s3`; it must be `\"memory\"`, `\"fs\"` or `\"redis\"`"
        );
        assert_eq!(
            error(""),
            "`[storage.cache]` of `nitro.toml:3` has no `driver`"
        );
        assert_eq!(
            error("driver = \"memory\"\nbase = \"x\""),
            "`base` in `[storage.cache]` of `nitro.toml:3` is not an option of the `memory` driver"
        );
        assert!(error("driver = \"fs\"\nmax_value = 0").contains("`max_value`"));
        assert!(error("driver = \"redis\"\nurl = \"http://x\"").starts_with(
            "`url` in `[storage.cache]` of `nitro.toml:3` is `http://x`, which is not a Redis URL"
        ));
        let bad_name = resolve(
            vec![(
                "a.b".into(),
                table("driver = \"memory\""),
                "nitro.toml:1".into(),
            )],
            &|_| None,
        )
        .unwrap_err();
        assert!(bad_name.to_string().contains("`a.b`"), "{bad_name}");
    }

    #[test]
    fn a_run_places_fs_folders_and_takes_redis_urls_from_the_environment() {
        let env = |name: &str| {
            (name == "NITRO_STORAGE_CACHE_URL").then(|| "redis://10.0.0.1:6379".to_owned())
        };
        let mounts = resolve(
            vec![(
                "cache".into(),
                table("driver = \"redis\""),
                "nitro.toml:3".into(),
            )],
            &env,
        )
        .unwrap();
        let placed = placed(&mounts, Path::new("/srv/app"), &env).unwrap();
        let no_url = super::placed(&mounts, Path::new("/srv/app"), &|_| None).unwrap_err();
        assert_eq!(
            no_url.to_string(),
            "storage mount `cache` uses redis but has no `url`, and `NITRO_STORAGE_CACHE_URL` is not set"
        );
        assert_eq!(
            placed["data"].driver,
            DriverSpec::Fs {
                base: "/srv/app/.data/kv".into()
            }
        );
        assert_eq!(
            placed["cache"].driver,
            DriverSpec::Redis {
                url: "redis://10.0.0.1:6379".into(),
                base: "cache".into()
            }
        );
    }
}
