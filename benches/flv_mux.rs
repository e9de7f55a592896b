//! FLV muxing: building tag bodies from encoded packets and writing them to a file image.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;
use tally::flv::FlvWriter;
use tally::tags;
use tally::media::{Codec, EncodedPacket};

fn packets() -> Vec<EncodedPacket> {
    let mut v = Vec::new();
    for i in 0..30u64 {
        let len = if i == 0 { 60_000 } else { 8_500 };
        v.push(EncodedPacket { codec: Codec::H264, data: Bytes::from(vec![1; len]), pts_ms: i * 33, dts_ms: i * 33, keyframe: i == 0 });
    }
    for i in 0..47u64 {
        v.push(EncodedPacket { codec: Codec::Aac, data: Bytes::from(vec![2; 340]), pts_ms: i * 21, dts_ms: i * 21, keyframe: true });
    }
    v.sort_by_key(|p| p.dts_ms);
    v
}

fn bench(c: &mut Criterion) {
    let pkts = packets();
    let bytes: u64 = pkts.iter().map(|p| p.data.len() as u64).sum();
    let mut g = c.benchmark_group("flv_mux");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("tags", |b| {
        b.iter(|| {
            for p in &pkts {
                black_box(match p.codec {
                    Codec::H264 => tags::video_tag(p),
                    Codec::Aac => tags::audio_tag(p),
                });
            }
        })
    });
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("tags+writer", |b| {
        b.iter(|| {
            let mut w = FlvWriter::new(Cursor::new(Vec::with_capacity(400_000)), true, true).expect("header");
            for p in &pkts {
                let tag = match p.codec {
                    Codec::H264 => tags::video_tag(p),
                    Codec::Aac => tags::audio_tag(p),
                };
                w.write_tag(&tag).expect("write");
            }
            black_box(w.finish().expect("finish"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
