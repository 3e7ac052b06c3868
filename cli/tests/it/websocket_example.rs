//! `nitro dev examples/websocket`: the seed chat, frame for frame, plus the page and errors.

use crate::support::*;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_chat_frames_match_the_original() {
    let project = Project::example("websocket");
    let dev = NitroDev::start_async(project.path()).await;
    let url = dev.ws_url("/_ws");

    // A connects: only the welcome.
    let mut a = ws_connect(&url).await;
    let a_id = welcome_id(&next_text(&mut a).await);
    assert_eq!(a_id.len(), 36, "peer id is a UUID: {a_id}");
    assert_eq!(&a_id[14..15], "4", "UUID v4: {a_id}");
    // The welcome is sent before `open` subscribes A to the topic; a hook of A that runs after
    // `open` (hooks of one peer run in order) proves A is subscribed before B joins. Without
    // it, B's join could be published first on a busy machine and A would never hear it.
    send_text(&mut a, "ping").await;
    assert_eq!(
        next_text(&mut a).await,
        r#"{"user":"server","message":"pong"}"#
    );

    // B connects: B gets its welcome, A hears the join, B does not.
    let mut b = ws_connect(&url).await;
    let b_id = welcome_id(&next_text(&mut b).await);
    assert_ne!(a_id, b_id);
    assert_eq!(
        next_text(&mut a).await,
        format!(r#"{{"user":"server","message":"{b_id} 加入了！"}}"#)
    );
    expect_silence(&mut b, QUIET).await;

    // A says hello: echoed to A and published to B, byte for byte.
    send_text(&mut a, "hello").await;
    let expected = format!(r#"{{"user":"{a_id}","message":"hello"}}"#);
    assert_eq!(next_text(&mut a).await, expected);
    assert_eq!(next_text(&mut b).await, expected);

    // Anything containing `ping` gets a pong, to the sender only.
    send_text(&mut b, "is this a ping?").await;
    assert_eq!(
        next_text(&mut b).await,
        r#"{"user":"server","message":"pong"}"#
    );
    expect_silence(&mut a, QUIET).await;

    // A leaves: B hears it.
    a.close(None).await.unwrap();
    assert_eq!(
        next_text(&mut b).await,
        format!(r#"{{"user":"server","message":"{a_id} 离开了！"}}"#)
    );
    drop(dev);
}

#[test]
fn page_assets_and_errors() {
    let project = Project::example("websocket");
    let dev = NitroDev::start(project.path());

    let page = dev.get_with("/", &[("accept", "text/html")]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text().contains("id=\"messages\""),
        "the chat page is served"
    );

    let icon = dev.get("/favicon.svg");
    assert_eq!(icon.status, 200);
    assert!(
        icon.header("content-type")
            .unwrap()
            .starts_with("image/svg+xml")
    );

    // `GET /_ws` without an upgrade: exactly Nitro's 426.
    let ws = dev.get("/_ws");
    assert_eq!(ws.status, 426);
    assert_eq!(ws.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(ws.text(), "WebSocket upgrade is required.");

    // A missing asset is a 404 (the page fallback is for page URLs, not files).
    let missing = http(
        dev.port,
        "GET",
        "/missing.png",
        &[("accept", "image/*")],
        b"",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["status"], 404);

    // An unknown page URL gets the page (the static renderer).
    let deep = http(
        dev.port,
        "GET",
        "/some/page",
        &[("accept", "text/html")],
        b"",
    );
    assert_eq!(deep.status, 200);
    assert!(deep.text().contains("id=\"messages\""));
}

#[test]
fn upgrade_on_a_path_without_websocket_route_is_refused() {
    let project = Project::example("websocket");
    let dev = NitroDev::start(project.path());
    let res = http(
        dev.port,
        "GET",
        "/elsewhere",
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    assert_ne!(res.status, 101);
    assert_eq!(res.status, 404);
    assert!(res.text().contains("WebSocket"), "{}", res.text());
}
