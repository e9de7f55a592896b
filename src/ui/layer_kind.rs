//! What a layer is, for the person — its word and colour in the layer
//! list, the scene strip's sketch and the preview's outline — said once,
//! for the panels that draw layers (`layers`, `scenes`, `arrange`).

use crate::capture::VideoSourceSpec;
use crate::session::scene::LayerSource;

/// What a layer is, for the person: a word and a colour (always both:
/// never colour alone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kind {
    /// "Camera", "Pattern", "File"…
    pub word: &'static str,
    /// Its colour in the strip's schematic and on the preview.
    pub colour: egui::Color32,
}

/// What `source` is (a new kind of source is one arm here).
pub fn kind(source: &LayerSource) -> Kind {
    let of = |word, (r, g, b)| Kind { word, colour: egui::Color32::from_rgb(r, g, b) };
    match source {
        LayerSource::Video(v) => match v {
            VideoSourceSpec::Auto | VideoSourceSpec::Camera(_) => of("Camera", (70, 150, 230)),
            VideoSourceSpec::TestPattern | VideoSourceSpec::Noise => of("Pattern", (150, 150, 160)),
            VideoSourceSpec::Y4m(_) => of("File", (210, 150, 60)),
            VideoSourceSpec::Screen { .. } => of("Screen", (90, 180, 120)),
        },
        LayerSource::Image(_) => of("Image", (200, 110, 190)),
        LayerSource::Text(_) => of("Text", (230, 230, 230)),
        LayerSource::Colour(_) => of("Colour", (120, 120, 200)),
    }
}

