//! How long the window's frames take (its code and the rendering, as eframe
//! measures them), summed up once a second in the log at debug level
//! (`RUST_LOG=info,tally::ui=debug`): what `benches/app_frames.sh` reads to
//! show that no frame waits on a device or a socket.

use std::time::{Duration, Instant};

/// A frame slower than this is named in the summary (a 20 fps floor).
pub const SLOW_FRAME: Duration = Duration::from_millis(50);
/// How often a summary is written while frames are drawn.
const WINDOW: Duration = Duration::from_secs(1);

/// Frame times of the current window.
#[derive(Debug, Default)]
pub struct FrameTimes {
    since: Option<Instant>,
    frames: u32,
    longest: Duration,
    slow: u32,
}

impl FrameTimes {
    /// Counts one frame that took `took`; logs the window's summary once it
    /// is over.
    pub fn record(&mut self, took: Duration, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.frames += 1;
        self.longest = self.longest.max(took);
        self.slow += u32::from(took > SLOW_FRAME);
        if now.duration_since(since) >= WINDOW {
            tracing::debug!(
                "frame times over {:.1} s: {} frames, longest {:.1} ms, {} over {} ms",
                now.duration_since(since).as_secs_f64(),
                self.frames,
                self.longest.as_secs_f64() * 1000.0,
                self.slow,
                SLOW_FRAME.as_millis()
            );
            *self = FrameTimes::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_its_frames_and_the_slow_ones_then_starts_again() {
        let t0 = Instant::now();
        let mut f = FrameTimes::default();
        f.record(Duration::from_millis(5), t0);
        f.record(Duration::from_millis(70), t0 + Duration::from_millis(500));
        assert_eq!((f.frames, f.slow, f.longest), (2, 1, Duration::from_millis(70)));
        f.record(Duration::from_millis(5), t0 + Duration::from_millis(1000));
        assert_eq!(f.frames, 0, "the window was summed up and reset");
    }
}
