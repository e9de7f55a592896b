//! RTMP, sans-IO: the handshake (Adobe RTMP 1.0 spec, 5.2), the chunk codec
//! (5.3), typed messages (5.4, 7), URL and stream-key handling, and the
//! client (publish) and server session state machines.
//!
//! Owns the protocol only. It does no I/O: no sockets, no threads, no tokio,
//! no clock — bytes and the current time come in as arguments, bytes to send
//! and events come out (the shape of quinn-proto and rml_rtmp). `net/` drives
//! these machines over TCP. Uses `amf0` and nothing else of Tally's.
//!
//! Every length a peer declares is capped before anything is allocated
//! ([`chunk::DecoderLimits`], [`server::MAX_STREAMS_PER_CONNECTION`]), and the
//! stream key is a [`StreamKey`] that never prints.

pub mod chunk;
pub mod client;
mod connection;
pub mod handshake;
pub mod message;
pub mod server;
pub mod timers;
pub mod url;

#[cfg(test)]
mod pair;

pub use chunk::{ChunkDecoder, ChunkEncoder, ChunkError, DecoderLimits, RawMessage, encode_standalone};
pub use client::{ClientConfig, ClientEvent, ClientMode, ClientSession, ClientState};
pub use connection::{CSID_AUDIO, CSID_COMMAND, CSID_DATA, CSID_PROTOCOL_CONTROL, CSID_VIDEO, SessionError};
pub use handshake::{ClientHandshake, HandshakeError, HandshakeStatus, ServerHandshake};
pub use message::{Command, MediaKind, MessageError, RtmpMessage, UserControlEvent};
pub use server::{PLAYER_STREAM_ID, ServerConfig, ServerEvent, ServerSession, ServerState};
pub use timers::{ClientTimeouts, ServerTimeouts, Timer};
pub use url::{REDACTED, RtmpUrl, Scheme, StreamKey, UrlError, redact_key_in};
