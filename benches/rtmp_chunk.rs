//! RTMP chunk codec throughput (MB/s of message payload).

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tally::rtmp::{ChunkDecoder, ChunkEncoder, RawMessage};

/// One second of a 2.5 Mbit/s stream, roughly: 30 video frames of ~10 KB
/// (one 60 KB keyframe) and 47 AAC frames of ~340 bytes.
fn one_second_of_media() -> Vec<RawMessage> {
    let mut msgs = Vec::new();
    for i in 0..47u32 {
        msgs.push(RawMessage { csid: 4, timestamp: i * 21, type_id: 8, stream_id: 1, payload: Bytes::from(vec![0xAF; 340]) });
    }
    for i in 0..30u32 {
        let len = if i == 0 { 60_000 } else { 8_500 };
        msgs.push(RawMessage { csid: 6, timestamp: i * 33, type_id: 9, stream_id: 1, payload: Bytes::from(vec![0x27; len]) });
    }
    msgs.sort_by_key(|m| m.timestamp);
    msgs
}

fn encode_all(msgs: &[RawMessage], chunk_size: u32) -> BytesMut {
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(chunk_size).expect("valid chunk size");
    let mut out = BytesMut::with_capacity(400_000);
    for m in msgs {
        enc.encode(m, &mut out).expect("encode");
    }
    out
}

fn bench(c: &mut Criterion) {
    let msgs = one_second_of_media();
    let payload: u64 = msgs.iter().map(|m| m.payload.len() as u64).sum();
    let mut g = c.benchmark_group("rtmp_chunk");
    g.measurement_time(Duration::from_secs(3)).sample_size(20).throughput(Throughput::Bytes(payload));
    for chunk_size in [128u32, 4096] {
        g.bench_function(format!("encode/chunk{chunk_size}"), |b| b.iter(|| black_box(encode_all(&msgs, chunk_size))));
        let wire = encode_all(&msgs, chunk_size).freeze();
        g.bench_function(format!("decode/chunk{chunk_size}"), |b| {
            b.iter(|| {
                let mut dec = ChunkDecoder::new();
                dec.set_chunk_size(chunk_size).expect("valid chunk size");
                let mut n = 0;
                for read in wire.chunks(64 * 1024) {
                    dec.push(read);
                    while let Some(m) = dec.next_message().expect("decode") {
                        n += m.payload.len();
                    }
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
