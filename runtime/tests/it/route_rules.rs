//! Route rules (issue #12) on a real server: headers and redirects by pattern with the most
//! specific winning, CORS preflights and headers, and the route cache (a counter in the route
//! proves when it ran): hits, expiry after `max_age`, stale-while-revalidate, `vary`, and
//! answers that are never cached (`set-cookie`, non-2xx).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nitro_runtime::Hub;
use nitro_runtime::module::{CallError, HttpOutcome, RequestInfo, RouteModule, RouteResponse};
use nitro_runtime::route_rules::RouteRules;

use crate::common::*;

/// A route that counts its calls and answers `FILE call N` (plus a cookie or a 404 for the
/// files named so).
struct Counted {
    file: &'static str,
    calls: Arc<AtomicUsize>,
}

impl RouteModule for Counted {
    fn file(&self) -> &str {
        self.file
    }

    fn http(&self, _: &RequestInfo) -> Result<HttpOutcome, CallError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut headers = vec![
            ("content-type".into(), b"text/plain".to_vec()),
            ("x-route".into(), b"own".to_vec()),
        ];
        let mut status = 200;
        match self.file {
            "routes/cookie.rs" => headers.push(("set-cookie".into(), b"id=1".to_vec())),
            "routes/missing.rs" => status = 404,
            _ => {}
        }
        Ok(HttpOutcome::Response(RouteResponse {
            status,
            headers,
            body: format!("{} call {n}", self.file).into_bytes(),
        }))
    }
}

const FILES: [&str; 5] = [
    "routes/page.rs",
    "routes/cookie.rs",
    "routes/missing.rs",
    "routes/api/items.rs",
    "routes/api/users/[id].rs",
];

/// A server with `rules` (TOML-like JSON, as `nitro.json` records them) and a counter per
/// route file.
async fn server(rules: serde_json::Value) -> (TestServer, Arc<Hub>, Vec<Arc<AtomicUsize>>) {
    let counters: Vec<Arc<AtomicUsize>> = FILES.iter().map(|_| Arc::default()).collect();
    let modules: Vec<Arc<dyn RouteModule>> = FILES
        .iter()
        .zip(&counters)
        .map(|(file, calls)| {
            Arc::new(Counted {
                file,
                calls: calls.clone(),
            }) as Arc<dyn RouteModule>
        })
        .collect();
    let hub = Hub::new();
    let rules: RouteRules = serde_json::from_value(rules).unwrap();
    hub.route_rules().set(rules);
    let names: Vec<&str> = FILES.iter().map(|f| &f["routes/".len()..]).collect();
    let server = TestServer::with_hub(app(&names, modules), hub.clone(), |_| {}).await;
    (server, hub, counters)
}

fn calls(counters: &[Arc<AtomicUsize>], file: &str) -> usize {
    let i = FILES.iter().position(|f| *f == file).unwrap();
    counters[i].load(Ordering::SeqCst)
}

fn header(name: &str, value: &str) -> serde_json::Value {
    serde_json::json!({ "headers": { name: value } })
}

#[tokio::test]
async fn headers_and_redirects_by_pattern_the_most_specific_winning() {
    let (server, _, _) = server(serde_json::json!([
        ["/**", { "headers": { "x-level": "all", "x-frame-options": "DENY", "x-route": "rule" } }],
        ["/api/**", header("x-level", "api")],
        ["/api/users/:id", header("x-level", "user")],
        ["/api/users/7", header("x-level", "seven")],
        ["/old/**", { "redirect": { "to": "/api/**", "status": 308 } }],
        ["/gone", { "redirect": { "to": "https://example.com/", "status": 301 } }],
    ]))
    .await;
    let addr = server.addr;

    let page = get(addr, "/page").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-level"), Some("all"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // The route's own header wins over a rule's.
    assert_eq!(page.header("x-route"), Some("own"));
    assert_eq!(get(addr, "/api/items").await.header("x-level"), Some("api"));
    let user = get(addr, "/api/users/8").await;
    assert_eq!(user.header("x-level"), Some("user"));
    assert_eq!(user.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        get(addr, "/api/users/7").await.header("x-level"),
        Some("seven")
    );
    // Rules apply to answers the route did not make too (a 404 of the server).
    assert_eq!(
        get(addr, "/nothing-here").await.header("x-level"),
        Some("all")
    );

    let moved = get(addr, "/old/users/7?x=1").await;
    assert_eq!(moved.status, 308);
    assert_eq!(moved.header("location"), Some("/api/users/7?x=1"));
    let gone = request(addr, "POST", "/gone", &[], b"").await;
    assert_eq!(gone.status, 301);
    assert_eq!(gone.header("location"), Some("https://example.com/"));
}

#[tokio::test]
async fn cors_preflights_are_answered_and_answers_carry_the_policy() {
    let (server, _, counters) = server(serde_json::json!([
        ["/api/**", { "cors": {
            "origins": ["*"], "methods": ["GET", "POST"], "headers": [], "max_age": 600
        } }],
        ["/api/users/**", { "cors": {
            "origins": ["https://app.example"], "methods": ["GET"], "headers": ["x-token"],
            "credentials": true, "max_age": 60, "expose_headers": ["x-route"]
        } }],
    ]))
    .await;
    let addr = server.addr;

    let preflight = request(
        addr,
        "OPTIONS",
        "/api/items",
        &[
            "Origin: https://other.example",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: content-type, x-custom",
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    assert_eq!(calls(&counters, "routes/api/items.rs"), 0, "the route ran");

    let answer = request(
        addr,
        "GET",
        "/api/items",
        &["Origin: https://other.example"],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));

    // Listed origins with credentials: the origin is echoed, others get no policy.
    let listed = request(
        addr,
        "OPTIONS",
        "/api/users/7",
        &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: GET",
        ],
        b"",
    )
    .await;
    assert_eq!(listed.status, 204);
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        listed.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        listed.header("access-control-allow-headers"),
        Some("x-token")
    );
    let stranger = request(
        addr,
        "OPTIONS",
        "/api/users/7",
        &[
            "Origin: https://evil.example",
            "Access-Control-Request-Method: GET",
        ],
        b"",
    )
    .await;
    assert_eq!(stranger.status, 204);
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    let answer = request(
        addr,
        "GET",
        "/api/users/7",
        &["Origin: https://app.example"],
        b"",
    )
    .await;
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        answer.header("access-control-expose-headers"),
        Some("x-route")
    );
    assert_eq!(answer.header("vary"), Some("origin"));
    // Without `Origin` (not a cross-origin request) nothing is added but `Vary`.
    assert_eq!(
        get(addr, "/api/users/7")
            .await
            .header("access-control-allow-origin"),
        None
    );
}

fn cache(max_age: u64, swr: u64, vary: &[&str]) -> serde_json::Value {
    serde_json::json!({ "cache": { "max_age": max_age, "swr": swr, "storage": "memory", "vary": vary } })
}

#[tokio::test]
async fn a_cached_route_runs_once_until_its_entry_expires() {
    let (server, hub, counters) = server(serde_json::json!([
        ["/page", cache(1, 0, &[])],
        ["/api/**", cache(30, 0, &["accept-language"])],
        ["/api/users/:id", { "cache": null }],
    ]))
    .await;
    let addr = server.addr;

    let first = get(addr, "/page").await;
    assert_eq!(first.text(), "routes/page.rs call 1");
    assert_eq!(first.header("x-nitro-cache"), Some("MISS"));
    let second = get(addr, "/page").await;
    assert_eq!(second.text(), "routes/page.rs call 1");
    assert_eq!(second.header("x-nitro-cache"), Some("HIT"));
    assert_eq!(second.header("content-type"), Some("text/plain"));
    assert!(second.header("age").is_some());
    let head = request(addr, "HEAD", "/page", &[], b"").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-nitro-cache"), Some("HIT"));
    assert_eq!(calls(&counters, "routes/page.rs"), 1);
    // Another query is another entry.
    assert_eq!(get(addr, "/page?v=2").await.text(), "routes/page.rs call 2");

    // The entries live in the `memory` mount and expire there too.
    let mount = hub.storage().mount("memory").unwrap();
    assert_eq!(mount.keys("route-cache").await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(mount.keys("route-cache").await.unwrap().is_empty());
    let third = get(addr, "/page").await;
    assert_eq!(third.text(), "routes/page.rs call 3");
    assert_eq!(third.header("x-nitro-cache"), Some("MISS"));

    // `vary`: one entry per value of the header.
    const FR: &[&str] = &["Accept-Language: fr"];
    const EN: &[&str] = &["Accept-Language: en"];
    let items = |extra: &'static [&'static str]| request(addr, "GET", "/api/items", extra, b"");
    assert_eq!(items(FR).await.text(), "routes/api/items.rs call 1");
    assert_eq!(items(EN).await.text(), "routes/api/items.rs call 2");
    assert_eq!(items(FR).await.text(), "routes/api/items.rs call 1");
    assert_eq!(items(EN).await.text(), "routes/api/items.rs call 2");
    // A new epoch (`nitro dev` swapped in rebuilt routes): nothing cached before is served.
    hub.route_rules().new_epoch();
    assert_eq!(items(FR).await.text(), "routes/api/items.rs call 3");
    assert_eq!(items(FR).await.text(), "routes/api/items.rs call 3");
    // A narrower rule switched the cache off.
    assert_eq!(
        get(addr, "/api/users/1").await.text(),
        "routes/api/users/[id].rs call 1"
    );
    assert_eq!(
        get(addr, "/api/users/1").await.text(),
        "routes/api/users/[id].rs call 2"
    );
}

#[tokio::test]
async fn cookies_and_errors_are_never_cached() {
    let (server, _, counters) = server(serde_json::json!([["/**", cache(60, 60, &[])]])).await;
    let addr = server.addr;
    for n in 1..=3 {
        let cookie = get(addr, "/cookie").await;
        assert_eq!(cookie.text(), format!("routes/cookie.rs call {n}"));
        assert_eq!(cookie.header("set-cookie"), Some("id=1"));
        let missing = get(addr, "/missing").await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.text(), format!("routes/missing.rs call {n}"));
    }
    assert_eq!(calls(&counters, "routes/cookie.rs"), 3);
    assert_eq!(calls(&counters, "routes/missing.rs"), 3);
}

#[tokio::test]
async fn a_stale_entry_is_served_while_one_request_refreshes_it() {
    let (server, _, counters) = server(serde_json::json!([["/page", cache(1, 30, &[])]])).await;
    let addr = server.addr;
    assert_eq!(get(addr, "/page").await.text(), "routes/page.rs call 1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = get(addr, "/page").await;
    assert_eq!(stale.text(), "routes/page.rs call 1");
    assert_eq!(stale.header("x-nitro-cache"), Some("STALE"));
    eventually("the refresh", || calls(&counters, "routes/page.rs") == 2).await;
    let mut fresh = get(addr, "/page").await;
    // The refresh's store may land just after its call: give it a moment.
    for _ in 0..100 {
        if fresh.text() == "routes/page.rs call 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        fresh = get(addr, "/page").await;
    }
    assert_eq!(fresh.text(), "routes/page.rs call 2");
    assert_eq!(fresh.header("x-nitro-cache"), Some("HIT"));
    assert_eq!(calls(&counters, "routes/page.rs"), 2);
}
