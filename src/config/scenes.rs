//! The scene collection: every scene a streamer made, in `scenes.toml`
//! beside the profiles (no secrets in it), and the one last on air. Chosen
//! independently of the destination profile: the same scenes go to any
//! destination.

use super::{ConfigError, check_name, read_toml, write_file_atomic};
use crate::session::scene::{MAX_LAYERS, Scene};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Scenes a collection may hold (Ctrl+1…9 reach the first nine).
pub const MAX_SCENES: usize = 64;

/// What `scenes.toml` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SceneCollection {
    /// The scene last on air, shown again at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_air: Option<String>,
    /// The scenes, in the order the scene strip shows them.
    #[serde(default, rename = "scene")]
    pub scenes: Vec<Scene>,
}

impl SceneCollection {
    /// The scene called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Scene> {
        self.scenes.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Adds `scene`, or replaces the one of its name when `replace`.
    pub fn put(&mut self, scene: Scene, replace: bool) -> Result<(), ConfigError> {
        check_name(&scene.name, "scene")?;
        scene.validate().map_err(ConfigError::Invalid)?;
        let full = self.scenes.len() >= MAX_SCENES;
        match self.scenes.iter_mut().find(|s| s.name.eq_ignore_ascii_case(&scene.name)) {
            Some(_) if !replace => Err(ConfigError::Invalid(format!("a scene called '{}' exists already", scene.name))),
            Some(old) => {
                *old = scene;
                Ok(())
            }
            None if full => Err(ConfigError::Invalid(format!("at most {MAX_SCENES} scenes"))),
            None => {
                self.scenes.push(scene);
                Ok(())
            }
        }
    }

    /// Removes the scene called `name`.
    pub fn remove(&mut self, name: &str) -> Result<Scene, ConfigError> {
        let i = self
            .scenes
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ConfigError::NotFound(format!("no scene called '{name}'")))?;
        if self.on_air.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)) {
            self.on_air = None;
        }
        Ok(self.scenes.remove(i))
    }
}

/// The scene collection on disk.
#[derive(Clone, Debug)]
pub struct SceneStore {
    path: PathBuf,
}

impl SceneStore {
    /// The collection in `config_dir` (`scenes.toml`).
    pub fn open(config_dir: &Path) -> SceneStore {
        SceneStore { path: config_dir.join("scenes.toml") }
    }

    /// Where the collection is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the collection (empty when there is no file yet); a scene
    /// that cannot be drawn is an error naming it.
    pub fn load(&self) -> Result<SceneCollection, ConfigError> {
        let c: SceneCollection = read_toml(&self.path)?;
        if c.scenes.len() > MAX_SCENES {
            return Err(ConfigError::Parse { path: self.path.clone(), reason: format!("{} scenes; at most {MAX_SCENES}", c.scenes.len()) });
        }
        for s in &c.scenes {
            if s.layers.len() > MAX_LAYERS || s.name.trim().is_empty() {
                return Err(ConfigError::Parse { path: self.path.clone(), reason: s.validate().err().unwrap_or_default() });
            }
        }
        Ok(c)
    }

    /// Writes the collection (atomically).
    pub fn save(&self, c: &SceneCollection) -> Result<(), ConfigError> {
        let text = toml::to_string(c).map_err(|e| ConfigError::Invalid(format!("scenes cannot be written: {e}")))?;
        write_file_atomic(&self.path, &text, false)
    }

    /// Loads, changes with `f`, and saves the collection.
    pub fn update<T>(&self, f: impl FnOnce(&mut SceneCollection) -> Result<T, ConfigError>) -> Result<T, ConfigError> {
        let mut c = self.load()?;
        let out = f(&mut c)?;
        self.save(&c)?;
        Ok(out)
    }

    /// The scene called `name`.
    pub fn get(&self, name: &str) -> Result<Scene, ConfigError> {
        let c = self.load()?;
        c.get(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = c.scenes.iter().map(|s| s.name.as_str()).collect();
            let known = if names.is_empty() { "there are none yet (`tally scenes layout NAME LAYOUT` makes one)".to_string() } else { names.join(", ") };
            ConfigError::NotFound(format!("no scene called '{name}'; scenes: {known}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::VideoSourceSpec;

    #[test]
    fn scenes_are_kept_replaced_and_removed() {
        let dir = std::env::temp_dir().join(format!("tally-scenes-{}", std::process::id()));
        let store = SceneStore::open(&dir);
        let mut one = Scene::single(VideoSourceSpec::TestPattern);
        one.name = "Pattern".into();
        store.update(|c| c.put(one.clone(), false)).unwrap();
        assert!(store.update(|c| c.put(one.clone(), false)).is_err());
        one.mute_audio = true;
        store.update(|c| c.put(one.clone(), true)).unwrap();
        assert_eq!(store.get("pattern").unwrap(), one);
        store.update(|c| c.remove("PATTERN")).unwrap();
        assert!(store.get("Pattern").unwrap_err().to_string().contains("there are none yet"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
