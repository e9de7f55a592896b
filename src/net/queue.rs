//! One bounded queue per output, measured in milliseconds of media and bytes.
//!
//! The fan-out pushes without ever blocking the encoder (live mode): when an
//! output falls behind, video is dropped up to the next keyframe — never half
//! a GOP, never a sequence header or metadata — while audio is kept as long as
//! the byte bound allows. In `--fast` mode (no wall clock), pushes wait for
//! room instead, so the slowest output sets the pace and nothing is lost.

use crate::flv::{FlvTag, TagType};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Limits of one output queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most media (newest minus oldest queued timestamp) before video is dropped.
    pub max_ms: u32,
    /// Most payload bytes held; beyond this even audio is dropped.
    pub max_bytes: usize,
}

impl QueueLimits {
    /// Defaults for a network destination: 5 s of media, 32 MiB (a 2.5 Mbit/s
    /// stream is ~1.5 MiB per 5 s; the byte bound only guards against a runaway).
    pub const PUBLISHER: QueueLimits = QueueLimits { max_ms: 5_000, max_bytes: 32 << 20 };
    /// Defaults for the local recorder: a disk stall of 20 s is survivable.
    pub const RECORDER: QueueLimits = QueueLimits { max_ms: 20_000, max_bytes: 128 << 20 };
}

/// What happened to a pushed tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued.
    Queued,
    /// Dropped (video behind the next keyframe, or the byte bound reached).
    Dropped,
    /// The consumer has gone; nothing will be delivered any more.
    Closed,
}

/// Counters of one queue, readable without locking.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Video frames dropped for congestion.
    pub dropped_video: AtomicU64,
    /// Audio frames dropped (byte bound reached).
    pub dropped_audio: AtomicU64,
    /// Tags delivered to the consumer.
    pub delivered: AtomicU64,
}

struct Inner {
    tags: VecDeque<FlvTag>,
    bytes: usize,
    /// Dropping video until the next keyframe arrives.
    skipping_to_keyframe: bool,
    producer_done: bool,
    consumer_gone: bool,
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

/// True for an FLV video tag carrying a keyframe (FLV 10.1 E.4.3.1: FrameType 1).
pub fn is_video_keyframe(tag: &FlvTag) -> bool {
    tag.tag_type == TagType::Video && tag.data.first().is_some_and(|b| b >> 4 == 1)
}

/// True for tags a decoder cannot do without: metadata and AVC/AAC sequence headers.
pub fn is_config_tag(tag: &FlvTag) -> bool {
    match tag.tag_type {
        TagType::Script => true,
        // AVCPacketType 0 / AACPacketType 0 = sequence header.
        TagType::Video | TagType::Audio => tag.data.get(1) == Some(&0),
    }
}

impl OutputQueue {
    /// An empty queue with these limits.
    pub fn new(limits: QueueLimits) -> Self {
        OutputQueue {
            inner: Mutex::new(Inner {
                tags: VecDeque::new(),
                bytes: 0,
                skipping_to_keyframe: false,
                producer_done: false,
                consumer_gone: false,
            }),
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
        let g = self.lock();
        span_ms(&g.tags)
    }

    /// Bytes of payload queued.
    pub fn depth_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn over_limits(&self, g: &Inner, extra: &FlvTag) -> (bool, bool) {
        let span = match g.tags.front() {
            Some(front) => extra.timestamp_ms.wrapping_sub(front.timestamp_ms),
            None => 0,
        };
        let too_long = span < u32::MAX / 2 && span > self.limits.max_ms;
        let too_big = g.bytes + extra.data.len() > self.limits.max_bytes;
        (too_long, too_big)
    }

    /// Queues a tag without blocking, dropping per the policy when behind.
    pub fn push(&self, tag: FlvTag) -> PushOutcome {
        let mut g = self.lock();
        if g.consumer_gone {
            return PushOutcome::Closed;
        }
        let (too_long, too_big) = self.over_limits(&g, &tag);
        let outcome = if is_config_tag(&tag) {
            // Never drop what a decoder needs; it is tiny and rare.
            PushOutcome::Queued
        } else if tag.tag_type == TagType::Video {
            if g.skipping_to_keyframe && is_video_keyframe(&tag) && !too_long && !too_big {
                g.skipping_to_keyframe = false;
            }
            if too_long || too_big {
                g.skipping_to_keyframe = true;
            }
            if g.skipping_to_keyframe { PushOutcome::Dropped } else { PushOutcome::Queued }
        } else if too_big {
            PushOutcome::Dropped
        } else {
            PushOutcome::Queued
        };
        match outcome {
            PushOutcome::Queued => {
                g.bytes += tag.data.len();
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
        g.bytes += tag.data.len();
        g.tags.push_back(tag);
        drop(g);
        self.readable.notify_one();
        self.changed.notify_all();
        PushOutcome::Queued
    }

    /// The producer will push nothing more; the consumer drains and sees the end.
    pub fn finish(&self) {
        self.lock().producer_done = true;
        self.readable.notify_one();
        self.changed.notify_all();
    }

    /// The consumer has stopped; pushes are refused from now on and the queue is emptied.
    pub fn close_consumer(&self) {
        let mut g = self.lock();
        g.consumer_gone = true;
        g.tags.clear();
        g.bytes = 0;
        drop(g);
        self.changed.notify_all();
    }

    fn try_pop(&self) -> Result<Option<FlvTag>, ()> {
        let mut g = self.lock();
        match g.tags.pop_front() {
            Some(tag) => {
                g.bytes -= tag.data.len();
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

fn span_ms(tags: &VecDeque<FlvTag>) -> u32 {
    match (tags.front(), tags.back()) {
        (Some(a), Some(b)) => {
            let span = b.timestamp_ms.wrapping_sub(a.timestamp_ms);
            if span > u32::MAX / 2 { 0 } else { span }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> FlvTag {
        FlvTag { tag_type: TagType::Video, timestamp_ms: ts, data: Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 9]) }
    }
    fn audio(ts: u32) -> FlvTag {
        FlvTag { tag_type: TagType::Audio, timestamp_ms: ts, data: Bytes::from_static(&[0xAF, 1, 7]) }
    }

    #[test]
    fn behind_consumer_drops_video_to_next_keyframe_and_keeps_audio() {
        let q = OutputQueue::new(QueueLimits { max_ms: 1000, max_bytes: 1 << 20 });
        let mut outcomes = Vec::new();
        // 3 s of media, keyframe every second, 10 fps, nobody consuming.
        for i in 0..30u32 {
            outcomes.push((i, q.push(video(i * 100, i % 10 == 0))));
            assert_eq!(q.push(audio(i * 100)), PushOutcome::Queued);
        }
        // Once over 1000 ms, every video frame until a keyframe that fits is dropped.
        let dropped: Vec<u32> = outcomes.iter().filter(|(_, o)| *o == PushOutcome::Dropped).map(|(i, _)| *i).collect();
        assert!(dropped.contains(&11));
        assert!(!dropped.is_empty());
        assert_eq!(q.counters().dropped_audio.load(Ordering::Relaxed), 0);
        // Draining: the first video after a gap is a keyframe.
        let mut last_video_key_after_gap = true;
        let mut prev_video_ts = None;
        while let Ok(Some(t)) = q.try_pop() {
            if t.tag_type == TagType::Video {
                if let Some(p) = prev_video_ts
                    && t.timestamp_ms - p > 100 {
                        last_video_key_after_gap &= is_video_keyframe(&t);
                    }
                prev_video_ts = Some(t.timestamp_ms);
            }
        }
        assert!(last_video_key_after_gap);
    }

    #[test]
    fn config_tags_are_never_dropped() {
        let q = OutputQueue::new(QueueLimits { max_ms: 10, max_bytes: 8 });
        let seq = FlvTag { tag_type: TagType::Video, timestamp_ms: 5000, data: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3, 4, 5]) };
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
}
