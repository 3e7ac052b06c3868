//! Large WebSocket messages travel in fragments of at most [`FRAGMENT`] bytes, both ways, so
//! tungstenite's per-connection buffers never grow to the size of the largest message.
//!
//! tungstenite keeps one read buffer and one write buffer per connection. Both grow to hold a
//! whole frame and never shrink: its write buffer is a `Vec` that is drained, not freed, and
//! its read buffer is a `BytesMut` that takes the frame's allocation back once the message is
//! dropped. One 900 KiB chat message to 1 000 peers left the server 876 MiB bigger for as long
//! as they stayed connected (issue 15). The size of these buffers follows the largest *frame*,
//! not the largest message, so:
//!
//! - **Writing**: [`fragments`] cuts a data message larger than [`FRAGMENT`] into a first frame
//!   and continuation frames that share the message's bytes (no copy). Clients reassemble
//!   fragmented messages (RFC 6455 §5.4); browsers and every client library do.
//! - **Reading**: [`Reframe`] sits between the socket and tungstenite and rewrites each large
//!   data frame a client sends into fragments of at most [`FRAGMENT`] bytes before tungstenite
//!   sees it: the same message, cut differently. tungstenite then assembles the message in a
//!   buffer of its own that is freed with the message. Frames it must refuse (too big, not
//!   masked, reserved bits or opcodes, control frames) pass through untouched, so its checks
//!   and close codes are unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The largest frame either side of a connection is made of. A multiple of 4, so every
/// fragment of a masked frame starts at the same place in the mask and keeps its key.
pub(crate) const FRAGMENT: usize = 16 << 10;

/// The frames that carry `message`: itself when it is small or not a data message, else a first
/// frame and continuation frames of at most [`FRAGMENT`] bytes that share its payload.
pub(crate) fn fragments(message: Message) -> Vec<Message> {
    let (data, opcode) = match message {
        Message::Text(text) if text.len() > FRAGMENT => (Bytes::from(text), Data::Text),
        Message::Binary(data) if data.len() > FRAGMENT => (data, Data::Binary),
        small => return vec![small],
    };
    let count = data.len().div_ceil(FRAGMENT);
    (0..count)
        .map(|i| {
            let start = i * FRAGMENT;
            let end = (start + FRAGMENT).min(data.len());
            let opcode = if i == 0 { opcode } else { Data::Continue };
            Message::Frame(Frame::message(
                data.slice(start..end),
                OpCode::Data(opcode),
                i + 1 == count,
            ))
        })
        .collect()
}

/// A frame header as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// Its length in bytes (2 to 14).
    size: usize,
    fin: bool,
    /// The three reserved bits.
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: u64,
}

/// Parses the header at the start of `bytes`; `None` when it is not all there yet.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (&b0, rest) = bytes.split_first()?;
    let &b1 = rest.first()?;
    let (extended, short) = match b1 & 0x7f {
        126 => (2, None),
        127 => (8, None),
        len => (0, Some(u64::from(len))),
    };
    let masked = b1 & 0x80 != 0;
    let size = 2 + extended + if masked { 4 } else { 0 };
    if bytes.len() < size {
        return None;
    }
    let payload = short.unwrap_or_else(|| {
        let mut len = [0u8; 8];
        len[8 - extended..].copy_from_slice(&bytes[2..2 + extended]);
        u64::from_be_bytes(len)
    });
    let mask = masked.then(|| {
        let at = 2 + extended;
        [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
    });
    Some(Header {
        size,
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        mask,
        payload,
    })
}

/// Whether a frame with this header is cut into fragments: a masked data frame (text, binary or
/// continuation) without reserved bits, longer than a fragment and within the frame limit.
/// Anything else is tungstenite's to accept or refuse as it is.
fn splits(header: &Header, max_frame: u64) -> bool {
    header.opcode <= 2
        && header.rsv == 0
        && header.mask.is_some()
        && header.payload > FRAGMENT as u64
        && header.payload <= max_frame
}

/// Encodes a masked data frame header; returns the bytes and how many are used.
fn encode_header(fin: bool, opcode: u8, payload: usize, mask: [u8; 4]) -> ([u8; 14], usize) {
    let mut out = [0u8; 14];
    out[0] = (u8::from(fin) << 7) | opcode;
    let mut at = 2;
    if payload < 126 {
        out[1] = 0x80 | payload as u8;
    } else if let Ok(len) = u16::try_from(payload) {
        out[1] = 0x80 | 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        at = 4;
    } else {
        out[1] = 0x80 | 127;
        out[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
        at = 10;
    }
    out[at..at + 4].copy_from_slice(&mask);
    (out, at + 4)
}

/// A large frame being handed on in fragments.
#[derive(Debug)]
struct Split {
    /// Payload bytes of the frame not yet announced by a fragment header.
    unannounced: u64,
    /// Payload bytes of the current fragment still to pass through.
    in_fragment: u64,
    fin: bool,
    mask: [u8; 4],
}

/// The socket as tungstenite reads it: large client data frames arrive as fragments of at
/// most [`FRAGMENT`] bytes (see the module docs). Writes pass through.
#[derive(Debug)]
pub(crate) struct Reframe<S> {
    inner: S,
    /// Frames longer than this pass through, so tungstenite refuses them at their header.
    max_frame: u64,
    /// Bytes read from `inner` and not handed on yet: at most a frame header and what came
    /// with it in the same read. Empty (no allocation) nearly always.
    carry: Vec<u8>,
    /// A fragment header waiting to be handed on, and how much of it has been.
    header: ([u8; 14], usize, usize),
    /// Payload bytes of the frame being passed through unchanged.
    passing: u64,
    split: Option<Split>,
}

impl<S> Reframe<S> {
    pub(crate) fn new(inner: S, max_frame: usize) -> Reframe<S> {
        Reframe {
            inner,
            max_frame: max_frame as u64,
            carry: Vec::new(),
            header: ([0; 14], 0, 0),
            passing: 0,
            split: None,
        }
    }

    /// Drops the first `n` bytes of `carry`, and its buffer once it is empty.
    fn consume_carry(&mut self, n: usize) {
        self.carry.drain(..n);
        if self.carry.is_empty() {
            self.carry = Vec::new();
        }
    }

    /// Queues the header of the next fragment of the frame being split.
    fn next_fragment(&mut self, first_opcode: Option<u8>) {
        let Some(split) = &mut self.split else { return };
        let len = split.unannounced.min(FRAGMENT as u64);
        split.unannounced -= len;
        split.in_fragment = len;
        let fin = split.unannounced == 0 && split.fin;
        let (bytes, size) = encode_header(fin, first_opcode.unwrap_or(0), len as usize, split.mask);
        self.header = (bytes, size, 0);
    }
}

/// How many of `bytes` (the stream's next bytes, `passing` of them still payload of a frame
/// passed through) may be handed on as they are: up to the header of a frame to split, or an
/// incomplete header. Returns that count and the payload then left to pass.
fn scan(mut passing: u64, splits: impl Fn(&Header) -> bool, bytes: &[u8]) -> (usize, u64) {
    let mut at = 0;
    loop {
        let skip = passing.min((bytes.len() - at) as u64);
        at += skip as usize;
        passing -= skip;
        if at == bytes.len() {
            return (at, passing);
        }
        match parse_header(&bytes[at..]) {
            Some(header) if !splits(&header) => {
                at += header.size;
                passing = header.payload;
            }
            _ => return (at, passing),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Reframe<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // A fragment header first.
            let (bytes, size, sent) = &mut this.header;
            if *sent < *size {
                let n = (*size - *sent).min(buf.remaining());
                buf.put_slice(&bytes[*sent..*sent + n]);
                *sent += n;
                return Poll::Ready(Ok(()));
            }
            // Then the payload of the current fragment, as it is.
            if let Some(split) = &mut this.split {
                if split.in_fragment == 0 {
                    if split.unannounced == 0 {
                        this.split = None;
                    } else {
                        this.next_fragment(None);
                    }
                    continue;
                }
                let want = split.in_fragment.min(buf.remaining() as u64) as usize;
                let got = if this.carry.is_empty() {
                    let dst = buf.initialize_unfilled_to(want);
                    let mut limited = ReadBuf::new(dst);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                    let got = limited.filled().len();
                    buf.advance(got);
                    got
                } else {
                    let got = want.min(this.carry.len());
                    buf.put_slice(&this.carry[..got]);
                    this.carry.drain(..got);
                    if this.carry.is_empty() {
                        this.carry = Vec::new();
                    }
                    got
                };
                split.in_fragment -= got as u64;
                // `got == 0` is the end of the stream: tungstenite sees it as such.
                return Poll::Ready(Ok(()));
            }
            // Everything else passes through, up to a header to split or an incomplete one.
            let start = buf.filled().len();
            if this.carry.is_empty() {
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                if buf.filled().len() == start {
                    return Poll::Ready(Ok(())); // the end of the stream
                }
            } else {
                let n = this.carry.len().min(buf.remaining());
                buf.put_slice(&this.carry[..n]);
                this.consume_carry(n);
                if this.carry.is_empty() && parse_header(&buf.filled()[start..]).is_none() {
                    // An incomplete header (a complete one would have passed): read more
                    // behind it.
                    let before = buf.filled().len();
                    match Pin::new(&mut this.inner).poll_read(cx, buf) {
                        Poll::Ready(Ok(())) if buf.filled().len() == before => {
                            // The end of the stream: tungstenite sees the partial header.
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => {
                            this.carry = buf.filled()[start..].to_vec();
                            buf.set_filled(start);
                            return Poll::Pending;
                        }
                    }
                }
            }
            let end = buf.filled().len();
            let (pass, passing) = {
                let max_frame = this.max_frame;
                scan(
                    this.passing,
                    |header| splits(header, max_frame),
                    &buf.filled()[start..end],
                )
            };
            this.passing = passing;
            if start + pass < end {
                let mut rest = buf.filled()[start + pass..end].to_vec();
                rest.append(&mut this.carry);
                this.carry = rest;
                buf.set_filled(start + pass);
            }
            if pass > 0 {
                return Poll::Ready(Ok(()));
            }
            // `carry` starts with a frame to split, or with an incomplete header (read more).
            if let Some(header) = parse_header(&this.carry)
                && splits(&header, this.max_frame)
            {
                this.consume_carry(header.size);
                this.split = Some(Split {
                    unannounced: header.payload,
                    in_fragment: 0,
                    fin: header.fin,
                    mask: header.mask.unwrap_or_default(),
                });
                this.next_fragment(Some(header.opcode));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reframe<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    /// Hands out `data` in reads of the given sizes, in turn (a slow, choppy socket).
    struct Choppy {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl AsyncRead for Choppy {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let size = this.sizes[this.turn % this.sizes.len()];
            this.turn += 1;
            let n = size.min(buf.remaining()).min(this.data.len() - this.at);
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Choppy {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A client frame: masked with `mask` unless it is `None`.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let (mut out, size) = match mask {
            Some(mask) => {
                let (bytes, size) = encode_header(fin, opcode, payload.len(), mask);
                (bytes[..size].to_vec(), size)
            }
            None => {
                let (bytes, size) = encode_header(fin, opcode, payload.len(), [0; 4]);
                let mut head = bytes[..size - 4].to_vec();
                head[1] &= 0x7f;
                (head, size - 4)
            }
        };
        debug_assert_eq!(out.len(), size);
        out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask.map_or(0, |mask| mask[i % 4])),
        );
        out
    }

    fn text(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
            .collect()
    }

    const MASK: Option<[u8; 4]> = Some([0x12, 0x9a, 0x00, 0xff]);

    /// Whole messages, a ping, a message already fragmented by the client with a large
    /// continuation, and the frame sizes tungstenite gets.
    fn stream() -> (Vec<u8>, Vec<Message>) {
        let big = text(40_000, 1);
        let binary: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
        let first = text(100, 2);
        let second = text(3 * FRAGMENT + 5, 3);
        let mut wire = Vec::new();
        wire.extend(client_frame(true, 1, &big, MASK));
        wire.extend(client_frame(true, 9, b"ping", MASK));
        wire.extend(client_frame(true, 2, &binary, MASK));
        wire.extend(client_frame(true, 1, b"small", MASK));
        wire.extend(client_frame(false, 1, &first, MASK));
        wire.extend(client_frame(true, 0, &second, MASK));
        wire.extend(client_frame(true, 1, &text(FRAGMENT, 4), MASK));
        let joined = [first, second].concat();
        let expected = vec![
            Message::text(String::from_utf8(big).unwrap()),
            Message::Ping(Bytes::from_static(b"ping")),
            Message::binary(binary),
            Message::text("small"),
            Message::text(String::from_utf8(joined).unwrap()),
            Message::text(String::from_utf8(text(FRAGMENT, 4)).unwrap()),
        ];
        (wire, expected)
    }

    async fn messages(
        wire: Vec<u8>,
        sizes: Vec<usize>,
        max_frame: usize,
    ) -> Vec<Result<Message, String>> {
        let socket = Reframe::new(
            Choppy {
                data: wire,
                at: 0,
                sizes,
                turn: 0,
            },
            max_frame,
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(2048)
            .max_frame_size(Some(max_frame))
            .max_message_size(Some(1 << 20));
        let ws = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await;
        ws.map(|message| message.map_err(|err| err.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn tungstenite_reads_the_same_messages_whatever_the_reads() {
        let (wire, expected) = stream();
        for sizes in [
            vec![1 << 20],
            vec![1],
            vec![3, 7, 2],
            vec![2048],
            vec![13, 5000, 1, 900],
        ] {
            let mut got = messages(wire.clone(), sizes.clone(), 1 << 20).await;
            // The stream ends without a closing handshake.
            assert!(matches!(got.pop(), Some(Err(err)) if err.contains("without closing")));
            let got: Vec<Message> = got.into_iter().map(Result::unwrap).collect();
            assert_eq!(got, expected, "reads of {sizes:?}");
        }
    }

    #[tokio::test]
    async fn no_frame_reaches_tungstenite_larger_than_a_fragment() {
        let (wire, _) = stream();
        for sizes in [vec![1 << 20], vec![3, 7, 2], vec![4096]] {
            let mut socket = Reframe::new(
                Choppy {
                    data: wire.clone(),
                    at: 0,
                    sizes,
                    turn: 0,
                },
                1 << 20,
            );
            let mut out = Vec::new();
            socket.read_to_end(&mut out).await.unwrap();
            let mut at = 0;
            let mut frames = 0;
            while at < out.len() {
                let header = parse_header(&out[at..]).unwrap();
                assert!(header.payload <= FRAGMENT as u64, "{header:?}");
                at += header.size + header.payload as usize;
                frames += 1;
            }
            assert_eq!(at, out.len());
            // 40 000 → 3, ping, 20 000 → 2, small, 100, 3 × 16 KiB + 5 → 4, 16 KiB.
            assert_eq!(frames, 13);
        }
    }

    #[tokio::test]
    async fn frames_tungstenite_refuses_pass_through() {
        // Over the frame limit: refused at its header, before its payload is read.
        let wire = client_frame(true, 2, &vec![0; 40_000], MASK);
        let got = messages(wire, vec![4096], 30_000).await;
        assert!(
            matches!(&got[..], [Err(err)] if err.contains("Message too long")),
            "{got:?}"
        );
        // Not masked: a protocol error, as without the adapter.
        let wire = client_frame(true, 2, &vec![0; 40_000], None);
        let got = messages(wire, vec![4096], 1 << 20).await;
        assert!(
            matches!(&got[..], [Err(err)] if err.contains("unmasked")),
            "{got:?}"
        );
    }

    #[test]
    fn large_messages_go_out_in_fragments_that_share_the_payload() {
        let data = Bytes::from(text(2 * FRAGMENT + 1, 0));
        let frames = fragments(Message::Text(data.clone().try_into().unwrap()));
        assert_eq!(frames.len(), 3);
        let mut joined = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let Message::Frame(frame) = frame else {
                panic!("{frame:?}")
            };
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(frame.header().opcode, OpCode::Data(expected));
            assert_eq!(frame.header().is_final, i == 2);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, data);
        let small = Message::binary(vec![1; FRAGMENT]);
        assert_eq!(fragments(small.clone()), vec![small]);
    }
}
