//! What the window looks like, rendered headless (egui_kittest + wgpu on
//! Mesa) and compared with the images in `tests/snapshots/`: the main
//! window on a first run, the profile editor, and the local server panel
//! while rehearsing with its viewer preview. What changes from run to run
//! by nature (CPU and memory figures, ports, the live clock, the latency,
//! the decoded viewer picture) is painted over before comparing; the rest
//! must match. `UPDATE_SNAPSHOTS=1 cargo test --test app snapshots::`
//! rewrites the images: look at each one before committing it.

use crate::common;

use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use std::time::{Duration, Instant};
use tally::engine::{Engine, EngineOptions, EngineState, ProfilesState, SourcesState, ViewerState};
use tally::net::OutputState;
use tally::net::server::ServerConfig;
use tally::ui::TallyApp;

const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// The window's default size (`ui::run`).
const SIZE: (f32, f32) = (1100.0, 760.0);
/// Painted over what changes by nature.
const MASK: image::Rgba<u8> = image::Rgba([128, 0, 128, 255]);

/// A still picture as the camera (a Y4M of one frame, looping), named by a
/// path relative to the crate so that the source's name is the same on
/// every machine, and silence: the preview and the meters hold still.
fn still_sources() -> (String, String) {
    let rel = "target/tmp/snapshot-still.y4m";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension(format!("{}.y4m", std::process::id()));
        let made = std::process::Command::new(require("ffmpeg"))
            .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-frames:v", "1"])
            .args(["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-y"])
            .arg(&tmp)
            .status()
            .expect("run ffmpeg");
        assert!(made.success());
        std::fs::rename(&tmp, &path).unwrap();
    }
    (format!("y4m:{rel}"), "silence".into())
}

struct Settings(Vec<(&'static str, String)>);

impl eframe::Storage for Settings {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }
    fn set_string(&mut self, _: &str, _: String) {}
    fn remove_string(&mut self, _: &str) {}
    fn flush(&mut self) {}
}

/// The app on the still sources; `server` is the server a rehearsal starts
/// (the panel shows its addresses until then).
fn app(dir: &TestDir, server: ServerConfig) -> Harness<'static, TallyApp> {
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), server, ..EngineOptions::default() }).unwrap();
    let mut app = TallyApp::new(engine);
    let (video, audio) = still_sources();
    app.restore(&Settings(vec![(tally::ui::settings::VIDEO, video), (tally::ui::settings::AUDIO, audio)]));
    Harness::builder().with_size(egui::vec2(SIZE.0, SIZE.1)).wgpu().build_ui_state(|ui, app: &mut TallyApp| app.main_ui(ui), app)
}

/// The preview pictures come at the size the window shows them (the first
/// ones come at the largest size, before the window has asked).
fn preview_at_shown_size(h: &Harness<'static, TallyApp>) -> bool {
    h.state().engine().preview().borrow().as_ref().is_some_and(|p| p.width < 1280)
}

/// Draws frames until `pred` holds for the engine's state and the window,
/// waiting for the next state, picture or meter change between frames.
fn step_until(h: &mut Harness<'static, TallyApp>, what: &str, pred: impl Fn(&EngineState, &Harness<'static, TallyApp>) -> bool) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    let engine = h.state().engine();
    let (mut state, mut preview, mut viewer) = (engine.state(), engine.preview(), engine.viewer());
    let runtime = engine.runtime().clone();
    loop {
        h.step();
        let now = state.borrow_and_update().clone();
        if pred(&now, h) {
            // Settled: the frames after a change lay out with it.
            h.run_steps(3);
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not reached; last state: {now:?}");
        let _ = runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(200), async {
                tokio::select! { _ = state.changed() => {}, _ = preview.changed() => {}, _ = viewer.changed() => {} }
            })
            .await
        });
    }
}

/// Renders the window, paints over the nodes whose label contains one of
/// `changing`, crops to `from_x..` and compares with `tests/snapshots/NAME.png`.
fn snapshot(h: &mut Harness<'static, TallyApp>, name: &str, changing: &[&str], from_x: f32, max_failed_pixels: usize) {
    let mut rects = Vec::new();
    for text in changing {
        let found: Vec<egui::Rect> = h.query_all_by_label_contains(text).map(|n| n.rect()).collect();
        assert!(!found.is_empty(), "nothing labelled '{text}' to mask in {name}");
        rects.extend(found);
    }
    let mut image = h.render().expect("render the window (wgpu on Mesa)");
    let ppp = h.ctx.pixels_per_point();
    for r in rects {
        let r = r.expand(2.0);
        let (x0, y0) = ((r.min.x * ppp).max(0.0) as u32, (r.min.y * ppp).max(0.0) as u32);
        let (x1, y1) = (((r.max.x * ppp) as u32).min(image.width()), ((r.max.y * ppp) as u32).min(image.height()));
        for y in y0..y1 {
            for x in x0..x1 {
                image.put_pixel(x, y, MASK);
            }
        }
    }
    let x = ((from_x * ppp).max(0.0) as u32).min(image.width() - 1);
    let image = image::imageops::crop_imm(&image, x, 0, image.width() - x, image.height()).to_image();
    let options = SnapshotOptions::new().max_failed_pixels(max_failed_pixels);
    if let Err(e) = egui_kittest::try_image_snapshot_options(&image, name, &options) {
        panic!("{name}: {e}");
    }
}

#[test]
fn the_main_window_on_a_first_run() {
    let dir = TestDir::new("snap-main");
    let mut h = app(&dir, ServerConfig::default());
    step_until(&mut h, "the still previewed, silence on the meters", |s, h| {
        matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if profiles.is_empty())
            && matches!(&s.sources, SourcesState::Open { video, .. } if video.contains("snapshot-still"))
            && h.query_by_label("Preview of the outgoing picture").is_some()
            && h.query_all_by_label_contains("RMS -120").count() == 2
            && preview_at_shown_size(h)
    });
    // A few pixels of anti-aliasing may differ between Mesa builds; a moved
    // widget or a changed text changes hundreds.
    snapshot(&mut h, "main_window_first_run", &["CPU ", "Memory "], 0.0, 40);
}

#[test]
fn the_profile_editor() {
    let dir = TestDir::new("snap-editor");
    let mut h = app(&dir, ServerConfig::default());
    step_until(&mut h, "first run", |s, h| matches!(s.sources, SourcesState::Open { .. }) && h.query_by_label("Add a destination").is_some());
    h.get_by_label("Add a destination").click();
    step_until(&mut h, "the editor open", |_, h| h.query_by_label("Stream key").is_some() && preview_at_shown_size(h));
    snapshot(&mut h, "profile_editor", &["CPU ", "Memory "], 0.0, 40);
}

#[test]
fn the_server_panel_rehearsing_with_the_viewer_preview() {
    let dir = TestDir::new("snap-server");
    let loopback = ServerConfig { rtmp_listen: "127.0.0.1:0".parse().unwrap(), http_listen: Some("127.0.0.1:0".parse().unwrap()), ..ServerConfig::default() };
    let mut h = app(&dir, loopback);
    step_until(&mut h, "first run", |s, h| matches!(s.sources, SourcesState::Open { .. }) && h.query_by_label("Rehearse locally").is_some());
    h.get_by_label("Rehearse locally").click();
    step_until(&mut h, "the viewer showing the stream", |s, h| {
        s.outputs.first().is_some_and(|o| o.state == OutputState::Live)
            && matches!(s.viewer, ViewerState::Playing { .. })
            && h.query_by_label_contains("glass-to-glass").is_some()
            && h.query_by_label_contains("kbit/s in").is_some()
            && h.query_by_label("What a viewer of the local server sees").is_some()
    });
    let left = h.get_by_label("Local server").rect().min.x - 8.0;
    snapshot(
        &mut h,
        "server_panel_rehearsing",
        &["127.0.0.1:", "rtmp://", "http://", "kbit/s in", "glass-to-glass"],
        left,
        // The viewer's picture is decoded H.264 of the still: a few hundred
        // of its ~70 000 pixels differ from run to run (seen: up to 152).
        600,
    );
}
