//! One bounded queue per player, between the publisher's fan-out (which must
//! never wait) and the player's connection task.
//!
//! Bounded in milliseconds of media and in bytes. A player that falls behind
//! (its socket drains slower than the stream arrives) skips: its backlog of
//! media is thrown away and it resumes at the next keyframe, live again —
//! metadata and sequence headers are never dropped. A player that needs to
//! skip more than [`PlayerLimits::max_skips`] times within
//! [`PlayerLimits::skip_window_ms`] of media cannot keep up at all and is
//! disconnected with a reason. Neither slows the publisher or other players.

use super::message::HubMessage;
pub use crate::net::media_queue::{PushOutcome, QueueLimits};
use crate::net::media_queue::{Media, MediaDeque, Queued};
use crate::rtmp::MediaKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Limits of one player queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerLimits {
    /// Most media queued (newest minus oldest timestamp) and bytes before skipping.
    pub queue: QueueLimits,
    /// Skips tolerated within `skip_window_ms` of media before disconnecting.
    pub max_skips: usize,
    /// See `max_skips`.
    pub skip_window_ms: u32,
}

impl PlayerLimits {
    /// For a player on loopback or a LAN: 3 s of media (a slow start or a
    /// hiccup passes), 32 MiB, three skips in 30 s.
    pub const PLAYER: PlayerLimits =
        PlayerLimits { queue: QueueLimits { max_ms: 3_000, max_bytes: 32 << 20 }, max_skips: 3, skip_window_ms: 30_000 };
}

/// What flows to a player.
#[derive(Clone, Debug)]
pub enum PlayerItem {
    /// A message of the stream.
    Media(Arc<HubMessage>),
    /// A publisher started: tell the player (StreamBegin, PublishNotify).
    Published,
    /// The publisher left: tell the player (StreamEOF, UnpublishNotify); it waits.
    Unpublished,
}

impl Queued for PlayerItem {
    fn bytes(&self) -> usize {
        match self {
            PlayerItem::Media(m) => m.payload.len(),
            _ => 0,
        }
    }

    /// Config messages do not count towards the queue's length in time:
    /// they are replayed, not late.
    fn media(&self) -> Option<Media> {
        match self {
            PlayerItem::Media(m) if !m.config => {
                Some(Media { timestamp: m.timestamp, video: m.kind == MediaKind::Video, keyframe: m.keyframe })
            }
            _ => None,
        }
    }
}

struct Inner {
    items: MediaDeque<PlayerItem>,
    /// Items at the front that are the joiner's start (metadata, headers,
    /// the cached GOP): old by design, so they do not count as falling behind.
    burst: usize,
    /// Media timestamps of recent skips.
    skips: VecDeque<u32>,
    closed: bool,
    kicked: Option<String>,
    /// The consumer waiting for items. Kept under the queue's own lock, so
    /// waking costs no second lock (a fan-out to hundreds of players does
    /// this for every message).
    waker: Option<Waker>,
}

/// What [`PlayerQueue::poll_drain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained {
    /// Items were moved out.
    Items,
    /// The player is gone: closed by its connection, by the server
    /// stopping, or kicked for being too slow (the reason).
    Closed(Option<String>),
}

/// How a player reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlayerProtocol {
    /// RTMP `play`.
    Rtmp,
    /// `GET /app/name.flv`.
    HttpFlv,
}

/// One player as `/api/streams` lists it: who it is and how well it keeps up.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlayerInfo {
    /// The player's address (`ip:port`).
    pub peer: String,
    /// RTMP or HTTP-FLV.
    pub protocol: PlayerProtocol,
    /// Media waiting in its queue, ms.
    pub queue_ms: u32,
    /// Times it fell behind and was skipped to the next keyframe.
    pub skips: u64,
    /// Video frames it lost to skipping.
    pub dropped_frames: u64,
    /// Payload bytes handed to its connection.
    pub bytes_out: u64,
}

/// The queue of one player.
pub struct PlayerQueue {
    inner: Mutex<Inner>,
    limits: PlayerLimits,
    peer: String,
    protocol: PlayerProtocol,
    /// Video frames dropped by skipping.
    pub dropped: AtomicU64,
    /// Times the player was skipped to the next keyframe.
    pub skips: AtomicU64,
    /// Payload bytes handed to the connection.
    pub delivered: AtomicU64,
}

impl std::fmt::Debug for PlayerQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayerQueue").field("peer", &self.peer).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl PlayerQueue {
    /// An empty queue for the player at `peer`.
    pub fn new(limits: PlayerLimits, peer: &str, protocol: PlayerProtocol) -> Self {
        PlayerQueue {
            inner: Mutex::new(Inner {
                items: MediaDeque::default(),
                burst: 0,
                skips: VecDeque::new(),
                closed: false,
                kicked: None,
                waker: None,
            }),
            limits,
            peer: peer.to_string(),
            protocol,
            dropped: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    /// A snapshot for the API.
    pub fn info(&self) -> PlayerInfo {
        PlayerInfo {
            peer: self.peer.clone(),
            protocol: self.protocol,
            queue_ms: self.depth_ms(),
            skips: self.skips.load(Ordering::Relaxed),
            dropped_frames: self.dropped.load(Ordering::Relaxed),
            bytes_out: self.delivered.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a new player's start — metadata, sequence headers and the
    /// cached GOP, which may span many seconds of a long GOP — as is: how far
    /// behind the player falls is measured from what arrives after it.
    pub fn push_start(&self, items: impl IntoIterator<Item = PlayerItem>) {
        let mut g = self.lock();
        if g.closed {
            return;
        }
        for item in items {
            g.items.push_back(item);
            g.burst += 1;
        }
        let waker = g.waker.take();
        drop(g);
        wake(waker);
    }

    /// Queues an item without blocking.
    pub fn push(&self, item: PlayerItem) -> PushOutcome {
        let mut g = self.lock();
        if g.closed {
            return PushOutcome::Closed;
        }
        let Some(media) = item.media() else {
            // Configuration and notices: never dropped.
            g.items.push_back(item);
            let waker = g.waker.take();
            drop(g);
            wake(waker);
            return PushOutcome::Queued;
        };
        let (too_long, too_big) = g.items.over(self.limits.queue, media.timestamp, item.bytes(), g.burst);
        if too_long || too_big {
            // Behind: throw the backlog away and restart at a keyframe.
            let (video, audio) = g.items.drop_media();
            g.burst = 0;
            self.dropped.fetch_add(video + audio, Ordering::Relaxed);
            self.skips.fetch_add(1, Ordering::Relaxed);
            g.items.skip_to_keyframe();
            let window = self.limits.skip_window_ms;
            g.skips.push_back(media.timestamp);
            while g.skips.front().is_some_and(|&t| media.timestamp.wrapping_sub(t) > window) {
                g.skips.pop_front();
            }
            if g.skips.len() > self.limits.max_skips {
                g.closed = true;
                g.kicked = Some(format!(
                    "too slow: fell more than {} ms behind {} times within {} s",
                    self.limits.queue.max_ms,
                    g.skips.len(),
                    window / 1000
                ));
                g.items.clear();
                let waker = g.waker.take();
                drop(g);
                wake(waker);
                return PushOutcome::Closed;
            }
        }
        if media.video && !g.items.admit_video(media.keyframe) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        g.items.push_back(item);
        let waker = g.waker.take();
        drop(g);
        wake(waker);
        PushOutcome::Queued
    }

    /// Moves up to `max` items into `out` (oldest first).
    pub fn drain(&self, out: &mut Vec<PlayerItem>, max: usize) {
        let mut g = self.lock();
        self.take(&mut g, out, max);
    }

    fn take(&self, g: &mut Inner, out: &mut Vec<PlayerItem>, max: usize) {
        g.burst = g.burst.saturating_sub(g.items.len().min(max));
        let freed = g.items.drain_into(out, max);
        self.delivered.fetch_add(freed as u64, Ordering::Relaxed);
    }

    /// Moves up to `max` items into `out`, or registers `cx` to be woken by
    /// the next push (or close) and returns `Pending`.
    pub fn poll_drain(&self, cx: &mut Context<'_>, out: &mut Vec<PlayerItem>, max: usize) -> Poll<Drained> {
        let mut g = self.lock();
        if g.closed {
            return Poll::Ready(Drained::Closed(g.kicked.clone()));
        }
        if !g.items.is_empty() {
            self.take(&mut g, out, max);
            return Poll::Ready(Drained::Items);
        }
        if !g.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            g.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for items (see [`PlayerQueue::poll_drain`]).
    pub async fn drain_wait(&self, out: &mut Vec<PlayerItem>, max: usize) -> Drained {
        std::future::poll_fn(|cx| self.poll_drain(cx, out, max)).await
    }

    /// Why the player was disconnected for being slow, if it was.
    pub fn kicked(&self) -> Option<String> {
        self.lock().kicked.clone()
    }

    /// The player left (or the server stops): the fan-out forgets it and
    /// its connection, if waiting, wakes up to find it closed.
    pub fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.items.clear();
        let waker = g.waker.take();
        drop(g);
        wake(waker);
    }

    /// True once closed (left or kicked).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Media queued, ms (newest minus oldest).
    pub fn depth_ms(&self) -> u32 {
        self.lock().items.span_ms()
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn v(ts: u32, key: bool) -> PlayerItem {
        PlayerItem::Media(HubMessage::new(MediaKind::Video, ts, Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 7])))
    }
    fn a(ts: u32) -> PlayerItem {
        PlayerItem::Media(HubMessage::new(MediaKind::Audio, ts, Bytes::from_static(&[0xAF, 1, 5])))
    }
    fn limits() -> PlayerLimits {
        PlayerLimits { queue: QueueLimits { max_ms: 1000, max_bytes: 1 << 20 }, max_skips: 2, skip_window_ms: 10_000 }
    }

    #[test]
    fn a_joiners_long_cached_start_is_not_falling_behind() {
        let q = PlayerQueue::new(PlayerLimits::PLAYER, "t", PlayerProtocol::Rtmp);
        // Eight seconds of cached GOP, then live media right behind it.
        let start: Vec<PlayerItem> = (0..240u32).map(|i| v(i * 33, i == 0)).collect();
        q.push_start(start);
        for i in 240..250u32 {
            assert_eq!(q.push(v(i * 33, false)), PushOutcome::Queued, "frame {i}");
        }
        assert_eq!(q.info().skips, 0, "the start does not count");
        // But live media piling up past the bound still does.
        let mut skipped = false;
        for i in 250..400u32 {
            skipped |= q.push(v(i * 33, false)) != PushOutcome::Queued;
        }
        assert!(skipped || q.info().skips > 0, "3 s of live backlog must skip");
    }

    #[test]
    fn a_slow_player_skips_to_the_next_keyframe_keeping_headers() {
        let q = PlayerQueue::new(limits(), "127.0.0.1:1", PlayerProtocol::Rtmp);
        q.push(PlayerItem::Media(HubMessage::new(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))));
        // Nobody drains: at 1100 ms the queue holds more than 1000 ms.
        for i in 0..=11u32 {
            q.push(v(i * 100, i % 10 == 0));
        }
        // The backlog is gone, the sequence header is kept.
        let mut out = Vec::new();
        q.drain(&mut out, 1000);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(&out[0], PlayerItem::Media(m) if m.config));
        // Video waits for the next keyframe; audio goes on meanwhile.
        for i in 12..=21u32 {
            q.push(v(i * 100, i % 10 == 0));
            q.push(a(i * 100));
        }
        out.clear();
        q.drain(&mut out, 1000);
        let first_video = out.iter().find_map(|i| match i {
            PlayerItem::Media(m) if m.kind == MediaKind::Video => Some((m.timestamp, m.keyframe)),
            _ => None,
        });
        assert_eq!(first_video, Some((2000, true)));
        assert!(matches!(&out[0], PlayerItem::Media(m) if m.kind == MediaKind::Audio && m.timestamp == 1200));
        // 11 flushed, then 1100..=1900 skipped while waiting for the keyframe.
        assert_eq!(q.dropped.load(Ordering::Relaxed), 11 + 9);
        assert!(q.kicked().is_none());
    }

    #[test]
    fn a_player_that_never_catches_up_is_disconnected() {
        let q = PlayerQueue::new(limits(), "127.0.0.1:1", PlayerProtocol::Rtmp);
        let mut pushed_after_kick = false;
        for i in 0..100u32 {
            let ok = q.push(v(i * 100, i % 10 == 0)) == PushOutcome::Queued;
            if q.is_closed() && ok {
                pushed_after_kick = true;
            }
        }
        assert!(q.is_closed());
        assert!(!pushed_after_kick);
        assert!(q.kicked().unwrap().contains("too slow"));
    }

    #[test]
    fn notices_are_never_dropped_and_wake_the_consumer() {
        let q = PlayerQueue::new(limits(), "127.0.0.1:1", PlayerProtocol::Rtmp);
        assert_eq!(q.push(PlayerItem::Unpublished), PushOutcome::Queued);
        assert_eq!(q.push(PlayerItem::Published), PushOutcome::Queued);
        let mut out = Vec::new();
        q.drain(&mut out, 10);
        assert_eq!(out.len(), 2);
        q.close();
        assert_eq!(q.push(PlayerItem::Published), PushOutcome::Closed);
    }
}
