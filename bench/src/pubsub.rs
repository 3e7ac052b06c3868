//! `nitro-bench pubsub`: WebSocket publishes relayed between `nitro start` instances through
//! a real `redis-server`.
//!
//! ```text
//! cargo run --release -p nitro-bench -- pubsub [--rounds N] [--messages N] [--nitro PATH]
//! ```
//!
//! It builds the seed chat (`examples/websocket`) with `[websocket] pubsub` into a temporary
//! folder, starts `redis-server` on a free port of 127.0.0.1 and three `nitro start`
//! instances on it (`NITRO_PUBSUB_URL`), then:
//!
//! - **latency**: client A on instance 1 sends a chat message, which the route echoes and
//!   publishes; the time until client B receives it is measured `--rounds` times (default
//!   2000), one message at a time, with B on instance 2 (relayed through Redis) and, for the
//!   baseline, with B on instance 1 (local publish). The difference is the relay's share.
//! - **throughput**: one publisher and one subscriber on each instance; the three publishers
//!   send `--messages` each (default 20 000), at most 256 ahead of their own echo, and the time
//!   until every subscriber has every message gives publishes per second (each relayed to the
//!   two other instances). The instances' final counters (relayed, dropped) come from their
//!   logs at shutdown.
//!
//! Before the processes, the same two figures for the relay alone (the research prototype's
//! setting): three hubs with backplanes in this process (2 tokio workers), no WebSockets and no
//! route code; latency is `Hub::publish` on one hub until the other's `received` counter moves,
//! throughput is `--messages` publishes on each of the three hubs at once until each hub has
//! received the other two's.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::{Result, WAIT, copy_dir, cores, flag, nitro_binary, percentile, workspace_root};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let rounds: usize = flag(args, "--rounds").map_or(Ok(2000), |v| {
        v.parse().map_err(|e| format!("--rounds: {e}"))
    })?;
    let messages: usize = flag(args, "--messages").map_or(Ok(20_000), |v| {
        v.parse().map_err(|e| format!("--messages: {e}"))
    })?;
    let nitro = nitro_binary(args)?;

    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let project = tmp.path().join("chat");
    copy_dir(&workspace_root().join("examples/websocket"), &project)?;
    let toml = std::fs::read_to_string(project.join("nitro.toml")).map_err(|e| e.to_string())?;
    std::fs::write(
        project.join("nitro.toml"),
        format!(
            "{toml}\n[websocket]\npubsub = {{ channel = \"nitro-bench\", stats_interval = 0 }}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    eprintln!("building the chat (nitro build)…");
    let status = Command::new(&nitro)
        .arg("build")
        .arg(&project)
        .env(
            "NITRO_TARGET_DIR",
            workspace_root().join("target/nitro-bench-routes"),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", nitro.display()))?;
    if !status.success() {
        return Err("nitro build failed".into());
    }
    let output = project.join(".output");

    let redis_port = free_port()?;
    let mut redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `redis-server` (Debian's `redis-server` package): {e}"))?;
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
        if Instant::now() > deadline {
            let _ = redis.kill();
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{redis_port}");
    let result = relay_only(&url, rounds, messages)
        .and_then(|relay| measure(&nitro, &output, &url, rounds, messages, relay));
    let _ = redis.kill();
    let _ = redis.wait();
    result
}

/// The relay alone, in this process: see the module docs.
fn relay_only(url: &str, rounds: usize, messages: usize) -> Result<serde_json::Value> {
    use bytes::Bytes;
    use nitro_runtime::Hub;
    use nitro_runtime::ws::backplane::{Backplane, ConnectionState, PubSubConfig};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut hubs = Vec::new();
        let mut planes = Vec::new();
        for _ in 0..3 {
            let hub = Hub::new();
            let mut config = PubSubConfig::new(url, "nitro-bench-relay").map_err(|e| e.to_string())?;
            config.queue = messages.max(10_000);
            config.stats_interval = None;
            planes.push(Backplane::start(&hub, config).map_err(|e| e.to_string())?);
            hubs.push(hub);
        }
        let deadline = Instant::now() + WAIT;
        while planes.iter().any(|p| p.stats().state != ConnectionState::Connected) {
            if Instant::now() > deadline {
                return Err("the backplanes did not connect".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let mut latency = Vec::with_capacity(rounds);
        for round in 0..rounds + 20 {
            let before = planes[1].stats().received;
            let started = Instant::now();
            let payload = Bytes::from(format!("{{\"user\":\"bench\",\"message\":\"t {round}\"}}"));
            hubs[0].publish(Some("/_ws"), "chat", payload, false);
            while planes[1].stats().received == before {
                if started.elapsed() > WAIT {
                    return Err("a relayed message did not arrive".to_owned());
                }
                tokio::task::yield_now().await;
            }
            if round >= 20 {
                latency.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        latency.sort_by(f64::total_cmp);
        // Let every echo land before counting from here.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let base: Vec<u64> = planes.iter().map(|p| p.stats().received).collect();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for hub in &hubs {
            let hub = hub.clone();
            tasks.push(tokio::spawn(async move {
                let payload = Bytes::from_static(br#"{"user":"bench","message":"a chat message of ordinary length"}"#);
                for i in 0..messages {
                    hub.publish(Some("/_ws"), "chat", payload.clone(), false);
                    if i % 1024 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())?;
        }
        let expected = 2 * messages as u64;
        loop {
            let done = planes
                .iter()
                .zip(&base)
                .all(|(p, base)| p.stats().received - base >= expected);
            if done {
                break;
            }
            let dropped: u64 = planes.iter().map(|p| p.stats().dropped).sum();
            if dropped > 0 || started.elapsed() > WAIT {
                return Err(format!("relay throughput: {dropped} dropped, or not everything arrived in time"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let total = 3 * messages;
        eprintln!(
            "relay alone (in-process, no WebSockets): latency p50 {:.0} µs, p99 {:.0} µs; {total} publishes from 3 hubs in {:.2} s = {:.0} publishes/s",
            percentile(&latency, 50.0),
            percentile(&latency, 99.0),
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
        let json = serde_json::json!({
            "latency_us": { "rounds": latency.len(), "p50": percentile(&latency, 50.0), "p99": percentile(&latency, 99.0) },
            "publishes": total,
            "seconds": elapsed.as_secs_f64(),
            "publishes_per_second": total as f64 / elapsed.as_secs_f64(),
        });
        for plane in planes {
            plane.shutdown().await;
        }
        Ok(json)
    })
}

fn measure(
    nitro: &Path,
    output: &Path,
    url: &str,
    rounds: usize,
    messages: usize,
    relay: serde_json::Value,
) -> Result<()> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::start(nitro, output, url)?);
    }
    for instance in &instances {
        instance.wait_log("connected to Redis")?;
    }

    // Latency: A on instance 1; B local, then B on instance 2.
    let (mut a, a_id) = join(instances[0].port)?;
    let (mut local, _) = join(instances[0].port)?;
    let (mut remote, _) = join(instances[1].port)?;
    let mut lat_local = Vec::with_capacity(rounds);
    let mut lat_remote = Vec::with_capacity(rounds);
    for round in 0..rounds * 2 {
        let text = format!("t {round}");
        let started = Instant::now();
        send(&mut a, &text)?;
        let receiver = if round % 2 == 0 {
            &mut local
        } else {
            &mut remote
        };
        wait_for(receiver, &a_id, &text)?;
        let took = started.elapsed().as_secs_f64() * 1e6;
        // Both receivers get every message: drain the other one, and A's echo.
        let other = if round % 2 == 0 {
            &mut remote
        } else {
            &mut local
        };
        wait_for(other, &a_id, &text)?;
        wait_for(&mut a, &a_id, &text)?;
        if round >= 20 {
            if round % 2 == 0 {
                lat_local.push(took)
            } else {
                lat_remote.push(took)
            }
        }
    }
    drop((a, local, remote));
    lat_local.sort_by(f64::total_cmp);
    lat_remote.sort_by(f64::total_cmp);

    // Throughput: a publisher and a subscriber on each instance.
    let mut publishers = Vec::new();
    let mut subscribers = Vec::new();
    for instance in &instances {
        publishers.push(join(instance.port)?);
        subscribers.push(join(instance.port)?.0);
    }
    let total = messages * publishers.len();
    let (done_tx, done_rx) = mpsc::channel::<Result<()>>();
    let started = Instant::now();
    for mut socket in subscribers {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            let result = (|| {
                while seen < total {
                    if let Some((user, _)) = read_chat(&mut socket)?
                        && user != "server"
                    {
                        seen += 1;
                    }
                }
                Ok(())
            })();
            let _ = done.send(result);
        });
    }
    for (mut socket, id) in publishers {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let result = (|| {
                let mut own = 0;
                let mut sent = 0;
                while own < messages {
                    while sent < messages && sent < own + 256 {
                        socket
                            .write(Message::text(format!("m {sent}")))
                            .map_err(|e| e.to_string())?;
                        sent += 1;
                    }
                    socket.flush().map_err(|e| e.to_string())?;
                    if let Some((user, _)) = read_chat(&mut socket)?
                        && user == id
                    {
                        own += 1;
                    }
                }
                // Keep reading what the others publish, so the server never has to close
                // this socket for not reading.
                while started.elapsed() < WAIT {
                    if read_chat(&mut socket).is_err() {
                        break;
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                let _ = done.send(result);
            }
        });
    }
    drop(done_tx);
    for _ in 0..3 {
        done_rx
            .recv_timeout(WAIT)
            .map_err(|_| "the subscribers did not get every message in time".to_owned())??;
    }
    let elapsed = started.elapsed();
    let mut finals = Vec::new();
    for instance in &mut instances {
        finals.push(instance.stop()?);
    }

    let json = serde_json::json!({
        "bench": "pubsub",
        "cores": cores(),
        "relay_alone": relay,
        "latency_us": {
            "rounds": lat_remote.len(),
            "local": { "p50": percentile(&lat_local, 50.0), "p99": percentile(&lat_local, 99.0) },
            "relayed": { "p50": percentile(&lat_remote, 50.0), "p99": percentile(&lat_remote, 99.0) },
        },
        "throughput": {
            "publishes": total,
            "seconds": elapsed.as_secs_f64(),
            "publishes_per_second": total as f64 / elapsed.as_secs_f64(),
            "deliveries_per_second": (total * 3) as f64 / elapsed.as_secs_f64(),
        },
        "instances": finals,
    });
    println!("{json}");
    eprintln!(
        "latency, A on instance 1 → B (p50 / p99): same instance {:.0} / {:.0} µs, other instance (through Redis) {:.0} / {:.0} µs",
        percentile(&lat_local, 50.0),
        percentile(&lat_local, 99.0),
        percentile(&lat_remote, 50.0),
        percentile(&lat_remote, 99.0)
    );
    eprintln!(
        "throughput: {total} publishes from 3 instances in {:.2} s = {:.0} publishes/s, each delivered on all 3 instances",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// A running `nitro start` (killed on drop).
struct Instance {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Instance {
    fn start(nitro: &Path, output: &Path, url: &str) -> Result<Instance> {
        let mut child = Command::new(nitro)
            .arg("start")
            .arg(output)
            .args(["--port", "0", "--quiet"])
            .env("NITRO_PUBSUB_URL", url)
            .env("RUST_LOG", "info,nitro::request=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", nitro.display()))?;
        let (tx, log) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let out = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(out).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(port) = line
                        .split("http://")
                        .nth(1)
                        .and_then(|rest| rest.trim().trim_end_matches('/').rsplit(':').next())
                        .and_then(|p| p.parse().ok())
                    {
                        break port;
                    }
                }
                _ => return Err("nitro start printed no URL".into()),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Instance {
            child,
            port,
            log,
            seen: Vec::new(),
        })
    }

    fn wait_log(&self, needle: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(()),
                Ok(_) => {}
                Err(_) => return Err(format!("no `{needle}` in the log of nitro start")),
            }
        }
    }

    /// SIGTERM; the final counters line.
    fn stop(&mut self) -> Result<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.seen.extend(self.log.try_iter());
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(line);
        }
        Ok(self
            .seen
            .iter()
            .find_map(|l| l.split_once("stopped: ").map(|(_, s)| s.to_owned()))
            .unwrap_or_else(|| "(no final counters in the log)".into()))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Connects to the chat; the socket and the peer id from the welcome.
fn join(port: u16) -> Result<(Socket, String)> {
    let (mut socket, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/_ws"))
        .map_err(|e| format!("cannot connect to instance on {port}: {e}"))?;
    if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(WAIT));
    }
    let (_, welcome) = read_chat(&mut socket)?.ok_or("no welcome")?;
    let id = welcome
        .strip_prefix("欢迎 ")
        .and_then(|rest| rest.strip_suffix('!'))
        .ok_or_else(|| format!("not a welcome: {welcome}"))?
        .to_owned();
    Ok((socket, id))
}

fn send(socket: &mut Socket, text: &str) -> Result<()> {
    socket.send(Message::text(text)).map_err(|e| e.to_string())
}

/// The next chat message `(user, message)`; `None` for frames that are not text.
fn read_chat(socket: &mut Socket) -> Result<Option<(String, String)>> {
    match socket.read().map_err(|e| e.to_string())? {
        Message::Text(text) => {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            Ok(Some((
                v["user"].as_str().unwrap_or_default().to_owned(),
                v["message"].as_str().unwrap_or_default().to_owned(),
            )))
        }
        _ => Ok(None),
    }
}

/// Reads until `user` says `text`.
fn wait_for(socket: &mut Socket, user: &str, text: &str) -> Result<()> {
    loop {
        if let Some((from, message)) = read_chat(socket)?
            && from == user
            && message == text
        {
            return Ok(());
        }
    }
}
