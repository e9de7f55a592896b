//! The window's own logic, with no peer at all: the real `TallyApp`
//! against the scripted engine (`scripted.rs`), read and driven through its
//! accessibility tree. Each test sets the snapshot the window draws, steps
//! a frame, and reads what a person (or a screen reader) would — or
//! presses what a person would and reads back the commands the window sent.

use crate::scripted::ScriptedEngine;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::config::Profile;
use tally::engine::{BroadcastCommand, BroadcastState, Command, EngineState, OutputSnapshot, ProfilesCommand, ProfilesState, SessionFormat, SourcesCommand, SourcesState};
use tally::net::{FailureKind, OutputState};
use tally::pipeline::{BroadcastSummary, OutputFailure, OutputKind, OutputReport, OutputStats, RenditionStats, Stats};
use tally::ui::TallyApp;

/// The window on `engine`, at its default size (`ui::run`).
fn window(engine: &Arc<ScriptedEngine>) -> Harness<'static, TallyApp> {
    let app = TallyApp::new(engine.clone());
    Harness::builder().with_size(egui::vec2(1100.0, 760.0)).build_ui_state(|ui, app: &mut TallyApp| app.main_ui(ui), app)
}

/// Sets `state` and draws the frames after it.
fn show(h: &mut Harness<'static, TallyApp>, engine: &ScriptedEngine, state: EngineState) {
    engine.set_state(state);
    h.run_steps(2);
}

/// An instant `secs` ago (the broadcast's start for a clock that reads `secs`).
fn ago(secs: u64) -> Instant {
    Instant::now().checked_sub(Duration::from_secs(secs)).expect("the clock has run that long")
}

fn output(id: &str, state: OutputState) -> OutputSnapshot {
    let kind = if id == "rec" { OutputKind::Record } else { OutputKind::Publish };
    OutputSnapshot { id: id.into(), name: format!("{id} (key redacted)"), kind, state, since: Instant::now() }
}

/// A broadcast running since `since` with these outputs.
fn running(since: Instant, outputs: Vec<OutputSnapshot>) -> EngineState {
    EngineState { broadcast: BroadcastState::Running { since }, outputs, ..idle() }
}

/// The capture session open, one profile saved, nothing going out.
fn idle() -> EngineState {
    EngineState {
        profiles: ProfilesState::Loaded { profiles: vec![Profile::named("Show")], last_used: None },
        sources: SourcesState::Open {
            video: "test pattern".into(),
            audio: "silence".into(),
            format: SessionFormat { width: 1280, height: 720, fps: 30 },
            hidden: false,
            muted: false,
            scene: None,
        },
        ..EngineState::default()
    }
}

fn ended(failure: Option<&str>) -> EngineState {
    let report = OutputReport {
        id: "yt".into(),
        name: "yt".into(),
        kind: OutputKind::Publish,
        error: failure.map(|m| OutputFailure { kind: FailureKind::Rejected, is_final: true, message: m.into() }),
        bytes_out: 1000,
    };
    let summary = BroadcastSummary { outputs: vec![report], stats: Stats::default(), pipeline_errors: Vec::new() };
    EngineState { broadcast: BroadcastState::Ended(Arc::new(summary)), ..idle() }
}

/// What a node says (a label's text is its value in the tree).
fn text_of(n: &egui_kittest::Node<'_>) -> Option<String> {
    n.accesskit_node().label().or_else(|| n.accesskit_node().value())
}

/// The light's words, as the window shows them: exactly one label starting so.
fn light(h: &Harness<'static, TallyApp>, starts: &str) -> String {
    let found: Vec<String> = h.query_all_by_label_contains(starts).filter_map(|n| text_of(&n)).filter(|l| l.starts_with(starts)).collect();
    assert_eq!(found.len(), 1, "one light reading '{starts}…': {found:?}");
    found[0].clone()
}

#[test]
fn the_light_shows_each_state_of_the_broadcast() {
    let engine = ScriptedEngine::with_state(idle());
    let mut h = window(&engine);
    h.run_steps(2);
    light(&h, "Off air");
    h.get_by_label("Go Live");

    show(&mut h, &engine, EngineState { broadcast: BroadcastState::Starting, ..idle() });
    light(&h, "Connecting…");
    h.get_by_label("End Stream");

    // Running, but a destination still connects: not on air yet.
    show(&mut h, &engine, running(ago(3), vec![output("yt", OutputState::Live), output("tw", OutputState::Connecting)]));
    light(&h, "Connecting…");

    // Live, with its clock: 1 h 2 min 5 s since the start.
    show(&mut h, &engine, running(ago(3725), vec![output("yt", OutputState::Live), output("tw", OutputState::Live)]));
    assert_eq!(light(&h, "LIVE"), "LIVE 01:02:05");

    let next_try = Instant::now() + Duration::from_secs(4);
    show(&mut h, &engine, running(ago(60), vec![output("yt", OutputState::Live), output("tw", OutputState::Reconnecting { attempt: 2, next_try })]));
    let reconnecting = light(&h, "Reconnecting");
    assert!(reconnecting.starts_with("Reconnecting (attempt 2, next try in "), "{reconnecting}");

    // Every destination failed: the light says why.
    let bad_key = OutputState::failed(FailureKind::Rejected, true, "publish rejected: bad stream key");
    show(&mut h, &engine, running(ago(5), vec![output("yt", bad_key)]));
    assert_eq!(light(&h, "Failed"), "Failed: publish rejected: bad stream key");

    show(&mut h, &engine, EngineState { broadcast: BroadcastState::Failed { message: "no camera and no test pattern".into() }, ..idle() });
    assert_eq!(light(&h, "Failed"), "Failed: no camera and no test pattern");
    h.get_by_label("Go Live");

    show(&mut h, &engine, EngineState { broadcast: BroadcastState::Stopping, ..idle() });
    light(&h, "Ending…");

    // Ended: off air when every output ended cleanly, the reason when one did not.
    show(&mut h, &engine, ended(None));
    light(&h, "Off air");
    show(&mut h, &engine, ended(Some("the server closed the connection")));
    assert_eq!(light(&h, "Failed"), "Failed: the server closed the connection");
}

#[test]
fn each_destination_has_a_row_with_its_state_and_figures_and_a_failed_one_a_retry() {
    let engine = ScriptedEngine::with_state(idle());
    let mut h = window(&engine);
    let next_try = Instant::now() + Duration::from_secs(30);
    engine.set_stats(Stats {
        renditions: vec![RenditionStats {
            id: "r1".into(),
            width: 1280,
            height: 720,
            fps_target: 30,
            target_kbps: 2500,
            bitrate_kbps: 2500,
            outputs: vec!["yt".into(), "rec".into()],
            ..Default::default()
        }],
        outputs: vec![
            OutputStats { id: "yt".into(), rendition: "r1".into(), kbps_out: 2512.4, queue_ms: 120, dropped_frames: 3, reconnects: 1, ..Default::default() },
            OutputStats { id: "rec".into(), rendition: "r1".into(), kbps_out: 2490.0, queue_ms: 0, ..Default::default() },
        ],
        ..Default::default()
    });
    show(
        &mut h,
        &engine,
        running(
            ago(10),
            vec![
                output("yt", OutputState::Live),
                output("tw", OutputState::Reconnecting { attempt: 3, next_try }),
                output("rec", OutputState::failed(FailureKind::File, true, "disk full")),
            ],
        ),
    );
    for head in ["Destination", "State", "Video", "kbit/s", "Queue", "Dropped", "Reconnects"] {
        h.get_by_label(head);
    }
    // Each row: its id, its state, then its figures.
    for id in ["yt", "tw", "rec"] {
        h.get_by_label(id);
    }
    h.get_by_label("live");
    let tw = text_of(&h.get_by_label_contains("reconnecting (attempt 3 in")).unwrap_or_default();
    assert!(tw.starts_with("reconnecting (attempt 3 in ") && tw.ends_with("s)"), "{tw}");
    h.get_by_label("failed: disk full");
    h.get_by_label("2512");
    h.get_by_label("120 ms");
    h.get_by_label("3");
    assert_eq!(h.query_all_by_label("1280x720 · 2500k").count(), 2, "yt and rec share the one encode");
    // tw has no figures yet: dashes, not zeros.
    assert!(h.query_all_by_label("–").count() >= 5, "the reconnecting row's empty cells");

    // Only the failed one can be retried, and Retry asks for just it.
    assert!(h.query_by_label("Retry yt").is_none() && h.query_by_label("Retry tw").is_none());
    engine.take_sent();
    h.get_by_label("Retry rec").click();
    h.run_steps(2);
    let sent = engine.take_sent();
    assert!(matches!(sent.as_slice(), [Command::Broadcast(BroadcastCommand::RetryOutput(id))] if id == "rec"), "{sent:?}");
}

#[test]
fn the_editor_refuses_twitch_at_8000_kbit_s() {
    let first_run = EngineState { profiles: ProfilesState::Loaded { profiles: Vec::new(), last_used: None }, ..idle() };
    let engine = ScriptedEngine::with_state(first_run);
    let mut h = window(&engine);
    h.run_steps(2);
    h.get_by_label("Add a destination").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::Role::ComboBox, "Service").click();
    h.run_steps(2);
    h.get_by_label("Twitch").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::Role::PasswordInput, "Stream key").set_text_value_accesskit("live_123456789_abcdefghijklmnop");
    h.run_steps(2);
    let bitrate = |h: &Harness<'static, TallyApp>, kbps: f64| h.get_by_role_and_label(egui::Role::SpinButton, "Video bitrate").set_value_accesskit(kbps);
    // Within the limit it may be saved: what refuses below is the bitrate.
    bitrate(&h, 6000.0);
    h.run_steps(2);
    assert!(!h.get_by_label("Save profile").accesskit_node().is_disabled(), "Twitch at 6000 kbit/s is within its limit");

    bitrate(&h, 8000.0);
    h.run_steps(2);
    h.get_by_label_contains("Twitch accepts at most 6000 kbit/s of video (asked 8000)");
    assert!(h.get_by_label("Save profile").accesskit_node().is_disabled(), "Save is refused over Twitch's limit");
    engine.take_sent();
    h.get_by_label("Save profile").click();
    h.run_steps(2);
    let sent = engine.take_sent();
    assert!(!sent.iter().any(|c| matches!(c, Command::Profiles(ProfilesCommand::Save { .. }))), "a profile over the limit was sent to be saved: {sent:?}");
    h.get_by_label("Stream key");
}

/// Presses `key` with Ctrl (Cmd on macOS) and returns what the window sent for it.
fn press(h: &mut Harness<'static, TallyApp>, engine: &ScriptedEngine, key: egui::Key) -> Vec<Command> {
    h.run_steps(2);
    engine.take_sent();
    h.key_press_modifiers(egui::Modifiers::COMMAND, key);
    h.run_steps(2);
    engine.take_sent()
}

#[test]
fn every_shortcut_sends_its_command_and_only_when_it_applies() {
    use egui::Key;
    let engine = ScriptedEngine::with_state(idle());
    let mut h = window(&engine);

    let sent = press(&mut h, &engine, Key::L);
    assert!(matches!(sent.as_slice(), [Command::Broadcast(BroadcastCommand::GoLive(r))] if r.profile.as_deref() == Some("Show")), "Ctrl+L: {sent:?}");
    let sent = press(&mut h, &engine, Key::E);
    assert!(sent.is_empty(), "Ctrl+E off air ends nothing: {sent:?}");
    let sent = press(&mut h, &engine, Key::R);
    assert!(matches!(sent.as_slice(), [Command::Broadcast(BroadcastCommand::Rehearse { stream, .. })] if stream == "rehearsal"), "Ctrl+R: {sent:?}");
    let sent = press(&mut h, &engine, Key::M);
    assert!(matches!(sent.as_slice(), [Command::Sources(SourcesCommand::SetMute(true))]), "Ctrl+M: {sent:?}");
    let sent = press(&mut h, &engine, Key::H);
    assert!(matches!(sent.as_slice(), [Command::Sources(SourcesCommand::SetHideCamera(true))]), "Ctrl+H: {sent:?}");

    // Muted and hidden: the same keys undo it.
    let mut undone = idle();
    if let SourcesState::Open { hidden, muted, .. } = &mut undone.sources {
        (*hidden, *muted) = (true, true);
    }
    engine.set_state(undone);
    let sent = press(&mut h, &engine, Key::M);
    assert!(matches!(sent.as_slice(), [Command::Sources(SourcesCommand::SetMute(false))]), "Ctrl+M when muted: {sent:?}");
    let sent = press(&mut h, &engine, Key::H);
    assert!(matches!(sent.as_slice(), [Command::Sources(SourcesCommand::SetHideCamera(false))]), "Ctrl+H when hidden: {sent:?}");

    // Live: Ctrl+E ends it; going live or rehearsing again is not asked.
    engine.set_state(running(ago(5), vec![output("yt", OutputState::Live)]));
    let sent = press(&mut h, &engine, Key::E);
    assert!(matches!(sent.as_slice(), [Command::Broadcast(BroadcastCommand::Stop)]), "Ctrl+E live: {sent:?}");
    let sent = press(&mut h, &engine, Key::L);
    assert!(sent.is_empty(), "Ctrl+L while live: {sent:?}");
    let sent = press(&mut h, &engine, Key::R);
    assert!(sent.is_empty(), "Ctrl+R while live: {sent:?}");
}

#[test]
fn the_window_asks_once_for_what_it_shows_then_is_calm_until_woken() {
    let engine = ScriptedEngine::with_state(idle());
    let mut h = window(&engine);
    h.step();
    assert!(engine.has_waker(), "the first frame hands the engine its waker");
    let first = engine.take_sent();
    assert!(matches!(first.as_slice(), [Command::Sources(SourcesCommand::SetPreview(Some(_))), Command::Profiles(ProfilesCommand::Load), Command::Sources(SourcesCommand::WatchDevices(true)), ..]), "{first:?}");
    // Nothing changes: the window settles (no frame asks for the next).
    h.try_run().expect("an idle window stops repainting");
    let settled = engine.take_sent();
    assert!(!settled.iter().any(|c| matches!(c, Command::Profiles(ProfilesCommand::Load) | Command::Sources(SourcesCommand::WatchDevices(_)))), "asked again: {settled:?}");
    assert!(settled.iter().filter(|c| matches!(c, Command::Sources(SourcesCommand::Open { .. }))).count() <= 1, "opened again and again: {settled:?}");
    // A change wakes it: the engine calls the waker, and the next frame shows it.
    engine.set_state(EngineState { broadcast: BroadcastState::Starting, ..idle() });
    assert!(h.ctx.has_requested_repaint(), "the waker asked for a frame");
    h.try_run().expect("settles again");
    light(&h, "Connecting…");
}
