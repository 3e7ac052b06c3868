//! `nitro-bench compare`: `nitro start` against bare servers, in one run, with one client.
//!
//! Builds `examples/websocket` with `nitro build`, then for each repeat and each workload
//! starts every server fresh (in an order that rotates with the repeat), measures it and stops
//! it. Ratios are taken between servers of the same repeat: on a shared machine the absolute
//! figures drift, the ratios of neighbouring runs hold.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, Measured};
use crate::{Result, copy_dir, flag, nitro_binary, procfs, workspace_root};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    PingPong1,
    PingPong50,
    Broadcast100,
    GetPage50,
    Idle,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::PingPong1,
        Workload::PingPong50,
        Workload::Broadcast100,
        Workload::GetPage50,
        Workload::Idle,
    ];

    fn key(self) -> &'static str {
        match self {
            Workload::PingPong1 => "ping1",
            Workload::PingPong50 => "ping50",
            Workload::Broadcast100 => "broadcast",
            Workload::GetPage50 => "get",
            Workload::Idle => "idle",
        }
    }

    fn title(self, idle_peers: usize) -> String {
        match self {
            Workload::PingPong1 => "ping/pong, 1 client (round trips/s)".into(),
            Workload::PingPong50 => "ping/pong, 50 clients (round trips/s)".into(),
            Workload::Broadcast100 => "broadcast to 100 receivers (deliveries/s)".into(),
            Workload::GetPage50 => "`GET /`, 50 keep-alive connections (req/s)".into(),
            Workload::Idle => format!("idle WebSocket, {idle_peers} peers (RSS bytes per peer)"),
        }
    }

    /// The target for `nitro-rs / bare` (or, for memory, the ceiling per peer).
    fn target(self) -> &'static str {
        match self {
            Workload::PingPong1 => "–",
            Workload::PingPong50 => "≥ 0.90",
            Workload::Broadcast100 => "≥ 0.50",
            Workload::GetPage50 => "≥ 0.90",
            Workload::Idle => "≤ 87 MiB in all",
        }
    }

    fn is_http(self) -> bool {
        self == Workload::GetPage50
    }
}

/// One server under test.
#[derive(Debug, Clone)]
enum Server {
    /// `<output>/server/nitro start <output> --port P`, with `env` set (and `-q` when
    /// `quiet`, or when the run is `-q`).
    Nitro {
        name: String,
        output: PathBuf,
        env: Vec<(String, String)>,
        quiet: bool,
    },
    /// This binary's `ref-ws` and `ref-http`.
    Bare { page: PathBuf },
    /// The real Nitro: `node <output>/server/index.mjs` with `PORT` and `HOST`.
    Node { output: PathBuf },
}

impl Server {
    fn name(&self) -> &str {
        match self {
            Server::Nitro { name, .. } => name,
            Server::Bare { .. } => "bare",
            Server::Node { .. } => "Nitro (Node)",
        }
    }

    fn command(&self, workload: Workload, port: u16, quiet: bool) -> Result<Command> {
        let port_text = port.to_string();
        let mut command = match self {
            Server::Nitro {
                output,
                env,
                quiet: quiet_server,
                ..
            } => {
                let mut command = Command::new(output.join("server/nitro"));
                command
                    .arg("start")
                    .arg(output)
                    .args(["--port", &port_text])
                    .envs(env.iter().map(|(k, v)| (k, v)));
                if quiet || *quiet_server {
                    command.arg("-q");
                }
                command
            }
            Server::Bare { page } => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut command = Command::new(exe);
                if workload.is_http() {
                    command.args(["ref-http", &port_text]).arg(page);
                } else {
                    command.args(["ref-ws", &port_text]);
                }
                command
            }
            Server::Node { output } => {
                let mut command = Command::new("node");
                command
                    .arg(output.join("server/index.mjs"))
                    .env("PORT", &port_text)
                    .env("HOST", "127.0.0.1");
                command
            }
        };
        command
            .env_remove("RUST_LOG")
            .env_remove("NITRO_PORT")
            .env_remove("NITRO_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // The request log of `nitro start` goes where a deployment's log would: nowhere
            // that slows the server down.
            .stderr(Stdio::null());
        Ok(command)
    }
}

/// A running server, stopped (killed) on drop.
struct Running {
    child: Child,
    port: u16,
}

impl Running {
    fn start(server: &Server, workload: Workload, quiet: bool) -> Result<Running> {
        let port = free_port()?;
        let mut child = server
            .command(workload, port, quiet)?
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.name()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{} exited at start: {status}", server.name()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("{} did not listen within 30 s", server.name()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Running { child, port })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OTLP/HTTP stand-in for `--otlp-metrics`: answers every request `200` with an empty
/// body (after reading it), on its own threads, for the rest of the process.
fn otlp_sink() -> Result<std::net::SocketAddr> {
    use std::io::{BufRead, BufReader, Read, Write};

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut writer) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err()
                        || writer
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// `nitro build` of a copy of `examples/websocket` with `nitro`; the `.output` folder.
fn build_output(nitro: &Path, into: &Path, metrics: bool) -> Result<PathBuf> {
    let dir = into.join("websocket");
    copy_dir(&workspace_root().join("examples/websocket"), &dir)?;
    if metrics {
        // `--metrics`: the same app with Prometheus metrics on (docs/deploy.md).
        let config = dir.join("nitro.toml");
        let mut text = std::fs::read_to_string(&config).unwrap_or_default();
        text.push_str("\n[observability]\nmetrics = \"/__nitro/metrics\"\n");
        std::fs::write(&config, text).map_err(|e| format!("cannot write `nitro.toml`: {e}"))?;
    }
    let status = Command::new(nitro)
        .arg("build")
        .arg(&dir)
        .env(
            "NITRO_TARGET_DIR",
            workspace_root().join("target/nitro-bench-routes"),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", nitro.display()))?;
    if !status.success() {
        return Err(format!("`{} build` failed", nitro.display()));
    }
    Ok(dir.join(".output"))
}

#[derive(Debug)]
struct Options {
    secs: f64,
    repeats: usize,
    idle_peers: usize,
    client_threads: usize,
    workloads: Vec<Workload>,
    quiet: bool,
}

fn options(args: &[String]) -> Result<Options> {
    const FLAGS: [&str; 13] = [
        "--secs",
        "--repeats",
        "--only",
        "--idle-peers",
        "--client-threads",
        "--baseline",
        "--metrics",
        "--instrumentation",
        "--otlp-metrics",
        "--node-output",
        "--nitro",
        "-q",
        "--quiet",
    ];
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with('-') && !FLAGS.contains(&a.as_str()))
    {
        return Err(format!(
            "compare: unknown option `{unknown}` (see `nitro-bench --help`)"
        ));
    }
    let number = |name: &str, default: f64| -> Result<f64> {
        flag(args, name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{name} takes a number, not `{v}`"))
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let workloads = match flag(args, "--only") {
        None => Workload::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|key| {
                Workload::ALL
                    .into_iter()
                    .find(|w| w.key() == key.trim())
                    .ok_or_else(|| {
                        format!(
                            "--only: unknown workload `{key}` (ping1, ping50, broadcast, get, idle)"
                        )
                    })
            })
            .collect::<Result<_>>()?,
    };
    Ok(Options {
        secs: number("--secs", 10.0)?,
        repeats: number("--repeats", 2.0)? as usize,
        idle_peers: number("--idle-peers", 10_000.0)? as usize,
        client_threads: number("--client-threads", 2.0)? as usize,
        workloads,
        quiet: args.iter().any(|a| a == "-q" || a == "--quiet"),
    })
}

/// `nitro-bench load WORKLOAD PORT PID [--secs S] [--idle-peers N] [--client-threads N]`:
/// one workload against a server that is already running (to profile it), as one line.
pub(crate) fn load(args: &[String]) -> Result<()> {
    let usage = "usage: nitro-bench load ping1|ping50|broadcast|get|idle PORT PID [--secs S]";
    let workload = args
        .first()
        .and_then(|key| Workload::ALL.into_iter().find(|w| w.key() == key))
        .ok_or(usage)?;
    let port: u16 = args.get(1).and_then(|v| v.parse().ok()).ok_or(usage)?;
    let pid: u32 = args.get(2).and_then(|v| v.parse().ok()).ok_or(usage)?;
    let options = options(args)?;
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let measured = client.block_on(measure(workload, port, pid, &options))?;
    println!("{} {:.0} {measured:?}", workload.key(), measured.value);
    client.shutdown_background();
    Ok(())
}

/// Runs `workload` against the server on `port` (process `pid`).
async fn measure(workload: Workload, port: u16, pid: u32, options: &Options) -> Result<Measured> {
    let secs = options.secs;
    match workload {
        Workload::PingPong1 => client::ping_pong(port, pid, 1, secs).await,
        Workload::PingPong50 => client::ping_pong(port, pid, 50, secs).await,
        Workload::Broadcast100 => client::broadcast(port, pid, 100, 256, secs).await,
        Workload::GetPage50 => client::get_page(port, pid, 50, secs).await,
        Workload::Idle => client::idle(port, pid, options.idle_peers).await,
    }
}

/// Runs `compare` and prints its tables.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = options(args)?;
    let nitro = nitro_binary(args)?;
    let tmp = tempfile::Builder::new()
        .prefix("nitro-bench-compare-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    eprintln!(
        "building examples/websocket with `{} build`…",
        nitro.display()
    );
    // `--instrumentation`: the same binary with metrics on and its default log, against
    // itself with neither (no metrics, `-q`: no request span, no request log).
    let instrumentation = args.iter().any(|a| a == "--instrumentation");
    let metrics = instrumentation || args.iter().any(|a| a == "--metrics");
    // `--otlp-metrics`: nitro-rs (only) sends its metrics over OTLP, once a second (60 times
    // the default), to a sink of this process.
    let otlp = args.iter().any(|a| a == "--otlp-metrics");
    let mut env = Vec::new();
    if otlp {
        let sink = otlp_sink()?;
        env.push((
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".to_owned(),
            format!("http://{sink}/v1/metrics"),
        ));
        env.push(("OTEL_METRIC_EXPORT_INTERVAL".to_owned(), "1000".to_owned()));
    }
    let mut name = String::from("nitro-rs");
    if metrics {
        name.push_str("+metrics");
    }
    if otlp {
        name.push_str("+otlp");
    }
    let mut servers = vec![Server::Nitro {
        name,
        output: build_output(&nitro, &tmp.path().join("nitro"), metrics)?,
        env,
        quiet: false,
    }];
    if instrumentation {
        servers.push(Server::Nitro {
            name: "uninstrumented".into(),
            output: build_output(&nitro, &tmp.path().join("uninstrumented"), false)?,
            env: Vec::new(),
            quiet: true,
        });
    }
    if let Some(baseline) = flag(args, "--baseline") {
        eprintln!("building examples/websocket with `{baseline} build` (the baseline)…");
        servers.push(Server::Nitro {
            name: "baseline".into(),
            output: build_output(Path::new(&baseline), &tmp.path().join("baseline"), false)?,
            env: Vec::new(),
            quiet: false,
        });
    }
    let page = workspace_root().join("examples/websocket/index.html");
    servers.push(Server::Bare { page });
    if let Some(node_output) = flag(args, "--node-output") {
        servers.push(Server::Node {
            output: PathBuf::from(node_output),
        });
    }

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    // results[workload][server] = one entry per repeat
    let mut results: Vec<Vec<Vec<Measured>>> =
        vec![vec![Vec::new(); servers.len()]; options.workloads.len()];
    for repeat in 0..options.repeats {
        for (w, &workload) in options.workloads.iter().enumerate() {
            for turn in 0..servers.len() {
                let s = (turn + repeat) % servers.len();
                let server = &servers[s];
                let running = Running::start(server, workload, options.quiet)?;
                let (port, pid) = (running.port, running.pid());
                let measured = client.block_on(measure(workload, port, pid, &options));
                drop(running);
                let measured = measured
                    .map_err(|e| format!("{} on {}: {e}", workload.key(), server.name()))?;
                eprintln!(
                    "  [{}/{}] {:<9} {:<13} {:>12.0}  cpu {:>5}  threads {:>4}  {}",
                    repeat + 1,
                    options.repeats,
                    workload.key(),
                    server.name(),
                    measured.value,
                    measured
                        .cpu_percent
                        .map_or("–".into(), |c| format!("{c:.0}%")),
                    measured.threads.map_or("–".into(), |t| t.to_string()),
                    measured.note
                );
                results[w][s].push(measured);
                // Let the sockets of the last run close before the next server starts.
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    client.shutdown_background();
    print_tables(&options, &servers, &results, &nitro, started.elapsed());
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn human(value: f64) -> String {
    match value {
        v if v.is_nan() => "–".into(),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e4 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn figure(workload: Workload, runs: &[Measured], idle_peers: usize) -> String {
    let values: Vec<f64> = runs.iter().map(|m| m.value).collect();
    let (min, max) = range(&values);
    if workload == Workload::Idle {
        let kib = |bytes: f64| bytes / 1024.0;
        return format!(
            "{:.1} KiB ({:.1}–{:.1}); {:.0} MiB in all",
            kib(median(&values)),
            kib(min),
            kib(max),
            median(&values) * idle_peers as f64 / (1024.0 * 1024.0)
        );
    }
    format!("{} ({}–{})", human(median(&values)), human(min), human(max))
}

/// `a / b` per repeat (same run), as "median (min–max)".
fn ratio(a: &[Measured], b: &[Measured]) -> String {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.value / b.value)
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return "–".into();
    }
    let (min, max) = range(&ratios);
    format!("**{:.2}** ({min:.2}–{max:.2})", median(&ratios))
}

fn print_tables(
    options: &Options,
    servers: &[Server],
    results: &[Vec<Vec<Measured>>],
    nitro: &Path,
    took: Duration,
) {
    let bare = servers
        .iter()
        .position(|s| matches!(s, Server::Bare { .. }))
        .expect("the bare servers always run");
    let others: Vec<usize> = (0..servers.len()).filter(|&s| s != bare).collect();
    println!();
    println!(
        "nitro-bench compare: `{}`, {} cores, nice {}, {} repeat(s) of {} s, client on {} thread(s), {:.0} s in all",
        nitro.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        procfs::own_nice().map_or("?".into(), |n| n.to_string()),
        options.repeats,
        options.secs,
        options.client_threads,
        took.as_secs_f64()
    );
    println!("median (min–max) over the repeats; ratios are taken within each repeat.");
    println!();
    let mut head = String::from("| workload |");
    let mut rule = String::from("|---|");
    for s in others.iter().chain([&bare]) {
        head += &format!(" {} |", servers[*s].name());
        rule += "---|";
    }
    for s in &others {
        head += &format!(" {} / bare |", servers[*s].name());
        rule += "---|";
    }
    head += " target |";
    rule += "---|";
    println!("{head}\n{rule}");
    for (w, &workload) in options.workloads.iter().enumerate() {
        let mut line = format!("| {} |", workload.title(options.idle_peers));
        for s in others.iter().chain([&bare]) {
            line += &format!(
                " {} |",
                figure(workload, &results[w][*s], options.idle_peers)
            );
        }
        for s in &others {
            line += &format!(" {} |", ratio(&results[w][*s], &results[w][bare]));
        }
        line += &format!(" {} |", workload.target());
        println!("{line}");
    }

    if let Some(bare_off) = servers
        .iter()
        .position(|s| matches!(s, Server::Nitro { quiet: true, .. }))
    {
        // `--instrumentation`: the first server against its uninstrumented twin.
        println!();
        println!(
            "instrumentation (metrics, request spans, request log) as extra server CPU per operation, {} against {} (within each repeat):",
            servers[0].name(),
            servers[bare_off].name()
        );
        println!();
        println!("| workload | CPU/op on | CPU/op off | extra CPU |");
        println!("|---|---|---|---|");
        for (w, &workload) in options.workloads.iter().enumerate() {
            let (on, off) = (&results[w][0], &results[w][bare_off]);
            let extra: Vec<f64> = on
                .iter()
                .zip(off)
                .filter_map(|(a, b)| Some(a.cpu_us_per_op? / b.cpu_us_per_op? - 1.0))
                .collect();
            let cpu = |runs: &[Measured]| {
                median(
                    &runs
                        .iter()
                        .filter_map(|m| m.cpu_us_per_op)
                        .collect::<Vec<_>>(),
                )
            };
            let (min, max) = range(&extra);
            println!(
                "| {} | {:.2} µs | {:.2} µs | **{:+.1} %** ({:+.1}–{:+.1}) |",
                workload.key(),
                cpu(on),
                cpu(off),
                median(&extra) * 100.0,
                min * 100.0,
                max * 100.0
            );
        }
    }

    println!();
    println!(
        "server CPU per operation (µs), CPU (% of one core), p50/p99 latency (µs), threads — medians:"
    );
    println!();
    println!("| workload | server | CPU/op | CPU | p50 | p99 | threads | note |");
    println!("|---|---|---|---|---|---|---|---|");
    for (w, &workload) in options.workloads.iter().enumerate() {
        for (s, server) in servers.iter().enumerate() {
            let runs = &results[w][s];
            let pick = |f: fn(&Measured) -> Option<f64>| {
                let values: Vec<f64> = runs.iter().filter_map(f).collect();
                if values.is_empty() {
                    "–".to_owned()
                } else {
                    format!("{:.1}", median(&values))
                }
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                workload.key(),
                server.name(),
                pick(|m| m.cpu_us_per_op),
                pick(|m| m.cpu_percent),
                pick(|m| m.p50_us),
                pick(|m| m.p99_us),
                pick(|m| m.threads.map(|t| t as f64)),
                runs.last().map_or("", |m| m.note.as_str()),
            );
        }
    }
}
