//! The request duration histogram: fixed buckets of relaxed atomic counters, rendered in
//! Prometheus's text format next to what the `metrics` exporter renders.
//!
//! The exporter's own histograms keep every observation (with a timestamp) in a lock-free list
//! until the next scrape or upkeep sums them: about 60 ns per request on the benchmark machine,
//! the largest part of the metrics' cost. Here an observation is three atomic adds (its bucket,
//! the sum, the count), and a scrape reads the counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram of durations with fixed upper bounds (in seconds, ascending).
#[derive(Debug)]
pub(crate) struct DurationHistogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound (`+Inf`).
    buckets: Box<[AtomicU64]>,
    /// The sum of the observations, in nanoseconds.
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl DurationHistogram {
    pub(crate) fn new(bounds: &'static [f64]) -> DurationHistogram {
        DurationHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub(crate) fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        // `le` is inclusive: a value equal to a bound counts in that bound's bucket.
        let bucket = self.bounds.partition_point(|&bound| bound < seconds);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the histogram's samples with the label `label="value"`: a `_bucket` line per
    /// bound and `+Inf` (cumulative), `_sum` (seconds) and `_count`. The counters are read one
    /// by one while requests go on, so a scrape may see a count one ahead of its buckets: the
    /// buckets' total is written as the count, so the `+Inf` bucket and `_count` always agree.
    pub(crate) fn render(&self, out: &mut String, name: &str, label: &str, value: &str) {
        let value = escape_label(value);
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {cumulative}");
    }

    /// Whether nothing was observed (a family without samples is not rendered).
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }
}

/// A label value as Prometheus's text format writes it: `\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.001, 0.01, 0.1];

    #[test]
    fn observations_land_in_their_buckets_and_render_cumulatively() {
        let histogram = DurationHistogram::new(BOUNDS);
        assert!(histogram.is_empty());
        for took in [
            Duration::from_micros(200),
            Duration::from_millis(1), // on a bound: in that bucket (`le` is inclusive)
            Duration::from_millis(5),
            Duration::from_millis(50),
            Duration::from_secs(2),
        ] {
            histogram.observe(took);
        }
        let mut out = String::new();
        histogram.render(&mut out, "t_seconds", "route", "/a/\"b\"\\c");
        assert_eq!(
            out,
            "t_seconds_bucket{route=\"/a/\\\"b\\\"\\\\c\",le=\"0.001\"} 2\n\
             t_seconds_bucket{route=\"/a/\\\"b\\\"\\\\c\",le=\"0.01\"} 3\n\
             t_seconds_bucket{route=\"/a/\\\"b\\\"\\\\c\",le=\"0.1\"} 4\n\
             t_seconds_bucket{route=\"/a/\\\"b\\\"\\\\c\",le=\"+Inf\"} 5\n\
             t_seconds_sum{route=\"/a/\\\"b\\\"\\\\c\"} 2.0562\n\
             t_seconds_count{route=\"/a/\\\"b\\\"\\\\c\"} 5\n"
        );
        assert!(!histogram.is_empty());
    }
}
