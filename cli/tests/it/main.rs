//! The CLI's integration tests: one binary, so the stack links once. Each module is one area;
//! `support` is the harness they share.

/// A real `redis-server`, shared with the runtime's pub/sub tests.
#[path = "../../../runtime/tests/support/redis.rs"]
mod redis_server;
mod support;

mod browser;
mod build_start;
mod codegen_build;
mod crossws_fixture;
mod dev_server;
mod friction;
mod hardening;
mod help;
mod hot_reload;
mod http_routes;
mod ide;
mod middleware;
mod nitro_test;
mod observability;
mod otel;
mod plugins;
mod pubsub;
mod route_api;
mod runtime_config;
mod storage;
mod streaming;
mod tasks;
mod websocket_example;
