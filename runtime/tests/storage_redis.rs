//! The storage conformance list against a real `redis-server` on a free port.

#![allow(unreachable_pub, dead_code)]

#[path = "support/redis.rs"]
mod redis_server;

#[path = "../src/storage/conformance.rs"]
mod conformance;

use nitro_runtime::storage::*;
use std::time::Duration;

#[tokio::test]
async fn the_redis_driver_conforms() {
    let server = redis_server::RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port());
    let driver = RedisDriver::connect(&url, "nitro-test").await.unwrap();
    // A key of another app on the same Redis is not seen.
    let other = RedisDriver::connect(&url, "other-app").await.unwrap();
    let other = Mount::new(Driver::Redis(Box::new(other)), 64);
    other.set("todos:9", b"theirs", None).await.unwrap();

    conformance::conformance(&Mount::new(Driver::Redis(Box::new(driver)), 64)).await;
    assert_eq!(other.keys("").await.unwrap(), ["todos:9"]);
}
