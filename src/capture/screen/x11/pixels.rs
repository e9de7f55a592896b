//! What the X server's pixels look like, and turning them into I420.
//!
//! Only the layout every TrueColor desktop uses is accepted: 32 bits per
//! pixel (depth 24, or 32 with alpha), red in 0xff0000, green in 0xff00,
//! blue in 0xff, least significant byte first: in memory B, G, R, X.
//! Anything else (16-bit or 30-bit colour, a big-endian server) is refused
//! with [`CaptureError::Format`] rather than shown in the wrong colours.
//!
//! Colour: the same conversion as [`FrameConverter`](crate::capture::FrameConverter)
//! applies to RGB cameras (yuvutils-rs, BT.709, limited range, its
//! `Balanced` mode), so a screen and a camera showing the same colour
//! deliver the same Y, U, V.

use crate::capture::CaptureError;
use crate::media::VideoFrame;
use x11rb::protocol::xproto::{ImageOrder, Setup, Visualid};
use yuvutils_rs::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// Bytes per pixel of the one accepted layout.
pub(super) const BYTES_PER_PIXEL: usize = 4;

/// Largest cursor image drawn, in pixels (cursors are 16..=256 px square;
/// a bigger one is left out rather than blended pixel by pixel each frame).
pub(super) const MAX_CURSOR_PIXELS: usize = 512 * 512;

/// Checks that drawables of `depth` with `visual` deliver B, G, R, X bytes
/// (see the module doc); `what` names the drawable in the error.
pub(super) fn check_layout(setup: &Setup, depth: u8, visual: Visualid, what: &str) -> Result<(), CaptureError> {
    let refuse = |why: String| Err(CaptureError::Format(format!("{what}: {why}; only 24-bit BGRX TrueColor is supported")));
    if depth != 24 && depth != 32 {
        return refuse(format!("depth {depth}"));
    }
    if setup.image_byte_order != ImageOrder::LSB_FIRST {
        return refuse("the X server sends images most significant byte first".into());
    }
    match setup.pixmap_formats.iter().find(|f| f.depth == depth) {
        Some(f) if f.bits_per_pixel == 32 && f.scanline_pad == 32 => {}
        Some(f) => return refuse(format!("{} bits per pixel, rows padded to {} bits", f.bits_per_pixel, f.scanline_pad)),
        None => return refuse(format!("the X server lists no image format for depth {depth}")),
    }
    let found = setup
        .roots
        .iter()
        .flat_map(|s| &s.allowed_depths)
        .filter(|d| d.depth == depth)
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == visual);
    match found {
        Some(v) if (v.red_mask, v.green_mask, v.blue_mask) == (0xff_0000, 0xff00, 0xff) => Ok(()),
        Some(v) => refuse(format!("colour masks R {:#x} G {:#x} B {:#x}", v.red_mask, v.green_mask, v.blue_mask)),
        None => refuse(format!("visual {visual:#x} is not one of the screen's")),
    }
}

/// Makes `frame` `width`x`height` (both even), reusing its planes' memory.
pub(super) fn resize_frame(frame: &mut VideoFrame, width: u32, height: u32) {
    let luma = width as usize * height as usize;
    frame.width = width;
    frame.height = height;
    frame.y.resize(luma, 16);
    frame.u.resize(luma / 4, 128);
    frame.v.resize(luma / 4, 128);
}

/// Converts a `width`x`height` BGRX picture (rows `stride` bytes apart) into
/// `frame`, which is resized to it. Both sides must be even and non-zero.
pub(super) fn bgrx_to_i420(
    bgrx: &[u8],
    stride: usize,
    width: u32,
    height: u32,
    frame: &mut VideoFrame,
) -> Result<(), CaptureError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(CaptureError::Format(format!("screen picture {width}x{height} is not even and non-zero")));
    }
    let row = width as usize * BYTES_PER_PIXEL;
    // yuvutils-rs panics on a short buffer: check first.
    let need = stride.checked_mul(height as usize - 1).and_then(|n| n.checked_add(row));
    if stride < row || need.is_none_or(|n| bgrx.len() < n) {
        return Err(CaptureError::Format(format!(
            "screen picture {width}x{height} (stride {stride}) in {} bytes",
            bgrx.len()
        )));
    }
    let stride32 = u32::try_from(stride).map_err(|_| CaptureError::Format(format!("stride {stride} too large")))?;
    resize_frame(frame, width, height);
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut frame.y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(&mut frame.u),
        u_stride: width / 2,
        v_plane: BufferStoreMut::Borrowed(&mut frame.v),
        v_stride: width / 2,
        width,
        height,
    };
    let (range, matrix, mode) = (YuvRange::Limited, YuvStandardMatrix::Bt709, YuvConversionMode::Balanced);
    yuvutils_rs::bgra_to_yuv420(&mut planar, bgrx, stride32, range, matrix, mode)
        .map_err(|e| CaptureError::Format(format!("screen conversion: {e:?}")))
}

/// A cursor picture as XFixes gives it: ARGB, premultiplied alpha, one
/// `u32` per pixel, row after row.
pub(super) struct CursorImage<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` pixels.
    pub argb: &'a [u32],
}

/// Draws `cursor` over a BGRX picture (`width`x`height`, rows `stride` bytes
/// apart) with its top-left corner at (`left`, `top`), which may be outside
/// the picture: what falls outside is clipped. Premultiplied "over":
/// `out = cursor + picture * (255 - alpha) / 255`.
pub(super) fn blend_cursor(
    bgrx: &mut [u8],
    stride: usize,
    width: usize,
    height: usize,
    cursor: &CursorImage<'_>,
    left: i64,
    top: i64,
) {
    let (cw, ch) = (cursor.width, cursor.height);
    if cw == 0 || ch == 0 || cw.saturating_mul(ch) > MAX_CURSOR_PIXELS || cursor.argb.len() < cw * ch {
        return;
    }
    // The part of the cursor inside the picture, in cursor coordinates.
    let x0 = usize::try_from((-left).max(0)).unwrap_or(usize::MAX).min(cw);
    let y0 = usize::try_from((-top).max(0)).unwrap_or(usize::MAX).min(ch);
    let x1 = usize::try_from((width as i64 - left).clamp(0, cw as i64)).unwrap_or(0);
    let y1 = usize::try_from((height as i64 - top).clamp(0, ch as i64)).unwrap_or(0);
    for cy in y0..y1 {
        let py = (top + cy as i64) as usize;
        let Some(line) = bgrx.get_mut(py * stride..) else { return };
        for cx in x0..x1 {
            let px = (left + cx as i64) as usize;
            let Some(dst) = line.get_mut(px * BYTES_PER_PIXEL..px * BYTES_PER_PIXEL + 3) else { break };
            let p = cursor.argb[cy * cw + cx];
            let alpha = p >> 24;
            if alpha == 0 && p & 0xff_ffff == 0 {
                continue;
            }
            let keep = 255 - alpha;
            // B, G, R in memory; the cursor's blue is its lowest byte.
            for (i, d) in dst.iter_mut().enumerate() {
                let c = (p >> (8 * i)) & 0xff;
                let v = c + (u32::from(*d) * keep + 127) / 255;
                *d = v.min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{FrameConverter, PixelFormat, RawFrame};

    fn picture(w: usize, h: usize) -> Vec<u8> {
        let mut px = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            for x in 0..w {
                let r = (x * 255 / w.max(1)) as u8;
                let g = (y * 255 / h.max(1)) as u8;
                let b = ((x * 7 + y * 13) % 256) as u8;
                px.extend_from_slice(&[b, g, r, 0]);
            }
        }
        px
    }

    /// BT.709 limited range, straight from the matrix: what every pixel must
    /// come out as (the SIMD paths of yuvutils-rs 0.8 have left row tails
    /// unconverted elsewhere: convert.rs's YUYV note).
    fn reference(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
        let (kr, kb) = (0.2126, 0.0722);
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let u = (b - y) / (2.0 * (1.0 - kb));
        let v = (r - y) / (2.0 * (1.0 - kr));
        (16.0 + 219.0 * y / 255.0, 128.0 + 224.0 * u / 255.0, 128.0 + 224.0 * v / 255.0)
    }

    #[test]
    fn bgrx_agrees_with_the_camera_path_and_the_matrix_at_every_width() {
        for (w, h) in [(2, 2), (38, 6), (64, 4), (130, 10), (1000, 4), (1920, 2)] {
            let bgrx = picture(w, h);
            let mut frame = VideoFrame::black(2, 2, 0);
            bgrx_to_i420(&bgrx, w * 4, w as u32, h as u32, &mut frame).unwrap();
            assert_eq!((frame.width, frame.height), (w as u32, h as u32));
            let bgr: Vec<u8> = bgrx.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            let raw = RawFrame { format: PixelFormat::Bgr24, width: w as u32, height: h as u32, data: &bgr };
            let camera = FrameConverter::new(w as u32, h as u32).unwrap().convert(&raw, 0).unwrap();
            assert_eq!((frame.y == camera.y, frame.u == camera.u, frame.v == camera.v), (true, true, true), "{w}x{h}");
            for y in 0..h {
                for x in 0..w {
                    let p = &bgrx[(y * w + x) * 4..];
                    let (ey, _, _) = reference(f64::from(p[2]), f64::from(p[1]), f64::from(p[0]));
                    let got = f64::from(frame.y[y * w + x]);
                    assert!((got - ey).abs() <= 1.5, "{w}x{h} luma at {x},{y}: {got} vs {ey:.1}");
                }
            }
            // Chroma of the 2x2 block's mean.
            for cy in 0..h / 2 {
                for cx in 0..w / 2 {
                    let mut sum = [0.0f64; 3];
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let p = &bgrx[((2 * cy + dy) * w + 2 * cx + dx) * 4..];
                        for (c, s) in sum.iter_mut().enumerate() {
                            *s += f64::from(p[2 - c]) / 4.0;
                        }
                    }
                    let (_, eu, ev) = reference(sum[0], sum[1], sum[2]);
                    let (gu, gv) = (f64::from(frame.u[cy * w / 2 + cx]), f64::from(frame.v[cy * w / 2 + cx]));
                    assert!((gu - eu).abs() <= 2.5 && (gv - ev).abs() <= 2.5, "{w}x{h} chroma at {cx},{cy}: {gu},{gv} vs {eu:.1},{ev:.1}");
                }
            }
        }
    }

    #[test]
    fn a_padded_stride_is_read_row_by_row() {
        let (w, h, stride) = (34usize, 4usize, 34 * 4 + 24);
        let tight = picture(w, h);
        let mut padded = vec![0xAB; stride * h];
        for y in 0..h {
            padded[y * stride..][..w * 4].copy_from_slice(&tight[y * w * 4..][..w * 4]);
        }
        let (mut a, mut b) = (VideoFrame::black(2, 2, 0), VideoFrame::black(2, 2, 0));
        bgrx_to_i420(&tight, w * 4, w as u32, h as u32, &mut a).unwrap();
        bgrx_to_i420(&padded, stride, w as u32, h as u32, &mut b).unwrap();
        assert_eq!((a.y, a.u, a.v), (b.y, b.u, b.v));
    }

    #[test]
    fn short_odd_or_empty_pictures_are_errors_not_panics() {
        let mut f = VideoFrame::black(2, 2, 0);
        let px = picture(4, 4);
        assert!(bgrx_to_i420(&px[..px.len() - 1], 16, 4, 4, &mut f).is_err());
        assert!(bgrx_to_i420(&px, 16, 3, 4, &mut f).is_err());
        assert!(bgrx_to_i420(&px, 16, 4, 0, &mut f).is_err());
        assert!(bgrx_to_i420(&px, 8, 4, 4, &mut f).is_err(), "stride shorter than a row");
        assert!(bgrx_to_i420(&px, 16, 4, 4, &mut f).is_ok());
    }

    #[test]
    fn the_frame_follows_a_size_change() {
        let mut f = VideoFrame::black(640, 360, 0);
        bgrx_to_i420(&picture(100, 50), 400, 100, 50, &mut f).unwrap();
        assert_eq!((f.width, f.height, f.y.len(), f.u.len(), f.v.len()), (100, 50, 5000, 1250, 1250));
        bgrx_to_i420(&picture(200, 100), 800, 200, 100, &mut f).unwrap();
        assert_eq!((f.width, f.height, f.y.len(), f.u.len(), f.v.len()), (200, 100, 20000, 5000, 5000));
    }

    fn px(bgrx: &[u8], stride: usize, x: usize, y: usize) -> [u8; 3] {
        let p = &bgrx[y * stride + x * 4..];
        [p[0], p[1], p[2]]
    }

    #[test]
    fn cursor_is_premultiplied_over_and_clipped() {
        let (w, h) = (8usize, 6usize);
        let stride = w * 4;
        let mut pic: Vec<u8> = std::iter::repeat_n([100u8, 100, 100, 0], w * h).flatten().collect();
        // 3x2 cursor: opaque red, half-transparent white (premultiplied
        // 0x80808080), transparent; opaque blue, opaque green, invisible.
        let argb = [0xffff_0000, 0x8080_8080, 0x0000_0000, 0xff00_00ff, 0xff00_ff00, 0];
        let cursor = CursorImage { width: 3, height: 2, argb: &argb };
        blend_cursor(&mut pic, stride, w, h, &cursor, 2, 1);
        assert_eq!(px(&pic, stride, 2, 1), [0, 0, 255], "opaque red replaces (B, G, R)");
        // 0x80 + 100 * 127 / 255 = 128 + 50.
        assert_eq!(px(&pic, stride, 3, 1), [178, 178, 178]);
        assert_eq!(px(&pic, stride, 4, 1), [100, 100, 100], "transparent leaves the picture");
        assert_eq!(px(&pic, stride, 2, 2), [255, 0, 0]);
        assert_eq!(px(&pic, stride, 3, 2), [0, 255, 0]);
        assert_eq!(px(&pic, stride, 1, 1), [100, 100, 100], "nothing outside the cursor");

        // Hanging off every edge: only what is inside is drawn, no panic.
        let mut pic: Vec<u8> = std::iter::repeat_n([100u8, 100, 100, 0], w * h).flatten().collect();
        blend_cursor(&mut pic, stride, w, h, &cursor, -1, -1);
        assert_eq!(px(&pic, stride, 0, 0), [0, 255, 0], "the cursor's (1,1), green, lands at (0,0)");
        assert_eq!(px(&pic, stride, 1, 0), [100, 100, 100], "its (2,1) is invisible");
        let mut pic2 = pic.clone();
        blend_cursor(&mut pic2, stride, w, h, &cursor, 7, 5);
        assert_eq!(px(&pic2, stride, 7, 5), [0, 0, 255]);
        for (l, t) in [(-3, 0), (8, 0), (0, -2), (0, 6), (i64::MIN / 2, i64::MAX / 2), (i64::MAX / 2, 0)] {
            let before = pic.clone();
            blend_cursor(&mut pic, stride, w, h, &cursor, l, t);
            assert_eq!(pic, before, "cursor entirely outside at {l},{t}");
        }
    }

    #[test]
    fn cursors_too_big_or_short_are_left_out() {
        let mut pic = vec![7u8; 4 * 4 * 4];
        let before = pic.clone();
        let argb = vec![0xffff_ffffu32; 3];
        blend_cursor(&mut pic, 16, 4, 4, &CursorImage { width: 2, height: 2, argb: &argb }, 0, 0);
        assert_eq!(pic, before, "fewer pixels than width*height");
        let big = vec![0xffff_ffffu32; MAX_CURSOR_PIXELS + 1];
        blend_cursor(&mut pic, 16, 4, 4, &CursorImage { width: MAX_CURSOR_PIXELS + 1, height: 1, argb: &big }, 0, 0);
        assert_eq!(pic, before);
    }
}
