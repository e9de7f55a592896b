//! The chunk stream: messages <-> chunks (Adobe RTMP 1.0 spec, 5.3).
//!
//! [`ChunkEncoder`] picks the most compact header per chunk stream, as ffmpeg's
//! `ff_rtmp_packet_write` does; [`ChunkDecoder`] reassembles messages from any
//! interleaving of chunks, bytes arriving in any split. Everything a peer can
//! declare is capped ([`DecoderLimits`]) before anything is allocated.
//!
//! Extended timestamps (5.3.1.3): when a message header's timestamp field is
//! 0xFFFFFF, the 4-byte extended timestamp follows it, and — as ffmpeg,
//! librtmp, nginx-rtmp and FMLE do — it is repeated after the basic header of
//! every type-3 chunk on that chunk stream until the next type 0/1/2 header.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::HashMap;

/// Chunk size both sides start with (spec 5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// What a partial message reserves when its header arrives; it grows with
/// the bytes that follow. Big enough that most frames never reallocate.
const PARTIAL_START_CAPACITY: usize = 16 * 1024;

/// Largest chunk size used. The spec allows up to 0x7FFFFFFF, but a message is
/// at most 0xFFFFFF bytes (its length field is 24 bits), so any larger chunk
/// size behaves exactly like this one: larger values are accepted and clamped.
pub const MAX_CHUNK_SIZE: u32 = 0xFF_FFFF;

/// Default cap on one message's length. The wire allows 16 MiB - 1; 8 MiB is
/// several times the largest keyframe a broadcast encoder emits (a 4K IDR at
/// 50 Mbit/s is ~1-2 MiB) and keeps a hostile peer's cost low. Raise it per
/// decoder with [`DecoderLimits`].
pub const MAX_MESSAGE_LEN: usize = 8 * 1024 * 1024;

/// Default cap on chunk streams tracked at once. Real peers use fewer than 10
/// (ffmpeg: 2..=8); each tracked stream costs a little state.
pub const MAX_CHUNK_STREAMS: usize = 64;

/// Default cap on the summed declared lengths of all partially received
/// messages: the most the decoder will ever hold for reassembly.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// Lowest chunk stream id (0 and 1 are basic-header escapes, spec 5.3.1.1).
pub const MIN_CSID: u32 = 2;

/// Highest chunk stream id a 3-byte basic header can carry (spec 5.3.1.1).
pub const MAX_CSID: u32 = 65_599;

/// Largest length a message header can carry (24 bits, spec 5.3.1.2.1).
pub const MAX_WIRE_MESSAGE_LEN: usize = 0xFF_FFFF;

/// Timestamp field value meaning "see the extended timestamp" (spec 5.3.1.3).
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// One RTMP message as carried by the chunk stream (spec 5.3.1.2 header fields
/// plus the reassembled payload). Timestamps are wrapping u32 milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// Chunk stream id it travels on, 2..=65599.
    pub csid: u32,
    /// Absolute timestamp, milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (spec 5.4, 6.1, 7.1).
    pub type_id: u8,
    /// Message stream id (0 for NetConnection traffic).
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

/// Why chunks could not be encoded or decoded. Decoding errors are fatal for
/// the connection: the decoder's state is unspecified after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A chunk stream id outside 2..=65599.
    #[error("chunk stream id {0} is outside 2..=65599")]
    InvalidChunkStreamId(u32),
    /// A chunk size of 0 or with the top bit set (spec 5.4.1).
    #[error("invalid chunk size {0}")]
    InvalidChunkSize(u32),
    /// A message longer than the cap (or than 24 bits when encoding).
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Declared or given length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A type 1/2/3 chunk on a chunk stream that never had a type 0 header.
    #[error("chunk stream {csid} continues a header it never sent")]
    NoPreviousHeader {
        /// The chunk stream id.
        csid: u32,
    },
    /// More chunk streams in use than the cap.
    #[error("peer uses more than {max} chunk streams")]
    TooManyChunkStreams {
        /// The limit in force.
        max: usize,
    },
    /// Partially received messages would exceed the reassembly budget.
    #[error("partially received messages exceed {max} bytes")]
    BufferLimit {
        /// The limit in force.
        max: usize,
    },
}

/// Validates a chunk size from SetChunkSize (spec 5.4.1) and clamps it to
/// [`MAX_CHUNK_SIZE`].
pub(crate) fn effective_chunk_size(size: u32) -> Result<usize, ChunkError> {
    if size == 0 || size > 0x7FFF_FFFF {
        return Err(ChunkError::InvalidChunkSize(size));
    }
    Ok(size.min(MAX_CHUNK_SIZE) as usize)
}

fn check_csid(csid: u32) -> Result<(), ChunkError> {
    if (MIN_CSID..=MAX_CSID).contains(&csid) { Ok(()) } else { Err(ChunkError::InvalidChunkStreamId(csid)) }
}

/// Basic header (spec 5.3.1.1): 1, 2 or 3 bytes depending on the id.
fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

/// What the encoder remembers of the last message header sent on a chunk stream.
#[derive(Debug)]
struct OutStream {
    timestamp: u32,
    /// The delta a type-3 header would repeat; None after a type-0 header, so a
    /// type-3 new message never follows one (ffmpeg would read it as a delta
    /// of the absolute timestamp, librtmp and nginx-rtmp as a delta of 0).
    delta: Option<u32>,
    len: usize,
    type_id: u8,
    stream_id: u32,
    /// Extended timestamp value repeated on type-3 chunks, if the header had one.
    ext: Option<u32>,
}

/// Splits messages into chunks (spec 5.3.1).
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: usize,
    streams: HashMap<u32, OutStream>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder with the default chunk size of 128.
    pub fn new() -> Self {
        ChunkEncoder { chunk_size: DEFAULT_CHUNK_SIZE as usize, streams: HashMap::new() }
    }

    /// The chunk size in force.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size as u32
    }

    /// Changes the outgoing chunk size. Call it right after encoding the
    /// SetChunkSize message that announces it (that message still goes out
    /// in the old size). Sizes above [`MAX_CHUNK_SIZE`] are clamped.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.chunk_size = effective_chunk_size(size)?;
        Ok(())
    }

    /// Appends the chunks of `msg` to `out`.
    ///
    /// Header choice mirrors ffmpeg: type 0 for the first message on a chunk
    /// stream, on a new message stream, or when time goes backwards; type 1
    /// when length or type changed; type 2 when only the delta changed;
    /// type 3 when everything repeats. Deltas of 0xFFFFFF or more go as a new
    /// type 0 header instead of an extended delta, which fewer peers handle.
    pub fn encode(&mut self, msg: &RawMessage, out: &mut BytesMut) -> Result<(), ChunkError> {
        check_csid(msg.csid)?;
        let len = msg.payload.len();
        if len > MAX_WIRE_MESSAGE_LEN {
            return Err(ChunkError::MessageTooLong { len, max: MAX_WIRE_MESSAGE_LEN });
        }
        let prev = self.streams.get(&msg.csid);
        let (fmt, field) = match prev {
            Some(p)
                if p.stream_id == msg.stream_id
                    && msg.timestamp >= p.timestamp
                    && msg.timestamp - p.timestamp < EXTENDED_TIMESTAMP =>
            {
                let delta = msg.timestamp - p.timestamp;
                if p.len != len || p.type_id != msg.type_id {
                    (1, delta)
                } else if p.delta == Some(delta) {
                    (3, delta)
                } else {
                    (2, delta)
                }
            }
            _ => (0, msg.timestamp),
        };
        let ext = match (fmt, prev) {
            (3, Some(p)) => p.ext,
            _ => (field >= EXTENDED_TIMESTAMP).then_some(field),
        };
        let delta = match (fmt, prev) {
            (0, _) => None,
            (3, Some(p)) => p.delta,
            _ => Some(field),
        };
        self.streams.insert(
            msg.csid,
            OutStream { timestamp: msg.timestamp, delta, len, type_id: msg.type_id, stream_id: msg.stream_id, ext },
        );

        out.reserve(len + 18 + (len / self.chunk_size) * 7);
        put_basic_header(out, fmt, msg.csid);
        let field24 = field.min(EXTENDED_TIMESTAMP) as u64;
        match fmt {
            0 => {
                out.put_uint(field24, 3);
                out.put_uint(len as u64, 3);
                out.put_u8(msg.type_id);
                out.put_u32_le(msg.stream_id); // the one little-endian field (5.3.1.2.1)
            }
            1 => {
                out.put_uint(field24, 3);
                out.put_uint(len as u64, 3);
                out.put_u8(msg.type_id);
            }
            2 => out.put_uint(field24, 3),
            _ => {}
        }
        if let Some(e) = ext {
            out.put_u32(e);
        }
        for (i, piece) in msg.payload.chunks(self.chunk_size).enumerate() {
            if i > 0 {
                put_basic_header(out, 3, msg.csid);
                if let Some(e) = ext {
                    out.put_u32(e);
                }
            }
            out.put_slice(piece);
        }
        Ok(())
    }
}

/// Encodes `msg` self-contained: a type-0 header, then type-3 continuation
/// chunks (repeating the extended timestamp when there is one). The bytes do
/// not depend on anything sent before, so one encoding can be written to
/// every player that uses the same chunk size — as long as nothing else is
/// sent on `msg.csid` with a compressed header.
pub fn encode_standalone(msg: &RawMessage, chunk_size: u32, out: &mut BytesMut) -> Result<(), ChunkError> {
    let mut enc = ChunkEncoder { chunk_size: effective_chunk_size(chunk_size)?, streams: HashMap::new() };
    enc.encode(msg, out)
}

/// Caps a [`ChunkDecoder`] enforces on what the peer declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Longest message accepted (at most [`MAX_WIRE_MESSAGE_LEN`] matters).
    pub max_message_len: usize,
    /// Most chunk streams tracked at once.
    pub max_chunk_streams: usize,
    /// Most bytes held for partially received messages, all streams together.
    pub max_buffered_bytes: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_message_len: MAX_MESSAGE_LEN,
            max_chunk_streams: MAX_CHUNK_STREAMS,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
        }
    }
}

/// What the decoder remembers per chunk stream (spec 5.3.1.2: type 1/2/3
/// headers inherit the missing fields from the previous one).
#[derive(Debug, Default)]
struct InStream {
    timestamp: u32,
    /// Delta a type-3 new message applies; 0 after a type-0 header, as
    /// librtmp and nginx-rtmp read it.
    delta: u32,
    len: usize,
    type_id: u8,
    stream_id: u32,
    /// Last extended timestamp value, while type-3 chunks must carry one.
    ext: Option<u32>,
    /// Payload received so far of the message in progress.
    partial: Option<BytesMut>,
}

/// A parsed chunk header (basic + message header + extended timestamp).
#[derive(Debug)]
struct ChunkHeader {
    fmt: u8,
    csid: u32,
    field: u32,
    len: usize,
    type_id: u8,
    stream_id: u32,
    ext: Option<u32>,
    size: usize,
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    Header,
    Body { csid: u32, left: usize },
}

/// Reassembles messages from chunks (spec 5.3). Incremental: [`push`] any
/// bytes, then call [`next_message`] until it returns `Ok(None)`. Between
/// those calls, the caller applies SetChunkSize and Abort messages
/// ([`set_chunk_size`], [`abort`]) so they govern the chunks that follow.
///
/// [`push`]: ChunkDecoder::push
/// [`next_message`]: ChunkDecoder::next_message
/// [`set_chunk_size`]: ChunkDecoder::set_chunk_size
/// [`abort`]: ChunkDecoder::abort
pub struct ChunkDecoder {
    input: BytesMut,
    chunk_size: usize,
    streams: HashMap<u32, InStream>,
    state: ReadState,
    /// Declared lengths of the partial messages: what they will hold once
    /// complete, checked against `max_buffered_bytes` when a message starts.
    declared: usize,
    /// Bytes the partial messages hold now.
    held: usize,
    limits: DecoderLimits,
}

/// Shows sizes only: buffered bytes may hold a `publish` command and its key.
impl std::fmt::Debug for ChunkDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDecoder")
            .field("chunk_size", &self.chunk_size)
            .field("chunk_streams", &self.streams.len())
            .field("buffered_len", &self.buffered_len())
            .finish_non_exhaustive()
    }
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    /// A decoder with the default chunk size and [`DecoderLimits::default`].
    pub fn new() -> Self {
        Self::with_limits(DecoderLimits::default())
    }

    /// A decoder with the given caps.
    pub fn with_limits(limits: DecoderLimits) -> Self {
        ChunkDecoder {
            input: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
            streams: HashMap::new(),
            state: ReadState::Header,
            declared: 0,
            held: 0,
            limits,
        }
    }

    /// The incoming chunk size in force.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size as u32
    }

    /// Applies the peer's SetChunkSize (spec 5.4.1); sizes above
    /// [`MAX_CHUNK_SIZE`] are clamped.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.chunk_size = effective_chunk_size(size)?;
        Ok(())
    }

    /// Applies the peer's Abort (spec 5.4.2): drops the partial message on `csid`.
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid)
            && let Some(partial) = s.partial.take()
        {
            self.declared -= s.len;
            self.held -= partial.len();
        }
    }

    /// Queues received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Bytes held by the decoder: unparsed input plus what partial
    /// messages have received so far — never more than the peer sent.
    /// After `next_message` returns `Ok(None)` the unparsed part is less
    /// than one chunk header (18 bytes).
    pub fn buffered_len(&self) -> usize {
        self.input.len() + self.held
    }

    /// The declared lengths of the partial messages (at most
    /// `max_buffered_bytes`): what they will hold once complete.
    pub fn declared_len(&self) -> usize {
        self.declared
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.state {
                ReadState::Header => {
                    let Some(h) = self.parse_header()? else { return Ok(None) };
                    if let Some(msg) = self.start_chunk(h)? {
                        return Ok(Some(msg));
                    }
                }
                ReadState::Body { csid, left } => {
                    let n = left.min(self.input.len());
                    if n == 0 {
                        return Ok(None);
                    }
                    let Some(s) = self.streams.get_mut(&csid) else {
                        // Unreachable: Body is only entered for a tracked stream.
                        self.state = ReadState::Header;
                        continue;
                    };
                    let piece = self.input.split_to(n);
                    let left = left - n;
                    self.state = if left == 0 { ReadState::Header } else { ReadState::Body { csid, left } };
                    let Some(partial) = s.partial.as_mut() else { continue };
                    partial.extend_from_slice(&piece);
                    self.held += piece.len();
                    if partial.len() == s.len {
                        let payload = s.partial.take().unwrap_or_default().freeze();
                        self.declared -= s.len;
                        self.held -= s.len;
                        return Ok(Some(RawMessage {
                            csid,
                            timestamp: s.timestamp,
                            type_id: s.type_id,
                            stream_id: s.stream_id,
                            payload,
                        }));
                    }
                }
            }
        }
    }

    /// Parses a whole chunk header from the front of the input without
    /// consuming it; `Ok(None)` if it is not all there yet.
    fn parse_header(&self) -> Result<Option<ChunkHeader>, ChunkError> {
        let b = &self.input[..];
        let Some(&b0) = b.first() else { return Ok(None) };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 if b.len() >= 2 => (64 + u32::from(b[1]), 2),
            1 if b.len() >= 3 => (64 + u32::from(b[1]) + 256 * u32::from(b[2]), 3),
            0 | 1 => return Ok(None),
            n => (u32::from(n), 1),
        };
        let mh_len = [11, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + mh_len {
            return Ok(None);
        }
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(ChunkError::NoPreviousHeader { csid });
        }
        let be24 = |p: usize| u32::from_be_bytes([0, b[p], b[p + 1], b[p + 2]]);
        let mut h = ChunkHeader { fmt, csid, field: 0, len: 0, type_id: 0, stream_id: 0, ext: None, size: 0 };
        if fmt <= 2 {
            h.field = be24(pos);
        }
        if fmt <= 1 {
            h.len = be24(pos + 3) as usize;
            h.type_id = b[pos + 6];
        }
        if fmt == 0 {
            h.stream_id = u32::from_le_bytes([b[pos + 7], b[pos + 8], b[pos + 9], b[pos + 10]]);
        }
        pos += mh_len;
        let prev_ext = prev.and_then(|p| p.ext);
        let has_ext = if fmt == 3 { prev_ext.is_some() } else { h.field == EXTENDED_TIMESTAMP };
        let continuation = fmt == 3 && prev.is_some_and(|p| p.partial.is_some());
        if has_ext {
            let avail = &b[pos..b.len().min(pos + 4)];
            // A continuation chunk from a peer that does not repeat the
            // extended timestamp starts with payload instead; like SRS, only
            // take the 4 bytes when they match. Decide as soon as a byte
            // differs so a short tail never waits for bytes that won't come.
            let expected = prev_ext.unwrap_or_default().to_be_bytes();
            let repeated = !continuation || avail == &expected[..avail.len()];
            if repeated {
                let Ok(e) = <[u8; 4]>::try_from(avail) else { return Ok(None) };
                h.ext = Some(u32::from_be_bytes(e));
                pos += 4;
            }
        }
        h.size = pos;
        Ok(Some(h))
    }

    /// Applies a parsed header; returns a message when it was a zero-length one.
    fn start_chunk(&mut self, h: ChunkHeader) -> Result<Option<RawMessage>, ChunkError> {
        if !self.streams.contains_key(&h.csid) && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams { max: self.limits.max_chunk_streams });
        }
        let s = self.streams.entry(h.csid).or_default();
        self.input.advance(h.size);
        if h.fmt == 3 && s.partial.is_some() {
            let got = s.partial.as_ref().map_or(0, BytesMut::len);
            self.state = ReadState::Body { csid: h.csid, left: (s.len - got).min(self.chunk_size) };
            return Ok(None);
        }
        if let Some(partial) = s.partial.take() {
            // ffmpeg does the same when a new header interrupts a message.
            tracing::debug!(csid = h.csid, "new message header discards a partial message");
            self.declared -= s.len;
            self.held -= partial.len();
        }
        let ext_or_field = h.ext.unwrap_or(h.field);
        match h.fmt {
            0 => {
                s.timestamp = ext_or_field;
                s.delta = 0;
            }
            1 | 2 => {
                s.delta = ext_or_field;
                s.timestamp = s.timestamp.wrapping_add(s.delta);
            }
            _ => s.timestamp = s.timestamp.wrapping_add(s.delta),
        }
        if h.fmt <= 1 {
            s.len = h.len;
            s.type_id = h.type_id;
        }
        if h.fmt == 0 {
            s.stream_id = h.stream_id;
        }
        if h.fmt <= 2 || h.ext.is_some() {
            s.ext = h.ext;
        }
        if s.len > self.limits.max_message_len {
            return Err(ChunkError::MessageTooLong { len: s.len, max: self.limits.max_message_len });
        }
        if s.len == 0 {
            return Ok(Some(RawMessage {
                csid: h.csid,
                timestamp: s.timestamp,
                type_id: s.type_id,
                stream_id: s.stream_id,
                payload: Bytes::new(),
            }));
        }
        if self.declared + s.len > self.limits.max_buffered_bytes {
            return Err(ChunkError::BufferLimit { max: self.limits.max_buffered_bytes });
        }
        self.declared += s.len;
        // Memory follows what arrives, not what the header declares: a
        // header costs a peer 12 bytes and could otherwise make us reserve
        // 8 MiB (16 MiB per connection across chunk streams) for nothing.
        // Not the chunk size either: the peer sets that too.
        s.partial = Some(BytesMut::with_capacity(s.len.min(PARTIAL_START_CAPACITY)));
        self.state = ReadState::Body { csid: h.csid, left: s.len.min(self.chunk_size) };
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RawMessage {
        RawMessage { csid, timestamp, type_id, stream_id, payload: Bytes::copy_from_slice(payload) }
    }

    fn decode_all(dec: &mut ChunkDecoder, bytes: &[u8]) -> Vec<RawMessage> {
        dec.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn basic_header_sizes() {
        for (csid, len) in [(2, 1), (63, 1), (64, 2), (319, 2), (320, 3), (65_599, 3)] {
            let mut out = BytesMut::new();
            ChunkEncoder::new().encode(&msg(csid, 0, 8, 1, b""), &mut out).unwrap();
            assert_eq!(out.len(), len + 11, "csid {csid}");
            assert_eq!(decode_all(&mut ChunkDecoder::new(), &out), vec![msg(csid, 0, 8, 1, b"")]);
        }
        for bad in [0, 1, 65_600] {
            assert_eq!(
                ChunkEncoder::new().encode(&msg(bad, 0, 8, 1, b""), &mut BytesMut::new()),
                Err(ChunkError::InvalidChunkStreamId(bad))
            );
        }
    }

    #[test]
    fn known_bytes_for_set_chunk_size() {
        let mut out = BytesMut::new();
        ChunkEncoder::new().encode(&msg(2, 0, 1, 0, &4096u32.to_be_bytes()), &mut out).unwrap();
        assert_eq!(&out[..], &[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]);
    }

    #[test]
    fn picks_compact_headers() {
        let mut enc = ChunkEncoder::new();
        let fmts: Vec<u8> = [(0, 10), (20, 10), (40, 10), (60, 10), (70, 10), (70, 12), (60, 12)]
            .into_iter()
            .map(|(ts, len)| {
                let mut out = BytesMut::new();
                enc.encode(&msg(4, ts, 8, 1, &vec![0; len]), &mut out).unwrap();
                out[0] >> 6
            })
            .collect();
        // first; new delta; same delta; same; new delta; new length; backwards
        assert_eq!(fmts, vec![0, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn one_byte_at_a_time_with_interleaving() {
        let mut enc = ChunkEncoder::new();
        let big = msg(6, 1000, 9, 1, &[7u8; 300]);
        let small = msg(4, 1001, 8, 1, b"audio");
        let mut a = BytesMut::new();
        enc.encode(&big, &mut a).unwrap();
        let mut b = BytesMut::new();
        enc.encode(&small, &mut b).unwrap();
        // Splice the audio message between the video's first and second chunk.
        let first_chunk = 12 + 128;
        let mut wire = a[..first_chunk].to_vec();
        wire.extend_from_slice(&b);
        wire.extend_from_slice(&a[first_chunk..]);
        let mut dec = ChunkDecoder::new();
        let mut got = Vec::new();
        for byte in wire {
            got.extend(decode_all(&mut dec, &[byte]));
        }
        assert_eq!(got, vec![small, big]);
        assert_eq!(dec.buffered_len(), 0);
    }

    #[test]
    fn extended_timestamp_is_repeated_on_continuations() {
        let mut enc = ChunkEncoder::new();
        let m = msg(6, 0x0100_0000, 9, 1, &[1u8; 200]);
        let mut out = BytesMut::new();
        enc.encode(&m, &mut out).unwrap();
        assert_eq!(&out[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&out[12..16], &0x0100_0000u32.to_be_bytes());
        // type-3 continuation: basic header then the extended timestamp again
        let cont = 16 + 128;
        assert_eq!(out[cont], 0xC6);
        assert_eq!(&out[cont + 1..cont + 5], &0x0100_0000u32.to_be_bytes());
        assert_eq!(out.len(), 16 + 200 + 5);
        assert_eq!(decode_all(&mut ChunkDecoder::new(), &out), vec![m]);
    }

    #[test]
    fn continuation_without_repeated_extended_timestamp_is_accepted() {
        // A peer that omits the extended timestamp on type-3 continuations.
        let mut wire = vec![0x06, 0xff, 0xff, 0xff, 0, 0, 130, 9, 1, 0, 0, 0];
        wire.extend_from_slice(&0x0123_4567u32.to_be_bytes());
        wire.extend_from_slice(&[5u8; 128]);
        wire.push(0xC6);
        wire.extend_from_slice(&[6u8, 6]);
        let mut payload = vec![5u8; 128];
        payload.extend_from_slice(&[6, 6]);
        assert_eq!(decode_all(&mut ChunkDecoder::new(), &wire), vec![msg(6, 0x0123_4567, 9, 1, &payload)]);
    }

    #[test]
    fn extended_delta_on_type_1_and_type_3_new_message() {
        let mut wire = vec![0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA];
        // type 1, delta 0x01000000 in the extended field
        wire.extend_from_slice(&[0x44, 0xff, 0xff, 0xff, 0, 0, 1, 8]);
        wire.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        wire.push(0xBB);
        // type 3 new message: same delta again, extended field repeated
        wire.push(0xC4);
        wire.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        wire.push(0xCC);
        let got = decode_all(&mut ChunkDecoder::new(), &wire);
        let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![10, 0x0100_000A, 0x0200_000A]);
    }

    #[test]
    fn chunk_size_change_between_messages() {
        let mut enc = ChunkEncoder::new();
        let mut dec = ChunkDecoder::new();
        let mut out = BytesMut::new();
        enc.encode(&msg(2, 0, 1, 0, &4096u32.to_be_bytes()), &mut out).unwrap();
        enc.set_chunk_size(4096).unwrap();
        let big = msg(6, 0, 9, 1, &[3u8; 5000]);
        enc.encode(&big, &mut out).unwrap();
        assert_eq!(out.len(), 16 + 12 + 5000 + 1);
        dec.push(&out);
        assert_eq!(dec.next_message().unwrap().unwrap().type_id, 1);
        dec.set_chunk_size(4096).unwrap();
        assert_eq!(dec.next_message().unwrap(), Some(big));
        assert_eq!(dec.set_chunk_size(0), Err(ChunkError::InvalidChunkSize(0)));
        assert_eq!(dec.set_chunk_size(0x8000_0000), Err(ChunkError::InvalidChunkSize(0x8000_0000)));
        dec.set_chunk_size(0x7FFF_FFFF).unwrap();
        assert_eq!(dec.chunk_size(), MAX_CHUNK_SIZE);
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.encode(&msg(6, 0, 9, 1, &[3u8; 300]), &mut out).unwrap();
        let mut dec = ChunkDecoder::new();
        assert!(decode_all(&mut dec, &out[..12 + 128]).is_empty());
        // Held: the 128 bytes that came; declared: the 300 to come.
        assert_eq!((dec.buffered_len(), dec.declared_len()), (128, 300));
        dec.abort(6);
        assert_eq!((dec.buffered_len(), dec.declared_len()), (0, 0));
        // The next message on that stream starts afresh with a type-1 header.
        let mut out = BytesMut::new();
        enc.encode(&msg(6, 40, 9, 1, b"next"), &mut out).unwrap();
        assert_eq!(decode_all(&mut dec, &out), vec![msg(6, 40, 9, 1, b"next")]);
    }

    #[test]
    fn hostile_declarations_are_refused_before_allocation() {
        let huge = [0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
        let mut dec = ChunkDecoder::new();
        dec.push(&huge);
        assert_eq!(dec.next_message(), Err(ChunkError::MessageTooLong { len: 0xFF_FFFF, max: MAX_MESSAGE_LEN }));

        let mut dec = ChunkDecoder::new();
        dec.push(&[0x44, 0, 0, 0, 0, 0, 1, 8]);
        assert_eq!(dec.next_message(), Err(ChunkError::NoPreviousHeader { csid: 4 }));

        let limits = DecoderLimits { max_message_len: 1000, max_chunk_streams: 2, max_buffered_bytes: 1500 };
        let mut dec = ChunkDecoder::with_limits(limits);
        dec.set_chunk_size(10).unwrap();
        dec.push(&[0x04, 0, 0, 0, 0, 3, 0xE8, 9, 1, 0, 0, 0]);
        dec.push(&[0; 10]);
        dec.push(&[0x05, 0, 0, 0, 0, 3, 0xE8, 9, 1, 0, 0, 0]);
        assert_eq!(dec.next_message(), Err(ChunkError::BufferLimit { max: 1500 }));

        let mut dec = ChunkDecoder::with_limits(limits);
        for csid in [4u8, 5, 6] {
            dec.push(&[csid, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
        }
        assert!(dec.next_message().unwrap().is_some());
        assert!(dec.next_message().unwrap().is_some());
        assert_eq!(dec.next_message(), Err(ChunkError::TooManyChunkStreams { max: 2 }));
    }

    fn arb_message() -> impl Strategy<Value = RawMessage> {
        (
            prop_oneof![2u32..10, Just(63u32), Just(64), Just(319), Just(320), Just(65_599)],
            prop_oneof![0u32..100_000, 0xFF_FF00u32..0x0100_0100, any::<u32>()],
            prop_oneof![Just(8u8), Just(9), Just(18), Just(20)],
            0u32..3,
            prop::collection::vec(any::<u8>(), 0..700),
        )
            .prop_map(|(csid, timestamp, type_id, stream_id, payload)| RawMessage {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: payload.into(),
            })
    }

    /// Sorted per csid so consecutive messages also exercise deltas and type 3.
    fn arb_sequence() -> impl Strategy<Value = Vec<RawMessage>> {
        prop::collection::vec(arb_message(), 1..40).prop_map(|mut v| {
            let mut run = 0u32;
            for (i, m) in v.iter_mut().enumerate() {
                if i % 3 != 0 {
                    // regular cadence with a repeated delta and size
                    run = run.wrapping_add(23);
                    m.timestamp = 0xFF_FF00u32.wrapping_add(run);
                    m.payload = Bytes::from(vec![i as u8; 150]);
                    m.csid = 6;
                    m.stream_id = 1;
                    m.type_id = 9;
                }
            }
            v
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            msgs in arb_sequence(),
            chunk_size in prop_oneof![1u32..300, Just(4096u32)],
            splits in prop::collection::vec(1usize..400, 1..50),
        ) {
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(chunk_size).unwrap();
            let mut wire = BytesMut::new();
            for m in &msgs {
                enc.encode(m, &mut wire).unwrap();
            }
            let mut dec = ChunkDecoder::new();
            dec.set_chunk_size(chunk_size).unwrap();
            let mut got = Vec::new();
            let mut rest = &wire[..];
            for n in splits.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*n).min(rest.len());
                got.extend(decode_all(&mut dec, &rest[..n]));
                rest = &rest[n..];
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(dec.buffered_len(), 0);
        }

        #[test]
        fn garbage_never_panics_and_stays_bounded(
            bytes in prop::collection::vec(any::<u8>(), 0..4000),
            splits in prop::collection::vec(1usize..64, 1..20),
        ) {
            let limits = DecoderLimits { max_message_len: 2000, max_chunk_streams: 4, max_buffered_bytes: 3000 };
            let mut dec = ChunkDecoder::with_limits(limits);
            let mut rest = &bytes[..];
            'feed: for n in splits.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*n).min(rest.len());
                dec.push(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match dec.next_message() {
                        Ok(Some(m)) => prop_assert!(m.payload.len() <= 2000),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                prop_assert!(dec.buffered_len() <= 3000 + 18);
            }
        }
    }
}
