//! PCM plumbing shared by the file and device audio sources: channel layouts
//! to stereo, float <-> i16, and cutting a sample stream into timestamped
//! blocks.

use crate::media::AudioFrame;

/// -3 dB: the gain for a centre or surround channel folded into both sides
/// (ITU-R BS.775 downmix coefficients).
const FOLD_GAIN: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Appends `input` (interleaved, `channels` per frame) to `out` as
/// interleaved stereo: mono is duplicated, stereo copied, 5.1-like layouts
/// (L R C LFE Ls Rs) folded down per ITU-R BS.775 without the LFE, and any
/// other count split into even (left) and odd (right) channels and averaged.
pub fn to_stereo(input: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 0 {
        return;
    }
    let frames = input.len() / channels;
    out.reserve(frames * 2);
    match channels {
        1 => input.iter().for_each(|&s| out.extend_from_slice(&[s, s])),
        2 => out.extend_from_slice(&input[..frames * 2]),
        6 => {
            // Normalised so a full-scale signal on every channel cannot clip.
            let norm = 1.0 / (1.0 + 2.0 * FOLD_GAIN);
            for f in input.chunks_exact(6) {
                let c = f[2] * FOLD_GAIN;
                out.push((f[0] + c + f[4] * FOLD_GAIN) * norm);
                out.push((f[1] + c + f[5] * FOLD_GAIN) * norm);
            }
        }
        n => {
            let (left_n, right_n) = (n.div_ceil(2) as f32, (n / 2) as f32);
            for f in input.chunks_exact(n) {
                let l: f32 = f.iter().step_by(2).sum();
                let r: f32 = f.iter().skip(1).step_by(2).sum();
                out.push(l / left_n);
                out.push(r / right_n);
            }
        }
    }
}

/// Float sample in [-1, 1] to i16, clipped, rounded.
pub fn f32_to_i16(s: f32) -> i16 {
    (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Peak and RMS of a block, for the level meters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Levels {
    /// Largest absolute sample, 0..=1.
    pub peak: f32,
    /// Root mean square over all channels, 0..=1.
    pub rms: f32,
}

impl Levels {
    /// Levels of interleaved i16 samples.
    pub fn of_i16(samples: &[i16]) -> Levels {
        if samples.is_empty() {
            return Levels::default();
        }
        let mut peak = 0i32;
        let mut sum = 0f64;
        for &s in samples {
            let s = i32::from(s);
            peak = peak.max(s.abs());
            sum += f64::from(s * s);
        }
        Levels { peak: peak as f32 / 32768.0, rms: ((sum / samples.len() as f64).sqrt() / 32768.0) as f32 }
    }

    /// A level in dBFS (−∞ for silence is reported as −120).
    pub fn dbfs(level: f32) -> f32 {
        if level <= 1e-6 { -120.0 } else { 20.0 * level.log10() }
    }
}

/// Cuts a stream of interleaved stereo f32 samples into [`AudioFrame`]s of
/// exactly `block` frames at `rate`, timestamped from the count of frames
/// emitted (no drift).
#[derive(Debug)]
pub struct BlockCutter {
    rate: u32,
    block: usize,
    pending: Vec<f32>,
    emitted_frames: u64,
}

impl BlockCutter {
    /// Stereo blocks of `block` frames at `rate` Hz.
    pub fn new(rate: u32, block: usize) -> Self {
        BlockCutter { rate, block: block.max(1), pending: Vec::new(), emitted_frames: 0 }
    }

    /// Adds samples (interleaved stereo).
    pub fn push(&mut self, stereo: &[f32]) {
        self.pending.extend_from_slice(stereo);
    }

    /// Adds `frames` frames of silence.
    pub fn push_silence(&mut self, frames: usize) {
        self.pending.resize(self.pending.len() + frames * 2, 0.0);
    }

    /// Frames waiting for a full block.
    pub fn pending_frames(&self) -> usize {
        self.pending.len() / 2
    }

    /// Frames emitted so far.
    pub fn emitted_frames(&self) -> u64 {
        self.emitted_frames
    }

    /// Media time of the next frame to be emitted, µs.
    pub fn next_pts_us(&self) -> u64 {
        pts_us(self.emitted_frames, self.rate)
    }

    /// A full block if one is ready.
    pub fn pop(&mut self) -> Option<AudioFrame> {
        if self.pending.len() < self.block * 2 {
            return None;
        }
        Some(self.take(self.block))
    }

    /// Whatever is left, as a last (short) block.
    pub fn pop_rest(&mut self) -> Option<AudioFrame> {
        let n = self.pending.len() / 2;
        (n > 0).then(|| self.take(n))
    }

    fn take(&mut self, frames: usize) -> AudioFrame {
        let samples: Vec<i16> = self.pending.drain(..frames * 2).map(f32_to_i16).collect();
        let frame = AudioFrame { sample_rate: self.rate, channels: 2, samples, pts_us: self.next_pts_us() };
        self.emitted_frames += frames as u64;
        frame
    }
}

/// `n` frames at `rate` in µs, truncated (the same rule as the AAC encoder's timestamps).
pub fn pts_us(n: u64, rate: u32) -> u64 {
    if rate == 0 {
        return 0;
    }
    u64::try_from(u128::from(n) * 1_000_000 / u128::from(rate)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_to_stereo() {
        let mut out = Vec::new();
        to_stereo(&[0.5, -0.25], 1, &mut out);
        assert_eq!(out, vec![0.5, 0.5, -0.25, -0.25]);
        out.clear();
        to_stereo(&[0.1, 0.2, 0.3, 0.4, 0.9], 2, &mut out);
        assert_eq!(out, vec![0.1, 0.2, 0.3, 0.4]);
        out.clear();
        // 5.1 with only the centre: equal on both sides.
        to_stereo(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0], 6, &mut out);
        assert!((out[0] - out[1]).abs() < 1e-6 && out[0] > 0.2);
        out.clear();
        // Full scale everywhere does not clip.
        to_stereo(&[1.0; 6], 6, &mut out);
        assert!(out.iter().all(|&s| s <= 1.0 + 1e-6));
        out.clear();
        to_stereo(&[1.0, 0.0, 1.0, 0.0], 4, &mut out);
        assert_eq!(out, vec![1.0, 0.0]);
        out.clear();
        to_stereo(&[1.0, 1.0], 0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn i16_conversion_clips() {
        assert_eq!(f32_to_i16(0.0), 0);
        assert_eq!(f32_to_i16(1.0), 32767);
        assert_eq!(f32_to_i16(2.0), 32767);
        assert_eq!(f32_to_i16(-2.0), -32768);
        assert_eq!(f32_to_i16(0.5), 16384);
    }

    #[test]
    fn levels() {
        let l = Levels::of_i16(&[16384, -16384, 16384, -16384]);
        assert!((l.peak - 0.5).abs() < 1e-3 && (l.rms - 0.5).abs() < 1e-3);
        assert!((Levels::dbfs(0.5) + 6.02).abs() < 0.01);
        assert_eq!(Levels::dbfs(0.0), -120.0);
        assert_eq!(Levels::of_i16(&[]), Levels::default());
    }

    #[test]
    fn blocks_have_exact_size_and_count_based_pts() {
        let mut c = BlockCutter::new(48_000, 1024);
        c.push(&vec![0.25; 2 * 1500]);
        let a = c.pop().unwrap();
        assert_eq!((a.frames(), a.pts_us), (1024, 0));
        assert!(c.pop().is_none());
        c.push_silence(600);
        let b = c.pop().unwrap();
        assert_eq!(b.pts_us, 21_333);
        assert_eq!(b.samples[0], 8192);
        assert_eq!(b.samples[2 * 1023], 0);
        let rest = c.pop_rest().unwrap();
        assert_eq!((rest.frames(), rest.pts_us), (1500 + 600 - 2048, 42_666));
        assert!(c.pop_rest().is_none());
        assert_eq!(c.emitted_frames(), 2100);
    }
}
