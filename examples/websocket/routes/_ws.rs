//! The chat from Nitro's `examples/websocket`, hook for hook.
//!
//! Served at `/_ws`. Every peer gets a welcome, the others hear who joined and left, messages
//! are echoed to the sender and published to everyone else, and `ping` gets a `pong`.
//!
//! The hooks are `async fn`s, polled on the server's own workers: they may `.await` (a database,
//! an HTTP call) but must not block. A blocking hook is written as a plain `fn` instead.

use nitro::json;
use nitro::ws::{Close, Message, Peer};

pub async fn open(peer: Peer) {
    peer.send(json!({ "user": "server", "message": format!("欢迎 {peer}!") }));
    peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 加入了！") }));
    peer.subscribe("chat");
}

pub async fn message(peer: Peer, message: Message) {
    if message.text().contains("ping") {
        peer.send(json!({ "user": "server", "message": "pong" }));
    } else {
        let msg = json!({ "user": peer.to_string(), "message": message.to_string() });
        peer.send(&msg); // echo
        peer.publish("chat", msg);
    }
}

pub async fn close(peer: Peer, _details: Close) {
    peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 离开了！") }));
}
