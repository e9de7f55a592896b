//! The fuzz targets' bodies, on stable: `fuzz/fuzz_targets/*.rs` call these
//! under libFuzzer (nightly, `make fuzz`), and `tests/fuzz_regressions.rs`
//! runs every kept input through them in `make test`. Each takes arbitrary
//! bytes, must never panic, and asserts what must hold whatever the input
//! (bounded buffers and output, round trips).

use crate::amf0;
use crate::flv::{self, FlvReader, TagType};
use crate::http::{self, HeadStatus};
use crate::rtmp::{
    ChunkDecoder, ClientConfig, ClientHandshake, ClientSession, DecoderLimits, MediaKind, RtmpMessage, RtmpUrl, ServerConfig,
    ServerEvent, ServerHandshake, ServerSession,
};
use bytes::BytesMut;

/// A fuzz target's body: arbitrary bytes in, a panic if something that must
/// hold whatever the input did not.
pub type TargetFn = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/` and the kept inputs under
/// `fuzz/seeds/NAME/` and `fuzz/regressions/NAME/` are named.
pub const TARGETS: [(&str, TargetFn); 7] = [
    ("amf0", amf0_round_trip),
    ("chunk_decoder", chunk_decoder),
    ("handshake", handshake),
    ("flv_reader", flv_reader),
    ("client_session", client_session),
    ("server_session", server_session),
    ("http_request", http_request),
];

/// AMF0 decoding: what decodes re-encodes to bytes that decode to the same
/// encoding (NaN != NaN, so encodings are compared, not values).
pub fn amf0_round_trip(data: &[u8]) {
    if let Ok(values) = amf0::decode_all(data) {
        let bytes = amf0::encode_all(&values);
        let again = amf0::decode_all(&bytes).expect("re-encoded AMF0 decodes");
        assert_eq!(amf0::encode_all(&again), bytes);
    }
}

/// The chunk decoder in arbitrary splits, applying every SetChunkSize it
/// decodes as a session would (spec 5.4.1): never more buffered than its
/// limits, no message longer than the cap.
pub fn chunk_decoder(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let limits = DecoderLimits::default();
    let mut dec = ChunkDecoder::with_limits(limits);
    let _ = dec.set_chunk_size(1 + u32::from(ctl) * 97);
    let split = 1 + usize::from(ctl % 61);
    for piece in rest.chunks(split) {
        dec.push(piece);
        loop {
            match dec.next_message() {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= limits.max_message_len);
                    if let Ok(RtmpMessage::SetChunkSize(n)) = RtmpMessage::from_raw(&m)
                        && dec.set_chunk_size(n).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(dec.buffered_len() <= limits.max_buffered_bytes + piece.len());
    }
}

/// Both handshake sides fed arbitrary peer bytes: bounded output.
pub fn handshake(data: &[u8]) {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = BytesMut::new();
    let mut server = ServerHandshake::new(&mut rng, 0);
    for piece in data.chunks(700) {
        if server.handle_input(piece, &mut out).is_err() {
            break;
        }
    }
    assert!(out.len() <= 1 + 2 * 1536);
    let mut out = BytesMut::new();
    let mut client = ClientHandshake::new(&mut rng, 0, &mut out);
    for piece in data.chunks(513) {
        if client.handle_input(piece, &mut out).is_err() {
            break;
        }
    }
    assert!(out.len() <= 1 + 2 * 1536);
}

/// The FLV reader and the tag-body parsers on an arbitrary file.
pub fn flv_reader(data: &[u8]) {
    let Ok(reader) = FlvReader::new(data.to_vec()) else { return };
    for tag in reader {
        let Ok(tag) = tag else { break };
        match tag.tag_type {
            TagType::Video => drop(flv::parse_video_header(&tag.data)),
            TagType::Audio => drop(flv::parse_audio_header(&tag.data)),
            TagType::Script => drop(flv::parse_script(&tag.data)),
        }
    }
}

/// A publishing and a playing client fed an arbitrary "server".
pub fn client_session(data: &[u8]) {
    let Ok(url) = RtmpUrl::parse("rtmp://127.0.0.1/live/key") else { return };
    let mut publisher = ClientSession::new(ClientConfig::from_url(&url), 1, 0);
    let mut player = ClientSession::new(ClientConfig::play_from_url(&url), 2, 0);
    let _ = publisher.take_outbound();
    let _ = player.take_outbound();
    let (mut pub_ok, mut play_ok) = (true, true);
    for piece in data.chunks(1024) {
        if pub_ok {
            pub_ok = publisher.handle_input(piece).is_ok();
            let _ = publisher.take_outbound();
            let _ = publisher.send_media(MediaKind::Audio, 0, bytes::Bytes::from_static(&[0xAF, 1, 0]));
        }
        if play_ok {
            play_ok = player.handle_input(piece).is_ok();
            let _ = player.take_outbound();
        }
    }
}

/// The server session fed an arbitrary client after a valid C0/C1/C2,
/// accepting every publish and play and sending player notices.
pub fn server_session(data: &[u8]) {
    let mut server = ServerSession::new(ServerConfig::default(), 1, 0);
    let mut hello = vec![3u8];
    hello.extend(std::iter::repeat_n(0u8, 2 * 1536));
    if server.handle_input(&hello).is_err() {
        return;
    }
    let _ = server.take_outbound();
    for piece in data.chunks(777) {
        match server.handle_input(piece) {
            Ok(events) => {
                for ev in events {
                    match ev {
                        ServerEvent::PublishRequested { stream_id, .. } => {
                            let _ = server.accept_publish(stream_id);
                        }
                        ServerEvent::PlayRequested { stream_id, .. } => {
                            let _ = server.accept_play(stream_id);
                            let _ = server.notify_unpublish(stream_id);
                            let _ = server.notify_publish(stream_id);
                        }
                        _ => {}
                    }
                }
            }
            Err(_) => return,
        }
        assert!(server.buffered_input() <= DecoderLimits::default().max_buffered_bytes + piece.len());
        let _ = server.take_outbound();
    }
}

/// The HTTP request head: found within its bound or refused, and routed;
/// the same answer however the bytes arrive.
pub fn http_request(data: &[u8]) {
    let whole = http::parse_head(data);
    match &whole {
        HeadStatus::Complete(head, used) => {
            assert!(*used <= http::MAX_REQUEST_HEAD && *used <= data.len());
            let _ = http::route(head);
        }
        HeadStatus::TooLarge => assert!(data.len() >= http::MAX_REQUEST_HEAD),
        HeadStatus::Partial => assert!(data.len() < http::MAX_REQUEST_HEAD),
    }
    // The driver parses again after every read: the first complete answer
    // it meets is the one for the whole input.
    let mut received = Vec::new();
    for piece in data.chunks(97) {
        received.extend_from_slice(piece);
        match http::parse_head(&received) {
            HeadStatus::Partial => continue,
            early => {
                assert_eq!(early, whole);
                return;
            }
        }
    }
}
