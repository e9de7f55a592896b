//! The compositor's cost per frame: *Screen + camera + text* drawn into a
//! 1080p and a 720p canvas, the way the capture session's tick draws it.
//!
//! - `still`: the screen did not change (its picture's serial stays), the
//!   camera delivers a new frame every tick (scaled to its corner each
//!   time), the text is a still: what a talk over slides costs.
//! - `moving`: the screen changes every tick too (a video playing on it):
//!   its picture is scaled again each frame unless it is the canvas's size.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tally::capture::{TestPattern, TextStyle, render_text};
use tally::compose::layout::{CORNER_CAMERA_SIZE, Corner, Layout, Role};
use tally::compose::{Compositor, DrawLayer, LayerInput, Placement, Rect};
use tally::media::VideoFrame;

fn pattern(w: u32, h: u32) -> Arc<VideoFrame> {
    Arc::new(TestPattern::new(w, h, 30).expect("pattern").frame(1))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("compose");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    // The screen at 1920x1080 (a 1080p monitor), the camera at 1280x720.
    let screen = pattern(1920, 1080);
    let camera = pattern(1280, 720);
    let style = TextStyle { text: "Alice Example — host".into(), size_px: 48, background: Some(tally::capture::Rgba { r: 0, g: 0, b: 0, a: 160 }), ..TextStyle::default() };
    let text = render_text(&style).expect("text");
    let text = LayerInput { frame: Arc::new(text.frame), alpha: text.alpha.map(Arc::new), serial: 1 };
    let placed = Layout::ScreenCamera { corner: Corner::BottomRight, size: CORNER_CAMERA_SIZE }.place(16.0 / 9.0);
    let at = |role| placed.iter().find(|(r, _)| *r == role).map(|(_, p)| *p).expect("placed");
    let (screen_at, camera_at) = (at(Role::Screen), at(Role::Camera));
    let lower_third = Placement::at(Rect { x: 0.03, y: 0.82, w: 0.4, h: 0.08 });
    for (w, h) in [(1920u32, 1080u32), (1280, 720)] {
        for moving in [false, true] {
            let mut compositor = Compositor::default();
            let mut canvas = VideoFrame::black(w, h, 0);
            let mut serial = 0u64;
            let name = format!("{}/{w}x{h}", if moving { "moving" } else { "still" });
            g.bench_function(name, |b| {
                b.iter(|| {
                    serial += 1;
                    let s = LayerInput { frame: screen.clone(), alpha: None, serial: if moving { serial } else { 1 } };
                    let cam = LayerInput { frame: camera.clone(), alpha: None, serial };
                    let layers = [
                        DrawLayer { key: 1, input: Some(&s), placement: &screen_at },
                        DrawLayer { key: 2, input: Some(&cam), placement: &camera_at },
                        DrawLayer { key: 3, input: Some(&text), placement: &lower_third },
                    ];
                    compositor.draw(&layers, &mut canvas);
                    black_box(&canvas);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
