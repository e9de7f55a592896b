//! Golden bytes of the publish sequence: handshake, connect, releaseStream,
//! FCPublish, createStream, publish, @setDataFrame onMetaData and the AVC and
//! AAC sequence headers, exactly as `ClientSession` writes them for a fixed
//! seed against an in-memory server.
//!
//! The fixture (`tests/fixtures/publish_sequence.bin`) has a human-readable
//! twin (`publish_sequence.txt`) that decodes every message; both are compared,
//! so a change in either the bytes or their meaning shows up in review.
//! Regenerate both with `TALLY_BLESS=1 cargo test --test it golden_publish::` and
//! review the diff of the .txt before committing (refused under `CI=true`:
//! CI checks the fixture, it never rewrites it).
//!
//! The fixture is made by the code under test, so it is also read by an
//! outside reader: the same bytes are replayed to ffprobe and ffmpeg
//! listening as RTMP servers (`-listen 1`), which must find the app, the
//! stream name, the chunk size, the metadata and both codecs where Tally
//! says they are, and decode the SPS to the size the metadata announces.

use crate::common;

use bytes::Bytes;
use std::fmt::Write as _;
use std::path::PathBuf;
use tally::amf0;
use tally::flv;
use tally::tags;
use tally::media::{AudioConfig, VideoConfig};
use tally::rtmp::{
    ChunkDecoder, ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpMessage, RtmpUrl, ServerConfig, ServerEvent,
    ServerSession,
};

/// openh264's SPS and PPS for 1280x720 (Constrained Baseline, level 3.1),
/// as `tally record --size 1280x720` writes them.
const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x68, 0x05, 0x00, 0x5b, 0xa0, 0x1e, 0x11, 0x08, 0xd4];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs the client against the server until publishing, then sends metadata
/// and both sequence headers. Returns every byte the client wrote.
fn publish_sequence() -> Vec<u8> {
    let url = RtmpUrl::parse("rtmp://127.0.0.1:1935/live/golden-key").expect("url");
    let mut client = ClientSession::new(ClientConfig::from_url(&url), 0x7a11, 0);
    let mut server = ServerSession::new(ServerConfig::default(), 0x5e7e, 0);
    let mut wire = Vec::new();
    let mut live = false;
    for _ in 0..64 {
        let out = client.take_outbound();
        wire.extend_from_slice(&out);
        for ev in server.handle_input(&out).expect("server accepts client bytes") {
            if let ServerEvent::PublishRequested { stream_id, .. } = ev {
                server.accept_publish(stream_id).expect("accept");
            }
        }
        let back = server.take_outbound();
        for ev in client.handle_input(&back).expect("client accepts server bytes") {
            if let ClientEvent::PublishStarted { .. } = ev {
                live = true;
            }
        }
        if live {
            break;
        }
    }
    assert!(live, "publish never started");
    let video = VideoConfig {
        sps: Bytes::from_static(SPS),
        pps: Bytes::from_static(PPS),
        width: 1280,
        height: 720,
        fps: 30.0,
        bitrate_kbps: 2500,
    };
    let audio = AudioConfig { asc: Bytes::from_static(&[0x11, 0x90]), sample_rate: 48_000, channels: 2, bitrate_kbps: 128 };
    let meta = flv::metadata_tag(&tags::stream_metadata(Some(&video), Some(&audio), "Tally"), 0);
    client.send_media(MediaKind::Data, 0, flv::set_data_frame(&meta.data)).expect("metadata");
    let vsh = tags::video_sequence_header(&video, 0).expect("avc header");
    client.send_media(MediaKind::Video, 0, vsh.data.clone()).expect("video header");
    let ash = tags::audio_sequence_header(&audio, 0);
    client.send_media(MediaKind::Audio, 0, ash.data.clone()).expect("audio header");
    wire.extend_from_slice(&client.take_outbound());
    wire
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "    {:04x}:", i * 16);
        for b in line {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
    s
}

/// A reviewable account of the bytes: the handshake, then each RTMP message.
fn describe(wire: &[u8]) -> String {
    let mut s = String::from("# Client bytes of the publish sequence (see tests/it/golden_publish.rs)\n\n");
    let (c0c1, rest) = wire.split_at(1537);
    let (c2, rest) = rest.split_at(1536);
    let _ = writeln!(s, "C0: version {:#04x}", c0c1[0]);
    let _ = writeln!(s, "C1: time {:02x?}, zero {:02x?}, then 1528 random bytes", &c0c1[1..5], &c0c1[5..9]);
    let _ = writeln!(s, "C2: echo of S1, time {:02x?}, time2 {:02x?}, then 1528 bytes\n", &c2[0..4], &c2[4..8]);
    let mut dec = ChunkDecoder::new();
    dec.push(rest);
    while let Some(raw) = dec.next_message().expect("client bytes decode") {
        let msg = RtmpMessage::from_raw(&raw).expect("message parses");
        let _ = write!(s, "csid {} ts {} stream {} type {}: ", raw.csid, raw.timestamp, raw.stream_id, raw.type_id);
        match &msg {
            RtmpMessage::SetChunkSize(n) => {
                let _ = writeln!(s, "SetChunkSize {n}");
                dec.set_chunk_size(*n).expect("chunk size");
            }
            RtmpMessage::Command(_) | RtmpMessage::Data(_) => {
                let values = amf0::decode_all(&raw.payload).expect("amf0");
                let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                let _ = writeln!(s, "AMF0 {}", text.join(", "));
            }
            other => {
                let _ = writeln!(s, "{}", format!("{other:?}").split('(').next().unwrap_or("?"));
            }
        }
        s.push_str(&hex(&raw.payload));
    }
    assert_eq!(dec.buffered_len(), 0, "trailing partial message");
    s
}

#[test]
fn publish_sequence_matches_the_reviewed_fixture() {
    let wire = publish_sequence();
    let text = describe(&wire);
    if std::env::var_os("TALLY_BLESS").is_some() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TALLY_BLESS is refused under CI=true: a fixture is blessed by a person who reviewed its diff, never by CI"
        );
        std::fs::write(fixture("publish_sequence.bin"), &wire).expect("write fixture");
        std::fs::write(fixture("publish_sequence.txt"), &text).expect("write fixture");
    }
    let want = std::fs::read(fixture("publish_sequence.bin")).expect("fixture exists (TALLY_BLESS=1 makes it)");
    let want_text = std::fs::read_to_string(fixture("publish_sequence.txt")).expect("fixture text");
    assert_eq!(text, want_text, "decoded publish sequence differs from the reviewed fixture");
    assert!(wire == want, "publish sequence bytes differ from tests/fixtures/publish_sequence.bin");
}

#[test]
fn publish_sequence_is_deterministic_and_ordered() {
    let a = publish_sequence();
    assert_eq!(a, publish_sequence());
    let text = describe(&a);
    // The order ARCHITECTURE.md prescribes.
    let order = [
        "SetChunkSize 4096",
        "String(\"connect\")",
        "String(\"releaseStream\")",
        "String(\"FCPublish\")",
        "String(\"createStream\")",
        "String(\"publish\")",
        "String(\"@setDataFrame\"), String(\"onMetaData\")",
        "type 9:",
        "type 8:",
    ];
    let mut at = 0;
    for needle in order {
        let found = text[at..].find(needle).unwrap_or_else(|| panic!("{needle} missing or out of order:\n{text}"));
        at += found + needle.len();
    }
}

/// Replays the fixture to an ffmpeg tool listening on `port` (C0+C1, then
/// after its S0+S1+S2 the rest, byte for byte), closes our side, and
/// returns the tool's stdout and stderr once it exits.
fn replay(tool: &str, args: &[&str], port: u16, wire: &[u8]) -> (String, String) {
    use std::io::{Read, Write};
    let proc = common::Proc::spawn(tool, std::process::Command::new(common::require(tool)).args(args));
    assert!(
        common::wait_until(common::READY_TIMEOUT, || common::is_listening(port) || proc.has_exited()),
        "{tool} never listened\n{}",
        proc.describe()
    );
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    let (c0c1, rest) = wire.split_at(1537);
    tcp.write_all(c0c1).expect("C0+C1");
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    tcp.read_exact(&mut s0s1s2).expect("S0+S1+S2");
    tcp.write_all(rest).expect("the rest of the fixture");
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    // Its answers (connect result, onStatus...), until it closes.
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink);
    let out = proc.wait_output(std::time::Duration::from_secs(30));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Warnings ffmpeg's RTMP server prints when what the client sent does not
/// match the URL it listens on: the app in `connect`, the stream name in
/// `FCPublish` / `publish`.
const MISMATCH_WARNINGS: [&str; 2] = ["App field don't match up", "Unexpected stream"];

#[test]
fn ffprobe_and_ffmpeg_read_the_fixture_as_tally_describes_it() {
    let wire = std::fs::read(fixture("publish_sequence.bin")).expect("fixture");
    // ffprobe, listening where the fixture publishes: live/golden-key.
    let port = common::free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/golden-key");
    let (json, log) = replay("ffprobe", &["-v", "trace", "-listen", "1", "-show_streams", "-show_format", "-of", "json", &url], port, &wire);
    for warning in MISMATCH_WARNINGS {
        assert!(!log.contains(warning), "ffprobe: {warning}:\n{}", common::tail(&log, 30));
    }
    assert!(log.contains("New incoming chunk size = 4096"), "ffprobe never saw SetChunkSize 4096:\n{}", common::tail(&log, 30));
    let info: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("ffprobe JSON ({e}):\n{json}\n{}", common::tail(&log, 30)));
    assert_eq!(info["format"]["format_name"], "flv", "{info}");
    assert_eq!(info["format"]["tags"]["encoder"], "Tally", "onMetaData as ffprobe read it: {info}");
    let streams = info["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap_or_else(|| panic!("no video stream: {info}"));
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap_or_else(|| panic!("no audio stream: {info}"));
    assert_eq!((video["codec_name"].as_str(), video["is_avc"].as_str(), video["nal_length_size"].as_str()), (Some("h264"), Some("true"), Some("4")), "{video}");
    assert_eq!(video["avg_frame_rate"], "30/1", "frame rate from onMetaData: {video}");
    // AVCDecoderConfigurationRecord: 6 + 2 + SPS + 1 + 2 + PPS bytes.
    assert_eq!(video["extradata_size"].as_u64(), Some((11 + SPS.len() + PPS.len()) as u64), "{video}");
    assert_eq!((audio["codec_name"].as_str(), audio["channels"].as_u64(), audio["extradata_size"].as_u64()), (Some("aac"), Some(2), Some(2)), "{audio}");

    // ffmpeg decodes the SPS it was given (the trace_headers filter prints
    // its fields): the size the metadata announces.
    let port = common::free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/golden-key");
    let (_, log) = replay("ffmpeg", &["-hide_banner", "-v", "trace", "-listen", "1", "-i", &url, "-map", "0:v", "-c:v", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"], port, &wire);
    let field = |name: &str| -> Option<u32> {
        let line = log.lines().find(|l| l.contains("trace_headers") && l.split_whitespace().any(|w| w == name))?;
        line.rsplit('=').next()?.trim().parse().ok()
    };
    assert_eq!(field("profile_idc"), Some(66), "SPS profile:\n{}", common::tail(&log, 40));
    let width = field("pic_width_in_mbs_minus1").map(|w| (w + 1) * 16);
    let height = field("pic_height_in_map_units_minus1").map(|h| (h + 1) * 16);
    assert_eq!((width, height), (Some(1280), Some(720)), "the SPS's picture size");

    // The check is a real one: the same bytes sent to a listener expecting
    // another app and stream make ffmpeg say so.
    let port = common::free_port();
    let url = format!("rtmp://127.0.0.1:{port}/other/wrong-name");
    let (_, log) = replay("ffprobe", &["-v", "warning", "-listen", "1", "-show_streams", &url], port, &wire);
    for warning in MISMATCH_WARNINGS {
        assert!(log.contains(warning), "ffprobe did not notice a wrong {warning}:\n{log}");
    }
}
