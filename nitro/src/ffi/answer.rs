//! Answering an HTTP call through the host's responder: bytes, or a body stream.
#![allow(unsafe_code)]

use nitro_abi as abi;

use super::stream::{answer_with, host_streams};
use crate::Response;

/// Answers through the host's HTTP responder. An unhandled error (from `?` on another error)
/// is not answered here but returned, for the call to fail with it: the host logs it with the
/// route file and answers a `500` whose text only `nitro dev` shows.
///
/// # Safety
/// `res` must be valid for the call (for an async call: inside the task's poll).
pub(super) unsafe fn write_response(
    res: &abi::HttpResponder,
    response: &Response,
) -> Result<(), String> {
    // SAFETY: caller contract; every argument is borrowed for its callback.
    unsafe {
        if let Some(err) = &response.error {
            if err.is_unhandled() {
                return Err(err.message().to_owned());
            }
            let data = err.data().map(|d| d.to_string()).unwrap_or_default();
            (res.error)(
                res.ctx,
                err.status(),
                abi::Bytes::new(err.message().as_bytes()),
                abi::Bytes::new(data.as_bytes()),
            );
            return Ok(());
        }
        let stream = match &response.stream {
            None => None,
            Some(_) if !host_streams() => {
                return Err("this server cannot send a streamed body: rebuild the route with the `nitro` that serves it".into());
            }
            Some(streamed) => match streamed.take() {
                Some(stream) => Some((stream, streamed.keep_alive_ms)),
                None => return Err(
                    "this streamed response was sent already (a clone of it was returned before)"
                        .into(),
                ),
            },
        };
        (res.status)(res.ctx, response.status);
        for (name, value) in &response.headers {
            (res.header)(
                res.ctx,
                abi::Bytes::new(name.as_bytes()),
                abi::Bytes::new(value.as_bytes()),
            );
        }
        match stream {
            Some((stream, keep_alive_ms)) => answer_with(res, stream, keep_alive_ms),
            None => (res.body)(res.ctx, abi::Bytes::new(&response.body)),
        }
    }
    Ok(())
}
