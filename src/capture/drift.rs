//! Keeping a device's audio on the broadcast clock.
//!
//! A microphone's sample clock is its own crystal, not the computer's: a
//! "48 kHz" device really runs at 48 000 × (1 ± a few hundred ppm) Hz. Audio
//! timestamps come from the sample count (so they never jitter), video
//! timestamps from capture time on the system clock, so without correction
//! the two drift apart by up to a second an hour.
//!
//! [`DriftCorrector`] compares, for the next sample to be emitted, the
//! timestamp the count gives it with the time it was captured, and returns
//! a resampling ratio that steers the difference back to zero: a PI
//! controller on a smoothed error (slow, so a noisy callback clock cannot
//! make the pitch wobble), clamped to ±[`MAX_CORRECTION`]. Errors larger than
//! [`HARD_CORRECTION_US`] — a device stall, a suspend, a device that delivers
//! far faster or slower than it claims — are fixed at once by dropping input
//! or inserting silence, and counted. Pure arithmetic: time comes in as
//! arguments, so hours of drift are simulated in a unit test.
//!
//! The capture times themselves come from the device callbacks' clock
//! readings, and a callback can only ever run *late* (the scheduler, a busy
//! machine), never early. [`CaptureFloor`] therefore takes, over the last
//! second of callbacks, the one that says its audio was captured earliest
//! relative to the sample count: one late callback — tens of ms on a loaded
//! two-core machine — no longer looks like a clock jump and costs no
//! inserted silence or dropped audio.

use std::collections::VecDeque;

/// Largest ratio correction the controller applies (±0.5 %: inaudible, and
/// 25× the drift of any working audio interface).
pub const MAX_CORRECTION: f64 = 0.005;

/// An error beyond this is corrected at once (drop or insert) instead of
/// by resampling: a third of the one-video-frame budget at 30 fps.
pub const HARD_CORRECTION_US: i64 = 12_000;

/// Time constant of the error smoothing, µs.
const SMOOTHING_US: f64 = 2_000_000.0;

/// Loop natural frequency, rad/s: corrections settle over about a minute.
const OMEGA: f64 = 2.0 * std::f64::consts::PI / 60.0;
/// Damping ratio (critically damped, a little under).
const ZETA: f64 = 0.8;

/// What to do before resampling the next input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Correction {
    /// Resample at this ratio relative to nominal.
    Ratio(f64),
    /// Audio is late by this many µs: drop this many input frames first.
    DropInput(u64),
    /// Audio is early: insert this many output frames of silence first.
    InsertSilence(u64),
}

/// The steering of one audio device onto the broadcast clock.
#[derive(Debug, Clone)]
pub struct DriftCorrector {
    in_rate: f64,
    out_rate: f64,
    smoothed_us: Option<f64>,
    integral: f64,
    last_at_us: Option<i64>,
    ratio: f64,
    /// Frames dropped / inserted by hard corrections so far.
    pub dropped_frames: u64,
    /// See [`DriftCorrector::dropped_frames`].
    pub inserted_frames: u64,
}

impl DriftCorrector {
    /// A corrector for a device at `in_rate` feeding output at `out_rate`.
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        DriftCorrector {
            in_rate: f64::from(in_rate.max(1)),
            out_rate: f64::from(out_rate.max(1)),
            smoothed_us: None,
            integral: 0.0,
            last_at_us: None,
            ratio: 1.0,
            dropped_frames: 0,
            inserted_frames: 0,
        }
    }

    /// The ratio correction currently applied (1.0 = none).
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The smoothed error, µs (positive: audio timestamps later than capture).
    pub fn error_us(&self) -> f64 {
        self.smoothed_us.unwrap_or(0.0)
    }

    /// Decides the next correction.
    ///
    /// - `next_pts_us`: the timestamp the next output frame will carry.
    /// - `next_capture_us`: when the next input frame (the first not yet
    ///   resampled) was captured, on the same clock.
    /// - `now_us`: the current time, for the controller's time step.
    pub fn update(&mut self, next_pts_us: i64, next_capture_us: i64, now_us: i64) -> Correction {
        let error = next_pts_us - next_capture_us;
        if error > HARD_CORRECTION_US {
            let frames = (error as f64 * self.in_rate / 1e6).round() as u64;
            self.dropped_frames += frames;
            self.reset_filter();
            return Correction::DropInput(frames.max(1));
        }
        if error < -HARD_CORRECTION_US {
            let frames = ((-error) as f64 * self.out_rate / 1e6).round() as u64;
            self.inserted_frames += frames;
            self.reset_filter();
            return Correction::InsertSilence(frames.max(1));
        }
        let dt = match self.last_at_us {
            Some(last) => ((now_us - last).max(0) as f64).min(1e6),
            None => 0.0,
        };
        self.last_at_us = Some(now_us);
        let smoothed = match self.smoothed_us {
            None => error as f64,
            Some(s) => s + (error as f64 - s) * (dt / SMOOTHING_US).min(1.0),
        };
        self.smoothed_us = Some(smoothed);
        let e = smoothed / 1e6; // seconds
        let ki = OMEGA * OMEGA;
        let kp = 2.0 * ZETA * OMEGA;
        let u_unclamped = kp * e + ki * (self.integral + e * dt / 1e6);
        // Anti-windup: integrate only while the output is not saturated.
        if u_unclamped.abs() < MAX_CORRECTION {
            self.integral += e * dt / 1e6;
        }
        let u = (kp * e + ki * self.integral).clamp(-MAX_CORRECTION, MAX_CORRECTION);
        // Positive error: audio stamped late: produce fewer frames per input.
        self.ratio = 1.0 - u;
        Correction::Ratio(self.ratio)
    }

    fn reset_filter(&mut self) {
        self.smoothed_us = None;
        self.last_at_us = None;
    }
}

/// How far back [`CaptureFloor`] looks for the earliest callback, µs: far
/// longer than any scheduling delay, short enough that a real jump (audio
/// lost in an overrun) is corrected within a second.
pub const FLOOR_WINDOW_US: i64 = 1_000_000;

/// Records [`CaptureFloor`] keeps at most (a callback every 10 ms fills a
/// second with 100; a device with tiny periods only shortens the window).
const FLOOR_RECORDS: usize = 512;

/// The capture time of a device's frames, from its callbacks' clock
/// readings with their scheduling delays filtered out: the sliding minimum,
/// over [`FLOOR_WINDOW_US`], of each reading's offset from the time its
/// frame index implies.
#[derive(Debug, Clone)]
pub struct CaptureFloor {
    rate: i64,
    /// (capture µs, offset µs) of recent readings, oldest first, offsets
    /// increasing (a monotonic deque: the front is the minimum).
    recent: VecDeque<(i64, i64)>,
}

impl CaptureFloor {
    /// A floor for a device at `rate` frames per second.
    pub fn new(rate: u32) -> Self {
        CaptureFloor { rate: i64::from(rate.max(1)), recent: VecDeque::with_capacity(FLOOR_RECORDS) }
    }

    fn frame_us(&self, frame: u64) -> i64 {
        (i128::from(frame) * 1_000_000 / i128::from(self.rate)) as i64
    }

    /// Notes a callback's reading: frame `frame` was captured at `capture_us`.
    pub fn record(&mut self, frame: u64, capture_us: i64) {
        let offset = capture_us - self.frame_us(frame);
        while self.recent.back().is_some_and(|&(_, o)| o >= offset) {
            self.recent.pop_back();
        }
        self.recent.push_back((capture_us, offset));
        while self.recent.len() > FLOOR_RECORDS || self.recent.front().is_some_and(|&(t, _)| capture_us - t > FLOOR_WINDOW_US) {
            self.recent.pop_front();
        }
    }

    /// When frame `frame` was captured; `None` before any reading.
    pub fn capture_us(&self, frame: u64) -> Option<i64> {
        self.recent.front().map(|&(_, offset)| offset + self.frame_us(frame))
    }

    /// Forgets every reading (after a stall the device runs on a new footing).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_callbacks_do_not_move_the_capture_time() {
        let mut f = CaptureFloor::new(48_000);
        assert_eq!(f.capture_us(0), None);
        // Callbacks every 10 ms (480 frames), most 1 ms late, one 40 ms late.
        for i in 0..300u64 {
            let late = if i == 150 { 40_000 } else { 1_000 };
            f.record(i * 480, (i * 10_000) as i64 + late);
            assert_eq!(f.capture_us(i * 480), Some((i * 10_000) as i64 + 1_000), "callback {i}");
        }
        // A burst (three callbacks read at once) is judged by its last one.
        f.record(300 * 480, 3_000_000 + 21_000);
        f.record(301 * 480, 3_010_000 + 11_000);
        f.record(302 * 480, 3_020_000 + 1_000);
        assert_eq!(f.capture_us(302 * 480), Some(3_021_000));
    }

    #[test]
    fn a_real_jump_is_followed_within_the_window_and_a_clear_at_once() {
        let mut f = CaptureFloor::new(48_000);
        for i in 0..100u64 {
            f.record(i * 480, (i * 10_000) as i64);
        }
        // 50 ms of audio lost: later frames were captured 50 ms later than their index says.
        let mut followed_at = None;
        for i in 100..250u64 {
            f.record(i * 480, (i * 10_000) as i64 + 50_000);
            if followed_at.is_none() && f.capture_us(i * 480) == Some((i * 10_000) as i64 + 50_000) {
                followed_at = Some(i);
            }
        }
        let at = followed_at.expect("the floor never followed the jump");
        assert!((100..=201).contains(&at), "followed after {} callbacks", at - 100);
        f.clear();
        assert_eq!(f.capture_us(0), None);
        f.record(480, 70_000);
        assert_eq!(f.capture_us(480), Some(70_000));
    }

    #[test]
    fn the_floor_is_bounded() {
        let mut f = CaptureFloor::new(48_000);
        // Offsets that only grow (a slow device) are all kept, up to the bound.
        for i in 0..10_000u64 {
            f.record(i, (i * 21) as i64);
        }
        assert!(f.recent.len() <= FLOOR_RECORDS);
    }

    /// Simulates a device whose true rate is `ppm` off its nominal 48 kHz,
    /// delivering `period` frames per callback with `jitter_us` of callback
    /// timing noise, for `hours`; returns the largest |pts - capture| error
    /// (µs) seen after the first `settle_s` seconds, and the corrector.
    fn simulate(ppm: f64, period: u64, jitter_us: i64, hours: f64, settle_s: f64) -> (i64, DriftCorrector) {
        let nominal = 48_000.0;
        let true_rate = nominal * (1.0 + ppm * 1e-6);
        let mut c = DriftCorrector::new(48_000, 48_000);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut in_frames = 0u64; // input consumed
        let mut out_frames = 0f64; // output produced (fractional: the resampler's view)
        let mut worst = 0i64;
        let total_periods = (hours * 3600.0 * true_rate / period as f64) as u64;
        for _ in 0..total_periods {
            // The worker reads a batch; the stamp gives its first frame's
            // capture time, off by the callback's scheduling noise.
            let batch_first = in_frames;
            let jitter = rng.i64(0..=jitter_us);
            let seen_capture = (batch_first as f64 / true_rate * 1e6) as i64 + jitter;
            let now = ((batch_first + period) as f64 / true_rate * 1e6) as i64 + jitter;
            let pts = (out_frames / nominal * 1e6) as i64;
            let mut ratio = c.ratio();
            match c.update(pts, seen_capture, now) {
                Correction::Ratio(r) => ratio = r,
                Correction::DropInput(n) => in_frames += n,
                Correction::InsertSilence(n) => out_frames += n as f64,
            }
            in_frames += period;
            out_frames += period as f64 * ratio;
            let t = now as f64 / 1e6;
            if t > settle_s {
                // The truth: the next output frame's pts against the next input frame's real capture time.
                let truth = (out_frames / nominal * 1e6) as i64 - (in_frames as f64 / true_rate * 1e6) as i64;
                worst = worst.max(truth.abs());
            }
        }
        (worst, c)
    }

    #[test]
    fn a_fast_device_stays_within_a_few_ms_for_three_hours() {
        let (worst, c) = simulate(300.0, 480, 3_000, 3.0, 120.0);
        assert!(worst < 8_000, "worst offset {worst} µs after settling");
        assert!((c.ratio() - (1.0 - 300e-6)).abs() < 60e-6, "ratio {} should cancel +300 ppm", c.ratio());
        assert_eq!(c.dropped_frames + c.inserted_frames, 0, "no hard corrections for a working device");
    }

    #[test]
    fn a_slow_device_too() {
        let (worst, c) = simulate(-450.0, 1024, 5_000, 2.0, 120.0);
        assert!(worst < 10_000, "worst offset {worst} µs");
        assert!((c.ratio() - (1.0 + 450e-6)).abs() < 80e-6, "ratio {}", c.ratio());
    }

    #[test]
    fn never_more_than_a_video_frame_even_while_settling() {
        let (worst, _) = simulate(1000.0, 480, 2_000, 0.5, 0.0);
        assert!(worst < 33_333, "worst offset {worst} µs");
    }

    #[test]
    fn big_errors_are_fixed_at_once_and_counted() {
        let mut c = DriftCorrector::new(44_100, 48_000);
        // Audio stamped 100 ms late (device delivered a burst): drop input.
        assert_eq!(c.update(100_000, 0, 0), Correction::DropInput(4410));
        // Audio 50 ms early (the device stalled): insert silence at the output rate.
        assert_eq!(c.update(0, 50_000, 10), Correction::InsertSilence(2400));
        assert_eq!((c.dropped_frames, c.inserted_frames), (4410, 2400));
        // Small errors only steer.
        assert!(matches!(c.update(1_000, 0, 20), Correction::Ratio(r) if r < 1.0));
    }
}
