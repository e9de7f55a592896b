//! The program: the scene that goes out, with each layer's source open as
//! a [`Feed`]. Built off the tick (opening a camera or a screen blocks), so
//! a switch hands the tick a program whose sources already deliver.

use super::feed::Feed;
use super::open::open_video;
use super::scene::{LayerSource, Scene};
use super::{SessionError, SessionFormat, Shared};
use crate::capture::{SourceState, SourceStatus, VideoSourceSpec};
use crate::compose::{DrawLayer, LayerInput, Placement, canvas_rect};
use std::sync::Arc;
use std::time::Duration;

/// How long a switch waits for a newly opened source's first picture (a
/// camera that takes a moment after opening), so that it does not go out
/// as a black layer; a source slower than that joins when it delivers.
pub const FIRST_PICTURE_WAIT: Duration = Duration::from_secs(3);

/// A layer of the program: its source's feed and its placement.
pub(crate) struct ProgramLayer {
    pub source: LayerSource,
    pub feed: Arc<Feed>,
    pub placement: Placement,
}

/// The scene that goes out, its sources open.
pub(crate) struct Program {
    /// Names its layers in the compositor's cache; an edit keeps it.
    pub id: u64,
    pub scene: Scene,
    pub layers: Vec<ProgramLayer>,
    /// What the stats show for the picture: the source of a one-layer
    /// scene, or the scene.
    pub status: Arc<SourceStatus>,
}

impl Program {
    /// Opens what `scene` needs that `reuse` does not already have open
    /// (blocking), waits for the new sources' first pictures, and returns
    /// the program. Paced sources (the test pattern, a file) are made at
    /// their layer's size; devices and the screen at their own.
    pub(crate) fn build(
        id: u64,
        scene: &Scene,
        reuse: Option<&Program>,
        format: SessionFormat,
        looping: bool,
        session: &Arc<Shared>,
    ) -> Result<Program, SessionError> {
        scene.validate().map_err(|e| SessionError::Capture(crate::capture::CaptureError::Format(e)))?;
        let mut layers: Vec<ProgramLayer> = Vec::with_capacity(scene.layers.len());
        let mut opened: Vec<Arc<Feed>> = Vec::new();
        for layer in &scene.layers {
            let kept = layers
                .iter()
                .map(|l| (&l.source, &l.feed))
                .chain(reuse.into_iter().flat_map(|p| p.layers.iter().map(|l| (&l.source, &l.feed))))
                .find(|(s, _)| **s == layer.source)
                .map(|(_, f)| f.clone());
            let feed = match kept {
                Some(f) => f,
                None => {
                    let at = canvas_rect(&layer.placement.rect, format.width, format.height);
                    let f = Arc::new(open_layer(&layer.source, (at.w, at.h), format, looping, session)?);
                    opened.push(f.clone());
                    f
                }
            };
            layers.push(ProgramLayer { source: layer.source.clone(), feed, placement: layer.placement });
        }
        // Before the clock starts (a session that runs from the first frame) nothing delivers yet.
        let started = session.slots().clock.is_some();
        for f in opened.iter().filter(|_| started) {
            if !f.wait_first(FIRST_PICTURE_WAIT) {
                tracing::warn!("{}: no picture yet; its layer shows when it has one", f.status().name());
            }
        }
        let status = match layers.as_slice() {
            [one] => one.feed.status().clone(),
            _ => Arc::new(SourceStatus::new(&format!("scene '{}'", scene.name))),
        };
        Ok(Program { id, scene: scene.clone(), layers, status })
    }

    /// The same program with the placements of `scene` (same sources, same order).
    pub(crate) fn edited(&self, scene: &Scene) -> Option<Program> {
        if scene.layers.len() != self.layers.len() || scene.layers.iter().zip(&self.layers).any(|(a, b)| a.source != b.source) {
            return None;
        }
        let layers = self
            .layers
            .iter()
            .zip(&scene.layers)
            .map(|(l, s)| ProgramLayer { source: l.source.clone(), feed: l.feed.clone(), placement: s.placement })
            .collect();
        Some(Program { id: self.id, scene: scene.clone(), layers, status: self.status.clone() })
    }

    /// The layers to draw, with this tick's pictures (`inputs[i]` for layer `i`).
    pub(crate) fn draw_layers<'a>(&'a self, inputs: &'a [Option<LayerInput>]) -> Vec<DrawLayer<'a>> {
        self.layers
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (l, input))| DrawLayer { key: (self.id << 8) | i as u64, input: input.as_ref(), placement: &l.placement })
            .collect()
    }

    /// The source whose pictures set the tick's time: a live camera, so
    /// that its frames go out frame for frame, stamped with their capture
    /// time. Without one the tick keeps the clock and takes the screen's
    /// newest picture each time (libobs's way: a steady cadence, a late grab
    /// costs the screen's layer a repeat).
    pub(crate) fn lead(&self) -> Option<&Arc<Feed>> {
        let camera = |l: &&ProgramLayer| matches!(&l.source, LayerSource::Video(VideoSourceSpec::Camera(_) | VideoSourceSpec::Auto));
        self.layers.iter().filter(camera).find(|l| l.feed.is_live()).map(|l| &l.feed)
    }

    /// Whether any source is paced (an unpaced session waits for it each tick).
    pub(crate) fn is_paced(&self) -> bool {
        self.layers.iter().any(|l| l.feed.is_paced())
    }

    /// Whether the picture has run out: the program has sources with an end
    /// (files that do not loop) and all of them have ended.
    pub(crate) fn has_ended(&self) -> bool {
        let mut finite = self.layers.iter().filter(|l| l.feed.is_finite()).peekable();
        finite.peek().is_some() && finite.all(|l| l.feed.has_ended())
    }

    /// The health of the picture: the first source standing in for another, or live.
    pub(crate) fn health(&self) -> SourceState {
        self.layers.iter().map(|l| l.feed.status().state()).find(|s| *s != SourceState::Live).unwrap_or(SourceState::Live)
    }
}

/// Opens one layer's source.
fn open_layer(
    source: &LayerSource,
    layer_size: (u32, u32),
    format: SessionFormat,
    looping: bool,
    session: &Arc<Shared>,
) -> Result<Feed, SessionError> {
    match source {
        LayerSource::Video(spec) => {
            // Made at the layer's size: crisp, and read back exactly by tests.
            let paced = matches!(spec, VideoSourceSpec::TestPattern | VideoSourceSpec::Noise | VideoSourceSpec::Y4m(_));
            let at = if paced {
                let (w, h) = (layer_size.0.clamp(16, format.width.max(16)), layer_size.1.clamp(16, format.height.max(16)));
                SessionFormat { width: w & !1, height: h & !1, fps: format.fps }
            } else {
                format
            };
            let opened = open_video(spec, at, looping)?;
            let finite = matches!(spec, VideoSourceSpec::Y4m(_)) && !looping;
            Feed::start(opened.source, opened.status, finite, session).map_err(|source| SessionError::Spawn { what: "tally-feed", source })
        }
        // Stills are made once, here: never per frame.
        LayerSource::Image(path) => {
            let still = crate::capture::load_image(path)?;
            let name = format!("image {}", path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()));
            Ok(Feed::still(still.frame, still.alpha, Arc::new(SourceStatus::new(&name))))
        }
        LayerSource::Text(style) => {
            // Sized for this canvas (the style's sizes are a 1080-line canvas's).
            let scale = |px: u32| (u64::from(px) * u64::from(format.height) / 1080).max(1) as u32;
            let at_size = crate::capture::TextStyle { size_px: scale(style.size_px), padding_px: scale(style.padding_px), ..style.clone() };
            let still = crate::capture::render_text(&at_size)?;
            let words: String = style.text.chars().take(24).collect();
            Ok(Feed::still(still.frame, still.alpha, Arc::new(SourceStatus::new(&format!("text '{words}'")))))
        }
        LayerSource::Colour(c) => {
            let still = crate::capture::colour_fill(*c, layer_size.0, layer_size.1);
            Ok(Feed::still(still.frame, still.alpha, Arc::new(SourceStatus::new(&format!("colour {c}")))))
        }
    }
}
