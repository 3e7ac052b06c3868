//! Whether, and where, traces are exported: read from OpenTelemetry's standard environment
//! variables. Pure (the variables come through a lookup function), so every rule is unit-tested.
//!
//! Export is opt-in: on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or when `OTEL_TRACES_EXPORTER=otlp` asks for it (then
//! to the spec's default, `http://localhost:4318`). `OTEL_SDK_DISABLED=true` and
//! `OTEL_TRACES_EXPORTER=none` turn it off. What the exporter crate reads itself (the headers,
//! the sampler, the batch sizes, the resource) is not looked at here.

use std::time::Duration;

/// The spec's default OTLP/HTTP endpoint.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// The spec's default export timeout.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No export (nothing set, or turned off).
    Off,
    /// Export to `url` (the traces URL, `/v1/traces` appended to a base endpoint).
    On { url: String, timeout: Duration },
    /// Asked for, but not something nitro can do: the warning to show; no export.
    Unsupported(String),
}

/// Reads the decision from the variables `var` gives (`None` for unset; an empty value counts
/// as unset, as the spec says).
pub(crate) fn decide(var: impl Fn(&str) -> Option<String>) -> Decision {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Decision::Off;
    }
    let mut asked = false;
    if let Some(exporters) = var("OTEL_TRACES_EXPORTER") {
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
            return Decision::Unsupported(format!(
                "`OTEL_TRACES_EXPORTER={exporters}`: nitro exports traces with `otlp` only (or `none`); not exporting"
            ));
        }
    }
    let (url, variable) = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        // The signal's own variable is the full URL, used as is.
        (url.trim().to_owned(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        (traces_url(&base), "OTEL_EXPORTER_OTLP_ENDPOINT")
    } else if asked {
        (traces_url(DEFAULT_ENDPOINT), "OTEL_TRACES_EXPORTER")
    } else {
        return Decision::Off;
    };
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .map(|p| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|p| ("OTEL_EXPORTER_OTLP_PROTOCOL", p)));
    if let Some((name, protocol)) = protocol
        && protocol.trim() != "http/protobuf"
    {
        return Decision::Unsupported(format!(
            "`{name}={protocol}`: nitro sends traces with `http/protobuf` only (to port 4318 of a collector); not exporting"
        ));
    }
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| scheme.eq_ignore_ascii_case("http") && !rest.is_empty());
    if !scheme_ok || url.parse::<http::Uri>().is_err() {
        let hint = if url.to_ascii_lowercase().starts_with("https://") {
            "nitro sends traces over plain `http://` only: send them to a collector next to the server (it can forward them over TLS)"
        } else {
            "expected a URL such as `http://localhost:4318`"
        };
        return Decision::Unsupported(format!("`{variable}={url}`: {hint}; not exporting"));
    }
    let timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    Decision::On { url, timeout }
}

/// The traces URL of a base endpoint: `/v1/traces` appended to its path.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Decision {
        decide(|name| {
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
}
