//! Scaling one 8-bit plane (bilinear, fixed point): the converters' fit to
//! a frame size and the compositor's layers both use it.

/// A read-only view of one plane: `width` x `height` samples, rows
/// `stride` apart (a crop is a view into a larger plane).
#[derive(Clone, Copy)]
pub struct Plane<'a> {
    /// The samples; row `r` starts at `r * stride`.
    pub data: &'a [u8],
    /// Distance between rows.
    pub stride: usize,
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// Bilinear scaling of one plane into the rectangle (x, y, w, h) of `dst`
/// (stride `dst_stride`), centre-aligned samples, 8-bit fixed-point weights.
///
/// Vertical pass first: the two source rows around each output row are
/// blended at the source width (contiguous, vectorised), then that row is
/// scaled horizontally once. The horizontal weights of the usual ratios are
/// fixed and need no table: 3:2 (1080p to 720p), 2:1 and 1:1; any other
/// ratio reads each output sample's left index and weight from two flat
/// tables. (The first version, horizontal first through a table of tuples
/// and an iterator per row, took 2.5 times as long for 1080p to 720p, both
/// measured in one run; docs/PERFORMANCE.md has the figures.)
// Each argument is one of the destination rectangle's or plane's own
// numbers; a struct would only rename them at the call sites.
#[allow(clippy::too_many_arguments)]
pub fn scale_plane(src: Plane<'_>, dst: &mut [u8], dst_stride: usize, x: usize, y: usize, w: usize, h: usize) {
    let (sw, sh, stride) = (src.width, src.height, src.stride);
    if sw == 0 || sh == 0 || w == 0 || h == 0 {
        return;
    }
    // Left sample and weight of the right one (0..=256) of output sample i;
    // the left index is at most in_len - 2, so index + 1 is always inside.
    let pos = |i: usize, out_len: usize, in_len: usize| -> (usize, u32) {
        // Centre of output sample i, in source coordinates, 8 fractional bits.
        let p = ((2 * i + 1) * in_len * 256 / (2 * out_len)).saturating_sub(128);
        let i0 = p >> 8;
        if in_len < 2 {
            (0, 0)
        } else if i0 >= in_len - 1 {
            (in_len - 2, 256)
        } else {
            (i0, (p & 0xFF) as u32)
        }
    };
    enum Horizontal {
        Same,
        Half,
        TwoThirds,
        Table(Vec<usize>, Vec<u16>),
    }
    let horizontal = if w == sw {
        Horizontal::Same
    } else if sw == 2 * w {
        Horizontal::Half
    } else if 2 * sw == 3 * w {
        Horizontal::TwoThirds
    } else {
        let (xs, fxs) = (0..w).map(|i| pos(i, w, sw)).map(|(x0, fx)| (x0, fx as u16)).unzip();
        Horizontal::Table(xs, fxs)
    };
    // The vertically blended row: source width, 8 fractional bits.
    let mut mid = vec![0u16; sw];
    const ROUND: u32 = 1 << 15;
    for j in 0..h {
        let (y0, fy) = pos(j, h, sh);
        let y1 = if sh < 2 { 0 } else { y0 + 1 };
        let (r0, r1) = (&src.data[y0 * stride..][..sw], &src.data[y1 * stride..][..sw]);
        for ((m, &a), &b) in mid.iter_mut().zip(r0).zip(r1) {
            // At most 255 * 256: fits.
            *m = (u32::from(a) * (256 - fy) + u32::from(b) * fy) as u16;
        }
        let out = &mut dst[(y + j) * dst_stride + x..][..w];
        match &horizontal {
            Horizontal::Same => {
                for (o, &m) in out.iter_mut().zip(&mid) {
                    *o = ((u32::from(m) * 256 + ROUND) >> 16) as u8;
                }
            }
            Horizontal::Half => {
                for (o, m) in out.iter_mut().zip(mid.chunks_exact(2)) {
                    *o = (((u32::from(m[0]) + u32::from(m[1])) * 128 + ROUND) >> 16) as u8;
                }
            }
            Horizontal::TwoThirds => {
                // Output 2k sits a quarter past source 3k, 2k+1 three quarters past 3k+1.
                for (o, m) in out.chunks_exact_mut(2).zip(mid.chunks_exact(3)) {
                    let (a, b, c) = (u32::from(m[0]), u32::from(m[1]), u32::from(m[2]));
                    o[0] = ((a * 192 + b * 64 + ROUND) >> 16) as u8;
                    o[1] = ((b * 64 + c * 192 + ROUND) >> 16) as u8;
                }
            }
            Horizontal::Table(xs, fxs) => {
                if sw < 2 {
                    out.fill(((u32::from(mid[0]) * 256 + ROUND) >> 16) as u8);
                    continue;
                }
                for ((o, &x0), &fx) in out.iter_mut().zip(xs).zip(fxs) {
                    let (a, b, fx) = (u32::from(mid[x0]), u32::from(mid[x0 + 1]), u32::from(fx));
                    *o = ((a * (256 - fx) + b * fx + ROUND) >> 16) as u8;
                }
            }
        }
    }
}

