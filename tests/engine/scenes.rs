//! The engine's scene part: the collection read from and written to
//! `scenes.toml` (read back here, as another process would), a scene put
//! on air in the capture session, edits of the scene on air, the scene last
//! on air shown again when the next engine's sources open, and a broken
//! file reported, not fatal.

use super::*;
use tally::compose::{Placement, Rect};
use tally::config::{SceneCollection, SceneStore};
use tally::engine::{ScenesCommand, ScenesState};
use tally::session::scene::{Layer, LayerSource, Scene, Transition};

/// The scene the capture session has on air.
fn scene_on_air(s: &EngineState) -> Option<&Scene> {
    match &s.sources {
        SourcesState::Open { scene, .. } => scene.as_ref(),
        _ => None,
    }
}

/// `scenes.toml` as it is on disk now, once `pred` holds for it.
fn file_once(dir: &TestDir, what: &str, pred: impl Fn(&SceneCollection) -> bool) -> SceneCollection {
    let store = SceneStore::open(dir.path());
    let ok = wait_until(STATE_TIMEOUT, || store.load().is_ok_and(|c| pred(&c)));
    assert!(ok, "{what}: scenes.toml never showed it; it reads {:?}", store.load());
    store.load().unwrap()
}

fn open_sources(engine: &Engine) {
    let (video, audio) = (VideoSourceSpec::TestPattern, AudioSourceSpec::Silence);
    engine.send(SourcesCommand::Open { video, audio, format: session_format(), looping: true }).unwrap();
    wait_state(engine, "sources open", |s| matches!(s.sources, SourcesState::Open { .. }));
}

fn loaded(engine: &Engine) -> ScenesState {
    engine.send(ScenesCommand::Load).unwrap();
    wait_state(engine, "scenes read", |s| s.scenes.collection.is_some() || s.scenes.message.is_some()).scenes
}

#[test]
fn scenes_are_saved_put_on_air_edited_removed_and_the_last_on_air_comes_back() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-scenes");
    let clip = other_clip(&dir);
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    open_sources(&engine);
    let first = loaded(&engine);
    assert_eq!(first.collection, Some(SceneCollection::default()), "no file yet: an empty collection; {first:?}");

    let pattern = Scene { name: "Pattern".into(), layers: vec![Layer::full("Pattern", LayerSource::Video(VideoSourceSpec::TestPattern))], mute_audio: false };
    let corner = Placement::at(Rect { x: 0.5, y: 0.5, w: 0.5, h: 0.5 });
    let mut picture_in_picture = Scene {
        name: "Clip in the corner".into(),
        layers: vec![
            Layer::full("Pattern", LayerSource::Video(VideoSourceSpec::TestPattern)),
            Layer { name: "Clip".into(), source: LayerSource::Video(VideoSourceSpec::Y4m(clip)), placement: corner },
        ],
        mute_audio: false,
    };
    engine.send(ScenesCommand::Put { scene: pattern.clone(), replace: false }).unwrap();
    engine.send(ScenesCommand::Put { scene: picture_in_picture.clone(), replace: false }).unwrap();
    engine.send(ScenesCommand::GoTo { name: "clip in the corner".into(), transition: Transition::Cut }).unwrap();
    let shown = wait_state(&engine, "the second scene on air", |s| scene_on_air(s).is_some_and(|sc| sc.name == picture_in_picture.name));
    assert_eq!(scene_on_air(&shown), Some(&picture_in_picture), "the capture session composes the scene as put");
    assert_eq!(shown.scenes.scenes().len(), 2, "{:?}", shown.scenes);
    let file = file_once(&dir, "both scenes and the one on air", |c| c.scenes.len() == 2 && c.on_air.is_some());
    assert_eq!(file.scenes, vec![pattern.clone(), picture_in_picture.clone()]);
    assert_eq!(file.on_air.as_deref(), Some("Clip in the corner"));

    // A name taken is refused, with a message, and nothing changes.
    engine.send(ScenesCommand::Put { scene: pattern.clone(), replace: false }).unwrap();
    let refused = wait_state(&engine, "a duplicate refused", |s| s.scenes.message.is_some());
    assert!(refused.scenes.message.as_deref().is_some_and(|m| m.contains("exists already")), "{:?}", refused.scenes.message);

    // A drag: many edits of the scene on air at once (fewer than the
    // command queue holds); the last is shown and written.
    for step in 1..=25 {
        picture_in_picture.layers[1].placement.rect.x = 0.5 - step as f32 * 0.01;
        engine.send(ScenesCommand::EditOnAir(picture_in_picture.clone())).unwrap();
    }
    let edited = wait_state(&engine, "the last edit on air", |s| scene_on_air(s) == Some(&picture_in_picture));
    assert_eq!(edited.scenes.scenes()[1], picture_in_picture, "the engine holds the edit");
    assert_eq!(edited.scenes.message, None, "a change that went through clears the message");
    file_once(&dir, "the last edit written", |c| c.scenes.get(1) == Some(&picture_in_picture));

    // Removed: from the state and from the file.
    engine.send(ScenesCommand::Remove("Pattern".into())).unwrap();
    wait_state(&engine, "removed", |s| s.scenes.scenes().len() == 1);
    let file = file_once(&dir, "Pattern gone", |c| c.scenes.len() == 1);
    assert_eq!(file.scenes, vec![picture_in_picture.clone()]);
    engine.send(ScenesCommand::GoTo { name: "Pattern".into(), transition: Transition::Cut }).unwrap();
    let gone = wait_state(&engine, "an unknown scene refused", |s| s.scenes.message.is_some());
    assert!(gone.scenes.message.as_deref().is_some_and(|m| m.contains("no scene called 'Pattern'")), "{:?}", gone.scenes.message);
    engine.shutdown();

    // The next start: the scene last on air is shown once sources open.
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    loaded(&engine);
    open_sources(&engine);
    let back = wait_state(&engine, "the scene last on air shown again", |s| scene_on_air(s).is_some_and(|sc| sc.name == picture_in_picture.name));
    assert_eq!(scene_on_air(&back), Some(&picture_in_picture));
    engine.shutdown();
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown");
}

#[test]
fn a_broken_scenes_file_is_a_message_and_is_left_as_it_was() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-scenes-broken");
    let path = dir.path().join("scenes.toml");
    let broken = "[[scene]]\nname = \"Talk\"\nlayer = [ { source = \n";
    std::fs::write(&path, broken).unwrap();
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    let state = loaded(&engine);
    assert_eq!(state.collection, None, "nothing read: {state:?}");
    let message = state.message.unwrap_or_default();
    assert!(message.contains("reading the scenes") && message.contains("scenes.toml") && message.contains("line "), "{message}");

    // Changes are refused (the file is not written over), and the engine goes on.
    let scene = Scene { name: "Pattern".into(), layers: vec![Layer::full("Pattern", LayerSource::Video(VideoSourceSpec::TestPattern))], mute_audio: false };
    engine.send(ScenesCommand::Put { scene, replace: false }).unwrap();
    let refused = wait_state(&engine, "a change refused", |s| s.scenes.message.as_deref().is_some_and(|m| m.contains("have not been read")));
    assert_eq!(refused.scenes.collection, None);
    engine.send(ProfilesCommand::Load).unwrap();
    wait_state(&engine, "the engine still answers", |s| matches!(s.profiles, ProfilesState::Loaded { .. }));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken, "the broken file is kept for the person to repair");
    engine.shutdown();
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown");
}
