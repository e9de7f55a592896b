//! Camera frame conversion to I420 (the capture thread's cost per frame),
//! per pixel format and size, and fitting a picture into another size.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tally::capture::{FrameConverter, PixelFormat, RawFrame};

/// A frame of `format` with some structure (a gradient), so MJPEG is not trivially small.
fn frame(format: PixelFormat, w: u32, h: u32) -> Option<Vec<u8>> {
    if format == PixelFormat::Mjpeg {
        // zune-jpeg decodes; ffmpeg encodes the input once (skipped without ffmpeg).
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=size={w}x{h}:rate=1"), "-frames:v", "1"])
            .args(["-c:v", "mjpeg", "-q:v", "3", "-f", "mjpeg", "-"])
            .output()
            .ok()?;
        return out.status.success().then_some(out.stdout);
    }
    let len = format.frame_len(w, h)?;
    Some((0..len).map(|i| (i * 7 % 251) as u8).collect())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("convert");
    g.measurement_time(Duration::from_secs(2)).sample_size(20);
    for (w, h) in [(640u32, 480u32), (1280, 720), (1920, 1080)] {
        for format in [PixelFormat::Nv12, PixelFormat::Yuyv, PixelFormat::Rgb24, PixelFormat::Mjpeg] {
            let Some(data) = frame(format, w, h) else {
                eprintln!("skipping {format} {w}x{h}: ffmpeg not available to make the JPEG");
                continue;
            };
            let mut conv = FrameConverter::new(w, h).expect("converter");
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("{format}/{w}x{h}"), |b| {
                b.iter(|| black_box(conv.convert(&RawFrame { format, width: w, height: h, data: &data }, 0).expect("convert")))
            });
        }
    }
    // A 720p camera feeding a 1080p broadcast: convert + scale.
    let data = frame(PixelFormat::Yuyv, 1280, 720).expect("yuyv");
    let mut up = FrameConverter::new(1920, 1080).expect("converter");
    g.bench_function("YUYV/1280x720->1920x1080", |b| {
        b.iter(|| black_box(up.convert(&RawFrame { format: PixelFormat::Yuyv, width: 1280, height: 720, data: &data }, 0).expect("convert")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
