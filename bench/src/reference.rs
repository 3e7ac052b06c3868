//! The bare servers `compare` measures nitro-rs against: the least work the same crates can do
//! for the same protocol, so the ratio shows what the framework costs.
//!
//! - [`websocket`]: tokio-tungstenite speaking the seed chat protocol (`examples/websocket`),
//!   the hooks' logic inline on each connection's task, one topic map behind a lock, and a
//!   writer task per peer that writes whatever is queued before it flushes.
//! - [`http`]: hyper answering every request with one file held in memory.
//!
//! Both run on tokio's multi-thread runtime with its default worker count and tungstenite's
//! buffers at nitro-rs's sizes (2 KiB), as `nitro start` does. Each prints
//! `listening on http://127.0.0.1:PORT` on stdout once bound.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Subscribers of each topic: peer key → its outbound queue.
type Topics = HashMap<String, HashMap<u64, mpsc::UnboundedSender<Message>>>;

#[derive(Default)]
struct Chat {
    topics: RwLock<Topics>,
}

impl Chat {
    fn publish(&self, topic: &str, frame: &Message, except: u64) {
        let topics = self.topics.read().expect("no panics under the lock");
        for (key, queue) in topics.get(topic).into_iter().flatten() {
            if *key != except {
                let _ = queue.send(frame.clone());
            }
        }
    }

    fn subscribe(&self, topic: &str, key: u64, queue: mpsc::UnboundedSender<Message>) {
        let mut topics = self.topics.write().expect("no panics under the lock");
        topics
            .entry(topic.to_owned())
            .or_default()
            .insert(key, queue);
    }

    fn leave(&self, key: u64) {
        let mut topics = self.topics.write().expect("no panics under the lock");
        for subscribers in topics.values_mut() {
            subscribers.remove(&key);
        }
    }
}

/// `{"user":…,"message":…}`, the seed's frame.
fn chat_frame(user: &str, message: &str) -> Message {
    let value = serde_json::json!({ "user": user, "message": message });
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn listen(port: u16) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    println!("listening on http://127.0.0.1:{port}");
    Ok(listener)
}

/// Serves the seed chat on every path of `127.0.0.1:port` until killed.
pub(crate) fn websocket(port: u16) -> std::io::Result<()> {
    runtime().block_on(async {
        let listener = listen(port).await?;
        let chat = Arc::new(Chat::default());
        let keys = AtomicU64::new(0);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let key = keys.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(chat_peer(stream, chat.clone(), key));
        }
    })
}

async fn chat_peer(stream: TcpStream, chat: Arc<Chat>, key: u64) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(2048)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (queue, mut queued) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(first) = queued.recv().await {
            let mut next = Some(first);
            while let Some(frame) = next {
                if sink.feed(frame).await.is_err() {
                    return;
                }
                next = queued.try_recv().ok();
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });

    // open
    let id = uuid::Uuid::new_v4().to_string();
    let _ = queue.send(chat_frame("server", &format!("欢迎 {id}!")));
    chat.publish(
        "chat",
        &chat_frame("server", &format!("{id} 加入了！")),
        key,
    );
    chat.subscribe("chat", key, queue.clone());

    // message
    while let Some(Ok(incoming)) = source.next().await {
        let text = match &incoming {
            Message::Text(text) => text.as_str().to_owned(),
            Message::Binary(data) => String::from_utf8_lossy(data).into_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        if text.contains("ping") {
            let _ = queue.send(chat_frame("server", "pong"));
        } else {
            let frame = chat_frame(&id, &text);
            let _ = queue.send(frame.clone());
            chat.publish("chat", &frame, key);
        }
    }

    // close
    chat.leave(key);
    chat.publish(
        "chat",
        &chat_frame("server", &format!("{id} 离开了！")),
        key,
    );
    drop(queue);
    let _ = writer.await;
}

/// Answers every request on `127.0.0.1:port` with `body` as HTML until killed.
pub(crate) fn http(port: u16, body: Vec<u8>) -> std::io::Result<()> {
    let body = Bytes::from(body);
    runtime().block_on(async {
        let listener = listen(port).await?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let mut response = hyper::Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
