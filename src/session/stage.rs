//! The stage: where each tick's pictures of every video source become the
//! one picture the renditions encode — the scene's layers composed (or the
//! slate while the camera is hidden) — and each block of the audio source
//! the one block they send (or silence while muted): the seam the mixer
//! (gains, filters, limiter) fills next.

use crate::compose::{Compositor, DrawLayer};
use crate::media::{AudioFrame, VideoFrame};

/// The picture side of the stage: the compositor, and the slate that
/// replaces the picture while the camera is hidden.
#[derive(Default)]
pub struct VideoStage {
    compositor: Compositor,
    /// Made once per size.
    slate: Option<VideoFrame>,
}

impl VideoStage {
    /// Draws the tick's picture: the scene's layers, or the "camera hidden" slate.
    pub fn compose(&mut self, layers: &[DrawLayer<'_>], frame: &mut VideoFrame, hidden: bool) {
        if hidden {
            self.hide(frame);
        } else {
            self.compositor.draw(layers, frame);
        }
    }

    /// Draws a fade from one scene to the next at `t` (0 to 1), or the slate.
    pub fn compose_fade(&mut self, from: &[DrawLayer<'_>], to: &[DrawLayer<'_>], t: f32, frame: &mut VideoFrame, hidden: bool) {
        if hidden {
            self.hide(frame);
        } else {
            self.compositor.draw_fade(from, to, t, frame);
        }
    }

    fn hide(&mut self, frame: &mut VideoFrame) {
        let slate = match self.slate.take() {
            Some(s) if (s.width, s.height) == (frame.width, frame.height) => s,
            _ => {
                let mut s = VideoFrame::black(frame.width, frame.height, 0);
                crate::capture::slate::paint(&mut s, &["camera hidden"]);
                s
            }
        };
        frame.y.copy_from_slice(&slate.y);
        frame.u.copy_from_slice(&slate.u);
        frame.v.copy_from_slice(&slate.v);
        self.slate = Some(slate);
    }
}

/// The sound side of the stage.
#[derive(Default)]
pub struct AudioStage;

impl AudioStage {
    /// Mixes the tick's block in place: the one source as it is, or silence while muted.
    pub fn mix(&mut self, block: &mut AudioFrame, muted: bool) {
        if muted {
            block.samples.fill(0);
        }
    }
}
