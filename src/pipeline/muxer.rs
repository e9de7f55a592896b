//! A rendition's muxer: interleaves its encoded video with the broadcast's
//! audio by timestamp, turns them into FLV tags and fans each tag out to
//! the queues of the outputs on that rendition.
//!
//! "The muxer" of the pipeline is this one (it was `mux.rs`, the name the
//! app's FLV tag building also had; that is `tally::tags` now).

use super::counters::PipelineCounters;
use super::lane::{LaneFrame, LaneShared, Membership};
use super::outputs::Member;
use super::settings::BroadcastSettings;
use crate::encode::{H264Encoder, VideoOutput};
use crate::flv::{self, FlvTag};
use crate::tags;
use crate::media::{AudioConfig, EncodedPacket, VideoConfig};
use super::StageError;
use crate::net::output_queue::PushOutcome;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

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

struct Fanout<'a> {
    set: &'a dyn Membership,
    lane: &'a LaneShared,
    /// The set's generation this copy of the members is from.
    generation: u64,
    members: Vec<Member>,
    open: Vec<bool>,
    start: StartTags,
    /// The start tags have gone out: a queue that joins now gets them replayed.
    started: bool,
    /// Timestamp of the newest tag sent, for a joiner's replayed start.
    last_ts: u32,
    fast: bool,
    offset: u32,
}

impl<'a> Fanout<'a> {
    fn new(set: &'a dyn Membership, lane: &'a LaneShared, fast: bool, offset: u32) -> Self {
        Fanout {
            set,
            lane,
            generation: u64::MAX,
            members: Vec::new(),
            open: Vec::new(),
            start: StartTags::default(),
            started: false,
            last_ts: offset,
            fast,
            offset,
        }
    }

    /// Picks up outputs that joined or left this rendition. A joiner (a
    /// destination added, retried, or moved here from another rendition)
    /// gets the start tags, then media from this encoder's next keyframe,
    /// asked for at once; what it already holds from another rendition
    /// stays (the queue refuses anything older than that).
    fn refresh(&mut self) {
        let generation = self.set.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let members = self.set.members_of(self.lane.id);
        let mut open = Vec::with_capacity(members.len());
        for m in &members {
            match self.members.iter().position(|old| Arc::ptr_eq(&old.queue, &m.queue)) {
                Some(i) => open.push(self.open[i]),
                None => {
                    m.queue.join_at_next_keyframe();
                    if self.started {
                        // One moving here from another rendition of the same
                        // size keeps the metadata it had: ffmpeg takes an
                        // onMetaData not at time 0 for a data stream of its own.
                        let moving = m.queue.has_had_media();
                        let metadata = if moving { &None } else { &self.start.metadata };
                        for tag in [metadata, &self.start.video, &self.start.audio].into_iter().flatten() {
                            let mut tag = tag.clone();
                            tag.timestamp_ms = self.last_ts;
                            m.queue.push(tag);
                        }
                        self.lane.keyframe.store(true, Ordering::Relaxed);
                    }
                    open.push(true);
                }
            }
        }
        self.members = members;
        self.open = open;
    }

    fn send(&mut self, tag: FlvTag) {
        self.refresh();
        self.last_ts = tag.timestamp_ms;
        let keyframe = tag.is_keyframe();
        for (m, open) in self.members.iter().zip(self.open.iter_mut()) {
            if !*open {
                continue;
            }
            let stale = || m.queue.counters().stale.load(Ordering::Relaxed);
            let stale_before = if keyframe { stale() } else { 0 };
            let outcome = if self.fast { m.queue.push_wait(tag.clone()) } else { m.queue.push(tag.clone()) };
            match outcome {
                PushOutcome::Closed => *open = false,
                // Refused as stale (too early for a queue that holds later
                // video from another rendition): the next frame is one. Not
                // for a keyframe dropped for congestion: more keyframes
                // would only make the backlog worse, and for everyone here.
                PushOutcome::Dropped if keyframe && stale() != stale_before => self.lane.keyframe.store(true, Ordering::Relaxed),
                _ => {}
            }
        }
    }

    /// True when one of the outputs on this rendition asked for a keyframe
    /// (a new session after a reconnection), or one joined.
    fn keyframe_wanted(&mut self) -> bool {
        self.refresh();
        // Every request is taken, so one IDR answers several at once.
        let asked = self.members.iter().fold(false, |any, m| m.status.take_keyframe_request() | any);
        self.lane.keyframe.swap(false, Ordering::Relaxed) | asked
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

}

/// A rendition's encoder: frames in (dropped evenly down to its rate),
/// the bitrate the renditions' policy wants, keyframes when asked.
struct LaneEncoder<'a> {
    enc: H264Encoder,
    lane: &'a LaneShared,
    frames: Receiver<LaneFrame>,
    /// Which frames this rendition keeps of what the capture hands it.
    rate: RateKeeper,
    coded: bool,
}

/// Keeps a rendition's frames to its own rate.
///
/// A source faster than the rendition (a 60 fps camera into a 30 fps
/// encode) is thinned on a fixed grid of the rendition's interval. A source
/// at or below the rendition's rate is passed whole: a live camera's frames
/// are stamped when they arrive, so one that comes late makes the next look
/// early, and a grid judging each frame alone drops frames of a 30 fps
/// camera going into a 30 fps encode (seen: 3 % of them on a loaded
/// machine). Whether the source is faster is judged from its mean interval
/// over the last [`RATE_WINDOW`] frames, which that jitter moves only at
/// the window's two ends.
#[derive(Debug)]
struct RateKeeper {
    interval_us: u64,
    /// The grid slot the next kept frame must reach, µs of media time.
    next_due_us: Option<u64>,
    /// The source's last RATE_WINDOW + 1 timestamps (a ring), µs.
    recent: [u64; RATE_WINDOW + 1],
    seen: usize,
}

/// Frame intervals the source's rate is judged over (a second at 30 fps).
const RATE_WINDOW: usize = 30;

impl RateKeeper {
    fn new(fps: u32) -> RateKeeper {
        RateKeeper { interval_us: 1_000_000 / u64::from(fps.max(1)), next_due_us: None, recent: [0; RATE_WINDOW + 1], seen: 0 }
    }

    /// The source is faster than the rendition: its mean interval is under
    /// 95 % of the rendition's (until a window is seen, assume not: a
    /// second of a fast source encoded whole costs less than frames of a
    /// matching one lost).
    fn source_is_faster(&self) -> bool {
        if self.seen <= RATE_WINDOW {
            return false;
        }
        let newest = self.recent[(self.seen - 1) % (RATE_WINDOW + 1)];
        let oldest = self.recent[self.seen % (RATE_WINDOW + 1)];
        newest.saturating_sub(oldest) * 100 < self.interval_us * 95 * RATE_WINDOW as u64
    }

    /// Whether to encode the frame stamped `pts_us` (a keyframe the
    /// capture marked is always kept).
    fn keep(&mut self, pts_us: u64, keyframe: bool) -> bool {
        self.recent[self.seen % (RATE_WINDOW + 1)] = pts_us;
        self.seen += 1;
        let interval = self.interval_us;
        let keep = match self.next_due_us {
            None => true,
            Some(due) => keyframe || !self.source_is_faster() || pts_us + interval / 2 >= due,
        };
        if keep {
            // On the grid while the source keeps up with it; a frame more
            // than a slot late (a gap, a slower source) starts it again.
            self.next_due_us = Some(match self.next_due_us {
                Some(due) if pts_us < due + interval / 2 => due + interval,
                _ => pts_us + interval,
            });
        }
        keep
    }
}

impl LaneEncoder<'_> {
    /// The next coded frame; `None` once the capture thread is done.
    fn next(&mut self, out: &mut Fanout) -> Result<Option<VideoItem>, StageError> {
        loop {
            let Ok(LaneFrame { frame, media_us, keyframe }) = self.frames.recv() else { return Ok(None) };
            if !self.rate.keep(media_us, keyframe) {
                continue;
            }
            let started = Instant::now();
            let wanted = self.lane.wanted_kbps.load(Ordering::Relaxed);
            // The encoder must have coded a frame before its bitrate can change.
            if self.coded && wanted != self.enc.stats().bitrate_kbps && wanted > 0 {
                match self.enc.set_bitrate(wanted) {
                    Ok(()) => tracing::info!(rendition = %self.lane.name(), kbps = wanted, "{} video bitrate now {wanted} kbit/s", self.lane.name()),
                    Err(e) => tracing::warn!(error = %e, "could not change the video bitrate"),
                }
            }
            if out.keyframe_wanted() || keyframe {
                self.enc.force_keyframe();
            }
            let output = self.enc.encode_at(&frame, media_us).map_err(StageError::VideoEncoder)?;
            let c = &self.lane.counters;
            c.busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let s = self.enc.stats();
            c.skipped.store(s.skipped, Ordering::Relaxed);
            c.bitrate_kbps.store(s.bitrate_kbps, Ordering::Relaxed);
            if let VideoOutput::Frame { packet, config } = output {
                self.coded = true;
                return Ok(Some((packet, config)));
            }
        }
    }
}

/// Runs a rendition until both its channels are closed.
// What the rendition's thread owns and the set's parts it reads, from one caller: a struct would only rename the list.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_lane_muxer(
    set: &dyn Membership,
    lane: &LaneShared,
    enc: H264Encoder,
    frames: Receiver<LaneFrame>,
    audio_rx: Receiver<EncodedPacket>,
    audio_config: &AudioConfig,
    settings: &BroadcastSettings,
    counters: &PipelineCounters,
) -> Result<(), StageError> {
    let mut out = Fanout::new(set, lane, settings.fast, settings.start_offset_ms);
    out.refresh();
    let mut video = LaneEncoder { enc, lane, frames, rate: RateKeeper::new(lane.spec.fps), coded: false };
    interleave(&mut video, &audio_rx, audio_config, &mut out, counters)
}

fn interleave(
    video: &mut LaneEncoder,
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
            match video.next(out)? {
                Some(item) => video_head = Some(item),
                None => video_done = true,
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
            // The broadcast's stream starts at time 0 (ffmpeg reads an
            // onMetaData at any other time as a data stream of its own); a
            // rendition started mid-broadcast starts its own at the present.
            let first = [video_head.as_ref().map(|(v, _)| v.dts_ms), audio_head.as_ref().map(|a| a.dts_ms)];
            let base = if out.lane.mid_stream { out.ts(first.into_iter().flatten().min().unwrap_or(0)) } else { out.ts(0) };
            let meta = tags::stream_metadata(video_config.as_ref(), Some(audio_config), &encoder_name());
            out.send_start(flv::metadata_tag(&meta, base), |s| &mut s.metadata);
            if let Some(cfg) = &video_config {
                let tag = tags::video_sequence_header(cfg, base).map_err(StageError::SequenceHeader)?;
                out.send_start(tag, |s| &mut s.video);
                // Consumed: a later `Some(config)` means a change and is re-sent.
                if let Some((_, c)) = video_head.as_mut() {
                    *c = None;
                }
            }
            out.send_start(tags::audio_sequence_header(audio_config, base), |s| &mut s.audio);
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
                let tag = tags::video_sequence_header(&cfg, out.ts(packet.dts_ms))
                    .map_err(StageError::SequenceHeader)?;
                out.send_start(tag, |s| &mut s.video);
            }
            let mut tag = tags::video_tag(&packet);
            tag.timestamp_ms = out.ts(packet.dts_ms);
            let c = &out.lane.counters;
            c.frames_out.fetch_add(1, Ordering::Relaxed);
            c.video_bytes.fetch_add(packet.data.len() as u64, Ordering::Relaxed);
            c.media_ms.store(packet.dts_ms, Ordering::Relaxed);
            counters.media_ms.fetch_max(packet.dts_ms, Ordering::Relaxed);
            out.send(tag);
        } else {
            let Some(packet) = audio_head.take() else { continue };
            let mut tag = tags::audio_tag(&packet);
            tag.timestamp_ms = out.ts(packet.dts_ms);
            out.send(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateKeeper;

    /// Frames of a `fps` source, each stamped late by up to `jitter_us`
    /// (a capture thread that was not scheduled at once), for `secs`.
    fn stamps(fps: u64, jitter_us: u64, secs: u64) -> Vec<u64> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..fps * secs).map(|i| i * 1_000_000 / fps + rng.u64(0..=jitter_us)).collect()
    }

    fn kept(rendition_fps: u32, stamps: &[u64]) -> usize {
        let mut keeper = RateKeeper::new(rendition_fps);
        stamps.iter().filter(|&&pts| keeper.keep(pts, false)).count()
    }

    #[test]
    fn a_jittery_source_at_the_renditions_rate_loses_no_frame() {
        // Up to 25 ms late at 30 fps: three quarters of a frame.
        let s = stamps(30, 25_000, 20);
        assert_eq!(kept(30, &s), s.len());
        // A source a little slower than the rendition, also whole.
        let s = stamps(25, 25_000, 20);
        assert_eq!(kept(30, &s), s.len());
    }

    #[test]
    fn a_faster_source_is_thinned_to_the_renditions_rate() {
        for (source, rendition, jitter) in [(60, 30, 0), (60, 30, 8_000), (30, 15, 20_000), (50, 25, 10_000)] {
            let s = stamps(source, jitter, 20);
            let n = kept(rendition, &s) as f64;
            let want = f64::from(rendition) * 20.0;
            assert!((n - want).abs() <= want * 0.03, "{source} fps into {rendition}: kept {n}, want about {want}");
        }
    }

    #[test]
    fn keyframes_asked_for_are_kept() {
        let mut keeper = RateKeeper::new(15);
        let s = stamps(60, 0, 2);
        for &pts in &s[..40] {
            keeper.keep(pts, false);
        }
        assert!(keeper.keep(s[40], true));
    }
}
