//! The synthetic video source: colour bars, a moving box, the frame number and
//! media time burned in, and a full-frame white flash once per second.
//!
//! Frames are generated directly in I420 (BT.709, limited range — the matrix
//! the preview converts with and the one players assume for HD): the bars are
//! rendered once into a background frame, and each frame is a copy of it with
//! a few small rectangles drawn on top, so a 1080p frame costs a memcpy of
//! 3 MB plus a few kilobytes of drawing, far below the cost of encoding it.
//!
//! The flash is the video half of the A/V sync marker; [`super::Tone`]'s beep
//! is the audio half. Both fall on whole seconds of source time, so decoding
//! the broadcast and comparing the flash frame's pts with the beep onset
//! measures the A/V offset the whole chain introduced.

use super::font::{ADVANCE, GLYPH_H, Plane, Rect, glyph, text_width};
use super::{CaptureError, FrameRate, VideoFormat, VideoSource};
use crate::media::VideoFrame;

/// Smallest accepted width and height: one H.264 macroblock. Below that the
/// layout degenerates and no encoder wants it anyway.
pub const MIN_DIMENSION: u32 = 16;
/// Largest accepted width (8K UHD); bounds the background allocation a
/// mistyped size can cause.
pub const MAX_PATTERN_WIDTH: u32 = 7680;
/// Largest accepted height; see [`MAX_PATTERN_WIDTH`].
pub const MAX_PATTERN_HEIGHT: u32 = 4320;
/// Highest accepted frame rate.
pub const MAX_FPS: u32 = 240;
/// Luma of the flash frame (BT.709 limited-range reference white); chroma is neutral (128).
pub const FLASH_LUMA: u8 = 235;

/// Limited-range black and white (ITU-R BT.709, 8-bit quantisation).
const BLACK: Yuv = Yuv(16, 128, 128);
const WHITE: Yuv = Yuv(235, 128, 128);

/// 75% colour bars, BT.709 limited range (SMPTE RP 219's 75% bars:
/// white, yellow, cyan, green, magenta, red, blue).
const BARS_75: [Yuv; 7] = [
    Yuv(180, 128, 128),
    Yuv(168, 44, 136),
    Yuv(145, 147, 44),
    Yuv(133, 63, 52),
    Yuv(63, 193, 204),
    Yuv(51, 109, 212),
    Yuv(28, 212, 120),
];

/// The reverse "castellation" strip under the bars (SMPTE ECR 1-1978):
/// blue, black, magenta, black, cyan, black, white.
const CASTELLATIONS: [Yuv; 7] = [BARS_75[6], BLACK, BARS_75[4], BLACK, BARS_75[2], BLACK, BARS_75[0]];

/// PLUGE steps in the bottom band: -2%, 0%, +2% of the luma range around
/// black (what RP 219 uses to set a monitor's black level).
const PLUGE_LUMA: [u8; 3] = [12, 16, 20];

/// The box moves across and back in this period of source time.
const MOVER_PERIOD_US: u64 = 4_000_000;
/// At least this many digits in the frame counter, so the box does not
/// change width every decade.
const FRAME_DIGITS: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Yuv(u8, u8, u8);

/// The synthetic test pattern; see the module docs for what it draws.
///
/// Frame `i` has `pts_us = start_offset + round(i * 1_000_000 * den / num)`.
///
/// **Flash rule.** Frame `i` is a flash frame (every pixel Y = [`FLASH_LUMA`],
/// U = V = 128, nothing else drawn) exactly when its pts is the first at or
/// after a whole second of source time: `i == 0`, or
/// `floor(pts_rel(i) / 1e6) > floor(pts_rel(i-1) / 1e6)` where `pts_rel`
/// excludes the start offset. For an integer rate that is `i % fps == 0`,
/// and the flash's pts is then exactly `k` seconds, the instant the beep of
/// [`super::Tone`] starts. For fractional rates (30000/1001) the flash lags the
/// second by less than one frame interval.
#[derive(Clone, Debug)]
pub struct TestPattern {
    format: VideoFormat,
    background: VideoFrame,
    /// Side of one font pixel in frame pixels.
    scale: usize,
    /// Top of the counter box (even).
    text_top: usize,
    /// The moving box, at x = 0; its x is computed per frame.
    mover: Rect,
    start_offset_us: u64,
    next_index: u64,
    /// Luma noise added to every frame (0: none); see [`TestPattern::with_noise`].
    noise: u8,
}

impl TestPattern {
    /// A pattern of `width` x `height` at a whole number of frames per second.
    ///
    /// Fails with [`CaptureError::Format`] if the size is odd (I420 needs even
    /// sizes; rounding silently would hand the encoder a size the user did not
    /// ask for), outside [`MIN_DIMENSION`]..=[`MAX_PATTERN_WIDTH`]/[`MAX_PATTERN_HEIGHT`], or
    /// the rate is outside 1..=[`MAX_FPS`].
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, CaptureError> {
        Self::with_rate(width, height, FrameRate::per_second(fps))
    }

    /// As [`TestPattern::new`], with a fractional rate such as 30000/1001.
    /// The rate must lie in 1..=[`MAX_FPS`] frames per second.
    pub fn with_rate(width: u32, height: u32, rate: FrameRate) -> Result<Self, CaptureError> {
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(CaptureError::Format(format!(
                "test pattern size {width}x{height}: width and height must be even (I420)"
            )));
        }
        if !(MIN_DIMENSION..=MAX_PATTERN_WIDTH).contains(&width) || !(MIN_DIMENSION..=MAX_PATTERN_HEIGHT).contains(&height) {
            return Err(CaptureError::Format(format!(
                "test pattern size {width}x{height}: must be between {MIN_DIMENSION}x{MIN_DIMENSION} \
                 and {MAX_PATTERN_WIDTH}x{MAX_PATTERN_HEIGHT}"
            )));
        }
        // num >= den and num <= MAX_FPS * den, in u64 so that neither overflows.
        let (num, den) = (u64::from(rate.num), u64::from(rate.den));
        if den == 0 || num < den || num > u64::from(MAX_FPS) * den {
            return Err(CaptureError::Format(format!(
                "test pattern rate {}/{}: must be between 1 and {MAX_FPS} frames per second",
                rate.num, rate.den
            )));
        }
        let (w, h) = (width as usize, height as usize);

        // Digits about 1/12 of the frame high, shrunk until a 12-character
        // timecode fits across.
        let mut scale = (h / (12 * GLYPH_H)).max(1);
        while scale > 1 && box_width(12, scale) > w {
            scale -= 1;
        }
        let side = even_down(h / 6).clamp(2, w);
        let mover = Rect {
            x: 0,
            y: even_down(h * 2 / 5),
            w: side,
            h: side,
        };

        Ok(TestPattern {
            format: VideoFormat {
                width,
                height,
                frame_rate: rate,
            },
            background: render_bars(width, height),
            scale,
            text_top: even_down(h / 24),
            mover,
            start_offset_us: 0,
            next_index: 0,
            noise: 0,
        })
    }

    /// The pattern under random luma noise of ±`amplitude`: a picture no
    /// encoder can compress, so a stream of it needs its whole bitrate (the
    /// pre-flight check's publish test measures the upload with it).
    pub fn with_noise(mut self, amplitude: u8) -> Self {
        self.noise = amplitude;
        self
    }

    /// Shifts every timestamp by `offset_us` (a source started after go-live).
    /// Flashes stay on whole seconds of *source* time: give the [`super::Tone`]
    /// the same offset and flash and beep still coincide.
    pub fn with_start_offset(mut self, offset_us: u64) -> Self {
        self.start_offset_us = offset_us;
        self
    }

    /// Presentation time of frame `index`, microseconds on the media clock.
    pub fn pts_us(&self, index: u64) -> u64 {
        self.start_offset_us
            .saturating_add(self.format.frame_rate.pts_us_of_frame(index))
    }

    /// Whether frame `index` is a flash frame (see the flash rule on [`TestPattern`]).
    pub fn is_flash(&self, index: u64) -> bool {
        let rate = self.format.frame_rate;
        index == 0 || rate.pts_us_of_frame(index) / 1_000_000 > rate.pts_us_of_frame(index - 1) / 1_000_000
    }

    /// Frame `index`, freshly allocated. Pure: the same index always gives the
    /// same frame, whatever was generated before.
    pub fn frame(&self, index: u64) -> VideoFrame {
        let mut frame = self.background.clone();
        self.fill(index, &mut frame);
        frame
    }

    /// Renders frame `index` into `frame`, reusing its buffers (they are
    /// resized if they do not match this pattern's size). Pure, like [`TestPattern::frame`].
    pub fn fill(&self, index: u64, frame: &mut VideoFrame) {
        frame.width = self.format.width;
        frame.height = self.format.height;
        frame.pts_us = self.pts_us(index);
        if self.is_flash(index) {
            refill(&mut frame.y, self.background.y.len(), FLASH_LUMA);
            refill(&mut frame.u, self.background.u.len(), 128);
            refill(&mut frame.v, self.background.v.len(), 128);
            return;
        }
        copy_plane(&mut frame.y, &self.background.y);
        copy_plane(&mut frame.u, &self.background.u);
        copy_plane(&mut frame.v, &self.background.v);
        self.draw_mover(index, frame);
        self.draw_counters(index, frame);
        if self.noise > 0 {
            // Seeded by the index: the same frame is the same noise.
            let mut rng = fastrand::Rng::with_seed(index);
            let span = u16::from(self.noise) * 2 + 1;
            for p in frame.y.iter_mut() {
                let delta = rng.u16(..span) as i16 - i16::from(self.noise);
                *p = (i16::from(*p) + delta).clamp(16, 235) as u8;
            }
        }
    }

    fn draw_mover(&self, index: u64, frame: &mut VideoFrame) {
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        let travel = (w - self.mover.w) as u64;
        let half = MOVER_PERIOD_US / 2;
        let t = self.format.frame_rate.pts_us_of_frame(index) % MOVER_PERIOD_US;
        let along = if t < half { t } else { MOVER_PERIOD_US - t };
        // travel <= MAX_PATTERN_WIDTH and along <= half: the product fits easily.
        let x = even_down((travel * along / half) as usize);
        let r = Rect { x, ..self.mover };
        fill_yuv(frame, w, h, r, WHITE);
    }

    fn draw_counters(&self, index: u64, frame: &mut VideoFrame) {
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        let s = self.scale;
        let mut number_buf = [0u8; 20];
        let number = format_frame_number(index, &mut number_buf);
        let mut time_buf = [0u8; 32];
        let time = format_timecode(self.pts_us(index), &mut time_buf);

        let pad = 2 * s;
        let gap = 3 * s;
        let chars = number.len().max(time.len());
        let bw = box_width(chars, s).min(even_down(w));
        let bh = even_up(2 * GLYPH_H * s + gap + 2 * pad);
        let bx = even_down(w.saturating_sub(bw) / 2);
        let boxed = Rect {
            x: bx,
            y: self.text_top,
            w: bw,
            h: bh,
        };
        fill_yuv(frame, w, h, boxed, BLACK);

        let mut luma = Plane {
            data: &mut frame.y,
            width: w,
            height: h,
        };
        let line_x = |len: usize| bx + bw.saturating_sub(text_width(len, s)) / 2;
        let top = self.text_top + pad;
        luma.draw_text(line_x(number.len()), top, s, number, WHITE.0);
        luma.draw_text(line_x(time.len()), top + GLYPH_H * s + gap, s, time, WHITE.0);
    }
}

/// What a picture made by a [`TestPattern`] says about itself, read back
/// from its luma plane after any number of encodes and decodes: the frame
/// number burned into it, or that it is the once-a-second flash (which
/// carries no number; its index lies between its neighbours').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameMark {
    /// The frame number the counter box shows.
    Number(u64),
    /// A flash frame (every pixel near [`FLASH_LUMA`]).
    Flash,
    /// Neither: not this pattern, another size, or too damaged to read.
    Unreadable,
}

/// A flash frame read back: its mean luma is above this (the bars average
/// about 100, the flash is 235; a decoded flash stays within a few steps).
const FLASH_MEAN_LUMA: u64 = 200;
/// A font pixel is lit when its centre reads above this (white 235 on black 16).
const LIT_LUMA: u32 = (16 + 235) / 2;
/// A glyph still reads when at most this many of its 35 font pixels are off
/// (an encoder's ringing around sharp edges), and no other digit is as close.
const MAX_GLYPH_ERRORS: u32 = 4;

impl TestPattern {
    /// Reads the frame number back from the luma plane `y` of a
    /// `width`x`height` picture this pattern made at that size (decoded
    /// from a stream or a recording, say): the inverse of [`TestPattern::fill`],
    /// so tests can tell a repeated, dropped or reordered frame from its
    /// pixels alone.
    pub fn read_mark(&self, y: &[u8], width: u32, height: u32) -> FrameMark {
        let (w, h) = (width as usize, height as usize);
        if width != self.format.width || height != self.format.height || y.len() < w * h || w == 0 || h == 0 {
            return FrameMark::Unreadable;
        }
        let mean = y[..w * h].iter().map(|&v| u64::from(v)).sum::<u64>() / (w * h) as u64;
        if mean > FLASH_MEAN_LUMA {
            return FrameMark::Flash;
        }
        let s = self.scale;
        let bw = box_width(12, s).min(even_down(w));
        let bx = even_down(w.saturating_sub(bw) / 2);
        let top = self.text_top + 2 * s;
        // Mean of the central half of each font pixel (robust to ringing).
        let cell = |x: usize, y0: usize| -> u32 {
            let (inset, side) = (s / 4, (s / 2).max(1));
            let mut sum = 0u32;
            for dy in 0..side {
                let row = (y0 + inset + dy).min(h - 1) * w;
                for dx in 0..side {
                    sum += u32::from(y[row + (x + inset + dx).min(w - 1)]);
                }
            }
            sum / (side * side) as u32
        };
        // A frame number has FRAME_DIGITS digits or more (after nine hours at
        // 30 fps). Longest first: centred, a number two digits shorter sits
        // exactly on the inner digits of a longer one, but a blank cell
        // never reads as a digit (the sparsest, 1, lights 10 of 35 pixels).
        'len: for len in (FRAME_DIGITS..=FRAME_DIGITS + 3).rev() {
            let x0 = bx + bw.saturating_sub(text_width(len, s)) / 2;
            let mut number = 0u64;
            for i in 0..len {
                let gx = x0 + i * ADVANCE * s;
                let mut best: Option<(u32, u64, bool)> = None; // errors, digit, tie
                for d in 0..10u8 {
                    let Some(rows) = glyph(b'0' + d) else { continue };
                    let mut errors = 0;
                    for (r, bits) in rows.iter().enumerate() {
                        for col in 0..5 {
                            let on = bits & (1 << (4 - col)) != 0;
                            let lit = cell(gx + col * s, top + r * s) > LIT_LUMA;
                            errors += u32::from(on != lit);
                        }
                    }
                    best = match best {
                        Some((e, _, _)) if errors > e => best,
                        Some((e, bd, _)) if errors == e => Some((e, bd, true)),
                        _ => Some((errors, u64::from(d), false)),
                    };
                }
                match best {
                    Some((errors, digit, false)) if errors <= MAX_GLYPH_ERRORS => number = number * 10 + digit,
                    _ => continue 'len,
                }
            }
            return FrameMark::Number(number);
        }
        FrameMark::Unreadable
    }
}

impl VideoSource for TestPattern {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn is_live(&self) -> bool {
        false
    }

    /// Frame after frame, without end (the index would need centuries to run out).
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError> {
        let Some(next) = self.next_index.checked_add(1) else {
            return Ok(None);
        };
        let frame = self.frame(self.next_index);
        self.next_index = next;
        Ok(Some(frame))
    }

    fn fill_next(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        let Some(next) = self.next_index.checked_add(1) else {
            return Ok(false);
        };
        self.fill(self.next_index, frame);
        self.next_index = next;
        Ok(true)
    }
}

/// Width of the black box around `chars` glyphs: the text plus two font
/// pixels of margin each side, rounded up to even for the chroma planes.
fn box_width(chars: usize, scale: usize) -> usize {
    even_up(text_width(chars, scale) + 4 * scale)
}

fn even_down(v: usize) -> usize {
    v & !1
}

fn even_up(v: usize) -> usize {
    v + (v & 1)
}

fn copy_plane(dst: &mut Vec<u8>, src: &[u8]) {
    if dst.len() == src.len() {
        dst.copy_from_slice(src);
    } else {
        dst.clear();
        dst.extend_from_slice(src);
    }
}

fn refill(dst: &mut Vec<u8>, len: usize, value: u8) {
    if dst.len() == len {
        dst.fill(value);
    } else {
        dst.clear();
        dst.resize(len, value);
    }
}

/// Fills `r` (even coordinates) with one colour in all three planes.
fn fill_yuv(frame: &mut VideoFrame, w: usize, h: usize, r: Rect, c: Yuv) {
    Plane {
        data: &mut frame.y,
        width: w,
        height: h,
    }
    .fill_rect(r, c.0);
    let rc = r.halved();
    Plane {
        data: &mut frame.u,
        width: w / 2,
        height: h / 2,
    }
    .fill_rect(rc, c.1);
    Plane {
        data: &mut frame.v,
        width: w / 2,
        height: h / 2,
    }
    .fill_rect(rc, c.2);
}

/// The static background: 75% bars over the top two thirds, castellations
/// down to three quarters, then 100% white, a luma ramp, black, PLUGE, black.
///
/// Laid out on the chroma grid (every edge on an even luma pixel) so that no
/// 2x2 block straddles two colours and the bars are exact in every plane.
fn render_bars(width: u32, height: u32) -> VideoFrame {
    let mut frame = VideoFrame::black(width, height, 0);
    let (w, h) = (width as usize, height as usize);
    let (wc, hc) = (w / 2, h / 2);
    let column = |xc: usize| (xc * 7 / wc).min(6);
    // First chroma column of column `c` under `column` above.
    let column_start = |c: usize| (c * wc).div_ceil(7);
    let bottom_colour = |xc: usize| -> Yuv {
        match column(xc) {
            0 => WHITE,
            1..=3 => {
                // One ramp across columns 1-3, black to white.
                let (r0, r1) = (column_start(1), column_start(4));
                let span = (r1 - r0).saturating_sub(1).max(1);
                let y = 16 + 219 * xc.saturating_sub(r0).min(span) / span;
                Yuv(y as u8, 128, 128)
            }
            5 => {
                let (start, end) = (column_start(5), column_start(6));
                let third = ((xc - start) * 3 / (end - start).max(1)).min(2);
                Yuv(PLUGE_LUMA[third], 128, 128)
            }
            _ => BLACK,
        }
    };
    for yc in 0..hc {
        for xc in 0..wc {
            let c = if yc < hc * 2 / 3 {
                BARS_75[column(xc)]
            } else if yc < hc * 3 / 4 {
                CASTELLATIONS[column(xc)]
            } else {
                bottom_colour(xc)
            };
            let ci = yc * wc + xc;
            frame.u[ci] = c.1;
            frame.v[ci] = c.2;
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                frame.y[(2 * yc + dy) * w + 2 * xc + dx] = c.0;
            }
        }
    }
    frame
}

/// `index` in decimal, zero-padded to [`FRAME_DIGITS`].
fn format_frame_number(index: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = index;
    let mut start = buf.len();
    while n > 0 || buf.len() - start < FRAME_DIGITS {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[start..]
}

/// `HH:MM:SS.mmm` (hours grow past two digits if they must), truncated to the millisecond.
fn format_timecode(us: u64, buf: &mut [u8; 32]) -> &[u8] {
    let ms = us / 1000;
    let (millis, secs) = (ms % 1000, ms / 1000);
    let (s, m, hours) = (secs % 60, (secs / 60) % 60, secs / 3600);
    // Built right to left: millis, '.', seconds, ':', minutes, ':', hours.
    let mut end = buf.len();
    let mut put = |value: u64, digits: usize, sep: Option<u8>, buf: &mut [u8; 32]| {
        let mut v = value;
        let mut written = 0;
        while written < digits || v > 0 {
            end -= 1;
            buf[end] = b'0' + (v % 10) as u8;
            v /= 10;
            written += 1;
        }
        if let Some(c) = sep {
            end -= 1;
            buf[end] = c;
        }
    };
    put(millis, 3, Some(b'.'), buf);
    put(s, 2, Some(b':'), buf);
    put(m, 2, Some(b':'), buf);
    put(hours, 2, None, buf);
    &buf[end..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::font::{ADVANCE, glyph};

    fn luma(f: &VideoFrame, x: usize, y: usize) -> u8 {
        f.y[y * f.width as usize + x]
    }

    fn chroma(f: &VideoFrame, x: usize, y: usize) -> (u8, u8) {
        let i = (y / 2) * (f.width as usize / 2) + x / 2;
        (f.u[i], f.v[i])
    }

    fn is_all_flash(f: &VideoFrame) -> bool {
        f.y.iter().all(|&p| p == FLASH_LUMA) && f.u.iter().chain(&f.v).all(|&p| p == 128)
    }

    #[test]
    fn odd_and_out_of_range_sizes_are_rejected() {
        for (w, h) in [(321, 240), (320, 241), (8, 8), (0, 0), (7682, 4320), (7680, 4322)] {
            assert!(
                matches!(TestPattern::new(w, h, 30), Err(CaptureError::Format(_))),
                "{w}x{h}"
            );
        }
        for fps in [0, 241] {
            assert!(matches!(TestPattern::new(320, 240, fps), Err(CaptureError::Format(_))));
        }
        let zero_den = FrameRate { num: 30, den: 0 };
        assert!(TestPattern::with_rate(320, 240, zero_den).is_err());
        let slow = FrameRate { num: 1, den: 2 };
        assert!(TestPattern::with_rate(320, 240, slow).is_err());
        assert!(
            TestPattern::with_rate(
                320,
                240,
                FrameRate {
                    num: u32::MAX,
                    den: u32::MAX
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn frames_have_the_requested_size() {
        for (w, h) in [
            (16, 16),
            (320, 240),
            (640, 360),
            (1280, 720),
            (1920, 1080),
            (7680, 4320),
            (18, 700),
        ] {
            let p = TestPattern::new(w, h, 30).unwrap();
            for i in [0, 1, 29, 30, 31] {
                let f = p.frame(i);
                assert_eq!((f.width, f.height), (w, h));
                let luma = w as usize * h as usize;
                assert_eq!((f.y.len(), f.u.len(), f.v.len()), (luma, luma / 4, luma / 4));
            }
            assert_eq!(
                p.format(),
                VideoFormat {
                    width: w,
                    height: h,
                    frame_rate: FrameRate::per_second(30)
                }
            );
        }
    }

    #[test]
    fn pts_follow_the_frame_count() {
        let p = TestPattern::new(320, 240, 30).unwrap();
        assert_eq!(
            [p.pts_us(0), p.pts_us(1), p.pts_us(2), p.pts_us(3)],
            [0, 33_333, 66_667, 100_000]
        );
        let p = p.with_start_offset(5_000);
        assert_eq!(p.frame(30).pts_us, 1_005_000);
        let mut src = TestPattern::new(320, 240, 25).unwrap();
        for i in 0..60 {
            assert_eq!(src.next_frame().unwrap().unwrap().pts_us, i * 40_000);
        }
    }

    #[test]
    fn flash_is_on_the_first_frame_of_each_second_and_only_there() {
        for fps in [1, 24, 25, 30, 50, 60, 240] {
            let p = TestPattern::new(64, 48, fps).unwrap();
            for i in 0..u64::from(fps) * 3 + 2 {
                assert_eq!(p.is_flash(i), i % u64::from(fps) == 0, "fps {fps} frame {i}");
                assert_eq!(is_all_flash(&p.frame(i)), p.is_flash(i), "fps {fps} frame {i}");
            }
        }
    }

    #[test]
    fn flash_follows_the_pts_rule_at_fractional_rates() {
        for rate in [
            FrameRate { num: 30_000, den: 1001 },
            FrameRate { num: 24_000, den: 1001 },
            FrameRate { num: 7, den: 3 },
        ] {
            let p = TestPattern::with_rate(64, 48, rate).unwrap();
            let flashes: Vec<u64> = (0..(20 * u64::from(rate.num)).div_ceil(u64::from(rate.den)) + 1)
                .filter(|&i| p.is_flash(i))
                .collect();
            for (k, &i) in flashes.iter().enumerate() {
                let second = k as u64 * 1_000_000;
                assert!(p.pts_us(i) >= second, "{rate}: flash {i} before second {k}");
                assert!(
                    i == 0 || p.pts_us(i - 1) < second,
                    "{rate}: flash {i} not the first after second {k}"
                );
            }
            assert_eq!(flashes.len(), 21, "{rate}");
        }
    }

    #[test]
    fn colour_bars_have_bt709_values() {
        let p = TestPattern::new(1280, 720, 30).unwrap();
        // Below the moving box, above the castellations: pure bars.
        let row = 720 * 2 / 3 - 8;
        for frame in [p.background.clone(), p.frame(1), p.frame(17)] {
            for (c, bar) in BARS_75.iter().enumerate() {
                let x = (2 * c + 1) * 1280 / 14;
                assert_eq!(luma(&frame, x, row), bar.0, "bar {c}");
                assert_eq!(chroma(&frame, x, row), (bar.1, bar.2), "bar {c}");
            }
        }
        // Independently: the table equals BT.709 applied to 75% RGB.
        let rgb = [
            (1, 1, 1),
            (1, 1, 0),
            (0, 1, 1),
            (0, 1, 0),
            (1, 0, 1),
            (1, 0, 0),
            (0, 0, 1),
        ];
        for ((r, g, b), bar) in rgb.iter().zip(BARS_75) {
            let (r, g, b) = (0.75 * f64::from(*r), 0.75 * f64::from(*g), 0.75 * f64::from(*b));
            let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            let expect = (
                (16.0 + 219.0 * y).round() as u8,
                (128.0 + 224.0 * (b - y) / 1.8556).round() as u8,
                (128.0 + 224.0 * (r - y) / 1.5748).round() as u8,
            );
            assert_eq!(Yuv(expect.0, expect.1, expect.2), bar);
        }
        // Castellations and the bottom band.
        let bg = &p.background;
        let mid = 360 * 3 / 4 * 2 - 4;
        assert_eq!(luma(bg, 1280 / 14, mid), BARS_75[6].0);
        assert_eq!(luma(bg, 3 * 1280 / 14, mid), 16);
        let low = 700;
        assert_eq!(luma(bg, 1280 / 14, low), 235);
        let ramp: Vec<u8> = (0..1280).map(|x| luma(bg, x, low)).collect();
        let (r0, r1) = (2 * 640usize.div_ceil(7), 2 * (4 * 640usize).div_ceil(7));
        assert_eq!((ramp[r0 - 1], ramp[r0], ramp[r1 - 1], ramp[r1]), (235, 16, 235, 16));
        assert!(ramp[r0..r1].windows(2).all(|p| p[0] <= p[1]), "ramp not monotonic");
        assert_eq!(luma(bg, 5 * 1280 / 7 + 2, low), 12);
        assert_eq!(luma(bg, 6 * 1280 / 7 - 2, low), 20);
    }

    #[test]
    fn digits_box_changes_between_frames_and_nothing_else_but_the_mover() {
        let p = TestPattern::new(640, 360, 30).unwrap();
        let (f1, f2) = (p.frame(1), p.frame(2));
        let w = 640;
        let text_rows = p.text_top..p.text_top + 21 * p.scale + 2;
        let mover_rows = p.mover.y..p.mover.y + p.mover.h;
        let row_diff = |y: usize| f1.y[y * w..(y + 1) * w] != f2.y[y * w..(y + 1) * w];
        assert!(
            text_rows.clone().any(row_diff),
            "counter box unchanged between frames 1 and 2"
        );
        assert!(mover_rows.clone().any(row_diff), "box did not move");
        for y in 0..360 {
            if !text_rows.contains(&y) && !mover_rows.contains(&y) {
                assert!(!row_diff(y), "row {y} changed");
                assert_eq!(f1.y[y * w..(y + 1) * w], p.background.y[y * w..(y + 1) * w], "row {y}");
            }
        }
        // The counters are white glyphs on a black box.
        let text: Vec<u8> = text_rows.flat_map(|y| f1.y[y * w..(y + 1) * w].to_vec()).collect();
        assert!(text.iter().filter(|&&v| v == 235).count() > 100);
        assert!(text.iter().filter(|&&v| v == 16).count() > 1000);
    }

    #[test]
    fn burned_in_counter_reads_back() {
        // Read the frame-number line back glyph by glyph, as a decoder-side check would.
        let p = TestPattern::new(1920, 1080, 30).unwrap();
        assert_eq!(p.scale, 12);
        let f = p.frame(1234);
        let s = p.scale;
        let text = b"001234";
        let bw = box_width(12, s);
        let bx = even_down((1920 - bw) / 2);
        let x0 = bx + (bw - text_width(text.len(), s)) / 2;
        let y0 = p.text_top + 2 * s;
        for (i, c) in text.iter().enumerate() {
            let rows = glyph(*c).unwrap();
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    let on = bits & (1 << (4 - col)) != 0;
                    let (x, y) = (x0 + i * ADVANCE * s + col * s + s / 2, y0 + r * s + s / 2);
                    assert_eq!(luma(&f, x, y), if on { 235 } else { 16 }, "char {i} row {r} col {col}");
                }
            }
        }
    }

    #[test]
    fn frame_marks_read_back_at_every_size_under_noise() {
        for (w, h) in [(320, 180), (640, 360), (1280, 720), (1920, 1080)] {
            let p = TestPattern::new(w, h, 30).unwrap();
            let noisy = TestPattern::new(w, h, 30).unwrap().with_noise(40);
            for i in [0u64, 1, 29, 30, 31, 1234, 999_999, 1_000_001, 123_456_789] {
                let want = if p.is_flash(i) { FrameMark::Flash } else { FrameMark::Number(i) };
                assert_eq!(p.read_mark(&p.frame(i).y, w, h), want, "{w}x{h} frame {i}");
                assert_eq!(noisy.read_mark(&noisy.frame(i).y, w, h), want, "{w}x{h} frame {i} under noise");
            }
            // Another size, or a picture that is not the pattern, reads as nothing.
            assert_eq!(p.read_mark(&p.frame(5).y, w + 2, h), FrameMark::Unreadable);
            assert_eq!(p.read_mark(&vec![16; (w * h) as usize], w, h), FrameMark::Unreadable);
        }
        // One digit damaged beyond recognition: unreadable, never another number.
        let p = TestPattern::new(640, 360, 30).unwrap();
        let mut f = p.frame(1234);
        let s = p.scale;
        let bw = box_width(12, s);
        let bx = even_down((640 - bw) / 2);
        let x0 = bx + (bw - text_width(6, s)) / 2 + 5 * ADVANCE * s;
        for y in p.text_top + 2 * s..p.text_top + 9 * s {
            f.y[y * 640 + x0..y * 640 + x0 + 5 * s].fill(235);
        }
        assert_eq!(p.read_mark(&f.y, 640, 360), FrameMark::Unreadable);
    }

    #[test]
    fn counter_strings() {
        let mut b = [0u8; 20];
        assert_eq!(format_frame_number(0, &mut b), b"000000");
        assert_eq!(format_frame_number(1234567, &mut b), b"1234567");
        assert_eq!(format_frame_number(u64::MAX, &mut b), b"18446744073709551615");
        let mut t = [0u8; 32];
        assert_eq!(format_timecode(0, &mut t), b"00:00:00.000");
        assert_eq!(format_timecode(33_333, &mut t), b"00:00:00.033");
        assert_eq!(format_timecode(3_723_456_789, &mut t), b"01:02:03.456");
        assert_eq!(format_timecode(360_000_000_000, &mut t), b"100:00:00.000");
        assert_eq!(format_timecode(u64::MAX, &mut t), b"5124095576:01:49.551");
    }

    #[test]
    fn fill_reuses_and_resizes_buffers() {
        let p = TestPattern::new(320, 240, 30).unwrap();
        let mut buf = VideoFrame::black(64, 64, 0);
        for i in [0, 5, 30, 31] {
            p.fill(i, &mut buf);
            let f = p.frame(i);
            assert_eq!((buf.width, buf.height, buf.pts_us), (f.width, f.height, f.pts_us));
            assert!(buf.y == f.y && buf.u == f.u && buf.v == f.v, "frame {i}");
        }
        let mut src = TestPattern::new(320, 240, 30).unwrap();
        for i in 0..3 {
            assert!(src.fill_next(&mut buf).unwrap());
            assert_eq!(buf.pts_us, p.pts_us(i));
        }
    }

    #[test]
    fn tiny_and_narrow_frames_draw_without_panicking() {
        for (w, h) in [(16, 16), (16, 4320), (7680, 16), (30, 1080)] {
            let p = TestPattern::new(w, h, 60).unwrap();
            for i in [1, 59, 61, 1_000_000_000] {
                let _ = p.frame(i);
            }
        }
    }

    #[test]
    fn timing_1080p() {
        // Informational only: never assert on wall-clock time.
        let p = TestPattern::new(1920, 1080, 30).unwrap();
        let mut buf = p.frame(1);
        let n = 300;
        let start = std::time::Instant::now();
        for i in 1..=n {
            p.fill(i, &mut buf);
        }
        let per = start.elapsed() / n as u32;
        println!("TestPattern 1080p fill: {per:?} per frame");
        assert_eq!(buf.pts_us, p.pts_us(n));
    }

    proptest::proptest! {
        #[test]
        fn frame_is_pure_and_well_formed(w in 8u32..200, h in 8u32..200, fps in 1u32..=240, i in 0u64..1_000_000) {
            let (w, h) = (w * 2, h * 2);
            let p = TestPattern::new(w, h, fps).unwrap();
            let a = p.frame(i);
            let b = p.frame(i);
            proptest::prop_assert!(a.y == b.y && a.u == b.u && a.v == b.v);
            proptest::prop_assert_eq!(a.y.len(), (w * h) as usize);
            proptest::prop_assert_eq!(is_all_flash(&a), i % u64::from(fps) == 0);
        }
    }
}
