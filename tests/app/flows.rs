//! The window as a person uses it, driven through its accessibility tree
//! (egui_kittest): the real `TallyApp` on a real engine, against real peers
//! (the in-process server, nginx-rtmp, ffmpeg as the viewer). Between
//! frames the tests wait for the engine's next state change, never a sleep.

use crate::common;

use common::players::received_from_file;
use common::*;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::time::{Duration, Instant};
use tally::engine::{BroadcastState, Engine, EngineOptions, EngineState, ProfilesState, ServerState, SourcesState, ViewerState};
use tally::net::OutputState;
use tally::net::server::ServerConfig;
use crate::live_window::LiveWindow;

/// Generous: each of these happens in well under a second normally.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

fn app(dir: &TestDir) -> Harness<'static, LiveWindow> {
    app_with(dir, None)
}

/// `app` with the settings a previous run stored.
fn app_with(dir: &TestDir, settings: Option<&dyn eframe::Storage>) -> Harness<'static, LiveWindow> {
    app_in(dir.path(), settings)
}

/// `app_with` on the configuration directory `config_dir`.
fn app_in(config_dir: &std::path::Path, settings: Option<&dyn eframe::Storage>) -> Harness<'static, LiveWindow> {
    let server = ServerConfig {
        rtmp_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    let engine = Engine::start(EngineOptions { config_dir: Some(config_dir.to_path_buf()), server, ..EngineOptions::default() }).unwrap();
    let mut app = LiveWindow::new(engine);
    if let Some(settings) = settings {
        app.app.restore(settings);
    }
    Harness::builder().with_size(egui::vec2(1100.0, 760.0)).build_ui_state(|ui, w: &mut LiveWindow| w.ui(ui), app)
}

/// Draws frames until the engine's state satisfies `pred`, waiting for its
/// next change between frames; the state, or a panic naming the last one.
fn step_until(h: &mut Harness<'static, LiveWindow>, what: &str, mut pred: impl FnMut(&EngineState) -> bool) -> EngineState {
    let deadline = Instant::now() + STATE_TIMEOUT;
    let mut rx = h.state().engine().state();
    loop {
        h.step();
        let now = rx.borrow_and_update().clone();
        if pred(&now) {
            h.step();
            return now;
        }
        if Instant::now() > deadline {
            panic!("{what}: not reached; last state: {now:?}");
        }
        let runtime = h.state().engine().runtime().clone();
        let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_millis(200), rx.changed()).await });
    }
}

fn rtmp_addr(state: &EngineState) -> std::net::SocketAddr {
    match state.server {
        ServerState::Running { rtmp, .. } => rtmp,
        ref other => panic!("the local server is not running: {other:?}"),
    }
}

#[test]
fn first_run_rehearse_then_end_stream() {
    let dir = TestDir::new("app-first-run");
    let mut h = app(&dir);
    step_until(&mut h, "profiles read", |s| matches!(s.profiles, ProfilesState::Loaded { .. }));
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    // No profile yet: the window says what to do instead of an empty list.
    h.get_by_label("Welcome to Tally");
    assert!(h.get_by_label("Go Live").accesskit_node().is_disabled(), "nothing to go live to yet");
    h.get_by_label("Rehearse locally").click();
    let live = step_until(&mut h, "rehearsal live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    assert_eq!(live.outputs[0].id, "rehearsal/rehearsal", "{live:?}");
    h.get_by_label_contains("LIVE 00:");
    h.get_by_label("End Stream");
    assert!(h.query_by_label("Welcome to Tally").is_none(), "the first-run panel steps aside while live");

    // The viewer preview shows what the in-process server relays: decoded
    // pictures of the stream, with the latency measured on them.
    let watching = step_until(&mut h, "viewer playing", |s| matches!(s.viewer, ViewerState::Playing { .. }));
    let mut frames = h.state().engine().viewer();
    let runtime = h.state().engine().runtime().clone();
    let decoded = runtime
        .block_on(async { tokio::time::timeout(STATE_TIMEOUT, frames.wait_for(|f| f.as_ref().is_some_and(|f| f.decoded >= 30 && f.latency.is_some()))).await.map(|f| f.map(|f| f.as_ref().map(|f| (f.decoded, f.latency, f.picture.width, f.picture.height)))) })
        .expect("30 pictures decoded from the server")
        .expect("the viewer feed");
    let Some((_, Some(latency), w, hgt)) = decoded else { panic!("no viewer picture: {decoded:?} ({watching:?})") };
    assert_eq!((w, hgt), (640, 360), "the stream's 16:9 picture fitted into the panel");
    eprintln!("viewer preview: glass-to-glass {} ms", latency.as_millis());
    h.step();
    h.get_by_label_contains("glass-to-glass");
    h.get_by_label("What a viewer of the local server sees");

    // The charts, from the 1 Hz stats.
    h.get_by_label("Show charts").click();
    let mut stats = h.state().engine().stats();
    runtime.block_on(async { tokio::time::timeout(STATE_TIMEOUT, stats.wait_for(|s| s.media_secs >= 2.0)).await.map(|_| ()) }).expect("stats");
    h.run_steps(2);
    h.get_by_label("Bitrate out (kbit/s)");
    h.get_by_label("Queue (ms)");

    // A viewer of the local server sees what the window previews.
    let out = dir.join("viewer.flv");
    let viewer = ffmpeg_read(&format!("rtmp://{}/live/rehearsal", rtmp_addr(&live)), 3.0, &out);
    viewer.wait_success(Duration::from_secs(60));
    received_from_file("ffmpeg", &out).assert_ok(1280, 720, 30.0, 2.0);

    h.get_by_label("End Stream").click();
    let ended = step_until(&mut h, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if s.all_ok()), "{ended:?}");
    h.get_by_label("Off air");
    h.get_by_label("Rehearse locally");
}

#[test]
fn the_keyboard_rehearses_mutes_hides_and_ends() {
    let dir = TestDir::new("app-keys");
    let mut h = app(&dir);
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::R);
    step_until(&mut h, "rehearsal live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::M);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::H);
    step_until(&mut h, "muted and hidden", |s| matches!(s.sources, SourcesState::Open { muted: true, hidden: true, .. }));
    let toggled = |h: &Harness<'static, LiveWindow>, label: &str| format!("{:?}", h.get_by_label(label).accesskit_node().toggled());
    assert_eq!(toggled(&h, "Mute microphone"), "Some(True)", "the toggle shows the state");
    assert_eq!(toggled(&h, "Hide camera"), "Some(True)");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::M);
    step_until(&mut h, "unmuted", |s| matches!(s.sources, SourcesState::Open { muted: false, hidden: true, .. }));
    assert_eq!(toggled(&h, "Mute microphone"), "Some(False)");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    step_until(&mut h, "ended", |s| s.broadcast.is_over());
}

fn text_input<'h>(h: &'h Harness<'static, LiveWindow>, label: &'h str) -> egui_kittest::Node<'h> {
    h.get_by_role_and_label(egui::Role::TextInput, label)
}

/// Opens the editor on a new profile and fills its destination: `nginx`'s
/// `live` application and `key`.
fn new_profile_with_destination(h: &mut Harness<'static, LiveWindow>, nginx: &Nginx, key: &str) {
    new_profile_with_server(h, &format!("rtmp://127.0.0.1:{}/live", nginx.port()), key);
}

/// Opens the editor on a new profile and fills its destination: `server`
/// and `key`.
fn new_profile_with_server(h: &mut Harness<'static, LiveWindow>, server: &str, key: &str) {
    step_until(h, "profiles read", |s| matches!(s.profiles, ProfilesState::Loaded { .. }));
    h.get_by_label("Add a destination").click();
    h.run_steps(2);
    text_input(h, "Server").set_text_value_accesskit(server);
    h.run_steps(2);
    h.get_by_role_and_label(egui::Role::PasswordInput, "Stream key").set_text_value_accesskit(key);
    h.run_steps(2);
}

#[test]
fn a_profile_made_in_the_editor_is_checked_goes_live_and_a_bad_key_fails_with_its_reason() {
    let dir = TestDir::new("app-editor");
    let nginx = NginxConfig::new().on_publish_allow(&["good-stream"]).start();
    let mut h = app(&dir);
    new_profile_with_destination(&mut h, &nginx, "good-stream");
    h.get_by_label("Save profile").click();
    let saved = step_until(&mut h, "saved", |s| matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if !profiles.is_empty()));
    assert!(saved.refused.is_none(), "{saved:?}");
    let toml = std::fs::read_to_string(dir.join("profiles.toml")).unwrap();
    assert!(toml.contains("My stream") && !toml.contains("good-stream"), "the key is kept out of the profile file:\n{toml}");

    // Check: every step passes against nginx-rtmp, nothing is published.
    h.get_by_label("Check").click();
    let checked = step_until(&mut h, "checked", |s| matches!(s.check, tally::engine::CheckState::Done(_)));
    let tally::engine::CheckState::Done(reports) = &checked.check else { unreachable!() };
    assert!(reports.len() == 1 && reports[0].ok, "{reports:?}");
    h.get_by_label_contains(": passed");
    assert!(!nginx.has_publisher("good-stream"), "a check publishes nothing");

    // Go Live: the destination goes live and nginx receives the stream.
    h.get_by_label("Go Live").click();
    step_until(&mut h, "live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    assert!(wait_until(STATE_TIMEOUT, || nginx.has_publisher("good-stream")), "{}", nginx.diagnostics());
    let out = dir.join("nginx-viewer.flv");
    // nginx-rtmp has no GOP cache: the viewer starts at the next keyframe (2 s GOPs).
    let viewer = ffmpeg_read(&nginx.url("good-stream"), 4.0, &out);
    viewer.wait_success(Duration::from_secs(60));
    received_from_file("ffmpeg", &out).assert_ok(1280, 720, 30.0, 1.5);
    h.get_by_label("End Stream").click();
    step_until(&mut h, "ended", |s| s.broadcast.is_over());

    // A wrong key: the destination fails, finally, and the window says why.
    h.get_by_label("Edit profile").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::Role::PasswordInput, "Stream key").set_text_value_accesskit("wrong-key");
    h.run_steps(2);
    h.get_by_label("Save profile").click();
    h.run_steps(2);
    // Commands are taken in order: this go-live plans with the key just saved.
    h.get_by_label("Go Live").click();
    let failed = step_until(&mut h, "failed", |s| s.outputs.first().is_some_and(|o| matches!(o.state, OutputState::Failed { .. })));
    assert!(matches!(failed.outputs.first().map(|o| &o.state), Some(OutputState::Failed { is_final: true, .. })), "{failed:?}");
    // On the light and in the destination's row.
    assert!(h.query_all_by_label_contains("in answer to publish").count() >= 2, "the reason is shown");
    assert!(h.query_by_label_contains("wrong-key").is_none(), "the key is shown nowhere");
}

#[test]
fn a_destination_given_its_own_size_in_the_editor_is_sent_at_that_size() {
    let dir = TestDir::new("app-own-video");
    let nginx = NginxConfig::new().start();
    let mut h = app(&dir);
    new_profile_with_destination(&mut h, &nginx, "small");
    h.get_by_label("Own video settings for main").click();
    h.run_steps(2);
    h.get_by_label("Video size for main").click();
    h.run_steps(2);
    h.get_by_label("854x480").click();
    h.run_steps(2);
    h.get_by_label("Save profile").click();
    step_until(&mut h, "saved", |s| matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if !profiles.is_empty()));
    let toml = std::fs::read_to_string(dir.join("profiles.toml")).unwrap();
    assert!(toml.contains("size = \"854x480\""), "the destination's own size is saved:\n{toml}");

    h.get_by_label("Go Live").click();
    step_until(&mut h, "live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    // Its row says what it gets, once the stats have it.
    let mut stats = h.state().engine().stats();
    h.state().engine().runtime().block_on(async {
        tokio::time::timeout(STATE_TIMEOUT, stats.wait_for(|s| s.outputs.first().is_some_and(|o| !o.rendition.is_empty()))).await.map(|_| ())
    })
    .expect("stats with the rendition");
    h.run_steps(3);
    h.get_by_label_contains("854x480 · 2500k");
    let out = dir.join("nginx-viewer.flv");
    let viewer = ffmpeg_read(&nginx.url("small"), 3.0, &out);
    viewer.wait_success(Duration::from_secs(60));
    received_from_file("ffmpeg", &out).assert_ok(854, 480, 30.0, 1.5);
    h.get_by_label("End Stream").click();
    step_until(&mut h, "ended", |s| s.broadcast.is_over());
}

#[test]
fn the_pickers_switch_the_sources_and_the_meters_follow() {
    let dir = TestDir::new("app-devices");
    let clip = dir.join("clip.y4m");
    let made = std::process::Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "2", "-pix_fmt", "yuv420p", "-y"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let mut h = app(&dir);
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    // The microphone picker lists what the engine found, and the synthetic sources.
    h.get_by_label("Microphone").click();
    h.run_steps(2);
    h.get_by_label("Test tone").click();
    step_until(&mut h, "tone", |s| matches!(&s.sources, SourcesState::Open { audio, .. } if audio.contains("tone") || audio.contains("sine")));
    let mut levels = h.state().engine().levels();
    let runtime = h.state().engine().runtime().clone();
    runtime
        .block_on(async { tokio::time::timeout(STATE_TIMEOUT, levels.wait_for(|l| l.peak_dbfs.first().is_some_and(|&p| p > -30.0))).await.map(|_| ()) })
        .expect("the meters show the tone");
    h.step();
    assert!(h.query_all_by_label_contains("RMS").count() >= 2, "a meter per channel, labelled with its figures");
    // A Y4M file instead of the camera.
    h.get_by_role_and_label(egui::Role::TextInput, "or a Y4M file").set_text_value_accesskit(&clip.display().to_string());
    h.run_steps(2);
    h.get_by_label("Use Y4M file").click();
    step_until(&mut h, "y4m", |s| matches!(&s.sources, SourcesState::Open { video, .. } if video.contains("clip.y4m")));
}

/// The RMS figure of each meter, as a screen reader reads it.
fn meter_rms(h: &Harness<'static, LiveWindow>) -> Vec<f32> {
    h.query_all_by_label_contains("RMS")
        .filter_map(|n| n.accesskit_node().label())
        .filter_map(|l| l.split("RMS ").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok()))
        .collect()
}

/// Draws frames until the meters as drawn satisfy `pred`, waiting for the
/// next meter reading between frames.
fn step_until_meters(h: &mut Harness<'static, LiveWindow>, what: &str, pred: impl Fn(&[f32]) -> bool) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    let mut levels = h.state().engine().levels();
    let runtime = h.state().engine().runtime().clone();
    loop {
        h.step();
        let rms = meter_rms(h);
        if rms.len() == 2 && pred(&rms) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: the meters show {rms:?}");
        let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_millis(200), levels.changed()).await });
    }
}

#[test]
fn mute_shows_silence_on_the_meters_and_in_what_the_server_relays() {
    let dir = TestDir::new("app-mute");
    let mut h = app(&dir);
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    h.get_by_label("Microphone").click();
    h.run_steps(2);
    h.get_by_label("Test tone").click();
    step_until_meters(&mut h, "the tone on the meters", |rms| rms.iter().all(|&r| r > -30.0));
    h.get_by_label("Rehearse").click();
    let live = step_until(&mut h, "rehearsal live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    let out = dir.join("viewer.flv");
    let viewer = ffmpeg_read(&format!("rtmp://{}/live/rehearsal", rtmp_addr(&live)), 7.0, &out);
    let mut stats = h.state().engine().stats();
    let runtime = h.state().engine().runtime().clone();
    runtime.block_on(async { tokio::time::timeout(STATE_TIMEOUT, stats.wait_for(|s| s.media_secs >= 3.0)).await.map(|_| ()) }).expect("3 s live");
    h.get_by_label("Mute microphone").click();
    step_until(&mut h, "muted", |s| matches!(s.sources, SourcesState::Open { muted: true, .. }));
    // Silence on the meters (the capture path's floor), while still live.
    step_until_meters(&mut h, "silence on the meters", |rms| rms.iter().all(|&r| r <= -100.0));
    assert_eq!(format!("{:?}", h.get_by_label("Mute microphone").accesskit_node().toggled()), "Some(True)");
    viewer.wait_success(Duration::from_secs(60));
    h.get_by_label("End Stream").click();
    step_until(&mut h, "ended", |s| s.broadcast.is_over());
    // What the server relayed: the tone, then silence.
    let before = common::media::rms_dbfs(&common::media::decode_mono(&out, 0.3, 0.7, 16000));
    let after = common::media::rms_dbfs(&common::media::decode_mono(&out, 6.0, 0.8, 16000));
    assert!(before > -30.0, "the tone before muting: {before:.1} dBFS");
    assert!(after < -80.0, "silence after muting: {after:.1} dBFS");
}

fn close_requested(h: &mut Harness<'static, LiveWindow>) {
    if let Some(v) = h.input_mut().viewports.get_mut(&egui::ViewportId::ROOT) {
        v.events.push(egui::ViewportEvent::Close);
    }
    h.step();
}

fn asked(h: &Harness<'static, LiveWindow>, command: &egui::ViewportCommand) -> bool {
    h.output().viewport_output.get(&egui::ViewportId::ROOT).is_some_and(|v| v.commands.contains(command))
}

#[test]
fn closing_while_live_asks_first_then_ends_the_stream_cleanly_and_closes() {
    let dir = TestDir::new("app-close");
    let mut h = app(&dir);
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    h.get_by_label("Rehearse").click();
    step_until(&mut h, "rehearsal live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
    close_requested(&mut h);
    assert!(asked(&h, &egui::ViewportCommand::CancelClose), "the close is held while live");
    h.step();
    h.get_by_label("You are live");
    h.get_by_label("Keep streaming").click();
    h.run_steps(2);
    assert!(h.query_by_label("You are live").is_none());
    assert!(h.state().engine().state().borrow().broadcast.is_active(), "still live");
    close_requested(&mut h);
    h.step();
    h.get_by_label("End stream and quit").click();
    let ended = step_until(&mut h, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if s.all_ok()), "{ended:?}");
    assert!(asked(&h, &egui::ViewportCommand::Close), "the window closes once the stream ended");
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Settings(std::collections::HashMap<String, String>);

impl eframe::Storage for Settings {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn the_chosen_microphone_and_the_panels_shown_are_kept_for_the_next_run() {
    let dir = TestDir::new("app-settings");
    let mut settings = Settings::default();
    {
        let mut h = app(&dir);
        step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
        h.get_by_label("Microphone").click();
        h.run_steps(2);
        h.get_by_label("Test tone").click();
        step_until(&mut h, "tone", |s| matches!(&s.sources, SourcesState::Open { audio, .. } if audio.contains("tone") || audio.contains("sine")));
        h.get_by_label("Show log").click();
        h.run_steps(2);
        h.state().app.save_settings(&mut settings);
    }
    let mut h = app_with(&dir, Some(&settings));
    step_until(&mut h, "the tone again", |s| matches!(&s.sources, SourcesState::Open { audio, .. } if audio.contains("tone") || audio.contains("sine")));
    assert_eq!(format!("{:?}", h.get_by_label("Show log").accesskit_node().toggled()), "Some(True)");
}

/// Marks the run of the camera test below that happens inside the
/// camera's namespace (the test re-executes its own binary there).
const CAMERA_INNER: &str = "TALLY_TEST_INSIDE_CAMERA_NAMESPACE";

/// The window with a V4L2 camera plugged in (`common::camera`: a device
/// node in a private mount namespace, nokhwa's real V4L2 code, a preload
/// driver): the picker lists it by name, choosing it opens it, and the
/// preview shows its picture — the camera's clip, which loops every
/// `CLIP_FRAMES` frames, told from the test pattern (whose numbers only
/// grow) by the frame numbers read back from the preview itself.
///
/// The engine runs in this process, so the process must be the one inside
/// the namespace with the driver loaded: the test runs itself again there.
#[test]
fn the_camera_picker_lists_a_v4l2_camera_and_the_preview_shows_its_picture() {
    use common::camera::{CAMERA_NAME, CLIP_FRAMES, CameraFormat, FakeCamera, Mode};
    const NAME: &str = "flows::the_camera_picker_lists_a_v4l2_camera_and_the_preview_shows_its_picture";
    if std::env::var_os(CAMERA_INNER).is_none() {
        let cam = FakeCamera::new("app-camera", &[Mode { format: CameraFormat::Yuyv, width: 1280, height: 720, fps: 30 }]);
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = cam.command(&exe, &["--exact", NAME, "--nocapture", "--test-threads", "1"]);
        cmd.env(CAMERA_INNER, "1");
        let inner = Proc::spawn("the test inside the camera's namespace", &mut cmd);
        let status = inner.wait_timeout(Duration::from_secs(180));
        let out = inner.stdout_text();
        assert!(
            status.is_some_and(|s| s.success()) && out.contains("test result: ok. 1 passed"),
            "the inner run failed ({status:?}):\n{}",
            inner.describe()
        );
        return;
    }

    let dir = TestDir::new("app-camera-inner");
    let mut h = app(&dir);
    step_until(&mut h, "preview open", |s| matches!(s.sources, SourcesState::Open { .. }));
    // The picker lists the camera by the name its driver gives.
    step_until(&mut h, "the camera listed", |s| s.devices.cameras.iter().any(|c| c.name == CAMERA_NAME));
    h.get_by_label("Camera").click();
    h.run_steps(2);
    h.get_by_label("Test pattern").click();
    step_until(&mut h, "the test pattern", |s| matches!(&s.sources, SourcesState::Open { video, .. } if video.contains("test")));
    h.get_by_label("Camera").click();
    h.run_steps(2);
    h.get_by_label(CAMERA_NAME).click();
    step_until(&mut h, "the camera chosen", |s| matches!(&s.sources, SourcesState::Open { video, .. } if video.contains(CAMERA_NAME)));

    // The preview at the camera's own size, so its frame numbers read back.
    let engine = h.state().engine();
    engine
        .send(tally::engine::SourcesCommand::SetPreview(Some(tally::session::PreviewRequest { width: 1280, height: 720, max_fps: 30 })))
        .expect("ask for a full-size preview");
    let pattern = tally::capture::TestPattern::new(1280, 720, 30).expect("pattern");
    let mut preview = engine.preview();
    let runtime = engine.runtime().clone();
    let mut numbers: Vec<u64> = Vec::new();
    let deadline = Instant::now() + STATE_TIMEOUT;
    // Until the clip has been seen to loop (a number below the one before)
    // after ten frames of it. The switch shows the camera's slate until its
    // first frame (and the previous source's last frame may still be the
    // preview's): the run of numbers starts after any frame without one.
    let mut slates = 0;
    while !numbers.windows(2).enumerate().any(|(i, p)| i >= 10 && p[1] < p[0]) {
        assert!(Instant::now() < deadline, "the preview never showed the camera's looping clip: {numbers:?}");
        let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_millis(500), preview.changed()).await });
        let Some(frame) = preview.borrow_and_update().clone() else { continue };
        if (frame.width, frame.height) != (1280, 720) {
            continue;
        }
        // Luma back from the preview's RGB (BT.709, limited range).
        let luma: Vec<u8> = frame
            .rgba
            .chunks_exact(4)
            .map(|p| (16.0 + 219.0 * (0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2])) / 255.0).round() as u8)
            .collect();
        match pattern.read_mark(&luma, 1280, 720) {
            tally::capture::FrameMark::Number(n) => {
                assert!(n < CLIP_FRAMES, "the preview shows frame {n}: not the camera's {CLIP_FRAMES}-frame clip");
                numbers.push(n);
            }
            tally::capture::FrameMark::Flash => {}
            tally::capture::FrameMark::Unreadable => {
                // Only the camera's slate (its dark grey) may stand in.
                let grey = luma.iter().step_by(13).filter(|&&v| (32..=48).contains(&v)).count();
                assert!(grey * 10 >= luma.len() / 13 * 7, "the preview shows neither the camera's clip nor its slate; seen {numbers:?}");
                slates += 1;
                assert!(slates <= 30, "the camera's slate for {slates} frames: its picture never came");
                numbers.clear();
            }
        }
    }
    eprintln!("the preview showed the camera's clip: {numbers:?}");
}

const KEYRING_INNER: &str = "TALLY_TEST_INSIDE_KEYRING_SESSION";

/// A key typed into the window's profile editor lands in the OS keyring
/// (GNOME Keyring unlocked on a private session bus, read back with
/// secret-tool), not in `keys.toml` nor the profile file, and Go Live finds
/// it there: nginx accepts only that key.
///
/// Tally chooses the keyring from its environment (the session bus), which
/// a test thread must not change for the whole binary: the test runs
/// itself again with the private session's environment, and the window's
/// flow runs there.
#[test]
fn a_key_typed_in_the_editor_is_kept_in_the_keyring_and_going_live_finds_it() {
    use common::keyring::PrivateKeyring;
    const NAME: &str = "flows::a_key_typed_in_the_editor_is_kept_in_the_keyring_and_going_live_finds_it";
    const KEY: &str = "live_EdItOr_KeYrInG_42";
    if let Some(server) = std::env::var_os(KEYRING_INNER) {
        let config = std::path::PathBuf::from(std::env::var_os("TALLY_TEST_CONFIG_DIR").expect("the outer run names the configuration"));
        let mut h = app_in(&config, None);
        new_profile_with_server(&mut h, &server.to_string_lossy(), KEY);
        h.get_by_label("Save profile").click();
        let saved = step_until(&mut h, "saved", |s| matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if !profiles.is_empty()));
        assert!(saved.refused.is_none(), "{saved:?}");
        h.get_by_label("Go Live").click();
        step_until(&mut h, "live", |s| s.outputs.first().is_some_and(|o| o.state == OutputState::Live));
        h.get_by_label("End Stream").click();
        step_until(&mut h, "ended", |s| s.broadcast.is_over());
        return;
    }

    let home = TestDir::new("app-keyring");
    let keyring = PrivateKeyring::unlocked(home.path());
    let nginx = NginxConfig::new().on_publish_allow(&[KEY]).start();
    let config = home.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env(KEYRING_INNER, format!("rtmp://127.0.0.1:{}/live", nginx.port()))
        .env("TALLY_TEST_CONFIG_DIR", &config)
        .env("HOME", home.path())
        .env("DBUS_SESSION_BUS_ADDRESS", &keyring.address)
        .env("XDG_RUNTIME_DIR", &keyring.runtime)
        .env_remove("TALLY_SECRET_STORE");
    let inner = Proc::spawn("the window's flow in the keyring's session", &mut cmd);
    let status = inner.wait_timeout(Duration::from_secs(180));
    assert!(
        status.is_some_and(|s| s.success()) && inner.stdout_text().contains("test result: ok. 1 passed"),
        "the inner run failed ({status:?}):\n{}",
        inner.describe()
    );

    let stored = keyring.tally_secrets();
    assert!(stored.contains(&format!("secret = {KEY}")), "the keyring holds:\n{stored}");
    assert!(!config.join("keys.toml").exists(), "a key file was written beside a working keyring");
    let profiles = std::fs::read_to_string(config.join("profiles.toml")).expect("the profile was saved");
    assert!(!profiles.contains(KEY), "the key is in the profile file:\n{profiles}");
    assert!(nginx.log_count(&format!("publish: name='{KEY}'")) >= 1, "nginx saw no publish with the key\n{}", nginx.diagnostics());
}
