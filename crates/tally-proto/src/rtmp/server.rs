//! The server side of a connection, sans-IO: publish (what ffmpeg, OBS,
//! FMLE and Tally's own client send) and play (ffmpeg/ffplay, librtmp-based
//! players — rtmpdump, GStreamer, OBS — VLC, mpv). Replies mirror
//! nginx-rtmp's so clients written against it behave the same here.
//!
//! The session decides nothing about streams: a `publish` or `play` becomes
//! an event, and the driver (`net::server`, which owns the stream registry)
//! answers with [`ServerSession::accept_publish`] / [`reject_publish`] /
//! [`accept_play`] / [`reject_play`]. Rejections are `onStatus` messages with
//! level "error"; the driver flushes them before it closes, so the client
//! always learns why.
//!
//! Media for players is not encoded here: the driver writes pre-chunked,
//! shared bytes on the media chunk streams ([`CSID_AUDIO`](crate::rtmp::CSID_AUDIO),
//! [`CSID_DATA`](crate::rtmp::CSID_DATA), [`CSID_VIDEO`](crate::rtmp::CSID_VIDEO),
//! message stream [`PLAYER_STREAM_ID`]); this session only
//! ever writes on the control and command chunk streams, so the two never
//! disturb each other's header compression.
//!
//! [`reject_publish`]: ServerSession::reject_publish
//! [`accept_play`]: ServerSession::accept_play
//! [`reject_play`]: ServerSession::reject_play

use super::chunk::DecoderLimits;
use super::connection::{CSID_COMMAND, Connection, Incoming, SessionError};
use super::handshake::ServerHandshake;
use super::message::{Command, MediaKind, PeerBandwidthLimit, RtmpMessage, UserControlEvent};
use super::url::{REDACTED, StreamKey};
use crate::amf0::{self, Amf0Value};
use bytes::Bytes;

/// Most message streams one connection may create: a publisher needs one;
/// this stops a `createStream` loop from growing state without bound.
pub const MAX_STREAMS_PER_CONNECTION: usize = 8;

/// `fmsVer` announced in the `connect` result (nginx-rtmp's value; some
/// clients look for "FMS/3" to enable features).
pub const FMS_VERSION: &str = "FMS/3,0,1,123";

/// The message stream id every client gets from its first `createStream`
/// (ids are handed out from 1 per connection), and the one shared player
/// media is encoded for — nginx-rtmp sends all live media on stream 1 too.
pub const PLAYER_STREAM_ID: u32 = 1;

/// Server behaviour knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Outgoing chunk size, announced in reply to `connect`.
    pub chunk_size: u32,
    /// Our WindowAckSize: the client acknowledges every this many bytes.
    pub window_ack_size: u32,
    /// SetPeerBandwidth we send (limit type dynamic, like nginx-rtmp).
    pub peer_bandwidth: u32,
    /// Caps on what a client may make us buffer.
    pub limits: DecoderLimits,
    /// When set, `connect` is answered with `_error`
    /// `NetConnection.Connect.Rejected` and this description (server full).
    pub refuse_connect: Option<&'static str>,
    /// Deadlines, once the driver arms them.
    pub timeouts: super::timers::ServerTimeouts,
}

impl Default for ServerConfig {
    /// nginx-rtmp's defaults: chunk size 4096, ack window 5,000,000.
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 5_000_000,
            peer_bandwidth: 5_000_000,
            limits: DecoderLimits::default(),
            refuse_connect: None,
            timeouts: super::timers::ServerTimeouts::default(),
        }
    }
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Waiting for C0/C1/C2.
    Handshaking,
    /// Handshake done, waiting for `connect`.
    AwaitingConnect,
    /// `connect` answered.
    Connected,
}

/// What the session reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// The handshake completed.
    HandshakeDone,
    /// `connect` was accepted.
    Connected {
        /// Application asked for.
        app: String,
        /// `tcUrl` the client sent ("" if none).
        tc_url: String,
    },
    /// `publish`: answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`].
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application from `connect`.
        app: String,
        /// Stream name (the key).
        key: StreamKey,
        /// Publishing type: "live", "record" or "append".
        publish_type: String,
    },
    /// `play`: answer with [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application from `connect`.
        app: String,
        /// Stream name asked for (query string included).
        name: String,
    },
    /// A player stopped (`closeStream`, `deleteStream`).
    PlayStopped {
        /// Message stream id.
        stream_id: u32,
    },
    /// A player paused (true) or resumed (false).
    Paused {
        /// Message stream id.
        stream_id: u32,
        /// Paused now.
        paused: bool,
    },
    /// Audio, video or a non-metadata data message on a publishing stream.
    MediaReceived {
        /// Message stream id.
        stream_id: u32,
        /// Which message type.
        kind: MediaKind,
        /// Timestamp, milliseconds.
        timestamp: u32,
        /// Body as received (FLV tag body).
        payload: Bytes,
    },
    /// `@setDataFrame`: the AMF0 body after that name (`onMetaData`, object),
    /// i.e. an FLV script tag body, as nginx-rtmp stores it.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp, milliseconds.
        timestamp: u32,
        /// The body from `onMetaData` on.
        payload: Bytes,
    },
    /// The publisher stopped (`FCUnpublish`, `closeStream` or `deleteStream`).
    Unpublished {
        /// Message stream id.
        stream_id: u32,
    },
    /// The client's SetChunkSize.
    PeerChunkSize(u32),
    /// The client acknowledged this many bytes.
    PeerAcknowledged(u32),
    /// Answer to [`ServerSession::ping`].
    PingResponse(u32),
}

#[derive(Debug, PartialEq, Eq)]
enum StreamState {
    Idle,
    PublishPending,
    Publishing,
    PlayPending,
    Playing,
}

#[derive(Debug)]
struct Stream {
    id: u32,
    state: StreamState,
}

/// A server-side RTMP connection (sans-IO): feed it received bytes with
/// [`handle_input`], write what [`take_outbound`] returns.
///
/// [`handle_input`]: ServerSession::handle_input
/// [`take_outbound`]: ServerSession::take_outbound
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    handshake: Option<ServerHandshake>,
    conn: Connection,
    state: ServerState,
    app: String,
    streams: Vec<Stream>,
    next_stream_id: u32,
    /// `handle_input` returned an error: no more input is taken.
    failed: bool,
    /// Times for the deadlines (`last_progress`: the last media or publish request).
    clock: super::timers::Clock,
}

impl ServerSession {
    /// A session awaiting C0/C1. `seed` fixes S1's random bytes, `epoch_ms`
    /// goes in S1's time field.
    pub fn new(config: ServerConfig, seed: u64, epoch_ms: u32) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        ServerSession {
            config,
            handshake: Some(ServerHandshake::new(&mut rng, epoch_ms)),
            conn: Connection::new(config.limits),
            state: ServerState::Handshaking,
            app: String::new(),
            streams: Vec::new(),
            next_stream_id: 1,
            failed: false,
            clock: super::timers::Clock::default(),
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The application from `connect` ("" before).
    pub fn app(&self) -> &str {
        &self.app
    }

    super::connection::session_io!(ServerEvent);

    fn note_progress(&mut self, now: std::time::Instant, events: &[ServerEvent]) {
        if events.iter().any(|e| matches!(e, ServerEvent::HandshakeDone)) {
            self.clock.handshake_done = Some(now);
        }
        if events.iter().any(|e| matches!(e, ServerEvent::MediaReceived { .. } | ServerEvent::PublishRequested { .. })) {
            self.clock.last_progress = Some(now);
        }
    }

    /// Handshake, then `connect`; then a publisher must keep sending media,
    /// and a connection that neither publishes nor plays must keep sending
    /// something. A player may be silent (its writes have a stall limit
    /// of their own in the driver).
    fn next_deadline(&self) -> Option<(std::time::Instant, super::timers::Timer, std::time::Duration)> {
        use super::timers::Timer;
        let armed = self.clock.armed?;
        let t = &self.config.timeouts;
        if self.state == ServerState::Handshaking {
            return Some((armed + t.handshake, Timer::Handshake, t.handshake));
        }
        if self.state == ServerState::AwaitingConnect {
            return Some((self.clock.handshake_done.unwrap_or(armed) + t.connect, Timer::Connect, t.connect));
        }
        let has = |f: fn(&StreamState) -> bool| self.streams.iter().any(|s| f(&s.state));
        if has(|s| matches!(s, StreamState::Publishing | StreamState::PublishPending)) {
            return Some((self.clock.last_progress.unwrap_or(armed) + t.publisher_idle, Timer::NoMedia, t.publisher_idle));
        }
        if has(|s| matches!(s, StreamState::Playing | StreamState::PlayPending)) {
            return None;
        }
        Some((self.clock.last_input.unwrap_or(armed) + t.idle, Timer::Idle, t.idle))
    }

    fn on_handshake_done(&mut self, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        self.state = ServerState::AwaitingConnect;
        events.push(ServerEvent::HandshakeDone);
        Ok(())
    }

    /// Accepts a [`ServerEvent::PublishRequested`]: StreamBegin, then
    /// `onStatus NetStream.Publish.Start` (nginx-rtmp's order).
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<(), SessionError> {
        let stream = self.pending(stream_id)?;
        stream.state = StreamState::Publishing;
        self.conn.send_control(RtmpMessage::UserControl(UserControlEvent::StreamBegin(stream_id)))?;
        self.on_status(stream_id, "status", "NetStream.Publish.Start", "Start publishing")
    }

    /// Refuses a [`ServerEvent::PublishRequested`] with `onStatus` level
    /// "error" (e.g. `NetStream.Publish.BadName`). The driver should flush and
    /// close after it, as nginx-rtmp does.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), SessionError> {
        self.pending(stream_id)?.state = StreamState::Idle;
        self.on_status(stream_id, "error", code, description)
    }

    /// Accepts a [`ServerEvent::PlayRequested`] (nginx-rtmp's order):
    /// StreamBegin, `onStatus NetStream.Play.Reset` and `NetStream.Play.Start`,
    /// then `|RtmpSampleAccess`. Media follows from the driver.
    pub fn accept_play(&mut self, stream_id: u32) -> Result<(), SessionError> {
        let stream = self.stream_in(stream_id, StreamState::PlayPending)?;
        stream.state = StreamState::Playing;
        self.conn.send_control(RtmpMessage::UserControl(UserControlEvent::StreamBegin(stream_id)))?;
        self.on_status(stream_id, "status", "NetStream.Play.Reset", "Playing and resetting")?;
        self.on_status(stream_id, "status", "NetStream.Play.Start", "Start live")?;
        // Lets Flash-era players read the pixels and samples; others ignore it.
        let access = amf0::encode_all(&[Amf0Value::string("|RtmpSampleAccess"), Amf0Value::Boolean(true), Amf0Value::Boolean(true)]);
        Ok(self.conn.send(CSID_COMMAND, 0, stream_id, RtmpMessage::Data(access.freeze()))?)
    }

    /// Refuses a [`ServerEvent::PlayRequested`] with an `onStatus` error
    /// (e.g. `NetStream.Play.StreamNotFound`).
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), SessionError> {
        self.stream_in(stream_id, StreamState::PlayPending)?.state = StreamState::Idle;
        self.on_status(stream_id, "error", code, description)
    }

    /// Tells a player that a publisher started: StreamBegin and
    /// `NetStream.Play.PublishNotify` (nginx-rtmp with `publish_notify`).
    pub fn notify_publish(&mut self, stream_id: u32) -> Result<(), SessionError> {
        self.conn.send_control(RtmpMessage::UserControl(UserControlEvent::StreamBegin(stream_id)))?;
        self.on_status(stream_id, "status", "NetStream.Play.PublishNotify", "Start publishing")
    }

    /// Tells a player that the publisher left: StreamEOF and
    /// `NetStream.Play.UnpublishNotify`; the player stays and waits.
    pub fn notify_unpublish(&mut self, stream_id: u32) -> Result<(), SessionError> {
        self.conn.send_control(RtmpMessage::UserControl(UserControlEvent::StreamEof(stream_id)))?;
        self.on_status(stream_id, "status", "NetStream.Play.UnpublishNotify", "Stop publishing")
    }

    /// Ends a publish from the server side (another publisher took the
    /// name over): an `onStatus` error the client reports as final.
    pub fn end_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), SessionError> {
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream_id) {
            s.state = StreamState::Idle;
        }
        self.on_status(stream_id, "error", code, description)
    }

    /// Any `onStatus` on `stream_id`.
    pub fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) -> Result<(), SessionError> {
        self.on_status(stream_id, level, code, description)
    }

    /// The stream id this connection plays on, if it plays.
    pub fn playing_stream(&self) -> Option<u32> {
        self.streams.iter().find(|s| s.state == StreamState::Playing).map(|s| s.id)
    }

    /// The stream id this connection publishes on, if it publishes.
    pub fn publishing_stream(&self) -> Option<u32> {
        self.streams.iter().find(|s| s.state == StreamState::Publishing).map(|s| s.id)
    }

    /// Our outgoing chunk size (what shared media must be chunked with).
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size()
    }

    /// Changes our outgoing chunk size (SetChunkSize, spec 5.4.1).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), SessionError> {
        Ok(self.conn.set_chunk_size(size)?)
    }

    /// Sends a PingRequest (spec 7.1.7) carrying `timestamp`; the answer
    /// surfaces as [`ServerEvent::PingResponse`].
    pub fn ping(&mut self, timestamp: u32) -> Result<(), SessionError> {
        Ok(self.conn.send_control(RtmpMessage::UserControl(UserControlEvent::PingRequest(timestamp)))?)
    }

    fn pending(&mut self, stream_id: u32) -> Result<&mut Stream, SessionError> {
        self.stream_in(stream_id, StreamState::PublishPending)
    }

    fn stream_in(&mut self, stream_id: u32, state: StreamState) -> Result<&mut Stream, SessionError> {
        self.streams
            .iter_mut()
            .find(|s| s.id == stream_id && s.state == state)
            .ok_or(SessionError::UnknownStream(stream_id))
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) -> Result<(), SessionError> {
        let info = Amf0Value::object([
            ("level", Amf0Value::string(level)),
            ("code", Amf0Value::string(code)),
            ("description", Amf0Value::string(description)),
        ]);
        let cmd = Command::new("onStatus", 0.0, Amf0Value::Null, vec![info]);
        // Our replies carry no secret: names in them are the key-stripped ones.
        tracing::trace!(command = ?cmd, "rtmp: sending");
        Ok(self.conn.send(CSID_COMMAND, 0, stream_id, RtmpMessage::Command(cmd))?)
    }

    fn reply(&mut self, name: &str, txn: f64, object: Amf0Value, args: Vec<Amf0Value>) -> Result<(), SessionError> {
        let cmd = Command::new(name, txn, object, args);
        tracing::trace!(command = ?cmd, "rtmp: sending");
        Ok(self.conn.send(CSID_COMMAND, 0, 0, RtmpMessage::Command(cmd))?)
    }

    fn on_message(&mut self, incoming: Incoming, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        let Incoming { timestamp, stream_id, message } = incoming;
        match message {
            RtmpMessage::SetChunkSize(n) => events.push(ServerEvent::PeerChunkSize(n)),
            RtmpMessage::Acknowledgement(n) => events.push(ServerEvent::PeerAcknowledged(n)),
            RtmpMessage::UserControl(UserControlEvent::PingResponse(t)) => events.push(ServerEvent::PingResponse(t)),
            RtmpMessage::Audio(payload) => self.media(stream_id, MediaKind::Audio, timestamp, payload, events)?,
            RtmpMessage::Video(payload) => self.media(stream_id, MediaKind::Video, timestamp, payload, events)?,
            RtmpMessage::Data(payload) => self.data(stream_id, timestamp, payload, events)?,
            RtmpMessage::Command(cmd) => self.on_command(stream_id, cmd, events)?,
            other => tracing::debug!(type_id = other.type_id(), "ignoring message"),
        }
        Ok(())
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams.iter().any(|s| s.id == stream_id && matches!(s.state, StreamState::Publishing))
    }

    fn media(&mut self, stream_id: u32, kind: MediaKind, timestamp: u32, payload: Bytes, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        match self.streams.iter().find(|s| s.id == stream_id).map(|s| &s.state) {
            Some(StreamState::Publishing) => {
                events.push(ServerEvent::MediaReceived { stream_id, kind, timestamp, payload });
                Ok(())
            }
            // A client that does not wait for Publish.Start (the driver may
            // still be deciding): what it sent early is dropped, as
            // nginx-rtmp drops it.
            Some(StreamState::PublishPending) => {
                tracing::debug!(stream_id, ?kind, "media before Publish.Start: dropped");
                Ok(())
            }
            // nginx-rtmp drops media on a stream that never published and
            // keeps the connection; a client that sends it is broken or
            // probing, so it is told and closed.
            _ => {
                let what = if self.state == ServerState::Connected { "media before publish" } else { "media before connect" };
                self.on_status(stream_id, "error", "NetStream.Publish.Failed", what)?;
                Err(SessionError::OutOfOrder(what))
            }
        }
    }

    fn data(&mut self, stream_id: u32, timestamp: u32, payload: Bytes, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        let mut rest = &payload[..];
        let is_set_data_frame = amf0::decode(&mut rest).ok().is_some_and(|v| v.as_str() == Some("@setDataFrame"));
        if is_set_data_frame && self.is_publishing(stream_id) {
            let body = payload.slice(payload.len() - rest.len()..);
            events.push(ServerEvent::Metadata { stream_id, timestamp, payload: body });
            Ok(())
        } else {
            self.media(stream_id, MediaKind::Data, timestamp, payload, events)
        }
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        tracing::trace!(stream_id, command = %loggable(&cmd), "rtmp: received");
        let txn = cmd.transaction_id;
        match (self.state, cmd.name.as_str()) {
            (ServerState::AwaitingConnect, "connect") if self.config.refuse_connect.is_some() => {
                let why = self.config.refuse_connect.unwrap_or_default();
                let info = Amf0Value::object([
                    ("level", Amf0Value::string("error")),
                    ("code", Amf0Value::string("NetConnection.Connect.Rejected")),
                    ("description", Amf0Value::string(why)),
                ]);
                self.reply("_error", txn, Amf0Value::Null, vec![info])?;
            }
            (ServerState::AwaitingConnect, "connect") => {
                let get = |k: &str| cmd.object.get(k).and_then(Amf0Value::as_str).unwrap_or("").to_owned();
                let (app, tc_url) = (get("app"), get("tcUrl"));
                let object_encoding = cmd.object.get("objectEncoding").and_then(Amf0Value::as_number).unwrap_or(0.0);
                // nginx-rtmp's reply sequence.
                self.conn.send_window_ack_size(self.config.window_ack_size)?;
                self.conn.send_control(RtmpMessage::SetPeerBandwidth {
                    size: self.config.peer_bandwidth,
                    limit: PeerBandwidthLimit::Dynamic,
                })?;
                self.conn.set_chunk_size(self.config.chunk_size)?;
                let props = Amf0Value::object([
                    ("fmsVer", Amf0Value::string(FMS_VERSION)),
                    ("capabilities", Amf0Value::Number(31.0)),
                ]);
                let info = Amf0Value::object([
                    ("level", Amf0Value::string("status")),
                    ("code", Amf0Value::string("NetConnection.Connect.Success")),
                    ("description", Amf0Value::string("Connection succeeded.")),
                    ("objectEncoding", Amf0Value::Number(object_encoding)),
                ]);
                self.reply("_result", txn, props, vec![info])?;
                self.state = ServerState::Connected;
                self.app = app.clone();
                events.push(ServerEvent::Connected { app, tc_url });
            }
            (ServerState::Connected, "createStream") => {
                if self.streams.len() >= MAX_STREAMS_PER_CONNECTION {
                    return Err(SessionError::TooManyStreams(MAX_STREAMS_PER_CONNECTION));
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.push(Stream { id, state: StreamState::Idle });
                self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Number(f64::from(id))])?;
            }
            (ServerState::Connected, "FCPublish") => {
                let info = Amf0Value::object([
                    ("code", Amf0Value::string("NetStream.Publish.Start")),
                    ("description", Amf0Value::string("FCPublish")),
                ]);
                self.reply("onFCPublish", 0.0, Amf0Value::Null, vec![info])?;
            }
            (ServerState::Connected, "publish") => self.on_publish(stream_id, &cmd, events)?,
            (ServerState::Connected, "play") => self.on_play(stream_id, &cmd, events)?,
            (ServerState::Connected, "FCUnpublish") => self.unpublish(stream_id, &cmd, events),
            (ServerState::Connected, "closeStream") => {
                self.unpublish(stream_id, &cmd, events);
                self.stop_playing(Some(stream_id), events);
            }
            (ServerState::Connected, "deleteStream") => {
                self.unpublish(stream_id, &cmd, events);
                let id = cmd.args.first().and_then(Amf0Value::as_number).map(|n| n as u32);
                self.stop_playing(id, events);
                self.streams.retain(|s| Some(s.id) != id);
            }
            (ServerState::Connected, "pause") => {
                // pause(null, flag, position): only meaningful while playing.
                let paused = cmd.args.first().is_some_and(|v| matches!(v, Amf0Value::Boolean(true)));
                if self.streams.iter().any(|s| s.id == stream_id && s.state == StreamState::Playing) {
                    let (code, text) =
                        if paused { ("NetStream.Pause.Notify", "Paused live") } else { ("NetStream.Unpause.Notify", "Unpaused live") };
                    self.on_status(stream_id, "status", code, text)?;
                    events.push(ServerEvent::Paused { stream_id, paused });
                }
            }
            (ServerState::Connected, "releaseStream") => {
                // FMLE/OBS/ffmpeg send it before publishing; nginx-rtmp answers nothing
                // useful, ffmpeg ignores the answer; a plain _result keeps strict clients happy.
                self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Undefined])?;
            }
            (ServerState::Connected, "FCSubscribe") => {
                // librtmp (rtmpdump --live, GStreamer) subscribes before play.
                let info = Amf0Value::object([
                    ("code", Amf0Value::string("NetStream.Play.Start")),
                    ("description", Amf0Value::string("FCSubscribe")),
                ]);
                self.reply("onFCSubscribe", 0.0, Amf0Value::Null, vec![info])?;
            }
            (ServerState::Connected, "getStreamLength") => {
                // Live: no length (VLC and Flash players ask).
                self.reply("_result", txn, Amf0Value::Null, vec![Amf0Value::Number(0.0)])?;
            }
            // Nothing but `connect` may come first (spec 7.2.1.1); nginx-rtmp
            // ignores the rest and keeps the connection. Tally answers and closes.
            (ServerState::AwaitingConnect, name) => {
                let what = match name {
                    "play" => "play before connect",
                    "publish" => "publish before connect",
                    "createStream" => "createStream before connect",
                    _ => "a command before connect",
                };
                let info = Amf0Value::object([
                    ("level", Amf0Value::string("error")),
                    ("code", Amf0Value::string("NetConnection.Call.Failed")),
                    ("description", Amf0Value::string(what)),
                ]);
                self.reply("_error", txn, Amf0Value::Null, vec![info])?;
                return Err(SessionError::OutOfOrder(what));
            }
            (_, name) => tracing::debug!(command = name, "ignoring command"),
        }
        Ok(())
    }

    fn on_publish(&mut self, stream_id: u32, cmd: &Command, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        let key = cmd.args.first().and_then(Amf0Value::as_str).unwrap_or("");
        let publish_type = cmd.args.get(1).and_then(Amf0Value::as_str).unwrap_or("live").to_owned();
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == stream_id) else {
            return self.on_status(stream_id, "error", "NetStream.Publish.Failed", "publish on a stream never created");
        };
        if !matches!(stream.state, StreamState::Idle) {
            return self.on_status(stream_id, "error", "NetStream.Publish.BadName", "Already publishing");
        }
        if key.is_empty() {
            return self.on_status(stream_id, "error", "NetStream.Publish.BadName", "Empty stream name");
        }
        stream.state = StreamState::PublishPending;
        events.push(ServerEvent::PublishRequested {
            stream_id,
            app: self.app.clone(),
            key: StreamKey::new(key),
            publish_type,
        });
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, cmd: &Command, events: &mut Vec<ServerEvent>) -> Result<(), SessionError> {
        let name = cmd.args.first().and_then(Amf0Value::as_str).unwrap_or("").to_owned();
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == stream_id) else {
            return self.on_status(stream_id, "error", "NetStream.Play.Failed", "play on a stream never created");
        };
        if stream.state != StreamState::Idle {
            return self.on_status(stream_id, "error", "NetStream.Play.Failed", "Stream busy");
        }
        if name.is_empty() {
            return self.on_status(stream_id, "error", "NetStream.Play.StreamNotFound", "Empty stream name");
        }
        stream.state = StreamState::PlayPending;
        events.push(ServerEvent::PlayRequested { stream_id, app: self.app.clone(), name });
        Ok(())
    }

    fn stop_playing(&mut self, target: Option<u32>, events: &mut Vec<ServerEvent>) {
        for s in &mut self.streams {
            if target.is_none_or(|t| t == s.id) && matches!(s.state, StreamState::Playing | StreamState::PlayPending) {
                s.state = StreamState::Idle;
                events.push(ServerEvent::PlayStopped { stream_id: s.id });
            }
        }
    }

    /// Ends publishing on the stream the command names or travels on.
    fn unpublish(&mut self, stream_id: u32, cmd: &Command, events: &mut Vec<ServerEvent>) {
        // deleteStream names the stream in its argument and travels on stream 0;
        // FCUnpublish names the key and travels on stream 0 too (ffmpeg), so
        // fall back to the only publishing stream.
        let named = cmd.args.first().and_then(Amf0Value::as_number).map(|n| n as u32);
        let target = named.or((stream_id != 0).then_some(stream_id));
        for s in &mut self.streams {
            let matches = target.is_none_or(|t| t == s.id);
            if matches && matches!(s.state, StreamState::Publishing) {
                s.state = StreamState::Idle;
                events.push(ServerEvent::Unpublished { stream_id: s.id });
            }
        }
    }
}

/// Commands whose first argument is the stream name a publisher sent: on an
/// ingest that name is the stream key (FMLE, OBS and ffmpeg send it with
/// `releaseStream`, `FCPublish`, `publish` and `FCUnpublish`).
const KEY_BEARING_COMMANDS: [&str; 4] = ["publish", "releaseStream", "FCPublish", "FCUnpublish"];

/// A received command as it may be logged: a publisher's stream name is
/// replaced with [`REDACTED`] (it is a key, or carries this server's publish
/// key), and so is every query string in any other text (`?key=`,
/// `?token=`, as some clients put credentials in `tcUrl` or a play name).
fn loggable(cmd: &Command) -> String {
    fn scrub(v: &Amf0Value) -> Amf0Value {
        match v {
            Amf0Value::String(s) => match s.split_once('?') {
                Some((head, _)) => Amf0Value::String(format!("{head}?{REDACTED}")),
                None => v.clone(),
            },
            Amf0Value::Object(pairs) => Amf0Value::Object(pairs.iter().map(|(k, v)| (k.clone(), scrub(v))).collect()),
            Amf0Value::EcmaArray(pairs) => Amf0Value::EcmaArray(pairs.iter().map(|(k, v)| (k.clone(), scrub(v))).collect()),
            Amf0Value::StrictArray(items) => Amf0Value::StrictArray(items.iter().map(scrub).collect()),
            other => other.clone(),
        }
    }
    let key_bearing = KEY_BEARING_COMMANDS.contains(&cmd.name.as_str());
    let args = cmd
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| if key_bearing && i == 0 && a.as_str().is_some() { Amf0Value::string(REDACTED) } else { scrub(a) })
        .collect();
    format!("{:?}", Command { name: cmd.name.clone(), transaction_id: cmd.transaction_id, object: scrub(&cmd.object), args })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::chunk::{ChunkDecoder, ChunkEncoder};
    use crate::rtmp::handshake::HANDSHAKE_SIZE;
    use bytes::BytesMut;

    fn connected() -> (ServerSession, ChunkEncoder) {
        let mut s = ServerSession::new(ServerConfig::default(), 1, 0);
        let mut hello = vec![3u8];
        hello.extend_from_slice(&[0u8; 2 * HANDSHAKE_SIZE]);
        assert_eq!(s.handle_input(&hello).unwrap(), vec![ServerEvent::HandshakeDone]);
        assert_eq!(s.take_outbound().len(), 1 + 2 * HANDSHAKE_SIZE);
        (s, ChunkEncoder::new())
    }

    fn send(s: &mut ServerSession, enc: &mut ChunkEncoder, stream_id: u32, msg: RtmpMessage) -> Vec<ServerEvent> {
        let mut wire = BytesMut::new();
        enc.encode(&msg.into_raw(3, 0, stream_id), &mut wire).unwrap();
        s.handle_input(&wire).unwrap()
    }

    fn replies(s: &mut ServerSession) -> Vec<RtmpMessage> {
        let mut dec = ChunkDecoder::new();
        dec.push(&s.take_outbound());
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            let m = RtmpMessage::from_raw(&m).unwrap();
            if let RtmpMessage::SetChunkSize(n) = m {
                dec.set_chunk_size(n).unwrap();
            }
            out.push(m);
        }
        out
    }

    /// `msg` on chunk stream `csid`, fed as is: the session's answer.
    fn feed(s: &mut ServerSession, csid: u32, stream_id: u32, msg: RtmpMessage) -> Result<Vec<ServerEvent>, SessionError> {
        let mut wire = BytesMut::new();
        ChunkEncoder::new().encode(&msg.into_raw(csid, 0, stream_id), &mut wire).unwrap();
        s.handle_input(&wire)
    }

    /// (name, code, description) of each command among the replies.
    fn said(s: &mut ServerSession) -> Vec<(String, String, String)> {
        replies(s)
            .into_iter()
            .filter_map(|m| match m {
                RtmpMessage::Command(c) => Some((c.name.clone(), c.info_str("code").to_owned(), c.info_str("description").to_owned())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn media_before_publish_and_play_before_connect_are_answered_and_end_the_session() {
        let cmd = |name: &str, args: Vec<Amf0Value>| RtmpMessage::Command(Command::new(name, 2.0, Amf0Value::Null, args));

        let (mut s, _) = connected();
        let r = feed(&mut s, 3, 1, cmd("play", vec![Amf0Value::string("show")]));
        assert_eq!(r, Err(SessionError::OutOfOrder("play before connect")));
        assert_eq!(said(&mut s), vec![("_error".into(), "NetConnection.Call.Failed".into(), "play before connect".into())]);
        assert_eq!(s.handle_input(b"more"), Err(SessionError::Closed));

        let (mut s, _) = connected();
        let r = feed(&mut s, 3, 1, cmd("publish", vec![Amf0Value::string("key")]));
        assert_eq!(r, Err(SessionError::OutOfOrder("publish before connect")));

        // Connected, a stream created, video sent on it without publish.
        let (mut s, mut enc) = connected();
        let connect = Command::new("connect", 1.0, Amf0Value::object([("app", Amf0Value::string("live"))]), vec![]);
        send(&mut s, &mut enc, 0, RtmpMessage::Command(connect));
        send(&mut s, &mut enc, 0, cmd("createStream", vec![]));
        said(&mut s);
        let r = feed(&mut s, 6, 1, RtmpMessage::Video(Bytes::from_static(&[0x17, 0, 0, 0, 0])));
        assert_eq!(r, Err(SessionError::OutOfOrder("media before publish")));
        assert_eq!(said(&mut s), vec![("onStatus".into(), "NetStream.Publish.Failed".into(), "media before publish".into())]);

        let (mut s, _) = connected();
        let r = feed(&mut s, 5, 0, RtmpMessage::Data(Bytes::from_static(&[0x02, 0, 1, b'x'])));
        assert_eq!(r, Err(SessionError::OutOfOrder("media before connect")));
    }

    #[test]
    fn logged_commands_never_show_a_key() {
        let publish = Command::new("publish", 5.0, Amf0Value::Null, vec![Amf0Value::string("cam?key=s3cret"), Amf0Value::string("live")]);
        let text = loggable(&publish);
        assert!(text.contains("\"publish\"") && text.contains(REDACTED) && text.contains("\"live\""), "{text}");
        assert!(!text.contains("s3cret") && !text.contains("cam"), "{text}");
        for name in KEY_BEARING_COMMANDS {
            let text = loggable(&Command::new(name, 3.0, Amf0Value::Null, vec![Amf0Value::string("sk_live_abcdef")]));
            assert!(!text.contains("sk_live") && text.contains(REDACTED), "{text}");
        }
        let connect = Command::new(
            "connect",
            1.0,
            Amf0Value::object([("app", Amf0Value::string("live?auth=tok3n")), ("tcUrl", Amf0Value::string("rtmp://h/live?auth=tok3n"))]),
            vec![],
        );
        let text = loggable(&connect);
        assert!(text.contains("rtmp://h/live?") && !text.contains("tok3n"), "{text}");
        // A player's stream name is public; its query is not.
        let play = loggable(&Command::new("play", 4.0, Amf0Value::Null, vec![Amf0Value::string("cam?token=t0k")]));
        assert!(play.contains("cam?") && !play.contains("t0k"), "{play}");
    }

    #[test]
    fn connect_reply_mirrors_nginx() {
        let (mut s, mut enc) = connected();
        let obj =
            Amf0Value::object([("app", Amf0Value::string("live")), ("tcUrl", Amf0Value::string("rtmp://h/live"))]);
        let ev = send(&mut s, &mut enc, 0, RtmpMessage::Command(Command::new("connect", 1.0, obj, vec![])));
        assert_eq!(ev, vec![ServerEvent::Connected { app: "live".into(), tc_url: "rtmp://h/live".into() }]);
        let r = replies(&mut s);
        assert_eq!(r[0], RtmpMessage::WindowAckSize(5_000_000));
        assert_eq!(r[1], RtmpMessage::SetPeerBandwidth { size: 5_000_000, limit: PeerBandwidthLimit::Dynamic });
        assert_eq!(r[2], RtmpMessage::SetChunkSize(4096));
        let RtmpMessage::Command(result) = &r[3] else { panic!() };
        assert_eq!((result.name.as_str(), result.transaction_id), ("_result", 1.0));
        assert_eq!(result.info_str("code"), "NetConnection.Connect.Success");
        assert_eq!(result.object.get("fmsVer").and_then(Amf0Value::as_str), Some(FMS_VERSION));
    }

    #[test]
    fn stream_limits_and_bad_publishes() {
        let (mut s, mut enc) = connected();
        send(&mut s, &mut enc, 0, RtmpMessage::Command(Command::new("connect", 1.0, Amf0Value::Null, vec![])));
        s.take_outbound();
        // publish on a stream never created -> onStatus error, no event
        let publish = |key: &str| {
            RtmpMessage::Command(Command::new("publish", 5.0, Amf0Value::Null, vec![Amf0Value::string(key)]))
        };
        assert!(send(&mut s, &mut enc, 7, publish("k")).is_empty());
        let r = replies(&mut s);
        let RtmpMessage::Command(st) = &r[0] else { panic!() };
        assert_eq!((st.info_str("level"), st.info_str("code")), ("error", "NetStream.Publish.Failed"));
        assert_eq!(s.accept_publish(7), Err(SessionError::UnknownStream(7)));

        for _ in 0..MAX_STREAMS_PER_CONNECTION {
            send(&mut s, &mut enc, 0, RtmpMessage::Command(Command::new("createStream", 2.0, Amf0Value::Null, vec![])));
        }
        let mut wire = BytesMut::new();
        let cs = RtmpMessage::Command(Command::new("createStream", 2.0, Amf0Value::Null, vec![]));
        enc.encode(&cs.into_raw(3, 0, 0), &mut wire).unwrap();
        assert_eq!(s.handle_input(&wire), Err(SessionError::TooManyStreams(MAX_STREAMS_PER_CONNECTION)));
    }
}
