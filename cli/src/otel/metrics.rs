//! OTLP export of the server's metrics: the ones `[observability] metrics` serves to
//! Prometheus (`nitro_runtime::telemetry::metrics`), posted to `/v1/metrics` every
//! `OTEL_METRIC_EXPORT_INTERVAL`, and once more when the server stops.
//!
//! The numbers are read, not recorded twice: at each export the exporter takes a
//! [`snapshot`](nitro_runtime::telemetry::metrics::snapshot) (the values a scrape would get
//! now) and turns it into one OTLP request ([`to_request`]), with cumulative temporality:
//! a counter is a monotonic `Sum`, the open peers a `Gauge`, the request durations a
//! `Histogram` with the same buckets. A request pays nothing for the export (it pays the
//! metrics themselves, which the export turns on); the reading runs on the exporter's thread.
//!
//! OpenTelemetry's SDK is not used for this: its instruments record values one by one, and the
//! values here are already aggregated (a histogram's buckets) by the recorder the hot path
//! writes to. The request goes through the same [`Client`] as the spans (said once when the
//! collector does not answer; a later export carries the totals).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use nitro_runtime::telemetry::metrics::{Family, Value, names};
use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::client::Client;

/// Where the values come from: the server's metrics, with its open peers read now.
pub(crate) type Source = Box<dyn Fn() -> Option<Vec<Family>> + Send + Sync>;

/// Posts the metrics; see the module docs.
pub(crate) struct Exporter {
    client: Client,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    resource: Resource,
    /// When counting started: the start of every cumulative series.
    start: SystemTime,
    source: Source,
}

impl Exporter {
    pub(crate) fn new(
        client: Client,
        url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
        source: Source,
    ) -> Exporter {
        // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, read by the SDK as for the spans.
        let resource = opentelemetry_sdk::Resource::builder().build();
        let attributes =
            opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema::from(
                &resource,
            );
        Exporter {
            client,
            url,
            headers,
            resource: Resource {
                attributes: attributes.attributes.0,
                ..Default::default()
            },
            start: SystemTime::now(),
            source,
        }
    }

    /// Sends the metrics as they are now. Failures are said by the client.
    pub(crate) async fn export(&self) {
        let Some(families) = (self.source)() else {
            return;
        };
        let body = to_request(&families, &self.resource, self.start, SystemTime::now());
        let mut request = http::Request::new(Bytes::from(body.encode_to_vec()));
        *request.method_mut() = http::Method::POST;
        let Ok(uri) = self.url.parse() else {
            return;
        };
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let _ = self.client.send_bytes(request).await;
    }
}

/// Exports every `interval` until aborted (the first after one interval).
pub(crate) async fn every(exporter: Arc<Exporter>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        exporter.export().await;
    }
}

/// The OTLP request for `families`: cumulative since `start`, read at `now`.
pub(crate) fn to_request(
    families: &[Family],
    resource: &Resource,
    start: SystemTime,
    now: SystemTime,
) -> ExportMetricsServiceRequest {
    let nanos = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let (start, now) = (nanos(start), nanos(now));
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = families
        .iter()
        .map(|family| {
            let number = |labels: &[(String, String)], value| NumberDataPoint {
                attributes: attributes(labels),
                start_time_unix_nano: start,
                time_unix_nano: now,
                value: Some(value),
                ..Default::default()
            };
            let mut counters = Vec::new();
            let mut gauges = Vec::new();
            let mut histograms = Vec::new();
            for series in &family.series {
                match &series.value {
                    Value::Counter(total) => counters.push(number(
                        &series.labels,
                        number_data_point::Value::AsInt(i64::try_from(*total).unwrap_or(i64::MAX)),
                    )),
                    Value::Gauge(value) => gauges.push(number(
                        &series.labels,
                        number_data_point::Value::AsDouble(*value),
                    )),
                    Value::Histogram {
                        bounds,
                        counts,
                        count,
                        sum,
                    } => histograms.push(HistogramDataPoint {
                        attributes: attributes(&series.labels),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: *count,
                        sum: Some(*sum),
                        bucket_counts: counts.clone(),
                        explicit_bounds: bounds.clone(),
                        ..Default::default()
                    }),
                }
            }
            // One kind per family (the recorder keeps a name to one kind).
            let data = if !histograms.is_empty() {
                metric::Data::Histogram(Histogram {
                    data_points: histograms,
                    aggregation_temporality: cumulative,
                })
            } else if !gauges.is_empty() {
                metric::Data::Gauge(Gauge {
                    data_points: gauges,
                })
            } else {
                metric::Data::Sum(Sum {
                    data_points: counters,
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                })
            };
            Metric {
                name: family.name.clone(),
                unit: if family.name == names::HTTP_DURATION {
                    "s".into()
                } else {
                    String::new()
                },
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "nitro".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn attributes(labels: &[(String, String)]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.clone())),
            }),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nitro_runtime::telemetry::metrics::Series;

    #[test]
    fn families_become_cumulative_otlp_metrics() {
        let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let families = vec![
            Family {
                name: names::HTTP_DURATION.into(),
                series: vec![Series {
                    labels: labels(&[("route", "/users/:id")]),
                    value: Value::Histogram {
                        bounds: vec![0.1, 1.0],
                        counts: vec![2, 0, 1],
                        count: 3,
                        sum: 4.25,
                    },
                }],
            },
            Family {
                name: names::HTTP_REQUESTS.into(),
                series: vec![Series {
                    labels: labels(&[("method", "GET"), ("route", ""), ("status_class", "4xx")]),
                    value: Value::Counter(7),
                }],
            },
            Family {
                name: names::WS_PEERS_OPEN.into(),
                series: vec![Series {
                    labels: vec![],
                    value: Value::Gauge(2.0),
                }],
            },
        ];
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let now = start + Duration::from_secs(60);
        let resource = Resource::default();
        let request = to_request(&families, &resource, start, now);
        let scope = &request.resource_metrics[0].scope_metrics[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "nitro");
        let [duration, requests, peers] = scope.metrics.as_slice() else {
            panic!("{scope:?}");
        };
        assert_eq!(duration.unit, "s");
        let Some(metric::Data::Histogram(histogram)) = &duration.data else {
            panic!("{duration:?}");
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &histogram.data_points[0];
        assert_eq!(
            (
                point.count,
                point.sum,
                &point.bucket_counts,
                &point.explicit_bounds
            ),
            (3, Some(4.25), &vec![2, 0, 1], &vec![0.1, 1.0])
        );
        assert_eq!(point.start_time_unix_nano, 100_000_000_000);
        assert_eq!(point.time_unix_nano, 160_000_000_000);
        assert_eq!(point.attributes[0].key, "route");

        assert_eq!(requests.name, "nitro_http_requests_total");
        let Some(metric::Data::Sum(sum)) = &requests.data else {
            panic!("{requests:?}");
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(
            sum.data_points[0].value,
            Some(number_data_point::Value::AsInt(7))
        );
        let keys: Vec<&str> = sum.data_points[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["method", "route", "status_class"]);

        let Some(metric::Data::Gauge(gauge)) = &peers.data else {
            panic!("{peers:?}");
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(2.0))
        );
    }
}
