//! Once-a-second snapshots of a broadcast, for `--stats` and the UI.

use super::outputs::{OutputSet, OutputView};
use std::collections::HashMap;
use crate::capture::SourceStatus;
use crate::capture::pcm::Levels;
use crate::net::OutputState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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
    /// Peak and RMS (0..=1, as f32 bits) of the last audio block, for the meters.
    pub audio_peak: AtomicU32,
    pub audio_rms: AtomicU32,
}

/// A source's figures in a [`Stats`] snapshot.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SourceStats {
    /// What it is ("test pattern", "camera 0: ...", "microphone ...").
    pub name: String,
    /// "live", or why a stand-in is being sent.
    pub state: String,
    /// Frames / sample frames lost because Tally fell behind the device.
    pub overruns: u64,
}

impl SourceStats {
    fn of(s: &SourceStatus) -> Self {
        SourceStats { name: s.name().to_string(), state: s.state().to_string(), overruns: s.overruns.load(Ordering::Relaxed) }
    }
}

/// One output's figures in a [`Stats`] snapshot.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OutputStats {
    /// Stable id within the broadcast (`PROFILE/DESTINATION`, or its position).
    pub id: String,
    /// The output's name (URL with the key redacted, or file path).
    pub name: String,
    /// Human-readable state ("connecting", "live", "done", "failed: ...").
    pub state: String,
    /// The same state, typed, for a face.
    #[serde(skip)]
    pub phase: OutputState,
    /// Payload kbit/s delivered over the last second.
    pub kbps_out: f64,
    /// Media queued for this output, ms.
    pub queue_ms: u32,
    /// Video frames dropped for congestion so far.
    pub dropped_frames: u64,
    /// Bytes delivered so far.
    pub bytes_out: u64,
    /// How long it has been live without interruption.
    pub uptime_secs: f64,
    /// Reconnections so far.
    pub reconnects: u32,
    /// Bytes sent but not yet acknowledged by the server (its lag).
    pub unacked_bytes: u64,
    /// Bytes the server acknowledged on this connection.
    pub acked_bytes: u64,
    /// Congestion control's bitrate limit for this destination, kbit/s (0: none).
    pub bitrate_limit_kbps: u32,
}

/// A snapshot of the whole broadcast.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
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
    /// The video source.
    pub video_source: SourceStats,
    /// The audio source.
    pub audio_source: SourceStats,
    /// Audio peak level of the latest block, dBFS (-120 for silence).
    pub audio_peak_dbfs: f32,
    /// Audio RMS level of the latest block, dBFS.
    pub audio_rms_dbfs: f32,
    /// Per output.
    pub outputs: Vec<OutputStats>,
}

impl Stats {
    /// The one-line form printed by `--stats`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "t={:.1}s fps={:.1} enc={:.0}kbps bitrate={}kbps skipped={} audio={:.0}dBFS",
            self.media_secs, self.fps, self.encoded_kbps, self.video_bitrate_kbps, self.skipped_frames, self.audio_rms_dbfs
        );
        for src in [&self.video_source, &self.audio_source] {
            if src.state != "live" && !src.state.is_empty() {
                s.push_str(&format!(" [{}: {}]", src.name, src.state));
            }
            if src.overruns > 0 {
                s.push_str(&format!(" [{} overruns={}]", src.name, src.overruns));
            }
        }
        for o in &self.outputs {
            s.push_str(&format!(
                " | {} [{}] out={:.0}kbps queue={}ms dropped={} reconnects={} unacked={}KB up={:.0}s",
                o.name,
                o.state,
                o.kbps_out,
                o.queue_ms,
                o.dropped_frames,
                o.reconnects,
                o.unacked_bytes / 1024,
                o.uptime_secs
            ));
        }
        s
    }
}

/// The sources whose status the snapshots carry.
pub(super) struct SourceViews {
    pub video: Arc<SourceStatus>,
    pub audio: Arc<SourceStatus>,
}

pub(super) fn run_sampler(
    stop: &AtomicBool,
    counters: &PipelineCounters,
    sources: &SourceViews,
    outputs: &OutputSet,
    tx: &watch::Sender<Stats>,
) {
    let mut last = Instant::now();
    let mut last_frames = 0u64;
    let mut last_bytes = 0u64;
    // By id: outputs come and go while live.
    let mut last_out: HashMap<String, u64> = HashMap::new();
    let mut next = last + Duration::from_secs(1);
    loop {
        // Wake often enough to notice the end promptly, publish once a second.
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) && outputs.all_finished() {
                publish(counters, sources, &outputs.views(), &mut last, &mut last_frames, &mut last_bytes, &mut last_out, tx);
                return;
            }
            std::thread::sleep(super::POLL.min(next.saturating_duration_since(Instant::now())));
        }
        next += Duration::from_secs(1);
        publish(counters, sources, &outputs.views(), &mut last, &mut last_frames, &mut last_bytes, &mut last_out, tx);
    }
}

#[allow(clippy::too_many_arguments)]
fn publish(
    counters: &PipelineCounters,
    sources: &SourceViews,
    outputs: &[OutputView],
    last: &mut Instant,
    last_frames: &mut u64,
    last_bytes: &mut u64,
    last_out: &mut HashMap<String, u64>,
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
        video_source: SourceStats::of(&sources.video),
        audio_source: SourceStats::of(&sources.audio),
        audio_peak_dbfs: Levels::dbfs(f32::from_bits(counters.audio_peak.load(Ordering::Relaxed))),
        audio_rms_dbfs: Levels::dbfs(f32::from_bits(counters.audio_rms.load(Ordering::Relaxed))),
        outputs: Vec::with_capacity(outputs.len()),
    };
    *last_frames = frames;
    *last_bytes = bytes;
    last_out.retain(|id, _| outputs.iter().any(|o| &o.id == id));
    for o in outputs {
        let sent = o.bytes_out();
        // A retried output starts its count again.
        let prev = last_out.entry(o.id.clone()).or_insert(0);
        if sent < *prev {
            *prev = 0;
        }
        let phase = o.status.state();
        stats.outputs.push(OutputStats {
            id: o.id.clone(),
            name: o.name.clone(),
            state: phase.to_string(),
            phase,
            kbps_out: sent.saturating_sub(*prev) as f64 * 8.0 / 1000.0 / dt,
            queue_ms: o.queue.depth_ms(),
            dropped_frames: o.queue.counters().dropped_video.load(Ordering::Relaxed),
            bytes_out: sent,
            uptime_secs: o.status.uptime().as_secs_f64(),
            reconnects: o.status.reconnects(),
            unacked_bytes: o.status.unacked(),
            acked_bytes: o.status.acked(),
            bitrate_limit_kbps: o.status.bitrate_limit(),
        });
        *prev = sent;
    }
    tx.send_replace(stats);
}
