//! The same chat over server-sent events, for clients that cannot open a WebSocket.
//!
//! `GET /sse` is an event stream whose peer joins the WebSocket route's namespace (`/_ws`) and
//! its `chat` topic, so it hears everything the WebSocket peers say, and they hear it: the
//! welcome names the peer's id, which the client sends its messages with (`POST /sse?id=…`,
//! `routes/sse.post.rs`). The frames are the WebSocket chat's JSON, one `data` event each.

use nitro::json;
use nitro::sse::EventStream;

pub async fn handler(req: nitro::Request) -> nitro::Result<EventStream> {
    let stream = EventStream::in_namespace(&req, "/_ws")?.on_close(|peer| {
        peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 离开了！") }));
    });
    let peer = stream.peer();
    peer.send(json!({ "user": "server", "message": format!("欢迎 {peer}!") }));
    peer.publish("chat", json!({ "user": "server", "message": format!("{peer} 加入了！") }));
    peer.subscribe("chat");
    Ok(stream)
}
