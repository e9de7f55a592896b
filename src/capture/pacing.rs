//! Pacing non-live sources to the wall clock.
//!
//! A camera delivers frames in real time by itself; the test pattern, the
//! tone and file sources produce as fast as they are asked. A live broadcast
//! must not send a minute of media in a second (ingests drop or throttle such
//! a publisher), so the pipeline sleeps until each frame is due. The `Pacer`
//! only answers "how long until this pts is due"; it never sleeps or reads the
//! clock itself, so it is testable with made-up instants.

use crate::media::MediaClock;
use std::time::{Duration, Instant};

/// Decides when a timestamped frame or block is due on the wall clock.
///
/// With `fast` (`tally stream --fast`, tests, file transcodes) nothing is ever
/// due later than now: sources run as fast as the outputs accept, and back
/// pressure rather than time paces the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    clock: MediaClock,
    fast: bool,
}

impl Pacer {
    /// A pacer following `clock`; `fast` disables waiting altogether.
    pub fn new(clock: MediaClock, fast: bool) -> Self {
        Pacer { clock, fast }
    }

    /// The clock whose origin is media time zero.
    pub fn clock(&self) -> MediaClock {
        self.clock
    }

    /// Whether this pacer never waits.
    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// How long to wait at `now` before media time `pts_us` is due: zero if it
    /// is already due (or late) and always zero when fast. A pts too far in
    /// the future for the platform's `Instant` gives `Duration::MAX`.
    pub fn delay_until_due(&self, pts_us: u64, now: Instant) -> Duration {
        if self.fast {
            return Duration::ZERO;
        }
        match self.clock.origin().checked_add(Duration::from_micros(pts_us)) {
            Some(due) => due.saturating_duration_since(now),
            None => Duration::MAX,
        }
    }

    /// How far behind schedule media time `pts_us` is at `now`: zero if it is
    /// not yet due. Independent of `fast`; a live source whose lateness keeps
    /// growing cannot keep up with real time, which the pipeline reports
    /// rather than letting latency build up.
    pub fn lateness(&self, pts_us: u64, now: Instant) -> Duration {
        match self.clock.origin().checked_add(Duration::from_micros(pts_us)) {
            Some(due) => now.saturating_duration_since(due),
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_pts_is_due() {
        let origin = Instant::now();
        let pacer = Pacer::new(MediaClock::with_origin(origin), false);
        assert_eq!(pacer.delay_until_due(1_000_000, origin), Duration::from_secs(1));
        assert_eq!(
            pacer.delay_until_due(1_000_000, origin + Duration::from_millis(400)),
            Duration::from_millis(600)
        );
        assert_eq!(
            pacer.delay_until_due(1_000_000, origin + Duration::from_secs(2)),
            Duration::ZERO
        );
        assert_eq!(pacer.delay_until_due(0, origin), Duration::ZERO);
        assert_eq!(
            pacer.lateness(1_000_000, origin + Duration::from_millis(1250)),
            Duration::from_millis(250)
        );
        assert_eq!(pacer.lateness(1_000_000, origin), Duration::ZERO);
        assert!(!pacer.is_fast());
    }

    #[test]
    fn fast_never_waits() {
        let origin = Instant::now();
        let pacer = Pacer::new(MediaClock::with_origin(origin), true);
        assert!(pacer.is_fast());
        for pts in [0, 1, 1_000_000, 3_600_000_000, u64::MAX] {
            assert_eq!(pacer.delay_until_due(pts, origin), Duration::ZERO);
        }
    }

    #[test]
    fn huge_pts_does_not_panic() {
        let origin = Instant::now();
        let pacer = Pacer::new(MediaClock::with_origin(origin), false);
        let d = pacer.delay_until_due(u64::MAX, origin);
        assert!(d >= Duration::from_secs(1_000_000));
        let _ = pacer.lateness(u64::MAX, origin);
        assert_eq!(pacer.clock().origin(), origin);
    }
}
