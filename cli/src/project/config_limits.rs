//! The hardening tables of `nitro.toml`: `[limits]`, `[websocket] allowed_origins` and
//! `[dev] allowed_hosts` (what they defend against: `docs/security.md`).
//!
//! Values are checked while the file is read, so a wrong one is reported like any other
//! `nitro.toml` mistake: the key, the table, the file and the line
//! (see [`crate::project::config`]). Sizes are bytes (`1048576`) or a string with a unit (`"1 MiB"`,
//! `"16 KiB"`); durations are seconds (`30`, `0.5`).

use std::fmt;
use std::time::Duration;

use nitro_runtime::Limits;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

/// `[limits]` as written: every key optional, each overriding one default of [`Limits`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsSection {
    #[serde(default, deserialize_with = "size")]
    ws_max_message: Option<usize>,
    #[serde(default, deserialize_with = "size")]
    ws_max_frame: Option<usize>,
    #[serde(default, deserialize_with = "buffer_size")]
    ws_buffer: Option<usize>,
    #[serde(default, deserialize_with = "size")]
    ws_send_queue: Option<usize>,
    #[serde(default, deserialize_with = "seconds")]
    ws_send_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "topic_count")]
    ws_max_topics: Option<usize>,
    #[serde(default, deserialize_with = "seconds")]
    ws_idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "size")]
    max_body: Option<usize>,
    #[serde(default, deserialize_with = "seconds")]
    body_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "header_count")]
    max_headers: Option<usize>,
    #[serde(default, deserialize_with = "head_size")]
    max_header_bytes: Option<usize>,
    #[serde(default, deserialize_with = "seconds")]
    header_read_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    handler_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "thread_count")]
    route_threads: Option<usize>,
    #[serde(default, deserialize_with = "stack_size")]
    route_stack: Option<usize>,
    #[serde(default, deserialize_with = "backlog")]
    listen_backlog: Option<usize>,
}

impl LimitsSection {
    /// The defaults with this table's values applied.
    pub(crate) fn resolve(&self) -> Limits {
        let mut limits = Limits::default();
        fn set<T: Copy>(value: Option<T>, into: &mut T) {
            if let Some(value) = value {
                *into = value;
            }
        }
        set(self.ws_max_message, &mut limits.ws_max_message);
        set(self.ws_max_frame, &mut limits.ws_max_frame);
        set(self.ws_buffer, &mut limits.ws_buffer);
        set(self.ws_send_queue, &mut limits.ws_send_queue);
        set(self.ws_send_timeout, &mut limits.ws_send_timeout);
        set(self.ws_max_topics, &mut limits.ws_max_topics);
        set(self.ws_idle_timeout, &mut limits.ws_idle_timeout);
        set(self.max_body, &mut limits.max_body);
        set(self.body_timeout, &mut limits.body_timeout);
        set(self.max_headers, &mut limits.max_headers);
        set(self.max_header_bytes, &mut limits.max_header_bytes);
        set(self.header_read_timeout, &mut limits.header_read_timeout);
        set(self.handler_timeout, &mut limits.handler_timeout);
        set(self.route_threads, &mut limits.route_threads);
        set(self.route_stack, &mut limits.route_stack);
        if let Some(backlog) = self.listen_backlog {
            limits.listen_backlog = backlog as u32;
        }
        // A frame can never be bigger than the largest message.
        limits.ws_max_frame = limits.ws_max_frame.min(limits.ws_max_message);
        limits
    }
}

/// `[limits]` as a built output's manifest records it (`nitro.json`), so that `nitro start`
/// serves with the limits the project was built with. Sizes in bytes, durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltLimits {
    pub ws_max_message: usize,
    pub ws_max_frame: usize,
    pub ws_buffer: usize,
    pub ws_send_queue: usize,
    /// Recorded since issue 15; older manifests get the defaults.
    #[serde(default = "defaults::ws_send_timeout")]
    pub ws_send_timeout: f64,
    #[serde(default = "defaults::ws_max_topics")]
    pub ws_max_topics: usize,
    pub ws_idle_timeout: f64,
    pub max_body: usize,
    pub body_timeout: f64,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: f64,
    pub handler_timeout: f64,
    pub route_threads: usize,
    #[serde(default = "defaults::route_stack")]
    pub route_stack: usize,
    #[serde(default = "defaults::listen_backlog")]
    pub listen_backlog: u32,
}

/// The defaults of the manifest's newer keys.
mod defaults {
    use nitro_runtime::Limits;

    pub(super) fn ws_send_timeout() -> f64 {
        Limits::default().ws_send_timeout.as_secs_f64()
    }
    pub(super) fn ws_max_topics() -> usize {
        Limits::default().ws_max_topics
    }
    pub(super) fn route_stack() -> usize {
        Limits::default().route_stack
    }
    pub(super) fn listen_backlog() -> u32 {
        Limits::default().listen_backlog
    }
}

impl From<&Limits> for BuiltLimits {
    fn from(limits: &Limits) -> BuiltLimits {
        BuiltLimits {
            ws_max_message: limits.ws_max_message,
            ws_max_frame: limits.ws_max_frame,
            ws_buffer: limits.ws_buffer,
            ws_send_queue: limits.ws_send_queue,
            ws_send_timeout: limits.ws_send_timeout.as_secs_f64(),
            ws_max_topics: limits.ws_max_topics,
            ws_idle_timeout: limits.ws_idle_timeout.as_secs_f64(),
            max_body: limits.max_body,
            body_timeout: limits.body_timeout.as_secs_f64(),
            max_headers: limits.max_headers,
            max_header_bytes: limits.max_header_bytes,
            header_read_timeout: limits.header_read_timeout.as_secs_f64(),
            handler_timeout: limits.handler_timeout.as_secs_f64(),
            route_threads: limits.route_threads,
            route_stack: limits.route_stack,
            listen_backlog: limits.listen_backlog,
        }
    }
}

impl BuiltLimits {
    /// The runtime's limits; a duration that is not a positive number keeps its default.
    pub fn to_limits(&self) -> Limits {
        let mut limits = Limits::default();
        let seconds = |value: f64, into: &mut Duration| {
            if value.is_finite() && value > 0.0 && value <= 86_400.0 {
                *into = Duration::from_secs_f64(value);
            }
        };
        limits.ws_max_message = self.ws_max_message;
        limits.ws_max_frame = self.ws_max_frame;
        limits.ws_buffer = self.ws_buffer;
        limits.ws_send_queue = self.ws_send_queue;
        seconds(self.ws_send_timeout, &mut limits.ws_send_timeout);
        limits.ws_max_topics = self.ws_max_topics;
        seconds(self.ws_idle_timeout, &mut limits.ws_idle_timeout);
        limits.max_body = self.max_body;
        seconds(self.body_timeout, &mut limits.body_timeout);
        limits.max_headers = self.max_headers;
        limits.max_header_bytes = self.max_header_bytes;
        seconds(self.header_read_timeout, &mut limits.header_read_timeout);
        seconds(self.handler_timeout, &mut limits.handler_timeout);
        limits.route_threads = self.route_threads;
        limits.route_stack = self.route_stack;
        limits.listen_backlog = self.listen_backlog;
        limits
    }
}

/// What a key of `[limits]` takes, in words (for [`crate::project::config`]'s messages).
pub(crate) fn expected(key: &str) -> String {
    match key {
        "max_headers" => COUNT_HEADERS.into(),
        "route_threads" => COUNT_THREADS.into(),
        "ws_max_topics" => COUNT_TOPICS.into(),
        "listen_backlog" => COUNT_BACKLOG.into(),
        "route_stack" => SIZE_STACK.into(),
        "max_header_bytes" => SIZE_HEAD.into(),
        "ws_buffer" => SIZE_BUFFER.into(),
        key if key.ends_with("timeout") => SECONDS.into(),
        _ => SIZE.into(),
    }
}

/// `[websocket]`: settings of the project's WebSocket routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebSocketSection {
    pub(crate) allowed_origins: Option<Vec<Origin>>,
    /// `pubsub = { url, channel }` (see [`crate::project::config_pubsub`]), with its place in the file.
    pub(crate) pubsub: Option<toml::Spanned<crate::project::config_pubsub::PubSubSection>>,
}

/// An entry of `[websocket] allowed_origins`: `scheme://host[:port]` or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin(pub(crate) String);

pub(crate) const ORIGINS: &str = "a list of origins such as `[\"https://app.example\", \"http://localhost:5173\"]` (scheme, host and optional port, no path), or `[\"*\"]`";

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Origin, D::Error> {
        let text = String::deserialize(deserializer)?;
        let trimmed = text.trim().trim_end_matches('/');
        let valid = trimmed == "*"
            || ["http://", "https://"].iter().any(|scheme| {
                trimmed.strip_prefix(scheme).is_some_and(|rest| {
                    !rest.is_empty() && !rest.contains(['/', '?', '#', '@', ' '])
                })
            });
        if valid {
            Ok(Origin(trimmed.to_owned()))
        } else {
            Err(de::Error::invalid_value(Unexpected::Str(&text), &ORIGINS))
        }
    }
}

/// An entry of `[dev] allowed_hosts`: a host name, `.domain` for a domain and its subdomains,
/// or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostName(pub(crate) String);

pub(crate) const HOSTS: &str = "a list of host names such as `[\"my-box.local\", \".example.test\"]` (no scheme or port; a leading `.` allows the subdomains too), or `[\"*\"]`";

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HostName, D::Error> {
        let text = String::deserialize(deserializer)?;
        let trimmed = text.trim();
        let valid = trimmed == "*"
            || (!trimmed.is_empty()
                && trimmed
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        if valid {
            Ok(HostName(trimmed.to_ascii_lowercase()))
        } else {
            Err(de::Error::invalid_value(Unexpected::Str(&text), &HOSTS))
        }
    }
}

const SIZE: &str =
    "a size in bytes from 1, as a number (`1048576`) or a string with a unit (`\"1 MiB\"`)";
const SIZE_HEAD: &str =
    "a size of at least 8 KiB, as a number (`16384`) or a string with a unit (`\"16 KiB\"`)";
const SIZE_BUFFER: &str = "a size from 1 KiB to 64 KiB (a buffer each way for every peer), as a number (`4096`) or a string with a unit (`\"4 KiB\"`)";
const SIZE_STACK: &str =
    "a size from 256 KiB to 1 GiB, as a number or a string with a unit (`\"16 MiB\"`)";
const SECONDS: &str = "a number of seconds greater than 0 and at most 86400, such as `30` or `0.5`";
const COUNT_HEADERS: &str = "a whole number from 1 to 10000";
const COUNT_THREADS: &str = "a whole number from 1 to 512";
const COUNT_TOPICS: &str = "a whole number from 1 to 1000000";
const COUNT_BACKLOG: &str = "a whole number from 1 to 65535";

/// Parses `"1 MiB"`, `"16KiB"`, `"512 B"`, `"2 MB"`, `"1024"`.
pub(crate) fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

struct SizeVisitor {
    min: usize,
    max: usize,
    expected: &'static str,
}

impl Visitor<'_> for SizeVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<usize, E> {
        match usize::try_from(value) {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(E::invalid_value(Unexpected::Signed(value), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<usize, E> {
        match usize::try_from(value) {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<usize, E> {
        match parse_size(value) {
            Some(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(E::invalid_value(Unexpected::Str(value), &self)),
        }
    }
}

fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(SizeVisitor {
            min: 1,
            max: usize::MAX,
            expected: SIZE,
        })
        .map(Some)
}

fn head_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(SizeVisitor {
            min: 8 << 10,
            max: usize::MAX,
            expected: SIZE_HEAD,
        })
        .map(Some)
}

fn buffer_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(SizeVisitor {
            min: Limits::MIN_WS_BUFFER,
            max: Limits::MAX_WS_BUFFER,
            expected: SIZE_BUFFER,
        })
        .map(Some)
}

fn stack_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(SizeVisitor {
            min: 256 << 10,
            max: 1 << 30,
            expected: SIZE_STACK,
        })
        .map(Some)
}

struct SecondsVisitor;

impl SecondsVisitor {
    fn check<E: de::Error>(seconds: f64, unexpected: Unexpected<'_>) -> Result<Duration, E> {
        if seconds > 0.0 && seconds <= 86_400.0 {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(E::invalid_value(unexpected, &SECONDS))
        }
    }
}

impl Visitor<'_> for SecondsVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECONDS)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
        Self::check(value as f64, Unexpected::Signed(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
        Self::check(value as f64, Unexpected::Unsigned(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Duration, E> {
        Self::check(value, Unexpected::Float(value))
    }
}

fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    deserializer.deserialize_any(SecondsVisitor).map(Some)
}

struct CountVisitor {
    max: usize,
    expected: &'static str,
}

impl Visitor<'_> for CountVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<usize, E> {
        match usize::try_from(value) {
            Ok(n) if (1..=self.max).contains(&n) => Ok(n),
            _ => Err(E::invalid_value(Unexpected::Signed(value), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<usize, E> {
        match usize::try_from(value) {
            Ok(n) if (1..=self.max).contains(&n) => Ok(n),
            _ => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
        }
    }
}

fn header_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(CountVisitor {
            max: 10_000,
            expected: COUNT_HEADERS,
        })
        .map(Some)
}

fn topic_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(CountVisitor {
            max: 1_000_000,
            expected: COUNT_TOPICS,
        })
        .map(Some)
}

fn backlog<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(CountVisitor {
            max: 65_535,
            expected: COUNT_BACKLOG,
        })
        .map(Some)
}

fn thread_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    deserializer
        .deserialize_any(CountVisitor {
            max: 512,
            expected: COUNT_THREADS,
        })
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1 MiB"), Some(1 << 20));
        assert_eq!(parse_size("16KiB"), Some(16 << 10));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size(" 2 mb "), Some(2_000_000));
        assert_eq!(parse_size("1.5 MiB"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1 parsec"), None);
        assert_eq!(parse_size("99999999999999999999 GiB"), None);
    }
}
