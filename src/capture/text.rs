//! Text stills: a [`TextStyle`] laid out in lines and rasterised with
//! ab_glyph from a font that ships inside the binary (egui's Ubuntu Light,
//! the proportional face of `epaint_default_fonts`; its other face, Hack,
//! is monospaced and reads as code). No system font is looked up, so a
//! scene renders the same on every machine.
//!
//! Layout: lines split at `'\n'`, left-aligned, one line height apart (the
//! font's ascent - descent + line gap); pair kerning from the font's GPOS
//! `kern` feature (`kern.rs`). The still is the text's extent (advances and ink, whichever is
//! larger) plus the padding on every side; with a background the box is
//! the whole still.

use super::CaptureError;
use super::kern::PairKerning;
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
    let kerning = PairKerning::new(FONT);
    let kern = |a: GlyphId, b: GlyphId| kerning.units(a.0, b.0) as f32 * scaled.h_scale_factor() + scaled.kern(a, b);
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
                x += kern(p, id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn style(text: &str) -> TextStyle {
        TextStyle { text: text.to_string(), ..TextStyle::default() }
    }

    fn size(s: &Still) -> (usize, usize) {
        (s.frame.width as usize, s.frame.height as usize)
    }

    /// The four corner pixels of a plane `w` wide and `h` high.
    fn corners(plane: &[u8], w: usize, h: usize) -> [u8; 4] {
        [plane[0], plane[w - 1], plane[(h - 1) * w], plane[h * w - 1]]
    }

    #[test]
    fn text_without_a_box_is_glyph_coverage_alone() {
        let s = style("Tally");
        let still = render_text(&s).unwrap();
        let (w, h) = size(&still);
        assert!(w % 2 == 0 && h % 2 == 0);
        // Five glyphs of a 48 px face: wider than tall, about a line high plus padding.
        assert!((101..300).contains(&w) && (48 + 2 * 12..48 * 2 + 2 * 12).contains(&h), "{w}x{h}");
        let alpha = still.alpha.as_ref().expect("transparent around the glyphs");
        assert_eq!(corners(alpha, w, h), [0; 4]);
        // Nothing in the padding band.
        let pad = s.padding_px as usize;
        for y in 0..h {
            for x in 0..w {
                if x < pad || y < pad || x >= w - pad || y >= h - pad {
                    assert_eq!(alpha[y * w + x], 0, "ink in the padding at {x},{y}");
                }
            }
        }
        // Solid inside the strokes, and a fair share of the text area inked.
        let solid = alpha.iter().filter(|&&a| a == 255).count();
        let inked = alpha.iter().filter(|&&a| a > 0).count();
        assert!(solid > 300 && inked > solid, "solid {solid}, inked {inked}");
        // The T's stem: a column near the left with a long vertical run of full coverage.
        let stem = (pad..pad + 30).map(|x| (pad..h - pad).filter(|&y| alpha[y * w + x] == 255).count()).max().unwrap();
        assert!(stem > 25, "no stem in the T: longest solid column {stem}");
        // White glyphs: limited-range white, neutral chroma wherever they cover.
        for (i, &a) in alpha.iter().enumerate() {
            if a == 255 {
                assert!(still.frame.y[i].abs_diff(235) <= 1, "Y {} under full coverage", still.frame.y[i]);
            }
        }
        assert!(still.frame.u.iter().chain(&still.frame.v).all(|&c| c.abs_diff(128) <= 1));
    }

    #[test]
    fn a_box_is_behind_the_text_everywhere() {
        let opaque = render_text(&TextStyle { background: Some(Rgba::opaque(0, 0, 128)), ..style("Tally") }).unwrap();
        assert!(opaque.alpha.is_none(), "an opaque box makes an opaque still");
        let (w, h) = size(&opaque);
        // BT.709 limited luma of (0, 0, 128): 16 + 219 * 0.0722 * 128 / 255.
        let navy = 16.0 + 219.0 * 0.0722 * 128.0 / 255.0;
        assert!(corners(&opaque.frame.y, w, h).iter().all(|&y| (f64::from(y) - navy).abs() <= 1.0));
        assert!(opaque.frame.y.iter().any(|&y| y.abs_diff(235) <= 1), "no white glyph on the box");

        let half = render_text(&TextStyle { background: Some(Rgba { r: 0, g: 0, b: 0, a: 128 }), ..style("Tally") }).unwrap();
        assert_eq!(size(&half), (w, h), "the box does not change the layout");
        let alpha = half.alpha.as_ref().expect("a half-transparent box");
        assert_eq!(corners(alpha, w, h), [128; 4]);
        assert!(alpha.iter().all(|&a| a >= 128), "the box's alpha is everywhere");
        // Opaque glyphs over the box: the union is opaque there, and white.
        let glyphs = render_text(&style("Tally")).unwrap().alpha.unwrap();
        for i in 0..w * h {
            if glyphs[i] == 255 {
                assert_eq!(alpha[i], 255);
                assert!(half.frame.y[i].abs_diff(235) <= 1);
            } else if glyphs[i] == 0 {
                assert_eq!(alpha[i], 128);
                assert!(half.frame.y[i].abs_diff(16) <= 1);
            }
        }
    }

    #[test]
    fn two_lines_are_taller_than_one() {
        let one = render_text(&style("Tally")).unwrap();
        let two = render_text(&style("Tally\nTally")).unwrap();
        let (w1, h1) = size(&one);
        let (w2, h2) = size(&two);
        assert_eq!(w1, w2, "the same line twice is as wide");
        // One more line height: at least the glyph height.
        assert!(h2 >= h1 + 48, "{h1} then {h2}");
        // And the second line is drawn there: the same ink, one line height lower.
        let ink_rows = |s: &Still| {
            let (w, _) = size(s);
            let alpha = s.alpha.as_ref().unwrap();
            alpha.chunks_exact(w).enumerate().filter(|(_, row)| row.iter().any(|&a| a > 0)).map(|(y, _)| y).collect::<Vec<_>>()
        };
        let (rows1, rows2) = (ink_rows(&one), ink_rows(&two));
        let step = h2 - h1;
        // (A descender and the next line's ascenders may share a row of antialiasing.)
        assert!(rows2.len() + 2 >= 2 * rows1.len(), "not two lines of ink: {} rows then {}", rows1.len(), rows2.len());
        assert!(rows1.iter().all(|y| rows2.contains(y) && rows2.contains(&(y + step))), "second line not one line height below");
        let longer = render_text(&style("Tally\nTally Tally")).unwrap();
        assert!(size(&longer).0 > w1 && size(&longer).1 == h2);
    }

    #[test]
    fn padding_defaults_to_a_quarter_of_the_size_and_widens_the_still() {
        let tight = render_text(&TextStyle { padding_px: 0, ..style("Tally") }).unwrap();
        let padded = render_text(&TextStyle { padding_px: 20, ..style("Tally") }).unwrap();
        assert!(size(&padded).0.abs_diff(size(&tight).0 + 40) <= 1, "{:?} vs {:?}", size(&padded), size(&tight));
        let style: TextStyle = toml::from_str("text = \"Hi\"\nsize_px = 100\nbackground = \"#00000080\"").unwrap();
        assert_eq!(style.padding_px, 25);
        assert_eq!(style.colour, Rgba::WHITE);
        assert_eq!(style.background, Some(Rgba { r: 0, g: 0, b: 0, a: 128 }));
        assert!(!style.bold);
        let back: TextStyle = toml::from_str(&toml::to_string(&style).unwrap()).unwrap();
        assert_eq!(back, style);
        assert_eq!(toml::from_str::<TextStyle>("").unwrap(), TextStyle::default());
        assert!(!toml::to_string(&TextStyle::default()).unwrap().contains("background"));
    }

    #[test]
    fn pairs_are_kerned() {
        let font = FontRef::try_from_slice(FONT).unwrap();
        let width = |t: &str| lay_out(&font, t, 100.0, 0.0).width;
        for pair in ["AV", "To", "Wa"] {
            let (a, b) = pair.split_at(1);
            assert!(width(pair) < width(a) + width(b) - 1.0, "{pair}: {} vs {} + {}", width(pair), width(a), width(b));
        }
        assert!((width("ll") - 2.0 * width("l")).abs() < 0.01);
    }

    #[test]
    fn bold_strokes_are_heavier() {
        let light = render_text(&style("Tally")).unwrap();
        let bold = render_text(&TextStyle { bold: true, ..style("Tally") }).unwrap();
        let ink = |s: &Still| s.alpha.as_ref().unwrap().iter().map(|&a| u64::from(a)).sum::<u64>();
        assert!(ink(&bold) > ink(&light) * 3 / 2, "bold {} vs light {}", ink(&bold), ink(&light));
        assert!(size(&bold).0 > size(&light).0);
        let mut row = [0, 9, 0, 0, 0, 0, 5, 0, 0, 0];
        widen_right(&mut row, 2);
        assert_eq!(row, [0, 9, 9, 9, 0, 0, 5, 5, 5, 0]);
        let mut row = [7, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        widen_right(&mut row, 6);
        assert_eq!(row, [7, 7, 7, 7, 7, 7, 7, 0, 0, 0]);
    }

    #[test]
    fn oversize_requests_are_refused_before_rendering() {
        let refused = |s: TextStyle, why: &str| match render_text(&s) {
            Err(CaptureError::Format(msg)) => assert!(msg.contains(why), "{msg}"),
            other => panic!("{why}: not refused: {other:?}"),
        };
        refused(style(&"x".repeat(MAX_TEXT_CHARS + 1)), "characters");
        refused(TextStyle { size_px: 0, ..style("a") }, "size");
        refused(TextStyle { size_px: MAX_TEXT_PX + 1, ..style("a") }, "size");
        // Within each bound, too large together: one long line of huge glyphs,
        // many lines, an enormous padding.
        refused(TextStyle { size_px: MAX_TEXT_PX, ..style(&"W".repeat(MAX_TEXT_CHARS)) }, "at most 8192x8192");
        refused(TextStyle { size_px: MAX_TEXT_PX, ..style(&"a\n".repeat(20)) }, "at most 8192x8192");
        refused(TextStyle { padding_px: u32::MAX, ..style("a") }, "at most 8192x8192");
        assert!(render_text(&style(&"é".repeat(MAX_TEXT_CHARS))).is_err(), "1024 glyphs of 48 px do not fit one 8192 line");
        assert!(render_text(&TextStyle { size_px: 12, ..style(&"é".repeat(MAX_TEXT_CHARS / 2)) }).is_ok(), "counted in characters, not bytes");
    }

    #[test]
    fn empty_and_odd_texts_render() {
        let empty = render_text(&style("")).unwrap();
        assert!(size(&empty).1 >= 48 && empty.alpha.as_ref().unwrap().iter().all(|&a| a == 0));
        let tabbed = render_text(&style("a\tb\r")).unwrap();
        assert!(size(&tabbed).0 > size(&render_text(&style("ab")).unwrap()).0);
        // A character the face lacks draws its "missing" glyph, not a panic.
        assert!(render_text(&style("漢字 🎥")).is_ok());
    }

    #[test]
    fn see_a_lower_third() {
        // Not an assertion: writes the picture for a person to look at when
        // TALLY_STILL_PNG names a file.
        let Ok(path) = std::env::var("TALLY_STILL_PNG") else { return };
        let s = TextStyle {
            text: "Tally — live\nsecond line, kerning: AV To Wa".into(),
            size_px: 64,
            bold: std::env::var_os("TALLY_STILL_BOLD").is_some(),
            background: Some(Rgba { r: 20, g: 30, b: 90, a: 200 }),
            ..TextStyle::default()
        };
        let still = render_text(&s).unwrap();
        let (w, h) = size(&still);
        let alpha = still.alpha.clone().unwrap_or_else(|| vec![255; w * h]);
        let f = &still.frame;
        let rgba = image::RgbaImage::from_fn(w as u32, h as u32, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let yy = (f64::from(f.y[y * w + x]) - 16.0) * 255.0 / 219.0;
            let (u, v) = (f64::from(f.u[y / 2 * w / 2 + x / 2]) - 128.0, f64::from(f.v[y / 2 * w / 2 + x / 2]) - 128.0);
            let (u, v) = (u * 255.0 / 224.0, v * 255.0 / 224.0);
            let c = |x: f64| x.round().clamp(0.0, 255.0) as u8;
            image::Rgba([c(yy + 1.5748 * v), c(yy - 0.1873 * u - 0.4681 * v), c(yy + 1.8556 * u), alpha[y * w + x]])
        });
        rgba.save(path).unwrap();
    }
}
