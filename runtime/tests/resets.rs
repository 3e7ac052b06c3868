//! 300 abrupt resets at every stage of a connection leave the server healthy, with the
//! process's file-descriptor count back to its baseline (issue #5). A test binary of its own:
//! the descriptor count is the whole process's, so no other test may run beside it.

#![allow(unreachable_pub, dead_code)]

#[path = "it/common.rs"]
mod common;

use std::sync::Arc;

use nitro_runtime::module::RouteModule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn abrupt_resets_leave_the_server_healthy() {
    let log = Log::default();
    let server = TestServer::start(app(
        &["api/echo.rs", "_ws.rs", "slow.rs"],
        vec![
            Arc::new(Echo {
                file: "routes/api/echo.rs",
                version: 1,
            }) as Arc<dyn RouteModule>,
            Arc::new(Chat::new("routes/_ws.rs", &log)),
            Arc::new(Faulty {
                file: "routes/slow.rs",
            }),
        ],
    ))
    .await;
    assert_eq!(get(server.addr, "/api/echo").await.status, 200);
    let baseline = open_fds();
    let host = server.addr;
    let stages: [&[u8]; 5] = [
        b"",
        b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Half",
        b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial",
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /_ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ];
    for i in 0..300 {
        let stream = TcpStream::connect(host).await.unwrap();
        let mut stream = stream;
        stream.write_all(stages[i % stages.len()]).await.unwrap();
        if i % stages.len() == 4 {
            // Wait for the 101 so the reset hits an open peer.
            let mut buf = [0u8; 12];
            let _ = tokio::time::timeout(TIMEOUT, stream.read_exact(&mut buf)).await;
        }
        stream.set_zero_linger().unwrap();
        drop(stream); // RST
    }
    assert_eq!(get(server.addr, "/api/echo").await.status, 200);
    eventually("the descriptors back to the baseline", || {
        open_fds() <= baseline
    })
    .await;
    eventually("no peers left", || server.handle.hub().peer_count() == 0).await;
}
