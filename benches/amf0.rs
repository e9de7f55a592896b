//! AMF0 encode/decode of the values RTMP sessions exchange most.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tally::amf0::{self, Amf0Value};
use tally::flv::StreamMetadata;

fn connect() -> Vec<Amf0Value> {
    vec![
        Amf0Value::string("connect"),
        Amf0Value::Number(1.0),
        Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string("FMLE/3.0 (compatible; Tally)")),
            ("swfUrl", Amf0Value::string("rtmp://127.0.0.1:1935/live")),
            ("tcUrl", Amf0Value::string("rtmp://127.0.0.1:1935/live")),
        ]),
    ]
}

fn metadata() -> Vec<Amf0Value> {
    let meta = StreamMetadata {
        duration: 0.0,
        video: Some((1280, 720, 30.0, 2500)),
        audio: Some((48_000, 2, 128)),
        encoder: "Tally".into(),
        filesize: 0.0,
    };
    vec![Amf0Value::string("onMetaData"), meta.to_amf0()]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("amf0");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    for (name, values) in [("connect", connect()), ("onMetaData", metadata())] {
        g.bench_function(format!("encode/{name}"), |b| b.iter(|| black_box(amf0::encode_all(black_box(&values)))));
        let bytes = amf0::encode_all(&values).freeze();
        g.bench_function(format!("decode/{name}"), |b| b.iter(|| black_box(amf0::decode_all(black_box(&bytes)))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
