#![no_main]
//! Both handshake sides fed arbitrary peer bytes: never panic, bounded output.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tally::rtmp::{ClientHandshake, ServerHandshake};

fuzz_target!(|data: &[u8]| {
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
});
