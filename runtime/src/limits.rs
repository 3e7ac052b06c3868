//! How much a client may send, how long it may take, and how much route code may hold.
//!
//! Every limit has a default meant to be safe for a dev server on a laptop and for a small
//! production server; `nitro.toml`'s `[limits]` table overrides them. `docs/security.md` says
//! what each one defends against.

use std::time::Duration;

/// The limits the server enforces. [`Limits::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest WebSocket message a client may send (fragments included); a bigger one
    /// closes the peer with `1009`. Default 1 MiB.
    pub ws_max_message: usize,
    /// The largest single WebSocket frame a client may send; `1009` too. Default 1 MiB (a
    /// frame can never usefully be bigger than a message).
    pub ws_max_frame: usize,
    /// The read and write buffer of each WebSocket, each way (the read buffer is allocated
    /// up front; the write buffer only while writing). Default 2 KiB: tungstenite's 128 KiB
    /// default costs about 131 KiB per idle peer (657 MiB for 5 000 peers, measured); with
    /// 2 KiB, 10 000 idle peers take 87 MiB in all (8.5 KiB each; 98 MiB with a browser's
    /// upgrade headers; `examples/idle_peers.rs`), and the whole Autobahn suite passes.
    /// Brought into 1 KiB..=64 KiB: it is a per-connection cost, and larger messages never
    /// need a larger buffer (they travel in 16 KiB fragments both ways, so the buffers do not
    /// grow to the size of a large message either; `examples/large_message.rs`).
    pub ws_buffer: usize,
    /// The bytes that may wait in one peer's outbound queue. A message that finds the queue
    /// full is still queued while the client keeps reading (something was written to it
    /// within [`ws_send_timeout`](Limits::ws_send_timeout)), up to four times this size, so a
    /// burst (chat history sent from `open`, a publish of many messages) reaches a client that
    /// keeps up. Otherwise the client is not reading: the peer is closed with `1008` and its
    /// queue is dropped, so one slow consumer cannot hold the server's memory; the other
    /// subscribers are not affected. A single message is always queued when the queue is
    /// empty, whatever its size. Default 1 MiB, the largest message a client may send.
    pub ws_send_queue: usize,
    /// How long a peer's full outbound queue may go without any of it being written before
    /// the peer counts as not reading (see [`ws_send_queue`](Limits::ws_send_queue)). Default
    /// 5 s.
    pub ws_send_timeout: Duration,
    /// The most topics one WebSocket peer may be subscribed to; further `subscribe` calls are
    /// ignored (logged once per peer). Each subscription costs about 420 bytes, and a route
    /// that subscribes to topics its clients name would otherwise let one client take any
    /// amount of memory. Default 1 000.
    pub ws_max_topics: usize,
    /// A WebSocket peer that sends nothing for half this time gets a ping; one that stays
    /// silent for the whole time (answers no ping either) is closed with `1001`. Browsers and
    /// every client library answer pings by themselves, so only dead or stuck peers are
    /// closed. Default 60 s (crossws pings every 30 s).
    pub ws_idle_timeout: Duration,
    /// The largest request body an HTTP route receives; a bigger one gets `413`. Default 1 MiB.
    pub max_body: usize,
    /// How long a client may take to send a request body; `408` after. Default 30 s.
    pub body_timeout: Duration,
    /// The most request headers; more get `431`. Default 100 (hyper's own limit).
    pub max_headers: usize,
    /// The largest request head (request line and headers) in bytes; bigger gets `431`.
    /// Default 16 KiB, as Node (and so Nitro).
    pub max_header_bytes: usize,
    /// The whole request head must arrive within this time, else the connection is closed
    /// (slowloris). The same timer closes a connection that sends nothing at all, and an idle
    /// keep-alive connection between requests. Default 10 s.
    pub header_read_timeout: Duration,
    /// A route handler (or WebSocket hook) that runs longer than this gets a `504` (an
    /// `error` report for a hook, `1011` for `open`). An `async fn`'s future is dropped then.
    /// Rust cannot stop a thread: a sync call keeps its thread until it returns, and that is
    /// logged. A peer's hooks never overlap: the late hook is reported (to the `error` hook)
    /// and the peer's next hook waits until it has returned. Default 30 s.
    pub handler_timeout: Duration,
    /// The stack of each thread route code runs on. Route handlers are ordinary synchronous
    /// code: tokio's default of 2 MiB overflowed on a 3 MiB array, which ends the process
    /// (Rust cannot catch a stack overflow). Applied by the program that builds the tokio
    /// runtime (`nitro dev` and `nitro start` do; it sets every runtime thread's stack, which is
    /// virtual memory until used). Default 8 MiB, as a main thread on Linux.
    pub route_stack: usize,
    /// How many connections the kernel may hold for the server before it accepts them (the
    /// listen backlog; Linux caps it at `net.core.somaxconn`, 4 096 by default). A burst of
    /// connections beyond it is dropped or retried by the clients' kernels. Default 4 096
    /// (the usual 128 overflowed 4 803 times when 10 000 clients connected at once).
    pub listen_backlog: u32,
    /// How many sync route calls (`fn`, not `async fn`) may run at once, each on its own
    /// thread of the blocking pool.
    /// Calls beyond wait for a free thread (within `handler_timeout`). The bound keeps
    /// runaway routes from taking every thread: static files and the server's own file
    /// reads use the same pool. Default 64.
    pub route_threads: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            ws_max_message: 1 << 20,
            ws_max_frame: 1 << 20,
            ws_buffer: 2 << 10,
            ws_send_queue: 1 << 20,
            ws_send_timeout: Duration::from_secs(5),
            ws_max_topics: 1000,
            ws_idle_timeout: Duration::from_secs(60),
            max_body: 1 << 20,
            body_timeout: Duration::from_secs(30),
            max_headers: 100,
            max_header_bytes: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(30),
            route_stack: 8 << 20,
            listen_backlog: 4096,
            route_threads: 64,
        }
    }
}

impl Limits {
    /// hyper refuses a read buffer under 8 KiB; the head limit is kept at least that big.
    pub(crate) const MIN_HEADER_BYTES: usize = 8 << 10;
    /// The smallest WebSocket buffer the server uses.
    pub const MIN_WS_BUFFER: usize = 1 << 10;
    /// The largest WebSocket buffer the server uses: each peer has one each way, so 10 000
    /// peers with 64 KiB buffers already take more than a gigabyte.
    pub const MAX_WS_BUFFER: usize = 64 << 10;

    /// The same limits with every value brought into the range the server can use (a zero
    /// pool would serve nothing, a tiny buffer would panic in hyper).
    pub(crate) fn sanitized(&self) -> Limits {
        let mut limits = self.clone();
        limits.max_header_bytes = limits.max_header_bytes.max(Self::MIN_HEADER_BYTES);
        limits.max_headers = limits.max_headers.max(1);
        limits.route_threads = limits.route_threads.clamp(1, 512);
        limits.listen_backlog = limits.listen_backlog.max(1);
        limits.ws_buffer = limits
            .ws_buffer
            .clamp(Self::MIN_WS_BUFFER, Self::MAX_WS_BUFFER);
        limits.ws_max_frame = limits.ws_max_frame.min(limits.ws_max_message).max(1);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_bounds_the_websocket_buffer() {
        let mut limits = Limits {
            ws_buffer: 1 << 30,
            ..Limits::default()
        };
        assert_eq!(limits.sanitized().ws_buffer, Limits::MAX_WS_BUFFER);
        limits.ws_buffer = 0;
        assert_eq!(limits.sanitized().ws_buffer, Limits::MIN_WS_BUFFER);
        assert_eq!(Limits::default().sanitized(), Limits::default());
    }
}
