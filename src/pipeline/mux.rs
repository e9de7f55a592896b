//! The muxer thread: interleaves encoded audio and video by timestamp, turns
//! them into FLV tags and fans each tag out to every output's queue.

use super::settings::BroadcastSettings;
use super::stats::PipelineCounters;
use crate::flv::{self, FlvTag};
use crate::media::{AudioConfig, EncodedPacket, VideoConfig};
use super::StageError;
use super::outputs::OutputSet;
use crate::net::queue::{OutputQueue, PushOutcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// Encoded frames buffered between an encoder thread and the muxer. Small:
/// the muxer is fast, and a deep buffer here would only add latency.
pub(super) const CHANNEL_FRAMES: usize = 16;

/// A coded video frame and, when it changed, the new decoder configuration.
pub(super) type VideoItem = (EncodedPacket, Option<VideoConfig>);

/// Name of the encoder in onMetaData.
pub(crate) fn encoder_name() -> String {
    format!("Tally {}", env!("CARGO_PKG_VERSION"))
}

/// The tags a new consumer needs before any media: the latest metadata and
/// sequence headers (RTMP players and FLV readers configure their decoders
/// from them; nginx-rtmp replays the same to a late player).
#[derive(Default)]
struct StartTags {
    metadata: Option<FlvTag>,
    video: Option<FlvTag>,
    audio: Option<FlvTag>,
}

struct Fanout {
    outputs: Arc<OutputSet>,
    /// The set's generation this copy of its queues is from.
    generation: u64,
    queues: Vec<Arc<OutputQueue>>,
    open: Vec<bool>,
    start: StartTags,
    /// The start tags have gone out: a queue that joins now gets them replayed.
    started: bool,
    /// Timestamp of the newest tag sent, for a joiner's replayed start.
    last_ts: u32,
    fast: bool,
    offset: u32,
}

impl Fanout {
    fn new(outputs: Arc<OutputSet>, fast: bool, offset: u32) -> Self {
        let generation = outputs.generation();
        let queues = outputs.queues();
        let open = vec![true; queues.len()];
        Fanout { outputs, generation, queues, open, start: StartTags::default(), started: false, last_ts: offset, fast, offset }
    }

    /// Picks up outputs added or removed while live. A joiner starts with
    /// the start tags, then media from the next keyframe (its destination
    /// asked the encoder for one when it was added).
    fn refresh(&mut self) {
        let generation = self.outputs.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let queues = self.outputs.queues();
        let mut open = Vec::with_capacity(queues.len());
        for q in &queues {
            match self.queues.iter().position(|old| Arc::ptr_eq(old, q)) {
                Some(i) => open.push(self.open[i]),
                None => {
                    if self.started {
                        q.restart_at_next_keyframe();
                        for tag in [&self.start.metadata, &self.start.video, &self.start.audio].into_iter().flatten() {
                            let mut tag = tag.clone();
                            tag.timestamp_ms = self.last_ts;
                            q.push(tag);
                        }
                    }
                    open.push(true);
                }
            }
        }
        self.queues = queues;
        self.open = open;
    }

    fn send(&mut self, tag: FlvTag) {
        self.refresh();
        self.last_ts = tag.timestamp_ms;
        for (q, open) in self.queues.iter().zip(self.open.iter_mut()) {
            if !*open {
                continue;
            }
            let outcome = if self.fast { q.push_wait(tag.clone()) } else { q.push(tag.clone()) };
            if outcome == PushOutcome::Closed {
                *open = false;
            }
        }
    }

    /// Sends a start tag (metadata or a sequence header) and keeps it for joiners.
    fn send_start(&mut self, tag: FlvTag, slot: fn(&mut StartTags) -> &mut Option<FlvTag>) {
        *slot(&mut self.start) = Some(tag.clone());
        self.send(tag);
    }

    fn ts(&self, ms: u64) -> u32 {
        // RTMP/FLV timestamps are 32-bit milliseconds and wrap (RTMP 1.0 5.3.1.3).
        (ms as u32).wrapping_add(self.offset)
    }

    fn finish(&self) {
        self.outputs.finish_all();
    }
}

/// Runs until both encoder channels are closed; then finishes every queue.
pub(super) fn run_muxer(
    video_rx: Receiver<VideoItem>,
    audio_rx: Receiver<EncodedPacket>,
    audio_config: AudioConfig,
    outputs: Arc<OutputSet>,
    settings: &BroadcastSettings,
    counters: &PipelineCounters,
    stop: &AtomicBool,
) -> Result<(), StageError> {
    let mut out = Fanout::new(outputs, settings.fast, settings.start_offset_ms);
    let result = interleave(&video_rx, &audio_rx, &audio_config, &mut out, counters);
    out.finish();
    if result.is_err() {
        stop.store(true, Ordering::SeqCst);
    }
    result
}

fn interleave(
    video_rx: &Receiver<VideoItem>,
    audio_rx: &Receiver<EncodedPacket>,
    audio_config: &AudioConfig,
    out: &mut Fanout,
    counters: &PipelineCounters,
) -> Result<(), StageError> {
    let mut video_head: Option<VideoItem> = None;
    let mut audio_head: Option<EncodedPacket> = None;
    let (mut video_done, mut audio_done) = (false, false);
    let mut started = false;
    loop {
        if video_head.is_none() && !video_done {
            match video_rx.recv() {
                Ok(item) => video_head = Some(item),
                Err(_) => video_done = true,
            }
        }
        if audio_head.is_none() && !audio_done {
            match audio_rx.recv() {
                Ok(p) => audio_head = Some(p),
                Err(_) => audio_done = true,
            }
        }
        if !started {
            // Players need metadata and both sequence headers before any media;
            // the video configuration is only known once the first IDR is coded.
            let video_config = match &video_head {
                Some((_, Some(cfg))) => Some(cfg.clone()),
                Some((_, None)) => return Err(StageError::NoParameterSets),
                None if video_done => None,
                None => continue,
            };
            let base = out.ts(0);
            let meta = flv::stream_metadata(video_config.as_ref(), Some(audio_config), &encoder_name());
            out.send_start(flv::metadata_tag(&meta, base), |s| &mut s.metadata);
            if let Some(cfg) = &video_config {
                let tag = flv::video_sequence_header(cfg, base).map_err(StageError::SequenceHeader)?;
                out.send_start(tag, |s| &mut s.video);
                // Consumed: a later `Some(config)` means a change and is re-sent.
                if let Some((_, c)) = video_head.as_mut() {
                    *c = None;
                }
            }
            out.send_start(flv::audio_sequence_header(audio_config, base), |s| &mut s.audio);
            started = true;
            out.started = true;
        }
        let take_video = match (&video_head, &audio_head) {
            (Some((v, _)), Some(a)) => v.dts_ms <= a.dts_ms,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(()),
        };
        if take_video {
            let Some((packet, config)) = video_head.take() else { continue };
            if let Some(cfg) = config {
                let tag = flv::video_sequence_header(&cfg, out.ts(packet.dts_ms))
                    .map_err(StageError::SequenceHeader)?;
                out.send_start(tag, |s| &mut s.video);
            }
            let mut tag = flv::video_tag(&packet);
            tag.timestamp_ms = out.ts(packet.dts_ms);
            counters.video_frames_out.fetch_add(1, Ordering::Relaxed);
            counters.video_bytes.fetch_add(packet.data.len() as u64, Ordering::Relaxed);
            counters.media_ms.store(packet.dts_ms, Ordering::Relaxed);
            out.send(tag);
        } else {
            let Some(packet) = audio_head.take() else { continue };
            let mut tag = flv::audio_tag(&packet);
            tag.timestamp_ms = out.ts(packet.dts_ms);
            counters.audio_bytes.fetch_add(packet.data.len() as u64, Ordering::Relaxed);
            out.send(tag);
        }
    }
}
