//! The bounded-queue core under both kinds of media queue: a destination's
//! output queue (`net::output_queue`, fed by the broadcast's fan-out) and a
//! player's queue in the server (`net::server::player_queue`, fed by the
//! hub). Both hold FLV-shaped media bounded in milliseconds and bytes,
//! never drop configuration (metadata, sequence headers) or notices, and
//! after dropping video let it in again only from a keyframe, so what is
//! queued always decodes. What each does when the bound is reached — trim
//! the oldest GOP, or throw the backlog away and count a skip — is its own.

use std::collections::VecDeque;

/// Limits of one media queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most media (newest minus oldest queued timestamp) before dropping.
    pub max_ms: u32,
    /// Most payload bytes held.
    pub max_bytes: usize,
}

/// What became of a pushed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued.
    Queued,
    /// Dropped (behind, or waiting for a keyframe after a drop).
    Dropped,
    /// The consumer has gone; nothing will be delivered any more.
    Closed,
}

/// What a droppable media item is, as the queue needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Media {
    /// RTMP/FLV timestamp, ms (32 bits, wrapping).
    pub timestamp: u32,
    /// Video (else audio or data).
    pub video: bool,
    /// A video keyframe: where video may start again after a drop.
    pub keyframe: bool,
}

/// An item a media queue holds.
pub trait Queued {
    /// Payload bytes, counted against [`QueueLimits::max_bytes`].
    fn bytes(&self) -> usize;
    /// `Some` for media that may be dropped; `None` for what never is
    /// (metadata, sequence headers, notices), which also does not count
    /// towards the queue's length in time.
    fn media(&self) -> Option<Media>;
}

/// `newer - older` for 32-bit wrapping timestamps; `None` when `newer` is
/// in fact older (a jump back, a reordering).
pub fn ms_between(older: u32, newer: u32) -> Option<u32> {
    let d = newer.wrapping_sub(older);
    (d < u32::MAX / 2).then_some(d)
}

/// Items in order, their bytes counted, and the keyframe gate.
#[derive(Debug)]
pub struct MediaDeque<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// Video is refused until the next keyframe.
    skipping: bool,
}

impl<T> Default for MediaDeque<T> {
    fn default() -> Self {
        MediaDeque { items: VecDeque::new(), bytes: 0, skipping: false }
    }
}

impl<T: Queued> MediaDeque<T> {
    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.items.iter()
    }

    /// Appends an item (the caller decided it is admitted).
    pub fn push_back(&mut self, item: T) {
        self.bytes += item.bytes();
        self.items.push_back(item);
    }

    /// The oldest item.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        self.bytes -= item.bytes();
        Some(item)
    }

    /// Moves up to `max` of the oldest items into `out`; their bytes.
    pub fn drain_into(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let n = self.items.len().min(max);
        let mut freed = 0;
        for item in self.items.drain(..n) {
            freed += item.bytes();
            out.push(item);
        }
        self.bytes -= freed;
        freed
    }

    /// Empties the queue.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Keeps the items `keep` accepts; the bytes follow.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
        self.bytes = self.items.iter().map(Queued::bytes).sum();
    }

    /// Drops every media item (what never drops stays); the video and
    /// audio items dropped.
    pub fn drop_media(&mut self) -> (u64, u64) {
        let (mut video, mut audio) = (0u64, 0u64);
        self.retain(|i| match i.media() {
            Some(m) if m.video => {
                video += 1;
                false
            }
            Some(_) => {
                audio += 1;
                false
            }
            None => true,
        });
        (video, audio)
    }

    /// Timestamp of the oldest media item after the first `skip` items.
    pub fn oldest_media_ts(&self, skip: usize) -> Option<u32> {
        self.items.iter().skip(skip).find_map(|i| i.media().map(|m| m.timestamp))
    }

    /// Milliseconds of media held: newest minus oldest media timestamp.
    pub fn span_ms(&self) -> u32 {
        let first = self.items.iter().find_map(|i| i.media());
        let last = self.items.iter().rev().find_map(|i| i.media());
        match (first, last) {
            (Some(a), Some(b)) => ms_between(a.timestamp, b.timestamp).unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether media at `timestamp` with `extra` bytes would pass the
    /// bounds, measured from the oldest media after the first `skip` items:
    /// (too long, too big).
    pub fn over(&self, limits: QueueLimits, timestamp: u32, extra: usize, skip: usize) -> (bool, bool) {
        let too_long = self
            .oldest_media_ts(skip)
            .and_then(|oldest| ms_between(oldest, timestamp))
            .is_some_and(|span| span > limits.max_ms);
        (too_long, self.bytes + extra > limits.max_bytes)
    }

    /// From now on video is refused until a keyframe.
    pub fn skip_to_keyframe(&mut self) {
        self.skipping = true;
    }

    /// True while video waits for a keyframe.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// The keyframe gate for a video item: a keyframe opens it; `false`
    /// when the item must be dropped.
    pub fn admit_video(&mut self, keyframe: bool) -> bool {
        if self.skipping && keyframe {
            self.skipping = false;
        }
        !self.skipping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Item(Option<Media>, usize);
    impl Queued for Item {
        fn bytes(&self) -> usize {
            self.1
        }
        fn media(&self) -> Option<Media> {
            self.0
        }
    }
    fn video(ts: u32, keyframe: bool) -> Item {
        Item(Some(Media { timestamp: ts, video: true, keyframe }), 10)
    }
    fn config() -> Item {
        Item(None, 5)
    }

    #[test]
    fn bytes_follow_every_change() {
        let mut q = MediaDeque::default();
        q.push_back(config());
        for i in 0..5 {
            q.push_back(video(i * 100, i == 0));
        }
        assert_eq!(q.bytes(), 55);
        assert_eq!(q.span_ms(), 400);
        assert_eq!(q.pop_front(), Some(config()));
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 2), 20);
        assert_eq!(q.bytes(), 30);
        q.push_back(config());
        assert_eq!(q.drop_media(), (3, 0));
        assert_eq!((q.len(), q.bytes()), (1, 5), "configuration stays");
    }

    #[test]
    fn the_bounds_count_media_only_and_wrap() {
        let limits = QueueLimits { max_ms: 1000, max_bytes: 100 };
        let mut q = MediaDeque::default();
        q.push_back(config());
        q.push_back(video(u32::MAX - 499, true));
        assert_eq!(q.over(limits, 500, 0, 0), (false, false), "1000 ms across the wrap is within");
        assert_eq!(q.over(limits, 501, 0, 0), (true, false));
        assert_eq!(q.over(limits, 501, 0, 2), (false, false), "skipped items do not count");
        assert_eq!(q.over(limits, 0, 90, 0), (false, true));
        assert!(!q.over(limits, u32::MAX - 600, 0, 0).0, "an older timestamp is not a backlog");
    }

    #[test]
    fn after_a_drop_video_waits_for_a_keyframe() {
        let mut q = MediaDeque::<Item>::default();
        assert!(q.admit_video(false));
        q.skip_to_keyframe();
        assert!(!q.admit_video(false));
        assert!(q.admit_video(true));
        assert!(q.admit_video(false));
    }
}
