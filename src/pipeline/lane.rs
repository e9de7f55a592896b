//! What a rendition's thread shares with the rest: its settings, the
//! bitrate and keyframes wanted of it, its counters, and where its frames
//! come from; and how it learns which outputs are on it (`Membership`, which
//! the renditions set implements), so the muxer needs nothing above it.

use super::counters::LaneCounters;
use super::outputs::Member;
use crate::media::VideoFrame;
use crate::media::rendition::RenditionSpec;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A frame for a rendition's encoder (already at its size).
pub(crate) struct LaneFrame {
    /// The picture (stamped on the capture session's clock).
    pub frame: Arc<VideoFrame>,
    /// Its time in the broadcast, µs: the session's stamp less the media
    /// offset the picture came with (never a copy of the frame for it).
    pub media_us: u64,
    /// The first frame of a new source: the encoder starts a keyframe here.
    pub keyframe: bool,
}

/// Which outputs are on which rendition, as a rendition's muxer asks it.
pub(crate) trait Membership: Send + Sync {
    /// Moves whenever an output joins or leaves any rendition.
    fn generation(&self) -> u64;
    /// The outputs on rendition `lane` now.
    fn members_of(&self, lane: u32) -> Vec<Member>;
}

/// What a rendition's thread and the stats share with the set.
pub(crate) struct LaneShared {
    /// 1, 2, ... in order of creation ("r1" in stats).
    pub id: u32,
    /// Its settings; for a split-off rendition the shared one's (its target).
    pub spec: RenditionSpec,
    /// The bitrate the policy wants now, kbit/s.
    pub wanted_kbps: AtomicU32,
    /// A keyframe is wanted (a destination joined or moved here).
    pub keyframe: AtomicBool,
    pub counters: LaneCounters,
    /// Split off for a congested destination (else the shared encode of its settings).
    pub split_of: AtomicU32,
    /// Why a congested destination shares this encode instead (CPU budget), for the stats.
    pub fallback: Mutex<Option<String>>,
    /// Encoder load over the last window, percent of one core (f64 bits).
    pub load_percent: AtomicU64,
    /// Started while the broadcast was running (its stream starts at the present, not at 0).
    pub mid_stream: bool,
}

impl LaneShared {
    pub fn name(&self) -> String {
        format!("r{}", self.id)
    }
    pub fn load(&self) -> f64 {
        f64::from_bits(self.load_percent.load(Ordering::Relaxed))
    }
    pub fn fallback(&self) -> Option<String> {
        self.fallback.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub(super) fn set_fallback(&self, note: Option<String>) {
        *self.fallback.lock().unwrap_or_else(|e| e.into_inner()) = note;
    }
}

