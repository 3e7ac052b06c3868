//! `nitro test` runs the tests written in route files, by route file; `nitro doc` builds the
//! `nitro` crate's docs from an installed `nitro` (no clone).

use crate::support::*;

const SUM: &str = r#"use nitro::{Request, Result};

pub fn handler(req: &Request) -> Result<String> {
    let a: i64 = req.param_as("a")?;
    let limit: i64 = nitro::assets::read_to_string("limit.txt")?.trim().parse()?;
    Ok((a.min(limit) * 2).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_the_limit() {
        let req = Request::builder("GET", "/sum/21").param("a", "21").build();
        assert_eq!(handler(&req).unwrap(), "42");
        let req = Request::builder("GET", "/sum/x").param("a", "x").build();
        assert_eq!(handler(&req).unwrap_err().status(), 400);
    }
}
"#;

fn broken_test(expected: &str) -> String {
    format!(
        "pub fn handler() -> &'static str {{ \"pong\" }}\n\n\
         #[test]\nfn answers_pong() {{\n    assert_eq!(handler(), \"{expected}\");\n}}\n"
    )
}

#[test]
fn nitro_test_runs_route_tests_and_names_the_failing_file() {
    let project = Project::with_files(&[
        ("routes/sum/[a].get.rs", SUM),
        ("routes/ping.rs", &broken_test("ping")),
        ("assets/limit.txt", "100\n"),
    ]);
    let run = || {
        let out = nitro().arg("test").arg(project.path()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run();
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("the tests of `routes/ping.rs` failed"),
        "{all}"
    );
    assert!(
        !all.contains("the tests of `routes/sum/[a].get.rs` failed"),
        "{all}"
    );
    assert!(all.contains("answers_pong"), "{all}");

    project.write("routes/ping.rs", &broken_test("pong"));
    let (code, stdout, stderr) = run();
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("the tests of 2 route files passed"), "{all}");
    assert!(all.contains("testing routes/sum/[a].get.rs"), "{all}");
}

/// A chat socket with tests of its hooks on `nitro::testing` peers; `{EXPECTED}` is what the
/// test that can be made to fail expects the welcome to be.
const CHAT: &str = r#"use nitro::ws::{Close, Message, Peer, Upgrade};
use nitro::{Error, Request};

pub fn upgrade(req: &Request) -> Result<Upgrade, Error> {
    let user = req.query("user").ok_or_else(|| Error::unauthorized("pass ?user=…"))?;
    Ok(Upgrade::accept().context("user", user))
}

pub fn open(peer: &Peer) {
    let user: String = peer.context("user").unwrap_or_default();
    peer.send(format!("welcome {user}"));
    peer.publish("chat", format!("{user} joined"));
    peer.subscribe("chat");
}

pub async fn message(peer: Peer, message: Message) {
    if message.text() == "quit" {
        peer.close(4000, "bye");
    } else {
        peer.publish("chat", message.text());
    }
}

pub fn close(peer: &Peer, details: &Close) {
    peer.publish("chat", format!("left ({})", details.code));
}

#[cfg(test)]
mod tests {
    use super::*;
    use nitro::testing::{block_on, TestHub};

    fn join(hub: &TestHub, user: &str) -> nitro::testing::TestPeer {
        let req = Request::builder("GET", &format!("/_ws?user={user}")).build();
        let peer = hub.connect(req, upgrade).expect("accepted");
        open(&peer);
        peer
    }

    #[test]
    fn upgrade_needs_a_user() {
        let refused = TestHub::new().connect(Request::builder("GET", "/_ws").build(), upgrade);
        assert_eq!(refused.unwrap_err().status(), 401);
    }

    #[test]
    fn messages_reach_the_others_not_the_sender() {
        let hub = TestHub::new();
        let ada = join(&hub, "ada");
        let bob = join(&hub, "bob");
        block_on(message(ada.peer(), Message::from("hi")));
        assert_eq!(ada.sent_text(), ["welcome ada", "bob joined"]);
        assert_eq!(bob.sent_text(), ["welcome bob", "hi"]);
        assert_eq!(hub.published_text("chat"), ["ada joined", "bob joined", "hi"]);
        assert_eq!(bob.subscriptions(), ["chat"]);
    }

    #[test]
    fn quit_closes_and_close_says_goodbye() {
        let hub = TestHub::new();
        let ada = join(&hub, "ada");
        let bob = join(&hub, "bob");
        block_on(message(bob.peer(), Message::from("quit")));
        assert_eq!(bob.closed(), Some(Close::new(4000, "bye")));
        close(&bob, &Close::new(4000, "bye"));
        assert_eq!(ada.sent_text().last().map(String::as_str), Some("left (4000)"));
    }

    #[test]
    fn the_welcome_names_the_user() {
        let ada = join(&TestHub::new(), "ada");
        assert_eq!(ada.sent_text(), ["{EXPECTED}"]);
    }
}
"#;

#[test]
fn nitro_test_runs_websocket_hook_tests_on_test_peers() {
    let project =
        Project::with_files(&[("routes/_ws.rs", &CHAT.replace("{EXPECTED}", "hello ada"))]);
    let run = || {
        let out = nitro().arg("test").arg(project.path()).output().unwrap();
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), all)
    };
    // One test fails on purpose: its assertion and the file are reported, the others pass.
    let (code, all) = run();
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("the tests of `routes/_ws.rs` failed"), "{all}");
    assert!(all.contains("the_welcome_names_the_user"), "{all}");
    assert!(all.contains(r#"right: ["hello ada"]"#), "{all}");
    assert!(all.contains("3 passed; 1 failed"), "{all}");

    project.write("routes/_ws.rs", &CHAT.replace("{EXPECTED}", "welcome ada"));
    let (code, all) = run();
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("4 passed; 0 failed"), "{all}");
    assert!(all.contains("the tests of 1 route file passed"), "{all}");
}

#[test]
fn nitro_doc_builds_the_route_api_docs() {
    let project = Project::with_files(&[(
        "routes/index.rs",
        "pub fn handler() -> &'static str { \"hi\" }\n",
    )]);
    let out = nitro()
        .arg("doc")
        .arg(project.path())
        .arg("--no-open")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::path::PathBuf::from(stdout.trim());
    assert!(index.ends_with("doc/nitro/index.html"), "{stdout}");
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(
        html.contains("param_as") || html.contains("Request"),
        "the nitro crate's docs"
    );
}
