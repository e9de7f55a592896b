//! Scenes: what a session composes. A scene is an ordered list of layers
//! (bottom first), each a source with a placement; a plain video source is
//! the one-layer scene that shows it full frame. Scenes are saved in the
//! scene collection (`config::scenes`, TOML) and made in one click from the
//! built-in layouts ([`Scene::from_layout`]).

use crate::capture::screen::ScreenTarget;
use crate::capture::{Rgba, TextStyle, VideoSourceSpec};
use crate::compose::Placement;
use crate::compose::layout::{Layout, Role};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a layer's picture comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSource {
    /// A video source: a camera, the screen, the test pattern, a Y4M file.
    Video(VideoSourceSpec),
    /// A PNG or JPEG file (with its alpha): a logo, an overlay.
    Image(PathBuf),
    /// A text: a title, a lower third.
    Text(TextStyle),
    /// A colour over the whole layer.
    Colour(Rgba),
}

impl LayerSource {
    /// What a person calls this kind of source.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSource::Video(VideoSourceSpec::Camera(_) | VideoSourceSpec::Auto) => "camera",
            LayerSource::Video(VideoSourceSpec::Screen { .. }) => "screen",
            LayerSource::Video(_) => "video",
            LayerSource::Image(_) => "image",
            LayerSource::Text(_) => "text",
            LayerSource::Colour(_) => "colour",
        }
    }
}

impl std::fmt::Display for LayerSource {
    /// `camera`, `test`, `image:PATH`, `text:WORDS`, `colour:#RRGGBB`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSource::Video(v) => v.fmt(f),
            LayerSource::Image(p) => write!(f, "image:{}", p.display()),
            LayerSource::Text(t) => write!(f, "text:{}", t.text.replace('\n', "\\n")),
            LayerSource::Colour(c) => write!(f, "colour:{c}"),
        }
    }
}

impl std::str::FromStr for LayerSource {
    type Err = String;
    /// A video source's text (`camera`, `test`, `y4m:PATH`, ...),
    /// `image:PATH`, `text:WORDS` (`\n` starts a line; the style comes
    /// from the scene file), `colour:#RRGGBB[AA]`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("image", p)) if !p.is_empty() => Ok(LayerSource::Image(PathBuf::from(p))),
            Some(("image", _)) => Err("image needs a file: image:PATH".into()),
            Some(("text", words)) => Ok(LayerSource::Text(TextStyle { text: words.replace("\\n", "\n"), ..TextStyle::default() })),
            Some(("colour" | "color", c)) => c.parse().map(LayerSource::Colour).map_err(|e: crate::capture::still::ParseRgbaError| e.to_string()),
            _ => s.parse().map(LayerSource::Video).map_err(|e: String| format!("{e}; or image:PATH, text:WORDS, colour:#RRGGBB")),
        }
    }
}

/// One layer of a scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LayerFile", into = "LayerFile")]
pub struct Layer {
    /// What a person calls it ("Camera", "Logo").
    pub name: String,
    /// Its source.
    pub source: LayerSource,
    /// Where and how it is drawn.
    pub placement: Placement,
}

/// A layer as the scene file holds it: the source as text, a text's style beside it.
#[derive(Clone, Serialize, Deserialize)]
struct LayerFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    style: Option<TextStyle>,
    #[serde(flatten)]
    placement: Placement,
}

impl From<Layer> for LayerFile {
    fn from(l: Layer) -> LayerFile {
        let (source, style) = match l.source {
            LayerSource::Text(style) => ("text".to_string(), Some(style)),
            other => (other.to_string(), None),
        };
        LayerFile { name: l.name, source, style, placement: l.placement }
    }
}

impl TryFrom<LayerFile> for Layer {
    type Error = String;
    fn try_from(f: LayerFile) -> Result<Layer, String> {
        let source = match (f.source.as_str(), f.style) {
            ("text", style) => LayerSource::Text(style.unwrap_or_default()),
            (_, Some(style)) if f.source.starts_with("text:") => LayerSource::Text(style),
            (text, _) => text.parse()?,
        };
        Ok(Layer { name: f.name, source, placement: f.placement })
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
    /// The card's colour.
    pub background: Rgba,
}

/// The card's title size (pixels of a 1080-line canvas).
const TITLE_PX: u32 = 120;

impl Default for Cast {
    fn default() -> Self {
        Cast {
            camera: VideoSourceSpec::Auto,
            screen: VideoSourceSpec::Screen { target: ScreenTarget::Monitor(0), cursor: true },
            title: "Be right back".into(),
            mute_on_card: true,
            background: Rgba::opaque(0x1E, 0x23, 0x2E),
        }
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
                Role::Background => ("Background", LayerSource::Colour(cast.background)),
                Role::Title => ("Title", LayerSource::Text(TextStyle { text: cast.title.clone(), size_px: TITLE_PX, ..TextStyle::default() })),
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
        let card = Scene::from_layout("BRB", &Layout::BeRightBack, &Cast::default(), 16.0 / 9.0);
        assert!(card.mute_audio);
        let text = toml::to_string(&card).unwrap();
        assert!(text.contains("source = \"text\"") && text.contains("Be right back") && text.contains("colour:#1E232E"), "{text}");
        assert_eq!(toml::from_str::<Scene>(&text).unwrap(), card);
        let broken = "name = \"x\"\n[[layer]]\nsource = \"webcam\"\n";
        assert!(toml::from_str::<Scene>(broken).unwrap_err().to_string().contains("unknown video source"));
    }

    #[test]
    fn layer_sources_parse_and_print() {
        for s in ["camera", "test", "image:/tmp/logo.png", "colour:#112233", "colour:#11223380", "text:Alice\\nHost"] {
            assert_eq!(s.parse::<LayerSource>().unwrap().to_string(), s);
        }
        assert!("colour:red".parse::<LayerSource>().is_err());
        assert!("image:".parse::<LayerSource>().is_err());
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
