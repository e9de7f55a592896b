//! Camera frame conversion to I420 (the capture thread's cost per frame),
//! per pixel format and size, and fitting a picture into another size.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tally::capture::{FrameConverter, PixelFormat, RawFrame};

/// A frame of `format` with some structure (a gradient), so MJPEG is not trivially small.
fn frame(format: PixelFormat, w: u32, h: u32) -> Option<Vec<u8>> {
    if format == PixelFormat::Mjpeg {
        // zune-jpeg decodes; ffmpeg encodes the input once. Without ffmpeg
        // the benchmark fails, as the tests do: a row left out would read
        // as a row measured.
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=size={w}x{h}:rate=1"), "-frames:v", "1"])
            .args(["-c:v", "mjpeg", "-q:v", "3", "-f", "mjpeg", "-"])
            .output()
            .unwrap_or_else(|e| panic!("ffmpeg makes the MJPEG input (apt-get install ffmpeg; `make test-deps`): {e}"));
        assert!(out.status.success(), "ffmpeg could not make the MJPEG input: {}", String::from_utf8_lossy(&out.stderr));
        return Some(out.stdout);
    }
    let len = format.frame_len(w, h)?;
    Some((0..len).map(|i| (i * 7 % 251) as u8).collect())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("convert");
    g.measurement_time(Duration::from_secs(2)).sample_size(20);
    for (w, h) in [(640u32, 480u32), (1280, 720), (1920, 1080)] {
        for format in [PixelFormat::Nv12, PixelFormat::Yuyv, PixelFormat::Rgb24, PixelFormat::Mjpeg] {
            let data = frame(format, w, h).unwrap_or_else(|| panic!("no {format} frame of {w}x{h}"));
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
    // A rendition at a smaller size than the capture: the capture thread
    // scales each frame once per distinct size (pipeline::renditions).
    for (sw, sh, dw, dh) in [(1920u32, 1080u32, 1280u32, 720u32), (1920, 1080, 854, 480), (1280, 720, 854, 480)] {
        let src = tally::media::VideoFrame::black(sw, sh, 0);
        g.bench_function(format!("rendition scale/{sw}x{sh}->{dw}x{dh}"), |b| {
            b.iter(|| black_box(tally::capture::convert::fit_into(&src, dw, dh, 0)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
