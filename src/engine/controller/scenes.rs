//! The scene collection's part: `scenes.toml` read into the engine, changed
//! there at once (a face sees a change in the next snapshot) and written
//! after, one job at a time in the order asked, each applied to the file as
//! it is then (a scene the command line added meanwhile is kept). Putting a
//! scene on air hands it to the capture part; so does an edit of the scene
//! on air, shown with no keyframe. Of many edits in a row (a drag) at most
//! one write waits, and it writes the last.

use super::sources::Capture;
use super::latest::Latest;
use super::{Event as ControllerEvent, Outbox, Tail};
use crate::config::{ConfigError, SceneCollection, SceneStore};
use crate::engine::command::ScenesCommand;
use crate::engine::errors::ScenesError;
use crate::engine::state::ScenesState;
use crate::session::scene::{Scene, Transition};
use std::path::PathBuf;

/// The aspect a layout is placed at when no capture session runs (16:9, the default size's).
const DEFAULT_ASPECT: f32 = 16.0 / 9.0;

/// What the scene store's jobs report.
pub(in crate::engine) enum Event {
    /// The collection was read; `changes` counts the changes made in the
    /// engine when it was asked (a read older than a change is not shown).
    Read { changes: u64, result: Result<SceneCollection, ScenesError> },
    /// A change was written (or not).
    Written(Result<(), ScenesError>),
}

/// The scenes' slice of state.
pub(super) struct Scenes {
    /// Where `scenes.toml` is; `None`: the platform's config directory.
    config_dir: Option<PathBuf>,
    /// The collection as read and changed since; `None` until read.
    collection: Option<SceneCollection>,
    /// What went wrong last.
    message: Option<String>,
    /// Changes made to `collection` so far.
    changes: u64,
    /// Jobs on `scenes.toml`, one after the other.
    store: Tail,
    /// The edited scene on air waiting to be written.
    edit: Latest<Scene>,
    /// The capture session (by generation) the scene on air was last shown in.
    shown_in: Option<u64>,
}

impl Scenes {
    pub fn new(config_dir: Option<PathBuf>) -> Self {
        Scenes { config_dir, collection: None, message: None, changes: 0, store: Tail::default(), edit: Latest::default(), shown_in: None }
    }

    pub fn command(&mut self, cmd: ScenesCommand, out: &Outbox, capture: &mut Capture) {
        let done = match cmd {
            ScenesCommand::Load => return self.read(out),
            ScenesCommand::Put { scene, replace } => self.put(scene, replace, out),
            ScenesCommand::Remove(name) => self.remove(&name, out),
            ScenesCommand::Reorder { from, to } => self.reorder(from, to, out),
            ScenesCommand::MakeLayout { name, layout, cast } => {
                let aspect = capture.format().map_or(DEFAULT_ASPECT, |f| f.width as f32 / f.height.max(1) as f32);
                self.put(Scene::from_layout(&name, &layout, &cast, aspect), false, out)
            }
            ScenesCommand::GoTo { name, transition } => self.go_to(&name, transition, out, capture),
            ScenesCommand::EditOnAir(scene) => self.edit_on_air(scene, out, capture),
        };
        match done {
            Ok(()) => self.message = None,
            Err(e) => self.fail(&e),
        }
        self.publish(out);
    }

    pub fn event(&mut self, event: Event, out: &Outbox) {
        match event {
            Event::Read { changes, result } => match result {
                // Changed in the engine since it was asked: what it holds is newer.
                Ok(_) if changes != self.changes => return,
                Ok(collection) => {
                    tracing::info!("scenes read: {}", collection.scenes.len());
                    self.collection = Some(collection);
                    self.message = None;
                }
                Err(e) => self.fail(&e),
            },
            Event::Written(Ok(())) => return,
            Event::Written(Err(e)) => self.fail(&e),
        }
        self.publish(out);
    }

    /// Shows the scene last on air in a capture session that has not shown
    /// it yet (sources just opened, or a session adopted), once the
    /// collection is read.
    pub fn restore(&mut self, capture: &mut Capture, out: &Outbox) {
        let (Some(generation), Some(collection)) = (capture.open_generation(), &self.collection) else { return };
        if self.shown_in == Some(generation) {
            return;
        }
        self.shown_in = Some(generation);
        if let Some(scene) = collection.on_air.as_deref().and_then(|name| collection.get(name)) {
            tracing::info!("showing scene '{}', last on air", scene.name);
            capture.show(scene.clone(), Transition::Cut, out);
        }
    }

    fn fail(&mut self, e: &ScenesError) {
        let message = crate::error_chain(e);
        tracing::warn!("scenes: {message}");
        self.message = Some(message);
    }

    fn publish(&self, out: &Outbox) {
        let state = ScenesState { collection: self.collection.clone(), message: self.message.clone() };
        out.set(|s| s.scenes = state);
    }

    fn read(&mut self, out: &Outbox) {
        let (dir, changes) = (self.config_dir.clone(), self.changes);
        self.edit.close();
        out.after(
            &self.store,
            move || SceneStore::open(&find_dir(dir)?).load().map_err(ScenesError::Read),
            move |done| ControllerEvent::Scenes(Event::Read { changes, result: done.unwrap_or_else(|e| Err(ScenesError::Task(e))) }),
        );
    }

    fn loaded(&mut self) -> Result<&mut SceneCollection, ScenesError> {
        self.collection.as_mut().ok_or(ScenesError::NotRead)
    }

    /// Writes a change to the file, after the jobs asked before it.
    fn write(&mut self, out: &Outbox, change: impl FnOnce(&mut SceneCollection) -> Result<(), ConfigError> + Send + 'static) {
        self.changes += 1;
        let dir = self.config_dir.clone();
        out.after(
            &self.store,
            move || SceneStore::open(&find_dir(dir)?).update(change).map_err(ScenesError::Save),
            |done| ControllerEvent::Scenes(Event::Written(done.unwrap_or_else(|e| Err(ScenesError::Task(e))))),
        );
    }

    fn put(&mut self, scene: Scene, replace: bool, out: &Outbox) -> Result<(), ScenesError> {
        self.loaded()?.put(scene.clone(), replace).map_err(ScenesError::Refused)?;
        self.edit.close();
        self.write(out, move |c| c.put(scene, replace));
        Ok(())
    }

    fn remove(&mut self, name: &str, out: &Outbox) -> Result<(), ScenesError> {
        let removed = self.loaded()?.remove(name).map_err(|_| ScenesError::NoSuchScene(name.to_string()))?;
        self.edit.close();
        // Gone from the file already (removed by hand): nothing to do there.
        self.write(out, move |c| if c.get(&removed.name).is_some() { c.remove(&removed.name).map(drop) } else { Ok(()) });
        Ok(())
    }

    fn reorder(&mut self, from: usize, to: usize, out: &Outbox) -> Result<(), ScenesError> {
        let scenes = &mut self.loaded()?.scenes;
        let len = scenes.len();
        if from >= len || to >= len {
            return Err(ScenesError::NoSuchPosition { from, to, len });
        }
        let scene = scenes.remove(from);
        let name = scene.name.clone();
        scenes.insert(to, scene);
        self.edit.close();
        // By name: the file may hold scenes added since it was read.
        self.write(out, move |c| {
            if let Some(i) = c.scenes.iter().position(|s| s.name.eq_ignore_ascii_case(&name)) {
                let scene = c.scenes.remove(i);
                c.scenes.insert(to.min(c.scenes.len()), scene);
            }
            Ok(())
        });
        Ok(())
    }

    fn go_to(&mut self, name: &str, transition: Transition, out: &Outbox, capture: &mut Capture) -> Result<(), ScenesError> {
        let collection = self.loaded()?;
        let scene = collection.get(name).cloned().ok_or_else(|| ScenesError::NoSuchScene(name.to_string()))?;
        collection.on_air = Some(scene.name.clone());
        // Without sources open it is shown when they open.
        if let Some(generation) = capture.open_generation() {
            self.shown_in = Some(generation);
            tracing::info!("scene '{}' on air ({transition:?})", scene.name);
            capture.show(scene.clone(), transition, out);
        }
        self.edit.close();
        let name = scene.name;
        self.write(out, move |c| {
            c.on_air = Some(name);
            Ok(())
        });
        Ok(())
    }

    fn edit_on_air(&mut self, scene: Scene, out: &Outbox, capture: &mut Capture) -> Result<(), ScenesError> {
        scene.validate().map_err(|e| ScenesError::Refused(ConfigError::Invalid(e)))?;
        if capture.open_generation().is_some() {
            capture.show(scene.clone(), Transition::Edit, out);
        }
        // A scene that is not in the collection (a plain source) is shown, not saved.
        let saved = self.collection.as_mut().and_then(|c| c.scenes.iter_mut().find(|s| s.name.eq_ignore_ascii_case(&scene.name)));
        let Some(saved) = saved else { return Ok(()) };
        *saved = scene.clone();
        if let Some(slot) = self.edit.offer(scene) {
            self.write(out, move |c| match slot.take() {
                Some(scene) => c.put(scene, true),
                None => Ok(()),
            });
        } else {
            self.changes += 1;
        }
        Ok(())
    }
}

/// The directory of `scenes.toml` (finding the platform's may read the environment: call off the runtime).
fn find_dir(dir: Option<PathBuf>) -> Result<PathBuf, ScenesError> {
    match dir {
        Some(d) => Ok(d),
        None => crate::config::config_dir().map_err(ScenesError::ConfigDir),
    }
}
