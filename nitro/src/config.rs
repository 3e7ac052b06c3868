//! The app's runtime config: the `[runtime_config]` table of `nitro.toml`, with `NITRO_*`
//! environment overrides applied by the host (see `docs/config.md`).
//!
//! ```toml
//! [runtime_config]
//! api_base_url = "https://api.example.com"
//! page_size = 20
//! ```
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     api_base_url: String,
//!     #[serde(default)]
//!     beta: bool,
//! }
//!
//! pub async fn handler() -> nitro::Result<String> {
//!     let settings: Settings = nitro::config()?;
//!     let everything = nitro::config_value();   // Arc<nitro::Value>
//!     Ok(format!("{} beta={} ({} keys)", settings.api_base_url, settings.beta,
//!         everything.as_object().map_or(0, |o| o.len())))
//! }
//!
//! pub fn sync_handler() -> nitro::Result<String> {
//!     let settings: Settings = nitro::config()?;      // a 500 naming the key if it does not fit
//!     let raw = nitro::config_value();                 // Arc<nitro::Value>: the whole table
//!     Ok(format!("{} {}", settings.api_base_url, raw["beta"]))
//! }
//! ```
//!
//! Reads are cheap: the route keeps the last value and asks the host only for its version;
//! when `nitro dev` applies an edit of `nitro.toml`, the next read sees the new value.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;

/// The last value read from the host, with its version.
static CACHE: Mutex<Option<(u64, Arc<serde_json::Value>)>> = Mutex::new(None);

/// The whole runtime config as JSON (an empty object when the app has none, or outside a
/// server, e.g. in unit tests).
pub fn config_value() -> Arc<serde_json::Value> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let known = cache.as_ref().map_or(0, |(version, _)| *version);
    match crate::ffi::host_runtime_config(known) {
        Some((version, Some(json))) => {
            let value = serde_json::from_slice(&json)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
            let value = Arc::new(value);
            *cache = Some((version, value.clone()));
            value
        }
        Some((_, None)) => match cache.as_ref() {
            Some((_, value)) => value.clone(),
            None => Arc::new(serde_json::Value::Object(Default::default())),
        },
        None => Arc::new(serde_json::Value::Object(Default::default())),
    }
}

/// The runtime config as `T`. An error (500, naming serde's complaint) when it does not fit
/// `T`: a key missing from `[runtime_config]` or of another type.
pub fn config<T: DeserializeOwned>() -> crate::Result<T> {
    let value = config_value();
    T::deserialize(&*value).map_err(|e| {
        crate::Error::internal(format!(
            "`[runtime_config]` does not fit `{}`: {e}",
            std::any::type_name::<T>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Optional {
        #[serde(default)]
        flag: bool,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Required {
        url: String,
    }

    #[test]
    fn without_a_host_the_config_is_empty() {
        assert_eq!(*config_value(), serde_json::json!({}));
        assert_eq!(config::<Optional>().unwrap(), Optional { flag: false });
    }

    #[test]
    fn a_missing_key_is_an_error_naming_the_type_and_the_key() {
        let error = config::<Required>().unwrap_err();
        assert_eq!(error.status(), 500);
        assert!(error.message().contains("Required"), "{}", error.message());
        assert!(error.message().contains("`url`"), "{}", error.message());
    }
}
