//! Where a layer goes on a canvas: its rectangle, the part of its source
//! it shows, how the source fits the rectangle, its opacity. Kept in
//! fractions of the canvas (and of the source) so one scene draws the same
//! at 720p and 1080p; turned into even pixel rectangles (I420) per draw.

use serde::{Deserialize, Serialize};

/// A rectangle in fractions of the canvas: (0, 0) is the top left, (1, 1)
/// the bottom right. It may reach past the canvas (dragged half off it):
/// only the part on the canvas is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Rect {
    /// The whole canvas.
    pub const FULL: Rect = Rect { x: 0.0, y: 0.0, w: 1.0, h: 1.0 };

    /// This rectangle with its values made usable: finite, at least a
    /// pixel's worth, at most four canvases wide and tall (a layer's scaled
    /// picture is held in memory, so its size is bounded).
    pub fn sanitised(self) -> Rect {
        let finite = |v: f32, or: f32| if v.is_finite() { v } else { or };
        let (w, h) = (finite(self.w, 1.0).clamp(MIN_EXTENT, MAX_EXTENT), finite(self.h, 1.0).clamp(MIN_EXTENT, MAX_EXTENT));
        Rect { x: finite(self.x, 0.0).clamp(-MAX_EXTENT, MAX_EXTENT), y: finite(self.y, 0.0).clamp(-MAX_EXTENT, MAX_EXTENT), w, h }
    }

    /// Whether the point (fractions of the canvas) is inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x && x < self.x + self.w && y >= self.y && y < self.y + self.h
    }
}

/// Smallest extent of a rectangle, in canvas fractions.
const MIN_EXTENT: f32 = 0.01;
/// Largest extent (and offset) of a rectangle, in canvases: a layer's
/// scaled picture is at most 4x4 canvases.
const MAX_EXTENT: f32 = 4.0;

/// What is cut off each edge of the source before it is placed, in
/// fractions of the source (0.25 on the left drops its left quarter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Crop {
    /// Off the left edge.
    pub left: f32,
    /// Off the top edge.
    pub top: f32,
    /// Off the right edge.
    pub right: f32,
    /// Off the bottom edge.
    pub bottom: f32,
}

impl Crop {
    /// Whether nothing is cut.
    pub fn is_none(&self) -> bool {
        *self == Crop::default()
    }
}

/// How the (cropped) source fills its rectangle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scaled to lie inside the rectangle, aspect kept, centred (bars stay
    /// transparent: what is below shows).
    #[default]
    Fit,
    /// Scaled to cover the rectangle, aspect kept, the overflow cropped
    /// around the centre.
    Fill,
    /// Scaled to the rectangle exactly (aspect not kept).
    Stretch,
}

/// Where and how a layer is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Its rectangle on the canvas.
    pub rect: Rect,
    /// What of the source it shows.
    pub crop: Crop,
    /// How the source fits the rectangle.
    pub fit: Fit,
    /// 0 (invisible) to 1 (as the source is).
    pub opacity: f32,
    /// Drawn at all.
    pub visible: bool,
}

impl Default for Placement {
    fn default() -> Self {
        Placement { rect: Rect::FULL, crop: Crop::default(), fit: Fit::Fit, opacity: 1.0, visible: true }
    }
}

impl Placement {
    /// At `rect`, everything else as by default.
    pub fn at(rect: Rect) -> Placement {
        Placement { rect, ..Placement::default() }
    }
}

/// A rectangle in pixels (even: I420's chroma is 2x2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelRect {
    /// Left edge (may be negative: off the canvas).
    pub x: i64,
    /// Top edge (may be negative).
    pub y: i64,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// Rounds to the nearest even integer.
fn even(v: f64) -> i64 {
    ((v / 2.0).round() as i64) * 2
}

/// The source rectangle a crop leaves of a `sw` x `sh` picture (even, at
/// least 2x2).
pub fn crop_rect(crop: &Crop, sw: u32, sh: u32) -> PixelRect {
    let frac = |v: f32| f64::from(if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 });
    let (fw, fh) = (f64::from(sw), f64::from(sh));
    let x0 = even(frac(crop.left) * fw).clamp(0, i64::from(sw));
    let y0 = even(frac(crop.top) * fh).clamp(0, i64::from(sh));
    let x1 = (i64::from(sw) - even(frac(crop.right) * fw)).clamp(x0, i64::from(sw));
    let y1 = (i64::from(sh) - even(frac(crop.bottom) * fh)).clamp(y0, i64::from(sh));
    let (w, h) = (((x1 - x0) as u32) & !1, ((y1 - y0) as u32) & !1);
    if w < 2 || h < 2 {
        return PixelRect { x: 0, y: 0, w: sw & !1, h: sh & !1 };
    }
    PixelRect { x: x0, y: y0, w, h }
}

/// The layer's rectangle on a `cw` x `ch` canvas, in pixels.
pub fn canvas_rect(rect: &Rect, cw: u32, ch: u32) -> PixelRect {
    let r = rect.sanitised();
    let (fw, fh) = (f64::from(cw), f64::from(ch));
    let x = even(f64::from(r.x) * fw);
    let y = even(f64::from(r.y) * fh);
    let w = even(f64::from(r.w) * fw).max(2) as u32;
    let h = even(f64::from(r.h) * fh).max(2) as u32;
    PixelRect { x, y, w, h }
}

/// Where the source's `src` rectangle is drawn for a layer whose rectangle
/// is `dst`, and which part of `src` is drawn: (source part, destination),
/// both even. `Fit` shrinks the destination, `Fill` the source part.
pub fn fitted(fit: Fit, src: PixelRect, dst: PixelRect) -> (PixelRect, PixelRect) {
    let (sw, sh, dw, dh) = (u64::from(src.w), u64::from(src.h), u64::from(dst.w), u64::from(dst.h));
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return (src, dst);
    }
    let wider = sw * dh >= sh * dw;
    match fit {
        Fit::Stretch => (src, dst),
        Fit::Fit => {
            let (w, h) = if wider { (dw, dw * sh / sw) } else { (dh * sw / sh, dh) };
            let (w, h) = (((w as u32) & !1).clamp(2, dst.w), ((h as u32) & !1).clamp(2, dst.h));
            let x = dst.x + i64::from(((dst.w - w) / 2) & !1);
            let y = dst.y + i64::from(((dst.h - h) / 2) & !1);
            (src, PixelRect { x, y, w, h })
        }
        Fit::Fill => {
            // The source part with the destination's aspect, centred.
            let (w, h) = if wider { (sh * dw / dh, sh) } else { (sw, sw * dh / dw) };
            let (w, h) = (((w as u32) & !1).clamp(2, src.w), ((h as u32) & !1).clamp(2, src.h));
            let x = src.x + i64::from(((src.w - w) / 2) & !1);
            let y = src.y + i64::from(((src.h - h) / 2) & !1);
            (PixelRect { x, y, w, h }, dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corner_rectangle_lands_on_even_pixels() {
        let r = canvas_rect(&Rect { x: 0.7, y: 0.7, w: 0.25, h: 0.25 }, 1280, 720);
        assert_eq!(r, PixelRect { x: 896, y: 504, w: 320, h: 180 });
        let odd = canvas_rect(&Rect { x: 0.3333, y: 0.0, w: 0.3333, h: 1.0 }, 1281, 719);
        assert!(odd.x % 2 == 0 && odd.w.is_multiple_of(2) && odd.h.is_multiple_of(2), "{odd:?}");
    }

    #[test]
    fn hostile_rectangles_are_bounded() {
        let r = canvas_rect(&Rect { x: f32::NAN, y: -1e30, w: 1e30, h: f32::INFINITY }, 1920, 1080);
        assert!(r.w <= 4 * 1920 && r.h <= 4 * 1080, "{r:?}");
        let tiny = canvas_rect(&Rect { x: 0.0, y: 0.0, w: 0.0, h: -3.0 }, 1920, 1080);
        assert!(tiny.w >= 2 && tiny.h >= 2);
    }

    #[test]
    fn fit_keeps_the_aspect_inside_and_fill_crops_around_the_centre() {
        let src = PixelRect { x: 0, y: 0, w: 1920, h: 1080 };
        let square = PixelRect { x: 100, y: 100, w: 400, h: 400 };
        let (s, d) = fitted(Fit::Fit, src, square);
        assert_eq!(s, src);
        assert_eq!((d.x, d.w), (100, 400));
        assert_eq!(d.h, 224);
        assert_eq!(d.y, 100 + 88);
        let (s, d) = fitted(Fit::Fill, src, square);
        assert_eq!(d, square);
        assert_eq!((s.w, s.h), (1080, 1080));
        assert_eq!(s.x, 420);
        assert_eq!(fitted(Fit::Stretch, src, square), (src, square));
    }

    #[test]
    fn a_crop_keeps_the_rest_of_the_source() {
        let c = Crop { left: 0.25, top: 0.0, right: 0.25, bottom: 0.5 };
        assert_eq!(crop_rect(&c, 1280, 720), PixelRect { x: 320, y: 0, w: 640, h: 360 });
        // A crop that leaves nothing keeps the whole source.
        let all = Crop { left: 0.6, top: 0.0, right: 0.6, bottom: 0.0 };
        assert_eq!(crop_rect(&all, 640, 360), PixelRect { x: 0, y: 0, w: 640, h: 360 });
    }
}
