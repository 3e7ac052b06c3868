//! `[observability]`: Prometheus metrics (`docs/deploy.md`).
//!
//! ```toml
//! [observability]
//! metrics = "/__nitro/metrics"       # serve them at this path (off when absent)
//! metrics_bind = "127.0.0.1:9464"    # on this address instead of the server's own port
//! ```
//!
//! `nitro build` records the table in `nitro.json`; `nitro dev` and `nitro start` turn the
//! metrics on before the server listens (`nitro_runtime::telemetry::metrics`).

use std::net::SocketAddr;

use nitro_runtime::MetricsEndpoint;
use serde::{Deserialize, Serialize};

/// `[observability]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObservabilitySection {
    metrics: Option<String>,
    metrics_bind: Option<String>,
}

/// `[observability]`, checked; also its form in `nitro.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservabilitySettings {
    /// The path of the metrics.
    pub metrics: String,
    /// The separate address they are served on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
}

impl ObservabilitySettings {
    /// The runtime's endpoint.
    pub fn endpoint(&self) -> MetricsEndpoint {
        MetricsEndpoint {
            path: self.metrics.clone(),
            bind: self.metrics_bind,
        }
    }
}

/// A mistake in `[observability]`.
#[derive(Debug, thiserror::Error)]
pub enum ObservabilityConfigError {
    #[error(
        "`metrics` in `[observability]` of `{file}` is `{value}`: it must be a path such as `/__nitro/metrics`"
    )]
    Path { file: String, value: String },
    #[error(
        "`metrics_bind` in `[observability]` of `{file}` is `{value}`, which is not an address with a port"
    )]
    Bind { file: String, value: String },
    #[error("`metrics_bind` in `[observability]` of `{file}` is set, but `metrics` is not")]
    BindWithoutPath { file: String },
}

impl ObservabilityConfigError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ObservabilityConfigError::Path { .. } => {
                "start it with `/`, without `?` or `#`, and not `/` alone: `metrics = \"/__nitro/metrics\"`".into()
            }
            ObservabilityConfigError::Bind { .. } => {
                "write an IP address and a port, such as `127.0.0.1:9464` (this machine only) or `0.0.0.0:9464`".into()
            }
            ObservabilityConfigError::BindWithoutPath { .. } => {
                "add `metrics = \"/__nitro/metrics\"` to `[observability]`".into()
            }
        })
    }
}

/// Checks the section read from `file` (its name for messages).
pub(crate) fn resolve(
    section: ObservabilitySection,
    file: &str,
) -> Result<Option<ObservabilitySettings>, ObservabilityConfigError> {
    let Some(path) = section.metrics else {
        return match section.metrics_bind {
            Some(_) => Err(ObservabilityConfigError::BindWithoutPath {
                file: file.to_owned(),
            }),
            None => Ok(None),
        };
    };
    let valid = path.starts_with('/')
        && path.len() > 1
        && !path
            .chars()
            .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control());
    if !valid {
        return Err(ObservabilityConfigError::Path {
            file: file.to_owned(),
            value: path,
        });
    }
    let metrics_bind = match section.metrics_bind {
        None => None,
        Some(value) => Some(value.trim().parse::<SocketAddr>().map_err(|_| {
            ObservabilityConfigError::Bind {
                file: file.to_owned(),
                value,
            }
        })?),
    };
    Ok(Some(ObservabilitySettings {
        metrics: path,
        metrics_bind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(metrics: Option<&str>, bind: Option<&str>) -> ObservabilitySection {
        ObservabilitySection {
            metrics: metrics.map(str::to_owned),
            metrics_bind: bind.map(str::to_owned),
        }
    }

    #[test]
    fn resolves() {
        assert_eq!(resolve(section(None, None), "nitro.toml").unwrap(), None);
        let on = resolve(section(Some("/__nitro/metrics"), None), "nitro.toml")
            .unwrap()
            .unwrap();
        assert_eq!(on.metrics, "/__nitro/metrics");
        assert_eq!(on.endpoint().bind, None);
        let private = resolve(
            section(Some("/metrics"), Some("127.0.0.1:9464")),
            "nitro.toml",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            private.metrics_bind,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        // Recorded in `nitro.json` and read back.
        let json = serde_json::to_string(&private).unwrap();
        assert_eq!(
            json,
            r#"{"metrics":"/metrics","metrics_bind":"127.0.0.1:9464"}"#
        );
        assert_eq!(
            serde_json::from_str::<ObservabilitySettings>(&json).unwrap(),
            private
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        for bad in ["metrics", "/", "/a?b", "/a b"] {
            let error = resolve(section(Some(bad), None), "nitro.toml").unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "`metrics` in `[observability]` of `nitro.toml` is `{bad}`: it must be a path such as `/__nitro/metrics`"
                )
            );
        }
        let error = resolve(section(Some("/m"), Some("localhost")), "nitro.toml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`metrics_bind` in `[observability]` of `nitro.toml` is `localhost`, which is not an address with a port"
        );
        assert!(error.hint().unwrap().contains("127.0.0.1:9464"));
        let error = resolve(section(None, Some("127.0.0.1:1")), "nitro.toml").unwrap_err();
        assert!(matches!(
            error,
            ObservabilityConfigError::BindWithoutPath { .. }
        ));
    }
}
