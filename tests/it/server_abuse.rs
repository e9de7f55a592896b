//! Abusive clients against `tally serve`, all at once, beside a
//! well-behaved publisher and player: each offender is closed within its
//! deadline with one log line naming its address and the reason; the
//! server's memory stays under a stated bound; the good player's timeline
//! has no hole.
//!
//! The offenders: a handshake that never completes; a handshake and then
//! silence, or chatter that is not `connect` (10 s to connect, counted from
//! the handshake); `play` and `publish` before `connect`; media before
//! `publish`; SetChunkSize 0 and 2^31; chunk stream ids across the whole
//! 65 599 range; AMF0 nested 10 000 deep; AMF0 lengths of 4 GiB; a message
//! over the 8 MiB cap; a publisher that stops sending media (30 s, and its
//! players are told the stream ended); a thousand connections that send
//! nothing. A player that stops reading is the subject of
//! `server_behaviour::a_slow_player_is_skipped_then_dropped_and_slows_no_one`.
//!
//! Deadlines are the server's defaults (10 s handshake, 10 s connect, 30 s
//! publisher idle); the test allows each a margin for a loaded machine and
//! asserts no wall-clock figure tighter than that.

use crate::common;

use common::live::rss_kib;
use common::rtmp_client::*;
use common::*;
use std::time::{Duration, Instant};
use tally::amf0::Amf0Value;
use tally::rtmp::{ChunkEncoder, ClientConfig, ClientSession, Command, RawMessage, RtmpMessage, RtmpUrl};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What a deadline may overrun by on a loaded 2-core machine before the
/// test calls it missed.
const MARGIN: Duration = Duration::from_secs(8);
/// Offenders closed on their first bad message.
const AT_ONCE: Duration = Duration::ZERO;
const HANDSHAKE: Duration = Duration::from_secs(10);
const CONNECT: Duration = Duration::from_secs(10);
const PUBLISHER_IDLE: Duration = Duration::from_secs(30);
/// Connections that open and send nothing.
const IDLE_CONNECTIONS: usize = 1000;
/// The server's RSS through all of it (it idles at ~10 MiB with one
/// small stream; each connection costs its buffers).
const RSS_BOUND_KIB: u64 = 128 * 1024;
/// Largest step between consecutive timestamps the good player may see.
const MAX_GAP_MS: u32 = 100;

/// Chunks of one message, encoded by Tally's own encoder (fresh state:
/// a type 0 header first).
fn chunks(csid: u32, type_id: u8, stream_id: u32, payload: Vec<u8>) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    let msg = RawMessage { csid, timestamp: 0, type_id, stream_id, payload: payload.into() };
    ChunkEncoder::new().encode(&msg, &mut out).expect("encode");
    out.to_vec()
}

fn command(name: &str, txn: f64, object: Amf0Value, args: Vec<Amf0Value>, stream_id: u32) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    let raw = RtmpMessage::Command(Command::new(name, txn, object, args)).into_raw(3, 0, stream_id);
    ChunkEncoder::new().encode(&raw, &mut out).expect("encode");
    out.to_vec()
}

fn connect_command() -> Vec<u8> {
    let object = Amf0Value::object([("app", Amf0Value::string("live")), ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live"))]);
    command("connect", 1.0, object, vec![], 0)
}

/// An AMF0 command body: the name, the transaction id, then `rest`.
fn amf_command(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02];
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.push(0x00);
    body.extend_from_slice(&1f64.to_be_bytes());
    body.extend_from_slice(rest);
    body
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    chunks(2, 1, 0, size.to_be_bytes().to_vec())
}

/// One offender: how it misbehaves, how long the server has, and the
/// words its log line must contain.
struct Offence {
    what: &'static str,
    deadline: Duration,
    reason: &'static str,
}

/// Opens a connection and misbehaves; returns the connection for the
/// close to be awaited on.
async fn offend(port: u16, what: &str) -> TcpStream {
    match what {
        "handshake never completes" => {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            tcp.write_all(&[3, 0, 0, 0]).await.ok();
            tcp
        }
        "handshake, then silence" => raw_handshake(port).await,
        "handshake, then acknowledgements but no connect" => {
            let mut tcp = raw_handshake(port).await;
            // One every second: input, but never a connect.
            for i in 0..20u32 {
                if tcp.write_all(&chunks(2, 3, 0, i.to_be_bytes().to_vec())).await.is_err() {
                    break;
                }
                if tokio::time::timeout(Duration::from_secs(1), tcp.readable()).await.is_ok() {
                    break; // the server spoke (or closed): stop chattering
                }
            }
            tcp
        }
        "play before connect" => {
            let mut tcp = raw_handshake(port).await;
            tcp.write_all(&command("play", 4.0, Amf0Value::Null, vec![Amf0Value::string("steady")], 1)).await.ok();
            tcp
        }
        "publish before connect" => {
            let mut tcp = raw_handshake(port).await;
            tcp.write_all(&command("publish", 5.0, Amf0Value::Null, vec![Amf0Value::string("mine")], 1)).await.ok();
            tcp
        }
        "media before publish" => {
            let mut tcp = raw_handshake(port).await;
            tcp.write_all(&connect_command()).await.ok();
            tcp.write_all(&command("createStream", 2.0, Amf0Value::Null, vec![], 0)).await.ok();
            tcp.write_all(&chunks(6, 9, 1, vec![0x17, 0, 0, 0, 0, 1, 2, 3])).await.ok();
            tcp
        }
        "SetChunkSize 0" | "SetChunkSize 2^31" => {
            let mut tcp = raw_handshake(port).await;
            tcp.write_all(&set_chunk_size(if what.ends_with(" 0") { 0 } else { 1 << 31 })).await.ok();
            tcp
        }
        "chunk stream ids up to 65599" => {
            let mut tcp = raw_handshake(port).await;
            // Each id starts a 1000-byte message with one 128-byte chunk and never
            // finishes it; ids spread over the 3-byte basic header's whole range.
            for csid in (64u32..=65_599).step_by(257) {
                let b = ((csid - 64) as u16).to_le_bytes();
                let mut chunk = vec![0x01, b[0], b[1], 0, 0, 0, 0, 0x03, 0xE8, 0x09, 1, 0, 0, 0];
                chunk.extend_from_slice(&[0x17; 128]);
                if tcp.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            tcp
        }
        "AMF0 nested 10000 deep" => {
            let mut tcp = raw_handshake(port).await;
            let mut nest = Vec::new();
            for _ in 0..10_000 {
                nest.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
            }
            tcp.write_all(&chunks(3, 20, 0, amf_command("connect", &nest))).await.ok();
            tcp
        }
        "AMF0 long string of 4 GiB" => {
            let mut tcp = raw_handshake(port).await;
            let mut rest = vec![0x0C];
            rest.extend_from_slice(&u32::MAX.to_be_bytes());
            rest.extend_from_slice(b"only this much");
            tcp.write_all(&chunks(3, 20, 0, amf_command("connect", &rest))).await.ok();
            tcp
        }
        "AMF0 array of 4 G elements" => {
            let mut tcp = raw_handshake(port).await;
            let mut rest = vec![0x0A];
            rest.extend_from_slice(&u32::MAX.to_be_bytes());
            rest.extend_from_slice(&[0x05; 16]);
            tcp.write_all(&chunks(3, 20, 0, amf_command("connect", &rest))).await.ok();
            tcp
        }
        "a 16 MiB message" => {
            let mut tcp = raw_handshake(port).await;
            tcp.write_all(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x14, 0, 0, 0, 0]).await.ok();
            tcp
        }
        "a publisher that sends no media" => {
            let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/quiet")).expect("url");
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            let mut s = ClientSession::new(ClientConfig::from_url(&url), 9, 0);
            tally::net::client_setup::drive_until(&mut s, &mut tcp, tally::net::client_setup::publish_started)
                .await
                .expect("the quiet publisher starts publishing");
            tcp
        }
        other => panic!("unknown offence {other}"),
    }
}

const OFFENCES: &[Offence] = &[
    Offence { what: "handshake never completes", deadline: HANDSHAKE, reason: "handshake not completed within 10s" },
    Offence { what: "handshake, then silence", deadline: CONNECT, reason: "no connect within 10s of the handshake" },
    Offence {
        what: "handshake, then acknowledgements but no connect",
        deadline: CONNECT,
        reason: "no connect within 10s of the handshake",
    },
    Offence { what: "play before connect", deadline: AT_ONCE, reason: "play before connect" },
    Offence { what: "publish before connect", deadline: AT_ONCE, reason: "publish before connect" },
    Offence { what: "media before publish", deadline: AT_ONCE, reason: "media before publish" },
    Offence { what: "SetChunkSize 0", deadline: AT_ONCE, reason: "chunk size 0" },
    Offence { what: "SetChunkSize 2^31", deadline: AT_ONCE, reason: "chunk size 2147483648" },
    Offence { what: "chunk stream ids up to 65599", deadline: AT_ONCE, reason: "more than 64 chunk streams" },
    Offence { what: "AMF0 nested 10000 deep", deadline: AT_ONCE, reason: "AMF0: nesting deeper than 32" },
    Offence { what: "AMF0 long string of 4 GiB", deadline: AT_ONCE, reason: "message: AMF0" },
    Offence { what: "AMF0 array of 4 G elements", deadline: AT_ONCE, reason: "AMF0: element count" },
    Offence { what: "a 16 MiB message", deadline: AT_ONCE, reason: "exceeds the limit" },
    Offence { what: "a publisher that sends no media", deadline: PUBLISHER_IDLE, reason: "publisher sent no media for 30s" },
];

/// The log line about `port`'s connection ending.
fn ending_line(log: &str, port: u16) -> Option<String> {
    let peer = format!("peer=127.0.0.1:{port}");
    let names_peer = |l: &str| {
        l.match_indices(&peer).any(|(i, _)| !l[i + peer.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let lines: Vec<&str> = log.lines().filter(|l| names_peer(l) && l.contains("connection ended")).collect();
    assert!(lines.len() <= 1, "more than one line about {peer}: {lines:#?}");
    lines.first().map(|l| l.to_string())
}

/// Largest step between consecutive timestamps of one kind of media.
fn largest_step(rec: &Recording, kind: tally::rtmp::MediaKind) -> u32 {
    let ts: Vec<u32> = rec.media().iter().filter(|s| s.kind == kind && !s.config).map(|s| s.ts).collect();
    ts.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(u32::MAX)
}

#[test]
fn every_abusive_client_is_closed_in_time_with_its_reason_and_the_good_ones_see_no_gap() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("steady");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "90"]);
    server.wait_live("steady", &publisher, Duration::from_secs(20));
    let port = server.rtmp_port;

    // The server's RSS, sampled every 100 ms for as long as the offenders run.
    let pid = server.proc().pid();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let rss = std::thread::spawn({
        let sampling = sampling.clone();
        move || {
            let mut max = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(100));
            }
            max
        }
    });

    let rt = runtime();
    let (good, quiet_player, outcomes, idle_closed) = rt.block_on(async {
        let good = tokio::spawn({
            let url = url.clone();
            async move { record_until(&url, PUBLISHER_IDLE + MARGIN + Duration::from_secs(5), |_| false).await }
        });
        // A player of the quiet publisher's stream, told when it ends.
        let quiet_url = server.url("quiet");
        let quiet_player = tokio::spawn(async move {
            record_until(&quiet_url, PUBLISHER_IDLE + MARGIN + Duration::from_secs(10), |r| r.count_status("UnpublishNotify") >= 1).await
        });
        let idle: Vec<TcpStream> = {
            let mut v = Vec::with_capacity(IDLE_CONNECTIONS);
            for _ in 0..IDLE_CONNECTIONS {
                v.push(TcpStream::connect(("127.0.0.1", port)).await.expect("idle connection"));
            }
            v
        };
        let idle_closed = tokio::spawn(async move {
            let started = Instant::now();
            let mut closed = 0;
            for mut tcp in idle {
                let left = (HANDSHAKE + MARGIN).saturating_sub(started.elapsed());
                closed += usize::from(closed_within(&mut tcp, left).await);
            }
            closed
        });
        let mut offenders = Vec::new();
        for o in OFFENCES {
            offenders.push(tokio::spawn(async move {
                let started = Instant::now();
                let mut tcp = offend(port, o.what).await;
                let local = tcp.local_addr().expect("local address").port();
                let closed = closed_within(&mut tcp, o.deadline + MARGIN).await;
                (o, local, closed, started.elapsed())
            }));
        }
        let mut outcomes = Vec::new();
        for o in offenders {
            outcomes.push(o.await.expect("offender task"));
        }
        let idle_closed = idle_closed.await.expect("idle task");
        let quiet_player = quiet_player.await.expect("task").expect("the quiet stream's player");
        (good.await.expect("task").expect("the good player"), quiet_player, outcomes, idle_closed)
    });
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let max_rss = rss.join().expect("rss sampler");

    let log = strip_ansi(&server.proc().stderr_text());
    for (o, local, closed, took) in &outcomes {
        eprintln!("{:<50} closed after {took:>6.1?} (deadline {:?})", o.what, o.deadline);
        assert!(closed, "{}: the server kept the connection open past {:?}\n{}", o.what, o.deadline + MARGIN, tail(&log, 40));
        let line = ending_line(&log, *local).unwrap_or_else(|| panic!("{}: no log line for :{local}\n{}", o.what, tail(&log, 40)));
        assert!(line.contains(o.reason), "{}: the log line does not say '{}': {line}", o.what, o.reason);
    }
    assert_eq!(idle_closed, IDLE_CONNECTIONS, "of {IDLE_CONNECTIONS} silent connections only {idle_closed} were closed in time");

    // The quiet publisher's player was told its stream ended.
    assert_eq!(quiet_player.count_status("UnpublishNotify"), 1, "{:?}", quiet_player.statuses());

    eprintln!("tally serve's largest RSS: {} KiB (bound {RSS_BOUND_KIB} KiB)", max_rss);
    assert!(max_rss > 0 && max_rss < RSS_BOUND_KIB, "tally serve's RSS reached {max_rss} KiB");

    // The good player: the whole time, no hole in video or audio.
    let (video, audio) = (largest_step(&good, tally::rtmp::MediaKind::Video), largest_step(&good, tally::rtmp::MediaKind::Audio));
    eprintln!(
        "the good player: {} video frames, largest timestamp steps {video} ms video / {audio} ms audio, largest arrival gap {:?}",
        good.video_frames(),
        largest_arrival_gap(&good.video())
    );
    assert!(good.video_frames() as f64 >= 30.0 * 30.0, "the good player got only {} frames", good.video_frames());
    assert!(video <= MAX_GAP_MS && audio <= MAX_GAP_MS, "the good player's timeline has a gap: {video} ms video, {audio} ms audio");
    assert!(!publisher.has_exited(), "the good publisher stopped\n{}", publisher.describe());
    assert!(!publisher.stderr_text().contains("reconnect"), "the good publisher reconnected\n{}", publisher.describe());
}
