//! Streamed bodies and server-sent events under `nitro dev`, with real route builds and raw
//! HTTP clients: backpressure (measured RSS), clients that stop reading or go away (the route's
//! stream is dropped), the idle rule that replaces the handler timeout, and SSE framing,
//! keep-alives, `Last-Event-ID`, `publish` reaching SSE and WebSocket clients alike, and the
//! peer leaving the hub on disconnect.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A sync route streaming `?mb=N` MiB of `x`, 64 KiB per chunk; its stream logs how much it
/// produced when it is dropped.
const BIG: &str = r#"
use nitro::body::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct Xs { left: u64, sent: u64, total: u64 }

impl Stream for Xs {
    type Item = Vec<u8>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        self.sent += n;
        Poll::Ready(Some(vec![b'x'; n as usize]))
    }
}

impl Drop for Xs {
    fn drop(&mut self) {
        nitro::log::warn(format!("big stream dropped after {} of {} bytes", self.sent, self.total));
    }
}

pub fn handler(req: &nitro::Request) -> nitro::Response {
    let mb: u64 = req.query("mb").and_then(|v| v.parse().ok()).unwrap_or(1);
    nitro::Response::stream(Xs { left: mb << 20, sent: 0, total: mb << 20 })
        .with_header("content-type", "text/plain")
}
"#;

/// An async route: a task sends `?n=N` ticks through a channel, one every `?ms=M`
/// milliseconds; a guard in the stream and the producer both report the end.
const TICKS: &str = r#"
use std::time::Duration;

struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        nitro::log::warn("ticks stream dropped");
    }
}

pub async fn handler(req: nitro::Request) -> nitro::Response {
    let n: u32 = req.query("n").and_then(|v| v.parse().ok()).unwrap_or(3);
    let ms: u64 = req.query("ms").and_then(|v| v.parse().ok()).unwrap_or(50);
    let (tx, rx) = nitro::body::channel::<String>(1);
    tokio::spawn(async move {
        for i in 1..=n {
            if tx.send(format!("tick {i}\n")).await.is_err() {
                nitro::log::warn("ticks producer saw the client leave");
                return;
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    });
    let guard = Guard;
    let rx = WithGuard(rx, guard);
    nitro::Response::stream(rx).with_header("content-type", "text/plain")
}

struct WithGuard<S>(S, Guard);

impl<S: nitro::body::Stream + Unpin> nitro::body::Stream for WithGuard<S> {
    type Item = S::Item;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_next(cx)
    }
}
"#;

/// A file streamed from `assets/`.
const FILE: &str = r#"
pub fn handler() -> nitro::Result<nitro::Response> {
    Ok(nitro::Response::file(nitro::assets::path("data.bin"))?)
}
"#;

/// An event stream in the namespace of the WebSocket route, subscribed to `chat`.
const EVENTS: &str = r#"
use nitro::sse::{Event, EventStream};
use std::time::Duration;

pub fn handler(req: &nitro::Request) -> nitro::Result<EventStream> {
    let ms: u64 = req.query("keepalive").and_then(|v| v.parse().ok()).unwrap_or(15_000);
    let stream = EventStream::in_namespace(req, "/_ws")?
        .keep_alive(Duration::from_millis(ms))
        .retry(Duration::from_millis(2500));
    stream.peer().subscribe("chat");
    stream.send(Event::new("line one\nline two").event("greeting").id("1"));
    if let Some(last) = stream.last_event_id() {
        stream.send(Event::new(format!("resumed after {last}")).event("resume").id("2"));
    }
    stream.peer().send(format!("you are {}", stream.peer().id()));
    Ok(stream)
}
"#;

const WS: &str = r#"
use nitro::ws::{Message, Peer};

pub fn open(peer: &Peer) {
    peer.subscribe("chat");
    peer.send("ready");
}

pub fn message(peer: &Peer, message: &Message) {
    peer.publish("chat", message.text().to_string());
}
"#;

const SAY: &str = r#"
pub fn handler(req: &nitro::Request) -> nitro::Result<&'static str> {
    nitro::ws::publish("chat", req.text()?.to_string());
    Ok("ok")
}
"#;

const COUNT: &str = r#"
pub fn handler() -> String {
    nitro::ws::peers_in("/_ws").len().to_string()
}
"#;

/// The first Rust sample under `heading` in docs/routes.md, as written there.
fn doc_sample(heading: &str) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/routes.md")).unwrap();
    let section = &doc[doc.find(heading).unwrap()..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_owned()
}

/// The resident set of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A raw `GET` whose response is read incrementally: the head, then chunk by chunk.
pub(crate) struct Streaming {
    reader: BufReader<TcpStream>,
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    /// Bytes left in the current chunk.
    left: usize,
    done: bool,
}

impl Streaming {
    pub(crate) fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Streaming {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (k, v) = trimmed.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        Streaming {
            reader,
            status,
            headers,
            left: 0,
            done: false,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Up to `buf.len()` bytes of the body; 0 at its end. Panics on a read error (a
    /// cut-off body shows as one).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        assert_eq!(
            self.header("transfer-encoding"),
            Some("chunked"),
            "{} {:?}",
            self.status,
            self.headers
        );
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.trim().is_empty() {
                // The CRLF after the previous chunk.
                line.clear();
                if self.reader.read_line(&mut line)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            self.left = usize::from_str_radix(line.trim(), 16).unwrap_or_else(|_| {
                panic!("a chunk size, not {line:?}");
            });
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }

    /// The rest of the body as text.
    fn text_until_end(&mut self) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(String::from_utf8(out).unwrap());
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// The next server-sent event (or comment) block, up to its blank line, waiting at most
    /// `wait`.
    pub(crate) fn next_block(&mut self, pending: &mut String, wait: Duration) -> String {
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = pending.find("\n\n") {
                let block = pending[..end + 2].to_owned();
                pending.replace_range(..end + 2, "");
                return block;
            }
            assert!(
                Instant::now() < deadline,
                "no complete event within {wait:?}; have {pending:?}"
            );
            let mut buf = [0u8; 4096];
            let n = self.read(&mut buf).expect("the event stream stays open");
            assert!(n > 0, "the event stream ended; have {pending:?}");
            pending.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    }
}

fn streaming_project() -> Project {
    let project = Project::with_files(&[
        (
            "nitro.toml",
            "[limits]\nhandler_timeout = 1\n\n[dependencies]\ntokio = { version = \"1\", features = [\"time\", \"rt\"] }\n",
        ),
        ("routes/big.get.rs", BIG),
        ("routes/ticks.get.rs", TICKS),
        ("routes/file.get.rs", FILE),
    ]);
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    project.write("assets/.keep", "");
    project.write("routes/export.get.rs", &doc_sample("## Streamed bodies"));
    std::fs::write(project.path().join("assets/data.bin"), data).unwrap();
    project
}

#[test]
fn streamed_bodies_hold_back_the_route_and_end_with_the_client() {
    let project = streaming_project();
    let dev = NitroDev::start(project.path());
    let pid = dev.pid();

    // 1. 200 MiB through the server while its memory stays far below that.
    let baseline = rss(pid);
    let mut res = Streaming::get(dev.port, "/big?mb=200", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/plain"));
    let mut buf = vec![0u8; 256 * 1024];
    let (mut total, mut peak, mut next_sample) = (0u64, baseline, 0u64);
    let started = Instant::now();
    loop {
        let n = res.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == b'x'));
        total += n as u64;
        if total >= next_sample {
            peak = peak.max(rss(pid));
            next_sample += 8 << 20;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(total, 200 << 20);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "streamed 200 MiB in {:.2} s: server RSS {:.1} MiB before, peak {:.1} MiB (+{:.1} MiB)",
        elapsed.as_secs_f64(),
        mib(baseline),
        mib(peak),
        mib(peak.saturating_sub(baseline))
    );
    assert!(
        peak < baseline + (64 << 20),
        "the server grew by {:.1} MiB while streaming 200 MiB",
        mib(peak - baseline)
    );
    assert!(dev.wait_stderr(
        "big stream dropped after 209715200 of 209715200 bytes",
        Duration::from_secs(10)
    ));

    // 2. A client that stops reading: the route is polled no further than the socket's
    // buffers, and the server's memory stays put.
    let mut res = Streaming::get(dev.port, "/big?mb=100000", &[]);
    let mut first = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < first.len() {
        got += res.read(&mut first[got..]).unwrap();
    }
    let before = rss(pid);
    std::thread::sleep(Duration::from_secs(3));
    let after = rss(pid);
    println!(
        "a client that stopped reading: server RSS {:.1} MiB, 3 s later {:.1} MiB",
        mib(before),
        mib(after)
    );
    assert!(
        after < before + (16 << 20),
        "the server grew by {:.1} MiB for a client that does not read",
        mib(after.saturating_sub(before))
    );
    drop(res);
    // The route's stream is dropped with the connection, having produced only what the
    // buffers between the two took.
    let needle = "big stream dropped after ";
    let deadline = Instant::now() + Duration::from_secs(10);
    let produced = loop {
        let stderr = dev.stderr();
        if let Some(line) = stderr
            .lines()
            .rfind(|l| l.contains(needle) && l.contains("of 104857600000 bytes"))
        {
            let rest = &line[line.find(needle).unwrap() + needle.len()..];
            break rest.split(' ').next().unwrap().parse::<u64>().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the stream was not dropped: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "the unread stream produced {:.1} MiB before it was dropped",
        mib(produced)
    );
    assert!(
        produced < 64 << 20,
        "produced {produced} bytes for a stalled client"
    );

    // 3. An async stream fed by a task: a client that goes away drops the stream, and the
    // producer sees it.
    let mut res = Streaming::get(dev.port, "/ticks?n=100000&ms=20", &[]);
    let mut pending = String::new();
    let mut buf = [0u8; 64];
    while !pending.contains("tick 3\n") {
        let n = res.read(&mut buf).unwrap();
        pending.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert!(pending.starts_with("tick 1\ntick 2\ntick 3\n"), "{pending}");
    drop(res);
    assert!(dev.wait_stderr("ticks stream dropped", Duration::from_secs(10)));
    assert!(dev.wait_stderr(
        "ticks producer saw the client leave",
        Duration::from_secs(10)
    ));

    // 4. A stream that makes progress runs past the handler timeout (1 s here)...
    let mut res = Streaming::get(dev.port, "/ticks?n=15&ms=200", &[]);
    let text = res.text_until_end().unwrap();
    assert_eq!(text.lines().count(), 15, "{text}");
    assert_eq!(text.lines().last(), Some("tick 15"));
    // ...one that stalls longer than it between chunks is cut off.
    let mut res = Streaming::get(dev.port, "/ticks?n=3&ms=2500", &[]);
    let cut = res.text_until_end();
    assert!(
        cut.is_err(),
        "a stalled stream must be cut off, got {cut:?}"
    );
    assert!(dev.wait_stderr(
        "the body stream of `routes/ticks.get.rs` gave no chunk for 1 s",
        Duration::from_secs(10)
    ));

    // The sample of docs/routes.md.
    let mut res = Streaming::get(dev.port, "/export?rows=250", &[]);
    assert_eq!(res.header("content-type"), Some("text/csv"));
    let csv = res.text_until_end().unwrap();
    assert_eq!(csv.lines().count(), 250);
    assert_eq!(csv.lines().last(), Some("250,row 250"));

    // 5. A file from disk, byte for byte.
    let mut res = Streaming::get(dev.port, "/file", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    let mut body = Vec::new();
    let mut buf = vec![0u8; 100_000];
    loop {
        let n = res.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let expected = std::fs::read(project.path().join("assets/data.bin")).unwrap();
    assert!(
        body == expected,
        "the file arrived changed ({} bytes)",
        body.len()
    );
    std::fs::remove_file(project.path().join("assets/data.bin")).unwrap();
    let missing = get(dev.port, "/file", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "no file `data.bin`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_share_topics_with_websocket_peers() {
    let news = doc_sample("## Server-sent events");
    let project = Project::with_files(&[
        ("routes/news.get.rs", news.as_str()),
        ("routes/events.get.rs", EVENTS),
        ("routes/_ws.rs", WS),
        ("routes/say.post.rs", SAY),
        ("routes/count.get.rs", COUNT),
    ]);
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let count = move || async move {
        tokio::task::spawn_blocking(move || get(port, "/count", &[]).text())
            .await
            .unwrap()
    };

    // Framing: the retry preamble, a multi-line event with a type and an id, the
    // `Last-Event-ID` the client sent, and a text message to the peer as a `data` event.
    let (mut sse, mut pending, peer_id) = tokio::task::spawn_blocking(move || {
        let mut sse = Streaming::get(
            port,
            "/events?keepalive=300",
            &[("Accept", "text/event-stream"), ("Last-Event-ID", "41")],
        );
        assert_eq!(sse.status, 200);
        assert_eq!(sse.header("content-type"), Some("text/event-stream"));
        assert_eq!(sse.header("cache-control"), Some("no-cache"));
        assert_eq!(sse.header("x-accel-buffering"), Some("no"));
        assert_eq!(sse.header("content-encoding"), None);
        let mut pending = String::new();
        let wait = Duration::from_secs(10);
        assert_eq!(sse.next_block(&mut pending, wait), "retry: 2500\n\n");
        assert_eq!(
            sse.next_block(&mut pending, wait),
            "event: greeting\nid: 1\ndata: line one\ndata: line two\n\n"
        );
        assert_eq!(
            sse.next_block(&mut pending, wait),
            "event: resume\nid: 2\ndata: resumed after 41\n\n"
        );
        let you = sse.next_block(&mut pending, wait);
        let peer_id = you
            .strip_prefix("data: you are ")
            .and_then(|s| s.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{you:?}"))
            .to_owned();
        // Nothing happens for a while: keep-alive comments.
        assert_eq!(sse.next_block(&mut pending, wait), ": keep-alive\n\n");
        assert_eq!(sse.next_block(&mut pending, wait), ": keep-alive\n\n");
        (sse, pending, peer_id)
    })
    .await
    .unwrap();
    assert_eq!(peer_id.len(), 36, "a UUID: {peer_id}");

    // The sample of docs/routes.md.
    tokio::task::spawn_blocking(move || {
        let mut news = Streaming::get(port, "/news", &[("Last-Event-ID", "5")]);
        let (mut pending, wait) = (String::new(), Duration::from_secs(10));
        assert_eq!(news.next_block(&mut pending, wait), "retry: 3000\n\n");
        assert_eq!(
            news.next_block(&mut pending, wait),
            "event: welcome\nid: 1\ndata: hello\ndata: since 5\n\n"
        );
    })
    .await
    .unwrap();

    // The SSE client is a peer of `/_ws`, next to a WebSocket peer.
    let mut ws = ws_connect(&dev.ws_url("/_ws")).await;
    assert_eq!(next_text(&mut ws).await, "ready");
    assert_eq!(count().await, "2");

    // A publish from a WebSocket peer reaches the SSE client; one from an HTTP route reaches
    // both, multi-line text staying one event.
    send_text(&mut ws, "from the socket").await;
    let said = tokio::task::spawn_blocking(move || {
        http(port, "POST", "/say", &[], b"from a route\nsecond line")
    })
    .await
    .unwrap();
    assert_eq!(said.text(), "ok");
    assert_eq!(next_text(&mut ws).await, "from a route\nsecond line");
    let (sse, pending) = tokio::task::spawn_blocking(move || {
        let wait = Duration::from_secs(10);
        let mut events = Vec::new();
        while events.len() < 2 {
            let block = sse.next_block(&mut pending, wait);
            if !block.starts_with(':') {
                events.push(block);
            }
        }
        // The two publishes race (the socket's goes through its hook): any order.
        events.sort();
        assert_eq!(
            events,
            [
                "data: from a route\ndata: second line\n\n",
                "data: from the socket\n\n",
            ]
        );
        (sse, pending)
    })
    .await
    .unwrap();
    assert!(
        pending.is_empty() || pending.starts_with(':'),
        "{pending:?}"
    );

    // The SSE client goes away: its peer leaves the hub and the topic.
    drop(sse);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count().await != "1" {
        assert!(
            Instant::now() < deadline,
            "the event stream's peer is still in the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A publish now reaches the WebSocket peer alone.
    tokio::task::spawn_blocking(move || http(port, "POST", "/say", &[], b"later"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "later");

    // Shutdown ends an open event stream cleanly (its peer closed with 1001, as a
    // WebSocket peer is), so the connection drains instead of holding the shutdown up.
    let mut dev = dev;
    let mut sse = tokio::task::spawn_blocking(move || {
        let mut sse = Streaming::get(port, "/events", &[]);
        let mut pending = String::new();
        assert_eq!(
            sse.next_block(&mut pending, Duration::from_secs(10)),
            "retry: 2500\n\n"
        );
        sse
    })
    .await
    .unwrap();
    dev.signal("TERM");
    let rest = tokio::task::spawn_blocking(move || sse.text_until_end())
        .await
        .unwrap()
        .expect("the event stream ends with its last chunk, not cut off");
    assert!(rest.contains("data: you are "), "{rest:?}");
    assert!(dev.exit_within(Duration::from_secs(30)).is_some());
}
