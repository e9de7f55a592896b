//! The RTMP client, sans-IO: bytes in, events and bytes out.
//!
//! Publishing, the sequence is what FMLE, OBS and ffmpeg send and what
//! YouTube, Twitch, Facebook and nginx-rtmp accept: handshake; SetChunkSize
//! before `connect`; `connect`; `releaseStream`, `FCPublish`, `createStream`;
//! `publish(key, "live")` on the new stream; media once
//! `NetStream.Publish.Start` arrives.
//!
//! Playing (Tally's preview of its own server, the load generator, tests),
//! it is ffmpeg's: `connect`, `createStream`, `play(name, -2000)`,
//! SetBufferLength; media arrives as [`ClientEvent::Media`].
//!
//! Fully deterministic given (config, seed, epoch, inputs), so its bytes can
//! be compared with golden captures.

use super::chunk::DecoderLimits;
use super::connection::{CSID_AUDIO, CSID_COMMAND, CSID_DATA, CSID_VIDEO, Connection, Incoming, SessionError};
use super::handshake::ClientHandshake;
use super::message::{Command, MediaKind, RtmpMessage, UserControlEvent};
use super::url::{RtmpUrl, StreamKey, redact_key_in};
use crate::amf0::Amf0Value;
use bytes::Bytes;

/// flashVer we announce; nginx-rtmp and the ingests only log it.
pub const FLASH_VER: &str = "FMLE/3.0 (compatible; Tally)";

/// Chunk size we switch to before `connect`: what OBS and ffmpeg use, and
/// 32 times fewer chunk headers than the default 128.
pub const CLIENT_CHUNK_SIZE: u32 = 4096;

/// Whether the client publishes or plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// Send media (`publish`).
    Publish,
    /// Receive media (`play`).
    Play,
}

/// Buffer length a player announces (SetBufferLength, spec 7.1.7), ms: ffmpeg's value.
pub const PLAY_BUFFER_MS: u32 = 3000;

/// What a [`ClientSession`] needs to publish or play.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Publish or play.
    pub mode: ClientMode,
    /// Application (`connect`'s `app`).
    pub app: String,
    /// `connect`'s `tcUrl` (also sent as `swfUrl`, as FMLE does).
    pub tc_url: String,
    /// The key `publish` names.
    pub stream_key: StreamKey,
    /// `connect`'s `flashVer`.
    pub flash_ver: String,
    /// Outgoing chunk size, announced before `connect`.
    pub chunk_size: u32,
    /// Caps on what the server may make us buffer.
    pub limits: DecoderLimits,
    /// Deadlines, once the driver arms them.
    pub timeouts: super::timers::ClientTimeouts,
}

impl ClientConfig {
    /// Defaults for playing `url` (its last segment is the stream name).
    pub fn play_from_url(url: &RtmpUrl) -> Self {
        ClientConfig { mode: ClientMode::Play, ..ClientConfig::from_url(url) }
    }

    /// Defaults for publishing to `url`.
    pub fn from_url(url: &RtmpUrl) -> Self {
        ClientConfig {
            mode: ClientMode::Publish,
            app: url.app.clone(),
            tc_url: url.tc_url.clone(),
            stream_key: url.stream_key.clone(),
            flash_ver: FLASH_VER.to_owned(),
            chunk_size: CLIENT_CHUNK_SIZE,
            limits: DecoderLimits::default(),
            timeouts: super::timers::ClientTimeouts::default(),
        }
    }
}

/// Where the publish sequence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// C0+C1 sent, waiting for S0/S1/S2.
    Handshaking,
    /// `connect` sent.
    Connecting,
    /// `releaseStream`, `FCPublish`, `createStream` sent.
    CreatingStream,
    /// `publish` sent, waiting for `NetStream.Publish.Start`.
    Publishing,
    /// Publishing: media may be sent (or, playing: media arrives).
    Live,
    /// The server refused (final).
    Rejected,
    /// `unpublish` was called.
    Unpublished,
}

/// What the session reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed.
    HandshakeDone,
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: media may flow.
    PublishStarted {
        /// Message stream id the server created.
        stream_id: u32,
    },
    /// `NetStream.Play.Start`: media will arrive.
    PlayStarted {
        /// Message stream id the server created.
        stream_id: u32,
    },
    /// Audio, video or data (`onMetaData` included) received while playing:
    /// an FLV tag body with its timestamp.
    Media {
        /// Which message type.
        kind: MediaKind,
        /// Timestamp, ms.
        timestamp: u32,
        /// The body.
        payload: Bytes,
    },
    /// Any `onStatus` (the key redacted from its words).
    Status {
        /// `status`, `warning` or `error`.
        level: String,
        /// E.g. `NetStream.Publish.Start`.
        code: String,
        /// The server's description.
        description: String,
    },
    /// `_error` or `onStatus` level "error": final, do not retry in a loop.
    Rejected {
        /// E.g. `NetStream.Publish.BadName`, `NetConnection.Connect.Rejected`.
        code: String,
        /// The server's words, key redacted.
        description: String,
    },
    /// The server's SetChunkSize.
    PeerChunkSize(u32),
    /// The server's WindowAckSize.
    PeerWindowAck(u32),
    /// The server acknowledged this many bytes (its 32-bit counter).
    PeerAcknowledged(u32),
}

/// Commands whose answers we wait for, by transaction id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Connect,
    ReleaseStream,
    FcPublish,
    CreateStream,
    Publish,
    Other,
}

/// A publishing RTMP client (sans-IO, in the manner of quinn-proto and
/// rml_rtmp): feed it received bytes with [`handle_input`], write what
/// [`take_outbound`] returns.
///
/// [`handle_input`]: ClientSession::handle_input
/// [`take_outbound`]: ClientSession::take_outbound
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    handshake: Option<ClientHandshake>,
    conn: Connection,
    state: ClientState,
    next_transaction: u32,
    calls: Vec<(f64, Call)>,
    stream_id: Option<u32>,
    /// `handle_input` returned an error: no more input is taken.
    failed: bool,
    /// Times for the deadlines (`last_progress`: the last acknowledgement change).
    clock: super::timers::Clock,
    /// The server's WindowAckSize: it acknowledges every this many bytes.
    peer_window: Option<u32>,
    acked_seen: u64,
}

impl ClientSession {
    /// Starts a session: C0+C1 are queued at once. `seed` fixes the
    /// handshake's random bytes, `epoch_ms` goes in C1's time field.
    pub fn new(config: ClientConfig, seed: u64, epoch_ms: u32) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut conn = Connection::new(config.limits);
        let handshake = ClientHandshake::new(&mut rng, epoch_ms, &mut conn.out);
        ClientSession {
            config,
            handshake: Some(handshake),
            conn,
            state: ClientState::Handshaking,
            next_transaction: 1,
            calls: Vec::new(),
            stream_id: None,
            failed: false,
            clock: super::timers::Clock::default(),
            peer_window: None,
            acked_seen: 0,
        }
    }

    /// Where the publish sequence is.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The message stream id once `createStream` answered.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    super::connection::session_io!(ClientEvent);

    fn note_progress(&mut self, now: std::time::Instant, events: &[ClientEvent]) {
        for ev in events {
            if let ClientEvent::PeerWindowAck(w) = ev {
                self.peer_window = (*w > 0).then_some(*w);
            }
        }
        if self.conn.peer_acked != self.acked_seen {
            self.acked_seen = self.conn.peer_acked;
            self.clock.last_progress = Some(now);
        }
    }

    /// Handshake, then setup until live, then acknowledgements while more
    /// than two of the server's windows are outstanding.
    fn next_deadline(&self) -> Option<(std::time::Instant, super::timers::Timer, std::time::Duration)> {
        use super::timers::Timer;
        let armed = self.clock.armed?;
        let t = &self.config.timeouts;
        match self.state {
            ClientState::Handshaking => Some((armed + t.handshake, Timer::Handshake, t.handshake)),
            ClientState::Connecting | ClientState::CreatingStream | ClientState::Publishing => {
                Some((armed + t.setup, Timer::Setup, t.setup))
            }
            ClientState::Live => {
                let (window, after) = (self.peer_window?, t.acknowledgement?);
                let outstanding = self.conn.bytes_sent.saturating_sub(self.conn.peer_acked);
                (outstanding > 2 * u64::from(window)).then(|| (self.clock.last_progress.unwrap_or(armed) + after, Timer::Acknowledgement, after))
            }
            ClientState::Rejected | ClientState::Unpublished => None,
        }
    }

    fn on_handshake_done(&mut self, events: &mut Vec<ClientEvent>) -> Result<(), SessionError> {
        events.push(ClientEvent::HandshakeDone);
        self.send_connect()
    }

    /// Sends one media message: `payload` is an FLV tag body (for
    /// [`MediaKind::Data`], the whole `@setDataFrame` AMF0 body), `timestamp_ms`
    /// its FLV timestamp. Only while [`ClientState::Live`]. The payload is
    /// taken as it is (`Bytes`: the encoder's buffer, shared, not copied).
    pub fn send_media(&mut self, kind: MediaKind, timestamp_ms: u32, payload: impl Into<Bytes>) -> Result<(), SessionError> {
        let (ClientState::Live, Some(stream_id)) = (self.state, self.stream_id) else {
            return Err(SessionError::NotPublishing);
        };
        let csid = match kind {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        };
        let raw = super::chunk::RawMessage {
            csid,
            timestamp: timestamp_ms,
            type_id: kind.type_id(),
            stream_id,
            payload: payload.into(),
        };
        Ok(self.conn.send_raw(&raw)?)
    }

    /// Changes our outgoing chunk size mid-session (SetChunkSize, spec 5.4.1).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), SessionError> {
        Ok(self.conn.set_chunk_size(size)?)
    }

    /// Ends publishing: `FCUnpublish` and `deleteStream`, as ffmpeg does.
    /// The driver then flushes and closes. Does nothing before `createStream`
    /// answered or after a rejection.
    pub fn unpublish(&mut self) {
        if !matches!(self.state, ClientState::Publishing | ClientState::Live) {
            return;
        }
        let Some(stream_id) = self.stream_id else { return };
        self.state = ClientState::Unpublished;
        let key = Amf0Value::string(self.config.stream_key.expose());
        let sent = self
            .call("FCUnpublish", Call::Other, 0, vec![key])
            .and_then(|()| self.call("deleteStream", Call::Other, 0, vec![Amf0Value::Number(f64::from(stream_id))]));
        if let Err(e) = sent {
            // Only an over-long message fails to encode; these are tiny.
            tracing::debug!(error = %e, "could not queue unpublish");
        }
    }

    fn call(&mut self, name: &str, call: Call, stream_id: u32, args: Vec<Amf0Value>) -> Result<(), SessionError> {
        self.call_with_object(name, call, stream_id, Amf0Value::Null, args)
    }

    fn call_with_object(
        &mut self,
        name: &str,
        call: Call,
        stream_id: u32,
        object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Result<(), SessionError> {
        let txn = f64::from(self.next_transaction);
        self.next_transaction += 1;
        if call != Call::Other {
            self.calls.push((txn, call));
        }
        let cmd = Command::new(name, txn, object, args);
        tracing::trace!(command = %self.redact(&format!("{cmd:?}")), "rtmp: sending");
        Ok(self.conn.send(CSID_COMMAND, 0, stream_id, RtmpMessage::Command(cmd))?)
    }

    fn send_connect(&mut self) -> Result<(), SessionError> {
        self.conn.set_chunk_size(self.config.chunk_size)?;
        let c = &self.config;
        // Field order as FMLE and librtmp send them.
        let object = Amf0Value::object([
            ("app", Amf0Value::string(&c.app)),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string(&c.flash_ver)),
            ("swfUrl", Amf0Value::string(&c.tc_url)),
            ("tcUrl", Amf0Value::string(&c.tc_url)),
        ]);
        self.state = ClientState::Connecting;
        self.call_with_object("connect", Call::Connect, 0, object, vec![])
    }

    fn take_call(&mut self, txn: f64) -> Option<Call> {
        let i = self.calls.iter().position(|(t, _)| *t == txn)?;
        Some(self.calls.swap_remove(i).1)
    }

    fn redact(&self, text: &str) -> String {
        redact_key_in(text, &self.config.stream_key)
    }

    fn reject(&mut self, code: &str, description: &str, events: &mut Vec<ClientEvent>) {
        if matches!(self.state, ClientState::Rejected | ClientState::Unpublished) {
            return;
        }
        self.state = ClientState::Rejected;
        let code = if code.is_empty() { "_error".to_owned() } else { self.redact(code) };
        events.push(ClientEvent::Rejected { code, description: self.redact(description) });
    }

    fn on_message(&mut self, incoming: Incoming, events: &mut Vec<ClientEvent>) -> Result<(), SessionError> {
        match incoming.message {
            RtmpMessage::SetChunkSize(n) => events.push(ClientEvent::PeerChunkSize(n)),
            RtmpMessage::WindowAckSize(n) => events.push(ClientEvent::PeerWindowAck(n)),
            RtmpMessage::Acknowledgement(n) => events.push(ClientEvent::PeerAcknowledged(n)),
            RtmpMessage::Command(cmd) => self.on_command(cmd, events)?,
            RtmpMessage::Audio(payload) if self.config.mode == ClientMode::Play => {
                events.push(ClientEvent::Media { kind: MediaKind::Audio, timestamp: incoming.timestamp, payload })
            }
            RtmpMessage::Video(payload) if self.config.mode == ClientMode::Play => {
                events.push(ClientEvent::Media { kind: MediaKind::Video, timestamp: incoming.timestamp, payload })
            }
            RtmpMessage::Data(payload) if self.config.mode == ClientMode::Play => {
                events.push(ClientEvent::Media { kind: MediaKind::Data, timestamp: incoming.timestamp, payload })
            }
            other => tracing::debug!(type_id = other.type_id(), "ignoring message"),
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: Command, events: &mut Vec<ClientEvent>) -> Result<(), SessionError> {
        tracing::trace!(command = %self.redact(&format!("{cmd:?}")), "rtmp: received");
        match cmd.name.as_str() {
            "_result" => match self.take_call(cmd.transaction_id) {
                Some(Call::Connect) => {
                    events.push(ClientEvent::Connected);
                    self.state = ClientState::CreatingStream;
                    if self.config.mode == ClientMode::Publish {
                        let key = Amf0Value::string(self.config.stream_key.expose());
                        self.call("releaseStream", Call::ReleaseStream, 0, vec![key.clone()])?;
                        self.call("FCPublish", Call::FcPublish, 0, vec![key])?;
                    }
                    self.call("createStream", Call::CreateStream, 0, vec![])?;
                }
                Some(Call::CreateStream) => {
                    let id = cmd
                        .args
                        .iter()
                        .find_map(Amf0Value::as_number)
                        .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX))
                        .ok_or(SessionError::BadReply("createStream result without a stream id"))?;
                    let stream_id = id as u32;
                    self.stream_id = Some(stream_id);
                    self.state = ClientState::Publishing;
                    if self.config.mode == ClientMode::Play {
                        // start -2000: live or recorded, as ffmpeg asks.
                        let args = vec![Amf0Value::string(self.config.stream_key.expose()), Amf0Value::Number(-2000.0)];
                        self.call("play", Call::Publish, stream_id, args)?;
                        let buffer = UserControlEvent::SetBufferLength { stream_id, buffer_ms: PLAY_BUFFER_MS };
                        self.conn.send_control(RtmpMessage::UserControl(buffer))?;
                    } else {
                        let args =
                            vec![Amf0Value::string(self.config.stream_key.expose()), Amf0Value::string("live")];
                        self.call("publish", Call::Publish, stream_id, args)?;
                    }
                }
                other => tracing::debug!(call = ?other, "ignoring _result"),
            },
            "_error" => match self.take_call(cmd.transaction_id) {
                // ffmpeg ignores these too: several ingests do not implement them.
                Some(Call::ReleaseStream | Call::FcPublish) => {
                    tracing::debug!(code = %self.redact(cmd.info_str("code")), "ignoring _error to releaseStream/FCPublish");
                }
                _ => self.reject(cmd.info_str("code"), cmd.info_str("description"), events),
            },
            "onStatus" => {
                // Decisions use the server's words as sent; only what is
                // reported is redacted (a short key can be part of a code).
                let (level, code, description) = (cmd.info_str("level"), cmd.info_str("code"), cmd.info_str("description"));
                events.push(ClientEvent::Status {
                    level: self.redact(level),
                    code: self.redact(code),
                    description: self.redact(description),
                });
                let play = self.config.mode == ClientMode::Play;
                if code == "NetStream.Publish.Start" && self.state == ClientState::Publishing && !play {
                    self.state = ClientState::Live;
                    let stream_id = self.stream_id.unwrap_or_default();
                    events.push(ClientEvent::PublishStarted { stream_id });
                } else if code == "NetStream.Play.Start" && self.state == ClientState::Publishing && play {
                    self.state = ClientState::Live;
                    let stream_id = self.stream_id.unwrap_or_default();
                    events.push(ClientEvent::PlayStarted { stream_id });
                } else if level == "error" {
                    self.reject(code, description, events);
                }
            }
            name => tracing::debug!(command = name, "ignoring command"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::chunk::{ChunkDecoder, RawMessage};
    use crate::rtmp::handshake::HANDSHAKE_SIZE;
    use bytes::BytesMut;

    fn config() -> ClientConfig {
        ClientConfig::from_url(&RtmpUrl::parse("rtmp://example.com/live/sekrit-key").unwrap())
    }

    /// Decodes what the client sent after C0+C1+C2.
    fn sent_messages(bytes: &[u8]) -> Vec<RawMessage> {
        let mut dec = ChunkDecoder::new();
        dec.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            if let Ok(RtmpMessage::SetChunkSize(n)) = RtmpMessage::from_raw(&m) {
                dec.set_chunk_size(n).unwrap();
            }
            out.push(m);
        }
        out
    }

    fn server_greeting() -> Vec<u8> {
        let mut s = vec![3u8];
        s.extend_from_slice(&[0u8; 2 * HANDSHAKE_SIZE]);
        s
    }

    #[test]
    fn handshake_then_chunk_size_and_connect() {
        let mut c = ClientSession::new(config(), 9, 500);
        let c0c1 = c.take_outbound();
        assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(c.take_outbound().len(), 0);
        let events = c.handle_input(&server_greeting()).unwrap();
        assert_eq!(events, vec![ClientEvent::HandshakeDone]);
        assert_eq!(c.state(), ClientState::Connecting);
        let out = c.take_outbound();
        let msgs = sent_messages(&out[HANDSHAKE_SIZE..]);
        assert_eq!(RtmpMessage::from_raw(&msgs[0]).unwrap(), RtmpMessage::SetChunkSize(4096));
        let RtmpMessage::Command(connect) = RtmpMessage::from_raw(&msgs[1]).unwrap() else { panic!() };
        assert_eq!((connect.name.as_str(), connect.transaction_id, msgs[1].csid), ("connect", 1.0, 3));
        assert_eq!(connect.object.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(connect.object.get("type").and_then(Amf0Value::as_str), Some("nonprivate"));
        assert_eq!(connect.object.get("flashVer").and_then(Amf0Value::as_str), Some(FLASH_VER));
        assert_eq!(connect.object.get("tcUrl").and_then(Amf0Value::as_str), Some("rtmp://example.com/live"));
        assert_eq!(connect.object.get("swfUrl").and_then(Amf0Value::as_str), Some("rtmp://example.com/live"));
        assert_eq!(c.bytes_sent(), (1 + 2 * HANDSHAKE_SIZE + out.len() - HANDSHAKE_SIZE) as u64);
        assert_eq!(c.bytes_received(), (1 + 2 * HANDSHAKE_SIZE) as u64);
    }

    #[test]
    fn media_before_publish_start_is_refused() {
        let mut c = ClientSession::new(config(), 1, 0);
        assert_eq!(c.send_media(MediaKind::Audio, 0, Bytes::from_static(b"x")), Err(SessionError::NotPublishing));
        c.unpublish(); // harmless
        assert_eq!(c.state(), ClientState::Handshaking);
    }

    #[test]
    fn connect_error_is_final_and_redacted() {
        let mut c = ClientSession::new(config(), 1, 0);
        c.handle_input(&server_greeting()).unwrap();
        let mut enc = crate::rtmp::chunk::ChunkEncoder::new();
        let mut wire = BytesMut::new();
        let info = Amf0Value::object([
            ("level", Amf0Value::string("error")),
            ("code", Amf0Value::string("NetConnection.Connect.Rejected")),
            ("description", Amf0Value::string("no stream sekrit-key here")),
        ]);
        let err = Command::new("_error", 1.0, Amf0Value::Null, vec![info]);
        enc.encode(&RtmpMessage::Command(err).into_raw(3, 0, 0), &mut wire).unwrap();
        let events = c.handle_input(&wire).unwrap();
        assert_eq!(
            events,
            vec![ClientEvent::Rejected {
                code: "NetConnection.Connect.Rejected".into(),
                description: "no stream <redacted> here".into()
            }]
        );
        assert_eq!(c.state(), ClientState::Rejected);
    }
}
