//! Stills: pictures that change only when their settings do — an image file,
//! a text ([`render_text`], in `text.rs`), a colour. Each is rendered once per
//! change into a [`Still`] (I420 plus an alpha plane), never per frame; the
//! compositor scales and blends it into its layer.
//!
//! Colour: RGB becomes I420 with the matrix the rest of the picture path uses
//! (`convert.rs`'s RGB path and the test pattern: BT.709, limited range), so
//! a colour from a still and the same colour from a camera's RGB frame match.
//! Chroma is the mean of each 2x2 block weighted by alpha, so the colour of
//! transparent pixels (often black in PNGs) does not bleed a dark fringe
//! into the edge of a logo.
//!
//! Sizes from outside (a file's header, a text's length and size) are
//! bounded before anything is allocated: [`MAX_IMAGE_DIMENSION`],
//! [`MAX_IMAGE_FILE_BYTES`], [`MAX_DECODE_BYTES`], [`MAX_TEXT_CHARS`],
//! [`MAX_TEXT_PX`].

use super::CaptureError;
use crate::media::VideoFrame;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::{Cursor, Read};
use std::path::Path;

pub use super::text::{MAX_TEXT_CHARS, MAX_TEXT_PX, TextStyle, render_text};

/// Largest side of a still, in pixels: an image file claiming more is
/// refused from its header, and a text that would lay out wider or taller
/// is refused before it is rasterised. 8K covers any logo or overlay an
/// 8K canvas could show at full size.
pub const MAX_IMAGE_DIMENSION: u32 = 8192;

/// Largest image file read, in bytes. A logo or an overlay is a few MB and
/// an 8K photo about 100 MB (an 8192x8192 RGBA gradient with a noisy alpha
/// was 75 MB); the bound keeps a mistaken path (a video, a disk image) from
/// being read into memory whole.
pub const MAX_IMAGE_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// Most memory the decoder may allocate for one image, in bytes: an
/// 8192x8192 RGBA image at 16 bits a channel (image's own default).
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// A picture with an alpha plane, rendered once per change: an image, a text, a colour.
#[derive(Clone)]
pub struct Still {
    /// The picture, I420 (BT.709 limited range, the coefficients of
    /// `convert.rs`'s RGB path), even size, `pts_us` 0.
    pub frame: VideoFrame,
    /// Coverage per luma pixel, `width * height` bytes, 255 = opaque; `None`
    /// = fully opaque. Straight (not premultiplied): where it is 0 the
    /// picture's value is meaningless.
    pub alpha: Option<Vec<u8>>,
}

impl std::fmt::Debug for Still {
    /// The size and whether there is an alpha plane; not the planes' bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Still")
            .field("frame", &self.frame)
            .field("alpha", &self.alpha.as_ref().map_or("opaque", |_| "plane"))
            .finish()
    }
}

/// A colour with alpha, parsed from `"#RRGGBB"` or `"#RRGGBBAA"` (hex, either
/// case) and printed back the same way (upper case; `AA` only when not
/// opaque); serde reads and writes it as that text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgba {
    /// Red, 0..=255 (sRGB, as a picture file stores it).
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Alpha, 255 = opaque.
    pub a: u8,
}

impl Rgba {
    /// Opaque white, a text's default colour.
    pub const WHITE: Rgba = Rgba::opaque(255, 255, 255);
    /// Opaque black.
    pub const BLACK: Rgba = Rgba::opaque(0, 0, 0);

    /// An opaque colour.
    pub const fn opaque(r: u8, g: u8, b: u8) -> Self {
        Rgba { r, g, b, a: 255 }
    }
}

impl Default for Rgba {
    fn default() -> Self {
        Rgba::WHITE
    }
}

/// Why a text is not an [`Rgba`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a colour: write #RRGGBB or #RRGGBBAA in hex (#FFFFFF is white, #00000080 half-transparent black)")]
pub struct ParseRgbaError {
    /// What was given.
    pub text: String,
}

impl std::str::FromStr for Rgba {
    type Err = ParseRgbaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseRgbaError { text: s.to_string() };
        let hex = s.strip_prefix('#').ok_or_else(err)?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(err());
        }
        // All ASCII hex digits, so every two-byte slice is on a char boundary.
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err());
        let a = if hex.len() == 8 { byte(6)? } else { 255 };
        Ok(Rgba { r: byte(0)?, g: byte(2)?, b: byte(4)?, a })
    }
}

impl std::fmt::Display for Rgba {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02X}{:02X}{:02X}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02X}", self.a)?;
        }
        Ok(())
    }
}

impl Serialize for Rgba {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rgba {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Decodes a PNG or JPEG file into a still, with the file's alpha channel
/// when it has one (an alpha channel that is opaque everywhere gives `None`).
///
/// Refused with [`CaptureError::Format`] naming the file: a file over
/// [`MAX_IMAGE_FILE_BYTES`], a header claiming a side over
/// [`MAX_IMAGE_DIMENSION`] (before any pixel is decoded), a decode needing
/// more than [`MAX_DECODE_BYTES`], anything but PNG or JPEG, a corrupt file.
/// A JPEG's EXIF orientation is applied (phones store pictures sideways). An
/// odd side is padded to even with a copy of the last column or row.
pub fn load_image(path: &Path) -> Result<Still, CaptureError> {
    let bytes = read_bounded(path)?;
    let mut reader = ImageReader::new(Cursor::new(bytes.as_slice()))
        .with_guessed_format()
        .map_err(|e| io_error(path, e))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(format_error(path, "not a PNG or JPEG file"));
    }
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > MAX_IMAGE_DIMENSION || h > MAX_IMAGE_DIMENSION {
        return Err(too_large(path, &format!("{w}x{h}")));
    }
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(too_large(path, &format!("{} bytes decoded", decoder.total_bytes())));
    }
    // A malformed EXIF block costs the rotation, not the picture.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| image_error(path, e))?;
    picture.apply_orientation(orientation);
    let has_alpha = picture.color().has_alpha();
    let rgba = picture.into_rgba8();
    let (w, h) = (rgba.width() as usize, rgba.height() as usize);
    let data = rgba.as_raw();
    let (ew, eh) = (w + (w & 1), h + (h & 1));
    let mut still = still_from_pixels(ew, eh, |x, y| {
        let i = 4 * (y.min(h - 1) * w + x.min(w - 1));
        let a = if has_alpha { data[i + 3] } else { 255 };
        [data[i], data[i + 1], data[i + 2], a]
    });
    if !has_alpha {
        still.alpha = None;
    }
    Ok(still)
}

/// A solid still of `colour`, `width` x `height` clamped to
/// 2..=[`MAX_IMAGE_DIMENSION`] and rounded down to even; `alpha` is `None`
/// when the colour is opaque, else a plane of its alpha.
pub fn colour_fill(colour: Rgba, width: u32, height: u32) -> Still {
    let side = |s: u32| (s.clamp(2, MAX_IMAGE_DIMENSION) & !1) as usize;
    let (w, h) = (side(width), side(height));
    let [r, g, b] = [colour.r, colour.g, colour.b].map(i64::from);
    let chroma = |[cr, cg, cb]: [i64; 3]| chroma_of(cr * r + cg * g + cb * b, 1);
    let frame = VideoFrame {
        width: w as u32,
        height: h as u32,
        y: vec![luma(colour.r, colour.g, colour.b); w * h],
        u: vec![chroma(U_COEFFS); w * h / 4],
        v: vec![chroma(V_COEFFS); w * h / 4],
        pts_us: 0,
    };
    let alpha = (colour.a != 255).then(|| vec![colour.a; w * h]);
    Still { frame, alpha }
}

/// Converts a picture given pixel by pixel (straight RGBA) into a still;
/// `width` and `height` are even and at most [`MAX_IMAGE_DIMENSION`]. The
/// alpha plane is `None` when every pixel is opaque.
pub(super) fn still_from_pixels(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 4]) -> Still {
    let (cw, ch) = (width / 2, height / 2);
    let mut frame = VideoFrame {
        width: width as u32,
        height: height as u32,
        y: vec![0; width * height],
        u: vec![0; cw * ch],
        v: vec![0; cw * ch],
        pts_us: 0,
    };
    let mut alpha = vec![0u8; width * height];
    let mut opaque = true;
    for cy in 0..ch {
        for cx in 0..cw {
            // Alpha-weighted sums of the block's R, G, B, and of its alpha.
            let (mut sums, mut weight) = ([0i64; 3], 0i64);
            let mut plain = [0i64; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (x, y) = (2 * cx + dx, 2 * cy + dy);
                let [r, g, b, a] = pixel(x, y);
                let i = y * width + x;
                frame.y[i] = luma(r, g, b);
                alpha[i] = a;
                opaque &= a == 255;
                for (k, c) in [r, g, b].into_iter().enumerate() {
                    sums[k] += i64::from(a) * i64::from(c);
                    plain[k] += i64::from(c);
                }
                weight += i64::from(a);
            }
            // A block with no coverage at all: its colour is never seen.
            let (sums, weight) = if weight == 0 { (plain, 4) } else { (sums, weight) };
            let dot = |c: [i64; 3]| c[0] * sums[0] + c[1] * sums[1] + c[2] * sums[2];
            frame.u[cy * cw + cx] = chroma_of(dot(U_COEFFS), weight);
            frame.v[cy * cw + cx] = chroma_of(dot(V_COEFFS), weight);
        }
    }
    Still { frame, alpha: (!opaque).then_some(alpha) }
}

/// Fixed-point scale of the colour coefficients (16 fractional bits).
const FIX: f64 = 65536.0;
/// BT.709 luma weights of R and B (G is the rest).
const KR: f64 = 0.2126;
const KB: f64 = 0.0722;
const KG: f64 = 1.0 - KR - KB;
/// Limited range: luma spans 219 codes from 16, chroma 224 around 128.
const Y_SPAN: f64 = 219.0 / 255.0;
const C_SPAN: f64 = 224.0 / 255.0;

const fn fixed(x: f64) -> i64 {
    (if x < 0.0 { x * FIX - 0.5 } else { x * FIX + 0.5 }) as i64
}

/// Y' = 16 + 219/255 (Kr R + Kg G + Kb B).
const Y_COEFFS: [i64; 3] = [fixed(KR * Y_SPAN), fixed(KG * Y_SPAN), fixed(KB * Y_SPAN)];
/// Cb = 128 + 224/255 (B - Y) / (2 (1 - Kb)).
const U_COEFFS: [i64; 3] = [
    fixed(-KR * C_SPAN / (2.0 * (1.0 - KB))),
    fixed(-KG * C_SPAN / (2.0 * (1.0 - KB))),
    fixed(C_SPAN / 2.0),
];
/// Cr = 128 + 224/255 (R - Y) / (2 (1 - Kr)).
const V_COEFFS: [i64; 3] = [
    fixed(C_SPAN / 2.0),
    fixed(-KG * C_SPAN / (2.0 * (1.0 - KR))),
    fixed(-KB * C_SPAN / (2.0 * (1.0 - KR))),
];

fn luma(r: u8, g: u8, b: u8) -> u8 {
    let [cr, cg, cb] = Y_COEFFS;
    let y = (16 << 16) + cr * i64::from(r) + cg * i64::from(g) + cb * i64::from(b) + (1 << 15);
    (y >> 16).clamp(16, 235) as u8
}

/// 128 + `dot / (weight * FIX)`, rounded: `dot` is a chroma row of
/// coefficients applied to colour sums whose weights add up to `weight` (> 0).
fn chroma_of(dot: i64, weight: i64) -> u8 {
    let d = weight << 16;
    let q = if dot >= 0 { (dot + d / 2) / d } else { -((-dot + d / 2) / d) };
    (128 + q).clamp(16, 240) as u8
}

fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_DIMENSION);
    limits.max_image_height = Some(MAX_IMAGE_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// The whole file, refused over [`MAX_IMAGE_FILE_BYTES`] (checked against
/// the file's size first, and again while reading in case it grows).
fn read_bounded(path: &Path) -> Result<Vec<u8>, CaptureError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len > MAX_IMAGE_FILE_BYTES {
        return Err(too_large(path, &format!("{len} bytes")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_IMAGE_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(too_large(path, "growing past the limit while read"));
    }
    Ok(bytes)
}

fn io_error(path: &Path, e: std::io::Error) -> CaptureError {
    CaptureError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn format_error(path: &Path, what: &str) -> CaptureError {
    CaptureError::Format(format!("image {}: {what}", path.display()))
}

fn too_large(path: &Path, what: &str) -> CaptureError {
    format_error(
        path,
        &format!(
            "too large ({what}); a still may be at most {MAX_IMAGE_DIMENSION}x{MAX_IMAGE_DIMENSION} pixels, \
             a {} MiB file, {} MiB decoded",
            MAX_IMAGE_FILE_BYTES >> 20,
            MAX_DECODE_BYTES >> 20
        ),
    )
}

fn image_error(path: &Path, e: image::ImageError) -> CaptureError {
    match e {
        image::ImageError::Limits(l) => too_large(path, &l.to_string()),
        image::ImageError::IoError(e) => io_error(path, e),
        other => format_error(path, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::convert::{FrameConverter, PixelFormat, RawFrame};
    use std::path::PathBuf;

    /// A private directory for the test's files, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tally-still-{name}-{}-{}", std::process::id(), fastrand::u64(..)));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// BT.709 limited range in floating point, written from the standard
    /// rather than from the fixed-point constants above.
    fn bt709(r: u8, g: u8, b: u8) -> (f64, f64, f64) {
        let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        (16.0 + 219.0 * y / 255.0, 128.0 + 224.0 * (b - y) / (1.8556 * 255.0), 128.0 + 224.0 * (r - y) / (1.5748 * 255.0))
    }

    fn near(got: u8, want: f64, tolerance: f64) -> bool {
        (f64::from(got) - want).abs() <= tolerance
    }

    const RED: [u8; 4] = [255, 0, 0, 255];
    const HALF_BLUE: [u8; 4] = [0, 0, 255, 128];
    const CLEAR_BLACK: [u8; 4] = [0, 0, 0, 0];

    /// 8x8: top half red (x < 4) and half-transparent blue (x >= 4); bottom
    /// half red (x < 5) and fully transparent black (x >= 5), so the chroma
    /// block at x 4..5 mixes opaque red with transparent black.
    fn test_png_pixel(x: u32, y: u32) -> [u8; 4] {
        match (y < 4, x) {
            (true, 0..4) => RED,
            (true, _) => HALF_BLUE,
            (false, 0..5) => RED,
            (false, _) => CLEAR_BLACK,
        }
    }

    #[test]
    fn png_with_alpha_decodes_to_bt709_and_its_alpha() {
        let dir = Scratch::new("png");
        let path = dir.path("logo.png");
        image::RgbaImage::from_fn(8, 8, |x, y| image::Rgba(test_png_pixel(x, y))).save(&path).unwrap();
        let still = load_image(&path).unwrap();
        let f = &still.frame;
        assert_eq!((f.width, f.height, f.pts_us), (8, 8, 0));
        let alpha = still.alpha.as_ref().expect("the PNG has transparent pixels");
        let (red, blue) = (bt709(255, 0, 0), bt709(0, 0, 255));
        for y in 0..8usize {
            for x in 0..8usize {
                let [r, g, b, a] = test_png_pixel(x as u32, y as u32);
                assert!(near(alpha[y * 8 + x], f64::from(a), 2.0), "alpha at {x},{y}: {}", alpha[y * 8 + x]);
                if a > 0 {
                    assert!(near(f.y[y * 8 + x], bt709(r, g, b).0, 2.0), "Y at {x},{y}: {}", f.y[y * 8 + x]);
                }
            }
        }
        let chroma = |cx: usize, cy: usize| (f.u[cy * 4 + cx], f.v[cy * 4 + cx]);
        for (cx, cy, want) in [(0, 0, red), (1, 1, red), (2, 0, blue), (3, 1, blue), (0, 3, red), (2, 2, red), (2, 3, red)] {
            let (u, v) = chroma(cx, cy);
            assert!(near(u, want.1, 2.0) && near(v, want.2, 2.0), "chroma at block {cx},{cy}: {u},{v}, want {want:?}");
        }
        // Block (2, 2) holds two red pixels and two transparent black ones:
        // weighted by alpha it is red, not the dark mean of the four.
        let (_, v) = chroma(2, 2);
        assert!(f64::from(v) > red.2 - 2.0, "transparent black bled into the edge: V {v}");
    }

    #[test]
    fn an_odd_sized_image_is_padded_to_even_with_its_edge() {
        let dir = Scratch::new("odd");
        let path = dir.path("odd.png");
        image::RgbImage::from_fn(7, 5, |x, _| if x == 6 { image::Rgb([255, 255, 255]) } else { image::Rgb([0, 0, 0]) })
            .save(&path)
            .unwrap();
        let still = load_image(&path).unwrap();
        assert_eq!((still.frame.width, still.frame.height), (8, 6));
        assert!(still.alpha.is_none(), "an RGB file is opaque");
        // The padding column repeats the white last column; the padding row the last row.
        let y = &still.frame.y;
        assert!(near(y[7], 235.0, 1.0) && near(y[5 * 8 + 7], 235.0, 1.0) && near(y[5 * 8], 16.0, 1.0), "{y:?}");
    }

    #[test]
    fn a_jpeg_decodes_opaque() {
        let dir = Scratch::new("jpeg");
        let path = dir.path("photo.jpg");
        image::RgbImage::from_pixel(16, 16, image::Rgb([200, 120, 40])).save(&path).unwrap();
        let still = load_image(&path).unwrap();
        assert_eq!((still.frame.width, still.frame.height), (16, 16));
        assert!(still.alpha.is_none());
        let (y, u, v) = bt709(200, 120, 40);
        // JPEG is lossy, but a flat colour survives within a code or two.
        assert!(still.frame.y.iter().all(|&p| near(p, y, 3.0)), "Y {:?} want {y}", &still.frame.y[..4]);
        assert!(still.frame.u.iter().all(|&p| near(p, u, 3.0)) && still.frame.v.iter().all(|&p| near(p, v, 3.0)));
    }

    #[test]
    fn a_jpeg_taken_sideways_is_turned_upright() {
        use image::ImageEncoder;
        // EXIF (TIFF, big-endian): one IFD entry, Orientation (0x0112) = 6, "rotate 90 clockwise".
        let exif = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00".to_vec();
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new(&mut jpeg);
        encoder.set_exif_metadata(exif).unwrap();
        encoder.write_image(&[90u8; 16 * 8 * 3], 16, 8, image::ExtendedColorType::Rgb8).unwrap();
        let dir = Scratch::new("exif");
        let path = dir.path("phone.jpg");
        std::fs::write(&path, &jpeg).unwrap();
        let still = load_image(&path).unwrap();
        assert_eq!((still.frame.width, still.frame.height), (8, 16), "EXIF orientation not applied");
    }

    #[test]
    fn an_image_matches_the_camera_converter_for_the_same_rgb() {
        let (w, h) = (32usize, 16usize);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i * 7 % 256) as u8, (i * 3 % 256) as u8, (255 - i % 256) as u8]).collect();
        let dir = Scratch::new("gradient");
        let path = dir.path("gradient.png");
        image::RgbImage::from_raw(w as u32, h as u32, rgb.clone()).unwrap().save(&path).unwrap();
        let still = load_image(&path).unwrap();
        let mut converter = FrameConverter::new(w as u32, h as u32).unwrap();
        let camera = converter.convert(&RawFrame { format: PixelFormat::Rgb24, width: w as u32, height: h as u32, data: &rgb }, 0).unwrap();
        let close = |a: &[u8], b: &[u8], tolerance: i16| a.iter().zip(b).all(|(&x, &y)| (i16::from(x) - i16::from(y)).abs() <= tolerance);
        assert!(close(&still.frame.y, &camera.y, 1), "Y differs from the converter's");
        assert!(close(&still.frame.u, &camera.u, 2) && close(&still.frame.v, &camera.v, 2), "chroma differs from the converter's");
    }

    /// One PNG chunk: length, type, data, CRC-32 (ISO 3309, as PNG uses it).
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in kind.iter().chain(data) {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&(!crc).to_be_bytes());
        out
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_refused_before_decoding() {
        // 100000 x 100000 RGBA: 40 GB of pixels, in a 57-byte file.
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(png_chunk(b"IHDR", &ihdr));
        png.extend(png_chunk(b"IDAT", &[]));
        png.extend(png_chunk(b"IEND", &[]));
        let dir = Scratch::new("huge");
        let path = dir.path("huge.png");
        std::fs::write(&path, &png).unwrap();
        // The header is what image's decoder checks against the limits
        // before it reserves a pixel buffer; the message says which limit.
        match load_image(&path) {
            Err(CaptureError::Format(msg)) => {
                assert!(msg.contains("huge.png") && msg.contains("too large") && msg.contains("8192x8192"), "{msg}");
            }
            other => panic!("a 100000x100000 header was not refused as too large: {other:?}"),
        }
    }

    #[test]
    fn a_file_over_the_byte_limit_is_refused_unread() {
        let dir = Scratch::new("big");
        let path = dir.path("big.png");
        // Sparse: no disk and no memory used; refused from its size alone.
        std::fs::File::create(&path).unwrap().set_len(MAX_IMAGE_FILE_BYTES + 1).unwrap();
        match load_image(&path) {
            Err(CaptureError::Format(msg)) => assert!(msg.contains("big.png") && msg.contains("too large"), "{msg}"),
            other => panic!("an oversize file was not refused: {other:?}"),
        }
    }

    #[test]
    fn other_files_are_refused_naming_them() {
        let dir = Scratch::new("other");
        let text = dir.path("notes.png");
        std::fs::write(&text, "not a picture").unwrap();
        match load_image(&text) {
            Err(CaptureError::Format(msg)) => assert!(msg.contains("notes.png") && msg.contains("PNG or JPEG"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // A PNG cut short after its header.
        let mut truncated = Vec::new();
        image::RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9]))
            .write_to(&mut Cursor::new(&mut truncated), ImageFormat::Png)
            .unwrap();
        truncated.truncate(60);
        let cut = dir.path("cut.png");
        std::fs::write(&cut, &truncated).unwrap();
        match load_image(&cut) {
            Err(e @ (CaptureError::Format(_) | CaptureError::Io(_))) => assert!(e.to_string().contains("cut.png"), "{e}"),
            other => panic!("a cut PNG was not refused: {other:?}"),
        }
        match load_image(&dir.path("missing.png")) {
            Err(CaptureError::Io(e)) => assert!(e.to_string().contains("missing.png"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rgba_parses_and_prints_hex() {
        assert_eq!("#FF8000".parse(), Ok(Rgba::opaque(255, 128, 0)));
        assert_eq!("#ff800080".parse(), Ok(Rgba { r: 255, g: 128, b: 0, a: 128 }));
        assert_eq!(Rgba::opaque(255, 128, 0).to_string(), "#FF8000");
        assert_eq!(Rgba { r: 1, g: 2, b: 3, a: 4 }.to_string(), "#01020304");
        assert_eq!("#0a0B0cFF".parse::<Rgba>().map(|c| c.to_string()), Ok("#0A0B0C".to_string()));
        for bad in ["red", "#12345", "#1234567", "#123456789", "FF0000", "#GG0000", "", "#", "#ÿÿÿ", "#+1+2+3"] {
            assert!(bad.parse::<Rgba>().is_err(), "{bad:?} parsed");
        }
        let e = "red".parse::<Rgba>().unwrap_err();
        assert!(e.to_string().contains("#RRGGBB"), "{e}");
    }

    #[test]
    fn rgba_is_text_in_toml() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Layer {
            colour: Rgba,
        }
        let layer = Layer { colour: Rgba { r: 0x12, g: 0x34, b: 0x56, a: 0x78 } };
        let text = toml::to_string(&layer).unwrap();
        assert_eq!(text.trim(), "colour = \"#12345678\"");
        assert_eq!(toml::from_str::<Layer>(&text).unwrap(), layer);
        let err = toml::from_str::<Layer>("colour = \"red\"").unwrap_err();
        assert!(err.to_string().contains("not a colour"), "{err}");
    }

    #[test]
    fn colour_fill_matches_the_converter() {
        let mut converter = FrameConverter::new(16, 16).unwrap();
        for (r, g, b) in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (128, 128, 128), (255, 128, 0), (20, 200, 90)] {
            let rgb = [r, g, b].repeat(16 * 16);
            let camera = converter.convert(&RawFrame { format: PixelFormat::Rgb24, width: 16, height: 16, data: &rgb }, 0).unwrap();
            let still = colour_fill(Rgba::opaque(r, g, b), 16, 16);
            assert!(still.alpha.is_none());
            let (y, u, v) = (still.frame.y[0], still.frame.u[0], still.frame.v[0]);
            let (cy, cu, cv) = (camera.y[0], camera.u[0], camera.v[0]);
            assert!(y.abs_diff(cy) <= 1 && u.abs_diff(cu) <= 1 && v.abs_diff(cv) <= 1, "({r},{g},{b}): {y},{u},{v} vs the converter's {cy},{cu},{cv}");
            assert!(still.frame.y.iter().all(|&p| p == y) && still.frame.u.iter().all(|&p| p == u));
        }
    }

    #[test]
    fn colour_fill_sizes_and_alpha() {
        let still = colour_fill(Rgba { r: 0, g: 0, b: 0, a: 128 }, 7, 1);
        assert_eq!((still.frame.width, still.frame.height), (6, 2));
        assert_eq!(still.frame.y.len(), 12);
        assert_eq!(still.frame.u.len(), 3);
        assert_eq!(still.alpha, Some(vec![128; 12]));
        let big = colour_fill(Rgba::BLACK, u32::MAX, 2);
        assert_eq!(big.frame.width, MAX_IMAGE_DIMENSION);
    }
}
