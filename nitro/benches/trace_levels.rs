//! What a `tracing` or `log` call in a route costs when the server's level leaves it out, next to
//! one the server records. Not a test: it prints figures and asserts nothing.
//!
//! ```text
//! cargo bench -p nitro --bench trace_levels
//! ```
//!
//! The subscriber is the one every route library gets (`nitro`'s forwarding subscriber, with the
//! host's most verbose level `info`), without a host, so an enabled event is measured up to the
//! host call: its fields collected and converted, as in a route. A disabled call should cost what
//! an empty loop iteration costs: `tracing`'s macros compare the level with the global maximum
//! and never reach the subscriber.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nitro::__private::{abi, install_trace_forwarding};

/// A kind of call: its name and one call.
type Case = (&'static str, fn(u64));

/// Calls of each kind per sample.
const CALLS: u64 = 2_000_000;
/// Samples of each kind; the median is reported.
const SAMPLES: usize = 15;

fn main() {
    install_trace_forwarding(u32::from(abi::level::INFO));
    let cases: [Case; 6] = [
        ("empty loop (the floor)", |i| {
            black_box(i);
        }),
        ("tracing::debug! with two fields, disabled", |i| {
            tracing::debug!(user = black_box(i), order = "A-17", "order placed");
        }),
        ("tracing::trace! in a span, disabled", |i| {
            let span = tracing::trace_span!("lookup", key = black_box(i));
            let _entered = span.enter();
            tracing::trace!("miss");
        }),
        ("log::debug!, disabled", |i| {
            log::debug!("order {} placed", black_box(i));
        }),
        (
            "tracing::info! with two fields, enabled (to the host call)",
            |i| {
                tracing::info!(user = black_box(i), order = "A-17", "order placed");
            },
        ),
        ("log::info!, enabled (to the host call)", |i| {
            log::info!("order {} placed", black_box(i));
        }),
    ];
    println!(
        "nitro trace_levels: the host's level is `info`; median of {SAMPLES} samples of {CALLS} calls (enabled: {} calls)\n",
        CALLS / 100
    );
    println!("| call | ns per call |");
    println!("|---|---|");
    let mut floor = 0.0;
    for (i, (name, call)) in cases.iter().enumerate() {
        // The enabled ones allocate and format: fewer calls keep the run short.
        let calls = if name.contains("enabled (") {
            CALLS / 100
        } else {
            CALLS
        };
        // Warm up (caches, the callsite's interest) before the samples.
        median_ns(calls / 10, *call);
        let ns = median_ns(calls, *call);
        if i == 0 {
            floor = ns;
            println!("| {name} | {ns:.2} |");
        } else if name.contains("disabled") {
            println!("| {name} | {ns:.2} ({:+.2} over the floor) |", ns - floor);
        } else {
            println!("| {name} | {ns:.1} |");
        }
    }
}

/// The median time of one call over [`SAMPLES`] samples of `calls` calls.
fn median_ns(calls: u64, call: fn(u64)) -> f64 {
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for i in 0..calls {
                call(i);
            }
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[SAMPLES / 2].as_secs_f64() * 1e9 / calls as f64
}
