//! A real server on 127.0.0.1:0, raw HTTP/1.1 over TCP, tokio-tungstenite clients, and
//! route modules written in Rust.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use nitro_router::{RouteTable, ScanOptions};
use nitro_runtime::module::{
    CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse, UpgradeDecision,
};
use nitro_runtime::ws::PeerRef;
use nitro_runtime::{App, Hub, RouteEntry, Server, ServerConfig, ServerError, ServerHandle};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Server

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub async fn start(app: App) -> TestServer {
        TestServer::with(app, |_| {}).await
    }

    pub async fn with(app: App, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::with_hub(app, Hub::new(), configure).await
    }

    /// [`TestServer::with`] on a hub the test made (to set route rules or storage first).
    pub async fn with_hub(
        app: App,
        hub: Arc<Hub>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        config.dev = true;
        configure(&mut config);
        let server = Server::bind(config, hub, app).await.unwrap();
        let addr = server.local_addr();
        let handle = server.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            handle,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Triggers shutdown and waits for `run_until` to return.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("shutdown within the deadline")
                .unwrap()
                .unwrap();
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

/// An app from route files (relative to `routes/`) and the modules that implement them
/// (keyed by their `file()`).
pub fn app(files: &[&str], modules: Vec<Arc<dyn RouteModule>>) -> App {
    let table = RouteTable::from_files(files, &ScanOptions { websocket: true }).unwrap();
    let routes = modules
        .into_iter()
        .map(|module| (module.file().to_owned(), RouteEntry::Loaded(module)))
        .collect::<HashMap<_, _>>();
    App::new(table, routes)
}

pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn {
            reader: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    /// Sends `head` (request line and headers, without the final blank line) and `body`, and
    /// reads one response (no body for HEAD or 304).
    pub async fn send(&mut self, head: &str, body: &[u8]) -> Reply {
        let mut request = head.replace('\n', "\r\n");
        if !body.is_empty() {
            request.push_str(&format!("\r\nContent-Length: {}", body.len()));
        }
        request.push_str("\r\n\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let head_request = head.starts_with("HEAD ");
        tokio::time::timeout(TIMEOUT, self.read_reply(head_request))
            .await
            .expect("a response in time")
    }

    async fn read_reply(&mut self, head_request: bool) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line {line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 304 || status == 204 || status == 101 {
            return reply;
        }
        if let Some(length) = reply.header("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.reader.read_exact(&mut body).await.unwrap();
            reply.body = body;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                line.clear();
                self.reader.read_line(&mut line).await.unwrap();
                let size = usize::from_str_radix(line.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&chunk[..size]);
            }
        } else {
            self.reader.read_to_end(&mut reply.body).await.unwrap();
        }
        reply
    }
}

/// One request on a fresh connection. `extra` are header lines.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[&str],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\nHost: {addr}");
    for line in extra {
        head.push('\n');
        head.push_str(line);
    }
    Conn::open(addr).await.send(&head, body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"").await
}

/// The header lines of a valid upgrade request.
pub const UPGRADE: [&str; 4] = [
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

// ---------------------------------------------------------------------------------------------
// WebSocket clients

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(server: &TestServer, path: &str) -> Client {
    let (client, response) = tokio_tungstenite::connect_async(server.ws_url(path))
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {path}: {err}"));
    assert_eq!(response.status(), 101);
    client
}

/// The next data or close message, skipping pings and pongs.
pub async fn next(client: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("no error");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

pub async fn next_text(client: &mut Client) -> String {
    match next(client).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

pub async fn next_close(client: &mut Client) -> Option<CloseFrame> {
    loop {
        match next(client).await {
            Message::Close(frame) => return frame,
            Message::Text(_) | Message::Binary(_) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    }
}

/// Asserts that nothing arrives for a short while.
pub async fn quiet(client: &mut Client) {
    if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(150), client.next()).await
    {
        panic!("expected nothing, got {message:?}");
    }
}

pub async fn send(client: &mut Client, text: &str) {
    use futures_util::SinkExt;
    client.send(Message::text(text)).await.unwrap();
}

/// `{"user":"…","message":"…"}` with that key order, as the seed chat sends.
pub fn chat_json(user: &str, message: &str) -> String {
    format!(
        "{{\"user\":{},\"message\":{}}}",
        serde_json::Value::from(user),
        serde_json::Value::from(message)
    )
}

/// Connects and returns the client with its peer id, read from the welcome message.
pub async fn join(server: &TestServer, path: &str) -> (Client, String) {
    let mut client = connect(server, path).await;
    let welcome = next_text(&mut client).await;
    let value: serde_json::Value = serde_json::from_str(&welcome).unwrap();
    let message = value["message"].as_str().unwrap();
    let id = message
        .strip_prefix("欢迎 ")
        .and_then(|rest| rest.strip_suffix('!'))
        .unwrap_or_else(|| panic!("not a welcome: {welcome}"))
        .to_owned();
    assert_eq!(welcome, chat_json("server", &format!("欢迎 {id}!")));
    (client, id)
}

// ---------------------------------------------------------------------------------------------
// Route modules

/// An HTTP route that answers with a JSON description of the request, and `x-version`.
pub struct Echo {
    pub file: &'static str,
    pub version: u32,
}

impl RouteModule for Echo {
    fn file(&self) -> &str {
        self.file
    }

    fn http(&self, req: &RequestInfo) -> Result<HttpOutcome, CallError> {
        let params: serde_json::Map<_, _> = req
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        let body = serde_json::json!({
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "params": params,
            "body": String::from_utf8_lossy(&req.body),
            "remote": req.remote_addr,
            "user_agent": req.headers.iter().find(|(n, _)| n == "user-agent").map(|(_, v)| v.clone()),
        });
        Ok(HttpOutcome::Response(RouteResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("x-version".into(), self.version.to_string().into_bytes()),
            ],
            body: body.to_string().into_bytes(),
        }))
    }
}

/// `routes/slow.rs`: answers `slow` after 500 ms, and says when a call has started, so a test
/// can act while the request is surely in flight.
pub struct Slow {
    pub started: Arc<tokio::sync::Notify>,
}

impl RouteModule for Slow {
    fn file(&self) -> &str {
        "routes/slow.rs"
    }

    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        self.started.notify_one();
        std::thread::sleep(Duration::from_millis(500));
        Ok(HttpOutcome::Response(RouteResponse {
            status: 200,
            headers: Vec::new(),
            body: b"slow".to_vec(),
        }))
    }
}

/// HTTP routes that go wrong in various ways, chosen by file name.
pub struct Faulty {
    pub file: &'static str,
}

impl RouteModule for Faulty {
    fn file(&self) -> &str {
        self.file
    }

    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        match self.file {
            // What the loader reports for a panic caught inside a route library.
            "routes/boom.rs" => Err(CallError::Panicked(
                "panicked at routes/boom.rs:3:5:\nboom".into(),
            )),
            // An in-process route that really panics.
            "routes/explode.rs" => panic!("real explosion"),
            "routes/bad-header.rs" => Ok(HttpOutcome::Response(RouteResponse {
                status: 200,
                headers: vec![("bad header".into(), b"x".to_vec())],
                body: Vec::new(),
            })),
            "routes/bad-status.rs" => Ok(HttpOutcome::Response(RouteResponse {
                status: 1000,
                headers: Vec::new(),
                body: Vec::new(),
            })),
            "routes/teapot.rs" => Ok(HttpOutcome::Error {
                status: 418,
                message: "I am a teapot".into(),
                data: Some("{\"a\":1}".into()),
            }),
            other => panic!("no such faulty route {other}"),
        }
    }
}

pub type Log = Arc<Mutex<Vec<String>>>;

pub fn logged(log: &Log, entry: &str) -> bool {
    log.lock().unwrap().iter().any(|line| line == entry)
}

/// The seed chat, with extra commands for the tests, written against the host `Peer` API.
pub struct Chat {
    pub file: &'static str,
    pub version: u32,
    pub log: Log,
    /// `open` fails (as a panicking route would).
    pub fail_open: bool,
}

impl Chat {
    pub fn new(file: &'static str, log: &Log) -> Chat {
        Chat {
            file,
            version: 1,
            log: log.clone(),
            fail_open: false,
        }
    }

    fn record(&self, peer: &PeerRef, what: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {what}", peer.id()));
    }
}

fn text(message: String) -> Bytes {
    Bytes::from(message)
}

impl RouteModule for Chat {
    fn file(&self) -> &str {
        self.file
    }

    fn ws_upgrade(&self, req: &RequestInfo) -> Result<UpgradeDecision, CallError> {
        if req.query.contains("reject") {
            return Ok(UpgradeDecision::Reject {
                status: 401,
                headers: vec![("x-why".into(), b"no-token".to_vec())],
                body: b"Unauthorized".to_vec(),
            });
        }
        if req.query.contains("upgrade-panic") {
            return Err(CallError::Panicked("upgrade boom".into()));
        }
        let offered = req
            .headers
            .iter()
            .find(|(name, _)| name == "sec-websocket-protocol")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        Ok(UpgradeDecision::Accept {
            headers: vec![("x-hello".into(), b"world".to_vec())],
            protocol: offered
                .split(',')
                .map(str::trim)
                .find(|p| *p == "chat.v1")
                .map(str::to_owned),
            namespace: req.query.contains("ns=custom").then(|| "custom".to_owned()),
            context: vec![("user".into(), "\"u1\"".into())],
        })
    }

    fn ws_open(&self, peer: &PeerRef) -> Result<(), CallError> {
        self.record(peer, "open".into());
        if self.fail_open {
            return Err(CallError::Panicked(
                "panicked at routes/fragile/_ws.rs:1:1:\nopen boom".into(),
            ));
        }
        peer.send(text(chat_json("server", &format!("欢迎 {peer}!"))), false);
        peer.subscribe("chat");
        peer.publish(
            "chat",
            text(chat_json("server", &format!("{peer} 加入了！"))),
            false,
            false,
        );
        Ok(())
    }

    fn ws_message(&self, peer: &PeerRef, data: &[u8], binary: bool) -> Result<(), CallError> {
        let message = String::from_utf8_lossy(data).into_owned();
        self.record(peer, format!("message {message}"));
        match message.as_str() {
            "panic" => Err(CallError::Panicked(
                "panicked at routes/_ws.rs:9:9:\nhook boom".into(),
            )),
            "real-panic" => panic!("real hook boom"),
            "version" => {
                peer.send(text(format!("v{}", self.version)), false);
                Ok(())
            }
            "context" => {
                let fields: Vec<String> = peer
                    .context_keys()
                    .iter()
                    .map(|key| {
                        format!(
                            "{}:{}",
                            serde_json::Value::from(key.as_str()),
                            peer.context_get(key).unwrap()
                        )
                    })
                    .collect();
                peer.send(text(format!("{{{}}}", fields.join(","))), false);
                Ok(())
            }
            "info" => {
                let info = serde_json::json!({
                    "namespace": peer.namespace(),
                    "remote": peer.remote_addr(),
                    "path": peer.request().path,
                    "query": peer.request().query,
                    "peers": peer.peers().len(),
                    "topics": peer.topics(),
                    "open": peer.is_open(),
                });
                peer.send(text(info.to_string()), false);
                Ok(())
            }
            "close-me" => {
                assert!(!peer.close(1001, "not an application code"));
                assert!(peer.close(4001, "server says bye"));
                Ok(())
            }
            _ if binary => {
                peer.send(Bytes::copy_from_slice(data), true);
                Ok(())
            }
            _ if message.contains("ping") => {
                peer.send(text(chat_json("server", "pong")), false);
                Ok(())
            }
            _ => {
                let out = text(chat_json(peer.id(), &message));
                peer.send(out.clone(), false);
                peer.publish("chat", out, false, false);
                Ok(())
            }
        }
    }

    fn ws_close(&self, peer: &PeerRef, code: u16, reason: &str) -> Result<(), CallError> {
        self.record(peer, format!("close {code} {reason}"));
        assert!(!peer.send(Bytes::from_static(b"too late"), false));
        peer.publish(
            "chat",
            text(chat_json("server", &format!("{peer} 离开了！"))),
            false,
            false,
        );
        Ok(())
    }

    fn ws_error(&self, peer: &PeerRef, error: &str) -> Result<(), CallError> {
        self.record(peer, format!("error {error}"));
        Ok(())
    }
}

/// A folder that is removed at the end of the test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn write(path: PathBuf, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}
