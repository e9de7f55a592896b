//! What client and server sessions share once the handshake is done: the
//! chunk codec, the outbound buffer, byte counters, and the protocol control
//! duties of either side (Adobe RTMP 1.0 spec, 5.4; 7.1.7 pings).

use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, DecoderLimits, RawMessage, effective_chunk_size};
use super::handshake::HandshakeError;
use super::message::{MessageError, RtmpMessage, UserControlEvent};
use bytes::{Bytes, BytesMut};

/// Chunk stream for protocol control and user control messages (spec 5.4:
/// csid 2, message stream 0).
pub const CSID_PROTOCOL_CONTROL: u32 = 2;
/// Chunk stream for commands, NetConnection and NetStream alike (ffmpeg's
/// RTMP_SYSTEM_CHANNEL).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream for audio (ffmpeg's RTMP_AUDIO_CHANNEL).
pub const CSID_AUDIO: u32 = 4;
/// Chunk stream for data messages (`@setDataFrame`).
pub const CSID_DATA: u32 = 5;
/// Chunk stream for video (ffmpeg's RTMP_VIDEO_CHANNEL).
pub const CSID_VIDEO: u32 = 6;

/// Why a session ended. Final for the connection; never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream was malformed or exceeded a limit.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A message body was malformed.
    #[error("message: {0}")]
    Message(#[from] MessageError),
    /// A reply lacked what the protocol requires.
    #[error("malformed reply: {0}")]
    BadReply(&'static str),
    /// Media sent before `NetStream.Publish.Start` or after the end.
    #[error("not publishing")]
    NotPublishing,
    /// The peer broke the order of the conversation: media before
    /// `publish`, `play` or `publish` before `connect`. The session has
    /// queued an error reply saying so; the driver flushes it and closes.
    #[error("{0}")]
    OutOfOrder(&'static str),
    /// The peer created more streams than allowed.
    #[error("peer created more than {0} streams")]
    TooManyStreams(usize),
    /// No such stream (or not in the state the call needs).
    #[error("no pending publish on stream {0}")]
    UnknownStream(u32),
    /// Input after the session already failed: a session that rejected its
    /// peer's bytes takes no more (the driver closes the connection).
    #[error("the session already failed; it takes no more input")]
    Closed,
    /// A deadline passed (see `rtmp::timers`); final like any error.
    #[error("{timer} within {after:?}")]
    TimedOut {
        /// Which.
        timer: super::timers::Timer,
        /// The timeout that ran out.
        after: std::time::Duration,
    },
}

/// What both sessions offer their driver over their shared [`Connection`]
/// (`self.conn`), their `handshake`, `clock` and `failed` flag and their own
/// `on_handshake_done`, `on_message`, `note_progress` and `next_deadline`: the
/// byte counters, the outbound buffer, and the input guard that makes an
/// error final. One definition for the client and the server.
macro_rules! session_io {
    ($event:ty) => {
        /// Bytes handed to the driver by `take_outbound` so far.
        pub fn bytes_sent(&self) -> u64 {
            self.conn.bytes_sent
        }

        /// Bytes fed to `handle_input` so far, handshake included.
        pub fn bytes_received(&self) -> u64 {
            self.conn.bytes_received
        }

        /// Bytes the peer acknowledged (its Acknowledgement messages,
        /// unwrapped past 4 GiB). A peer only sends them after our WindowAckSize.
        pub fn peer_acknowledged(&self) -> u64 {
            self.conn.peer_acked
        }

        /// Takes everything queued for the peer; empty when nothing is.
        pub fn take_outbound(&mut self) -> bytes::Bytes {
            self.conn.take_outbound()
        }

        /// Feeds bytes read from the peer.
        ///
        /// An error is final: the bytes broke the protocol or a limit, and
        /// every later call returns [`SessionError::Closed`].
        pub fn handle_input(&mut self, input: &[u8]) -> Result<Vec<$event>, SessionError> {
            if self.failed {
                return Err(SessionError::Closed);
            }
            let result = self.process_input(input);
            self.failed = result.is_err();
            result
        }

        /// Starts the deadlines: `now` is when the connection began.
        pub fn arm_timers(&mut self, now: std::time::Instant) {
            self.clock.arm(now);
        }

        /// [`handle_input`](Self::handle_input) with the time the bytes arrived.
        pub fn handle_input_at(&mut self, now: std::time::Instant, input: &[u8]) -> Result<Vec<$event>, SessionError> {
            self.clock.last_input = Some(now);
            let events = self.handle_input(input)?;
            self.note_progress(now, &events);
            Ok(events)
        }

        /// Fails the session if a deadline has passed by `now`.
        pub fn handle_timeout(&mut self, now: std::time::Instant) -> Result<(), SessionError> {
            if self.failed {
                return Err(SessionError::Closed);
            }
            match super::timers::expired(self.next_deadline(), now) {
                Some((timer, after)) => {
                    self.failed = true;
                    Err(SessionError::TimedOut { timer, after })
                }
                None => Ok(()),
            }
        }

        /// When the next deadline falls, if any is armed.
        pub fn poll_timeout(&self) -> Option<std::time::Instant> {
            if self.failed {
                return None;
            }
            self.next_deadline().map(|(at, _, _)| at)
        }

        /// Received bytes held until their message is complete (bounded by
        /// the decoder's limits).
        pub fn buffered_input(&self) -> usize {
            self.conn.buffered_len()
        }

        /// The handshake first (its leftover bytes are chunks already),
        /// then every complete message, then an acknowledgement if due.
        fn process_input(&mut self, input: &[u8]) -> Result<Vec<$event>, SessionError> {
            let mut events = Vec::new();
            self.conn.bytes_received += input.len() as u64;
            let leftover;
            let mut data = input;
            if let Some(hs) = &mut self.handshake {
                match hs.handle_input(input, &mut self.conn.out)? {
                    super::handshake::HandshakeStatus::InProgress => return Ok(events),
                    super::handshake::HandshakeStatus::Done { leftover: rest } => {
                        self.handshake = None;
                        self.on_handshake_done(&mut events)?;
                        leftover = rest;
                        data = &leftover;
                    }
                }
            }
            self.conn.push(data);
            while let Some(incoming) = self.conn.next()? {
                self.on_message(incoming, &mut events)?;
            }
            self.conn.ack_if_due()?;
            Ok(events)
        }
    };
}
pub(crate) use session_io;

/// A received message with its header fields.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub timestamp: u32,
    pub stream_id: u32,
    pub message: RtmpMessage,
}

/// Chunk codec plus the bookkeeping both ends of a connection do.
pub(crate) struct Connection {
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
    /// Bytes for the driver to write.
    pub out: BytesMut,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The peer's WindowAckSize: acknowledge every this many bytes received.
    ack_window: Option<u32>,
    acked_at: u64,
    /// What the peer acknowledged, unwrapped from its 32-bit counter.
    pub peer_acked: u64,
    /// Our last WindowAckSize, to answer SetPeerBandwidth only on a change (5.4.5).
    window_sent: Option<u32>,
}

/// Counters only: the outbound buffer may hold `publish` and its key.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("decoder", &self.decoder)
            .field("outbound_len", &self.out.len())
            .field("bytes_sent", &self.bytes_sent)
            .field("bytes_received", &self.bytes_received)
            .field("peer_acked", &self.peer_acked)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn new(limits: DecoderLimits) -> Self {
        Connection {
            encoder: ChunkEncoder::new(),
            decoder: ChunkDecoder::with_limits(limits),
            out: BytesMut::new(),
            bytes_sent: 0,
            bytes_received: 0,
            ack_window: None,
            acked_at: 0,
            peer_acked: 0,
            window_sent: None,
        }
    }

    pub fn send(&mut self, csid: u32, timestamp: u32, stream_id: u32, msg: RtmpMessage) -> Result<(), ChunkError> {
        self.send_raw(&msg.into_raw(csid, timestamp, stream_id))
    }

    pub fn send_raw(&mut self, raw: &RawMessage) -> Result<(), ChunkError> {
        self.encoder.encode(raw, &mut self.out)
    }

    pub fn send_control(&mut self, msg: RtmpMessage) -> Result<(), ChunkError> {
        self.send(CSID_PROTOCOL_CONTROL, 0, 0, msg)
    }

    /// Announces a new outgoing chunk size, then switches to it (spec 5.4.1).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        // Validate first so an invalid size is never announced.
        effective_chunk_size(size)?;
        self.send_control(RtmpMessage::SetChunkSize(size))?;
        self.encoder.set_chunk_size(size)
    }

    pub fn out_chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    pub fn send_window_ack_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.window_sent = Some(size);
        self.send_control(RtmpMessage::WindowAckSize(size))
    }

    /// Received bytes not yet part of a complete message.
    pub fn buffered_len(&self) -> usize {
        self.decoder.buffered_len()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    pub fn take_outbound(&mut self) -> Bytes {
        let out = self.out.split().freeze();
        self.bytes_sent += out.len() as u64;
        out
    }

    /// The next message, after applying its protocol control effects.
    pub fn next(&mut self) -> Result<Option<Incoming>, SessionError> {
        let Some(raw) = self.decoder.next_message()? else { return Ok(None) };
        let message = RtmpMessage::from_raw(&raw)?;
        match &message {
            RtmpMessage::SetChunkSize(n) => self.decoder.set_chunk_size(*n)?,
            RtmpMessage::Abort { csid } => self.decoder.abort(*csid),
            RtmpMessage::WindowAckSize(n) => self.ack_window = (*n > 0).then_some(*n),
            RtmpMessage::Acknowledgement(seq) => {
                self.peer_acked += u64::from(seq.wrapping_sub(self.peer_acked as u32));
            }
            RtmpMessage::SetPeerBandwidth { size, .. } if self.window_sent != Some(*size) => {
                self.send_window_ack_size(*size)?;
            }
            RtmpMessage::UserControl(UserControlEvent::PingRequest(t)) => {
                self.send_control(RtmpMessage::UserControl(UserControlEvent::PingResponse(*t)))?;
            }
            _ => {}
        }
        Ok(Some(Incoming { timestamp: raw.timestamp, stream_id: raw.stream_id, message }))
    }

    /// Sends an Acknowledgement once a full window has arrived since the last (5.4.3).
    pub fn ack_if_due(&mut self) -> Result<(), ChunkError> {
        if let Some(w) = self.ack_window
            && self.bytes_received - self.acked_at >= u64::from(w)
        {
            self.acked_at = self.bytes_received;
            // The sequence number wraps at 32 bits, as every peer's counter does.
            self.send_control(RtmpMessage::Acknowledgement(self.bytes_received as u32))?;
        }
        Ok(())
    }
}
