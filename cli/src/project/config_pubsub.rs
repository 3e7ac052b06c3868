//! `[websocket] pubsub`: relaying WebSocket publishes between instances through Redis
//! (`docs/deploy.md`).
//!
//! ```toml
//! [websocket]
//! pubsub = { url = "redis://127.0.0.1:6379", channel = "chat-app" }
//! ```
//!
//! `channel` is required (as in crossws: a shared default could silently bridge unrelated apps
//! on one Redis). The URL comes from `url`, or from `NITRO_PUBSUB_URL`, which wins, so that one
//! built output runs in several environments and passwords stay out of files. `nitro build`
//! records the table in `nitro.json`; `nitro dev` and `nitro start` attach the backplane to the
//! server's hub before it listens. A URL is checked where it is read, and a bad one is an error
//! naming the key or the variable.

use std::time::Duration;

use nitro_runtime::ws::backplane::{DEFAULT_QUEUE, PubSubConfig, PubSubError};
use serde::{Deserialize, Serialize};

/// The environment variable that gives (and overrides) the URL.
pub const URL_ENV: &str = "NITRO_PUBSUB_URL";

/// The largest `queue`.
const MAX_QUEUE: i64 = 10_000_000;

/// `pubsub = { … }` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PubSubSection {
    url: Option<String>,
    channel: Option<String>,
    queue: Option<i64>,
    stats_interval: Option<f64>,
}

/// `[websocket] pubsub`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PubSubSettings {
    /// `url` in `nitro.toml` (checked), if any.
    pub url: Option<String>,
    pub channel: String,
    /// How many publishes may wait for Redis before new ones are dropped.
    pub queue: usize,
    /// How often the counters are logged (when they changed); `None`: only at shutdown.
    pub stats_interval: Option<Duration>,
}

/// A mistake in the pub/sub settings.
#[derive(Debug, thiserror::Error)]
pub enum PubSubConfigError {
    #[error(
        "`pubsub` in `[websocket]` of `{location}` has no `channel`: every instance of the app must name the same Redis channel"
    )]
    NoChannel { location: String },
    #[error("`{key}` of `pubsub` in `[websocket]` of `{location}` must be {expected}")]
    Value {
        location: String,
        key: &'static str,
        expected: &'static str,
    },
    /// A URL that is not a Redis URL; `source_name` says where it came from.
    #[error("{source_name} is `{value}`, which is not a Redis URL: {reason}")]
    Url {
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("`pubsub` in `[websocket]` of `{location}` has no `url`, and `{URL_ENV}` is not set")]
    NoUrl { location: String },
}

impl PubSubConfigError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PubSubConfigError::NoChannel { .. } => {
                "for example `pubsub = { url = \"redis://127.0.0.1:6379\", channel = \"my-app\" }`; see `docs/config.md`".into()
            }
            PubSubConfigError::Value { .. } => "see `docs/config.md`".into(),
            PubSubConfigError::Url { .. } => {
                "write it as `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS; see `docs/deploy.md`".into()
            }
            PubSubConfigError::NoUrl { .. } => format!(
                "set `{URL_ENV}=redis://host:6379`, or add `url = \"redis://…\"` to the `pubsub` table"
            ),
        })
    }
}

/// Checks the table read from `location` (`nitro.toml:3`) and the `NITRO_PUBSUB_URL` of the
/// environment.
pub(crate) fn resolve(
    section: PubSubSection,
    location: &str,
    env_url: Option<&str>,
) -> Result<PubSubSettings, PubSubConfigError> {
    let channel = section
        .channel
        .filter(|channel| !channel.trim().is_empty())
        .ok_or_else(|| PubSubConfigError::NoChannel {
            location: location.to_owned(),
        })?;
    if let Some(url) = &section.url {
        check_url(url, &channel, || {
            format!("`url` of `pubsub` in `[websocket]` of `{location}`")
        })?;
    }
    if let Some(url) = env_url {
        check_url(url, &channel, || {
            format!("environment variable `{URL_ENV}`")
        })?;
    }
    let queue = match section.queue {
        None => DEFAULT_QUEUE,
        Some(n) if (1..=MAX_QUEUE).contains(&n) => n as usize,
        Some(_) => {
            return Err(PubSubConfigError::Value {
                location: location.to_owned(),
                key: "queue",
                expected: "a whole number of messages from 1 to 10000000",
            });
        }
    };
    let stats_interval = match section.stats_interval {
        None => Some(nitro_runtime::ws::backplane::DEFAULT_STATS_INTERVAL),
        Some(0.0) => None,
        Some(seconds) if seconds > 0.0 && seconds <= 86_400.0 => {
            Some(Duration::from_secs_f64(seconds))
        }
        Some(_) => {
            return Err(PubSubConfigError::Value {
                location: location.to_owned(),
                key: "stats_interval",
                expected: "a number of seconds from 0 (never) to 86400, such as `60`",
            });
        }
    };
    Ok(PubSubSettings {
        url: section.url,
        channel,
        queue,
        stats_interval,
    })
}

fn check_url(
    url: &str,
    channel: &str,
    source_name: impl FnOnce() -> String,
) -> Result<PubSubConfig, PubSubConfigError> {
    PubSubConfig::new(url, channel).map_err(|error| match error {
        PubSubError::Url { url, reason } => PubSubConfigError::Url {
            source_name: source_name(),
            value: url,
            reason,
        },
        other => PubSubConfigError::Url {
            source_name: source_name(),
            value: String::new(),
            reason: other.to_string(),
        },
    })
}

impl PubSubSettings {
    /// The runtime's config: the URL of `NITRO_PUBSUB_URL` (`env_url`) or else of the file.
    /// `location` names where the table was written, for the error when there is no URL.
    pub fn runtime(
        &self,
        env_url: Option<&str>,
        location: &str,
    ) -> Result<PubSubConfig, PubSubConfigError> {
        let (url, source_name) = match (env_url, &self.url) {
            (Some(url), _) => (url, format!("environment variable `{URL_ENV}`")),
            (None, Some(url)) => (
                url.as_str(),
                format!("`url` of `pubsub` in `[websocket]` of `{location}`"),
            ),
            (None, None) => {
                return Err(PubSubConfigError::NoUrl {
                    location: location.to_owned(),
                });
            }
        };
        let mut config = check_url(url, &self.channel, || source_name)?;
        config.queue = self.queue;
        config.stats_interval = self.stats_interval;
        Ok(config)
    }
}

/// `[websocket] pubsub` as `nitro.json` records it (the URL as written in `nitro.toml`, if
/// any; `NITRO_PUBSUB_URL` at `nitro start` wins over it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltPubSub {
    pub url: Option<String>,
    pub channel: String,
    pub queue: usize,
    /// Seconds; `null`: the counters are logged only at shutdown.
    pub stats_interval: Option<f64>,
}

impl From<&PubSubSettings> for BuiltPubSub {
    fn from(settings: &PubSubSettings) -> BuiltPubSub {
        BuiltPubSub {
            url: settings.url.clone(),
            channel: settings.channel.clone(),
            queue: settings.queue,
            stats_interval: settings.stats_interval.map(|d| d.as_secs_f64()),
        }
    }
}

impl BuiltPubSub {
    pub fn settings(&self) -> PubSubSettings {
        PubSubSettings {
            url: self.url.clone(),
            channel: self.channel.clone(),
            queue: self.queue.max(1),
            stats_interval: self
                .stats_interval
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64),
        }
    }
}

/// `NITRO_PUBSUB_URL`, when set and not empty.
pub fn env_url() -> Option<String> {
    std::env::var(URL_ENV).ok().filter(|v| !v.trim().is_empty())
}
