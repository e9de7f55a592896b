#![no_main]
//! The chunk decoder on arbitrary bytes in arbitrary splits: never panics and
//! never buffers more than its limits allow.
use libfuzzer_sys::fuzz_target;
use tally::rtmp::{ChunkDecoder, DecoderLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let limits = DecoderLimits::default();
    let mut dec = ChunkDecoder::with_limits(limits);
    let _ = dec.set_chunk_size(1 + u32::from(ctl) * 97);
    let split = 1 + usize::from(ctl % 61);
    for piece in rest.chunks(split) {
        dec.push(piece);
        loop {
            match dec.next_message() {
                Ok(Some(m)) => assert!(m.payload.len() <= limits.max_message_len),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(dec.buffered_len() <= limits.max_buffered_bytes + piece.len());
    }
});
