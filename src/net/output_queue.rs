//! One bounded queue per output, measured in milliseconds of media and bytes.
//! (Called `output_queue`, not `queue`, beside the `media_queue` core it
//! shares with the server's `player_queue`.)
//!
//! The fan-out pushes without ever blocking the encoder (live mode): when an
//! output falls behind by more than its bound, the oldest video is dropped,
//! a GOP remainder at a time so what is left always decodes, while audio is
//! kept twice as long; never a sequence header or metadata. So the delay a
//! viewer sees stays bounded, and so does memory through an outage. In
//! `--fast` mode (no wall clock), pushes wait for room instead, so the
//! slowest output sets the pace and nothing is lost.

use crate::flv::{FlvTag, TagType};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub use super::media_queue::{PushOutcome, QueueLimits};
use super::media_queue::{Media, MediaDeque, Queued};

impl QueueLimits {
    /// For a network destination: 1.5 s of video (beyond that a viewer is
    /// better served by a jump than by growing delay; OBS drops at 0.7 s;
    /// congestion control acts from 1 s), 3 s of audio, 32 MiB (the byte
    /// bound only guards against a runaway).
    pub const PUBLISHER: QueueLimits = QueueLimits { max_ms: 1_500, max_bytes: 32 << 20 };
    /// For the local recorder: a disk stall of 20 s is survivable.
    pub const RECORDER: QueueLimits = QueueLimits { max_ms: 20_000, max_bytes: 128 << 20 };
}

impl Queued for FlvTag {
    fn bytes(&self) -> usize {
        self.data.len()
    }

    fn media(&self) -> Option<Media> {
        (!self.is_config()).then(|| Media { timestamp: self.timestamp_ms, video: self.tag_type == TagType::Video, keyframe: self.is_keyframe() })
    }
}

/// Counters of one queue, readable without locking.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Video frames dropped (congestion, or a new session's wait for a keyframe).
    pub dropped_video: AtomicU64,
    /// Audio frames dropped (a backlog past the bound, or the byte bound).
    pub dropped_audio: AtomicU64,
    /// Times the consumer was so far behind that media was thrown away:
    /// the congestion signal (a new session's restart does not count).
    pub backlog_drops: AtomicU64,
    /// Tags delivered to the consumer.
    pub delivered: AtomicU64,
    /// Media refused for not coming after what was queued (a switch of rendition).
    pub stale: AtomicU64,
}

/// Which `Inner::newest` slot a media tag updates: 0 audio, 1 video; `None` for config and script tags.
fn media_slot(tag: &FlvTag) -> Option<usize> {
    match tag.tag_type {
        _ if is_config_tag(tag) => None,
        TagType::Audio => Some(0),
        TagType::Video => Some(1),
        TagType::Script => None,
    }
}

fn note_newest(g: &mut Inner, tag: &FlvTag) {
    if let Some(slot) = media_slot(tag) {
        g.newest[slot] = Some(tag.timestamp_ms);
    }
}

struct Inner {
    tags: MediaDeque<FlvTag>,
    producer_done: bool,
    consumer_gone: bool,
    /// Timestamps of the newest audio and video queued: media never goes
    /// back in time, even when the queue changes producer (a destination
    /// moved to another rendition gets both encodes' audio around the switch).
    newest: [Option<u32>; 2],
}

/// True when `ts` is not after `newest` (32-bit wrapping time).
fn not_after(newest: Option<u32>, ts: u32) -> bool {
    newest.is_some_and(|n| !matches!(crate::net::media_queue::ms_between(n, ts), Some(d) if d > 0))
}

/// A bounded multi-stage queue between the fan-out (sync) and one output
/// (async task or thread).
pub struct OutputQueue {
    inner: Mutex<Inner>,
    limits: QueueLimits,
    /// Wakes an async consumer.
    readable: Notify,
    /// Wakes a blocked consumer thread or a producer waiting for room.
    changed: Condvar,
    counters: QueueCounters,
}

/// True for an FLV video tag carrying a keyframe (known when the tag was made).
pub fn is_video_keyframe(tag: &FlvTag) -> bool {
    tag.is_keyframe()
}

/// True for tags a decoder cannot do without: metadata and AVC/AAC sequence headers.
pub fn is_config_tag(tag: &FlvTag) -> bool {
    tag.is_config()
}

impl OutputQueue {
    /// An empty queue with these limits.
    pub fn new(limits: QueueLimits) -> Self {
        OutputQueue {
            inner: Mutex::new(Inner { tags: MediaDeque::default(), producer_done: false, consumer_gone: false, newest: [None, None] }),
            limits,
            readable: Notify::new(),
            changed: Condvar::new(),
            counters: QueueCounters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only plain data behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counters (drops, deliveries).
    pub fn counters(&self) -> &QueueCounters {
        &self.counters
    }

    /// Milliseconds of media queued (newest minus oldest timestamp).
    pub fn depth_ms(&self) -> u32 {
        span_ms(&self.lock().tags)
    }

    /// Bytes of payload queued.
    pub fn depth_bytes(&self) -> usize {
        self.lock().tags.bytes()
    }

    fn over_limits(&self, g: &Inner, extra: &FlvTag) -> (bool, bool) {
        let span = match g.tags.iter().next() {
            Some(front) => extra.timestamp_ms.wrapping_sub(front.timestamp_ms),
            None => 0,
        };
        let too_long = span < u32::MAX / 2 && span > self.limits.max_ms;
        let too_big = g.tags.bytes() + extra.data.len() > self.limits.max_bytes;
        (too_long, too_big)
    }

    /// Keeps the queue within `max_ms` of `newest`: drops older media from
    /// the front, and with dropped video also the frames that depended on it
    /// (up to the next keyframe), so what remains always decodes. Config
    /// tags stay. Newest-first, like a live viewer wants: the backlog goes,
    /// not the present.
    fn trim_older_than(&self, g: &mut Inner, newest: u32) {
        let max_ms = self.limits.max_ms;
        // Audio is kept twice as long as video: it is small, and a viewer
        // forgives lost pictures far more than lost sound. Once the video
        // backlog is gone the audio drains at once on any path that carries
        // the stream at all; the bound only matters when nothing moves.
        let is_old = |t: &FlvTag| {
            let age = newest.wrapping_sub(t.timestamp_ms);
            let limit = if t.tag_type == TagType::Video { max_ms } else { max_ms.saturating_mul(2) };
            age < u32::MAX / 2 && age > limit
        };
        // Tags are in timestamp order: the first of each kind is its oldest.
        let oldest = |video: bool| g.tags.iter().find(|t| !is_config_tag(t) && (t.tag_type == TagType::Video) == video);
        if !oldest(true).is_some_and(is_old) && !oldest(false).is_some_and(is_old) {
            return;
        }
        let (mut video_broken, mut dropped_video, mut dropped_audio) = (false, 0u64, 0u64);
        g.tags.retain(|t| {
            if is_config_tag(t) {
                return true;
            }
            match t.tag_type {
                TagType::Video => {
                    if is_old(t) || (video_broken && !is_video_keyframe(t)) {
                        video_broken = true;
                        dropped_video += 1;
                        false
                    } else {
                        video_broken = false;
                        true
                    }
                }
                _ if is_old(t) => {
                    dropped_audio += 1;
                    false
                }
                _ => true,
            }
        });
        if video_broken {
            g.tags.skip_to_keyframe();
        }
        self.counters.dropped_video.fetch_add(dropped_video, Ordering::Relaxed);
        self.counters.dropped_audio.fetch_add(dropped_audio, Ordering::Relaxed);
        if dropped_video + dropped_audio > 0 {
            self.counters.backlog_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a tag without blocking. When the consumer is behind, the
    /// oldest media goes first (see `trim_older_than`); video stays
    /// decodable (after a drop it resumes at a keyframe); the byte bound
    /// refuses the new tag as a last resort.
    pub fn push(&self, tag: FlvTag) -> PushOutcome {
        let mut g = self.lock();
        if g.consumer_gone {
            return PushOutcome::Closed;
        }
        if self.stale(&mut g, &tag) {
            return PushOutcome::Dropped;
        }
        if !is_config_tag(&tag) {
            self.trim_older_than(&mut g, tag.timestamp_ms);
        }
        let too_big = g.tags.bytes() + tag.data.len() > self.limits.max_bytes;
        let outcome = if is_config_tag(&tag) {
            // Never drop what a decoder needs; it is tiny and rare.
            PushOutcome::Queued
        } else if tag.tag_type == TagType::Video {
            if too_big {
                g.tags.skip_to_keyframe();
                self.counters.backlog_drops.fetch_add(1, Ordering::Relaxed);
            }
            if !too_big && g.tags.admit_video(tag.is_keyframe()) { PushOutcome::Queued } else { PushOutcome::Dropped }
        } else if too_big {
            self.counters.backlog_drops.fetch_add(1, Ordering::Relaxed);
            PushOutcome::Dropped
        } else {
            PushOutcome::Queued
        };
        match outcome {
            PushOutcome::Queued => {
                note_newest(&mut g, &tag);
                g.tags.push_back(tag);
                drop(g);
                self.readable.notify_one();
                self.changed.notify_all();
            }
            PushOutcome::Dropped => {
                let counter = if tag.tag_type == TagType::Video {
                    &self.counters.dropped_video
                } else {
                    &self.counters.dropped_audio
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            PushOutcome::Closed => {}
        }
        outcome
    }

    /// Queues a tag, waiting for room instead of dropping (`--fast` mode).
    pub fn push_wait(&self, tag: FlvTag) -> PushOutcome {
        let mut g = self.lock();
        loop {
            if g.consumer_gone {
                return PushOutcome::Closed;
            }
            let (too_long, too_big) = self.over_limits(&g, &tag);
            if g.tags.is_empty() || !(too_long || too_big) {
                break;
            }
            g = self
                .changed
                .wait_timeout(g, Duration::from_millis(250))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if self.stale(&mut g, &tag) {
            return PushOutcome::Dropped;
        }
        if tag.tag_type == TagType::Video && !is_config_tag(&tag) && !g.tags.admit_video(tag.is_keyframe()) {
            return PushOutcome::Dropped;
        }
        note_newest(&mut g, &tag);
        g.tags.push_back(tag);
        drop(g);
        self.readable.notify_one();
        self.changed.notify_all();
        PushOutcome::Queued
    }

    /// Media that does not come after what is already queued of its kind
    /// is refused: a destination moved from one rendition to another gets
    /// the same audio from both around the switch, and video that would
    /// go back in time. Refused video closes the keyframe gate (what
    /// follows would reference it). Counted in `stale`, not as a drop.
    fn stale(&self, g: &mut Inner, tag: &FlvTag) -> bool {
        let Some(slot) = media_slot(tag) else { return false };
        if !not_after(g.newest[slot], tag.timestamp_ms) {
            return false;
        }
        if slot == 1 {
            g.tags.skip_to_keyframe();
        }
        self.counters.stale.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// True once any audio or video went through this queue (it is not a newcomer).
    pub fn has_had_media(&self) -> bool {
        self.lock().newest.iter().any(Option::is_some)
    }

    /// Video is let in again only from its next keyframe, keeping what is
    /// queued: a destination joining (or moving to) a rendition mid-stream
    /// starts at one of its keyframes.
    pub fn join_at_next_keyframe(&self) {
        self.lock().tags.skip_to_keyframe();
    }

    /// The producer will push nothing more; the consumer drains and sees the end.
    pub fn finish(&self) {
        self.lock().producer_done = true;
        self.readable.notify_one();
        self.changed.notify_all();
    }

    /// True once the producer called [`OutputQueue::finish`].
    pub fn producer_finished(&self) -> bool {
        self.lock().producer_done
    }

    /// For a new session after a reconnection: drops the queued media (only
    /// metadata and sequence headers stay) and lets video in again from the
    /// next keyframe — which the publisher asks the encoder for at once — so
    /// viewers get the present, not the backlog of the outage.
    pub fn restart_at_next_keyframe(&self) {
        let mut g = self.lock();
        let (dropped_video, _) = g.tags.drop_media();
        g.tags.skip_to_keyframe();
        drop(g);
        self.counters.dropped_video.fetch_add(dropped_video, Ordering::Relaxed);
        self.changed.notify_all();
    }

    /// The consumer has stopped; pushes are refused from now on and the queue is emptied.
    pub fn close_consumer(&self) {
        let mut g = self.lock();
        g.consumer_gone = true;
        g.tags.clear();
        drop(g);
        self.changed.notify_all();
    }

    fn try_pop(&self) -> Result<Option<FlvTag>, ()> {
        let mut g = self.lock();
        match g.tags.pop_front() {
            Some(tag) => {
                drop(g);
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                self.changed.notify_all();
                Ok(Some(tag))
            }
            None if g.producer_done => Ok(None),
            None => Err(()),
        }
    }

    /// Next tag for an async consumer; `None` once the producer finished and all was delivered.
    pub async fn pop(&self) -> Option<FlvTag> {
        loop {
            let notified = self.readable.notified();
            match self.try_pop() {
                Ok(t) => return t,
                Err(()) => notified.await,
            }
        }
    }

    /// Next tag for a consumer thread; `None` at the end.
    pub fn pop_blocking(&self) -> Option<FlvTag> {
        loop {
            if let Ok(t) = self.try_pop() {
                return t;
            }
            let g = self.lock();
            if g.tags.is_empty() && !g.producer_done {
                let _unused = self.changed.wait_timeout(g, Duration::from_millis(250));
            }
        }
    }
}

/// Newest minus oldest timestamp of everything queued (configuration
/// included: it is sent with the media around it).
fn span_ms(tags: &MediaDeque<FlvTag>) -> u32 {
    match (tags.iter().next(), tags.iter().next_back()) {
        (Some(a), Some(b)) => super::media_queue::ms_between(a.timestamp_ms, b.timestamp_ms).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> FlvTag {
        FlvTag::new(TagType::Video, ts, Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 9]))
    }
    fn audio(ts: u32) -> FlvTag {
        FlvTag::new(TagType::Audio, ts, Bytes::from_static(&[0xAF, 1, 7]))
    }

    #[test]
    fn behind_consumer_keeps_the_newest_media_and_video_decodable() {
        let q = OutputQueue::new(QueueLimits { max_ms: 1000, max_bytes: 1 << 20 });
        // 3 s of media, keyframe every second, 10 fps, nobody consuming.
        for i in 0..30u32 {
            assert_eq!(q.push(video(i * 100, i % 10 == 0)), PushOutcome::Queued);
            assert_eq!(q.push(audio(i * 100)), PushOutcome::Queued);
            // Video within 1 s (to its GOP), audio within 2 s.
            assert!(q.depth_ms() <= 2000, "{}", q.depth_ms());
        }
        assert!(q.counters().dropped_video.load(Ordering::Relaxed) >= 19);
        assert!(q.counters().dropped_audio.load(Ordering::Relaxed) >= 9);
        assert!(q.counters().backlog_drops.load(Ordering::Relaxed) > 0, "congestion is signalled");
        // What is left starts at a keyframe, and every gap in video ends at one.
        let mut prev_video_ts = None;
        let mut first_audio = None;
        while let Ok(Some(t)) = q.try_pop() {
            if t.tag_type == TagType::Video {
                match prev_video_ts {
                    None => assert!(is_video_keyframe(&t)),
                    Some(p) if t.timestamp_ms - p > 100 => assert!(is_video_keyframe(&t), "{}", t.timestamp_ms),
                    Some(_) => {}
                }
                prev_video_ts = Some(t.timestamp_ms);
            } else {
                first_audio.get_or_insert(t.timestamp_ms);
            }
        }
        assert_eq!(prev_video_ts, Some(2900));
        // Audio outlives the video it came with: from 0.9 s, video from 2 s.
        assert_eq!(first_audio, Some(900));
    }

    #[test]
    fn a_consumer_mid_gop_sees_the_rest_of_the_gop_dropped() {
        let q = OutputQueue::new(QueueLimits { max_ms: 500, max_bytes: 1 << 20 });
        for i in 0..4u32 {
            q.push(video(i * 100, i == 0));
        }
        // The consumer took the keyframe and one frame, then stalls.
        assert!(q.try_pop().unwrap().is_some_and(|t| is_video_keyframe(&t)));
        assert!(q.try_pop().unwrap().is_some());
        for i in 4..12u32 {
            q.push(video(i * 100, i == 10));
        }
        let rest: Vec<u32> = std::iter::from_fn(|| q.try_pop().ok().flatten()).map(|t| t.timestamp_ms).collect();
        assert_eq!(rest, vec![1000, 1100], "the broken GOP went entirely");
    }

    #[test]
    fn a_restart_keeps_config_and_waits_for_a_keyframe() {
        let q = OutputQueue::new(QueueLimits { max_ms: 100_000, max_bytes: 1 << 20 });
        let seq = FlvTag::new(TagType::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]));
        q.push(seq);
        for i in 0..25u32 {
            q.push(video(i * 100, i % 10 == 0));
            q.push(audio(i * 100));
        }
        q.restart_at_next_keyframe();
        assert_eq!(q.counters().dropped_video.load(Ordering::Relaxed), 25);
        assert!(q.try_pop().unwrap().is_some_and(|t| is_config_tag(&t)));
        assert!(q.try_pop().is_err(), "only config stays");
        assert_eq!(q.push(video(2600, false)), PushOutcome::Dropped);
        assert_eq!(q.push(audio(2600)), PushOutcome::Queued);
        assert_eq!(q.push(video(2700, true)), PushOutcome::Queued);
        assert_eq!(q.push(video(2800, false)), PushOutcome::Queued);
        assert_eq!(q.counters().backlog_drops.load(Ordering::Relaxed), 0, "a restart is not congestion");
    }

    #[test]
    fn config_tags_are_never_dropped() {
        let q = OutputQueue::new(QueueLimits { max_ms: 10, max_bytes: 8 });
        let seq = FlvTag::new(TagType::Video, 5000, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3, 4, 5]));
        assert_eq!(q.push(video(0, true)), PushOutcome::Queued);
        assert_eq!(q.push(seq), PushOutcome::Queued);
    }

    #[test]
    fn finish_ends_consumer_after_drain_and_close_refuses() {
        let q = OutputQueue::new(QueueLimits::PUBLISHER);
        q.push(audio(0));
        q.finish();
        assert!(q.pop_blocking().is_some());
        assert!(q.pop_blocking().is_none());
        q.close_consumer();
        assert_eq!(q.push(audio(1)), PushOutcome::Closed);
    }

    #[test]
    fn push_wait_blocks_until_room() {
        let q = std::sync::Arc::new(OutputQueue::new(QueueLimits { max_ms: 100, max_bytes: 1 << 20 }));
        let q2 = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..50u32 {
                assert_eq!(q2.push_wait(audio(i * 50)), PushOutcome::Queued);
            }
            q2.finish();
        });
        let mut n = 0;
        while let Some(_t) = q.pop_blocking() {
            assert!(q.depth_ms() <= 150);
            n += 1;
        }
        producer.join().unwrap();
        assert_eq!(n, 50);
    }

    #[test]
    fn media_older_than_what_is_queued_is_refused_and_video_waits_for_a_keyframe() {
        let tag = |kind: TagType, ts: u32, key: bool| if kind == TagType::Video { video(ts, key) } else { audio(ts) };
        let q = OutputQueue::new(QueueLimits::PUBLISHER);
        assert_eq!(q.push(tag(TagType::Audio, 100, false)), PushOutcome::Queued);
        assert_eq!(q.push(tag(TagType::Video, 100, true)), PushOutcome::Queued);
        assert_eq!(q.push(tag(TagType::Video, 133, false)), PushOutcome::Queued);
        assert!(q.has_had_media());
        // Another rendition's copy of the same audio, and video from before.
        assert_eq!(q.push(tag(TagType::Audio, 100, false)), PushOutcome::Dropped);
        assert_eq!(q.push(tag(TagType::Video, 133, true)), PushOutcome::Dropped);
        // After refused video, P-frames wait for a keyframe.
        assert_eq!(q.push(tag(TagType::Video, 166, false)), PushOutcome::Dropped);
        assert_eq!(q.push(tag(TagType::Video, 200, true)), PushOutcome::Queued);
        assert_eq!(q.push(tag(TagType::Audio, 121, false)), PushOutcome::Queued);
        assert_eq!(q.counters().stale.load(Ordering::Relaxed), 2);
        // Configuration is never refused, whatever its time.
        let header = FlvTag::new(TagType::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]));
        assert_eq!(q.push(header), PushOutcome::Queued);
        // A queue that joins a rendition keeps what it holds and lets video in from a keyframe.
        q.join_at_next_keyframe();
        assert_eq!(q.push(tag(TagType::Video, 233, false)), PushOutcome::Dropped);
        assert_eq!(q.push(tag(TagType::Video, 266, true)), PushOutcome::Queued);
    }
}
