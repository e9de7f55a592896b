//! The preview feed's cost: one picture (fit + RGBA) per frame at 720p and
//! 1080p into the sizes a window asks for, and the CPU of a capture session
//! that is idle but previewing (720p30 test pattern + tone, 640x360 at
//! 30 fps) against the same session with no preview asked.

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tally::capture::{AudioSourceSpec, TestPattern, VideoSource, VideoSourceSpec};
use tally::engine::SessionFeeds;
use tally::session::{CaptureSession, Pacing, PreviewRequest, SessionFormat, SessionSpec, preview_picture};

fn pictures(c: &mut Criterion) {
    let mut g = c.benchmark_group("preview");
    g.measurement_time(Duration::from_secs(2)).sample_size(20).throughput(Throughput::Elements(1));
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let mut pattern = TestPattern::new(w, h, 30).expect("pattern");
        pattern.next_frame().expect("frame");
        let frame = pattern.next_frame().expect("frame").expect("a frame");
        for (pw, ph) in [(640u32, 360u32), (w, h)] {
            let request = PreviewRequest { width: pw, height: ph, max_fps: 30 };
            g.bench_function(format!("{w}x{h}->{pw}x{ph}"), |b| b.iter(|| black_box(preview_picture(&frame, request).expect("picture"))));
        }
    }
    g.finish();
}

/// CPU seconds this process has used (user + system).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // rest starts at field 3 (state is not a number, so it is skipped): utime = f[10], stime = f[11].
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn session_cpu(preview: Option<PreviewRequest>, secs: u64) -> (f64, u64) {
    let feeds = SessionFeeds::default();
    let rx = feeds.preview.subscribe();
    let format = SessionFormat { width: 1280, height: 720, fps: 30 };
    let spec = SessionSpec { video: VideoSourceSpec::TestPattern, scene: None, audio: AudioSourceSpec::Sine, format, looping: false, pacing: Pacing::RealTime, from_first_frame: false };
    let session = CaptureSession::open(spec, std::sync::Arc::new(feeds)).expect("session");
    session.set_preview(preview);
    // Let it settle, then measure.
    std::thread::sleep(Duration::from_secs(1));
    let (c0, t0, s0) = (cpu_secs(), Instant::now(), rx.borrow().as_ref().map_or(0, |p| p.serial));
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, t1, s1) = (cpu_secs(), Instant::now(), rx.borrow().as_ref().map_or(0, |p| p.serial));
    drop(session);
    ((c1 - c0) / t1.duration_since(t0).as_secs_f64() * 100.0, s1 - s0)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    pictures(&mut c);
    c.final_summary();
    let secs = std::env::var("SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    for _ in 0..2 {
        let (idle, _) = session_cpu(None, secs);
        let (previewing, shown) = session_cpu(Some(PreviewRequest { width: 640, height: 360, max_fps: 30 }), secs);
        println!(
            "capture session 1280x720@30 + tone: {idle:.1} % of a core without a preview, {previewing:.1} % with a 640x360 preview ({:.1} pictures/s)",
            shown as f64 / secs as f64
        );
    }
}
