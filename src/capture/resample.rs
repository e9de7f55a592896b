//! Sample-rate conversion of interleaved stereo f32 to the broadcast rate,
//! with a ratio that can be nudged while running (clock-drift correction).
//!
//! A thin layer over rubato's asynchronous sinc resampler: it accepts input
//! of any length (rubato wants fixed chunks), trims the filter's start-up
//! delay so output frame 0 lines up with input frame 0, and passes audio
//! through untouched when the rates match and no adjustment is ever wanted.

use super::CaptureError;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Adjustable, Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, WindowFunction};

/// Input frames per rubato call: ~5 ms at 48 kHz, small enough to keep the
/// device-to-output latency low.
const CHUNK_FRAMES: usize = 256;

/// Sinc filter length: 128 taps keep aliasing under -100 dB with the
/// Blackman-Harris² window while costing ~1 % of a core for stereo 48 kHz.
const SINC_LEN: usize = 128;

/// How far the ratio may be moved from nominal (drift correction), as a factor.
pub const MAX_RELATIVE_RATIO: f64 = 1.1;

/// A stereo resampler from `in_rate` to `out_rate`.
pub struct StereoResampler {
    inner: Option<Box<Async<f32>>>,
    /// Input waiting for a full chunk.
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    /// Output frames still to discard (filter delay).
    to_skip: usize,
    relative: f64,
    /// Input frames given to `process` (for `flush`'s arithmetic).
    fed_in: u64,
    /// Output frames handed out.
    emitted_out: u64,
}

impl std::fmt::Debug for StereoResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StereoResampler")
            .field("passthrough", &self.inner.is_none())
            .field("relative", &self.relative)
            .finish_non_exhaustive()
    }
}

impl StereoResampler {
    /// A converter from `in_rate` to `out_rate`. With `adjustable` false and
    /// equal rates it passes samples through; otherwise it resamples (an
    /// adjustable one resamples even at equal rates, so the ratio can move).
    pub fn new(in_rate: u32, out_rate: u32, adjustable: bool) -> Result<Self, CaptureError> {
        if in_rate == 0 || out_rate == 0 {
            return Err(CaptureError::Format(format!("cannot resample {in_rate} Hz to {out_rate} Hz")));
        }
        if in_rate == out_rate && !adjustable {
            return Ok(StereoResampler { inner: None, pending: Vec::new(), out_buf: Vec::new(), to_skip: 0, relative: 1.0, fed_in: 0, emitted_out: 0 });
        }
        let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2);
        let ratio = f64::from(out_rate) / f64::from(in_rate);
        let inner = Async::<f32>::new_sinc(ratio, MAX_RELATIVE_RATIO, &params, CHUNK_FRAMES, 2, FixedAsync::Input)
            .map_err(|e| CaptureError::Format(format!("resampler {in_rate} -> {out_rate} Hz: {e}")))?;
        let to_skip = inner.output_delay();
        let out_buf = vec![0.0; 2 * inner.output_frames_max()];
        Ok(StereoResampler { inner: Some(Box::new(inner)), pending: Vec::new(), out_buf, to_skip, relative: 1.0, fed_in: 0, emitted_out: 0 })
    }

    /// True when samples pass through unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.inner.is_none()
    }

    /// The current ratio relative to nominal (1.0 = exact rate conversion).
    pub fn relative_ratio(&self) -> f64 {
        self.relative
    }

    /// Moves the ratio to `relative` × nominal (clamped to the allowed range).
    /// A passthrough resampler ignores it.
    pub fn set_relative_ratio(&mut self, relative: f64) {
        let Some(inner) = self.inner.as_mut() else { return };
        let r = relative.clamp(1.0 / MAX_RELATIVE_RATIO, MAX_RELATIVE_RATIO);
        if inner.set_resample_ratio_relative(r, true).is_ok() {
            self.relative = r;
        }
    }

    /// Input frames accepted but not yet turned into output.
    pub fn pending_input_frames(&self) -> usize {
        self.pending.len() / 2
    }

    /// Converts `input` (interleaved stereo) and appends what is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), CaptureError> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        self.fed_in += (input.len() / 2) as u64;
        let mut start = 0;
        loop {
            let need = inner.input_frames_next();
            if (self.pending.len() - start) / 2 < need {
                break;
            }
            let chunk = &self.pending[start..start + 2 * need];
            let frames_out = run(inner, chunk, need, &mut self.out_buf)?;
            start += 2 * need;
            let before = out.len();
            emit(&self.out_buf[..2 * frames_out], &mut self.to_skip, out);
            self.emitted_out += ((out.len() - before) / 2) as u64;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Pushes the remaining input and the filter's tail through (end of a
    /// file): afterwards the output holds every input frame, converted.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<(), CaptureError> {
        let Some(inner) = self.inner.as_mut() else { return Ok(()) };
        let ratio = inner.resample_ratio();
        let mut owed = ((self.fed_in as f64) * ratio).round() as u64;
        owed = owed.saturating_sub(self.emitted_out);
        let mut rest = std::mem::take(&mut self.pending);
        let mut chunk = vec![0.0f32; 2 * inner.input_frames_max()];
        // Enough rounds to push the filter delay through, and a bound.
        let mut rounds = 0;
        while owed > 0 && rounds < 64 {
            rounds += 1;
            let need = inner.input_frames_next();
            chunk.iter_mut().for_each(|s| *s = 0.0);
            let real = (rest.len() / 2).min(need);
            chunk[..2 * real].copy_from_slice(&rest[..2 * real]);
            rest.drain(..2 * real);
            let frames_out = run(inner, &chunk[..2 * need], need, &mut self.out_buf)?;
            let before = out.len();
            let keep = (frames_out as u64).min(owed + self.to_skip as u64) as usize;
            emit(&self.out_buf[..2 * keep], &mut self.to_skip, out);
            owed = owed.saturating_sub(((out.len() - before) / 2) as u64);
        }
        self.emitted_out += owed;
        Ok(())
    }
}

fn run(inner: &mut Async<f32>, chunk: &[f32], frames: usize, out_buf: &mut [f32]) -> Result<usize, CaptureError> {
    let err = |e: &dyn std::fmt::Display| CaptureError::Format(format!("resampler: {e}"));
    let input = InterleavedSlice::new(chunk, 2, frames).map_err(|e| err(&e))?;
    let cap = out_buf.len() / 2;
    let mut output = InterleavedSlice::new_mut(out_buf, 2, cap).map_err(|e| err(&e))?;
    let (_read, written) = inner.process_into_buffer(&input, &mut output, None::<&Indexing>).map_err(|e| err(&e))?;
    Ok(written)
}

fn emit(frames: &[f32], to_skip: &mut usize, out: &mut Vec<f32>) {
    let n = frames.len() / 2;
    let skip = (*to_skip).min(n);
    *to_skip -= skip;
    out.extend_from_slice(&frames[2 * skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let s = (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32;
                [s, s]
            })
            .collect()
    }

    /// Frequency from zero crossings of the left channel.
    fn freq(stereo: &[f32], rate: u32) -> f64 {
        let left: Vec<f32> = stereo.iter().step_by(2).copied().collect();
        let ups: Vec<usize> = (1..left.len()).filter(|&i| left[i - 1] < 0.0 && left[i] >= 0.0).collect();
        let (first, last) = (ups[0], ups[ups.len() - 1]);
        (ups.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
    }

    #[test]
    fn passthrough_when_rates_match() {
        let mut r = StereoResampler::new(48_000, 48_000, false).unwrap();
        assert!(r.is_passthrough());
        let mut out = Vec::new();
        r.process(&[0.1, 0.2], &mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        assert!(StereoResampler::new(0, 48_000, false).is_err());
    }

    #[test]
    fn converts_44k1_to_48k_keeping_pitch_length_and_alignment() {
        let input = sine(44_100, 1000.0, 44_100);
        let mut r = StereoResampler::new(44_100, 48_000, false).unwrap();
        let mut out = Vec::new();
        // Odd-sized pieces, as a device or file delivers them.
        for piece in input.chunks(2 * 333) {
            r.process(piece, &mut out).unwrap();
        }
        r.flush(&mut out).unwrap();
        let frames = out.len() / 2;
        assert!((47_990..=48_010).contains(&frames), "{frames} frames out of 1 s");
        let f = freq(&out[2 * 1000..2 * 47_000], 48_000);
        assert!((f - 1000.0).abs() < 0.5, "{f} Hz");
        // Aligned: the sine starts at 0 going up, so frame 12 (1/4 period at
        // 1 kHz is 12 frames) is near the peak.
        assert!((out[2 * 12] - 0.5).abs() < 0.02, "{}", out[2 * 12]);
    }

    #[test]
    fn a_nudged_ratio_changes_the_output_length() {
        let input = sine(48_000, 440.0, 48_000);
        let mut nominal = StereoResampler::new(48_000, 48_000, true).unwrap();
        let mut fast = StereoResampler::new(48_000, 48_000, true).unwrap();
        fast.set_relative_ratio(1.001);
        assert!((fast.relative_ratio() - 1.001).abs() < 1e-12);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for piece in input.chunks(2 * 480) {
            nominal.process(piece, &mut a).unwrap();
            fast.process(piece, &mut b).unwrap();
        }
        let extra = b.len() as i64 / 2 - a.len() as i64 / 2;
        assert!((40..=56).contains(&extra), "1000 ppm over 1 s should add ~48 frames, added {extra}");
        fast.set_relative_ratio(5.0);
        assert!((fast.relative_ratio() - MAX_RELATIVE_RATIO).abs() < 1e-12);
    }
}
