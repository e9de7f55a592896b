//! Text stills: a [`TextStyle`] laid out in lines and rasterised with
//! ab_glyph from a font that ships inside the binary (egui's Ubuntu Light,
//! the proportional face of `epaint_default_fonts`; its other face, Hack,
//! is monospaced and reads as code). No system font is looked up, so a
//! scene renders the same on every machine.
//!
//! Layout: lines split at `'\n'`, left-aligned, one line height apart (the
//! font's ascent - descent + line gap); kerning from the font's `kern`
//! table. The still is the text's extent (advances and ink, whichever is
//! larger) plus the padding on every side; with a background the box is
//! the whole still.

use super::CaptureError;
use super::still::{MAX_IMAGE_DIMENSION, Rgba, Still, still_from_pixels};
use ab_glyph::{Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont, point};
use serde::{Deserialize, Serialize};

/// Longest text rendered, in characters: a lower third or a title card is a
/// few lines; this keeps a pasted document from being laid out.
pub const MAX_TEXT_CHARS: usize = 1024;

/// Largest glyph height, in pixels of a 1080-line canvas: a glyph taller
/// than the canvas cannot be shown whole.
pub const MAX_TEXT_PX: u32 = 1080;

/// The face every text still is drawn with.
const FONT: &[u8] = epaint_default_fonts::UBUNTU_LIGHT;

/// Spaces a tab stands for.
const TAB_SPACES: f32 = 4.0;

/// What a text layer shows and how.
///
/// Read from a scene's TOML with every field optional (`text` defaults to
/// empty, `size_px` to 48, `colour` to white, no background, `padding_px`
/// to a quarter of `size_px`, `bold` off); colours are `"#RRGGBB"` or
/// `"#RRGGBBAA"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "TextStyleFields")]
pub struct TextStyle {
    /// The words; `'\n'` starts a new line.
    pub text: String,
    /// Glyph height (ascent - descent) in pixels on a 1080-line canvas; the
    /// compositor scales the still to its layer. 1..=[`MAX_TEXT_PX`].
    pub size_px: u32,
    /// The glyphs' colour.
    pub colour: Rgba,
    /// A box behind the text (a lower third's band); `None` draws the glyphs alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<Rgba>,
    /// Space around the text, inside the box, in pixels.
    pub padding_px: u32,
    /// Heavier strokes. The bundled fonts have no bold face, so the default
    /// is off and `true` emboldens the light face (each stroke widened by
    /// `size_px / 24`, rounded up).
    pub bold: bool,
}

/// The default text size, in pixels of a 1080-line canvas: a lower third.
const DEFAULT_SIZE_PX: u32 = 48;

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            text: String::new(),
            size_px: DEFAULT_SIZE_PX,
            colour: Rgba::WHITE,
            background: None,
            padding_px: DEFAULT_SIZE_PX / 4,
            bold: false,
        }
    }
}

/// [`TextStyle`] as written, where a missing padding follows the size.
#[derive(Deserialize)]
#[serde(default)]
struct TextStyleFields {
    text: String,
    size_px: u32,
    colour: Rgba,
    background: Option<Rgba>,
    padding_px: Option<u32>,
    bold: bool,
}

impl Default for TextStyleFields {
    fn default() -> Self {
        let d = TextStyle::default();
        TextStyleFields {
            text: d.text,
            size_px: d.size_px,
            colour: d.colour,
            background: d.background,
            padding_px: None,
            bold: d.bold,
        }
    }
}

impl From<TextStyleFields> for TextStyle {
    fn from(f: TextStyleFields) -> Self {
        TextStyle {
            padding_px: f.padding_px.unwrap_or(f.size_px / 4),
            text: f.text,
            size_px: f.size_px,
            colour: f.colour,
            background: f.background,
            bold: f.bold,
        }
    }
}

/// Renders `style` into a still: the glyphs' coverage (times the colour's
/// alpha) over the box, if any. The alpha plane is the union of box and
/// glyphs; the colour is the glyphs' over the box's.
///
/// Refused with [`CaptureError::Format`]: more than [`MAX_TEXT_CHARS`]
/// characters, a `size_px` of 0 or over [`MAX_TEXT_PX`], or a layout (lines
/// and padding) that would be wider or taller than
/// [`MAX_IMAGE_DIMENSION`] — all before the picture is allocated. An empty
/// text gives the padding and one line's height (transparent without a box).
pub fn render_text(style: &TextStyle) -> Result<Still, CaptureError> {
    let chars = style.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(bad(format!("{chars} characters; a text still may have at most {MAX_TEXT_CHARS}")));
    }
    if style.size_px == 0 || style.size_px > MAX_TEXT_PX {
        return Err(bad(format!("size {} px; a text still's size is 1..={MAX_TEXT_PX} px", style.size_px)));
    }
    let font = FontRef::try_from_slice(FONT).map_err(|e| bad(format!("the built-in font: {e}")))?;
    let reach = if style.bold { style.size_px.div_ceil(24) as usize } else { 0 };
    let layout = lay_out(&font, &style.text, style.size_px as f32, reach as f32);

    // The extent in layout coordinates: advances and ink, whichever is larger.
    let (mut left, mut top, mut right, mut bottom) = (0f32, 0f32, layout.width, layout.height);
    for g in &layout.glyphs {
        let b = g.px_bounds();
        left = left.min(b.min.x);
        top = top.min(b.min.y);
        right = right.max(b.max.x + reach as f32);
        bottom = bottom.max(b.max.y);
    }
    let pad = f64::from(style.padding_px);
    let (left, top) = (f64::from(left).floor(), f64::from(top).floor());
    let width = (f64::from(right).ceil() - left + 2.0 * pad).max(2.0);
    let height = (f64::from(bottom).ceil() - top + 2.0 * pad).max(2.0);
    let max = f64::from(MAX_IMAGE_DIMENSION);
    if width > max || height > max {
        return Err(bad(format!(
            "it would be {width}x{height} pixels; a still may be at most {MAX_IMAGE_DIMENSION}x{MAX_IMAGE_DIMENSION}"
        )));
    }
    // Within the bound, so these fit; rounded up to even for I420.
    let (w, h) = (even(width as usize), even(height as usize));
    let (ox, oy) = ((pad - left) as i64, (pad - top) as i64);

    let mut coverage = vec![0u8; w * h];
    for g in &layout.glyphs {
        let b = g.px_bounds();
        let (gx, gy) = (b.min.x as i64 + ox, b.min.y as i64 + oy);
        g.draw(|x, y, c| {
            let (px, py) = (gx + i64::from(x), gy + i64::from(y));
            if (0..w as i64).contains(&px) && (0..h as i64).contains(&py) {
                let cell = &mut coverage[py as usize * w + px as usize];
                // Glyphs that touch (kerned pairs) add up: two halves of a pixel cover it.
                *cell = cell.saturating_add((c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
            }
        });
    }
    if reach > 0 {
        for row in coverage.chunks_exact_mut(w) {
            widen_right(row, reach);
        }
    }

    let (fg, bg) = (style.colour, style.background);
    Ok(still_from_pixels(w, h, |x, y| over(fg, bg, coverage[y * w + x])))
}

/// Glyphs placed with their baselines, and the layout's size.
struct Layout {
    glyphs: Vec<OutlinedGlyph>,
    /// The longest line's advance, in pixels.
    width: f32,
    /// From the first line's ascent to the last line's descent.
    height: f32,
}

/// Places `text`'s glyphs line by line from (0, 0), the first line's top;
/// each advance is widened by `extra` (the bold widening).
fn lay_out(font: &FontRef<'_>, text: &str, size: f32, extra: f32) -> Layout {
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let line_height = scaled.height() + scaled.line_gap();
    let space = scaled.h_advance(scaled.glyph_id(' '));
    let (mut glyphs, mut width, mut lines) = (Vec::new(), 0f32, 0usize);
    for (i, line) in text.split('\n').enumerate() {
        lines = i + 1;
        let baseline = scaled.ascent() + i as f32 * line_height;
        let (mut x, mut previous): (f32, Option<GlyphId>) = (0.0, None);
        for c in line.chars() {
            if c == '\t' {
                x += TAB_SPACES * (space + extra);
                previous = None;
                continue;
            }
            if c.is_control() {
                continue;
            }
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                x += scaled.kern(p, id);
            }
            if let Some(outline) = font.outline_glyph(id.with_scale_and_position(scale, point(x, baseline))) {
                glyphs.push(outline);
            }
            x += scaled.h_advance(id) + extra;
            previous = Some(id);
        }
        width = width.max(x);
    }
    let height = scaled.height() + lines.saturating_sub(1) as f32 * line_height;
    Layout { glyphs, width, height }
}

/// Each pixel becomes the maximum of itself and the `reach` pixels to its
/// left: strokes widen rightwards by `reach`, in O(width * log reach).
fn widen_right(row: &mut [u8], reach: usize) {
    let window = reach + 1;
    let mut span = 1;
    // Invariant: row[x] is the maximum over the `span` pixels ending at x.
    while span * 2 <= window {
        for x in (span..row.len()).rev() {
            row[x] = row[x].max(row[x - span]);
        }
        span *= 2;
    }
    let rest = window - span;
    if rest > 0 {
        for x in (rest..row.len()).rev() {
            row[x] = row[x].max(row[x - rest]);
        }
    }
}

/// The colour `fg` at `coverage` over the box `bg` (straight alpha, "over").
fn over(fg: Rgba, bg: Option<Rgba>, coverage: u8) -> [u8; 4] {
    let ga = (u32::from(coverage) * u32::from(fg.a) + 127) / 255;
    let Some(bg) = bg else {
        return [fg.r, fg.g, fg.b, ga as u8];
    };
    let ba = (u32::from(bg.a) * (255 - ga) + 127) / 255;
    let a = ga + ba;
    if a == 0 {
        return [bg.r, bg.g, bg.b, 0];
    }
    let mix = |f: u8, b: u8| ((u32::from(f) * ga + u32::from(b) * ba + a / 2) / a) as u8;
    [mix(fg.r, bg.r), mix(fg.g, bg.g), mix(fg.b, bg.b), a as u8]
}

fn even(n: usize) -> usize {
    n + (n & 1)
}

fn bad(msg: String) -> CaptureError {
    CaptureError::Format(format!("text still: {msg}"))
}
