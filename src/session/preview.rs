//! The preview feed: the newest picture turned into RGBA at the size a face
//! asks for, never more often than it asks (the `tally-preview` thread).

use super::Shared;
use crate::capture::convert::fit_into;
use crate::media::VideoFrame;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An RGBA picture for the preview.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviewFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, RGBA, unpremultiplied.
    pub rgba: Vec<u8>,
    /// The source frame's time on the session clock, µs.
    pub pts_us: u64,
    /// Frames converted so far in this session (a face can tell new from old).
    pub serial: u64,
}

impl std::fmt::Debug for PreviewFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviewFrame({}x{}, #{} at {} µs)", self.width, self.height, self.serial, self.pts_us)
    }
}

/// What a face asks of the preview feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviewRequest {
    /// The largest picture wanted (the frame is fitted inside, aspect kept).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// At most this many pictures a second.
    pub max_fps: u32,
}

pub(super) fn preview_loop(shared: &Shared) {
    let mut last_pts = None;
    let mut last_at: Option<Instant> = None;
    let mut serial = 0u64;
    let mut rgba = Vec::new();
    loop {
        let (frame, request) = {
            let mut slots = shared.slots();
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let fresh = slots.newest.as_ref().is_some_and(|f| Some(f.pts_us) != last_pts);
                if let (true, Some(req)) = (fresh, slots.preview) {
                    break (slots.newest.clone(), req);
                }
                slots = shared.wake.wait_timeout(slots, super::POLL).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
            }
        };
        let Some(frame) = frame else { continue };
        // Never more often than asked.
        let min_gap = Duration::from_secs_f64(1.0 / f64::from(request.max_fps.max(1)));
        if let Some(at) = last_at {
            let since = at.elapsed();
            if since < min_gap {
                std::thread::sleep(min_gap - since);
            }
        }
        last_pts = Some(frame.pts_us);
        last_at = Some(Instant::now());
        serial += 1;
        match to_rgba(&frame, request, &mut rgba) {
            Ok((width, height)) => {
                let picture = PreviewFrame { width, height, rgba: std::mem::take(&mut rgba), pts_us: frame.pts_us, serial };
                shared.feeds.preview(Arc::new(picture));
            }
            Err(e) => tracing::warn!("preview: {e}"),
        }
    }
}

/// One preview picture of `frame` for `request` (what the preview thread
/// makes for each frame it shows; public for the benchmark).
pub fn preview_picture(frame: &VideoFrame, request: PreviewRequest) -> Result<PreviewFrame, String> {
    let mut rgba = Vec::new();
    let (width, height) = to_rgba(frame, request, &mut rgba)?;
    Ok(PreviewFrame { width, height, rgba, pts_us: frame.pts_us, serial: 0 })
}

/// The frame fitted into the request (aspect kept, never enlarged), as RGBA.
fn to_rgba(frame: &VideoFrame, request: PreviewRequest, rgba: &mut Vec<u8>) -> Result<(u32, u32), String> {
    let (w, h) = fit_size(frame.width, frame.height, request.width, request.height);
    let scaled;
    let src = if (w, h) == (frame.width, frame.height) {
        frame
    } else {
        scaled = fit_into(frame, w, h, frame.pts_us);
        &scaled
    };
    rgba.resize(w as usize * h as usize * 4, 0);
    let image = yuvutils_rs::YuvPlanarImage {
        y_plane: &src.y,
        y_stride: src.width,
        u_plane: &src.u,
        u_stride: src.width / 2,
        v_plane: &src.v,
        v_stride: src.width / 2,
        width: src.width,
        height: src.height,
    };
    yuvutils_rs::yuv420_to_rgba(&image, rgba, w * 4, yuvutils_rs::YuvRange::Limited, yuvutils_rs::YuvStandardMatrix::Bt709)
        .map_err(|e| format!("conversion: {e:?}"))?;
    Ok((w, h))
}

/// The largest even size inside `max_w`x`max_h` with the frame's aspect, at most the frame's own.
pub fn fit_size(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    if width <= max_w && height <= max_h {
        return (width, height);
    }
    let scale = (f64::from(max_w) / f64::from(width)).min(f64::from(max_h) / f64::from(height));
    let w = ((f64::from(width) * scale) as u32 & !1).max(2);
    let h = ((f64::from(height) * scale) as u32 & !1).max(2);
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_sizes_keep_the_aspect_and_never_enlarge() {
        assert_eq!(fit_size(1280, 720, 640, 640), (640, 360));
        assert_eq!(fit_size(1280, 720, 1920, 1080), (1280, 720));
        assert_eq!(fit_size(640, 480, 320, 180), (240, 180));
    }
}
