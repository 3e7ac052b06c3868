//! The load client: one implementation of each workload, driving any server that speaks the
//! seed chat protocol on `/_ws` and serves a page on `/`.
//!
//! Every throughput workload warms up for a second, then counts operations over a fixed window
//! while it samples the server's CPU time from `/proc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::procfs::{self, CpuWindow};

type Ws = WebSocketStream<TcpStream>;
pub(crate) type Result<T> = std::result::Result<T, String>;

/// Warm-up before each measured window.
const WARMUP: Duration = Duration::from_secs(1);
/// Quiet this long on a socket: no more frames are coming.
const QUIET: Duration = Duration::from_millis(500);

/// The outcome of one workload against one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    /// Operations per second (round trips, deliveries, requests), or bytes per peer for `idle`.
    pub(crate) value: f64,
    /// Server CPU per operation, in µs (throughput workloads).
    pub(crate) cpu_us_per_op: Option<f64>,
    /// Server CPU over the window, in % of one core.
    pub(crate) cpu_percent: Option<f64>,
    /// Median and 99th percentile latency in µs, where the workload has one.
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    /// The server's threads at the end of the window.
    pub(crate) threads: Option<u64>,
    /// A line of details (idle: totals and timings).
    pub(crate) note: String,
}

fn finish_cpu(cpu: &CpuWindow, ops: f64) -> (Option<f64>, Option<f64>) {
    let (used, wall) = cpu.finish();
    let per_op = used.filter(|_| ops > 0.0).map(|s| s * 1e6 / ops);
    let percent = used.map(|s| s / wall * 100.0);
    (per_op, percent)
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[rank] as f64 / 1000.0)
}

async fn connect(port: u16, read_buffer: usize) -> Result<Ws> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request = format!("ws://127.0.0.1:{port}/_ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (ws, _) = client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("the WebSocket handshake failed: {e}"))?;
    Ok(ws)
}

fn text(message: &Message) -> Option<&str> {
    match message {
        Message::Text(text) => Some(text.as_str()),
        _ => None,
    }
}

/// Reads up to `count` text frames, stopping early after `quiet` without one.
async fn read_frames(ws: &mut Ws, count: usize, quiet: Duration) -> usize {
    let mut read = 0;
    while read < count {
        match tokio::time::timeout(quiet, ws.next()).await {
            Ok(Some(Ok(message))) if text(&message).is_some() => read += 1,
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    read
}

/// Opens `n` chat peers one after the other (each reads its welcome first), then reads the
/// join frames each received from the ones after it.
async fn chat_peers(port: u16, n: usize) -> Result<Vec<Ws>> {
    let mut peers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = connect(port, 16 * 1024).await?;
        if read_frames(&mut ws, 1, Duration::from_secs(10)).await != 1 {
            return Err("a peer got no welcome frame".into());
        }
        peers.push(ws);
    }
    for (i, ws) in peers.iter_mut().enumerate() {
        read_frames(ws, n - 1 - i, QUIET).await;
    }
    Ok(peers)
}

/// Closed-loop ping/pong: each of `clients` peers sends `ping` and waits for the `pong`.
/// Round trips per second.
pub(crate) async fn ping_pong(port: u16, pid: u32, clients: usize, secs: f64) -> Result<Measured> {
    let peers = chat_peers(port, clients).await?;
    let from = Instant::now() + WARMUP;
    let until = from + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for mut ws in peers {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            while Instant::now() < until {
                let sent = Instant::now();
                ws.send(Message::text("ping"))
                    .await
                    .map_err(|e| format!("send failed: {e}"))?;
                loop {
                    match ws.next().await {
                        Some(Ok(message)) => {
                            if text(&message).is_some_and(|t| t.contains("\"pong\"")) {
                                break;
                            }
                        }
                        other => return Err(format!("the socket ended: {other:?}")),
                    }
                }
                if sent >= from {
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
            }
            let _ = ws.close(None).await;
            Ok::<_, String>(latencies)
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuWindow::start(pid);
    tokio::time::sleep_until(until.into()).await;
    let threads = procfs::status(pid, "Threads:");
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort_unstable();
    let rate = all.len() as f64 / secs;
    let (cpu_us_per_op, cpu_percent) = finish_cpu(&cpu, all.len() as f64);
    Ok(Measured {
        value: rate,
        cpu_us_per_op,
        cpu_percent,
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        threads,
        note: String::new(),
    })
}

/// One sender publishes to `receivers` chat peers, keeping at most `window` messages not yet
/// delivered to all of them. Deliveries (frames received by receivers) per second.
pub(crate) async fn broadcast(
    port: u16,
    pid: u32,
    receivers: usize,
    window: u64,
    secs: f64,
) -> Result<Measured> {
    let mut peers = chat_peers(port, receivers + 1).await?;
    let sender = peers.pop().expect("receivers + 1 peers");
    let delivered = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let mut readers = Vec::new();
    for mut ws in peers {
        let (delivered, progress) = (delivered.clone(), progress.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if text(&message).is_some_and(|t| t.contains("bcast-")) {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    progress.notify_waiters();
                }
            }
        }));
    }
    let from = Instant::now() + WARMUP;
    let until = from + Duration::from_secs_f64(secs);
    let (mut sink, mut echoes) = sender.split();
    let drain_echoes = tokio::spawn(async move { while let Some(Ok(_)) = echoes.next().await {} });
    let window_start = tokio::spawn({
        let delivered = delivered.clone();
        async move {
            tokio::time::sleep_until(from.into()).await;
            (delivered.load(Ordering::Relaxed), CpuWindow::start(pid))
        }
    });
    let per_message = receivers as u64;
    let mut sent = 0u64;
    'send: while Instant::now() < until {
        loop {
            let wait = progress.notified();
            let must_have = (sent + 1).saturating_sub(window) * per_message;
            if delivered.load(Ordering::Relaxed) >= must_have {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), wait).await;
            if Instant::now() >= until {
                break 'send;
            }
        }
        sink.send(Message::text(format!("bcast-{sent:010}")))
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        sent += 1;
    }
    let (at_start, cpu) = window_start.await.map_err(|e| e.to_string())?;
    let in_window = delivered.load(Ordering::Relaxed) - at_start;
    let threads = procfs::status(pid, "Threads:");
    let (cpu_us_per_op, cpu_percent) = finish_cpu(&cpu, in_window as f64);
    // Everything sent must arrive everywhere, or the figure means nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < sent * per_message && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = delivered.load(Ordering::Relaxed);
    let _ = sink.close().await;
    drain_echoes.abort();
    for reader in readers {
        reader.abort();
    }
    if total != sent * per_message {
        return Err(format!(
            "broadcast incomplete: {total} of {} deliveries",
            sent * per_message
        ));
    }
    Ok(Measured {
        value: in_window as f64 / secs,
        cpu_us_per_op,
        cpu_percent,
        threads,
        ..Measured::default()
    })
}

/// `GET /` over `conns` keep-alive connections, one request at a time on each. Requests per
/// second; every answer must be a `200` with a body.
pub(crate) async fn get_page(port: u16, pid: u32, conns: usize, secs: f64) -> Result<Measured> {
    let from = Instant::now() + WARMUP;
    let until = from + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let host = format!("127.0.0.1:{port}");
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut body_bytes = 0;
            while Instant::now() < until {
                let sent = Instant::now();
                // As a browser's navigation: the page is served to requests that accept HTML.
                let request = hyper::Request::get("/")
                    .header(hyper::header::HOST, &host)
                    .header(hyper::header::ACCEPT, "text/html")
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("GET / failed: {e}"))?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                if status != 200 || body.is_empty() {
                    return Err(format!("GET / answered {status} with {} bytes", body.len()));
                }
                body_bytes = body.len();
                if sent >= from {
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
            }
            Ok::<_, String>((latencies, body_bytes))
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuWindow::start(pid);
    tokio::time::sleep_until(until.into()).await;
    let threads = procfs::status(pid, "Threads:");
    let mut all = Vec::new();
    let mut body_bytes = 0;
    for task in tasks {
        let (latencies, bytes) = task.await.map_err(|e| e.to_string())??;
        all.extend(latencies);
        body_bytes = bytes;
    }
    all.sort_unstable();
    let (cpu_us_per_op, cpu_percent) = finish_cpu(&cpu, all.len() as f64);
    Ok(Measured {
        value: all.len() as f64 / secs,
        cpu_us_per_op,
        cpu_percent,
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        threads,
        note: format!("{body_bytes} B page"),
    })
}

/// Opens `conns` chat peers (64 handshakes at a time), reads every frame (each open announces
/// itself to all the peers before it), and once no frame has come for 2 s and 3 s more have
/// passed, reads the server's RSS. Bytes of RSS per peer over the fresh server's.
pub(crate) async fn idle(port: u16, pid: u32, conns: usize) -> Result<Measured> {
    let before_kb = procfs::rss_kb(pid).ok_or("cannot read the server's RSS")?;
    let started = Instant::now();
    let welcomed = Arc::new(AtomicUsize::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(Semaphore::new(64));
    let mut peers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let permit = handshakes
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (welcomed, frames, failed) = (welcomed.clone(), frames.clone(), failed.clone());
        peers.push(tokio::spawn(async move {
            let mut ws = match connect(port, 4096).await {
                Ok(ws) => ws,
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("  idle: {e}");
                    }
                    return;
                }
            };
            let mut permit = Some(permit);
            while let Some(Ok(message)) = ws.next().await {
                if text(&message).is_some() {
                    if permit.take().is_some() {
                        welcomed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let limit = started + Duration::from_secs(600);
    while welcomed.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < conns {
        if Instant::now() > limit {
            return Err("the peers were not all welcomed within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened = started.elapsed().as_secs_f64();
    let mut last = frames.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while last_change.elapsed() < Duration::from_secs(2) && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = frames.load(Ordering::Relaxed);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    let storm_over = (last_change - started).as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_kb = procfs::rss_kb(pid).ok_or("cannot read the server's RSS")?;
    let threads = procfs::status(pid, "Threads:");
    let open = welcomed.load(Ordering::Relaxed);
    for peer in peers {
        peer.abort();
    }
    if open < conns {
        return Err(format!(
            "only {open} of {conns} peers opened ({} failed)",
            failed.load(Ordering::Relaxed)
        ));
    }
    let grown = after_kb.saturating_sub(before_kb) as f64 * 1024.0;
    Ok(Measured {
        value: grown / open as f64,
        threads,
        note: format!(
            "RSS {:.1} → {:.1} MiB; {open} open after {opened:.1} s, {last} join frames, storm over after {storm_over:.1} s",
            before_kb as f64 / 1024.0,
            after_kb as f64 / 1024.0
        ),
        ..Measured::default()
    })
}
