//! The compositor: a scene's layers drawn in order onto one I420 canvas.
//!
//! Each layer's source picture is cropped and scaled once to the layer's
//! size and kept (with its coverage: the source's alpha times the layer's
//! opacity, at luma and at chroma resolution) until the source hands over
//! a new picture or the layer moves; a still image, a text, a screen that
//! did not change, cost one copy of their pixels per frame, not a scale.
//! A picture already at its layer's size is used where it is (no copy).
//! A fade draws both scenes and mixes them.

use super::placement::{PixelRect, Placement, canvas_rect, crop_rect, fitted};
use crate::media::VideoFrame;
use crate::media::scale::{Plane, scale_plane};
use std::collections::HashMap;
use std::sync::Arc;

/// One layer's source picture as the compositor gets it each frame.
#[derive(Clone)]
pub struct LayerInput {
    /// The newest picture (I420).
    pub frame: Arc<VideoFrame>,
    /// Coverage per luma pixel (255 opaque); `None`: opaque.
    pub alpha: Option<Arc<Vec<u8>>>,
    /// Changes whenever the picture does (the scaled copy is kept while it does not).
    pub serial: u64,
}

/// A layer to draw: its picture, its placement, and a key naming it across
/// frames (the same key, the same layer: its scaled copy is reused).
pub struct DrawLayer<'a> {
    /// Names the layer across frames.
    pub key: u64,
    /// Its source's picture, if the source has one yet (none: nothing drawn).
    pub input: Option<&'a LayerInput>,
    /// Where it goes.
    pub placement: &'a Placement,
}

/// How much of a scaled layer covers what is below it.
enum Coverage {
    Opaque,
    /// One value everywhere (an opaque source at an opacity).
    Uniform(u8),
    /// Per pixel, at luma and at chroma resolution.
    Planes { luma: Vec<u8>, chroma: Vec<u8> },
}

/// A layer's picture at its layer's size, kept across frames.
struct Scaled {
    serial: u64,
    source_size: (u32, u32),
    placement: Placement,
    canvas: (u32, u32),
    /// Where it lands on the canvas.
    at: PixelRect,
    /// The picture at `at`'s size: the source's own when it already is.
    picture: Arc<VideoFrame>,
    coverage: Coverage,
    used: u64,
}

/// Draws scenes; holds each layer's scaled picture between frames.
#[derive(Default)]
pub struct Compositor {
    cache: HashMap<u64, Scaled>,
    /// Frames drawn: a cached layer not drawn in the newest one is dropped.
    frame: u64,
    /// The second scene's canvas during a fade.
    fade_canvas: Option<VideoFrame>,
    /// Layers scaled (not found in the cache) since the compositor was made.
    pub scaled: u64,
}

impl Compositor {
    /// Draws `layers` (bottom first) onto `out`, which is cleared to black first.
    pub fn draw(&mut self, layers: &[DrawLayer<'_>], out: &mut VideoFrame) {
        self.frame += 1;
        self.draw_onto(layers, out);
        self.evict();
    }

    /// Draws the fade from `from` to `to` at `t` (0: all `from`, 1: all `to`).
    pub fn draw_fade(&mut self, from: &[DrawLayer<'_>], to: &[DrawLayer<'_>], t: f32, out: &mut VideoFrame) {
        self.frame += 1;
        let w = (t.clamp(0.0, 1.0) * 256.0).round() as u32;
        if w == 0 {
            self.draw_onto(from, out);
        } else if w >= 256 {
            self.draw_onto(to, out);
        } else {
            self.draw_onto(from, out);
            let mut second = match self.fade_canvas.take() {
                Some(c) if (c.width, c.height) == (out.width, out.height) => c,
                _ => VideoFrame::black(out.width, out.height, 0),
            };
            self.draw_onto(to, &mut second);
            for (a, b) in [(&mut out.y, &second.y), (&mut out.u, &second.u), (&mut out.v, &second.v)] {
                for (d, &s) in a.iter_mut().zip(b.iter()) {
                    *d = ((u32::from(*d) * (256 - w) + u32::from(s) * w + 128) >> 8) as u8;
                }
            }
            self.fade_canvas = Some(second);
        }
        self.evict();
    }

    fn evict(&mut self) {
        let frame = self.frame;
        self.cache.retain(|_, s| s.used == frame);
        if self.cache.is_empty() {
            self.fade_canvas = None;
        }
    }

    fn draw_onto(&mut self, layers: &[DrawLayer<'_>], out: &mut VideoFrame) {
        let canvas = (out.width, out.height);
        let covered = layers.iter().rposition(|l| self.covers(l, canvas));
        // What the topmost opaque full-canvas layer hides is neither cleared nor drawn.
        let first = covered.unwrap_or(0);
        if covered.is_none() {
            out.y.fill(16);
            out.u.fill(128);
            out.v.fill(128);
        }
        for layer in &layers[first..] {
            let Some(input) = layer.input else { continue };
            let p = layer.placement;
            // NaN opacity draws nothing, as 0 does.
            if !p.visible || p.opacity.is_nan() || p.opacity <= 0.0 {
                continue;
            }
            let scaled = self.scaled(layer.key, input, p, canvas);
            blit_layer(out, scaled);
        }
    }

    /// Whether `layer` hides the whole canvas (visible, opaque, covering it).
    fn covers(&self, layer: &DrawLayer<'_>, canvas: (u32, u32)) -> bool {
        let Some(input) = layer.input else { return false };
        let p = layer.placement;
        if !p.visible || p.opacity < 1.0 || input.alpha.is_some() {
            return false;
        }
        let (_, at) = place(p, input, canvas);
        at.x <= 0 && at.y <= 0 && at.x + i64::from(at.w) >= i64::from(canvas.0) && at.y + i64::from(at.h) >= i64::from(canvas.1)
    }

    /// The layer's scaled picture: the kept one while nothing changed.
    fn scaled(&mut self, key: u64, input: &LayerInput, p: &Placement, canvas: (u32, u32)) -> &Scaled {
        use std::collections::hash_map::Entry;
        let frame = self.frame;
        let source_size = (input.frame.width, input.frame.height);
        let fresh = |s: &Scaled| s.serial == input.serial && s.source_size == source_size && s.placement == *p && s.canvas == canvas;
        let s = match self.cache.entry(key) {
            Entry::Occupied(e) if fresh(e.get()) => e.into_mut(),
            Entry::Occupied(e) => {
                self.scaled += 1;
                let s = e.into_mut();
                *s = scale_layer(input, p, canvas, frame);
                s
            }
            Entry::Vacant(e) => {
                self.scaled += 1;
                e.insert(scale_layer(input, p, canvas, frame))
            }
        };
        s.used = frame;
        s
    }
}

/// The source part shown and where it lands, in pixels.
fn place(p: &Placement, input: &LayerInput, canvas: (u32, u32)) -> (PixelRect, PixelRect) {
    let src = crop_rect(&p.crop, input.frame.width, input.frame.height);
    let dst = canvas_rect(&p.rect, canvas.0, canvas.1);
    fitted(p.fit, src, dst)
}

fn scale_layer(input: &LayerInput, p: &Placement, canvas: (u32, u32), frame: u64) -> Scaled {
    let (src, at) = place(p, input, canvas);
    let f = &input.frame;
    let whole = src.x == 0 && src.y == 0 && (src.w, src.h) == (f.width, f.height);
    let picture = if whole && (at.w, at.h) == (f.width, f.height) {
        input.frame.clone()
    } else {
        let mut out = VideoFrame::black(at.w, at.h, 0);
        let (fw, sx, sy) = (f.width as usize, src.x as usize, src.y as usize);
        let (w, h, sw, sh) = (at.w as usize, at.h as usize, src.w as usize, src.h as usize);
        let luma = Plane { data: &f.y[sy * fw + sx..], stride: fw, width: sw, height: sh };
        scale_plane(luma, &mut out.y, w, 0, 0, w, h);
        for (from, to) in [(&f.u, &mut out.u), (&f.v, &mut out.v)] {
            let chroma = Plane { data: &from[sy / 2 * fw / 2 + sx / 2..], stride: fw / 2, width: sw / 2, height: sh / 2 };
            scale_plane(chroma, to, w / 2, 0, 0, w / 2, h / 2);
        }
        Arc::new(out)
    };
    let opacity = (p.opacity.clamp(0.0, 1.0) * 255.0).round() as u32;
    let coverage = match &input.alpha {
        None if opacity >= 255 => Coverage::Opaque,
        None => Coverage::Uniform(opacity as u8),
        Some(alpha) => {
            let (fw, sx, sy) = (f.width as usize, src.x as usize, src.y as usize);
            let (w, h) = (at.w as usize, at.h as usize);
            let mut luma = vec![0u8; w * h];
            if alpha.len() >= fw * f.height as usize {
                let plane = Plane { data: &alpha[sy * fw + sx..], stride: fw, width: src.w as usize, height: src.h as usize };
                scale_plane(plane, &mut luma, w, 0, 0, w, h);
            } else {
                luma.fill(255);
            }
            if opacity < 255 {
                for a in &mut luma {
                    *a = ((u32::from(*a) * opacity + 127) / 255) as u8;
                }
            }
            let chroma = chroma_coverage(&luma, w, h);
            Coverage::Planes { luma, chroma }
        }
    };
    Scaled { serial: input.serial, source_size: (f.width, f.height), placement: *p, canvas, at, picture, coverage, used: frame }
}

/// The 2x2 average of a luma-resolution coverage plane.
fn chroma_coverage(luma: &[u8], w: usize, h: usize) -> Vec<u8> {
    let (cw, ch) = (w / 2, h / 2);
    let mut out = vec![0u8; cw * ch];
    for (j, row) in out.chunks_exact_mut(cw).enumerate() {
        let (r0, r1) = (&luma[2 * j * w..][..w], &luma[(2 * j + 1) * w..][..w]);
        for (i, o) in row.iter_mut().enumerate() {
            let sum = u32::from(r0[2 * i]) + u32::from(r0[2 * i + 1]) + u32::from(r1[2 * i]) + u32::from(r1[2 * i + 1]);
            *o = ((sum + 2) / 4) as u8;
        }
    }
    out
}

/// How one plane's rows are covered while blitting.
#[derive(Clone, Copy)]
enum Cover<'a> {
    Opaque,
    Uniform(u32),
    /// Same layout as the source plane.
    Plane(&'a [u8]),
}

/// Draws a scaled layer onto the canvas, clipped to it.
fn blit_layer(out: &mut VideoFrame, s: &Scaled) {
    let (cw, ch) = (i64::from(out.width), i64::from(out.height));
    let at = s.at;
    let (x0, y0) = (at.x.max(0), at.y.max(0));
    let (x1, y1) = ((at.x + i64::from(at.w)).min(cw), (at.y + i64::from(at.h)).min(ch));
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    // Even by construction: every edge is even.
    let (dx, dy, w, h) = (x0 as usize, y0 as usize, (x1 - x0) as usize, (y1 - y0) as usize);
    let (sx, sy) = ((x0 - at.x) as usize, (y0 - at.y) as usize);
    let pw = at.w as usize;
    let (luma, chroma) = match &s.coverage {
        Coverage::Opaque => (Cover::Opaque, Cover::Opaque),
        Coverage::Uniform(a) => (Cover::Uniform(u32::from(*a)), Cover::Uniform(u32::from(*a))),
        Coverage::Planes { luma, chroma } => (Cover::Plane(luma), Cover::Plane(chroma)),
    };
    let p = &s.picture;
    let canvas_w = out.width as usize;
    let luma_rect = Blit { dx, dy, sx, sy, w, h };
    blit(&mut out.y, canvas_w, &p.y, pw, luma_rect, luma);
    let chroma_rect = Blit { dx: dx / 2, dy: dy / 2, sx: sx / 2, sy: sy / 2, w: w / 2, h: h / 2 };
    blit(&mut out.u, canvas_w / 2, &p.u, pw / 2, chroma_rect, chroma);
    blit(&mut out.v, canvas_w / 2, &p.v, pw / 2, chroma_rect, chroma);
}

/// A rectangle copied from a source plane (at `sx`, `sy`) onto the canvas (at `dx`, `dy`).
#[derive(Clone, Copy)]
struct Blit {
    dx: usize,
    dy: usize,
    sx: usize,
    sy: usize,
    w: usize,
    h: usize,
}

/// `s*a + d*(255-a)`, divided by 255 and rounded (exact for 8-bit values).
#[inline]
fn mix(s: u8, d: u8, a: u32) -> u8 {
    let x = u32::from(s) * a + u32::from(d) * (255 - a) + 128;
    ((x + (x >> 8)) >> 8) as u8
}

fn blit(dst: &mut [u8], dst_stride: usize, src: &[u8], src_stride: usize, r: Blit, cover: Cover<'_>) {
    for j in 0..r.h {
        let d = &mut dst[(r.dy + j) * dst_stride + r.dx..][..r.w];
        let at = (r.sy + j) * src_stride + r.sx;
        let s = &src[at..][..r.w];
        match cover {
            Cover::Opaque => d.copy_from_slice(s),
            Cover::Uniform(a) => {
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = mix(s, *d, a);
                }
            }
            Cover::Plane(alpha) => {
                let a = &alpha[at..][..r.w];
                for ((d, &s), &a) in d.iter_mut().zip(s).zip(a) {
                    *d = match a {
                        0 => *d,
                        255 => s,
                        a => mix(s, *d, u32::from(a)),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::placement::{Crop, Fit, Rect};

    fn flat(w: u32, h: u32, y: u8, u: u8, v: u8) -> Arc<VideoFrame> {
        let mut f = VideoFrame::black(w, h, 0);
        f.y.fill(y);
        f.u.fill(u);
        f.v.fill(v);
        Arc::new(f)
    }

    fn input(frame: Arc<VideoFrame>, alpha: Option<Vec<u8>>, serial: u64) -> LayerInput {
        LayerInput { frame, alpha: alpha.map(Arc::new), serial }
    }

    fn at(f: &VideoFrame, x: usize, y: usize) -> (u8, u8, u8) {
        let cw = f.width as usize / 2;
        (f.y[y * f.width as usize + x], f.u[y / 2 * cw + x / 2], f.v[y / 2 * cw + x / 2])
    }

    #[test]
    fn layers_are_drawn_in_order_at_their_rectangles() {
        let screen = input(flat(1920, 1080, 200, 100, 150), None, 1);
        let camera = input(flat(640, 360, 50, 90, 200), None, 1);
        let full = Placement::default();
        let corner = Placement::at(Rect { x: 0.75, y: 0.75, w: 0.25, h: 0.25 });
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(1280, 720, 0);
        c.draw(&[DrawLayer { key: 1, input: Some(&screen), placement: &full }, DrawLayer { key: 2, input: Some(&camera), placement: &corner }], &mut out);
        assert_eq!(at(&out, 100, 100), (200, 100, 150));
        assert_eq!(at(&out, 1279, 719), (50, 90, 200));
        assert_eq!(at(&out, 960, 540), (50, 90, 200));
        assert_eq!(at(&out, 958, 538), (200, 100, 150));
    }

    #[test]
    fn alpha_and_opacity_mix_with_what_is_below() {
        let below = input(flat(64, 64, 16, 128, 128), None, 1);
        let mut alpha = vec![255u8; 64 * 64];
        alpha[..64 * 32].fill(0);
        let logo = input(flat(64, 64, 235, 60, 200), Some(alpha), 1);
        let full = Placement::default();
        let half = Placement { opacity: 0.5, ..Placement::default() };
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(64, 64, 0);
        c.draw(&[DrawLayer { key: 1, input: Some(&below), placement: &full }, DrawLayer { key: 2, input: Some(&logo), placement: &half }], &mut out);
        // Transparent top half: what is below.
        assert_eq!(at(&out, 10, 10), (16, 128, 128));
        // Opaque bottom half at 50 %: halfway.
        let (y, u, v) = at(&out, 10, 50);
        assert!((y as i32 - 126).abs() <= 1 && (u as i32 - 94).abs() <= 1 && (v as i32 - 164).abs() <= 1, "{y} {u} {v}");
    }

    #[test]
    fn a_layer_is_scaled_once_while_nothing_changes() {
        let cam = flat(1280, 720, 80, 128, 128);
        let corner = Placement::at(Rect { x: 0.5, y: 0.5, w: 0.5, h: 0.5 });
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(1280, 720, 0);
        for _ in 0..5 {
            let i = input(cam.clone(), None, 7);
            c.draw(&[DrawLayer { key: 9, input: Some(&i), placement: &corner }], &mut out);
        }
        assert_eq!(c.scaled, 1);
        let moved = Placement::at(Rect { x: 0.0, y: 0.0, w: 0.5, h: 0.5 });
        let i = input(cam.clone(), None, 7);
        c.draw(&[DrawLayer { key: 9, input: Some(&i), placement: &moved }], &mut out);
        let i = input(cam, None, 8);
        c.draw(&[DrawLayer { key: 9, input: Some(&i), placement: &moved }], &mut out);
        assert_eq!(c.scaled, 3);
    }

    #[test]
    fn a_layer_half_off_the_canvas_is_clipped() {
        let cam = input(flat(320, 180, 100, 110, 120), None, 1);
        let off = Placement::at(Rect { x: -0.25, y: 0.9, w: 0.5, h: 0.5 });
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(640, 360, 0);
        c.draw(&[DrawLayer { key: 1, input: Some(&cam), placement: &off }], &mut out);
        assert_eq!(at(&out, 0, 359), (100, 110, 120));
        assert_eq!(at(&out, 200, 359), (16, 128, 128));
        assert_eq!(at(&out, 0, 300), (16, 128, 128));
    }

    #[test]
    fn fit_leaves_bars_transparent_and_fill_and_crop_choose_the_part_shown() {
        // Left half black, right half white.
        let mut f = VideoFrame::black(200, 100, 0);
        for row in f.y.chunks_exact_mut(200) {
            row[100..].fill(235);
        }
        let f = Arc::new(f);
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(100, 100, 0);
        let bg = input(flat(100, 100, 90, 128, 128), None, 1);
        let full = Placement::default();
        let src = input(f.clone(), None, 1);
        c.draw(&[DrawLayer { key: 1, input: Some(&bg), placement: &full }, DrawLayer { key: 2, input: Some(&src), placement: &full }], &mut out);
        assert_eq!(at(&out, 50, 5).0, 90, "the bar above a wide source shows what is below");
        let fill = Placement { fit: Fit::Fill, ..Placement::default() };
        c.draw(&[DrawLayer { key: 2, input: Some(&src), placement: &fill }], &mut out);
        assert_eq!((at(&out, 10, 5).0, at(&out, 90, 95).0), (16, 235));
        let right = Placement { crop: Crop { left: 0.5, ..Crop::default() }, fit: Fit::Stretch, ..Placement::default() };
        c.draw(&[DrawLayer { key: 2, input: Some(&src), placement: &right }], &mut out);
        assert!(out.y.iter().all(|&v| v == 235));
    }

    #[test]
    fn a_fade_mixes_the_two_scenes() {
        let a = input(flat(64, 64, 16, 128, 128), None, 1);
        let b = input(flat(64, 64, 216, 28, 228), None, 1);
        let full = Placement::default();
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(64, 64, 0);
        let from = [DrawLayer { key: 1, input: Some(&a), placement: &full }];
        let to = [DrawLayer { key: 2, input: Some(&b), placement: &full }];
        c.draw_fade(&from, &to, 0.25, &mut out);
        assert_eq!(at(&out, 3, 3), (66, 103, 153));
        c.draw_fade(&from, &to, 1.0, &mut out);
        assert_eq!(at(&out, 3, 3), (216, 28, 228));
    }

    #[test]
    fn a_layer_without_a_picture_yet_draws_nothing() {
        let mut c = Compositor::default();
        let mut out = VideoFrame::black(64, 64, 0);
        out.y.fill(99);
        c.draw(&[DrawLayer { key: 1, input: None, placement: &Placement::default() }], &mut out);
        assert!(out.y.iter().all(|&v| v == 16));
    }
}
