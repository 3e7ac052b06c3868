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

/// The seed chat over server-sent events and `POST` (`routes/sse.get.rs`, `routes/sse.post.rs`),
/// with a WebSocket peer in the same room: the same frames, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_chat_also_runs_over_server_sent_events() {
    use crate::streaming::Streaming;
    let project = Project::example("websocket");
    let dev = NitroDev::start_async(project.path()).await;
    let port = dev.port;
    let wait = Duration::from_secs(20);

    let mut a = ws_connect(&dev.ws_url("/_ws")).await;
    let a_id = welcome_id(&next_text(&mut a).await);
    send_text(&mut a, "ping").await;
    assert_eq!(
        next_text(&mut a).await,
        r#"{"user":"server","message":"pong"}"#
    );

    // S opens the event stream: its welcome, and A hears it join.
    let (mut s, mut pending, s_id) = tokio::task::spawn_blocking(move || {
        let mut s = Streaming::get(port, "/sse", &[("Accept", "text/event-stream")]);
        assert_eq!(s.status, 200);
        assert_eq!(s.header("content-type"), Some("text/event-stream"));
        let mut pending = String::new();
        let welcome = s.next_block(&mut pending, wait);
        let frame = welcome
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{welcome:?}"));
        let s_id = welcome_id(frame);
        (s, pending, s_id)
    })
    .await
    .unwrap();
    assert_eq!(
        next_text(&mut a).await,
        format!(r#"{{"user":"server","message":"{s_id} 加入了！"}}"#)
    );

    let post = move |id: String, text: &'static str| async move {
        tokio::task::spawn_blocking(move || {
            http(port, "POST", &format!("/sse?id={id}"), &[], text.as_bytes()).status
        })
        .await
        .unwrap()
    };
    // S says hello: echoed to S, published to A, byte for byte as over a WebSocket.
    assert_eq!(post(s_id.clone(), "hello").await, 204);
    let expected = format!(r#"{{"user":"{s_id}","message":"hello"}}"#);
    assert_eq!(next_text(&mut a).await, expected);
    // A says hi: S hears it. S's ping gets a pong, to S only.
    send_text(&mut a, "hi").await;
    assert_eq!(
        next_text(&mut a).await,
        format!(r#"{{"user":"{a_id}","message":"hi"}}"#)
    );
    assert_eq!(post(s_id.clone(), "ping").await, 204);
    let a_id2 = a_id.clone();
    let (s, _pending) = tokio::task::spawn_blocking(move || {
        let mut next = || {
            let block = s.next_block(&mut pending, wait);
            block
                .strip_prefix("data: ")
                .and_then(|f| f.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("{block:?}"))
                .to_owned()
        };
        assert_eq!(next(), expected);
        assert_eq!(next(), format!(r#"{{"user":"{a_id2}","message":"hi"}}"#));
        assert_eq!(next(), r#"{"user":"server","message":"pong"}"#);
        (s, pending)
    })
    .await
    .unwrap();
    expect_silence(&mut a, QUIET).await;

    // Only an open event stream may post, and only for itself.
    assert_eq!(post("nobody".to_owned(), "x").await, 404);
    assert_eq!(post(a_id.clone(), "x").await, 404);

    // S goes away: A hears it leave.
    let left = std::time::Instant::now();
    drop(s);
    assert_eq!(
        tokio::time::timeout(wait, next_text(&mut a)).await.unwrap(),
        format!(r#"{{"user":"server","message":"{s_id} 离开了！"}}"#)
    );
    println!(
        "the departure was noticed after {:.2} s",
        left.elapsed().as_secs_f64()
    );
    drop(dev);
}
