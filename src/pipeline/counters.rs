//! The counters the pipeline's threads bump and the stats sampler reads:
//! the broadcast's own, and each rendition's.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// Counters the pipeline threads bump; sampled by the stats (`pipeline::stats`).
#[derive(Debug, Default)]
pub(crate) struct PipelineCounters {
    /// Frames captured (each rendition's own counts are in its `LaneCounters`).
    pub video_frames_in: AtomicU64,
    pub audio_bytes: AtomicU64,
    /// Media time of the newest video frame muxed by any rendition.
    pub media_ms: AtomicU64,
    /// Peak and RMS (0..=1, as f32 bits) of the last audio block, for the meters.
    pub audio_peak: AtomicU32,
    pub audio_rms: AtomicU32,
}

/// Counters a rendition's thread bumps; sampled by the stats.
#[derive(Debug, Default)]
pub(crate) struct LaneCounters {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub skipped: AtomicU64,
    /// Frames lost because this rendition's encoder was behind (live).
    pub overruns: AtomicU64,
    pub video_bytes: AtomicU64,
    pub bitrate_kbps: AtomicU32,
    /// Time spent scaling and encoding, ns: the encoder's CPU.
    pub busy_ns: AtomicU64,
    pub media_ms: AtomicU64,
}

