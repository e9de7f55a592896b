//! Scenes: what a session composes. A scene is an ordered list of layers
//! (bottom first), each a source with a placement; a plain video source is
//! the one-layer scene that shows it full frame. Scenes are saved in the
//! scene collection (`config::scenes`, TOML) and made in one click from the
//! built-in layouts ([`Scene::from_layout`]).

use crate::capture::VideoSourceSpec;
use crate::compose::layout::{Layout, Role};
use crate::compose::Placement;
use serde::{Deserialize, Serialize};

/// Where a layer's picture comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSource {
    /// A video source: a camera, the screen, the test pattern, a Y4M file.
    Video(VideoSourceSpec),
}

impl std::fmt::Display for LayerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSource::Video(v) => v.fmt(f),
        }
    }
}

impl std::str::FromStr for LayerSource {
    type Err = String;
    /// A video source's text (`camera`, `test`, `y4m:PATH`, ...).
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(LayerSource::Video)
    }
}

/// One layer of a scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// What a person calls it ("Camera", "Logo").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its source.
    #[serde(with = "as_text")]
    pub source: LayerSource,
    /// Where and how it is drawn.
    #[serde(flatten)]
    pub placement: Placement,
}

mod as_text {
    use super::LayerSource;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &LayerSource, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LayerSource, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Layer {
    /// `source` over the whole canvas.
    pub fn full(name: &str, source: LayerSource) -> Layer {
        Layer { name: name.to_string(), source, placement: Placement::default() }
    }
}

/// A scene: layers drawn bottom first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// Its name, unique in the collection.
    pub name: String,
    /// The layers, bottom first.
    #[serde(default, rename = "layer")]
    pub layers: Vec<Layer>,
    /// The microphone is muted while this scene is on (a "be right back" card).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mute_audio: bool,
}

/// Layers a scene may have: each holds a scaled picture (bounded memory).
pub const MAX_LAYERS: usize = 32;

/// What the layout's roles are played by when a scene is made from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    /// The camera (default: the first camera, else the test pattern).
    pub camera: VideoSourceSpec,
    /// The screen (default: the first monitor).
    pub screen: VideoSourceSpec,
    /// The card's title (*Be right back*).
    pub title: String,
    /// Whether the card mutes the microphone.
    pub mute_on_card: bool,
}

impl Default for Cast {
    fn default() -> Self {
        Cast { camera: VideoSourceSpec::Auto, screen: VideoSourceSpec::TestPattern, title: "Be right back".into(), mute_on_card: true }
    }
}

impl Scene {
    /// The one-layer scene of a plain video source.
    pub fn single(source: VideoSourceSpec) -> Scene {
        let name = source.to_string();
        Scene { name: name.clone(), layers: vec![Layer::full(&name, LayerSource::Video(source))], mute_audio: false }
    }

    /// A scene named `name` made from `layout`, its roles played by `cast`,
    /// for a canvas of `aspect` (width / height).
    pub fn from_layout(name: &str, layout: &Layout, cast: &Cast, aspect: f32) -> Scene {
        let mut layers = Vec::new();
        for (role, placement) in layout.place(aspect) {
            let (label, source) = match role {
                Role::Camera => ("Camera", LayerSource::Video(cast.camera.clone())),
                Role::Screen => ("Screen", LayerSource::Video(cast.screen.clone())),
                Role::Background => ("Background", LayerSource::Video(VideoSourceSpec::TestPattern)),
                Role::Title => continue,
            };
            layers.push(Layer { name: label.into(), source, placement });
        }
        let mute_audio = matches!(layout, Layout::BeRightBack) && cast.mute_on_card;
        Scene { name: name.to_string(), layers, mute_audio }
    }

    /// Whether the scene can be drawn: a name, at least one layer, at most [`MAX_LAYERS`].
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a scene needs a name".into());
        }
        if self.layers.is_empty() {
            return Err(format!("scene '{}' has no layers", self.name));
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(format!("scene '{}' has {} layers; at most {MAX_LAYERS}", self.name, self.layers.len()));
        }
        Ok(())
    }
}

/// How the picture changes to a new scene.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transition {
    /// At once (the encoder starts a keyframe there).
    #[default]
    Cut,
    /// Mixed over this many milliseconds (at most [`MAX_FADE_MS`]).
    Fade(u32),
    /// The same scene edited (a layer moved, hidden, reordered): at once, no keyframe.
    Edit,
}

/// The longest fade: a switch is still a switch.
pub const MAX_FADE_MS: u32 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scene_round_trips_through_toml() {
        let cast = Cast { camera: VideoSourceSpec::Camera(Some(1)), ..Cast::default() };
        let scene = Scene::from_layout("Talk", &Layout::parse("screen+camera").unwrap(), &cast, 16.0 / 9.0);
        let text = toml::to_string(&scene).unwrap();
        assert!(text.contains("source = \"camera:1\""), "{text}");
        let back: Scene = toml::from_str(&text).unwrap();
        assert_eq!(back, scene);
    }

    #[test]
    fn a_scene_without_layers_or_name_is_refused() {
        assert!(Scene { name: "x".into(), layers: vec![], mute_audio: false }.validate().is_err());
        assert!(Scene::single(VideoSourceSpec::TestPattern).validate().is_ok());
        let mut s = Scene::single(VideoSourceSpec::TestPattern);
        s.name = " ".into();
        assert!(s.validate().is_err());
    }
}
