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

use super::SERVER_CHUNK_SIZE;
use bytes::Bytes;
use super::hub_message::HubMessage;
use super::outbox::Outbox;
pub use crate::net::media_queue::{PushOutcome, QueueLimits};
use crate::net::media_queue::{Media, MediaDeque, Queued};
use crate::rtmp::MediaKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::net::TcpStream;

/// Most messages written through in one vectored write (the hub's batches
/// are a video frame and the audio held for it).
const MAX_THROUGH: usize = super::outbox::MAX_IOV;

/// An RTMP player's socket, for the fan-out to write to itself.
///
/// A message with nothing waiting ahead of it (an empty queue, an empty
/// outbox, no batch in the connection task's hands) goes from the
/// publisher's task straight into the player's socket: no wake-up of the
/// player's task, no second pass over the queue — the way nginx-rtmp writes
/// to its players from its event loop. Only what the socket does not take
/// wakes the task, which then waits for the socket to drain.
pub struct DirectSink {
    /// The player's connection.
    pub socket: Arc<TcpStream>,
    /// The connection's outbox, shared with its task: bytes go to the socket
    /// in the order they enter it, and only from under its lock.
    pub out: Arc<Mutex<Outbox>>,
    /// The player's message stream id.
    pub stream_id: u32,
    /// The connection's outgoing chunk size.
    pub chunk_size: u32,
}

/// Locks an outbox; a panic elsewhere while it was held leaves bytes that
/// are still whole buffers, so its state stays usable.
pub fn lock_out(out: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

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
    /// Where media may be written through (see [`DirectSink`]).
    direct: Option<DirectSink>,
    /// The consumer holds drained items it has not yet put into the outbox:
    /// nothing may be written through until it has (it would overtake them).
    taken: bool,
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
                direct: None,
                taken: false,
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

    /// Lets the fan-out write media straight to the player's socket.
    pub fn with_direct(self, sink: DirectSink) -> Self {
        self.lock().direct = Some(sink);
        self
    }

    /// The consumer has put what it drained into the outbox.
    pub fn rendered(&self) {
        self.lock().taken = false;
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
        match item {
            PlayerItem::Media(m) => self.push_media(std::slice::from_ref(&m), &mut Vec::new()),
            notice => {
                let mut g = self.lock();
                if g.closed {
                    return PushOutcome::Closed;
                }
                g.items.push_back(notice);
                let waker = g.waker.take();
                drop(g);
                wake(waker);
                PushOutcome::Queued
            }
        }
    }

    /// Queues messages of the stream, in order, without blocking; those
    /// with nothing ahead of them are written through to the player's
    /// socket, all in one vectored write (see [`DirectSink`]). `scratch` is
    /// the caller's, reused across players. `Dropped` if the last message
    /// was dropped (a player skipping to a keyframe), `Closed` if the
    /// player is gone.
    pub fn push_media(&self, msgs: &[Arc<HubMessage>], scratch: &mut Vec<Bytes>) -> PushOutcome {
        let mut g = self.lock();
        if g.closed {
            return PushOutcome::Closed;
        }
        scratch.clear();
        let mut outcome = PushOutcome::Queued;
        let mut queued = false;
        let mut through = 0u64;
        for m in msgs {
            let item = PlayerItem::Media(m.clone());
            outcome = self.admit(&mut g, &item);
            match outcome {
                PushOutcome::Closed => {
                    let waker = g.waker.take();
                    drop(g);
                    wake(waker);
                    return PushOutcome::Closed;
                }
                PushOutcome::Dropped => continue,
                PushOutcome::Queued => {}
            }
            // Written through only with nothing queued ahead (and nothing
            // in the task's hands); bytes waiting in the outbox keep it
            // queued, where falling behind is judged.
            let through_ok = g.items.is_empty()
                && !g.taken
                && g.direct.as_ref().is_some_and(|d| scratch.len() < MAX_THROUGH && (!scratch.is_empty() || lock_out(&d.out).is_empty()));
            match g.direct.as_ref().filter(|_| through_ok) {
                Some(d) => {
                    // A message that cannot be chunked: the consumer would skip it too.
                    if let Some(bytes) = m.rtmp_bytes(d.stream_id, d.chunk_size, SERVER_CHUNK_SIZE) {
                        scratch.push(bytes);
                        through += m.payload.len() as u64;
                    }
                }
                None => {
                    g.items.push_back(item);
                    queued = true;
                }
            }
        }
        let mut wake_task = queued;
        if !scratch.is_empty()
            && let Some(d) = &g.direct
        {
            // Not everything taken: the rest waits in the outbox, and the
            // task must watch the socket.
            wake_task |= !lock_out(&d.out).write_through(&d.socket, scratch);
            self.delivered.fetch_add(through, Ordering::Relaxed);
        }
        if wake_task {
            let waker = g.waker.take();
            drop(g);
            wake(waker);
        }
        outcome
    }

    /// Whether a message may join the queue: configuration never waits
    /// (`Queued`); media behind by more than the limits throws the backlog
    /// away and restarts at a keyframe, or kicks a player that keeps
    /// falling behind (`Closed`); video before that keyframe is `Dropped`.
    fn admit(&self, g: &mut Inner, item: &PlayerItem) -> PushOutcome {
        let Some(media) = item.media() else {
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
                g.direct = None;
                return PushOutcome::Closed;
            }
        }
        if media.video && !g.items.admit_video(media.keyframe) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        PushOutcome::Queued
    }

    /// Moves up to `max` items into `out` (oldest first).
    pub fn drain(&self, out: &mut Vec<PlayerItem>, max: usize) {
        let mut g = self.lock();
        self.take(&mut g, out, max);
        g.taken = g.direct.is_some() && !out.is_empty();
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
            g.taken = g.direct.is_some();
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
        g.direct = None;
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

    /// A queue writing through to a loopback connection, and that connection's far end.
    async fn direct_pair() -> (PlayerQueue, Arc<Mutex<Outbox>>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move { TcpStream::connect(addr).await });
        let (server, _) = listener.accept().await.expect("accept");
        let client = client.await.expect("join").expect("connect");
        let out = Arc::new(Mutex::new(Outbox::default()));
        let sink = DirectSink { socket: Arc::new(server), out: out.clone(), stream_id: 1, chunk_size: SERVER_CHUNK_SIZE };
        (PlayerQueue::new(limits(), "127.0.0.1:1", PlayerProtocol::Rtmp).with_direct(sink), out, client)
    }

    /// Wakes counted.
    struct Counter(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rtmp(item: &PlayerItem) -> Bytes {
        match item {
            PlayerItem::Media(m) => m.rtmp_bytes(1, SERVER_CHUNK_SIZE, SERVER_CHUNK_SIZE).expect("chunked"),
            _ => Bytes::new(),
        }
    }

    async fn read_exactly(client: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = vec![0u8; n];
        tokio::time::timeout(std::time::Duration::from_secs(5), client.read_exact(&mut got)).await.expect("in time").expect("read");
        got
    }

    #[tokio::test]
    async fn media_with_nothing_ahead_goes_straight_to_the_socket_without_waking_the_player() {
        let (q, out, mut client) = direct_pair().await;
        let counter = Arc::new(Counter(Default::default()));
        let waker = Waker::from(counter.clone());
        let mut taken = Vec::new();
        assert!(q.poll_drain(&mut Context::from_waker(&waker), &mut taken, 8).is_pending());
        let (first, second) = (v(0, true), a(10));
        assert_eq!(q.push(first.clone()), PushOutcome::Queued);
        assert_eq!(q.push(second.clone()), PushOutcome::Queued);
        let want = [rtmp(&first), rtmp(&second)].concat();
        assert_eq!(read_exactly(&mut client, want.len()).await, want);
        assert_eq!(counter.0.load(Ordering::Relaxed), 0, "the player's task was woken");
        assert!(lock_out(&out).is_empty() && q.lock().items.is_empty());
        assert_eq!(q.info().bytes_out, 9);
    }

    #[tokio::test]
    async fn nothing_overtakes_what_the_player_holds_or_what_waits_in_its_outbox() {
        let (q, out, mut client) = direct_pair().await;
        // A notice queues; once the player has taken it, media queue behind it.
        q.push(PlayerItem::Published);
        let mut taken = Vec::new();
        q.drain(&mut taken, 8);
        assert_eq!(taken.len(), 1);
        let held = v(0, true);
        q.push(held.clone());
        assert_eq!(q.lock().items.len(), 1, "written past a batch the player had not rendered");
        lock_out(&out).push(Bytes::from_static(b"notice"));
        q.rendered();
        // Still queued media ahead: the next one queues too.
        let next = a(5);
        q.push(next.clone());
        assert_eq!(q.lock().items.len(), 2);
        taken.clear();
        q.drain(&mut taken, 8);
        for item in &taken {
            lock_out(&out).push(rtmp(item));
        }
        q.rendered();
        // Bytes waiting in the outbox: media queue, not written past them.
        let later = a(10);
        q.push(later.clone());
        assert_eq!(q.lock().items.len(), 1, "written past the outbox");
        let want = [&b"notice"[..], &rtmp(&held), &rtmp(&next)].concat();
        let socket = q.lock().direct.as_ref().map(|d| d.socket.clone()).expect("direct");
        std::future::poll_fn(|cx| lock_out(&out).poll_write(&socket, cx)).await.expect("write");
        assert_eq!(read_exactly(&mut client, want.len()).await, want);
    }

    #[tokio::test]
    async fn behind_a_player_that_stopped_reading_media_queues_and_skips() {
        let (q, out, _client) = direct_pair().await;
        let big = |ts: u32, key: bool| {
            let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
            body.resize(256 << 10, 7);
            PlayerItem::Media(HubMessage::new(MediaKind::Video, ts, Bytes::from(body)))
        };
        // The socket fills, the rest of a message waits in the outbox, and
        // from then on media queue where the skipping judges them.
        let mut ts = 0;
        while lock_out(&out).is_empty() {
            assert!(ts < 100_000, "64 MB went into a socket nobody reads");
            q.push(big(ts, ts % 1000 == 0));
            ts += 40;
        }
        for _ in 0..40 {
            q.push(big(ts, ts % 1000 == 0));
            ts += 40;
        }
        assert!(q.info().skips > 0, "a player that reads nothing never fell behind");
    }
}
