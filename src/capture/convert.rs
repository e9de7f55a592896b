//! Camera pixel formats -> I420, and fitting a picture into the broadcast size.
//!
//! Every frame a camera (or a recorded camera frame in the tests) delivers
//! goes through [`FrameConverter::convert`]: one code path for live and
//! recorded frames. The byte layout a device claims is checked against the
//! buffer it actually delivered before any conversion runs (yuvutils-rs
//! panics on short planes), so a lying or broken driver costs one frame and a
//! clear error, never the process.
//!
//! Colour: RGB and MJPEG sources are converted with BT.709 limited range, the
//! matrix the test pattern uses and HD players assume. YUV sources (YUYV,
//! NV12, I420) are re-laid out without touching their values.

use super::CaptureError;
use crate::media::VideoFrame;
use crate::media::scale::{Plane, scale_plane};
use yuvutils_rs::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// Full-range (0..=255) to limited-range (16..=235) luma, BT.601/709 alike.
static FULL_TO_LIMITED_LUMA: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (16 + (i * 219 + 127) / 255) as u8;
        i += 1;
    }
    t
};

/// Largest frame side a device may claim; beyond it a frame is refused
/// before anything is allocated (8K is the largest camera mode that exists).
pub const MAX_SOURCE_DIMENSION: u32 = 8192;

/// How a camera lays out one frame (the formats nokhwa reports on every
/// platform, plus planar I420 for Y4M-like sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2, Y0 U Y1 V (V4L2 `YUYV`, Windows `YUY2`).
    Yuyv,
    /// Planar Y, then interleaved UV at 4:2:0 (V4L2 `NV12`).
    Nv12,
    /// Planar Y, U, V at 4:2:0.
    I420,
    /// Packed 8-bit R, G, B.
    Rgb24,
    /// Packed 8-bit B, G, R.
    Bgr24,
    /// 8-bit luma only.
    Gray,
    /// Motion JPEG: every frame is a JPEG image.
    Mjpeg,
}

impl PixelFormat {
    /// Bytes one frame of this format takes; `None` for MJPEG (variable) or
    /// an overflowing size.
    pub fn frame_len(self, width: u32, height: u32) -> Option<usize> {
        let (w, h) = (width as usize, height as usize);
        let pixels = w.checked_mul(h)?;
        match self {
            PixelFormat::Yuyv => pixels.checked_mul(2),
            PixelFormat::Nv12 | PixelFormat::I420 => pixels.checked_add(2 * w.div_ceil(2) * h.div_ceil(2)),
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => pixels.checked_mul(3),
            PixelFormat::Gray => Some(pixels),
            PixelFormat::Mjpeg => None,
        }
    }

    /// The short name used in `tally devices` and logs.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::I420 => "I420",
            PixelFormat::Rgb24 => "RGB24",
            PixelFormat::Bgr24 => "BGR24",
            PixelFormat::Gray => "GRAY",
            PixelFormat::Mjpeg => "MJPEG",
        }
    }

    /// Parses [`PixelFormat::name`] (case-insensitive; also ffmpeg's names).
    pub fn parse(s: &str) -> Option<PixelFormat> {
        Some(match s.to_ascii_lowercase().as_str() {
            "yuyv" | "yuy2" | "yuyv422" => PixelFormat::Yuyv,
            "nv12" => PixelFormat::Nv12,
            "i420" | "yuv420p" => PixelFormat::I420,
            "rgb24" | "rgb" | "rawrgb" => PixelFormat::Rgb24,
            "bgr24" | "bgr" | "rawbgr" => PixelFormat::Bgr24,
            "gray" | "grey" | "y8" => PixelFormat::Gray,
            "mjpeg" | "mjpg" | "jpeg" => PixelFormat::Mjpeg,
            _ => return None,
        })
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One frame as a device delivered it.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame<'a> {
    /// Layout of `data`.
    pub format: PixelFormat,
    /// Width the device claims.
    pub width: u32,
    /// Height the device claims.
    pub height: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// Converts raw camera frames to I420 of one fixed output size, keeping the
/// picture's aspect ratio (black bars where it differs). Holds its scratch
/// buffers, so converting a stream allocates only the frames it returns.
pub struct FrameConverter {
    out_width: u32,
    out_height: u32,
    /// RGB scratch for RGB/BGR/MJPEG input.
    rgb: Vec<u8>,
    /// I420 at the source size, before scaling.
    native: VideoFrame,
}

fn bad(msg: String) -> CaptureError {
    CaptureError::Format(msg)
}

impl FrameConverter {
    /// A converter producing `width`x`height` I420 (both even, non-zero).
    pub fn new(width: u32, height: u32) -> Result<Self, CaptureError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(bad(format!("output size {width}x{height} must be even and non-zero")));
        }
        if width > MAX_SOURCE_DIMENSION || height > MAX_SOURCE_DIMENSION {
            return Err(bad(format!("output size {width}x{height} exceeds {MAX_SOURCE_DIMENSION}")));
        }
        Ok(FrameConverter { out_width: width, out_height: height, rgb: Vec::new(), native: VideoFrame::black(2, 2, 0) })
    }

    /// Output size.
    pub fn output_size(&self) -> (u32, u32) {
        (self.out_width, self.out_height)
    }

    /// Converts one frame; `pts_us` is stamped on the result.
    pub fn convert(&mut self, raw: &RawFrame<'_>, pts_us: u64) -> Result<VideoFrame, CaptureError> {
        let (w, h) = (raw.width, raw.height);
        if w == 0 || h == 0 || w > MAX_SOURCE_DIMENSION || h > MAX_SOURCE_DIMENSION {
            return Err(bad(format!("{} frame claims {w}x{h}", raw.format)));
        }
        if let Some(len) = raw.format.frame_len(w, h)
            && raw.data.len() < len
        {
            return Err(bad(format!("{} {w}x{h} frame is {} bytes, needs {len}", raw.format, raw.data.len())));
        }
        // Work at even dimensions: I420 needs them; an odd last row/column is dropped.
        let (ew, eh) = (w & !1, h & !1);
        if ew == 0 || eh == 0 {
            return Err(bad(format!("{} frame {w}x{h} is too small", raw.format)));
        }
        let direct = ew == self.out_width && eh == self.out_height;
        let mut target = if direct {
            VideoFrame::black(ew, eh, pts_us)
        } else {
            std::mem::replace(&mut self.native, VideoFrame::black(2, 2, 0))
        };
        if target.width != ew || target.height != eh {
            target = VideoFrame::black(ew, eh, pts_us);
        }
        let result = self.convert_into(raw, &mut target);
        if direct {
            result.map(|()| {
                target.pts_us = pts_us;
                target
            })
        } else {
            let scaled = result.map(|()| fit_into(&target, self.out_width, self.out_height, pts_us));
            self.native = target;
            scaled
        }
    }

    /// Converts `raw` into `out`, whose size is `raw`'s rounded down to even.
    fn convert_into(&mut self, raw: &RawFrame<'_>, out: &mut VideoFrame) -> Result<(), CaptureError> {
        let (w, h) = (raw.width as usize, raw.height as usize);
        let (ew, eh) = (out.width as usize, out.height as usize);
        match raw.format {
            PixelFormat::I420 => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                let (y, rest) = raw.data.split_at(w * h);
                let (u, v) = rest.split_at(cw * ch);
                copy_plane(y, w, &mut out.y, ew, eh);
                copy_plane(u, cw, &mut out.u, ew / 2, eh / 2);
                copy_plane(v, cw, &mut out.v, ew / 2, eh / 2);
                Ok(())
            }
            PixelFormat::Nv12 => {
                let cw = w.div_ceil(2);
                let (y, uv) = raw.data.split_at(w * h);
                copy_plane(y, w, &mut out.y, ew, eh);
                for row in 0..eh / 2 {
                    let src = &uv[row * 2 * cw..][..ew];
                    let (ud, vd) = (&mut out.u[row * ew / 2..][..ew / 2], &mut out.v[row * ew / 2..][..ew / 2]);
                    for (i, pair) in src.chunks_exact(2).enumerate() {
                        ud[i] = pair[0];
                        vd[i] = pair[1];
                    }
                }
                Ok(())
            }
            PixelFormat::Gray => {
                // Y8/GREY cameras deliver full-range luma (ffmpeg reads
                // `gray` the same way): map 0..=255 onto 16..=235.
                for (row, dst) in out.y.chunks_exact_mut(ew).take(eh).enumerate() {
                    let src = &raw.data[row * w..][..ew];
                    for (d, &g) in dst.iter_mut().zip(src) {
                        *d = FULL_TO_LIMITED_LUMA[usize::from(g)];
                    }
                }
                out.u.fill(128);
                out.v.fill(128);
                Ok(())
            }
            PixelFormat::Yuyv => {
                yuyv_to_i420(raw.data, w * 2, out);
                Ok(())
            }
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => {
                let bgr = raw.format == PixelFormat::Bgr24;
                rgb_into_i420(raw.data, w * 3, bgr, out)
            }
            PixelFormat::Mjpeg => {
                let (jw, jh) = decode_jpeg(raw.data, &mut self.rgb)?;
                if (jw, jh) != (w, h) {
                    return Err(bad(format!("MJPEG frame is {jw}x{jh}, the device announced {w}x{h}")));
                }
                let rgb = std::mem::take(&mut self.rgb);
                let r = rgb_into_i420(&rgb, w * 3, false, out);
                self.rgb = rgb;
                r
            }
        }
    }
}

/// Packed 4:2:2 to planar 4:2:0: luma is every other byte, chroma the mean
/// of each pair of rows. (Done here rather than with yuvutils-rs: its 0.8
/// SIMD path leaves the last 16 pixels of every row unconverted, which the
/// camera-format interop test caught.)
fn yuyv_to_i420(src: &[u8], stride: usize, out: &mut VideoFrame) {
    let (w, h) = (out.width as usize, out.height as usize);
    for (row, dst) in out.y.chunks_exact_mut(w).take(h).enumerate() {
        let line = &src[row * stride..][..w * 2];
        for (d, pair) in dst.iter_mut().zip(line.chunks_exact(2)) {
            *d = pair[0];
        }
    }
    let cw = w / 2;
    for crow in 0..h / 2 {
        let a = &src[2 * crow * stride..][..w * 2];
        let b = &src[(2 * crow + 1) * stride..][..w * 2];
        let (u, v) = (&mut out.u[crow * cw..][..cw], &mut out.v[crow * cw..][..cw]);
        for (((u, v), qa), qb) in u.iter_mut().zip(v.iter_mut()).zip(a.chunks_exact(4)).zip(b.chunks_exact(4)) {
            *u = ((u16::from(qa[1]) + u16::from(qb[1]) + 1) >> 1) as u8;
            *v = ((u16::from(qa[3]) + u16::from(qb[3]) + 1) >> 1) as u8;
        }
    }
}

fn planar_mut(out: &mut VideoFrame) -> YuvPlanarImageMut<'_, u8> {
    let (w, h) = (out.width, out.height);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut out.y),
        y_stride: w,
        u_plane: BufferStoreMut::Borrowed(&mut out.u),
        u_stride: w / 2,
        v_plane: BufferStoreMut::Borrowed(&mut out.v),
        v_stride: w / 2,
        width: w,
        height: h,
    }
}

fn rgb_into_i420(rgb: &[u8], stride: usize, bgr: bool, out: &mut VideoFrame) -> Result<(), CaptureError> {
    let mut planar = planar_mut(out);
    let (range, matrix, mode) = (YuvRange::Limited, YuvStandardMatrix::Bt709, YuvConversionMode::Balanced);
    let r = if bgr {
        yuvutils_rs::bgr_to_yuv420(&mut planar, rgb, stride as u32, range, matrix, mode)
    } else {
        yuvutils_rs::rgb_to_yuv420(&mut planar, rgb, stride as u32, range, matrix, mode)
    };
    r.map_err(|e| bad(format!("RGB conversion: {e:?}")))
}

/// Decodes a JPEG into packed RGB; returns its size. Dimensions are capped
/// before the decoder allocates.
fn decode_jpeg(data: &[u8], rgb: &mut Vec<u8>) -> Result<(usize, usize), CaptureError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let max = MAX_SOURCE_DIMENSION as usize;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(max)
        .set_max_height(max);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(|e| bad(format!("MJPEG frame: {e:?}")))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| bad("MJPEG frame without dimensions".into()))?;
    let need = decoder.output_buffer_size().ok_or_else(|| bad("MJPEG frame size overflows".into()))?;
    if need != w * h * 3 {
        return Err(bad(format!("MJPEG frame decodes to {need} bytes, not RGB {w}x{h}")));
    }
    rgb.resize(need, 0);
    decoder.decode_into(rgb).map_err(|e| bad(format!("MJPEG frame: {e:?}")))?;
    Ok((w, h))
}

/// Copies `rows` rows of `width` bytes from a plane with stride `src_stride`.
fn copy_plane(src: &[u8], src_stride: usize, dst: &mut [u8], width: usize, rows: usize) {
    for (r, out) in dst.chunks_exact_mut(width).take(rows).enumerate() {
        out.copy_from_slice(&src[r * src_stride..][..width]);
    }
}

/// Where a `sw`x`sh` picture lands inside `dw`x`dh` when scaled to fit with
/// its aspect ratio kept: (x, y, width, height), all even.
pub fn fit_rect(sw: u32, sh: u32, dw: u32, dh: u32) -> (u32, u32, u32, u32) {
    if sw == 0 || sh == 0 {
        return (0, 0, dw, dh);
    }
    // Compare aspect ratios exactly in integers: sw/sh vs dw/dh.
    let (w, h) = if u64::from(sw) * u64::from(dh) >= u64::from(sh) * u64::from(dw) {
        // Source is wider: full width, bars top and bottom.
        (dw, (u64::from(dw) * u64::from(sh) / u64::from(sw)) as u32)
    } else {
        ((u64::from(dh) * u64::from(sw) / u64::from(sh)) as u32, dh)
    };
    let (w, h) = ((w & !1).max(2).min(dw), (h & !1).max(2).min(dh));
    (((dw - w) / 2) & !1, ((dh - h) / 2) & !1, w, h)
}

/// Scales `src` into a new `dw`x`dh` black frame, aspect kept (bilinear).
pub fn fit_into(src: &VideoFrame, dw: u32, dh: u32, pts_us: u64) -> VideoFrame {
    let mut out = VideoFrame::black(dw, dh, pts_us);
    let (x, y, w, h) = fit_rect(src.width, src.height, dw, dh);
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dwu, x, y, w, h) = (dw as usize, x as usize, y as usize, w as usize, h as usize);
    let (src_y, src_c) = (Plane { data: &src.y, stride: sw, width: sw, height: sh }, (sw / 2, sh / 2));
    scale_plane(src_y, &mut out.y, dwu, x, y, w, h);
    scale_plane(Plane { data: &src.u, stride: src_c.0, width: src_c.0, height: src_c.1 }, &mut out.u, dwu / 2, x / 2, y / 2, w / 2, h / 2);
    scale_plane(Plane { data: &src.v, stride: src_c.0, width: src_c.0, height: src_c.1 }, &mut out.v, dwu / 2, x / 2, y / 2, w / 2, h / 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_rgb(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        v
    }

    #[test]
    fn frame_lengths() {
        assert_eq!(PixelFormat::Yuyv.frame_len(640, 480), Some(640 * 480 * 2));
        assert_eq!(PixelFormat::Nv12.frame_len(640, 480), Some(640 * 480 * 3 / 2));
        assert_eq!(PixelFormat::I420.frame_len(5, 3), Some(15 + 2 * 3 * 2));
        assert_eq!(PixelFormat::Rgb24.frame_len(2, 2), Some(12));
        assert_eq!(PixelFormat::Mjpeg.frame_len(2, 2), None);
        assert_eq!(PixelFormat::Rgb24.frame_len(u32::MAX, u32::MAX), None);
        for f in [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::Mjpeg, PixelFormat::Rgb24, PixelFormat::Gray] {
            assert_eq!(PixelFormat::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn short_buffers_are_refused_not_panicked_on() {
        let mut c = FrameConverter::new(64, 48).unwrap();
        for f in [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::I420, PixelFormat::Rgb24, PixelFormat::Bgr24, PixelFormat::Gray] {
            let data = vec![0u8; 100];
            let e = c.convert(&RawFrame { format: f, width: 64, height: 48, data: &data }, 0).unwrap_err();
            assert!(e.to_string().contains("needs"), "{f}: {e}");
        }
        let junk = vec![0xFFu8; 500];
        assert!(c.convert(&RawFrame { format: PixelFormat::Mjpeg, width: 64, height: 48, data: &junk }, 0).is_err());
        assert!(c.convert(&RawFrame { format: PixelFormat::Gray, width: 0, height: 48, data: &junk }, 0).is_err());
        assert!(c.convert(&RawFrame { format: PixelFormat::Gray, width: 100_000, height: 2, data: &junk }, 0).is_err());
    }

    #[test]
    fn yuyv_and_nv12_relayout_exactly() {
        let (w, h) = (8usize, 4usize);
        // YUYV: Y = x*10+y, U = 100 + row, V = 200 - row.
        let mut yuyv = Vec::new();
        for y in 0..h {
            for x in (0..w).step_by(2) {
                yuyv.extend_from_slice(&[(x * 10 + y) as u8, 100 + y as u8, (x * 10 + 1 + y) as u8, 200 - y as u8]);
            }
        }
        let mut c = FrameConverter::new(w as u32, h as u32).unwrap();
        let f = c.convert(&RawFrame { format: PixelFormat::Yuyv, width: 8, height: 4, data: &yuyv }, 7).unwrap();
        assert_eq!(f.pts_us, 7);
        // Pixel 5 is the second luma of the pair starting at 4: 4*10 + 1 + row.
        assert_eq!(f.y[3 * 8 + 5], (4 * 10 + 1 + 3) as u8);
        // 4:2:2 -> 4:2:0 averages (or picks) the two rows' chroma.
        assert!((100..=101).contains(&f.u[0]), "u = {}", f.u[0]);
        assert!((199..=200).contains(&f.v[0]), "v = {}", f.v[0]);

        let mut nv12 = (0..(w * h) as u8).collect::<Vec<u8>>();
        for i in 0..(w * h / 4) {
            nv12.extend_from_slice(&[10 + i as u8, 50 + i as u8]);
        }
        let f = c.convert(&RawFrame { format: PixelFormat::Nv12, width: 8, height: 4, data: &nv12 }, 0).unwrap();
        assert_eq!(f.y, (0..32u8).collect::<Vec<_>>());
        assert_eq!(f.u, (10..18u8).collect::<Vec<_>>());
        assert_eq!(f.v, (50..58u8).collect::<Vec<_>>());
    }

    #[test]
    fn rgb_white_and_black_are_limited_range() {
        let mut c = FrameConverter::new(16, 16).unwrap();
        let white = vec![255u8; 16 * 16 * 3];
        let f = c.convert(&RawFrame { format: PixelFormat::Rgb24, width: 16, height: 16, data: &white }, 0).unwrap();
        assert!(f.y.iter().all(|&y| (234..=236).contains(&y)), "{:?}", &f.y[..4]);
        assert!(f.u.iter().all(|&u| (127..=129).contains(&u)));
        let black = vec![0u8; 16 * 16 * 3];
        let f = c.convert(&RawFrame { format: PixelFormat::Bgr24, width: 16, height: 16, data: &black }, 0).unwrap();
        assert!(f.y.iter().all(|&y| (15..=17).contains(&y)));
    }

    #[test]
    fn fit_keeps_aspect_with_bars() {
        assert_eq!(fit_rect(1280, 720, 1280, 720), (0, 0, 1280, 720));
        assert_eq!(fit_rect(640, 360, 1280, 720), (0, 0, 1280, 720));
        // 4:3 into 16:9: pillarbox.
        assert_eq!(fit_rect(640, 480, 1280, 720), (160, 0, 960, 720));
        // 21:9-ish into 16:9: letterbox.
        let (x, y, w, h) = fit_rect(2560, 1080, 1280, 720);
        assert_eq!((x, w), (0, 1280));
        assert!(y > 0 && h < 720 && y * 2 + h <= 720);
    }

    #[test]
    fn odd_sized_source_scales_into_output() {
        let (w, h) = (321usize, 239usize);
        let rgb = gradient_rgb(w, h);
        let mut c = FrameConverter::new(640, 480).unwrap();
        let f = c.convert(&RawFrame { format: PixelFormat::Rgb24, width: w as u32, height: h as u32, data: &rgb }, 5).unwrap();
        assert_eq!((f.width, f.height, f.pts_us), (640, 480, 5));
        // Left edge is dark in R, right edge bright: luma rises left to right mid-frame.
        let row = &f.y[240 * 640..][..640];
        assert!(row[20] < row[620], "{} vs {}", row[20], row[620]);
        // Converting the same source twice gives the same picture (scratch reuse is clean).
        let g = c.convert(&RawFrame { format: PixelFormat::Rgb24, width: w as u32, height: h as u32, data: &rgb }, 6).unwrap();
        assert_eq!(f.y, g.y);
    }

    /// Every horizontal path (3:2, 2:1, 1:1, the table) agrees with plain
    /// bilinear interpolation at the same centre-aligned sample positions.
    #[test]
    fn every_scaling_path_is_bilinear() {
        let reference = |src: &[u8], sw: usize, sh: usize, w: usize, h: usize| -> Vec<f64> {
            let at = |i: usize, out: usize, inn: usize| -> (usize, f64) {
                let p = ((2 * i + 1) as f64 * inn as f64 / (2 * out) as f64 - 0.5).max(0.0);
                let i0 = (p.floor() as usize).min(inn.saturating_sub(2));
                (i0, (p - i0 as f64).min(1.0))
            };
            let mut out = Vec::new();
            for j in 0..h {
                let (y0, fy) = at(j, h, sh);
                for i in 0..w {
                    let (x0, fx) = at(i, w, sw);
                    let px = |x: usize, y: usize| f64::from(src[y.min(sh - 1) * sw + x.min(sw - 1)]);
                    let top = px(x0, y0) * (1.0 - fx) + px(x0 + 1, y0) * fx;
                    let bottom = px(x0, y0 + 1) * (1.0 - fx) + px(x0 + 1, y0 + 1) * fx;
                    out.push(top * (1.0 - fy) + bottom * fy);
                }
            }
            out
        };
        let mut rng = fastrand::Rng::with_seed(3);
        for (sw, sh, w, h) in [(1920, 1080, 1280, 720), (1280, 720, 640, 360), (640, 360, 640, 360), (1920, 1080, 854, 480), (320, 180, 1280, 720), (7, 5, 3, 2)] {
            let src: Vec<u8> = (0..sw * sh).map(|_| rng.u8(..)).collect();
            let mut dst = vec![0u8; w * h];
            scale_plane(Plane { data: &src, stride: sw, width: sw, height: sh }, &mut dst, w, 0, 0, w, h);
            let want = reference(&src, sw, sh, w, h);
            // Fixed-point weights (8 bits each way) against exact ones.
            let worst = dst.iter().zip(&want).map(|(&d, &r)| (f64::from(d) - r).abs()).fold(0.0, f64::max);
            assert!(worst <= 1.6, "{sw}x{sh} -> {w}x{h}: off by up to {worst:.2}");
        }
    }

    #[test]
    fn scaling_a_flat_plane_keeps_its_value() {
        let src = VideoFrame { width: 8, height: 4, y: vec![77; 32], u: vec![99; 8], v: vec![150; 8], pts_us: 0 };
        let out = fit_into(&src, 16, 8, 1);
        assert!(out.y.iter().all(|&v| v == 77));
        assert!(out.u.iter().all(|&v| v == 99));
        let down = fit_into(&src, 4, 2, 1);
        assert!(down.y.iter().all(|&v| v == 77), "{:?}", down.y);
    }
}
