//! A chat message from an event-stream client (`routes/sse.get.rs`): `POST /sse?id=<its id>`
//! with the text as the body. The chat's `message` hook, for a peer that cannot send frames.

use nitro::ws::Peer;
use nitro::{Error, Request, Response, json};

pub async fn handler(req: Request) -> nitro::Result<Response> {
    let id = req
        .query("id")
        .ok_or_else(|| Error::bad_request("`id` is missing: send the id the welcome named"))?;
    // Only event-stream peers post here: a WebSocket peer speaks for itself.
    let peer: Peer = nitro::ws::peers_in("/_ws")
        .into_iter()
        .find(|peer| peer.id() == id && peer.request().path() == "/sse")
        .ok_or_else(|| Error::not_found(format!("no event stream `{id}` is open")))?;
    let text = req.text()?;
    if text.contains("ping") {
        peer.send(json!({ "user": "server", "message": "pong" }));
    } else {
        let msg = json!({ "user": peer.to_string(), "message": text });
        peer.send(&msg); // echo
        peer.publish("chat", msg);
    }
    Ok(Response::no_content())
}
