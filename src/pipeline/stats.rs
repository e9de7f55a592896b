//! Once-a-second snapshots of a broadcast, for `--stats` and the UI.

use super::outputs::OutputView;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Counters the pipeline threads bump; sampled by [`run_sampler`].
#[derive(Debug, Default)]
pub(crate) struct PipelineCounters {
    pub video_frames_in: AtomicU64,
    pub video_frames_out: AtomicU64,
    pub video_skipped: AtomicU64,
    pub video_bytes: AtomicU64,
    pub audio_bytes: AtomicU64,
    pub media_ms: AtomicU64,
    pub video_bitrate_kbps: AtomicU64,
}

/// One output's figures in a [`Stats`] snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputStats {
    /// The output's name (URL with the key redacted, or file path).
    pub name: String,
    /// Human-readable state ("connecting", "live", "done", "failed: ...").
    pub state: String,
    /// Payload kbit/s delivered over the last second.
    pub kbps_out: f64,
    /// Media queued for this output, ms.
    pub queue_ms: u32,
    /// Video frames dropped for congestion so far.
    pub dropped_frames: u64,
    /// Bytes delivered so far.
    pub bytes_out: u64,
}

/// A snapshot of the whole broadcast.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Media time of the newest encoded video frame, seconds.
    pub media_secs: f64,
    /// Encoded video frames per second over the last second.
    pub fps: f64,
    /// Video frames captured so far.
    pub frames_in: u64,
    /// Video frames encoded so far.
    pub frames_out: u64,
    /// Frames the rate controller skipped so far.
    pub skipped_frames: u64,
    /// Current video bitrate target, kbit/s.
    pub video_bitrate_kbps: u32,
    /// Encoded video+audio kbit/s over the last second.
    pub encoded_kbps: f64,
    /// Per output.
    pub outputs: Vec<OutputStats>,
}

impl Stats {
    /// The one-line form printed by `--stats`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "t={:.1}s fps={:.1} enc={:.0}kbps skipped={}",
            self.media_secs, self.fps, self.encoded_kbps, self.skipped_frames
        );
        for o in &self.outputs {
            s.push_str(&format!(
                " | {} [{}] out={:.0}kbps queue={}ms dropped={}",
                o.name, o.state, o.kbps_out, o.queue_ms, o.dropped_frames
            ));
        }
        s
    }
}

pub(super) fn run_sampler(
    stop: &AtomicBool,
    counters: &PipelineCounters,
    outputs: &[OutputView],
    tx: &watch::Sender<Stats>,
) {
    let mut last = Instant::now();
    let mut last_frames = 0u64;
    let mut last_bytes = 0u64;
    let mut last_out: Vec<u64> = vec![0; outputs.len()];
    let mut next = last + Duration::from_secs(1);
    loop {
        // Wake often enough to notice the end promptly, publish once a second.
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) && outputs.iter().all(|o| o.finished()) {
                publish(counters, outputs, &mut last, &mut last_frames, &mut last_bytes, &mut last_out, tx);
                return;
            }
            std::thread::sleep(super::POLL.min(next.saturating_duration_since(Instant::now())));
        }
        next += Duration::from_secs(1);
        publish(counters, outputs, &mut last, &mut last_frames, &mut last_bytes, &mut last_out, tx);
    }
}

fn publish(
    counters: &PipelineCounters,
    outputs: &[OutputView],
    last: &mut Instant,
    last_frames: &mut u64,
    last_bytes: &mut u64,
    last_out: &mut [u64],
    tx: &watch::Sender<Stats>,
) {
    let now = Instant::now();
    let dt = now.duration_since(*last).as_secs_f64().max(1e-3);
    *last = now;
    let frames = counters.video_frames_out.load(Ordering::Relaxed);
    let bytes = counters.video_bytes.load(Ordering::Relaxed) + counters.audio_bytes.load(Ordering::Relaxed);
    let mut stats = Stats {
        media_secs: counters.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        fps: (frames - *last_frames) as f64 / dt,
        frames_in: counters.video_frames_in.load(Ordering::Relaxed),
        frames_out: frames,
        skipped_frames: counters.video_skipped.load(Ordering::Relaxed),
        video_bitrate_kbps: counters.video_bitrate_kbps.load(Ordering::Relaxed) as u32,
        encoded_kbps: (bytes - *last_bytes) as f64 * 8.0 / 1000.0 / dt,
        outputs: Vec::with_capacity(outputs.len()),
    };
    *last_frames = frames;
    *last_bytes = bytes;
    for (o, prev) in outputs.iter().zip(last_out.iter_mut()) {
        let sent = o.bytes_out();
        stats.outputs.push(OutputStats {
            name: o.name.clone(),
            state: o.state(),
            kbps_out: sent.saturating_sub(*prev) as f64 * 8.0 / 1000.0 / dt,
            queue_ms: o.queue.depth_ms(),
            dropped_frames: o.queue.counters().dropped_video.load(Ordering::Relaxed),
            bytes_out: sent,
        });
        *prev = sent;
    }
    tx.send_replace(stats);
}
