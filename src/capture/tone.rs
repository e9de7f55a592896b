//! Synthetic audio: a steady tone with a beep on every whole second (the audio
//! half of the A/V sync marker; [`super::TestPattern`]'s flash is the video
//! half), and digital silence.
//!
//! Both are pure functions of the sample index: block `b` is always the same
//! samples, timestamps come from the sample count (no drift), and the tone is
//! phase-continuous across blocks because its phase is taken from the absolute
//! index, never accumulated.

use super::{AudioFormat, AudioSource, CaptureError};
use crate::media::AudioFrame;

/// Sample frames per block: one AAC-LC access unit (ISO 14496-3, 1024-sample
/// frames), so each block becomes exactly one AAC packet.
pub const AUDIO_BLOCK_FRAMES: usize = 1024;
/// Frequency of the steady tone (the EBU line-up reference pitch).
pub const TONE_HZ: u32 = 440;
/// Peak level of the steady tone: quiet enough that the beep stands out.
pub const TONE_DBFS: f64 = -20.0;
/// Frequency of the beep: far enough from [`TONE_HZ`] to tell apart in a
/// short window, well inside AAC's passband at any bitrate.
pub const BEEP_HZ: u32 = 1000;
/// Peak level of the beep.
pub const BEEP_DBFS: f64 = -6.0;
/// Beep length. 100 ms is ~4.7 AAC frames: long enough to survive the codec's
/// pre-echo and the encoder delay and to be found by envelope detection,
/// short enough that its onset is sharp. At 48 kHz it is 44 periods of 440 Hz
/// and 100 of 1 kHz, so both signals cross zero where the beep starts and ends
/// (no clicks).
pub const BEEP_MS: u32 = 100;
/// Lowest accepted sample rate (still above twice [`BEEP_HZ`]).
pub const MIN_SAMPLE_RATE: u32 = 8000;
/// Highest accepted sample rate; bounds the wave tables (at most one entry per sample of a second).
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Highest accepted channel count.
pub const MAX_CHANNELS: u16 = 8;

/// A [`TONE_HZ`] sine at [`TONE_DBFS`], replaced by a [`BEEP_HZ`] sine at
/// [`BEEP_DBFS`] for [`BEEP_MS`] starting at each whole second of source time:
/// sample `n` is beep exactly when `n % sample_rate < sample_rate * BEEP_MS / 1000`,
/// so the beep's first sample has pts `k` seconds, the pts of the flash frame.
/// Every channel carries the same signal.
///
/// Blocks are [`AUDIO_BLOCK_FRAMES`] long; block `b` starts at sample
/// `n = b * 1024` with `pts_us = start_offset + n * 1_000_000 / sample_rate`.
#[derive(Clone, Debug)]
pub struct Tone {
    format: AudioFormat,
    /// One exact period of the tone: `table[k] = A sin(2 pi k f / rate)`.
    tone: Vec<i16>,
    /// One exact period of the beep, starting at phase 0.
    beep: Vec<i16>,
    /// Beep length in samples.
    beep_len: u64,
    start_offset_us: u64,
    next_block: u64,
}

impl Tone {
    /// A tone at `sample_rate` with `channels` channels. Values outside
    /// [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and 1..=[`MAX_CHANNELS`] are
    /// clamped into range; the blocks carry the format actually used. Use
    /// [`Tone::try_new`] to have them rejected instead.
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        Self::build(clamp_format(sample_rate, channels))
    }

    /// As [`Tone::new`], but an out-of-range rate or channel count is a
    /// [`CaptureError::Format`].
    pub fn try_new(sample_rate: u32, channels: u16) -> Result<Self, CaptureError> {
        Ok(Self::build(check_format(sample_rate, channels)?))
    }

    fn build(format: AudioFormat) -> Self {
        let rate = format.sample_rate;
        Tone {
            format,
            tone: sine_period(TONE_HZ, rate, TONE_DBFS),
            beep: sine_period(BEEP_HZ, rate, BEEP_DBFS),
            beep_len: u64::from(rate) * u64::from(BEEP_MS) / 1000,
            start_offset_us: 0,
            next_block: 0,
        }
    }

    /// Shifts every timestamp by `offset_us`; the beeps stay on whole seconds
    /// of source time, like the test pattern's flashes with the same offset.
    pub fn with_start_offset(mut self, offset_us: u64) -> Self {
        self.start_offset_us = offset_us;
        self
    }

    /// Whether sample frame `n` (counted from the start of the source) belongs to a beep.
    pub fn is_beep(&self, n: u64) -> bool {
        n % u64::from(self.format.sample_rate) < self.beep_len
    }

    /// The value of sample frame `n` (the same on every channel).
    pub fn sample(&self, n: u64) -> i16 {
        let into_second = n % u64::from(self.format.sample_rate);
        let (table, phase) = if into_second < self.beep_len {
            (&self.beep, into_second)
        } else {
            (&self.tone, n)
        };
        // Tables are never empty (see sine_period), so the index is in range.
        table.get((phase % table.len() as u64) as usize).copied().unwrap_or(0)
    }

    /// Presentation time of sample frame `n`, microseconds on the media clock.
    pub fn pts_us_of_sample(&self, n: u64) -> u64 {
        self.start_offset_us.saturating_add(self.format.pts_us_of_sample(n))
    }

    /// Block `index` (samples `index * 1024 .. (index + 1) * 1024`). Pure.
    pub fn block(&self, index: u64) -> AudioFrame {
        let first = index.saturating_mul(AUDIO_BLOCK_FRAMES as u64);
        let channels = usize::from(self.format.channels);
        let mut samples = Vec::with_capacity(AUDIO_BLOCK_FRAMES * channels);
        for j in 0..AUDIO_BLOCK_FRAMES as u64 {
            let v = self.sample(first.saturating_add(j));
            samples.extend(std::iter::repeat_n(v, channels));
        }
        AudioFrame {
            sample_rate: self.format.sample_rate,
            channels: self.format.channels,
            samples,
            pts_us: self.pts_us_of_sample(first),
        }
    }
}

impl AudioSource for Tone {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn is_live(&self) -> bool {
        false
    }

    /// Block after block, without end.
    fn next_block(&mut self) -> Result<Option<AudioFrame>, CaptureError> {
        let block = self.block(self.next_block);
        self.next_block = self.next_block.saturating_add(1);
        Ok(Some(block))
    }
}

/// Digital silence in [`AUDIO_BLOCK_FRAMES`] blocks, timestamped like [`Tone`].
#[derive(Clone, Debug)]
pub struct Silence {
    format: AudioFormat,
    start_offset_us: u64,
    next_block: u64,
}

impl Silence {
    /// Silence at `sample_rate` with `channels` channels, clamped into range like [`Tone::new`].
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        Silence {
            format: clamp_format(sample_rate, channels),
            start_offset_us: 0,
            next_block: 0,
        }
    }

    /// As [`Silence::new`], but an out-of-range format is a [`CaptureError::Format`].
    pub fn try_new(sample_rate: u32, channels: u16) -> Result<Self, CaptureError> {
        Ok(Silence {
            format: check_format(sample_rate, channels)?,
            start_offset_us: 0,
            next_block: 0,
        })
    }

    /// Shifts every timestamp by `offset_us`.
    pub fn with_start_offset(mut self, offset_us: u64) -> Self {
        self.start_offset_us = offset_us;
        self
    }

    /// Block `index` (all zeros). Pure.
    pub fn block(&self, index: u64) -> AudioFrame {
        let first = index.saturating_mul(AUDIO_BLOCK_FRAMES as u64);
        AudioFrame {
            sample_rate: self.format.sample_rate,
            channels: self.format.channels,
            samples: vec![0; AUDIO_BLOCK_FRAMES * usize::from(self.format.channels)],
            pts_us: self.start_offset_us.saturating_add(self.format.pts_us_of_sample(first)),
        }
    }
}

impl AudioSource for Silence {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn is_live(&self) -> bool {
        false
    }

    /// Block after block, without end.
    fn next_block(&mut self) -> Result<Option<AudioFrame>, CaptureError> {
        let block = self.block(self.next_block);
        self.next_block = self.next_block.saturating_add(1);
        Ok(Some(block))
    }
}

fn clamp_format(sample_rate: u32, channels: u16) -> AudioFormat {
    AudioFormat {
        sample_rate: sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        channels: channels.clamp(1, MAX_CHANNELS),
    }
}

fn check_format(sample_rate: u32, channels: u16) -> Result<AudioFormat, CaptureError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) || !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(CaptureError::Format(format!(
            "synthetic audio {sample_rate} Hz x {channels} channels: need {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz \
             and 1..={MAX_CHANNELS} channels"
        )));
    }
    Ok(AudioFormat { sample_rate, channels })
}

/// One exact period of an integer-frequency sine: `rate / gcd(hz, rate)`
/// samples, after which the waveform repeats bit for bit. Indexing it by
/// `n % len` gives a phase that is exact at any `n`, where an accumulated
/// floating-point phase would drift over hours. Never empty.
fn sine_period(hz: u32, rate: u32, dbfs: f64) -> Vec<i16> {
    let len = rate / gcd(hz, rate).max(1);
    let amplitude = f64::from(i16::MAX) * 10f64.powf(dbfs / 20.0);
    (0..u64::from(len.max(1)))
        .map(|k| {
            // Reduce k * hz modulo rate in integers so the angle stays in [0, 2 pi).
            let turns = (k * u64::from(hz) % u64::from(rate.max(1))) as f64 / f64::from(rate.max(1));
            (amplitude * (std::f64::consts::TAU * turns).sin()).round() as i16
        })
        .collect()
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `hz` in `x` (Goertzel), normalised by the window length.
    fn power_at(x: &[i16], hz: f64, rate: f64) -> f64 {
        let w = std::f64::consts::TAU * hz / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.len() as f64).powi(2)
    }

    fn left_channel(blocks: &[AudioFrame]) -> Vec<i16> {
        blocks
            .iter()
            .flat_map(|b| b.samples.chunks(b.channels as usize).map(|c| c[0]))
            .collect()
    }

    #[test]
    fn blocks_are_aac_frames_with_count_based_pts() {
        let mut src = Tone::new(48_000, 2);
        let mut expected_first = 0u64;
        let mut last_pts = None;
        for _ in 0..200 {
            let b = src.next_block().unwrap().unwrap();
            assert_eq!((b.sample_rate, b.channels, b.frames()), (48_000, 2, AUDIO_BLOCK_FRAMES));
            assert_eq!(b.pts_us, expected_first * 1_000_000 / 48_000);
            if let Some(prev) = last_pts {
                assert!(matches!(b.pts_us - prev, 21_333 | 21_334), "step {}", b.pts_us - prev);
            }
            last_pts = Some(b.pts_us);
            expected_first += AUDIO_BLOCK_FRAMES as u64;
        }
        // 375 blocks are exactly 8 seconds: no drift.
        assert_eq!(src.block(375).pts_us, 8_000_000);
        assert_eq!(src.clone().with_start_offset(500).block(375).pts_us, 8_000_500);
    }

    #[test]
    fn tone_is_phase_continuous_across_blocks() {
        let t = Tone::new(48_000, 2);
        let blocks: Vec<AudioFrame> = (0..100).map(|b| t.block(b)).collect();
        let joined = left_channel(&blocks);
        for (n, v) in joined.iter().enumerate() {
            assert_eq!(*v, t.sample(n as u64), "sample {n}");
        }
        // Both channels identical; the signal is the ideal sine to within rounding.
        assert!(blocks.iter().all(|b| b.samples.chunks(2).all(|c| c[0] == c[1])));
        let amp = f64::from(i16::MAX) * 10f64.powf(TONE_DBFS / 20.0);
        for n in 6000..48_000u64 {
            let ideal = amp * (std::f64::consts::TAU * 440.0 * n as f64 / 48_000.0).sin();
            assert!((f64::from(t.sample(n)) - ideal).abs() <= 0.5 + 1e-6, "sample {n}");
        }
        // Far into a broadcast the phase is still exact (no accumulated error).
        let n = 48_000 * 3600 * 10 + 12_345;
        assert_eq!(t.sample(n), t.sample(12_345));
    }

    #[test]
    fn beep_starts_exactly_on_each_second() {
        let t = Tone::new(48_000, 2);
        let beep_len = 48_000 * BEEP_MS as u64 / 1000;
        for k in 1..6u64 {
            let onset = 48_000 * k;
            assert!(!t.is_beep(onset - 1) && t.is_beep(onset));
            assert!(t.is_beep(onset + beep_len - 1) && !t.is_beep(onset + beep_len));
            // The first beep samples are the 1 kHz sine from phase 0, not the tone.
            let amp = f64::from(i16::MAX) * 10f64.powf(BEEP_DBFS / 20.0);
            for j in 0..48 {
                let ideal = amp * (std::f64::consts::TAU * j as f64 / 48.0).sin();
                assert_eq!(t.sample(onset + j), ideal.round() as i16);
            }
            // Energy: 1 kHz dominates just after the onset, 440 Hz just before.
            let window = 960; // 20 ms: 20 periods of 1 kHz, 8.8 of 440 Hz
            let after: Vec<i16> = (onset..onset + window).map(|n| t.sample(n)).collect();
            let before: Vec<i16> = (onset - window..onset).map(|n| t.sample(n)).collect();
            assert!(power_at(&after, 1000.0, 48_000.0) > 100.0 * power_at(&after, 440.0, 48_000.0));
            assert!(power_at(&before, 440.0, 48_000.0) > 100.0 * power_at(&before, 1000.0, 48_000.0));
        }
        // Second 0 beeps too, from the very first sample.
        assert!(t.is_beep(0));
    }

    #[test]
    fn beep_onset_pts_equals_the_whole_second() {
        let t = Tone::new(48_000, 2);
        for k in 0..10 {
            assert_eq!(t.pts_us_of_sample(48_000 * k), k * 1_000_000);
        }
        let t = Tone::new(44_100, 1);
        assert!(t.is_beep(44_100) && !t.is_beep(44_099));
        assert_eq!(t.pts_us_of_sample(44_100 * 7), 7_000_000);
    }

    #[test]
    fn transitions_are_click_free_at_48k() {
        let t = Tone::new(48_000, 2);
        let beep_len = 48_000 * BEEP_MS as u64 / 1000;
        // At both edges of the beep the signal is near a zero crossing:
        // no step larger than an ordinary step of the louder sine.
        let max_step = |n: u64| (i32::from(t.sample(n)) - i32::from(t.sample(n - 1))).abs();
        let beep_step = (0..48).map(|j| max_step(48_000 + j + 1)).max().unwrap();
        assert!(max_step(48_000) <= beep_step);
        assert!(max_step(48_000 + beep_len) <= beep_step);
    }

    #[test]
    fn silence_is_zeros_with_the_same_timing() {
        let mut s = Silence::new(48_000, 2);
        for b in 0..50u64 {
            let block = s.next_block().unwrap().unwrap();
            assert_eq!(block.frames(), AUDIO_BLOCK_FRAMES);
            assert_eq!(block.channels, 2);
            assert!(block.samples.iter().all(|&v| v == 0));
            assert_eq!(block.pts_us, Tone::new(48_000, 2).block(b).pts_us);
        }
        assert_eq!(Silence::new(48_000, 1).with_start_offset(7).block(0).pts_us, 7);
    }

    #[test]
    fn formats_are_clamped_or_rejected() {
        assert_eq!(
            Tone::new(0, 0).format(),
            AudioFormat {
                sample_rate: MIN_SAMPLE_RATE,
                channels: 1
            }
        );
        assert_eq!(
            Silence::new(u32::MAX, 99).format(),
            AudioFormat {
                sample_rate: MAX_SAMPLE_RATE,
                channels: 8
            }
        );
        assert!(matches!(Tone::try_new(0, 2), Err(CaptureError::Format(_))));
        assert!(matches!(Silence::try_new(48_000, 0), Err(CaptureError::Format(_))));
        assert!(Tone::try_new(44_100, 2).is_ok());
        // An odd rate still yields a working tone without panicking.
        let t = Tone::new(44_101, 1);
        assert_eq!(t.block(3).frames(), AUDIO_BLOCK_FRAMES);
        assert_eq!(Tone::new(48_000, 2).block(u64::MAX).frames(), AUDIO_BLOCK_FRAMES);
    }

    #[test]
    fn wave_tables_are_one_exact_period() {
        assert_eq!(sine_period(440, 48_000, -20.0).len(), 1200);
        assert_eq!(sine_period(1000, 48_000, -6.0).len(), 48);
        assert_eq!(sine_period(440, 44_100, -20.0).len(), 2205);
        let peak = sine_period(1000, 48_000, -6.0)
            .iter()
            .map(|v| v.unsigned_abs())
            .max()
            .unwrap();
        assert_eq!(peak, 16_422); // 32767 * 10^(-6/20), rounded
    }

    proptest::proptest! {
        #[test]
        fn block_pts_match_sample_count(b in 0u64..10_000_000, rate in MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE) {
            let t = Tone::new(rate, 2);
            let n = b * AUDIO_BLOCK_FRAMES as u64;
            proptest::prop_assert_eq!(t.block(b).pts_us, (u128::from(n) * 1_000_000 / u128::from(rate)) as u64);
        }
    }
}
