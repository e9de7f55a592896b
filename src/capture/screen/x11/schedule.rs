//! When to grab: at the rate the scene needs, never faster.
//!
//! Frame `n` is due at `origin + n / fps` (exact, from the count, so the
//! slots never drift). A grab that comes late inside its slot goes ahead at
//! once; one that comes a whole slot or more late gives up the slots it
//! missed and takes the one it is in, so a stall (the server busy, the
//! machine loaded) costs frames, never a burst of grabs to catch up.

use crate::capture::FrameRate;
use std::time::{Duration, Instant};

/// The grab slots of one capture.
#[derive(Clone, Debug)]
pub(super) struct Schedule {
    origin: Instant,
    rate: FrameRate,
    /// The next slot not yet taken.
    next: u64,
}

/// What the schedule says about the next grab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    /// When to grab (now or later).
    pub at: Instant,
    /// Slots given up since the last grab because it came too late.
    pub skipped: u64,
}

impl Schedule {
    /// Slots from `origin` on at `rate` (num > 0).
    pub(super) fn new(origin: Instant, rate: FrameRate) -> Schedule {
        Schedule { origin, rate, next: 0 }
    }

    /// Counts slots from a new origin (the broadcast's clock), starting with
    /// the slot `now` falls in.
    pub(super) fn restart(&mut self, origin: Instant, now: Instant) {
        self.origin = origin;
        self.next = self.slot_at(now);
    }

    fn due(&self, n: u64) -> Instant {
        self.origin + Duration::from_micros(self.rate.pts_us_of_frame(n))
    }

    /// The slot `at` falls in (0 before the origin).
    fn slot_at(&self, at: Instant) -> u64 {
        let us = at.saturating_duration_since(self.origin).as_micros();
        let (num, den) = (u128::from(self.rate.num), u128::from(self.rate.den));
        if num == 0 {
            return 0;
        }
        let mut n = u64::try_from(us * num / (1_000_000 * den)).unwrap_or(u64::MAX / 2);
        // pts_us_of_frame rounds to the nearest microsecond: settle on the
        // slot whose due time is at or before `at`.
        while n > 0 && self.due(n) > at {
            n -= 1;
        }
        while self.due(n + 1) <= at {
            n += 1;
        }
        n
    }

    /// Takes the next slot given that it is `now`: when to grab, and how many
    /// slots were given up.
    pub(super) fn take(&mut self, now: Instant) -> Slot {
        let due = self.due(self.next);
        if now < self.due(self.next + 1) {
            self.next += 1;
            return Slot { at: due.max(now), skipped: 0 };
        }
        let current = self.slot_at(now);
        let skipped = current - self.next;
        self.next = current + 1;
        Slot { at: now, skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn on_time_grabs_wait_for_their_slot() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, FrameRate::per_second(30));
        assert_eq!(s.take(t0), Slot { at: t0, skipped: 0 });
        // Asked again at once: the next slot, 33.333 ms on, not now.
        assert_eq!(s.take(t0 + MS), Slot { at: t0 + Duration::from_micros(33_333), skipped: 0 });
        assert_eq!(s.take(t0 + 2 * MS), Slot { at: t0 + Duration::from_micros(66_667), skipped: 0 });
        // Slot 30 is exactly one second on: no drift from the count.
        let mut s = Schedule::new(t0, FrameRate::per_second(30));
        let last = (0..=30).map(|_| s.take(t0)).last().unwrap();
        assert_eq!(last.at, t0 + Duration::from_secs(1));
    }

    #[test]
    fn late_inside_the_slot_grabs_at_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, FrameRate::per_second(30));
        s.take(t0);
        let late = t0 + 40 * MS; // slot 1 runs 33.3..66.7 ms
        assert_eq!(s.take(late), Slot { at: late, skipped: 0 });
        assert_eq!(s.take(late).at, t0 + Duration::from_micros(66_667));
    }

    #[test]
    fn a_stall_skips_the_missed_slots_and_never_bursts() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, FrameRate::per_second(30));
        s.take(t0);
        // Stalled for half a second: slots 1..=14 are gone, 15 is taken now.
        let now = t0 + 500 * MS;
        assert_eq!(s.take(now), Slot { at: now, skipped: 14 });
        // The next is slot 16 at 533.3 ms, not a catch-up grab.
        assert_eq!(s.take(now).at, t0 + Duration::from_micros(533_333));
        // Every grab after the stall is a slot apart: never two in one slot.
        let mut s = Schedule::new(t0, FrameRate::per_second(30));
        let mut grabs = vec![];
        let mut clock = t0 + 500 * MS;
        for _ in 0..10 {
            let slot = s.take(clock);
            clock = slot.at.max(clock);
            grabs.push(clock);
        }
        for pair in grabs.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_micros(33_000), "{:?}", pair[1] - pair[0]);
        }
    }

    #[test]
    fn restart_counts_from_the_broadcast_clock() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, FrameRate::per_second(25));
        s.take(t0);
        let origin = t0 + 10 * MS;
        s.restart(origin, origin + 50 * MS);
        // 50 ms after the new origin is in slot 1 (40..80 ms): grab now.
        assert_eq!(s.take(origin + 50 * MS), Slot { at: origin + 50 * MS, skipped: 0 });
        assert_eq!(s.take(origin + 50 * MS).at, origin + 80 * MS);
        // A clock whose origin is still ahead: the first slot is the origin.
        let mut s = Schedule::new(t0, FrameRate::per_second(25));
        s.restart(t0 + 100 * MS, t0);
        assert_eq!(s.take(t0).at, t0 + 100 * MS);
    }

    #[test]
    fn slots_of_a_fractional_rate_are_exact() {
        let t0 = Instant::now();
        let ntsc = FrameRate { num: 30_000, den: 1001 };
        let s = Schedule::new(t0, ntsc);
        for n in [0u64, 1, 2, 29, 30, 30_000, 1_000_000] {
            let at = s.due(n);
            assert_eq!(s.slot_at(at), n);
            assert_eq!(s.slot_at(at - Duration::from_micros(1)), n.saturating_sub(1));
        }
    }
}
