//! The body stream a [`Response`](crate::Response) may carry: shared by `http.rs` (the
//! response's field), `body.rs` and `sse.rs` (which make them) and `ffi/` (which sends them).

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_core::Stream;

/// A stream of body chunks, as the server polls it: `Err` ends the response early (the client
/// sees a cut-off body, and the message is logged with the route file).
pub(crate) type ChunkStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, String>> + Send>>;

/// The body stream a response carries, taken once when the response is sent. Clones of the
/// response share it.
#[derive(Clone)]
pub(crate) struct Streamed {
    stream: Arc<Mutex<Option<ChunkStream>>>,
    /// For an event stream: how often a comment keeps the connection alive.
    pub(crate) keep_alive_ms: u64,
}

impl Streamed {
    pub(crate) fn new(stream: ChunkStream, keep_alive_ms: u64) -> Streamed {
        Streamed {
            stream: Arc::new(Mutex::new(Some(stream))),
            keep_alive_ms,
        }
    }

    /// The stream, unless a clone of the response was sent already.
    pub(crate) fn take(&self) -> Option<ChunkStream> {
        self.stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for Streamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Streamed(..)")
    }
}

impl PartialEq for Streamed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.stream, &other.stream)
    }
}
