//! The stream registry: one [`StreamHub`] per app + stream name, holding the
//! publisher, what a new player needs at once (metadata, sequence headers,
//! the current GOP), and the players' queues.
//!
//! A published message is wrapped once in an `Arc<HubMessage>`; its RTMP
//! chunking and its FLV tag form are computed at most once, on first use,
//! and the same bytes go to every player (`Bytes` clones, no copies).
//! Publishing never waits for a player: pushes into player queues never
//! block (see [`super::player_queue`]).

use super::hub_message::HubMessage;
use super::player_queue::{PlayerInfo, PlayerItem, PlayerQueue, PushOutcome};
use crate::rtmp::MediaKind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};
use tokio::sync::Notify;

/// Most media held in the GOP cache: a GOP longer than this (a publisher
/// with a 20-second keyframe interval) is cached only from its most recent
/// part onward — players then start at the next keyframe instead.
pub const MAX_GOP_BYTES: usize = 16 << 20;
/// Most messages held in the GOP cache.
pub const MAX_GOP_MESSAGES: usize = 4096;
/// Longest audio waits, in media time, to travel with the next message:
/// under one video frame at 25 fps, so a stream with video never holds
/// audio past its next frame, and an audio-only stream sends every 2-3 AAC
/// frames.
pub const HOLD_AUDIO_MS: u32 = 40;
/// Most audio messages held at once.
const MAX_HELD_AUDIO: usize = 4;

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRefusal {
    /// onStatus code.
    pub code: &'static str,
    /// onStatus description.
    pub description: String,
}

/// The publisher side of a hub, as the registry tracks it.
#[derive(Debug)]
struct Publisher {
    id: u64,
    peer: String,
    since: SystemTime,
    started: Instant,
    /// Set (and notified) when another publisher takes the stream over.
    kicked: Arc<Kick>,
}

/// A flag + wake-up: "stop, someone replaced you".
#[derive(Debug, Default)]
pub struct Kick {
    flag: AtomicBool,
    notify: Notify,
}

impl Kick {
    /// Raises the flag and wakes the waiter.
    pub fn kick(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
    /// True once kicked.
    pub fn is_kicked(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Resolves once kicked.
    pub async fn wait(&self) {
        while !self.is_kicked() {
            self.notify.notified().await;
        }
    }
}

#[derive(Default)]
struct HubState {
    publisher: Option<Publisher>,
    metadata: Option<Arc<HubMessage>>,
    video_header: Option<Arc<HubMessage>>,
    audio_header: Option<Arc<HubMessage>>,
    /// From the latest video keyframe on (audio interleaved), newest last.
    gop: Vec<Arc<HubMessage>>,
    gop_bytes: usize,
    players: Vec<Arc<PlayerQueue>>,
    /// Audio waiting to travel with the next message (see [`HOLD_AUDIO_MS`]).
    held: Vec<Arc<HubMessage>>,
    /// The players' write-through buffers, reused.
    scratch: Vec<bytes::Bytes>,
    /// Video size and frame rate from onMetaData, for the API.
    video_info: Option<(u32, u32, f64)>,
}

/// One stream: its publisher, its cached start, its players.
pub struct StreamHub {
    /// Application.
    pub app: String,
    /// Stream name (key and query stripped).
    pub name: String,
    state: Mutex<HubState>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub").field("app", &self.app).field("name", &self.name).finish_non_exhaustive()
    }
}

/// A snapshot of one stream for `/api/streams` and the UI.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StreamInfo {
    /// Application.
    pub app: String,
    /// Stream name.
    pub name: String,
    /// Whether a publisher is live.
    pub live: bool,
    /// The publisher's address.
    pub publisher: Option<String>,
    /// Since when it publishes (seconds since the Unix epoch).
    pub publishing_since: Option<u64>,
    /// Players connected (RTMP and HTTP-FLV).
    pub players: usize,
    /// Each of them, in the order they joined.
    pub player_list: Vec<PlayerInfo>,
    /// Average kbit/s received since the publisher started.
    pub kbps_in: f64,
    /// Payload bytes received / delivered to players, since the hub exists.
    pub bytes_in: u64,
    /// See [`StreamInfo::bytes_in`].
    pub bytes_out: u64,
    /// Video width, height and frame rate from the publisher's metadata.
    pub video: Option<(u32, u32, f64)>,
}

impl StreamHub {
    fn new(app: &str, name: &str) -> Self {
        StreamHub {
            app: app.to_string(),
            name: name.to_string(),
            state: Mutex::new(HubState::default()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic under this lock leaves consistent plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers publisher `id`. With `takeover`, a live publisher is kicked
    /// (its connection ends it with an onStatus); without, this one is refused.
    pub fn start_publishing(&self, id: u64, peer: &str, takeover: bool) -> Result<Arc<Kick>, PublishRefusal> {
        let mut st = self.lock();
        if let Some(old) = &st.publisher {
            if !takeover {
                return Err(PublishRefusal {
                    code: "NetStream.Publish.BadName",
                    description: format!("{}/{} is already being published", self.app, self.name),
                });
            }
            tracing::info!(app = %self.app, stream = %self.name, old = %old.peer, new = %peer, "publisher takes over");
            old.kicked.kick();
            self.flush_held(&mut st);
            Self::clear_media(&mut st);
            for p in &st.players {
                p.push(PlayerItem::Unpublished);
            }
        }
        let kicked = Arc::new(Kick::default());
        st.publisher =
            Some(Publisher { id, peer: peer.to_string(), since: SystemTime::now(), started: Instant::now(), kicked: kicked.clone() });
        for p in &st.players {
            p.push(PlayerItem::Published);
        }
        Ok(kicked)
    }

    fn clear_media(st: &mut HubState) {
        st.metadata = None;
        st.video_header = None;
        st.audio_header = None;
        st.gop.clear();
        st.gop_bytes = 0;
        st.video_info = None;
    }

    /// Ends publisher `id` (no-op if it was already replaced); players are told.
    pub fn stop_publishing(&self, id: u64) {
        let mut st = self.lock();
        if st.publisher.as_ref().is_some_and(|p| p.id == id) {
            self.flush_held(&mut st);
            st.publisher = None;
            Self::clear_media(&mut st);
            for p in &st.players {
                p.push(PlayerItem::Unpublished);
            }
        }
    }

    /// Fans a message of publisher `id` out to every player and updates the cache.
    ///
    /// Audio (not its sequence header) is held until the next message of
    /// the stream, for at most [`HOLD_AUDIO_MS`] of media, and travels with
    /// it: a player gets a video frame and the audio before it in one
    /// write, one TCP segment, instead of two or three. Segments, not
    /// bytes, are most of what a fan-out costs the kernel (a third of the
    /// server's CPU, `docs/PERFORMANCE.md`); what it costs the audio is at
    /// most that long on its way, which a player's buffer of a second or
    /// more never sees.
    pub fn publish(&self, id: u64, msg: Arc<HubMessage>) {
        let mut st = self.lock();
        if st.publisher.as_ref().is_none_or(|p| p.id != id) {
            return; // a taken-over publisher's last messages
        }
        self.bytes_in.fetch_add(msg.payload.len() as u64, Ordering::Relaxed);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        let hold = msg.kind == MediaKind::Audio
            && !msg.config
            && st.held.len() < MAX_HELD_AUDIO
            && st.held.first().is_none_or(|first| msg.timestamp.wrapping_sub(first.timestamp) < HOLD_AUDIO_MS);
        st.held.push(msg);
        if !hold {
            self.flush_held(&mut st);
        }
    }

    /// Sends what is held to every player, caching it for new ones.
    fn flush_held(&self, st: &mut HubState) {
        let batch = std::mem::take(&mut st.held);
        if batch.is_empty() {
            return;
        }
        for msg in &batch {
            Self::cache(st, msg);
        }
        let len: u64 = batch.iter().map(|m| m.payload.len() as u64).sum();
        let mut delivered = 0u64;
        let HubState { players, scratch, .. } = st;
        players.retain(|p| match p.push_media(&batch, scratch) {
            PushOutcome::Queued | PushOutcome::Dropped => {
                delivered += len;
                true
            }
            PushOutcome::Closed => false,
        });
        self.bytes_out.fetch_add(delivered, Ordering::Relaxed);
        // The allocation is kept for the next batch.
        st.held = batch;
        st.held.clear();
    }

    /// What a new player starts with: metadata, sequence headers, the GOP.
    fn cache(st: &mut HubState, msg: &Arc<HubMessage>) {
        match (msg.kind, msg.config) {
            (MediaKind::Data, _) => {
                st.video_info = video_info(&msg.payload);
                st.metadata = Some(msg.clone());
            }
            (MediaKind::Video, true) => st.video_header = Some(msg.clone()),
            (MediaKind::Audio, true) => st.audio_header = Some(msg.clone()),
            _ => {
                if msg.keyframe {
                    st.gop.clear();
                    st.gop_bytes = 0;
                }
                // Audio before the first keyframe is useless to a new player.
                let has_key = st.gop.first().is_some_and(|m| m.keyframe);
                if (msg.keyframe || has_key) && st.gop.len() < MAX_GOP_MESSAGES && st.gop_bytes + msg.payload.len() <= MAX_GOP_BYTES {
                    st.gop_bytes += msg.payload.len();
                    st.gop.push(msg.clone());
                } else if has_key {
                    // Over the cap: stop caching this GOP; the next keyframe restarts it.
                    st.gop.clear();
                    st.gop_bytes = 0;
                }
            }
        }
    }

    /// Adds a player. If a publisher is live it gets metadata, sequence
    /// headers and the cached GOP at once, then live media.
    pub fn add_player(&self, player: Arc<PlayerQueue>) {
        let mut st = self.lock();
        if st.publisher.is_some() {
            let start = st.metadata.iter().chain(&st.video_header).chain(&st.audio_header).chain(st.gop.iter());
            player.push_start(start.map(|m| PlayerItem::Media(m.clone())));
        }
        st.players.push(player);
    }

    /// Removes a player.
    pub fn remove_player(&self, player: &Arc<PlayerQueue>) {
        self.lock().players.retain(|p| !Arc::ptr_eq(p, player));
    }

    /// True when nothing uses the hub any more.
    fn is_idle(&self) -> bool {
        let st = self.lock();
        st.publisher.is_none() && st.players.iter().all(|p| p.is_closed())
    }

    /// Whether a publisher is live.
    pub fn is_live(&self) -> bool {
        self.lock().publisher.is_some()
    }

    /// A snapshot for the API.
    pub fn info(&self) -> StreamInfo {
        let st = self.lock();
        let pubr = st.publisher.as_ref();
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let secs = pubr.map_or(0.0, |p| p.started.elapsed().as_secs_f64());
        // One pass, so the count always agrees with the list.
        let player_list: Vec<PlayerInfo> = st.players.iter().filter(|p| !p.is_closed()).map(|p| p.info()).collect();
        StreamInfo {
            app: self.app.clone(),
            name: self.name.clone(),
            live: pubr.is_some(),
            publisher: pubr.map(|p| p.peer.clone()),
            publishing_since: pubr.and_then(|p| p.since.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
            players: player_list.len(),
            player_list,
            kbps_in: if secs > 0.5 { bytes_in as f64 * 8.0 / 1000.0 / secs } else { 0.0 },
            bytes_in,
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            video: st.video_info,
        }
    }
}

/// Width, height and frame rate from an onMetaData body.
fn video_info(body: &[u8]) -> Option<(u32, u32, f64)> {
    let (_, meta) = crate::flv::parse_script(body).ok()?;
    let num = |k: &str| meta.get(k).and_then(crate::amf0::Amf0Value::as_number);
    Some((num("width")? as u32, num("height")? as u32, num("framerate").unwrap_or(0.0)))
}

/// Every stream by (app, name).
#[derive(Default)]
pub struct Registry {
    hubs: Mutex<HashMap<(String, String), Arc<StreamHub>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// The hub for `app`/`name`, created on first use (a player may come first).
    pub fn hub(&self, app: &str, name: &str) -> Arc<StreamHub> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.entry((app.to_string(), name.to_string())).or_insert_with(|| Arc::new(StreamHub::new(app, name))).clone()
    }

    /// Drops the hub if nobody publishes or plays it any more.
    pub fn release(&self, hub: &Arc<StreamHub>) {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if hub.is_idle() {
            hubs.remove(&(hub.app.clone(), hub.name.clone()));
        }
    }

    /// Closes every player queue (the server is stopping): each player's
    /// connection wakes and ends.
    pub fn close_all(&self) {
        let hubs: Vec<Arc<StreamHub>> = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for h in hubs {
            for p in h.lock().players.drain(..) {
                p.close();
            }
        }
    }

    /// A fresh id for a publisher.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Snapshots of every stream, sorted by app and name.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let hubs: Vec<Arc<StreamHub>> = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        let mut out: Vec<StreamInfo> = hubs.iter().map(|h| h.info()).collect();
        out.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
        out
    }
}

/// Splits a publish or play name into the stream name and the key it
/// carries, if any: `name?key=KEY` (other query parameters ignored), or a
/// `-KEY` / `_KEY` suffix when `expected` ends the name that way.
pub fn split_key<'a>(raw: &'a str, expected: Option<&str>) -> (&'a str, Option<&'a str>) {
    let (name, query) = match raw.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (raw, None),
    };
    if let Some(q) = query
        && let Some(k) = q.split('&').find_map(|kv| kv.strip_prefix("key="))
    {
        return (name, Some(k));
    }
    if let Some(want) = expected.filter(|k| !k.is_empty()) {
        for sep in ['-', '_'] {
            if let Some(stripped) = name.strip_suffix(want).and_then(|n| n.strip_suffix(sep))
                && !stripped.is_empty()
            {
                return (stripped, Some(&name[stripped.len() + 1..]));
            }
        }
    }
    (name, None)
}

/// Constant-time comparison for the publish key.
pub fn key_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::server::player_queue::{PlayerLimits, PlayerProtocol};
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> Arc<HubMessage> {
        HubMessage::new(MediaKind::Video, ts, Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 1, 2]))
    }

    #[test]
    fn classification() {
        assert!(HubMessage::new(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).config);
        assert!(video(0, true).keyframe && !video(0, true).config);
        assert!(!video(0, false).keyframe);
        assert!(HubMessage::new(MediaKind::Audio, 0, Bytes::from_static(&[0xAF, 0, 0x11, 0x90])).config);
        assert!(!HubMessage::new(MediaKind::Audio, 0, Bytes::from_static(&[0xAF, 1, 1])).config);
    }

    #[test]
    fn keys_in_names() {
        assert_eq!(split_key("cam?key=s3cret&x=1", Some("s3cret")), ("cam", Some("s3cret")));
        assert_eq!(split_key("cam-s3cret", Some("s3cret")), ("cam", Some("s3cret")));
        assert_eq!(split_key("cam_s3cret", Some("s3cret")), ("cam", Some("s3cret")));
        assert_eq!(split_key("cam", Some("s3cret")), ("cam", None));
        assert_eq!(split_key("s3cret", Some("s3cret")), ("s3cret", None));
        assert_eq!(split_key("cam?x=1", None), ("cam", None));
        assert!(key_matches("abc", "abc") && !key_matches("abd", "abc") && !key_matches("ab", "abc"));
    }

    #[test]
    fn late_player_gets_headers_and_gop_then_live() {
        let hub = StreamHub::new("live", "s");
        hub.start_publishing(1, "p", true).unwrap();
        hub.publish(1, HubMessage::new(MediaKind::Data, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData\x05")));
        hub.publish(1, HubMessage::new(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])));
        hub.publish(1, video(0, true));
        hub.publish(1, video(33, false));
        hub.publish(1, video(66, true)); // new GOP
        hub.publish(1, video(100, false));
        let player = Arc::new(PlayerQueue::new(PlayerLimits::PLAYER, "127.0.0.1:2", PlayerProtocol::Rtmp));
        hub.add_player(player.clone());
        hub.publish(1, video(133, false));
        let mut items = Vec::new();
        player.drain(&mut items, 100);
        let ts: Vec<(u32, bool)> = items
            .iter()
            .filter_map(|i| match i {
                PlayerItem::Media(m) => Some((m.timestamp, m.config)),
                _ => None,
            })
            .collect();
        assert_eq!(ts, vec![(0, true), (0, true), (66, false), (100, false), (133, false)]);
        // A second publisher without takeover is refused; with takeover the first is kicked.
        assert!(hub.start_publishing(2, "q", false).is_err());
        let first_kick = {
            let st = hub.lock();
            st.publisher.as_ref().map(|p| p.kicked.clone()).unwrap()
        };
        hub.start_publishing(3, "r", true).unwrap();
        assert!(first_kick.is_kicked());
        hub.publish(1, video(166, true)); // the old one's late message is ignored
        items.clear();
        player.drain(&mut items, 100);
        assert!(matches!(items.as_slice(), [PlayerItem::Unpublished, PlayerItem::Published]), "{items:?}");
    }

    fn audio(ts: u32) -> Arc<HubMessage> {
        HubMessage::new(MediaKind::Audio, ts, Bytes::from_static(&[0xAF, 1, 9]))
    }

    /// (kind, timestamp) of every media item a player has queued; notices as `Data`, `u32::MAX`.
    fn taken(player: &PlayerQueue) -> Vec<(MediaKind, u32)> {
        let mut items = Vec::new();
        player.drain(&mut items, 100);
        items
            .iter()
            .map(|i| match i {
                PlayerItem::Media(m) => (m.kind, m.timestamp),
                _ => (MediaKind::Data, u32::MAX),
            })
            .collect()
    }

    #[test]
    fn audio_travels_with_the_next_message_and_waits_no_longer_than_its_bound() {
        let hub = StreamHub::new("live", "s");
        hub.start_publishing(1, "p", true).unwrap();
        let player = Arc::new(PlayerQueue::new(PlayerLimits::PLAYER, "127.0.0.1:2", PlayerProtocol::Rtmp));
        hub.add_player(player.clone());
        taken(&player);
        hub.publish(1, video(0, true));
        assert_eq!(taken(&player), vec![(MediaKind::Video, 0)], "video is never held");
        hub.publish(1, audio(0));
        hub.publish(1, audio(21));
        assert_eq!(taken(&player), vec![], "audio waits for the next message");
        // A player joining now gets the held audio once, after its start.
        let late = Arc::new(PlayerQueue::new(PlayerLimits::PLAYER, "127.0.0.1:3", PlayerProtocol::Rtmp));
        hub.add_player(late.clone());
        hub.publish(1, video(33, false));
        let batch = vec![(MediaKind::Audio, 0), (MediaKind::Audio, 21), (MediaKind::Video, 33)];
        assert_eq!(taken(&player), batch, "in order, in one batch");
        assert_eq!(taken(&late), [vec![(MediaKind::Video, 0)], batch].concat());
        // Audio alone (a stalled camera, an audio-only stream): no longer than HOLD_AUDIO_MS of it.
        for ts in [43, 64, 85, 107] {
            hub.publish(1, audio(ts));
        }
        assert_eq!(taken(&player), vec![(MediaKind::Audio, 43), (MediaKind::Audio, 64), (MediaKind::Audio, 85)]);
        // The publisher leaves: what was held goes out before the notice.
        hub.stop_publishing(1);
        assert_eq!(taken(&player), vec![(MediaKind::Audio, 107), (MediaKind::Data, u32::MAX)]);
    }
}
