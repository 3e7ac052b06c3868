//! Tasks (`tasks/*.rs`): what a task's `run` may return.
//!
//! A task file defines `pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value>`
//! (or a plain `fn`, or any [`TaskOutput`]). The server runs it on the schedules of
//! `[scheduled_tasks]` in `nitro.toml`, and `nitro task run NAME --payload JSON` runs it once
//! and prints its result. See the "Tasks" section of docs/routes.md.
//!
//! ```
//! use nitro::{Value, json};
//!
//! pub async fn run(payload: Value) -> nitro::Result<Value> {
//!     let days = payload["days"].as_u64().unwrap_or(30);
//!     Ok(json!({ "removed": 0, "older_than_days": days }))
//! }
//! # let waker = std::task::Waker::noop();
//! # let mut cx = std::task::Context::from_waker(&waker);
//! # let mut future = std::pin::pin!(run(json!({ "days": 7 })));
//! # let std::task::Poll::Ready(Ok(out)) = future.as_mut().poll(&mut cx) else { panic!() };
//! # assert_eq!(out["older_than_days"], 7);
//! ```

use std::fmt::Display;

use serde::Serialize;

/// What a task's `run` returns: its result as JSON, or the error's text.
#[diagnostic::on_unimplemented(
    message = "`run` in this task file returns `{Self}`, which is not a task result",
    note = "return `nitro::Result<nitro::Value>`, `Result<T, E>` with `T: Serialize` and `E: Display`, a `nitro::Value`, or `()`"
)]
pub trait TaskOutput {
    /// The result as JSON, or the error's text.
    fn into_result(self) -> Result<serde_json::Value, String>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<serde_json::Value, String> {
        Ok(serde_json::Value::Null)
    }
}

impl TaskOutput for serde_json::Value {
    fn into_result(self) -> Result<serde_json::Value, String> {
        Ok(self)
    }
}

impl<T: Serialize, E: Display> TaskOutput for Result<T, E> {
    fn into_result(self) -> Result<serde_json::Value, String> {
        let value = self.map_err(|e| e.to_string())?;
        serde_json::to_value(value).map_err(|e| format!("the result is not JSON: {e}"))
    }
}
