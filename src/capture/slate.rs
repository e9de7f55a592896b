//! Slates: the full frame a video source sends when it has no picture of its
//! own (camera not started yet, unplugged), so viewers see what is going on
//! instead of a frozen or black stream.

use super::font::{GLYPH_H, Plane, Rect, text_width};
use super::{CaptureError, FrameRate, SourceStatus, VideoFormat, VideoSource};
use crate::media::VideoFrame;
use std::sync::Arc;

/// Slate background luma (dark grey, BT.709 limited range).
const BACKGROUND_LUMA: u8 = 40;
/// Text luma.
const TEXT_LUMA: u8 = 220;

/// Paints `frame` as a slate: dark grey, `lines` centred in large letters
/// (upper-case A-Z, digits, `.` and `:`; other characters are left blank).
pub fn paint(frame: &mut VideoFrame, lines: &[&str]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    frame.y.fill(BACKGROUND_LUMA);
    frame.u.fill(128);
    frame.v.fill(128);
    let longest = lines.iter().map(|l| l.len()).max().unwrap_or(0).max(1);
    // As large as fits: at most 3/4 of the width, and of the height per line.
    let scale_w = (w * 3 / 4) / text_width(longest, 1).max(1);
    let line_h = GLYPH_H * 2;
    let scale_h = (h * 3 / 4) / (line_h * lines.len().max(1)).max(1);
    let scale = scale_w.min(scale_h).clamp(1, 16);
    let block_h = lines.len() * line_h * scale;
    let mut y = h.saturating_sub(block_h) / 2;
    let mut plane = Plane { data: &mut frame.y, width: w, height: h };
    for line in lines {
        let upper = line.to_ascii_uppercase();
        let tw = text_width(upper.len(), scale);
        let x = w.saturating_sub(tw) / 2;
        plane.draw_text(x, y, scale, upper.as_bytes(), TEXT_LUMA);
        y += line_h * scale;
    }
    // A thin bar at the bottom so a slate is recognisable even when tiny.
    let bar = Rect { x: 0, y: h.saturating_sub(h / 20), w, h: h / 20 };
    plane.fill_rect(bar, TEXT_LUMA / 2);
}

/// A video source that sends only a slate, at a steady rate: the stand-in
/// for a source that failed while running, so the stream and the preview go
/// on and say what happened instead of freezing.
pub struct SlateSource {
    frame: VideoFrame,
    rate: FrameRate,
    sent: u64,
    status: Arc<SourceStatus>,
}

impl SlateSource {
    /// A slate of `format`'s size and rate with `lines` on it; `status`
    /// (the failed source's, set to its fallback reason) is reported as its own.
    pub fn new(format: VideoFormat, lines: &[&str], status: Arc<SourceStatus>) -> SlateSource {
        let mut frame = VideoFrame::black(format.width, format.height, 0);
        paint(&mut frame, lines);
        SlateSource { frame, rate: format.frame_rate, sent: 0, status }
    }
}

impl VideoSource for SlateSource {
    fn format(&self) -> VideoFormat {
        VideoFormat { width: self.frame.width, height: self.frame.height, frame_rate: self.rate }
    }

    fn is_live(&self) -> bool {
        false
    }

    fn status(&self) -> Option<Arc<SourceStatus>> {
        Some(self.status.clone())
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError> {
        let mut frame = self.frame.clone();
        frame.pts_us = self.rate.pts_us_of_frame(self.sent);
        self.sent += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slate_has_text_and_background() {
        let mut f = VideoFrame::black(640, 360, 0);
        paint(&mut f, &["camera", "disconnected"]);
        let text = f.y.iter().filter(|&&v| v == TEXT_LUMA).count();
        let bg = f.y.iter().filter(|&&v| v == BACKGROUND_LUMA).count();
        assert!(text > 1000, "{text} text pixels");
        assert!(bg > text, "{bg} background pixels");
        // Tiny frames do not panic.
        let mut t = VideoFrame::black(16, 16, 0);
        paint(&mut t, &["waiting for camera"]);
    }
}
