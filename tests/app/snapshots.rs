//! What the window looks like, rendered headless (egui_kittest + wgpu on
//! Mesa) and compared with the images in `tests/snapshots/`: the main
//! window on a first run, the profile editor, and the local server panel
//! while rehearsing with its viewer preview (the window with scenes, on the
//! scripted engine, is in `scenes.rs`). What changes from run to run
//! by itself is painted over before comparing — in the labels only the
//! ports and the figures (CPU, memory, rates, the latency), so the
//! rehearsal's addresses are compared; the decoded viewer picture is
//! allowed a few hundred pixels — and the rest must match.
//! `UPDATE_SNAPSHOTS=1 cargo test --test app snapshots::` rewrites the
//! images: look at each one before committing it (refused under `CI=true`).

use crate::common;

use common::*;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use std::time::{Duration, Instant};
use tally::engine::{Engine, EngineOptions, EngineState, ProfilesState, SourcesState, ViewerState};
use tally::net::OutputState;
use tally::net::server::ServerConfig;
use crate::live_window::LiveWindow;

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
fn app(dir: &TestDir, server: ServerConfig) -> Harness<'static, LiveWindow> {
    refuse_rewriting_under_ci();
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), server, ..EngineOptions::default() }).unwrap();
    let mut app = LiveWindow::new(engine);
    let (video, audio) = still_sources();
    app.app.restore(&Settings(vec![(tally::ui::settings::VIDEO, video), (tally::ui::settings::AUDIO, audio)]));
    Harness::builder().with_size(egui::vec2(SIZE.0, SIZE.1)).wgpu().build_ui_state(|ui, w: &mut LiveWindow| w.ui(ui), app)
}

/// The preview pictures come at the size the window shows them (the first
/// ones come at the largest size, before the window has asked).
fn preview_at_shown_size(h: &Harness<'static, LiveWindow>) -> bool {
    h.state().engine().preview().borrow().as_ref().is_some_and(|p| p.width < 1280)
}

/// Draws frames until `pred` holds for the engine's state and the window,
/// waiting for the next state, picture or meter change between frames.
fn step_until(h: &mut Harness<'static, LiveWindow>, what: &str, pred: impl Fn(&EngineState, &Harness<'static, LiveWindow>) -> bool) {
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

/// `UPDATE_SNAPSHOTS` makes egui_kittest rewrite an image that differs
/// instead of failing: a person's step, after looking at the new image.
/// Under `CI=true` it is refused, loudly, before the window is even made (as
/// `TALLY_BLESS` is for the golden capture).
pub fn refuse_rewriting_under_ci() {
    let rewriting = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| !matches!(v.as_str(), "" | "false" | "0" | "no" | "off"));
    assert!(
        !(rewriting && std::env::var("CI").as_deref() == Ok("true")),
        "UPDATE_SNAPSHOTS is refused under CI=true: snapshots are rewritten by a person who looked at them, never by CI"
    );
}

/// The byte ranges of `label` that change from run to run by themselves:
/// a port (after `127.0.0.1:`; five digits, an ephemeral one) alone, and
/// from any other figure (a rate, a latency, a load) to the end of the
/// label, since what follows a figure moves as it gains or loses a digit.
/// The address `127.0.0.1` itself, and all other text, stay compared.
fn changing_spans(label: &str) -> Vec<std::ops::Range<usize>> {
    const HOST: &str = "127.0.0.1";
    let hosts: Vec<std::ops::Range<usize>> = label.match_indices(HOST).map(|(i, _)| i..i + HOST.len()).collect();
    let bytes = label.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || hosts.iter().any(|h| h.contains(&i)) {
            i += 1;
            continue;
        }
        let end = (i..bytes.len()).find(|&j| !(bytes[j].is_ascii_digit() || bytes[j] == b'.')).unwrap_or(bytes.len());
        if i > 0 && bytes[i - 1] == b':' && hosts.iter().any(|h| h.end == i - 1) {
            spans.push(i..end);
            i = end;
        } else {
            spans.push(i..bytes.len());
            break;
        }
    }
    spans
}

/// The text style a label of the window is drawn in: the addresses in
/// monospace (`server_panel::url_row`), the players' rows small, the rest
/// in the body font.
fn style_of(label: &str) -> egui::TextStyle {
    if label.starts_with("rtmp://") || label.starts_with("http://") {
        egui::TextStyle::Monospace
    } else if label.starts_with("  ") {
        egui::TextStyle::Small
    } else {
        egui::TextStyle::Body
    }
}

/// Renders the window, paints over what changes by itself in the labels
/// that contain one of `changing` (see [`changing_spans`]: the rest of each
/// label is compared), crops to `from_x..` and compares with
/// `tests/snapshots/NAME.png`; each `loose` node (label, image, allowed
/// pixels) is compared on its own.
fn snapshot(
    h: &mut Harness<'static, LiveWindow>,
    name: &str,
    changing: &[&str],
    from_x: f32,
    max_failed_pixels: usize,
    loose: &[(&str, &str, usize)],
) {
    let mut rects = Vec::new();
    for text in changing {
        let found: Vec<(String, egui::Rect)> =
            h.query_all_by_label_contains(text).map(|n| (n.accesskit_node().label().or_else(|| n.accesskit_node().value()).unwrap_or_default(), n.rect())).collect();
        assert!(!found.is_empty(), "nothing labelled '{text}' to mask in {name}");
        for (label, rect) in found {
            assert!(label.contains(text), "{name}: the node found for '{text}' reads {label:?}");
            let font = style_of(&label).resolve(&h.ctx.global_style());
            let width = |t: &str| h.ctx.fonts_mut(|f| f.layout_no_wrap(t.to_string(), font.clone(), egui::Color32::WHITE).size().x);
            // A label starts at its rect's left (a truncated one is cut at
            // its right), or sits centred in a wider cell (the status bar's).
            let full = width(&label);
            let x0 = if full < rect.width() - 1.0 { rect.center().x - full / 2.0 } else { rect.min.x };
            for span in changing_spans(&label) {
                let (a, b) = (x0 + width(&label[..span.start]), x0 + width(&label[..span.end]));
                rects.push(egui::Rect::from_x_y_ranges(a - 1.0..=b + 1.0, rect.y_range()));
            }
        }
    }
    let mut image = h.render().expect("render the window (wgpu on Mesa)");
    let ppp = h.ctx.pixels_per_point();
    for r in rects {
        let r = r.expand2(egui::vec2(0.0, 2.0));
        let (x0, y0) = ((r.min.x * ppp).max(0.0) as u32, (r.min.y * ppp).max(0.0) as u32);
        let (x1, y1) = (((r.max.x * ppp).ceil() as u32).min(image.width()), ((r.max.y * ppp) as u32).min(image.height()));
        for y in y0..y1 {
            for x in x0..x1 {
                image.put_pixel(x, y, MASK);
            }
        }
    }
    // A picture that differs a little by nature (decoded video) is compared
    // on its own, with its own allowance, and painted over in the rest: a
    // loose allowance for the whole would let a changed text through.
    for (label, own_name, allowance) in loose {
        let r = h.get_by_label(label).rect();
        let (x0, y0) = ((r.min.x * ppp).max(0.0) as u32, (r.min.y * ppp).max(0.0) as u32);
        let (x1, y1) = (((r.max.x * ppp).ceil() as u32).min(image.width()), ((r.max.y * ppp).ceil() as u32).min(image.height()));
        let picture = image::imageops::crop_imm(&image, x0, y0, x1 - x0, y1 - y0).to_image();
        let options = SnapshotOptions::new().max_failed_pixels(*allowance);
        if let Err(e) = egui_kittest::try_image_snapshot_options(&picture, *own_name, &options) {
            panic!("{own_name}: {e}");
        }
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
fn the_masks_cover_the_ports_and_the_figures_only() {
    let spans = |l: &str| changing_spans(l).into_iter().map(|r| l[r].to_string()).collect::<Vec<_>>();
    assert_eq!(spans("rtmp://127.0.0.1:41234/live/rehearsal"), ["41234"]);
    assert_eq!(spans("http://127.0.0.1:41235/live/rehearsal.flv"), ["41235"]);
    assert_eq!(spans("live/rehearsal: 127.0.0.1:50001, 2487 kbit/s in, 1 player(s)"), ["50001", "2487 kbit/s in, 1 player(s)"]);
    assert_eq!(spans("Viewer: glass-to-glass 187 ms"), ["187 ms"]);
    assert_eq!(spans("CPU 12 %"), ["12 %"]);
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
    snapshot(&mut h, "main_window_first_run", &["CPU ", "Memory "], 0.0, 40, &[]);
}

#[test]
fn the_profile_editor() {
    let dir = TestDir::new("snap-editor");
    let mut h = app(&dir, ServerConfig::default());
    step_until(&mut h, "first run", |s, h| matches!(s.sources, SourcesState::Open { .. }) && h.query_by_label("Add a destination").is_some());
    h.get_by_label("Add a destination").click();
    step_until(&mut h, "the editor open", |_, h| h.query_by_label("Stream key").is_some() && preview_at_shown_size(h));
    snapshot(&mut h, "profile_editor", &["CPU ", "Memory "], 0.0, 40, &[]);
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
        40,
        // The viewer's picture is decoded H.264 of the still: a few hundred
        // of its ~70 000 pixels differ from run to run (seen: up to 152).
        &[("What a viewer of the local server sees", "server_panel_viewer_picture", 600)],
    );
}
