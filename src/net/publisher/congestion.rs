//! Congestion control and reconnection pacing of one destination: pure,
//! time and measurements are arguments.

use std::time::{Duration, Instant};

/// Shortest and longest wait between reconnection attempts.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// See [`BACKOFF_MIN`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Congestion control of one destination: a video bitrate limit that
/// follows its queue. Sustained backlog (over [`Congestion::HIGH_MS`] for a
/// second), or video dropped from the queue at all, cuts the limit, at most
/// every two seconds, to 70 % of what it was
/// or to what the path measurably carried (85 % of the drain rate, less the
/// audio), whichever is lower, down to [`Congestion::MIN_KBPS`]; a clear
/// queue (under [`Congestion::LOW_MS`] for four seconds) raises it by 25 %,
/// up to the target. Pure: time and measurements are arguments.
#[derive(Debug, Clone)]
pub struct Congestion {
    target: u32,
    audio_kbps: u32,
    limit: u32,
    high_since: Option<Instant>,
    low_since: Option<Instant>,
    last_change: Option<Instant>,
}

impl Congestion {
    /// Queue depth that counts as backlog, ms of media.
    pub const HIGH_MS: u32 = 1000;
    /// Queue depth that counts as clear.
    pub const LOW_MS: u32 = 250;
    /// Lowest video bitrate it asks for.
    pub const MIN_KBPS: u32 = 300;

    /// Starts at the broadcast's target video bitrate.
    pub fn new(target_kbps: u32, audio_kbps: u32) -> Self {
        Congestion { target: target_kbps, audio_kbps, limit: target_kbps, high_since: None, low_since: None, last_change: None }
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Feeds a sample: the queue's depth, whether video was dropped since
    /// the last sample, and, when known, the rate the queue drained at lately
    /// (kbit/s of media). Returns the new limit when it changed.
    pub fn sample(&mut self, queue_ms: u32, dropped: bool, drained_kbps: Option<u32>, now: Instant) -> Option<u32> {
        let since = |t: &Option<Instant>| t.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let since_change = self.last_change.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if queue_ms > Self::HIGH_MS || dropped {
            self.low_since = None;
            self.high_since.get_or_insert(now);
            // Drops are proof enough; a deep queue must last a second.
            let persistent = dropped || since(&self.high_since) >= Duration::from_secs(1);
            if persistent && since_change >= Duration::from_secs(2) && self.limit > Self::MIN_KBPS {
                let mut next = self.limit * 7 / 10;
                // A path that still carries something tells its capacity; one
                // that carries nothing (a stall) says nothing about it.
                if let Some(drained) = drained_kbps.filter(|&d| d > self.audio_kbps + Self::MIN_KBPS) {
                    next = next.min((drained * 85 / 100).saturating_sub(self.audio_kbps));
                }
                self.limit = next.max(Self::MIN_KBPS);
                self.last_change = Some(now);
                return Some(self.limit);
            }
        } else if queue_ms < Self::LOW_MS {
            self.high_since = None;
            self.low_since.get_or_insert(now);
            if since(&self.low_since) >= Duration::from_secs(4) && since_change >= Duration::from_secs(4) && self.limit < self.target {
                self.limit = (self.limit * 5 / 4).min(self.target);
                self.last_change = Some(now);
                return Some(self.limit);
            }
        } else {
            self.high_since = None;
            self.low_since = None;
        }
        None
    }
}

/// The drain rate of a queue over the last couple of seconds.
#[derive(Default)]
pub(super) struct DrainMeter {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl DrainMeter {
    const WINDOW: Duration = Duration::from_secs(2);

    /// Notes the total bytes delivered so far; returns kbit/s over the window once it spans one.
    pub(super) fn sample(&mut self, now: Instant, total_bytes: u64) -> Option<u32> {
        self.samples.push_back((now, total_bytes));
        while self.samples.len() > 2 && self.samples.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= Self::WINDOW) {
            self.samples.pop_front();
        }
        let (t0, b0) = *self.samples.front()?;
        let span = now.duration_since(t0);
        (span >= Self::WINDOW).then(|| ((total_bytes - b0) as f64 * 8.0 / 1000.0 / span.as_secs_f64()) as u32)
    }
}

/// The delay before reconnection attempt, after an outage of `outage` so
/// far: 10 % of it, within [`BACKOFF_MIN`]..=[`BACKOFF_MAX`], jittered ±20 %.
/// Each wait grows the outage, so successive delays grow geometrically
/// (×1.1) from 1 s towards 30 s; a 20-second outage still sees an attempt
/// every ~2 s, an hour-long one every 30 s.
pub fn backoff(outage: Duration, jitter: f64) -> Duration {
    let base = outage.mul_f64(0.1).clamp(BACKOFF_MIN, BACKOFF_MAX);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}
