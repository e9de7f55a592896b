//! Typed RTMP messages: protocol control (Adobe RTMP 1.0 spec, 5.4), user
//! control (6.2 / 7.1.7), audio, video, data and command messages (7.1).
//!
//! [`RtmpMessage::from_raw`] parses a reassembled [`RawMessage`];
//! [`RtmpMessage::type_id`] and [`RtmpMessage::payload`] serialise one back.

use super::chunk::RawMessage;
use crate::amf0::{self, Amf0Error, Amf0Value};
use bytes::{BufMut, Bytes, BytesMut};

/// Message type ids (spec 5.4, 7.1): the one-byte type in every chunk
/// message header (5.3.1.2). Ids 1-6 are protocol and user control messages
/// and travel on message stream 0, chunk stream 2 (5.4, 6.2); a type not
/// named here parses as [`RtmpMessage::Unknown`].
pub mod type_id {
    /// 5.4.1 Set Chunk Size: the largest chunk payload the sender will use
    /// from now on, a 31-bit big-endian count of bytes.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// 5.4.2 Abort Message: drop the partly received message on the chunk
    /// stream id it carries.
    pub const ABORT: u8 = 2;
    /// 5.4.3 Acknowledgement: the bytes received so far, sent each time a
    /// window (set by [`WINDOW_ACK_SIZE`]) has been received.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// 6.2 / 7.1.7 User Control Message: a two-byte event type and its data
    /// (stream begin, ping, buffer length...).
    pub const USER_CONTROL: u8 = 4;
    /// 5.4.4 Window Acknowledgement Size: how many bytes the peer may receive
    /// before it must send an [`ACKNOWLEDGEMENT`].
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// 5.4.5 Set Peer Bandwidth: the output window the receiver should hold
    /// to, with a limit type (hard, soft, dynamic).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// 7.1.4 Audio Message: one FLV AUDIODATA body (FLV 10.1, E.4.2).
    pub const AUDIO: u8 = 8;
    /// 7.1.5 Video Message: one FLV VIDEODATA body (FLV 10.1, E.4.3).
    pub const VIDEO: u8 = 9;
    /// 7.1.2 Data Message in AMF3 framing; parsed as AMF0 data after its
    /// leading 0x00 format byte, which is what Flash Player and FMS send.
    pub const DATA_AMF3: u8 = 15;
    /// 7.1.1 Command Message in AMF3 framing; parsed as an AMF0 command after
    /// its leading format byte, like [`DATA_AMF3`].
    pub const COMMAND_AMF3: u8 = 17;
    /// 7.1.2 Data Message, AMF0: metadata such as `@setDataFrame onMetaData`.
    pub const DATA_AMF0: u8 = 18;
    /// 7.1.1 Command Message, AMF0: `connect`, `createStream`, `publish`,
    /// `play`, `onStatus` and their results (7.2).
    pub const COMMAND_AMF0: u8 = 20;
}

/// Which media message a payload travels as (spec 7.1.4, 7.1.5, 7.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio message (8): an FLV AUDIODATA body.
    Audio,
    /// Video message (9): an FLV VIDEODATA body.
    Video,
    /// Data message (18): AMF0 values, e.g. `@setDataFrame onMetaData {...}`.
    Data,
}

impl MediaKind {
    /// The message type id this kind is sent as.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => type_id::AUDIO,
            MediaKind::Video => type_id::VIDEO,
            MediaKind::Data => type_id::DATA_AMF0,
        }
    }
}

/// SetPeerBandwidth limit type (spec 5.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerBandwidthLimit {
    /// 0: limit to exactly this window.
    Hard,
    /// 1: limit to this window or the one in force, whichever is smaller.
    Soft,
    /// 2: hard if the previous limit was hard, else ignore.
    Dynamic,
}

/// User control events (spec 7.1.7; event types 0-4, 6, 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserControlEvent {
    /// 0: the stream became functional.
    StreamBegin(u32),
    /// 1: playback of the stream ended.
    StreamEof(u32),
    /// 2: no more data on the stream for now.
    StreamDry(u32),
    /// 3: the client's buffer length for a stream.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length, milliseconds.
        buffer_ms: u32,
    },
    /// 4: the stream is a recorded one.
    StreamIsRecorded(u32),
    /// 6: liveness probe; answer with `PingResponse` carrying the same value.
    PingRequest(u32),
    /// 7: answer to a `PingRequest`.
    PingResponse(u32),
    /// Any other event type, kept raw.
    Unknown {
        /// Event type.
        event_type: u16,
        /// Event data.
        data: Bytes,
    },
}

/// A command message (spec 7.1.1, 7.2): name, transaction id, command object
/// and optional arguments, all AMF0.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Command name, e.g. `connect`, `_result`, `onStatus`.
    pub name: String,
    /// Transaction id; 0 when no answer is expected.
    pub transaction_id: f64,
    /// Command object (Null when there is none).
    pub object: Amf0Value,
    /// Further arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// A command with the given parts.
    pub fn new(name: &str, transaction_id: f64, object: Amf0Value, args: Vec<Amf0Value>) -> Self {
        Command { name: name.to_owned(), transaction_id, object, args }
    }

    /// Decodes an AMF0 command body. A missing transaction id or command
    /// object reads as 0 / Null (some servers send bare `onStatus` calls).
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let mut values = amf0::decode_all(body)?.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
            _ => return Err(MessageError::BadCommand),
        };
        let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Command { name, transaction_id, object, args: values.collect() })
    }

    /// The AMF0 body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        amf0::encode(&Amf0Value::String(self.name.clone()), &mut out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), &mut out);
        amf0::encode(&self.object, &mut out);
        for a in &self.args {
            amf0::encode(a, &mut out);
        }
        out.freeze()
    }

    /// The info object of an `onStatus`/`_result`/`_error`: the first
    /// argument that is an object (servers put it after a Null command object).
    pub fn info(&self) -> Option<&Amf0Value> {
        self.args.iter().chain(std::iter::once(&self.object)).find(|v| v.as_properties().is_some())
    }

    /// A string property of [`Command::info`], or "".
    pub fn info_str(&self, key: &str) -> &str {
        self.info().and_then(|i| i.get(key)).and_then(Amf0Value::as_str).unwrap_or("")
    }
}

/// One RTMP message, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum RtmpMessage {
    /// 1 (5.4.1): chunk size for the sender's following chunks.
    SetChunkSize(u32),
    /// 2 (5.4.2): discard the partial message on a chunk stream.
    Abort {
        /// The chunk stream id.
        csid: u32,
    },
    /// 3 (5.4.3): bytes received so far (wrapping).
    Acknowledgement(u32),
    /// 4 (6.2, 7.1.7): user control event.
    UserControl(UserControlEvent),
    /// 5 (5.4.4): acknowledge every this many bytes.
    WindowAckSize(u32),
    /// 6 (5.4.5): limit the peer's output bandwidth.
    SetPeerBandwidth {
        /// Window size, bytes.
        size: u32,
        /// Limit type.
        limit: PeerBandwidthLimit,
    },
    /// 8: audio payload (FLV AUDIODATA).
    Audio(Bytes),
    /// 9: video payload (FLV VIDEODATA).
    Video(Bytes),
    /// 18 (or 15): data message body as AMF0 bytes, kept raw so it can be
    /// relayed or written to FLV without re-encoding.
    Data(Bytes),
    /// 20 (or 17): command.
    Command(Command),
    /// Any other type (shared object 16/19, aggregate 22, ...), kept raw.
    Unknown {
        /// Message type id.
        type_id: u8,
        /// Body.
        payload: Bytes,
    },
}

/// Why a message body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A control message shorter than its fixed layout.
    #[error("message type {0} is truncated")]
    Truncated(u8),
    /// SetPeerBandwidth with a limit type other than 0, 1, 2.
    #[error("unknown peer bandwidth limit type {0}")]
    BadLimitType(u8),
    /// A command that does not start with its name.
    #[error("command message does not start with a name")]
    BadCommand,
    /// Undecodable AMF0.
    #[error(transparent)]
    Amf0(#[from] Amf0Error),
}

fn be_u32(p: &[u8], at: usize, type_id: u8) -> Result<u32, MessageError> {
    p.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or(MessageError::Truncated(type_id))
}

/// AMF3 command/data messages (17/15) are, in practice, one 0x00 format byte
/// followed by AMF0 (what Flash Player and FMS send); strip it.
fn strip_amf3_prefix(p: &Bytes) -> Bytes {
    if p.first() == Some(&0) { p.slice(1..) } else { p.clone() }
}

impl RtmpMessage {
    /// Parses a reassembled message by its type id.
    pub fn from_raw(raw: &RawMessage) -> Result<Self, MessageError> {
        use type_id as t;
        let p = &raw.payload;
        let ty = raw.type_id;
        Ok(match ty {
            // The top bit of a chunk size must be 0 (5.4.1); the chunk decoder rejects it.
            t::SET_CHUNK_SIZE => RtmpMessage::SetChunkSize(be_u32(p, 0, ty)?),
            t::ABORT => RtmpMessage::Abort { csid: be_u32(p, 0, ty)? },
            t::ACKNOWLEDGEMENT => RtmpMessage::Acknowledgement(be_u32(p, 0, ty)?),
            t::WINDOW_ACK_SIZE => RtmpMessage::WindowAckSize(be_u32(p, 0, ty)?),
            t::SET_PEER_BANDWIDTH => {
                let size = be_u32(p, 0, ty)?;
                let limit = match p.get(4) {
                    Some(0) => PeerBandwidthLimit::Hard,
                    Some(1) => PeerBandwidthLimit::Soft,
                    Some(2) => PeerBandwidthLimit::Dynamic,
                    Some(&other) => return Err(MessageError::BadLimitType(other)),
                    None => return Err(MessageError::Truncated(ty)),
                };
                RtmpMessage::SetPeerBandwidth { size, limit }
            }
            t::USER_CONTROL => {
                let event_type =
                    p.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or(MessageError::Truncated(ty))?;
                let ev = match event_type {
                    0 => UserControlEvent::StreamBegin(be_u32(p, 2, ty)?),
                    1 => UserControlEvent::StreamEof(be_u32(p, 2, ty)?),
                    2 => UserControlEvent::StreamDry(be_u32(p, 2, ty)?),
                    3 => {
                        UserControlEvent::SetBufferLength { stream_id: be_u32(p, 2, ty)?, buffer_ms: be_u32(p, 6, ty)? }
                    }
                    4 => UserControlEvent::StreamIsRecorded(be_u32(p, 2, ty)?),
                    6 => UserControlEvent::PingRequest(be_u32(p, 2, ty)?),
                    7 => UserControlEvent::PingResponse(be_u32(p, 2, ty)?),
                    _ => UserControlEvent::Unknown { event_type, data: p.slice(2..) },
                };
                RtmpMessage::UserControl(ev)
            }
            t::AUDIO => RtmpMessage::Audio(p.clone()),
            t::VIDEO => RtmpMessage::Video(p.clone()),
            t::DATA_AMF0 => RtmpMessage::Data(p.clone()),
            t::DATA_AMF3 => RtmpMessage::Data(strip_amf3_prefix(p)),
            t::COMMAND_AMF0 => RtmpMessage::Command(Command::decode(p)?),
            t::COMMAND_AMF3 => RtmpMessage::Command(Command::decode(&strip_amf3_prefix(p))?),
            _ => RtmpMessage::Unknown { type_id: ty, payload: p.clone() },
        })
    }

    /// The type id this message is sent as (always the AMF0 variants).
    pub fn type_id(&self) -> u8 {
        use type_id as t;
        match self {
            RtmpMessage::SetChunkSize(_) => t::SET_CHUNK_SIZE,
            RtmpMessage::Abort { .. } => t::ABORT,
            RtmpMessage::Acknowledgement(_) => t::ACKNOWLEDGEMENT,
            RtmpMessage::UserControl(_) => t::USER_CONTROL,
            RtmpMessage::WindowAckSize(_) => t::WINDOW_ACK_SIZE,
            RtmpMessage::SetPeerBandwidth { .. } => t::SET_PEER_BANDWIDTH,
            RtmpMessage::Audio(_) => t::AUDIO,
            RtmpMessage::Video(_) => t::VIDEO,
            RtmpMessage::Data(_) => t::DATA_AMF0,
            RtmpMessage::Command(_) => t::COMMAND_AMF0,
            RtmpMessage::Unknown { type_id, .. } => *type_id,
        }
    }

    /// The serialised body.
    pub fn payload(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RtmpMessage::SetChunkSize(v)
            | RtmpMessage::Abort { csid: v }
            | RtmpMessage::Acknowledgement(v)
            | RtmpMessage::WindowAckSize(v) => out.put_u32(*v),
            RtmpMessage::SetPeerBandwidth { size, limit } => {
                out.put_u32(*size);
                out.put_u8(match limit {
                    PeerBandwidthLimit::Hard => 0,
                    PeerBandwidthLimit::Soft => 1,
                    PeerBandwidthLimit::Dynamic => 2,
                });
            }
            RtmpMessage::UserControl(ev) => match ev {
                UserControlEvent::StreamBegin(v) => put_event(&mut out, 0, *v),
                UserControlEvent::StreamEof(v) => put_event(&mut out, 1, *v),
                UserControlEvent::StreamDry(v) => put_event(&mut out, 2, *v),
                UserControlEvent::SetBufferLength { stream_id, buffer_ms } => {
                    put_event(&mut out, 3, *stream_id);
                    out.put_u32(*buffer_ms);
                }
                UserControlEvent::StreamIsRecorded(v) => put_event(&mut out, 4, *v),
                UserControlEvent::PingRequest(v) => put_event(&mut out, 6, *v),
                UserControlEvent::PingResponse(v) => put_event(&mut out, 7, *v),
                UserControlEvent::Unknown { event_type, data } => {
                    out.put_u16(*event_type);
                    out.put_slice(data);
                }
            },
            RtmpMessage::Audio(b) | RtmpMessage::Video(b) | RtmpMessage::Data(b) => return b.clone(),
            RtmpMessage::Unknown { payload, .. } => return payload.clone(),
            RtmpMessage::Command(c) => return c.encode(),
        }
        out.freeze()
    }

    /// Wraps this message for the chunk encoder.
    pub fn into_raw(self, csid: u32, timestamp: u32, stream_id: u32) -> RawMessage {
        RawMessage { csid, timestamp, type_id: self.type_id(), stream_id, payload: self.payload() }
    }
}

fn put_event(out: &mut BytesMut, event_type: u16, value: u32) {
    out.put_u16(event_type);
    out.put_u32(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage { csid: 2, timestamp: 0, type_id, stream_id: 0, payload: Bytes::copy_from_slice(payload) }
    }

    fn round_trip(m: RtmpMessage) {
        let r = m.clone().into_raw(3, 0, 0);
        assert_eq!(RtmpMessage::from_raw(&r).unwrap(), m);
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(RtmpMessage::SetChunkSize(4096));
        round_trip(RtmpMessage::Abort { csid: 6 });
        round_trip(RtmpMessage::Acknowledgement(0xdead_beef));
        round_trip(RtmpMessage::WindowAckSize(2_500_000));
        for limit in [PeerBandwidthLimit::Hard, PeerBandwidthLimit::Soft, PeerBandwidthLimit::Dynamic] {
            round_trip(RtmpMessage::SetPeerBandwidth { size: 5_000_000, limit });
        }
        for ev in [
            UserControlEvent::StreamBegin(1),
            UserControlEvent::StreamEof(1),
            UserControlEvent::StreamDry(1),
            UserControlEvent::SetBufferLength { stream_id: 1, buffer_ms: 3000 },
            UserControlEvent::StreamIsRecorded(1),
            UserControlEvent::PingRequest(77),
            UserControlEvent::PingResponse(77),
            UserControlEvent::Unknown { event_type: 31, data: Bytes::from_static(b"xy") },
        ] {
            round_trip(RtmpMessage::UserControl(ev));
        }
        round_trip(RtmpMessage::Audio(Bytes::from_static(b"\xaf\x01")));
        round_trip(RtmpMessage::Video(Bytes::from_static(b"\x17\x01")));
        round_trip(RtmpMessage::Data(Bytes::from_static(b"\x05")));
        round_trip(RtmpMessage::Command(Command::new(
            "connect",
            1.0,
            Amf0Value::object([("app", Amf0Value::string("live"))]),
            vec![],
        )));
        round_trip(RtmpMessage::Unknown { type_id: 22, payload: Bytes::from_static(b"agg") });
    }

    #[test]
    fn known_bytes() {
        assert_eq!(&RtmpMessage::UserControl(UserControlEvent::PingRequest(5)).payload()[..], &[0, 6, 0, 0, 0, 5]);
        assert_eq!(
            &RtmpMessage::SetPeerBandwidth { size: 1, limit: PeerBandwidthLimit::Dynamic }.payload()[..],
            &[0, 0, 0, 1, 2]
        );
    }

    #[test]
    fn amf3_command_with_format_byte() {
        let body = Command::new("play", 0.0, Amf0Value::Null, vec![Amf0Value::string("x")]).encode();
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&body);
        let RtmpMessage::Command(c) = RtmpMessage::from_raw(&raw(type_id::COMMAND_AMF3, &amf3)).unwrap() else {
            panic!("not a command")
        };
        assert_eq!(c.name, "play");
        assert_eq!(c.args, vec![Amf0Value::string("x")]);
    }

    #[test]
    fn bare_on_status_and_info() {
        let body = amf0::encode_all(&[
            Amf0Value::string("onStatus"),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::object([("level", Amf0Value::string("error")), ("code", Amf0Value::string("X.Y"))]),
        ]);
        let c = Command::decode(&body).unwrap();
        assert_eq!(c.info_str("level"), "error");
        assert_eq!(c.info_str("description"), "");
        let bare = amf0::encode_all(&[Amf0Value::string("onBWDone")]);
        assert_eq!(Command::decode(&bare).unwrap().object, Amf0Value::Null);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(RtmpMessage::from_raw(&raw(1, &[0, 0, 1])), Err(MessageError::Truncated(1)));
        assert_eq!(RtmpMessage::from_raw(&raw(6, &[0, 0, 0, 1, 9])), Err(MessageError::BadLimitType(9)));
        assert_eq!(RtmpMessage::from_raw(&raw(4, &[0])), Err(MessageError::Truncated(4)));
        assert_eq!(RtmpMessage::from_raw(&raw(4, &[0, 6, 1])), Err(MessageError::Truncated(4)));
        assert_eq!(RtmpMessage::from_raw(&raw(20, &[0, 0, 0, 0, 0, 0, 0, 0, 0])), Err(MessageError::BadCommand));
        assert!(matches!(RtmpMessage::from_raw(&raw(20, &[2, 0, 5, b'a'])), Err(MessageError::Amf0(_))));
    }
}
