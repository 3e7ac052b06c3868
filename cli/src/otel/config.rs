//! Whether, and where, traces and metrics are exported: read from OpenTelemetry's standard
//! environment variables. Pure (the variables come through a lookup function), so every rule is
//! unit-tested.
//!
//! Export of each [`Signal`] is opt-in: on when its own endpoint
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) or the common
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or when `OTEL_TRACES_EXPORTER=otlp` /
//! `OTEL_METRICS_EXPORTER=otlp` asks for it (then to the spec's default, `http://localhost:4318`).
//! `OTEL_SDK_DISABLED=true` turns both off, `OTEL_TRACES_EXPORTER=none` /
//! `OTEL_METRICS_EXPORTER=none` one. What the trace exporter crate reads itself (the headers,
//! the sampler, the batch sizes, the resource) is not looked at here; the metrics, which nitro
//! sends itself, also read their headers and `OTEL_METRIC_EXPORT_INTERVAL` here
//! ([`metrics_settings`]).

use std::time::Duration;

/// The spec's default OTLP/HTTP endpoint.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// The spec's default export timeout.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The spec's default time between two exports of the metrics.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// `traces`, `metrics`: in messages and in the URL path.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// The signal's own variable `OTEL_{middle}_{signal}{suffix}`: `var("EXPORTER_OTLP",
    /// "_ENDPOINT")` is `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    fn var(self, middle: &str, suffix: &str) -> String {
        format!("OTEL_{middle}_{}{suffix}", self.name().to_ascii_uppercase())
    }
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No export (nothing set, or turned off).
    Off,
    /// Export to `url` (the signal's URL, `/v1/traces` or `/v1/metrics` appended to a base
    /// endpoint).
    On { url: String, timeout: Duration },
    /// Asked for, but not something nitro can do: the warning to show; no export.
    Unsupported(String),
}

/// Reads the decision for `signal` from the variables `var` gives (`None` for unset; an empty
/// value counts as unset, as the spec says).
pub(crate) fn decide(signal: Signal, var: impl Fn(&str) -> Option<String>) -> Decision {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let what = signal.name();
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Decision::Off;
    }
    let mut asked = false;
    let exporter_var = format!("OTEL_{}_EXPORTER", what.to_ascii_uppercase());
    if let Some(exporters) = var(&exporter_var) {
        let mut others = Vec::new();
        for name in exporters
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            match name {
                "otlp" => asked = true,
                "none" => return Decision::Off,
                other => others.push(other),
            }
        }
        if !asked && !others.is_empty() {
            let hint = if signal == Signal::Metrics && others.contains(&"prometheus") {
                "nitro serves Prometheus metrics itself: set `[observability] metrics` in `nitro.toml` (docs/deploy.md), and unset this variable or set it to `otlp` to also send them over OTLP"
            } else {
                "nitro exports with `otlp` only (or `none`)"
            };
            return Decision::Unsupported(format!(
                "`{exporter_var}={exporters}`: {hint}; not exporting {what}"
            ));
        }
    }
    let endpoint_var = signal.var("EXPORTER_OTLP", "_ENDPOINT");
    let (url, variable) = if let Some(url) = var(&endpoint_var) {
        // The signal's own variable is the full URL, used as is.
        (url.trim().to_owned(), endpoint_var)
    } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        (
            signal_url(signal, &base),
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        )
    } else if asked {
        (signal_url(signal, DEFAULT_ENDPOINT), exporter_var)
    } else {
        return Decision::Off;
    };
    let protocol_var = signal.var("EXPORTER_OTLP", "_PROTOCOL");
    let protocol = var(&protocol_var)
        .map(|p| (protocol_var.as_str(), p))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|p| ("OTEL_EXPORTER_OTLP_PROTOCOL", p)));
    if let Some((name, protocol)) = protocol
        && protocol.trim() != "http/protobuf"
    {
        return Decision::Unsupported(format!(
            "`{name}={protocol}`: nitro sends {what} with `http/protobuf` only (to port 4318 of a collector); not exporting {what}"
        ));
    }
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| scheme.eq_ignore_ascii_case("http") && !rest.is_empty());
    if !scheme_ok || url.parse::<http::Uri>().is_err() {
        let hint = if url.to_ascii_lowercase().starts_with("https://") {
            format!(
                "nitro sends {what} over plain `http://` only: send them to a collector next to the server (it can forward them over TLS)"
            )
        } else {
            "expected a URL such as `http://localhost:4318`".to_owned()
        };
        return Decision::Unsupported(format!("`{variable}={url}`: {hint}; not exporting {what}"));
    }
    let timeout = var(&signal.var("EXPORTER_OTLP", "_TIMEOUT"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    Decision::On { url, timeout }
}

/// The signal's URL under a base endpoint: `/v1/traces` or `/v1/metrics` appended to its path.
fn signal_url(signal: Signal, base: &str) -> String {
    format!("{}/v1/{}", base.trim().trim_end_matches('/'), signal.name())
}

/// What the metrics' export reads besides [`decide`]'s: nitro sends them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricsSettings {
    /// `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds; default a minute).
    pub(crate) interval: Duration,
    /// `OTEL_EXPORTER_OTLP_HEADERS`, with `OTEL_EXPORTER_OTLP_METRICS_HEADERS` over it (a
    /// header named in both takes the latter's value).
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// Reads [`MetricsSettings`]; a value nitro cannot use is the warning to show (the metrics are
/// then not exported).
pub(crate) fn metrics_settings(
    var: impl Fn(&str) -> Option<String>,
) -> Result<MetricsSettings, String> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let interval = match var("OTEL_METRIC_EXPORT_INTERVAL") {
        None => DEFAULT_INTERVAL,
        Some(ms) => match ms.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                return Err(format!(
                    "`OTEL_METRIC_EXPORT_INTERVAL={ms}`: expected milliseconds above 0, such as `60000`; not exporting metrics"
                ));
            }
        },
    };
    let mut headers: Vec<(http::HeaderName, http::HeaderValue)> = Vec::new();
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    ] {
        let Some(list) = var(name) else { continue };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(key, value)| {
                let value = percent_encoding::percent_decode_str(value.trim())
                    .decode_utf8()
                    .ok()?;
                Some((
                    http::HeaderName::from_bytes(key.trim().as_bytes()).ok()?,
                    http::HeaderValue::from_str(&value).ok()?,
                ))
            });
            let Some((key, value)) = parsed else {
                return Err(format!(
                    "`{name}`: `{entry}` is not a header (expected `key=value,key=value`, values URL-encoded); not exporting metrics"
                ));
            };
            headers.retain(|(k, _)| *k != key);
            headers.push((key, value));
        }
    }
    Ok(MetricsSettings { interval, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn with(vars: &[(&str, &str)]) -> Decision {
        decide(Signal::Traces, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn on(url: &str) -> Decision {
        Decision::On {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn export_is_opt_in() {
        assert_eq!(with(&[]), Decision::Off);
        assert_eq!(with(&[("OTEL_SERVICE_NAME", "shop")]), Decision::Off);
        assert_eq!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Decision::Off);
    }

    #[test]
    fn the_endpoint_variables() {
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            on("http://collector:4318/v1/traces")
        );
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base/")]),
            on("http://collector:4318/base/v1/traces")
        );
        // The signal's own variable wins, as it is.
        assert_eq!(
            with(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://collector:4318/in"
                ),
            ]),
            on("http://collector:4318/in")
        );
        assert_eq!(
            with(&[("OTEL_TRACES_EXPORTER", "otlp")]),
            on("http://localhost:4318/v1/traces")
        );
        assert_eq!(
            with(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ]),
            Decision::On {
                url: "http://c:4318/v1/traces".into(),
                timeout: Duration::from_millis(2500),
            }
        );
    }

    #[test]
    fn turned_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(
            with(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            Decision::Off
        );
        assert_eq!(
            with(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]),
            Decision::Off
        );
        assert_eq!(
            with(&[endpoint, ("OTEL_SDK_DISABLED", "false")]),
            on("http://c:4318/v1/traces")
        );
    }

    #[test]
    fn what_nitro_cannot_do_is_said() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let said = |d: Decision, needle: &str| match d {
            Decision::Unsupported(message) => assert!(message.contains(needle), "{message}"),
            other => panic!("{other:?}"),
        };
        said(
            with(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]),
            "`OTEL_TRACES_EXPORTER=zipkin`",
        );
        said(
            with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            "`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`",
        );
        said(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.vendor.io")]),
            "plain `http://` only",
        );
        said(
            with(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")]),
            "`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector:4318`",
        );
        // `otlp` among others: exported, the others ignored.
        assert_eq!(
            with(&[endpoint, ("OTEL_TRACES_EXPORTER", "console,otlp")]),
            on("http://c:4318/v1/traces")
        );
        assert_eq!(
            with(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
            ]),
            on("http://c:4318/v1/traces")
        );
    }

    fn metrics(vars: &[(&str, &str)]) -> Decision {
        decide(Signal::Metrics, lookup(vars))
    }

    #[test]
    fn metrics_follow_the_same_variables() {
        assert_eq!(metrics(&[]), Decision::Off);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/");
        assert_eq!(metrics(&[endpoint]), on("http://c:4318/v1/metrics"));
        // Their own endpoint, as is; the traces' does not turn them on.
        assert_eq!(
            metrics(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318/in")]),
            on("http://m:4318/in")
        );
        assert_eq!(
            metrics(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:4318/v1/traces"
            )]),
            Decision::Off
        );
        assert_eq!(
            metrics(&[("OTEL_METRICS_EXPORTER", "otlp")]),
            on("http://localhost:4318/v1/metrics")
        );
        // Off for one signal, on for the other.
        let no_metrics = [endpoint, ("OTEL_METRICS_EXPORTER", "none")];
        assert_eq!(metrics(&no_metrics), Decision::Off);
        assert_eq!(with(&no_metrics), on("http://c:4318/v1/traces"));
        let no_traces = [endpoint, ("OTEL_TRACES_EXPORTER", "none")];
        assert_eq!(with(&no_traces), Decision::Off);
        assert_eq!(metrics(&no_traces), on("http://c:4318/v1/metrics"));
        assert_eq!(
            metrics(&[endpoint, ("OTEL_SDK_DISABLED", "true")]),
            Decision::Off
        );
        assert_eq!(
            metrics(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1500"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "9000"),
            ]),
            Decision::On {
                url: "http://c:4318/v1/metrics".into(),
                timeout: Duration::from_millis(1500),
            }
        );
    }

    #[test]
    fn what_nitro_cannot_do_with_metrics_is_said() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let said = |d: Decision, needles: &[&str]| match d {
            Decision::Unsupported(message) => {
                for needle in needles {
                    assert!(message.contains(needle), "{message}");
                }
            }
            other => panic!("{other:?}"),
        };
        said(
            metrics(&[endpoint, ("OTEL_METRICS_EXPORTER", "prometheus")]),
            &[
                "`OTEL_METRICS_EXPORTER=prometheus`",
                "`[observability] metrics`",
            ],
        );
        said(
            metrics(&[endpoint, ("OTEL_METRICS_EXPORTER", "console")]),
            &["`otlp` only", "not exporting metrics"],
        );
        said(
            metrics(&[endpoint, ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")]),
            &[
                "`OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc`",
                "sends metrics",
            ],
        );
        said(
            metrics(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://vendor.io")]),
            &["`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=https://vendor.io`"],
        );
    }

    #[test]
    fn metrics_settings_from_the_variables() {
        let settings = metrics_settings(lookup(&[])).unwrap();
        assert_eq!(settings.interval, DEFAULT_INTERVAL);
        assert!(settings.headers.is_empty());
        let settings = metrics_settings(lookup(&[
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x-team=shop"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "API-Key=metrics"),
        ]))
        .unwrap();
        assert_eq!(settings.interval, Duration::from_millis(250));
        let headers: Vec<(&str, &str)> = settings
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(headers, [("x-team", "shop"), ("api-key", "metrics")]);
        for (name, value, needle) in [
            (
                "OTEL_METRIC_EXPORT_INTERVAL",
                "0",
                "`OTEL_METRIC_EXPORT_INTERVAL=0`",
            ),
            (
                "OTEL_METRIC_EXPORT_INTERVAL",
                "1m",
                "`OTEL_METRIC_EXPORT_INTERVAL=1m`",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key",
                "`api-key` is not a header",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "bad key=1", "`bad key=1`"),
        ] {
            let error = metrics_settings(lookup(&[(name, value)])).unwrap_err();
            assert!(error.contains(needle), "{error}");
        }
    }
}
