//! Renditions: one encode per distinct set of effective video settings.
//!
//! Destinations (and the recording) whose settings — size, rate, bitrate,
//! keyframe interval — are equal share one encoder; each distinct set is a
//! rendition of its own: the captured frame scaled once per distinct size,
//! an encoder, and its own FLV stream (metadata, sequence headers). Audio
//! is encoded once and every rendition carries the same packets.
//!
//! Each rendition runs on its own thread (`tally-rN`): it encodes the
//! frames it is handed and muxes them with the audio into the queues of
//! the outputs assigned to it (`pipeline::muxer`). The capture thread hands
//! every rendition each frame (`FrameFan`), the audio thread each packet
//! (`AudioFan`), through bounded channels.
//!
//! Congestion is per rendition: a destination whose path cannot carry its
//! rendition's bitrate is split off onto a rendition of its own at what it
//! can carry, so the others keep theirs; once its path carries the shared
//! bitrate again for a while it rejoins (at a keyframe of the shared
//! encode) and its own rendition ends. A CPU budget guards the splits: when
//! the encoders' measured load plus the new one's would exceed it, the
//! destination stays on the shared encode, whose bitrate then follows the
//! lowest live destination (the policy before renditions), and the stats,
//! the log and the app say so. A rendition carrying the recording is never
//! lowered: the recording keeps full quality through any congestion.

use super::StageError;
use super::counters::{LaneCounters, PipelineCounters};
use super::lane::{LaneFrame, LaneShared, Membership};
use super::muxer;
use super::outputs::{Member, OutputKind, OutputSet};
use super::settings::BroadcastSettings;
use crate::encode::{H264Encoder, H264Settings};
use crate::media::rendition::RenditionSpec;
use crate::media::{AudioConfig, EncodedPacket, FrameSize, VideoFrame};
use crate::net::{FailureKind, OutputState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames waiting for a rendition's encoder. Live, a rendition that falls
/// behind loses frames here (counted as its overruns) rather than delay the
/// others; `--fast` waits instead.
const FRAME_SLOTS: usize = 4;
/// Audio packets waiting for a rendition: more media time than the frame
/// slots hold (5.5 s against 4 frames), so in `--fast` mode, where every
/// send waits, the capture and audio threads can never wait on each other
/// through two renditions.
const AUDIO_SLOTS: usize = 256;
/// How long a split-off destination's path must carry the shared bitrate
/// before it rejoins the shared encode (its congestion control only reaches
/// the target after four clear seconds at each step, so this is on top).
pub const REJOIN_AFTER: Duration = Duration::from_secs(5);
/// The encoders' share of the machine when no budget is given: three
/// quarters of every core, the rest for capture, audio, network and the window.
pub const DEFAULT_BUDGET_SHARE: f64 = 0.75;
/// How often the policy looks at the destinations' limits (their
/// congestion control samples every 500 ms).
const STEER_EVERY: Duration = Duration::from_millis(100);
/// How often each rendition's encoder load is measured.
const LOAD_WINDOW: Duration = Duration::from_secs(1);
/// Before a rendition's load is measured: encoder cost per million pixels
/// per second, in percent of one core — openh264 with nasm, one thread,
/// measured 0.28 at 720p30 and 0.37 at 1080p30 on the 2-core test machine
/// (benches/renditions.sh, docs/PERFORMANCE.md); rounded up.
const PERCENT_PER_MPX_S: f64 = 0.4;

/// The budget in percent of one core (200 = two whole cores).
pub fn default_budget_percent() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores as f64 * 100.0 * DEFAULT_BUDGET_SHARE).round() as u32
}

struct Lane {
    shared: Arc<LaneShared>,
    /// Dropped when the capture (audio) thread ends: the rendition sees the end of its video (audio).
    frames: Option<SyncSender<LaneFrame>>,
    audio: Option<SyncSender<EncodedPacket>>,
    /// Since when its (split-off) destination carries the shared bitrate again.
    recovered_since: Option<Instant>,
    load_mark: (Instant, u64),
}

struct Inner {
    lanes: Vec<Lane>,
    /// Output id → rendition id.
    assigned: HashMap<String, u32>,
    next_id: u32,
    outputs_generation: u64,
    video_closed: bool,
    audio_closed: bool,
    finished: bool,
    /// Rendition threads not yet ended.
    active: usize,
    handles: Vec<(u32, JoinHandle<Result<(), StageError>>)>,
    /// When the policy last looked at the destinations.
    steered_at: Instant,
}

/// Every rendition of a broadcast and which output is on which.
pub(crate) struct Renditions {
    me: Weak<Renditions>,
    outputs: Arc<OutputSet>,
    /// The broadcast's own settings (the recording's, and any destination without its own).
    pub base: RenditionSpec,
    settings: BroadcastSettings,
    budget_percent: u32,
    audio_config: AudioConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<PipelineCounters>,
    inner: Mutex<Inner>,
    generation: AtomicU64,
}

/// The settings a broadcast's own rendition has.
pub fn base_spec(s: &BroadcastSettings) -> RenditionSpec {
    RenditionSpec { size: FrameSize::new(s.width, s.height), fps: s.fps, video_kbps: s.video_kbps, keyint_secs: s.keyint_secs }
}

impl Renditions {
    /// The set, with a rendition for each distinct setting among the
    /// outputs already there (an encoder that refuses its settings fails the start).
    pub fn start(
        outputs: Arc<OutputSet>,
        settings: &BroadcastSettings,
        audio_config: AudioConfig,
        stop: Arc<AtomicBool>,
        counters: Arc<PipelineCounters>,
    ) -> Result<Arc<Renditions>, super::PipelineError> {
        let set = Arc::new_cyclic(|me| Renditions {
            me: me.clone(),
            outputs,
            base: base_spec(settings),
            settings: settings.clone(),
            budget_percent: settings.encoder_budget_percent.unwrap_or_else(default_budget_percent),
            audio_config,
            stop,
            counters,
            inner: Mutex::new(Inner {
                lanes: Vec::new(),
                assigned: HashMap::new(),
                next_id: 1,
                outputs_generation: u64::MAX,
                video_closed: false,
                audio_closed: false,
                finished: false,
                active: 0,
                handles: Vec::new(),
                steered_at: Instant::now(),
            }),
            generation: AtomicU64::new(0),
        });
        {
            let mut g = set.lock();
            set.reconcile(&mut g, true)?;
        }
        Ok(set)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain data only: a panic elsewhere leaves nothing half-changed here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }


    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }


    /// Every rendition running, with the ids of the outputs on it.
    pub fn snapshot(&self) -> Vec<(Arc<LaneShared>, Vec<String>)> {
        let g = self.lock();
        g.lanes
            .iter()
            .map(|l| {
                let mut ids: Vec<String> = g.assigned.iter().filter(|(_, r)| **r == l.shared.id).map(|(id, _)| id.clone()).collect();
                ids.sort();
                (l.shared.clone(), ids)
            })
            .collect()
    }

    /// The encoders' CPU budget, percent of one core.
    pub fn budget_percent(&self) -> u32 {
        self.budget_percent
    }

    /// Which rendition each output is on.
    pub fn assignments(&self) -> HashMap<String, u32> {
        self.lock().assigned.clone()
    }

    /// Brings the renditions in line with the outputs: a new or retried
    /// output goes onto the rendition of its settings (made if none); one
    /// that ended leaves its rendition, which ends when nobody is left on it.
    fn reconcile(&self, g: &mut Inner, at_start: bool) -> Result<(), super::PipelineError> {
        let generation = self.outputs.generation();
        if generation == g.outputs_generation {
            return Ok(());
        }
        g.outputs_generation = generation;
        let members = self.outputs.members(&self.base);
        let before = g.assigned.len();
        g.assigned.retain(|id, _| members.iter().any(|m| &m.id == id && !m.status.finished()));
        let mut changed = before != g.assigned.len();
        for m in members.iter().filter(|m| !m.status.finished()) {
            if g.assigned.contains_key(&m.id) {
                continue;
            }
            let home = g.lanes.iter().find(|l| l.shared.spec == m.spec && l.shared.split_of.load(Ordering::Relaxed) == 0);
            let lane = match home {
                Some(l) => l.shared.id,
                None if g.video_closed || g.audio_closed => continue,
                None => match self.add_lane(g, m.spec, m.spec.video_kbps, None, !at_start) {
                    Ok(id) => id,
                    Err(e) if at_start => return Err(e),
                    Err(e) => {
                        let message = format!("no encoder for {}: {}", m.spec, crate::error_chain(&e));
                        tracing::error!(output = %m.id, "{message}");
                        m.status.set_state(OutputState::failed(FailureKind::Internal, true, message));
                        continue;
                    }
                },
            };
            if !at_start {
                tracing::info!(output = %m.id, rendition = %format!("r{lane}"), "on rendition r{lane} ({})", m.spec);
            }
            g.assigned.insert(m.id.clone(), lane);
            changed = true;
        }
        self.retire_empty(g);
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// Ends the renditions nobody is on (their threads drain and stop).
    fn retire_empty(&self, g: &mut Inner) {
        let assigned = &g.assigned;
        g.lanes.retain(|l| {
            let used = assigned.values().any(|&r| r == l.shared.id);
            if !used {
                tracing::info!(rendition = %l.shared.name(), "rendition {} ended ({})", l.shared.name(), l.shared.spec);
            }
            used
        });
    }

    /// Starts a rendition: its encoder now (so a refusal is an error here), its thread.
    fn add_lane(&self, g: &mut Inner, spec: RenditionSpec, start_kbps: u32, split_of: Option<u32>, mid_stream: bool) -> Result<u32, super::PipelineError> {
        let enc = H264Encoder::new(H264Settings {
            width: spec.size.width,
            height: spec.size.height,
            fps: f64::from(spec.fps),
            bitrate_kbps: start_kbps,
            keyint_secs: spec.keyint_secs,
            threads: self.settings.encoder_threads,
        })?;
        let id = g.next_id;
        let shared = Arc::new(LaneShared {
            id,
            spec,
            wanted_kbps: AtomicU32::new(start_kbps),
            keyframe: AtomicBool::new(false),
            counters: LaneCounters::default(),
            split_of: AtomicU32::new(split_of.unwrap_or(0)),
            fallback: Mutex::new(None),
            load_percent: AtomicU64::new(0f64.to_bits()),
            mid_stream,
        });
        shared.counters.bitrate_kbps.store(start_kbps, Ordering::Relaxed);
        let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(FRAME_SLOTS);
        let (audio_tx, audio_rx) = std::sync::mpsc::sync_channel(AUDIO_SLOTS);
        let me = self.me.upgrade().ok_or(super::PipelineError::NoOutputs)?;
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("tally-r{id}"))
            .spawn(move || run_lane(me, thread_shared, enc, frames_rx, audio_rx))
            .map_err(|source| super::PipelineError::Spawn { what: "tally-rN", source })?;
        g.next_id += 1;
        g.active += 1;
        g.handles.push((id, handle));
        g.lanes.push(Lane { shared, frames: Some(frames_tx), audio: Some(audio_tx), recovered_since: None, load_mark: (Instant::now(), 0) });
        self.bump();
        Ok(id)
    }

    /// Runs on the capture thread once per frame: picks up outputs that
    /// came or went, measures the encoders, and steers each rendition's
    /// bitrate, splits and rejoins (live broadcasts only).
    pub fn tick(&self, now: Instant) {
        let mut g = self.lock();
        let _ = self.reconcile(&mut g, false);
        if self.settings.fast || g.video_closed {
            return;
        }
        // Congestion control samples twice a second: steering at every
        // frame would only repeat the same verdict.
        if now.saturating_duration_since(g.steered_at) < STEER_EVERY {
            return;
        }
        g.steered_at = now;
        self.measure(&mut g, now);
        self.steer(&mut g, now);
    }

    fn measure(&self, g: &mut Inner, now: Instant) {
        for l in &mut g.lanes {
            let (at, busy) = l.load_mark;
            let span = now.saturating_duration_since(at);
            if span < LOAD_WINDOW {
                continue;
            }
            let busy_now = l.shared.counters.busy_ns.load(Ordering::Relaxed);
            let load = (busy_now - busy) as f64 / span.as_nanos() as f64 * 100.0;
            l.shared.load_percent.store(load.to_bits(), Ordering::Relaxed);
            l.load_mark = (now, busy_now);
        }
    }

    /// What one more encode like `lane` would cost, percent of a core:
    /// what that one measures, or an estimate from its pixel rate before it has been measured.
    fn estimate(lane: &LaneShared) -> f64 {
        let measured = lane.load();
        if measured > 0.0 {
            return measured;
        }
        let mpx_s = f64::from(lane.spec.size.width) * f64::from(lane.spec.size.height) * f64::from(lane.spec.fps) / 1e6;
        mpx_s * PERCENT_PER_MPX_S
    }

    fn steer(&self, g: &mut Inner, now: Instant) {
        let members = self.outputs.members(&self.base);
        // A destination that failed leaves its rendition now (a failure
        // moves no generation); retried, it comes back through `reconcile`.
        let before = g.assigned.len();
        g.assigned.retain(|id, _| members.iter().any(|m| &m.id == id && !m.status.finished()));
        if g.assigned.len() != before {
            self.bump();
        }
        let ids: Vec<u32> = g.lanes.iter().map(|l| l.shared.id).collect();
        for id in ids {
            let Some(index) = g.lanes.iter().position(|l| l.shared.id == id) else { continue };
            let shared = g.lanes[index].shared.clone();
            let target = shared.spec.video_kbps;
            let on: Vec<&Member> = members.iter().filter(|m| g.assigned.get(&m.id) == Some(&id)).collect();
            // What each output can carry now: a recording all of it, a
            // destination its congestion control's limit, one not live nothing.
            let carry = |m: &Member| -> Option<u32> {
                match m.kind {
                    OutputKind::Record => Some(target),
                    OutputKind::Publish if !m.status.healthy() => None,
                    OutputKind::Publish => Some(match m.status.bitrate_limit() {
                        0 => target,
                        l => l.min(target),
                    }),
                }
            };
            let split_of = shared.split_of.load(Ordering::Relaxed);
            if split_of != 0 {
                let Some(m) = on.first() else { continue };
                let can = carry(m);
                if let Some(kbps) = can {
                    shared.wanted_kbps.store(kbps, Ordering::Relaxed);
                }
                if can == Some(target) {
                    let since = *g.lanes[index].recovered_since.get_or_insert(now);
                    if now.saturating_duration_since(since) >= REJOIN_AFTER {
                        self.rejoin(g, index, m, split_of);
                    }
                } else {
                    g.lanes[index].recovered_since = None;
                }
                continue;
            }
            let best = on.iter().filter_map(|m| carry(m)).max();
            let mut staying = Vec::new();
            let mut fallback = None;
            for m in &on {
                match (carry(m), best) {
                    (Some(c), Some(b)) if c < b => {
                        let total: f64 = g.lanes.iter().map(|l| l.shared.load()).sum();
                        let extra = Self::estimate(&shared);
                        if total + extra <= f64::from(self.budget_percent) {
                            match self.add_lane(g, shared.spec, c, Some(id), true) {
                                Ok(new) => {
                                    tracing::info!(
                                        output = %m.id,
                                        "{}'s path carries {c} kbit/s: it gets a rendition of its own (r{new}), the others keep r{id} at {b} kbit/s",
                                        m.id
                                    );
                                    g.assigned.insert(m.id.clone(), new);
                                    self.bump();
                                    continue;
                                }
                                Err(e) => tracing::warn!(output = %m.id, "no encoder for a rendition of its own: {}", crate::error_chain(&e)),
                            }
                        }
                        fallback = Some(format!(
                            "{} shares {} at its lowest bitrate: the encoders use {total:.0} % of a core, another would need ~{extra:.0} % of the {} % budget",
                            m.id,
                            shared.name(),
                            self.budget_percent
                        ));
                        staying.push((m, c));
                    }
                    (c, _) => staying.push((m, c.unwrap_or(target))),
                }
            }
            let pinned = on.iter().any(|m| m.kind == OutputKind::Record);
            let wanted = if pinned { target } else { staying.iter().map(|(_, c)| *c).min().unwrap_or(target) };
            shared.wanted_kbps.store(wanted, Ordering::Relaxed);
            let before = shared.fallback();
            if before != fallback {
                match &fallback {
                    Some(note) => tracing::warn!(rendition = %shared.name(), "{note}"),
                    None => tracing::info!(rendition = %shared.name(), "no destination held back by the CPU budget any more"),
                }
                shared.set_fallback(fallback);
            }
        }
        self.retire_empty(g);
    }

    /// Moves a split-off destination back onto the shared encode of its
    /// settings (at that encode's next keyframe) and ends its own.
    fn rejoin(&self, g: &mut Inner, index: usize, m: &Member, home: u32) {
        let own = g.lanes[index].shared.clone();
        match g.lanes.iter().find(|l| l.shared.id == home) {
            Some(h) => {
                h.shared.keyframe.store(true, Ordering::Relaxed);
                tracing::info!(output = %m.id, "{}'s path carries {} kbit/s again: back on r{home}", m.id, own.spec.video_kbps);
                g.assigned.insert(m.id.clone(), home);
                self.bump();
            }
            // The shared encode ended meanwhile (everyone else left): this is it now.
            None => own.split_of.store(0, Ordering::Relaxed),
        }
    }

    /// The capture thread's end: the renditions drain what they were handed.
    pub fn close_video(&self) {
        let mut g = self.lock();
        g.video_closed = true;
        for l in &mut g.lanes {
            l.frames = None;
        }
        self.maybe_finish(&mut g);
    }

    /// The audio thread's end.
    pub fn close_audio(&self) {
        let mut g = self.lock();
        g.audio_closed = true;
        for l in &mut g.lanes {
            l.audio = None;
        }
        self.maybe_finish(&mut g);
    }

    fn lane_ended(&self) {
        let mut g = self.lock();
        g.active = g.active.saturating_sub(1);
        self.maybe_finish(&mut g);
    }

    /// Once nothing will come any more (both sources done, every rendition
    /// drained), every output's queue is finished.
    fn maybe_finish(&self, g: &mut Inner) {
        // Both closes dropped every sender: each rendition drains and ends
        // (and stays listed, for the last snapshot).
        if g.video_closed && g.audio_closed && !g.finished && g.active == 0 {
            g.finished = true;
            self.outputs.finish_all();
        }
    }

    /// The threads of every rendition started so far, to join at the end.
    pub fn take_handles(&self) -> Vec<(u32, JoinHandle<Result<(), StageError>>)> {
        std::mem::take(&mut self.lock().handles)
    }

    fn frame_senders(&self) -> (u64, Vec<FrameTarget>) {
        let g = self.lock();
        let generation = self.generation();
        (generation, g.lanes.iter().filter_map(|l| Some((l.shared.clone(), l.frames.clone()?))).collect())
    }

    fn audio_senders(&self) -> (u64, Vec<SyncSender<EncodedPacket>>) {
        let g = self.lock();
        let generation = self.generation();
        (generation, g.lanes.iter().filter_map(|l| l.audio.clone()).collect())
    }
}

impl Membership for Renditions {
    /// Changes of membership since start; a rendition's fan-out re-reads its outputs when it moves.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The queues and statuses of the outputs on rendition `lane`.
    fn members_of(&self, lane: u32) -> Vec<Member> {
        let g = self.lock();
        self.outputs.members(&self.base).into_iter().filter(|m| g.assigned.get(&m.id) == Some(&lane)).collect()
    }
}

/// A rendition and where its frames go.
type FrameTarget = (Arc<LaneShared>, SyncSender<LaneFrame>);

/// The capture thread's side: each frame to every rendition, scaled once per distinct size.
pub(super) struct FrameFan {
    set: Arc<Renditions>,
    generation: u64,
    lanes: Vec<FrameTarget>,
    fast: bool,
}

impl FrameFan {
    pub fn new(set: Arc<Renditions>, fast: bool) -> Self {
        FrameFan { set, generation: u64::MAX, lanes: Vec::new(), fast }
    }

    /// Hands `frame` to every rendition; false once none is left to take it.
    pub fn send(&mut self, frame: Arc<VideoFrame>, media_us: u64, keyframe: bool) -> bool {
        self.set.tick(Instant::now());
        if self.set.generation() != self.generation {
            (self.generation, self.lanes) = self.set.frame_senders();
        }
        let mut scaled: Vec<(FrameSize, Arc<VideoFrame>)> = Vec::new();
        let mut any = false;
        for (lane, tx) in &self.lanes {
            let size = lane.spec.size;
            let picture = if (size.width, size.height) == (frame.width, frame.height) {
                frame.clone()
            } else if let Some((_, f)) = scaled.iter().find(|(s, _)| *s == size) {
                f.clone()
            } else {
                let t = Instant::now();
                let f = Arc::new(crate::capture::convert::fit_into(&frame, size.width, size.height, frame.pts_us));
                // The first rendition of a size pays for its scaling.
                lane.counters.busy_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                scaled.push((size, f.clone()));
                f
            };
            let item = LaneFrame { frame: picture, media_us, keyframe };
            lane.counters.frames_in.fetch_add(1, Ordering::Relaxed);
            let delivered = if self.fast {
                tx.send(item).is_ok()
            } else {
                match tx.try_send(item) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        lane.counters.overruns.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(TrySendError::Disconnected(_)) => false,
                }
            };
            any |= delivered;
        }
        any || self.lanes.is_empty()
    }
}

/// The audio thread's side: each packet to every rendition (the same bytes).
pub(super) struct AudioFan {
    set: Arc<Renditions>,
    generation: u64,
    lanes: Vec<SyncSender<EncodedPacket>>,
}

impl AudioFan {
    pub fn new(set: Arc<Renditions>) -> Self {
        AudioFan { set, generation: u64::MAX, lanes: Vec::new() }
    }

    /// Hands `packet` to every rendition (waiting for room: audio is never
    /// dropped here); false once none is left to take it.
    pub fn send(&mut self, packet: EncodedPacket) -> bool {
        if self.set.generation() != self.generation {
            (self.generation, self.lanes) = self.set.audio_senders();
        }
        let mut any = self.lanes.is_empty();
        for tx in &self.lanes {
            any |= tx.send(packet.clone()).is_ok();
        }
        any
    }
}

/// A rendition's thread: encode what the capture thread hands it, mux it
/// with the audio into its outputs' queues; at the end, say so.
fn run_lane(
    set: Arc<Renditions>,
    lane: Arc<LaneShared>,
    enc: H264Encoder,
    frames: Receiver<LaneFrame>,
    audio: Receiver<EncodedPacket>,
) -> Result<(), StageError> {
    let result = muxer::run_lane_muxer(set.as_ref(), &lane, enc, frames, audio, &set.audio_config, &set.settings, &set.counters);
    if result.is_err() {
        set.stop.store(true, Ordering::SeqCst);
    }
    set.lane_ended();
    result
}

/// Whether `lane` is the one whose figures stand for the broadcast's
/// (frame rate, bitrate, skipped frames): the recording's, else the first.
pub(crate) fn primary(lanes: &[(Arc<LaneShared>, Vec<String>)], assigned: &HashMap<String, u32>, recording: Option<&str>) -> Option<u32> {
    recording.and_then(|r| assigned.get(r).copied()).or_else(|| lanes.first().map(|(l, _)| l.id))
}
