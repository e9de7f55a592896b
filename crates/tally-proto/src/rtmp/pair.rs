//! Client and server driven against each other in memory (quinn-proto's
//! `Pair` harness): bytes are shuttled in random splits, no sockets.

use super::*;
use crate::amf0::{self, Amf0Value};
use bytes::Bytes;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const URL: &str = "rtmp://127.0.0.1/live/live_sekrit?pwd=1";

struct Pair {
    client: ClientSession,
    server: ServerSession,
    splits: fastrand::Rng,
    reject: Option<(&'static str, String)>,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
    /// Everything the client wrote, for determinism checks.
    client_wire: Vec<u8>,
    /// The time both sides are told: injected, moved on by the tests.
    now: Instant,
    /// Leave publish requests unanswered (a server that never replies).
    hold_publish: bool,
}

impl Pair {
    fn new(server_config: ServerConfig, seed: u64) -> Self {
        Pair::with_url(server_config, seed, URL)
    }

    fn with_url(server_config: ServerConfig, seed: u64, url: &str) -> Self {
        let config = ClientConfig::from_url(&RtmpUrl::parse(url).unwrap());
        let now = Instant::now();
        let mut p = Pair {
            client: ClientSession::new(config, seed, 1000),
            server: ServerSession::new(server_config, seed + 1, 2000),
            splits: fastrand::Rng::with_seed(seed + 2),
            reject: None,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_wire: Vec::new(),
            now,
            hold_publish: false,
        };
        p.client.arm_timers(now);
        p.server.arm_timers(now);
        p
    }

    fn pieces(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let max = if self.splits.bool() { 7 } else { 1500 };
            let n = self.splits.usize(1..=max).min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }

    fn deliver_to_server(&mut self, bytes: &[u8]) {
        self.client_wire.extend_from_slice(bytes);
        for piece in self.pieces(bytes) {
            for ev in self.server.handle_input_at(self.now, &piece).unwrap() {
                if let ServerEvent::PublishRequested { stream_id, .. } = &ev
                    && !self.hold_publish
                {
                    match &self.reject {
                        Some((code, description)) => self.server.reject_publish(*stream_id, code, description).unwrap(),
                        None => self.server.accept_publish(*stream_id).unwrap(),
                    }
                }
                self.server_events.push(ev);
            }
        }
    }

    fn deliver_to_client(&mut self, bytes: &[u8]) {
        for piece in self.pieces(bytes) {
            let events = self.client.handle_input_at(self.now, &piece).unwrap();
            self.client_events.extend(events);
        }
    }

    /// Shuttles bytes both ways until neither side has anything to say.
    fn drive(&mut self) {
        for _ in 0..100 {
            let c = self.client.take_outbound();
            let s = self.server.take_outbound();
            if c.is_empty() && s.is_empty() {
                return;
            }
            self.deliver_to_server(&c);
            self.deliver_to_client(&s);
        }
        panic!("pair did not settle");
    }

    fn publish(seed: u64, server_config: ServerConfig) -> Self {
        let mut p = Pair::new(server_config, seed);
        p.drive();
        assert_eq!(p.client.state(), ClientState::Live, "{:?}", p.client_events);
        p
    }

    fn media(&self) -> Vec<(MediaKind, u32, Bytes)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::MediaReceived { kind, timestamp, payload, .. } => {
                    Some((*kind, *timestamp, payload.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// A one-letter key occurs inside "NetStream.Publish.Start": redaction of
/// what is reported must not change what the client decides on.
#[test]
fn a_short_key_still_publishes() {
    let mut p = Pair::with_url(ServerConfig::default(), 5, "rtmp://127.0.0.1/live/t");
    p.drive();
    assert_eq!(p.client.state(), ClientState::Live, "{:?}", p.client_events);
    assert!(p.client_events.iter().any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Publish.Start")));
}

fn small_windows() -> ServerConfig {
    ServerConfig { window_ack_size: 1000, peer_bandwidth: 3000, ..ServerConfig::default() }
}

#[test]
fn publish_with_media_chunk_size_changes_acks_ping_and_unpublish() {
    let mut p = Pair::publish(11, small_windows());
    for want in [
        ClientEvent::HandshakeDone,
        ClientEvent::Connected,
        ClientEvent::PeerWindowAck(1000),
        ClientEvent::PeerChunkSize(4096),
        ClientEvent::PublishStarted { stream_id: 1 },
    ] {
        assert!(p.client_events.contains(&want), "{want:?} missing from {:?}", p.client_events);
    }
    let requested = p.server_events.iter().find_map(|e| match e {
        ServerEvent::PublishRequested { stream_id, app, key, publish_type } => {
            Some((*stream_id, app.clone(), key.expose().to_owned(), publish_type.clone()))
        }
        _ => None,
    });
    assert_eq!(requested, Some((1, "live".into(), "live_sekrit?pwd=1".into(), "live".into())));
    assert!(p.server_events.contains(&ServerEvent::PeerChunkSize(4096)));
    // The client crossed the server's 1000-byte window (the handshake alone does).
    assert!(p.server_events.iter().any(|e| matches!(e, ServerEvent::PeerAcknowledged(n) if *n >= 1000)));

    // Metadata as the publisher sends it: @setDataFrame onMetaData {...}.
    let meta =
        [Amf0Value::string("onMetaData"), Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(1280.0))])];
    let mut body = amf0::encode_all(&[Amf0Value::string("@setDataFrame")]);
    body.extend_from_slice(&amf0::encode_all(&meta));
    p.client.send_media(MediaKind::Data, 0, body.clone()).unwrap();
    p.drive();
    assert!(p.server_events.contains(&ServerEvent::Metadata {
        stream_id: 1,
        timestamp: 0,
        payload: amf0::encode_all(&meta).freeze()
    }));

    let mut sent = Vec::new();
    for i in 0..40u32 {
        if i == 15 {
            p.client.set_chunk_size(300).unwrap();
            p.server.set_chunk_size(1000).unwrap();
        }
        if i == 25 {
            p.server.ping(4242).unwrap();
        }
        let audio = Bytes::from(vec![0xAF; 200 + i as usize]);
        let video = Bytes::from(vec![i as u8; 5000 + 37 * i as usize]);
        p.client.send_media(MediaKind::Audio, i * 23, audio.clone()).unwrap();
        p.client.send_media(MediaKind::Video, i * 33, video.clone()).unwrap();
        sent.push((MediaKind::Audio, i * 23, audio));
        sent.push((MediaKind::Video, i * 33, video));
        p.drive();
    }
    assert_eq!(p.media(), sent);
    assert!(p.server_events.contains(&ServerEvent::PeerChunkSize(300)));
    assert!(p.client_events.contains(&ClientEvent::PeerChunkSize(1000)));
    assert!(p.server_events.contains(&ServerEvent::PingResponse(4242)));

    // The client answered SetPeerBandwidth(3000) with WindowAckSize(3000), so
    // the server acknowledges every 3000 bytes.
    let acks: Vec<u32> = p
        .client_events
        .iter()
        .filter_map(|e| if let ClientEvent::PeerAcknowledged(n) = e { Some(*n) } else { None })
        .collect();
    assert!(acks.len() > 50, "{} acks", acks.len());
    assert!(acks.windows(2).all(|w| w[1] - w[0] >= 3000));
    assert_eq!(p.client.peer_acknowledged(), u64::from(*acks.last().unwrap()));
    assert!(p.client.peer_acknowledged() <= p.client.bytes_sent());
    assert_eq!(p.client.bytes_sent(), p.server.bytes_received());
    assert_eq!(p.server.bytes_sent(), p.client.bytes_received());

    p.client.unpublish();
    // Debug never shows the key, even while `FCUnpublish(key)` waits in the
    // outbound buffer.
    assert!(!format!("{:?}", p.client).contains("sekrit"));
    p.drive();
    assert_eq!(p.client.state(), ClientState::Unpublished);
    assert!(p.server_events.contains(&ServerEvent::Unpublished { stream_id: 1 }));
    assert_eq!(p.client.send_media(MediaKind::Audio, 0, Bytes::from_static(b"late")), Err(SessionError::NotPublishing));

    let all = format!("{:?}{:?}{:?}{:?}", p.client_events, p.server_events, p.client, p.server);
    assert!(!all.contains("sekrit"), "the key leaked into Debug output");
}

#[test]
fn extended_timestamps_across_0xffffff() {
    let mut p = Pair::publish(5, ServerConfig::default());
    let mut sent = Vec::new();
    for i in 0..30u32 {
        let ts = 0xFF_FF00 + i * 23;
        let audio = Bytes::from(vec![i as u8; 100]);
        p.client.send_media(MediaKind::Audio, ts, audio.clone()).unwrap();
        sent.push((MediaKind::Audio, ts, audio));
        if ts > 0x0100_0000 && !sent.iter().any(|(k, ..)| *k == MediaKind::Video) {
            // First video message: a type-0 header with an extended timestamp,
            // larger than the 4096 chunk size, so its type-3 continuations
            // must repeat the extended timestamp.
            let video = Bytes::from(vec![0x17; 10_000]);
            p.client.send_media(MediaKind::Video, ts + 1, video.clone()).unwrap();
            let wire = p.client.take_outbound();
            let mut cont = vec![0xC0 | CSID_VIDEO as u8];
            cont.extend_from_slice(&(ts + 1).to_be_bytes());
            assert_eq!(wire.windows(5).filter(|w| *w == &cont[..]).count(), 2, "two continuations carry it");
            p.deliver_to_server(&wire);
            sent.push((MediaKind::Video, ts + 1, video));
        }
        p.drive();
    }
    for i in 1..20u32 {
        let ts = 0x0100_0300 + i * 33;
        let video = Bytes::from(vec![i as u8; 9000]);
        p.client.send_media(MediaKind::Video, ts, video.clone()).unwrap();
        sent.push((MediaKind::Video, ts, video));
        p.drive();
    }
    let got = p.media();
    assert_eq!(got, sent);
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let ts: Vec<u32> = got.iter().filter(|(k, ..)| *k == kind).map(|(_, t, _)| *t).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{kind:?} not monotonic: {ts:x?}");
        assert!(ts.last().unwrap() > &0xFF_FFFF);
    }
}

#[test]
fn rejected_publish_is_final_and_redacted() {
    let mut p = Pair::new(ServerConfig::default(), 3);
    p.reject = Some(("NetStream.Publish.BadName", "Stream live_sekrit?pwd=1 is already publishing".into()));
    p.drive();
    assert_eq!(p.client.state(), ClientState::Rejected);
    let rejected = ClientEvent::Rejected {
        code: "NetStream.Publish.BadName".into(),
        description: "Stream <redacted> is already publishing".into(),
    };
    assert_eq!(p.client_events.last(), Some(&rejected));
    assert!(p.client_events.iter().any(|e| matches!(e, ClientEvent::Status { level, .. } if level == "error")));
    assert!(!p.client_events.iter().any(|e| matches!(e, ClientEvent::PublishStarted { .. })));
    assert_eq!(p.client.send_media(MediaKind::Video, 0, Bytes::from_static(b"x")), Err(SessionError::NotPublishing));
}

/// What the lead's golden fixture test relies on: the client's bytes are a
/// function of (config, seed, epoch, inputs) alone.
#[test]
fn client_bytes_are_deterministic() {
    let run = |seed: u64| {
        let mut p = Pair::publish(seed, small_windows());
        for i in 0..5u32 {
            p.client.send_media(MediaKind::Video, i * 33, vec![i as u8; 6000]).unwrap();
            p.drive();
        }
        p.client.unpublish();
        p.drive();
        p.client_wire
    };
    let a = run(21);
    assert_eq!(a, run(21));
    assert_ne!(a, run(22));
    // C0, then C1 = time (epoch 1000), four zero bytes, random.
    assert_eq!(&a[..9], &[3, 0, 0, 0x03, 0xE8, 0, 0, 0, 0]);
    // After C2: SetChunkSize(4096) on csid 2 opens the chunk stream.
    let after_c2 = 1 + 2 * handshake::HANDSHAKE_SIZE;
    assert_eq!(&a[after_c2..after_c2 + 16], &[2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]);
}

/// A server and a client session, each past its handshake, fed nothing else.
fn sessions_after_handshake() -> (ServerSession, ClientSession) {
    let mut server = ServerSession::new(ServerConfig::default(), 1, 0);
    let mut hello = vec![3u8];
    hello.extend_from_slice(&[0u8; 2 * handshake::HANDSHAKE_SIZE]);
    server.handle_input(&hello).unwrap();
    let config = ClientConfig::from_url(&RtmpUrl::parse(URL).unwrap());
    let mut client = ClientSession::new(config, 1, 0);
    client.handle_input(&hello).unwrap();
    (server, client)
}

/// A well-formed PingRequest on the control chunk stream: what a healthy
/// session would take.
fn a_valid_ping() -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    let mut wire = bytes::BytesMut::new();
    let ping = RtmpMessage::UserControl(UserControlEvent::PingRequest(7)).into_raw(2, 0, 0);
    enc.encode(&ping, &mut wire).unwrap();
    wire.to_vec()
}

/// What became of a session fed `input` twice: `Err` if it rejected the
/// input (and then it must refuse everything after, a valid message
/// included), else `Ok(bytes it holds)`.
fn feed_twice<E: std::fmt::Debug>(mut handle: impl FnMut(&[u8]) -> Result<E, SessionError>, input: &[u8]) -> Result<(), TestCaseError> {
    if handle(input).is_ok() && handle(input).is_ok() {
        return Ok(());
    }
    prop_assert_eq!(handle(&a_valid_ping()).err(), Some(SessionError::Closed), "a failed session took more input");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever follows the handshake, a session either rejects it — and
    /// from then on takes nothing, so its driver closes the connection — or
    /// holds no more of it than it was given (the rest of a message it
    /// waits for, within its limits).
    #[test]
    fn sessions_reject_garbage_after_the_handshake_or_hold_no_more_than_given(garbage in prop::collection::vec(any::<u8>(), 0..2000)) {
        let (mut server, mut client) = sessions_after_handshake();
        feed_twice(|b| server.handle_input(b), &garbage)?;
        prop_assert!(server.buffered_input() <= 2 * garbage.len(), "server holds {} of {} bytes", server.buffered_input(), 2 * garbage.len());
        feed_twice(|b| client.handle_input(b), &garbage)?;
        prop_assert!(client.buffered_input() <= 2 * garbage.len(), "client holds {} of {} bytes", client.buffered_input(), 2 * garbage.len());
    }

    /// A first chunk that cannot be right — a type-3 header (no header of
    /// its own) on a chunk stream nothing has opened — is an error at once,
    /// whatever follows, and the session stays closed.
    #[test]
    fn an_impossible_first_chunk_is_an_error_and_closes_the_session(first in 0xC0u8..=0xFF, rest in prop::collection::vec(any::<u8>(), 0..500)) {
        let (mut server, mut client) = sessions_after_handshake();
        let mut garbage = vec![first];
        garbage.extend_from_slice(&rest);
        prop_assert!(server.handle_input(&garbage).is_err());
        prop_assert_eq!(server.handle_input(&a_valid_ping()).err(), Some(SessionError::Closed));
        prop_assert!(client.handle_input(&garbage).is_err());
        prop_assert_eq!(client.handle_input(&a_valid_ping()).err(), Some(SessionError::Closed));
    }

    /// A message header declaring more than the limit is an error as soon
    /// as the header has arrived: nothing is reserved for it.
    #[test]
    fn an_over_long_message_is_an_error_from_its_header(len in (chunk::MAX_MESSAGE_LEN as u32 + 1)..=0xFF_FFFF, rest in prop::collection::vec(any::<u8>(), 0..500)) {
        let (mut server, mut client) = sessions_after_handshake();
        let l = len.to_be_bytes();
        // fmt 0 on csid 3: timestamp 0, length, type 9 (video), stream 1.
        let mut garbage = vec![0x03, 0, 0, 0, l[1], l[2], l[3], 0x09, 1, 0, 0, 0];
        garbage.extend_from_slice(&rest);
        prop_assert!(server.handle_input(&garbage).is_err());
        prop_assert!(client.handle_input(&garbage).is_err());
        prop_assert!(server.buffered_input() <= rest.len());
        prop_assert_eq!(server.handle_input(&a_valid_ping()).err(), Some(SessionError::Closed));
    }
}
/// A player: `play` is accepted, media the driver writes as shared
/// standalone chunks (any chunk size, extended timestamps included)
/// reaches the client intact, and unpublish/publish notifications arrive.
#[test]
fn play_receives_shared_media_and_notifications() {
    let config = ClientConfig::play_from_url(&RtmpUrl::parse("rtmp://127.0.0.1/live/cam").unwrap());
    let mut client = ClientSession::new(config, 3, 0);
    let mut server = ServerSession::new(ServerConfig::default(), 4, 0);
    let mut client_events = Vec::new();
    let mut play_stream = None;
    for _ in 0..50 {
        let c = client.take_outbound();
        for ev in server.handle_input(&c).unwrap() {
            if let ServerEvent::PlayRequested { stream_id, app, name } = ev {
                assert_eq!((app.as_str(), name.as_str()), ("live", "cam"));
                server.accept_play(stream_id).unwrap();
                play_stream = Some(stream_id);
            }
        }
        let s = server.take_outbound();
        if c.is_empty() && s.is_empty() {
            break;
        }
        client_events.extend(client.handle_input(&s).unwrap());
    }
    assert_eq!(play_stream, Some(PLAYER_STREAM_ID));
    assert_eq!(server.playing_stream(), Some(PLAYER_STREAM_ID));
    assert!(client_events.iter().any(|e| matches!(e, ClientEvent::PlayStarted { stream_id: 1 })), "{client_events:?}");
    assert_eq!(client.state(), ClientState::Live);

    let chunk = server.out_chunk_size();
    let big = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let sent = [
        (MediaKind::Video, 0u32, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3])),
        (MediaKind::Audio, 21, Bytes::from_static(&[0xAF, 1, 9, 9])),
        (MediaKind::Video, 0xFF_FFF0, big.clone()),
        (MediaKind::Video, 0x100_0010, big),
    ];
    let mut wire = bytes::BytesMut::new();
    for (kind, ts, payload) in &sent {
        let csid = match kind {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        };
        let raw = RawMessage { csid, timestamp: *ts, type_id: kind.type_id(), stream_id: PLAYER_STREAM_ID, payload: payload.clone() };
        encode_standalone(&raw, chunk, &mut wire).unwrap();
    }
    server.notify_unpublish(PLAYER_STREAM_ID).unwrap();
    let mut all = wire.to_vec();
    all.extend_from_slice(&server.take_outbound());
    let mut events = Vec::new();
    for piece in all.chunks(333) {
        events.extend(client.handle_input(piece).unwrap());
    }
    let media: Vec<(MediaKind, u32, Bytes)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media { kind, timestamp, payload } => Some((*kind, *timestamp, payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(media, sent.to_vec());
    assert!(events.iter().any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify")));
}

// ---------------------------------------------------------------------------
// Session timers, with injected time
// ---------------------------------------------------------------------------

fn timed_out(r: Result<(), SessionError>) -> Option<(Timer, Duration)> {
    match r {
        Err(SessionError::TimedOut { timer, after }) => Some((timer, after)),
        _ => None,
    }
}

#[test]
fn a_handshake_that_never_completes_times_out_on_both_sides() {
    let mut p = Pair::new(ServerConfig::default(), 40);
    let t0 = p.now;
    // C0+C1 reach the server; its answer never reaches the client, and the client never sends C2.
    let c = p.client.take_outbound();
    p.deliver_to_server(&c);
    let _lost = p.server.take_outbound();
    let ten = Duration::from_secs(10);
    assert_eq!(p.client.poll_timeout(), Some(t0 + ten));
    assert_eq!(p.server.poll_timeout(), Some(t0 + ten));
    assert_eq!(p.client.handle_timeout(t0 + ten - Duration::from_millis(1)), Ok(()));
    assert_eq!(timed_out(p.client.handle_timeout(t0 + ten)), Some((Timer::Handshake, ten)));
    assert_eq!(timed_out(p.server.handle_timeout(t0 + ten)), Some((Timer::Handshake, ten)));
    // Final, like any error.
    assert_eq!(p.server.handle_input(b"late"), Err(SessionError::Closed));
    assert_eq!((p.client.poll_timeout(), p.server.poll_timeout()), (None, None));
}

#[test]
fn a_publish_nobody_answers_times_out_in_setup() {
    let mut p = Pair::new(ServerConfig::default(), 41);
    p.hold_publish = true;
    let t0 = p.now;
    p.now += Duration::from_secs(2);
    p.drive();
    assert_eq!(p.client.state(), ClientState::Publishing, "{:?}", p.client_events);
    let setup = Duration::from_secs(15);
    // The setup deadline counts from the start, not from the last reply.
    assert_eq!(p.client.poll_timeout(), Some(t0 + setup));
    assert_eq!(p.client.handle_timeout(t0 + setup - Duration::from_millis(1)), Ok(()));
    assert_eq!(timed_out(p.client.handle_timeout(t0 + setup)), Some((Timer::Setup, setup)));
    // The server side: a publish request pending and no media is an idle publisher.
    let idle = Duration::from_secs(30);
    assert_eq!(p.server.poll_timeout(), Some(t0 + Duration::from_secs(2) + idle));
}

#[test]
fn missing_acknowledgements_time_out_a_live_publisher_and_arriving_ones_do_not() {
    let mut p = Pair::publish(42, small_windows());
    assert_eq!(p.client.poll_timeout(), None, "nothing outstanding yet");
    let ack = Duration::from_secs(20);
    // Acknowledgements arrive while the client sends: no deadline moves past.
    for i in 0..10u32 {
        p.now += Duration::from_secs(5);
        p.client.send_media(MediaKind::Video, i * 33, vec![1u8; 4000]).unwrap();
        p.drive();
        assert_eq!(p.client.handle_timeout(p.now), Ok(()), "acknowledged, round {i}");
    }
    // Now the server's acknowledgements are lost.
    let last_ack = p.now;
    for i in 10..20u32 {
        p.now += Duration::from_secs(1);
        p.client.send_media(MediaKind::Video, i * 33, vec![1u8; 4000]).unwrap();
        let c = p.client.take_outbound();
        p.deliver_to_server(&c);
        let _lost = p.server.take_outbound();
    }
    assert_eq!(p.client.poll_timeout(), Some(last_ack + ack));
    assert_eq!(p.client.handle_timeout(last_ack + ack - Duration::from_millis(1)), Ok(()));
    assert_eq!(timed_out(p.client.handle_timeout(last_ack + ack)), Some((Timer::Acknowledgement, ack)));
}

#[test]
fn an_idle_peer_times_out_and_a_quiet_player_does_not() {
    // A publisher that stops sending media.
    let mut p = Pair::publish(43, ServerConfig::default());
    p.now += Duration::from_secs(3);
    p.client.send_media(MediaKind::Audio, 0, Bytes::from_static(&[0xAF, 1, 0])).unwrap();
    p.drive();
    let idle = Duration::from_secs(30);
    assert_eq!(p.server.poll_timeout(), Some(p.now + idle), "the last media restarts the publisher's deadline");
    assert_eq!(timed_out(p.server.handle_timeout(p.now + idle)), Some((Timer::NoMedia, idle)));

    // A connection that connected and then said nothing.
    let mut q = Pair::new(ServerConfig::default(), 44);
    q.hold_publish = true;
    let c = q.client.take_outbound();
    q.deliver_to_server(&c); // C0+C1 only: then silence until the deadline
    let s = q.server.take_outbound();
    q.deliver_to_client(&s);
    let c = q.client.take_outbound(); // C2 + connect...
    q.now += Duration::from_secs(1);
    q.deliver_to_server(&c);
    assert_ne!(q.server.state(), ServerState::Handshaking);
    // (Connected, and then nothing: the server's reply never reached the
    // client, so it never asked to publish.)
    assert_eq!(q.server.state(), ServerState::Connected);
    assert_eq!(timed_out(q.server.handle_timeout(q.now + idle)), Some((Timer::Idle, idle)));

    // A player may be silent: no deadline.
    let mut r = Pair::with_url(ServerConfig::default(), 45, "rtmp://127.0.0.1/live/show");
    r.client = ClientSession::new(ClientConfig::play_from_url(&RtmpUrl::parse("rtmp://127.0.0.1/live/show").unwrap()), 45, 0);
    r.client.arm_timers(r.now);
    for _ in 0..20 {
        let c = r.client.take_outbound();
        let s = r.server.take_outbound();
        if c.is_empty() && s.is_empty() {
            break;
        }
        r.deliver_to_server(&c);
        for ev in r.server_events.clone() {
            if let ServerEvent::PlayRequested { stream_id, .. } = ev {
                let _ = r.server.accept_play(stream_id);
            }
        }
        r.deliver_to_client(&s);
    }
    assert!(r.client_events.iter().any(|e| matches!(e, ClientEvent::PlayStarted { .. })), "{:?}", r.client_events);
    assert_eq!(r.server.poll_timeout(), None, "a player is not timed out for listening quietly");
    assert_eq!(r.client.poll_timeout(), None, "nor is the player for a quiet stream");
}

#[test]
fn a_client_that_shakes_hands_and_never_connects_times_out_and_other_bytes_do_not_extend_it() {
    use crate::rtmp::chunk::ChunkEncoder;
    use crate::rtmp::message::RtmpMessage;
    let mut p = Pair::new(ServerConfig::default(), 46);
    // The client's C0+C1, the server's answer, then only C2 (its connect is lost).
    let c = p.client.take_outbound();
    p.deliver_to_server(&c);
    let s = p.server.take_outbound();
    p.deliver_to_client(&s);
    let c2_and_connect = p.client.take_outbound();
    p.now += Duration::from_secs(1);
    let handshake_done = p.now;
    p.deliver_to_server(&c2_and_connect[..super::handshake::HANDSHAKE_SIZE]);
    assert_eq!(p.server.state(), ServerState::AwaitingConnect);
    let connect = Duration::from_secs(10);
    assert_eq!(p.server.poll_timeout(), Some(handshake_done + connect));
    // Acknowledgements (anything but connect) keep arriving: the deadline stays.
    let mut enc = ChunkEncoder::new();
    for i in 1..5u32 {
        p.now += Duration::from_secs(2);
        let mut wire = bytes::BytesMut::new();
        enc.encode(&RtmpMessage::Acknowledgement(i).into_raw(2, 0, 0), &mut wire).unwrap();
        let now = p.now;
        assert!(p.server.handle_input_at(now, &wire).is_ok());
        assert_eq!(p.server.poll_timeout(), Some(handshake_done + connect));
    }
    assert_eq!(p.server.handle_timeout(handshake_done + connect - Duration::from_millis(1)), Ok(()));
    assert_eq!(timed_out(p.server.handle_timeout(handshake_done + connect)), Some((Timer::Connect, connect)));
}
