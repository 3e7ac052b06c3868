//! What the server's instrumentation of one HTTP request costs: the request's record and span,
//! the request log's line, the metrics. Not a test: it prints figures and asserts nothing.
//!
//! ```text
//! cargo bench -p nitro-cli --bench request_instrumentation
//! ```
//!
//! Each case runs in a process of its own (this binary runs itself once per case), with the
//! subscriber `nitro start` installs as the process's global one, as the server has it:
//! `nitro_runtime::telemetry::RequestTelemetry` around a handler that answers at once, in a
//! loop on a one-thread tokio runtime. The request log's lines collect in memory (emptied every
//! 1024 requests) instead of going to stderr, which a background thread writes in the server.
//! What a case costs over `off` is the instrumentation's share of a request: divide it by the
//! server's CPU per request without instrumentation (`nitro-bench compare --instrumentation`
//! prints both; docs/benchmarks.md has the figures).

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use http::{Request, Response};
use nitro_runtime::telemetry::{RequestTelemetry, metrics, span};

/// Requests per sample.
const REQUESTS: u64 = 200_000;
/// Samples per case; the median is reported.
const SAMPLES: usize = 11;

/// A case: its name, and what it turns on.
struct Case {
    key: &'static str,
    title: &'static str,
    /// The log's level is `info` (else `warn`, as with `-q`) and the request log is on.
    log: bool,
    json: bool,
    metrics: bool,
    /// The handler is a route's (its pattern and file recorded).
    routed: bool,
    /// The request's span is opened (a route that logs, or a sync route).
    span: bool,
}

const CASES: [Case; 7] = [
    Case {
        key: "off",
        title: "nothing (`-q`, no metrics): the floor",
        log: false,
        json: false,
        metrics: false,
        routed: false,
        span: false,
    },
    Case {
        key: "metrics",
        title: "metrics only (`-q`, `[observability] metrics`)",
        log: false,
        json: false,
        metrics: true,
        routed: false,
        span: false,
    },
    Case {
        key: "log",
        title: "request log (`nitro start`), no metrics",
        log: true,
        json: false,
        metrics: false,
        routed: false,
        span: false,
    },
    Case {
        key: "all",
        title: "request log and metrics: a file or the page",
        log: true,
        json: false,
        metrics: true,
        routed: false,
        span: false,
    },
    Case {
        key: "all-json",
        title: "the same, `--log-format json`",
        log: true,
        json: true,
        metrics: true,
        routed: false,
        span: false,
    },
    Case {
        key: "all-routed",
        title: "request log and metrics, a route that logs nothing",
        log: true,
        json: false,
        metrics: true,
        routed: true,
        span: false,
    },
    Case {
        key: "all-span",
        title: "request log and metrics, a route whose span is opened (it logs, or is a sync `fn`)",
        log: true,
        json: false,
        metrics: true,
        routed: true,
        span: true,
    },
];

fn main() {
    // `cargo bench` passes `--bench`; a case's process gets `--case KEY`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let key = args.get(i + 1).map(String::as_str).unwrap_or_default();
        let case = CASES
            .iter()
            .find(|c| c.key == key)
            .unwrap_or_else(|| panic!("no case `{key}`"));
        println!("{}", run(case));
        return;
    }
    println!(
        "nitro-cli request_instrumentation: median of {SAMPLES} samples of {REQUESTS} requests, a process per case\n"
    );
    println!("| instrumentation | ns per request | over `off` |");
    println!("|---|---|---|");
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut floor = 0.0;
    for case in &CASES {
        let out = Command::new(&exe)
            .args(["--case", case.key])
            .output()
            .expect("the bench runs itself");
        let text = String::from_utf8_lossy(&out.stdout);
        let ns: f64 = text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "case `{}` printed `{text}`: {}",
                case.key,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        if case.key == "off" {
            floor = ns;
        }
        println!("| {} | {ns:.0} | {:+.0} |", case.title, ns - floor);
    }
}

/// Runs `case` in this process: its median ns per request.
fn run(case: &Case) -> f64 {
    let lines = nitro_cli::__bench::install_log(case.json, case.log);
    if case.metrics {
        metrics::install().expect("the metrics recorder");
    }
    let request = Request::get("/users/42?tab=orders")
        .header("host", "127.0.0.1:3000")
        .header("accept", "text/html,application/xhtml+xml")
        .header("user-agent", "nitro-bench")
        .body(())
        .expect("a valid request");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (routed, open_span) = (case.routed, case.span);
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            runtime.block_on(async {
                let started = Instant::now();
                for i in 0..REQUESTS {
                    let telemetry = RequestTelemetry::start(black_box(&request));
                    let response = telemetry
                        .serve(async {
                            if routed {
                                span::record_route("/users/:id", "routes/users/[id].get.rs");
                            }
                            if open_span {
                                span::enter_request_span();
                            }
                            Response::new(())
                        })
                        .await;
                    black_box(response);
                    if i % 1024 == 0 {
                        black_box(lines.drain());
                    }
                }
                started.elapsed().as_nanos() as f64 / REQUESTS as f64
            })
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}
