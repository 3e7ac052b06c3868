//! Server tests with a real listener on 127.0.0.1:0 and real clients: raw HTTP/1.1 over TCP
//! and tokio-tungstenite WebSocket clients. One test binary, to keep linking cheap.

// Test helpers are `pub` for the sibling modules; nothing here is exported.
#![allow(unreachable_pub)]

mod async_routes;
mod common;
mod hardening;
mod http;
mod route_rules;
mod static_files;
mod websocket;
