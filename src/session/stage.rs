//! The stage: where each tick's pictures of every video source become the
//! one picture the renditions encode, and each tick's blocks of every audio
//! source the one block they send. Today the set holds one video and one
//! audio source, so the stage is "the one video source at full frame" (or
//! the slate while the camera is hidden) and "the one audio source" (or
//! silence while muted): the seam the compositor (scenes, layers) and the
//! mixer (gains, filters, limiter) fill.

use crate::media::{AudioFrame, VideoFrame};

/// The picture side of the stage.
#[derive(Default)]
pub struct VideoStage {
    /// The slate that replaces the picture while the camera is hidden, made once per size.
    slate: Option<VideoFrame>,
}

impl VideoStage {
    /// Composes the tick's picture in place: the source's frame at full
    /// frame, or the "camera hidden" slate over it.
    pub fn compose(&mut self, frame: &mut VideoFrame, hidden: bool) {
        if !hidden {
            return;
        }
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
