//! Golden bytes of the publish sequence: handshake, connect, releaseStream,
//! FCPublish, createStream, publish, @setDataFrame onMetaData and the AVC and
//! AAC sequence headers, exactly as `ClientSession` writes them for a fixed
//! seed against an in-memory server.
//!
//! The fixture (`tests/fixtures/publish_sequence.bin`) has a human-readable
//! twin (`publish_sequence.txt`) that decodes every message; both are compared,
//! so a change in either the bytes or their meaning shows up in review.
//! Regenerate both with `TALLY_BLESS=1 cargo test --test golden_publish` and
//! review the diff of the .txt before committing.

use bytes::Bytes;
use std::fmt::Write as _;
use std::path::PathBuf;
use tally::amf0;
use tally::flv::{self, StreamMetadata};
use tally::media::{AudioConfig, VideoConfig};
use tally::rtmp::{
    ChunkDecoder, ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpMessage, RtmpUrl, ServerConfig, ServerEvent,
    ServerSession,
};

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08, 0x84, 0x6a];
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
    let meta = flv::metadata_tag(&StreamMetadata::new(Some(&video), Some(&audio), "Tally"), 0);
    client.send_media(MediaKind::Data, 0, &flv::set_data_frame(&meta.data)).expect("metadata");
    let vsh = flv::video_sequence_header(&video, 0).expect("avc header");
    client.send_media(MediaKind::Video, 0, &vsh.data).expect("video header");
    let ash = flv::audio_sequence_header(&audio, 0);
    client.send_media(MediaKind::Audio, 0, &ash.data).expect("audio header");
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
    let mut s = String::from("# Client bytes of the publish sequence (see tests/golden_publish.rs)\n\n");
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
