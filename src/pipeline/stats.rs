//! Once-a-second snapshots of a broadcast, for `--stats` and the UI.

use super::outputs::{OutputSet, OutputView};
use super::counters::PipelineCounters;
use super::renditions::Renditions;
use std::collections::HashMap;
use crate::capture::SourceStatus;
use crate::capture::pcm::Levels;
use crate::net::OutputState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    /// The rendition it is on ("r1"), empty when on none (failed, or not started).
    pub rendition: String,
    /// What that rendition's encoder aims at now, kbit/s (0 when on none).
    pub video_kbps: u32,
    /// Why it shares an encode that its path cannot carry (the CPU budget), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One rendition's figures in a [`Stats`] snapshot.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RenditionStats {
    /// "r1", "r2", ... in order of creation.
    pub id: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Its frame rate setting.
    pub fps_target: u32,
    /// Frames coded per second over the last second.
    pub fps: f64,
    /// Its settings' bitrate, kbit/s.
    pub target_kbps: u32,
    /// What its encoder aims at now (lower under congestion), kbit/s.
    pub bitrate_kbps: u32,
    /// Coded video kbit/s over the last second.
    pub encoded_kbps: f64,
    /// Time spent scaling and encoding, percent of one core.
    pub encoder_cpu_percent: f64,
    /// Frames coded so far.
    pub frames_out: u64,
    /// Frames the rate controller skipped so far.
    pub skipped_frames: u64,
    /// Frames lost because its encoder fell behind.
    pub overruns: u64,
    /// The outputs on it, by id.
    pub outputs: Vec<String>,
    /// Split off from this rendition for a congested destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_from: Option<String>,
    /// Why a congested destination shares it instead of getting its own (CPU budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
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
    /// Per rendition (one per distinct video settings in use).
    pub renditions: Vec<RenditionStats>,
    /// Encoder CPU budget, percent of one core.
    pub encoder_budget_percent: u32,
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
        if self.renditions.len() > 1 {
            for r in &self.renditions {
                s.push_str(&format!(
                    " {{{} {}x{} {:.0}fps {}kbps cpu={:.0}%}}",
                    r.id, r.width, r.height, r.fps, r.bitrate_kbps, r.encoder_cpu_percent
                ));
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
            if self.renditions.len() > 1 && !o.rendition.is_empty() {
                s.push_str(&format!(" on {}", o.rendition));
            }
            if let Some(note) = &o.note {
                s.push_str(&format!(" ({note})"));
            }
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
    renditions: &Renditions,
    tx: &watch::Sender<Stats>,
) {
    let start = Instant::now();
    let mut memory = Memory { last: Some(start), ..Memory::default() };
    let mut next = start + Duration::from_secs(1);
    loop {
        // Wake often enough to notice the end promptly, publish once a second.
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) && outputs.all_finished() {
                publish(counters, sources, &outputs.views(), renditions, &mut memory, tx);
                return;
            }
            std::thread::sleep(super::POLL.min(next.saturating_duration_since(Instant::now())));
        }
        next += Duration::from_secs(1);
        publish(counters, sources, &outputs.views(), renditions, &mut memory, tx);
    }
}

/// What the previous snapshot counted, for rates.
#[derive(Default)]
struct Memory {
    last: Option<Instant>,
    /// Per rendition id: (frames coded, video bytes); per output id: bytes delivered.
    lanes: HashMap<u32, (u64, u64)>,
    audio_bytes: u64,
    outputs: HashMap<String, u64>,
    /// The figures of the rendition that stands for the broadcast when it has ended.
    primary: Option<RenditionStats>,
}

fn publish(
    counters: &PipelineCounters,
    sources: &SourceViews,
    outputs: &[OutputView],
    renditions: &Renditions,
    memory: &mut Memory,
    tx: &watch::Sender<Stats>,
) {
    let now = Instant::now();
    let dt = memory.last.map_or(1.0, |l| now.duration_since(l).as_secs_f64()).max(1e-3);
    memory.last = Some(now);
    let lanes = renditions.snapshot();
    let assigned = renditions.assignments();
    let recording = outputs.iter().find(|o| o.kind == super::OutputKind::Record).map(|o| o.id.as_str());
    let primary = super::renditions::primary(&lanes, &assigned, recording);
    let mut rendition_stats = Vec::with_capacity(lanes.len());
    let mut video_bytes_delta = 0u64;
    for (lane, ids) in &lanes {
        let c = &lane.counters;
        let (frames, bytes) = (c.frames_out.load(Ordering::Relaxed), c.video_bytes.load(Ordering::Relaxed));
        let (last_frames, last_bytes) = memory.lanes.get(&lane.id).copied().unwrap_or((0, 0));
        memory.lanes.insert(lane.id, (frames, bytes));
        video_bytes_delta += bytes - last_bytes;
        let split = lane.split_of.load(Ordering::Relaxed);
        rendition_stats.push(RenditionStats {
            id: lane.name(),
            width: lane.spec.size.width,
            height: lane.spec.size.height,
            fps_target: lane.spec.fps,
            fps: (frames - last_frames) as f64 / dt,
            target_kbps: lane.spec.video_kbps,
            bitrate_kbps: c.bitrate_kbps.load(Ordering::Relaxed),
            encoded_kbps: (bytes - last_bytes) as f64 * 8.0 / 1000.0 / dt,
            encoder_cpu_percent: lane.load(),
            frames_out: frames,
            skipped_frames: c.skipped.load(Ordering::Relaxed),
            overruns: c.overruns.load(Ordering::Relaxed),
            outputs: ids.clone(),
            split_from: (split != 0).then(|| format!("r{split}")),
            fallback: lane.fallback(),
        });
    }
    memory.lanes.retain(|id, _| lanes.iter().any(|(l, _)| l.id == *id));
    // The broadcast's own figures are its primary rendition's (the
    // recording's, else the first): after the end, the last ones seen.
    let main = primary
        .and_then(|p| rendition_stats.iter().find(|r| r.id == format!("r{p}")).cloned())
        .or_else(|| memory.primary.clone())
        .unwrap_or_default();
    memory.primary = Some(main.clone());
    let audio_bytes = counters.audio_bytes.load(Ordering::Relaxed);
    let audio_delta = audio_bytes - memory.audio_bytes;
    memory.audio_bytes = audio_bytes;
    let mut stats = Stats {
        media_secs: counters.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        fps: main.fps,
        frames_in: counters.video_frames_in.load(Ordering::Relaxed),
        frames_out: main.frames_out,
        skipped_frames: main.skipped_frames,
        video_bitrate_kbps: main.bitrate_kbps,
        encoded_kbps: (video_bytes_delta + audio_delta) as f64 * 8.0 / 1000.0 / dt,
        video_source: SourceStats::of(&sources.video),
        audio_source: SourceStats::of(&sources.audio),
        audio_peak_dbfs: Levels::dbfs(f32::from_bits(counters.audio_peak.load(Ordering::Relaxed))),
        audio_rms_dbfs: Levels::dbfs(f32::from_bits(counters.audio_rms.load(Ordering::Relaxed))),
        outputs: Vec::with_capacity(outputs.len()),
        renditions: rendition_stats,
        encoder_budget_percent: renditions.budget_percent(),
    };
    let last_out = &mut memory.outputs;
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
            rendition: assigned.get(&o.id).map(|r| format!("r{r}")).unwrap_or_default(),
            video_kbps: assigned
                .get(&o.id)
                .and_then(|r| lanes.iter().find(|(l, _)| l.id == *r))
                .map_or(0, |(l, _)| l.counters.bitrate_kbps.load(Ordering::Relaxed)),
            note: assigned
                .get(&o.id)
                .and_then(|r| lanes.iter().find(|(l, _)| l.id == *r))
                .and_then(|(l, _)| l.fallback())
                .filter(|n| n.starts_with(&o.id)),
        });
        *prev = sent;
    }
    tx.send_replace(stats);
}
