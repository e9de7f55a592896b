//! The broadcast clock.

use std::time::{Duration, Instant};

/// The one clock of a broadcast: time zero is go-live.
///
/// Audio timestamps are derived from sample counts and video timestamps from
/// capture instants, both expressed on this clock, so the two never drift
/// apart through rounding. A clock can be "free-running" (`--fast`): then it
/// does not follow the wall clock at all and sources timestamp by count.
#[derive(Clone, Copy, Debug)]
pub struct MediaClock {
    origin: Instant,
}

impl MediaClock {
    /// Starts a clock whose zero is now.
    pub fn start() -> Self {
        MediaClock { origin: Instant::now() }
    }

    /// Starts a clock whose zero is `origin`.
    pub fn with_origin(origin: Instant) -> Self {
        MediaClock { origin }
    }

    /// The instant of media time zero.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Media time elapsed since the origin.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Media time in microseconds of an instant (0 for instants before the origin).
    pub fn micros_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// The wall-clock instant at which media time `us` falls due.
    pub fn instant_of(&self, us: u64) -> Instant {
        self.origin + Duration::from_micros(us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_round_trips() {
        let c = MediaClock::start();
        let at = c.instant_of(1_500_000);
        assert_eq!(c.micros_at(at), 1_500_000);
        assert_eq!(c.micros_at(c.origin() - Duration::from_secs(1)), 0);
    }
}
