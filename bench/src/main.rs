//! Benchmarks of nitro-rs. Not tests: they report numbers and assert nothing.
//!
//! ```text
//! cargo run --release -p nitro-bench -- reload [--reloads N] [--restarts N] [--nitro PATH]
//! cargo run --release -p nitro-bench -- compare [--secs S] [--repeats N] [--only LIST]
//!     [--idle-peers N] [--client-threads N] [--baseline NITRO] [--metrics] [--instrumentation] [--otlp-metrics] [--node-output DIR] [-q] [--nitro PATH]
//! cargo run --release -p nitro-bench -- load WORKLOAD PORT PID [--secs S]
//! cargo run --release -p nitro-bench -- pubsub [--rounds N] [--messages N] [--nitro PATH]
//! ```
//!
//! `compare` measures `nitro start` (on a `nitro build` of `examples/websocket`) against bare
//! tokio-tungstenite and hyper servers built into this binary ([`reference`]), with one client
//! ([`client`]), in one run; see [`compare`] and `docs/benchmarks.md`.
//!
//! `pubsub` (`pubsub.rs`) measures WebSocket publishes relayed between three `nitro start`
//! instances through a real `redis-server`: latency and throughput.
//!
//! `reload` runs `nitro dev` on a temporary copy of `examples/websocket`, keeps one WebSocket
//! open, and edits one line of `routes/_ws.rs` (the `pong` text) N times (default 200). For
//! each edit it measures the time from the save to the first `ping` answered with the new text
//! over that same, never reconnected, socket, and reads the server's RSS and open file
//! descriptors. Then it restarts `nitro dev` on the warm cache a few times and measures the
//! time from spawn to the first HTTP response. Everything stays on 127.0.0.1.
//!
//! The `nitro` binary is `--nitro PATH`, else `$NITRO_BIN`, else `target/release/nitro` (built
//! with `cargo build --release --bin nitro` when missing). Route builds go to
//! `target/nitro-bench-routes`, so only the first run compiles the routes' dependencies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tungstenite::Message;

mod client;
mod compare;
mod procfs;
mod pubsub;
mod reference;

/// A bound for any one wait (a reload, a start).
const WAIT: Duration = Duration::from_secs(120);

/// What `--help` prints (and a wrong command line, on stderr).
const USAGE: &str = "usage: nitro-bench reload [--reloads N] [--restarts N] [--nitro PATH]\n\
    \x20      nitro-bench compare [--secs S] [--repeats N] [--only ping1,ping50,broadcast,get,idle]\n\
    \x20          [--idle-peers N] [--client-threads N] [--baseline NITRO] [--metrics] [--instrumentation] [--otlp-metrics] [--node-output DIR] [-q] [--nitro PATH]\n\
    \x20      nitro-bench load ping1|ping50|broadcast|get|idle PORT PID [--secs S]\n\
    \x20      nitro-bench pubsub [--rounds N] [--messages N] [--nitro PATH]\n\
    (cargo run --release -p nitro-bench -- compare; see docs/benchmarks.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before anything runs: `compare --help` must not start a 7-minute benchmark.
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let rest = args.get(1..).unwrap_or_default();
    let port = || rest.first().and_then(|p| p.parse().ok()).unwrap_or(0);
    let result = match args.first().map(String::as_str) {
        Some("reload") => reload(rest),
        Some("compare") => compare::run(rest),
        Some("load") => compare::load(rest),
        // The bare servers `compare` starts as child processes.
        Some("ref-ws") => reference::websocket(port()).map_err(|e| e.to_string()),
        Some("ref-http") => match rest.get(1).map(std::fs::read) {
            Some(Ok(page)) => reference::http(port(), page).map_err(|e| e.to_string()),
            Some(Err(e)) => Err(format!("cannot read the page: {e}")),
            None => Err("usage: nitro-bench ref-http PORT FILE".into()),
        },
        Some("pubsub") => pubsub::run(rest),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn nitro_binary(args: &[String]) -> Result<PathBuf> {
    if let Some(path) = flag(args, "--nitro").or_else(|| std::env::var("NITRO_BIN").ok()) {
        return Ok(PathBuf::from(path));
    }
    let root = workspace_root();
    let path = root.join("target/release/nitro");
    eprintln!("building the nitro binary (cargo build --release --bin nitro)…");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "nitro"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !path.exists() {
        return Err("cannot build the nitro binary".into());
    }
    Ok(path)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(src).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if name == ".nitro" || name == "target" {
            continue;
        }
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&entry.path(), &dst.join(&name))?;
        } else {
            std::fs::copy(entry.path(), dst.join(&name)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A running `nitro dev`.
struct Dev {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
    /// Spawn → URL printed.
    ready: Duration,
}

impl Dev {
    fn start(nitro: &Path, dir: &Path) -> Result<Dev> {
        let started = Instant::now();
        let mut child = Command::new(nitro)
            // The server itself, not a supervisor: its memory and descriptors are measured.
            .args(["dev", "--no-supervise", "--port", "0"])
            .arg(dir)
            .env(
                "NITRO_TARGET_DIR",
                workspace_root().join("target/nitro-bench-routes"),
            )
            .env("NO_COLOR", "1")
            .env_remove("PORT")
            .env_remove("HOST")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", nitro.display()))?;
        let (err_tx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                let _ = err_tx.send(line);
            }
        });
        let (out_tx, out_rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let _ = out_tx.send(line);
            }
        });
        let line = out_rx
            .recv_timeout(WAIT)
            .map_err(|_| "nitro dev printed no URL".to_owned())?;
        let ready = started.elapsed();
        std::thread::spawn(move || while out_rx.recv().is_ok() {});
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("no port in {line:?}"))?;
        Ok(Dev {
            child,
            port,
            stderr,
            ready,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines printed on stderr since the last call.
    fn drain_stderr(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /` until it answers; the status.
fn get_root(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn chat_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v["message"].as_str().map(str::to_owned)
}

fn reload(args: &[String]) -> Result<()> {
    let reloads: usize = flag(args, "--reloads")
        .map(|n| n.parse().map_err(|_| "--reloads takes a number"))
        .transpose()?
        .unwrap_or(200);
    let restarts: usize = flag(args, "--restarts")
        .map(|n| n.parse().map_err(|_| "--restarts takes a number"))
        .transpose()?
        .unwrap_or(7);
    let nitro = nitro_binary(args)?;
    let tmp = tempfile::Builder::new()
        .prefix("nitro-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let dir = tmp.path().join("websocket");
    copy_dir(&workspace_root().join("examples/websocket"), &dir)?;
    let route = dir.join("routes/_ws.rs");
    let original = std::fs::read_to_string(&route).map_err(|e| e.to_string())?;
    if !original.contains("\"pong\"") {
        return Err("examples/websocket/routes/_ws.rs has no `\"pong\"` to edit".into());
    }

    eprintln!("starting nitro dev (the first run compiles the routes' dependencies)…");
    let dev = Dev::start(&nitro, &dir)?;
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{}/_ws", dev.port))
        .map_err(|e| format!("cannot connect the WebSocket: {e}"))?;
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    }
    let _welcome = ws.read().map_err(|e| e.to_string())?;

    let mut latencies = Vec::with_capacity(reloads);
    let mut rss = Vec::with_capacity(reloads);
    let mut fds = Vec::with_capacity(reloads);
    let rss_before = procfs::status(dev.pid(), "VmRSS:").unwrap_or(0);
    let fds_before = open_fds(dev.pid()).unwrap_or(0);
    eprintln!("editing routes/_ws.rs {reloads} times…");
    for i in 1..=reloads {
        let want = format!("pong {i}");
        let source = original.replace("\"pong\"", &format!("\"{want}\""));
        let saved = Instant::now();
        std::fs::write(&route, source).map_err(|e| e.to_string())?;
        loop {
            if saved.elapsed() > WAIT {
                return Err(format!(
                    "reload {i} not served after {} s; server said:\n{}",
                    WAIT.as_secs(),
                    dev.drain_stderr().join("\n")
                ));
            }
            ws.send(Message::text("ping")).map_err(|e| e.to_string())?;
            let reply = loop {
                match ws
                    .read()
                    .map_err(|e| format!("the WebSocket failed: {e}"))?
                {
                    Message::Text(t) => break t.to_string(),
                    Message::Close(c) => return Err(format!("the WebSocket was closed: {c:?}")),
                    _ => {}
                }
            };
            if chat_message(&reply).as_deref() == Some(want.as_str()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(saved.elapsed().as_secs_f64() * 1000.0);
        rss.push(procfs::status(dev.pid(), "VmRSS:").unwrap_or(0));
        fds.push(open_fds(dev.pid()).unwrap_or(0));
        if i % 50 == 0 {
            eprintln!("  {i} reloads");
        }
    }
    let rebuilt_lines = dev
        .drain_stderr()
        .iter()
        .filter(|l| l.contains("rebuilt routes/_ws.rs in"))
        .count();
    drop(ws);
    drop(dev);

    // Warm restarts: spawn → URL printed, spawn → first HTTP response.
    let mut ready = Vec::new();
    let mut first_response = Vec::new();
    for _ in 0..restarts {
        let started = Instant::now();
        let dev = Dev::start(&nitro, &dir)?;
        let deadline = Instant::now() + WAIT;
        while get_root(dev.port).is_none() {
            if Instant::now() > deadline {
                return Err("the restarted server never answered".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        first_response.push(started.elapsed().as_secs_f64() * 1000.0);
        ready.push(dev.ready.as_secs_f64() * 1000.0);
    }

    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    first_response.sort_by(f64::total_cmp);
    ready.sort_by(f64::total_cmp);
    let first_rss = *rss.first().unwrap_or(&rss_before);
    let last_rss = *rss.last().unwrap_or(&rss_before);
    let per_reload_kb = if rss.len() > 1 {
        (last_rss as f64 - first_rss as f64) / (rss.len() - 1) as f64
    } else {
        f64::NAN
    };
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "nitro-bench reload ({} on {} cores)",
        nitro.display(),
        cores()
    );
    println!(
        "  save → new reply over an open WebSocket, {} one-line edits of routes/_ws.rs:",
        latencies.len()
    );
    println!(
        "    median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms ({rebuilt_lines} \"rebuilt\" lines)",
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  RSS: {:.1} MiB before, {:.1} MiB after the first reload, {:.1} MiB after {}: {:.2} MiB per reload",
        mib(rss_before),
        mib(first_rss),
        mib(last_rss),
        rss.len(),
        per_reload_kb / 1024.0
    );
    println!(
        "  open file descriptors: {fds_before} before, {} after",
        fds.last().copied().unwrap_or(0)
    );
    println!(
        "  warm restart ({} runs): URL printed after median {:.0} ms; first HTTP response after median {:.0} ms (min {:.0}, max {:.0})",
        first_response.len(),
        percentile(&ready, 50.0),
        percentile(&first_response, 50.0),
        first_response.first().copied().unwrap_or(f64::NAN),
        first_response.last().copied().unwrap_or(f64::NAN),
    );
    let json = serde_json::json!({
        "reloads": latencies.len(),
        "reload_ms": { "median": percentile(&sorted, 50.0), "p90": percentile(&sorted, 90.0),
                       "min": sorted.first(), "max": sorted.last() },
        "rss_kb": { "before": rss_before, "after_first": first_rss, "after_last": last_rss,
                    "per_reload": per_reload_kb },
        "fds": { "before": fds_before, "after": fds.last() },
        "warm_restart_ms": { "ready_median": percentile(&ready, 50.0),
                             "first_response_median": percentile(&first_response, 50.0) },
    });
    println!("{json}");
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
