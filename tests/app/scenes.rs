//! The scenes in the window, against the scripted engine (no peer): the
//! strip with the scene on air marked, switching by click and by Ctrl+1…9
//! (live too), the layout picker, hiding a layer, and arranging a layer by
//! dragging it on the preview, snapping included. Each test reads the
//! window through its accessibility tree and the commands it sent.

use crate::scripted::ScriptedEngine;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::sync::Arc;
use std::time::Instant;
use tally::compose::Rect;
use tally::compose::layout::{CORNER_CAMERA_SIZE, Corner, Layout};
use tally::config::{Profile, SceneCollection};
use tally::engine::{BroadcastState, Command, EngineState, ProfilesState, ScenesCommand, ScenesState, SessionFormat, SourcesState};
use tally::session::PreviewFrame;
use tally::session::scene::{Cast, MAX_FADE_MS, Scene, Transition};
use tally::ui::TallyApp;

const ASPECT: f32 = 16.0 / 9.0;

fn window(engine: &Arc<ScriptedEngine>) -> Harness<'static, TallyApp> {
    let app = TallyApp::new(engine.clone());
    Harness::builder().with_size(egui::vec2(1100.0, 760.0)).build_ui_state(|ui, app: &mut TallyApp| app.main_ui(ui), app)
}

/// The screen full frame with the camera in the bottom-right corner, as the layout picker makes it.
fn talk() -> Scene {
    Scene::from_layout("Talk", &Layout::ScreenCamera { corner: Corner::BottomRight, size: CORNER_CAMERA_SIZE }, &Cast::default(), ASPECT)
}

/// Three scenes, `on_air` on air in the open capture session, nothing going out.
fn with_scenes(on_air: &str) -> EngineState {
    let scenes = vec![
        Scene::from_layout("Camera", &Layout::Camera, &Cast::default(), ASPECT),
        talk(),
        Scene::from_layout("Be right back", &Layout::BeRightBack, &Cast::default(), ASPECT),
    ];
    let shown = scenes.iter().find(|s| s.name == on_air).cloned();
    EngineState {
        profiles: ProfilesState::Loaded { profiles: vec![Profile::named("Show")], last_used: None },
        sources: SourcesState::Open {
            video: "scene".into(),
            audio: "silence".into(),
            format: SessionFormat { width: 1280, height: 720, fps: 30 },
            hidden: false,
            muted: false,
            scene: shown,
        },
        scenes: ScenesState { collection: Some(SceneCollection { on_air: Some(on_air.into()), scenes }), message: None },
        ..EngineState::default()
    }
}

/// The window on `state`, settled, with a preview picture (grey, 16:9) and nothing sent yet.
fn settled(state: EngineState) -> (Arc<ScriptedEngine>, Harness<'static, TallyApp>) {
    let engine = ScriptedEngine::with_state(state);
    engine.set_preview(PreviewFrame { width: 64, height: 36, rgba: vec![90; 64 * 36 * 4], pts_us: 0, serial: 1 });
    let mut h = window(&engine);
    h.run_steps(3);
    engine.take_sent();
    (engine, h)
}

/// What the window sent about scenes (the preview's size and the like left out).
fn scene_commands(engine: &ScriptedEngine) -> Vec<ScenesCommand> {
    engine.take_sent().into_iter().filter_map(|c| if let Command::Scenes(s) = c { Some(s) } else { None }).collect()
}

fn label(n: &egui_kittest::Node<'_>) -> String {
    n.accesskit_node().label().unwrap_or_default()
}

#[test]
fn the_strip_marks_the_scene_on_air_and_a_click_cuts_or_fades_to_another() {
    let (engine, mut h) = settled(with_scenes("Talk"));
    // Nothing moves by itself in the strip: the window settles.
    h.try_run().expect("the window with scenes stops repainting");
    let cards: Vec<String> = h.query_all_by_label_contains("Scene ").map(|n| label(&n)).collect();
    assert_eq!(cards, ["Scene Camera, Ctrl+1", "Scene Talk, Ctrl+2, ON AIR", "Scene Be right back, Ctrl+3"], "one card per scene, in order");
    let on_air: Vec<egui_kittest::Node<'_>> = h.query_all_by_label_contains("ON AIR").collect();
    assert_eq!(on_air.len(), 1, "exactly one scene is on air");
    assert_eq!(on_air[0].accesskit_node().toggled(), Some(egui::accesskit::Toggled::True), "and says so to a screen reader");
    assert_eq!(h.get_by_label("Scene Camera, Ctrl+1").accesskit_node().toggled(), Some(egui::accesskit::Toggled::False));

    h.get_by_label("Scene Camera, Ctrl+1").click();
    h.run_steps(2);
    let sent = scene_commands(&engine);
    assert!(matches!(sent.as_slice(), [ScenesCommand::GoTo { name, transition: Transition::Cut }] if name == "Camera"), "{sent:?}");

    // With Fade on, the same click fades.
    h.get_by_label("Fade").click();
    h.run_steps(2);
    h.get_by_label("Scene Be right back, Ctrl+3").click();
    h.run_steps(2);
    let sent = scene_commands(&engine);
    assert!(matches!(sent.as_slice(), [ScenesCommand::GoTo { name, transition: Transition::Fade(MAX_FADE_MS) }] if name == "Be right back"), "{sent:?}");

    // The scene on air is not switched to again.
    h.get_by_label("Scene Talk, Ctrl+2, ON AIR").click();
    h.run_steps(2);
    assert_eq!(scene_commands(&engine).len(), 0);
}

#[test]
fn ctrl_and_a_number_puts_that_scene_on_air_live_or_not() {
    let (engine, mut h) = settled(with_scenes("Camera"));
    let press = |h: &mut Harness<'static, TallyApp>, key| {
        h.key_press_modifiers(egui::Modifiers::COMMAND, key);
        h.run_steps(2);
        scene_commands(&engine)
    };
    let sent = press(&mut h, egui::Key::Num2);
    assert!(matches!(sent.as_slice(), [ScenesCommand::GoTo { name, transition: Transition::Cut }] if name == "Talk"), "Ctrl+2: {sent:?}");
    let sent = press(&mut h, egui::Key::Num9);
    assert!(sent.is_empty(), "Ctrl+9 with three scenes: {sent:?}");

    // Live: the point of the shortcuts.
    engine.set_state(EngineState { broadcast: BroadcastState::Running { since: Instant::now() }, ..with_scenes("Camera") });
    h.run_steps(2);
    engine.take_sent();
    let sent = press(&mut h, egui::Key::Num3);
    assert!(matches!(sent.as_slice(), [ScenesCommand::GoTo { name, .. }] if name == "Be right back"), "Ctrl+3 live: {sent:?}");
}

#[test]
fn the_layout_picker_makes_screen_and_camera_in_the_corner_chosen_with_a_new_name() {
    let (engine, mut h) = settled(with_scenes("Talk"));
    h.get_by_label("New scene…").click();
    h.run_steps(2);
    for title in ["Camera", "Screen", "Side by side", "Be right back"] {
        assert!(h.query_all_by_label(title).count() >= 1, "the picker offers {title}");
    }
    h.get_by_label("Top left").click();
    h.run_steps(2);
    h.get_by_label("Add Screen + camera").click();
    h.run_steps(2);
    let sent = scene_commands(&engine);
    match sent.as_slice() {
        [ScenesCommand::MakeLayout { name, layout: Layout::ScreenCamera { corner: Corner::TopLeft, size }, .. }] => {
            assert_eq!(name, "Screen + camera");
            assert_eq!(*size, CORNER_CAMERA_SIZE);
        }
        other => panic!("expected MakeLayout for Screen + camera at the top left: {other:?}"),
    }
    // A name already taken gets a number.
    h.get_by_label("New scene…").click();
    h.run_steps(2);
    h.get_by_label("Be right back").click();
    h.run_steps(2);
    let sent = scene_commands(&engine);
    assert!(matches!(sent.as_slice(), [ScenesCommand::MakeLayout { name, layout: Layout::BeRightBack, .. }] if name == "Be right back 2"), "{sent:?}");
}

#[test]
fn hiding_a_layer_of_the_scene_on_air_edits_it_on_air() {
    let (engine, mut h) = settled(with_scenes("Talk"));
    h.get_by_label("Hide Camera").click();
    h.run_steps(2);
    let sent = scene_commands(&engine);
    let [ScenesCommand::EditOnAir(edited)] = sent.as_slice() else { panic!("expected one EditOnAir: {sent:?}") };
    let mut expected = talk();
    expected.layers[1].placement.visible = false;
    assert_eq!(edited, &expected, "only the camera's visibility changed");
}

/// Drags on the preview from `from` through a detour to `to` (points).
fn drag(h: &mut Harness<'static, TallyApp>, from: egui::Pos2, to: egui::Pos2) {
    h.hover_at(from);
    h.run_steps(1);
    h.drag_at(from);
    h.run_steps(1);
    h.hover_at(from + egui::vec2(-40.0, -40.0));
    h.run_steps(1);
    h.hover_at(to);
    h.run_steps(1);
    h.drop_at(to);
    h.run_steps(2);
}

/// The camera's rectangle in the last edit sent.
fn last_camera_rect(engine: &ScriptedEngine) -> Rect {
    let edits: Vec<Scene> = scene_commands(engine).into_iter().filter_map(|c| if let ScenesCommand::EditOnAir(s) = c { Some(s) } else { None }).collect();
    let last = edits.last().unwrap_or_else(|| panic!("no edit sent"));
    assert_eq!(last.layers.len(), 2, "{last:?}");
    last.layers[1].placement.rect
}

#[test]
fn dragging_a_layer_on_the_preview_moves_it_by_the_pointer_s_travel_and_snaps_to_an_edge() {
    let (engine, mut h) = settled(with_scenes("Talk"));
    let area = h.get_by_label("Preview of the outgoing picture").rect();
    let camera = talk().layers[1].placement.rect;
    let at = |fx: f32, fy: f32| egui::pos2(area.min.x + fx * area.width(), area.min.y + fy * area.height());
    let centre = at(camera.x + camera.w / 2.0, camera.y + camera.h / 2.0);

    // Far from every line: it moves as far as the pointer did, in fractions of the canvas.
    let (dx, dy) = (-0.2 * area.width(), -0.3 * area.height());
    drag(&mut h, centre, centre + egui::vec2(dx, dy));
    let moved = last_camera_rect(&engine);
    let close = |a: f32, b: f32| (a - b).abs() < 1e-4;
    assert!(close(moved.x, camera.x - 0.2) && close(moved.y, camera.y - 0.3), "moved to {moved:?} from {camera:?}");
    assert_eq!((moved.w, moved.h), (camera.w, camera.h), "a move keeps the size");

    // The engine shows what it was sent: the next drag starts from there… but
    // the scripted one does not, so the window starts again from the scene as it was.
    engine.set_state(with_scenes("Talk"));
    h.run_steps(2);
    engine.take_sent();
    // Its right edge is at 0.98; 1.2 % of the canvas more leaves it within
    // the threshold of the canvas's right edge: it lands exactly on it.
    drag(&mut h, centre, centre + egui::vec2(0.012 * area.width(), 0.0));
    let snapped = last_camera_rect(&engine);
    assert_eq!(snapped.x + snapped.w, 1.0, "snapped onto the right edge: {snapped:?}");
    assert!(close(snapped.y, camera.y), "{snapped:?}");
}

#[test]
fn the_window_with_scenes_looks_as_it_did() {
    crate::snapshots::refuse_rewriting_under_ci();
    let engine = ScriptedEngine::with_state(with_scenes("Talk"));
    // A picture with something in it: bands of grey, darker to the right.
    let (w, hgt) = (128u32, 72u32);
    let rgba = (0..w * hgt).flat_map(|i| {
        let v = 40 + (i % w * 160 / w) as u8;
        [v, v, v.saturating_add(20), 255]
    });
    engine.set_preview(PreviewFrame { width: w, height: hgt, rgba: rgba.collect(), pts_us: 0, serial: 1 });
    let app = TallyApp::new(engine.clone());
    let mut h = Harness::builder().with_size(egui::vec2(1100.0, 760.0)).wgpu().build_ui_state(|ui, app: &mut TallyApp| app.main_ui(ui), app);
    h.run_steps(3);
    // The camera picked: its outline and handles over the preview.
    let area = h.get_by_label("Preview of the outgoing picture").rect();
    let camera = talk().layers[1].placement.rect;
    h.get_by_label("Preview of the outgoing picture").hover();
    let at = egui::pos2(area.min.x + (camera.x + camera.w / 2.0) * area.width(), area.min.y + (camera.y + camera.h / 2.0) * area.height());
    h.hover_at(at);
    h.run_steps(1);
    h.drag_at(at);
    h.run_steps(1);
    h.drop_at(at);
    h.run_steps(3);
    let image = h.render().expect("render the window (wgpu on Mesa)");
    let options = egui_kittest::SnapshotOptions::new().max_failed_pixels(40);
    if let Err(e) = egui_kittest::try_image_snapshot_options(&image, "scenes_window", &options) {
        panic!("scenes_window: {e}");
    }
}
