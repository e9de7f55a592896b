//! A 5x7 bitmap font for the burned-in counters, and the two raster
//! operations the test pattern needs (fill a rectangle, draw text) on one
//! 8-bit plane.
//!
//! `0-9`, `:`, `.` and `A-Z`: the pattern shows a frame number and a timecode,
//! the slates a word or two, and a tiny font drawn in scaled blocks is both
//! fast and easy to read back from a decoded frame.

/// Glyph width in font pixels.
pub(crate) const GLYPH_W: usize = 5;
/// Glyph height in font pixels.
pub(crate) const GLYPH_H: usize = 7;
/// Horizontal distance from one glyph to the next, in font pixels (one blank column).
pub(crate) const ADVANCE: usize = GLYPH_W + 1;

/// Rows top to bottom; bit 4 is the leftmost column.
const DIGITS: [[u8; GLYPH_H]; 10] = [
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // 2
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // 9
];
/// Upper-case letters A-Z, for the slates a source shows when its device is gone.
const LETTERS: [[u8; GLYPH_H]; 26] = [
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // X
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // Z
];
const COLON: [u8; GLYPH_H] = [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000];
const PERIOD: [u8; GLYPH_H] = [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100];

/// The bitmap of a character, `None` for characters the font lacks (drawn as blanks).
pub(crate) fn glyph(c: u8) -> Option<&'static [u8; GLYPH_H]> {
    match c {
        b'0'..=b'9' => DIGITS.get(usize::from(c - b'0')),
        b'A'..=b'Z' => LETTERS.get(usize::from(c - b'A')),
        b':' => Some(&COLON),
        b'.' => Some(&PERIOD),
        _ => None,
    }
}

/// Width in plane pixels of `chars` glyphs at `scale` (no trailing gap).
pub(crate) fn text_width(chars: usize, scale: usize) -> usize {
    if chars == 0 { 0 } else { (chars * ADVANCE - 1) * scale }
}

/// An axis-aligned rectangle in plane pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Rect {
    /// The same area in a plane subsampled 2x2 (I420 chroma); exact when all
    /// four fields are even, which the pattern's layout guarantees.
    pub fn halved(self) -> Rect {
        Rect {
            x: self.x / 2,
            y: self.y / 2,
            w: self.w / 2,
            h: self.h / 2,
        }
    }
}

/// One 8-bit plane with stride equal to its width (the layout of
/// [`crate::media::VideoFrame`] planes). Every write is clipped to the plane.
pub(crate) struct Plane<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
}

impl Plane<'_> {
    /// Sets every pixel of `r` that lies inside the plane to `value`.
    pub fn fill_rect(&mut self, r: Rect, value: u8) {
        let x0 = r.x.min(self.width);
        let x1 = r.x.saturating_add(r.w).min(self.width);
        let y1 = r.y.saturating_add(r.h).min(self.height);
        for row in r.y.min(y1)..y1 {
            let start = row * self.width;
            if let Some(span) = self.data.get_mut(start + x0..start + x1) {
                span.fill(value);
            }
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a
    /// `scale` x `scale` block of `value`. Only set pixels are written: the
    /// caller clears the background box first.
    pub fn draw_text(&mut self, x: usize, y: usize, scale: usize, text: &[u8], value: u8) {
        for (i, &c) in text.iter().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            let gx = x + i * ADVANCE * scale;
            for (row, bits) in rows.iter().enumerate() {
                let gy = y + row * scale;
                // Runs of set bits become one rectangle: fewer, longer fills.
                let mut col = 0;
                while col < GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) == 0 {
                        col += 1;
                        continue;
                    }
                    let run_start = col;
                    while col < GLYPH_W && bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                        col += 1;
                    }
                    let r = Rect {
                        x: gx + run_start * scale,
                        y: gy,
                        w: (col - run_start) * scale,
                        h: scale,
                    };
                    self.fill_rect(r, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &[u8], scale: usize) -> (Vec<u8>, usize, usize) {
        let (w, h) = (text_width(text.len(), scale) + 2, GLYPH_H * scale + 2);
        let mut data = vec![0u8; w * h];
        Plane {
            data: &mut data,
            width: w,
            height: h,
        }
        .draw_text(1, 1, scale, text, 1);
        (data, w, h)
    }

    #[test]
    fn every_digit_is_distinct() {
        let mut seen = std::collections::HashSet::new();
        for c in b"0123456789:." {
            assert!(
                seen.insert(*glyph(*c).unwrap()),
                "glyph {} duplicates another",
                *c as char
            );
        }
        assert!(glyph(b'x').is_none());
    }

    #[test]
    fn scaled_glyph_has_scaled_pixel_count() {
        for c in b"0123456789:." {
            let bits: u32 = glyph(*c).unwrap().iter().map(|r| r.count_ones()).sum();
            let (data, _, _) = render(&[*c], 3);
            assert_eq!(data.iter().filter(|&&p| p == 1).count() as u32, bits * 9);
        }
    }

    #[test]
    fn one_is_drawn_where_expected() {
        let (data, w, _) = render(b"1", 1);
        let at = |x: usize, y: usize| data[(y + 1) * w + x + 1];
        assert_eq!(at(2, 0), 1);
        assert_eq!(at(1, 1), 1);
        assert_eq!(at(0, 0), 0);
        assert_eq!((0..5).map(|x| at(x, 6)).collect::<Vec<_>>(), [0, 1, 1, 1, 0]);
    }

    #[test]
    fn drawing_is_clipped_to_the_plane() {
        let mut data = vec![0u8; 8 * 4];
        let mut plane = Plane {
            data: &mut data,
            width: 8,
            height: 4,
        };
        plane.draw_text(5, 2, 4, b"88:88", 9);
        plane.fill_rect(
            Rect {
                x: 6,
                y: 3,
                w: usize::MAX,
                h: usize::MAX,
            },
            7,
        );
        plane.fill_rect(
            Rect {
                x: 100,
                y: 100,
                w: 5,
                h: 5,
            },
            7,
        );
        assert_eq!(data.len(), 32);
        assert_eq!(data[3 * 8 + 7], 7);
        assert_eq!(data[0], 0);
    }
}
