//! In-process RTMP clients for server tests, built on Tally's own client
//! (`net::rtmp_player::RtmpPlayer`, `rtmp::ClientSession`): a player that decodes
//! its first picture with the library's decoder (time-to-first-frame), a player that
//! records what it receives, and a publisher of synthetic media that can go
//! faster than real time.

use bytes::{BufMut, Bytes, BytesMut};
use std::time::{Duration, Instant};
use tally::decode::H264Decoder;
use tally::net::rtmp_player::RtmpPlayer;
use tally::net::client_setup;
use tally::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A tokio runtime for one test (one worker, so spawned clients run while
/// the test thread waits on other things).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime")
}

/// Connects, plays `url` until the server confirms (`NetStream.Play.Start`),
/// and returns the player without reading further.
pub async fn play_started(url: &str) -> RtmpPlayer {
    let url = RtmpUrl::parse(url).expect("url");
    let mut p = RtmpPlayer::connect(&url).await.expect("connect");
    loop {
        match p.next_event().await {
            Ok(Some(ClientEvent::PlayStarted { .. })) => return p,
            Ok(Some(_)) => {}
            other => panic!("play never started: {other:?}"),
        }
    }
}

/// Connects to `url`, plays, and returns how long it took from starting the
/// TCP connection to a decoded picture, and the picture's size.
pub async fn time_to_first_picture(url: &str, limit: Duration) -> Result<(Duration, (usize, usize)), String> {
    let url = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut player = RtmpPlayer::connect(&url).await.map_err(|e| tally::error_chain(&e))?;
    let mut decoder = H264Decoder::new().map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ev = tokio::time::timeout_at(deadline, player.next_event())
            .await
            .map_err(|_| format!("no picture within {limit:?}"))?
            .map_err(|e| e.to_string())?
            .ok_or("server closed the connection")?;
        let ClientEvent::Media { kind: MediaKind::Video, payload, .. } = ev else { continue };
        if let Ok(Some(picture)) = decoder.decode_tag(&payload, 0) {
            return Ok((start.elapsed(), (picture.width as usize, picture.height as usize)));
        }
    }
}

/// One thing a player heard: a media message or a status.
#[derive(Clone, Debug)]
pub enum Heard {
    /// Audio, video or data.
    Media(Seen),
    /// An `onStatus` (or `_error`): `rejected` for level "error".
    Status {
        /// When it arrived.
        at: Instant,
        /// E.g. `NetStream.Play.PublishNotify`.
        code: String,
        /// The server's words.
        description: String,
        /// Level "error" (or `_error`).
        rejected: bool,
    },
}

/// Everything a player received, in order.
#[derive(Debug, Default)]
pub struct Recording {
    /// Media and statuses in arrival order.
    pub heard: Vec<Heard>,
    /// The first video payloads (sequence headers included), when asked for.
    pub video_payloads: Vec<Bytes>,
}

impl Recording {
    /// Every media message, in order.
    pub fn media(&self) -> Vec<&Seen> {
        self.heard.iter().filter_map(|h| if let Heard::Media(s) = h { Some(s) } else { None }).collect()
    }

    /// Video frames (sequence headers excluded), in order.
    pub fn video(&self) -> Vec<&Seen> {
        self.media().into_iter().filter(|s| s.kind == MediaKind::Video && !s.config).collect()
    }

    /// Video frames (sequence headers excluded).
    pub fn video_frames(&self) -> usize {
        self.video().len()
    }

    /// Status codes in order; rejections as `rejected: CODE`.
    pub fn statuses(&self) -> Vec<String> {
        self.heard
            .iter()
            .filter_map(|h| match h {
                Heard::Status { code, rejected: false, .. } => Some(code.clone()),
                Heard::Status { code, rejected: true, .. } => Some(format!("rejected: {code}")),
                Heard::Media(_) => None,
            })
            .collect()
    }

    /// How many statuses so far have a code ending with `suffix`.
    pub fn count_status(&self, suffix: &str) -> usize {
        self.statuses().iter().filter(|c| c.ends_with(suffix)).count()
    }

    /// What was heard between the `nth` (0-based) status ending with
    /// `suffix` and the next status ending with `until` (or the end).
    pub fn between(&self, suffix: &str, nth: usize, until: &str) -> &[Heard] {
        let is = |h: &Heard, sfx: &str| matches!(h, Heard::Status { code, .. } if code.ends_with(sfx));
        let Some(start) = self.heard.iter().enumerate().filter(|(_, h)| is(h, suffix)).nth(nth).map(|(i, _)| i + 1) else {
            return &[];
        };
        let end = self.heard[start..].iter().position(|h| is(h, until)).map_or(self.heard.len(), |p| start + p);
        &self.heard[start..end]
    }
}

/// The media among `heard`.
pub fn media_of(heard: &[Heard]) -> Vec<&Seen> {
    heard.iter().filter_map(|h| if let Heard::Media(s) = h { Some(s) } else { None }).collect()
}

/// The largest time between two consecutive video frames' arrivals.
pub fn largest_arrival_gap(video: &[&Seen]) -> Duration {
    video.windows(2).map(|w| w[1].at.saturating_duration_since(w[0].at)).max().unwrap_or_default()
}

/// How a [`Listener`] stopped listening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The caller's condition held.
    Done,
    /// The server closed the connection.
    Closed,
    /// The time limit passed.
    TimedOut,
}

/// A player that records what it hears, and reads only when asked to: a
/// test can make it stop reading (a stalled viewer) and read again later.
pub struct Listener {
    player: RtmpPlayer,
    /// What it heard so far.
    pub rec: Recording,
    keep_payloads: usize,
}

impl Listener {
    /// Connects and plays `url`.
    pub async fn connect(url: &str) -> Result<Listener, String> {
        let url = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
        let player = RtmpPlayer::connect(&url).await.map_err(|e| tally::error_chain(&e))?;
        Ok(Listener { player, rec: Recording::default(), keep_payloads: 0 })
    }

    /// Also keeps the payloads of the first `n` video messages.
    pub fn keep_video_payloads(mut self, n: usize) -> Self {
        self.keep_payloads = n;
        self
    }

    /// `ip:port` of our end: how the server lists this player.
    pub fn local_addr(&self) -> String {
        self.player.local_addr().map(|a| a.to_string()).unwrap_or_default()
    }

    /// Reads and records until `stop` holds for the recording, the server
    /// closes, or `limit` passes. A protocol or socket error is an `Err`.
    pub async fn listen_until(&mut self, limit: Duration, mut stop: impl FnMut(&Recording) -> bool) -> Result<Ended, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if stop(&self.rec) {
                return Ok(Ended::Done);
            }
            let ev = match tokio::time::timeout_at(deadline, self.player.next_event()).await {
                Err(_) => return Ok(Ended::TimedOut),
                Ok(Err(e)) => return Err(tally::error_chain(&e)),
                Ok(Ok(None)) => return Ok(Ended::Closed),
                Ok(Ok(Some(ev))) => ev,
            };
            let at = Instant::now();
            match ev {
                ClientEvent::Media { kind, timestamp, payload } => {
                    if kind == MediaKind::Video && self.rec.video_payloads.len() < self.keep_payloads {
                        self.rec.video_payloads.push(payload.clone());
                    }
                    self.rec.heard.push(Heard::Media(Seen::of(at, kind, timestamp, &payload, 0)));
                }
                ClientEvent::Status { code, description, .. } => {
                    self.rec.heard.push(Heard::Status { at, code, description, rejected: false })
                }
                ClientEvent::Rejected { code, description } => {
                    self.rec.heard.push(Heard::Status { at, code, description, rejected: true })
                }
                _ => {}
            }
        }
    }
}

/// Plays `url` until `stop` returns true for the recording so far, the
/// server closes, or `limit` passes.
pub async fn record_until(url: &str, limit: Duration, stop: impl FnMut(&Recording) -> bool) -> Result<Recording, String> {
    let mut l = Listener::connect(url).await?;
    l.listen_until(limit, stop).await?;
    Ok(l.rec)
}

/// Decodes the first picture out of video payloads (FLV AVC bodies,
/// sequence header first) with openh264; its size.
pub fn first_picture(payloads: &[Bytes]) -> Option<(usize, usize)> {
    let mut decoder = H264Decoder::new().ok()?;
    for payload in payloads {
        if let Ok(Some(picture)) = decoder.decode_tag(payload, 0) {
            return Some((picture.width as usize, picture.height as usize));
        }
    }
    None
}

/// A synthetic video tag body: keyframe or not, `len` bytes (not decodable H.264).
fn fake_video(key: bool, len: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(len.max(5));
    b.put_u8(if key { 0x17 } else { 0x27 });
    b.put_u8(1);
    b.put_slice(&[0, 0, 0]);
    b.resize(len.max(5), 0x55);
    b.freeze()
}

/// Publishes `seconds` of synthetic 30 fps video (keyframe each second,
/// `frame_bytes` a frame) plus an AVC sequence header, paced at `speed`
/// times real time (a fast-forwarding encoder). Returns the number of video
/// frames sent (sequence header excluded) and how long sending took.
pub async fn fake_publish(url: &str, seconds: u32, frame_bytes: usize, speed: f64) -> Result<(usize, Duration), String> {
    let url = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut s = ClientSession::new(ClientConfig::from_url(&url), 7, 0);
    let events = client_setup::drive_until(&mut s, &mut tcp, client_setup::publish_started).await.map_err(|e| tally::error_chain(&e))?;
    if let Some(ClientEvent::Rejected { code, description }) = events.iter().find(|e| matches!(e, ClientEvent::Rejected { .. })) {
        return Err(format!("{code}: {description}"));
    }
    let started = Instant::now();
    s.send_media(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 0])).map_err(|e| e.to_string())?;
    let frames = seconds as usize * 30;
    let origin = tokio::time::Instant::now();
    for i in 0..frames {
        let ts = (i as u64 * 1000 / 30) as u32;
        // Pace like an encoder running at `speed` x real time.
        tokio::time::sleep_until(origin + Duration::from_secs_f64(f64::from(ts) / 1000.0 / speed)).await;
        s.send_media(MediaKind::Video, ts, fake_video(i % 30 == 0, frame_bytes)).map_err(|e| e.to_string())?;
        let out = s.take_outbound();
        tcp.write_all(&out).await.map_err(|e| e.to_string())?;
    }
    s.unpublish();
    let _ = tcp.write_all(&s.take_outbound()).await;
    Ok((frames, started.elapsed()))
}

/// Opens a TCP connection and completes the plain handshake by hand;
/// returns the stream, ready for chunks.
pub async fn raw_handshake(port: u16) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    tcp.write_all(&c0c1).await.expect("C0C1");
    let mut s = vec![0u8; 1 + 2 * 1536];
    tcp.read_exact(&mut s).await.expect("S0S1S2");
    tcp.write_all(&[0u8; 1536]).await.expect("C2");
    tcp
}

/// Reads until EOF or error (the server closed it) within `limit`; true if closed.
pub async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// One media message a [`Watcher`] received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// Audio, video or data.
    pub kind: MediaKind,
    /// Its RTMP timestamp, ms.
    pub ts: u32,
    /// A video keyframe (FLV FrameType 1), sequence headers excluded.
    pub keyframe: bool,
    /// Not a picture or a sound: metadata, an AVC/AAC sequence header, an
    /// AVC end of sequence.
    pub config: bool,
    /// Payload bytes.
    pub len: usize,
    /// Which connection of the watcher got it (0, 1, ... after reconnects).
    pub connection: u32,
    /// For an AVC sequence header: `AVCProfileIndication` (66 Baseline, as
    /// openh264 encodes; 100 High, as x264 does by default). Tells two
    /// publishers apart.
    pub avc_profile: Option<u8>,
}

impl Seen {
    /// Classifies a received FLV body.
    pub fn of(at: Instant, kind: MediaKind, ts: u32, payload: &[u8], connection: u32) -> Seen {
        // Metadata, sequence headers and AVC end-of-sequence (AVCPacketType
        // 2, which ffmpeg's muxer writes last) are not pictures.
        let config = kind == MediaKind::Data || payload.get(1) == Some(&0) || (kind == MediaKind::Video && payload.get(1) == Some(&2));
        let keyframe = kind == MediaKind::Video && !config && payload.first().is_some_and(|b| b >> 4 == 1);
        // FLV AVC body: FrameType|CodecID, AVCPacketType, CTS (3), then the
        // AVCDecoderConfigurationRecord: version, profile, ...
        let avc_profile = (kind == MediaKind::Video && config).then(|| payload.get(6).copied()).flatten();
        Seen { at, kind, ts, keyframe, config, len: payload.len(), connection, avc_profile }
    }
}

/// A viewer that keeps watching: plays `url` on its own thread, reconnects
/// whenever the server goes away, and logs every media message with its
/// arrival time, for timeline checks across faults.
pub struct Watcher {
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching.
    pub fn start(url: &str) -> Watcher {
        use std::sync::atomic::Ordering;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = RtmpUrl::parse(url).expect("watcher url");
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("watcher runtime");
            rt.block_on(async move {
                let mut connection = 0u32;
                while !stop2.load(Ordering::Relaxed) {
                    if let Ok(Ok(mut player)) = tokio::time::timeout(Duration::from_secs(2), RtmpPlayer::connect(&url)).await {
                        loop {
                            if stop2.load(Ordering::Relaxed) {
                                return;
                            }
                            let ev = match tokio::time::timeout(Duration::from_millis(200), player.next_event()).await {
                                Err(_) => continue,
                                Ok(Ok(Some(ev))) => ev,
                                Ok(_) => break,
                            };
                            if let ClientEvent::Media { kind, timestamp, payload } = ev {
                                let s = Seen::of(Instant::now(), kind, timestamp, &payload, connection);
                                seen2.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                            }
                        }
                        connection += 1;
                    }
                    // The server is down: try again shortly (a viewer's player retries too).
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        });
        Watcher { seen, stop, thread: Some(thread) }
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Video frames (not sequence headers) received so far.
    pub fn video(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.kind == MediaKind::Video && !s.config).collect()
    }

    /// Waits until `condition` holds for what was received; false on timeout.
    pub fn wait_for(&self, timeout: Duration, mut condition: impl FnMut(&[Seen]) -> bool) -> bool {
        super::wait_until(timeout, || condition(&self.seen.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The chunk header types (spec 5.3.1.2) the wrap publisher cycles through,
/// one message each: 0 (absolute timestamp), 1 (delta, length, type), 2
/// (delta only) and 3 (everything repeated, a new message).
pub const WRAP_CHUNK_TYPES: [u8; 4] = [0, 1, 2, 3];

/// Publishes synthetic 30 fps video whose timestamps start at `first_ts`
/// ms, paced in real time, with every chunk header written by
/// hand: message `i` goes with header type `WRAP_CHUNK_TYPES[i % 4]`, each
/// message spans several 128-byte chunks (type-3 continuations), and a
/// timestamp field that does not fit 24 bits goes as 0xFFFFFF plus the
/// 4-byte extended timestamp, repeated on the message's continuations (as
/// ffmpeg, librtmp and nginx-rtmp write it). Returns the timestamps sent,
/// the sequence header's first. Then drops the connection.
pub async fn publish_with_every_chunk_type(url: &str, first_ts: u32, frames: usize) -> Result<Vec<u32>, String> {
    const CSID: u8 = 20;
    const CHUNK: usize = 128;
    let url = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut s = ClientSession::new(ClientConfig::from_url(&url), 7, 0);
    let events = client_setup::drive_until(&mut s, &mut tcp, client_setup::publish_started).await.map_err(|e| tally::error_chain(&e))?;
    if let Some(ClientEvent::Rejected { code, description }) = events.iter().find(|e| matches!(e, ClientEvent::Rejected { .. })) {
        return Err(format!("{code}: {description}"));
    }
    let stream_id = s.stream_id().ok_or("no stream id")?;
    let mut out = BytesMut::new();
    // Our own chunk size from here on, whatever the session announced.
    out.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);
    out.put_u32(CHUNK as u32);
    let mut sent = Vec::with_capacity(frames + 1);
    let (mut prev_ts, mut delta) = (first_ts, 0u32);
    let origin = tokio::time::Instant::now();
    for i in 0..=frames {
        let fmt = WRAP_CHUNK_TYPES[i % 4];
        // Sequence header first (a type-0 message), then frames 33 or 34 ms
        // apart; type 2 changes only the delta and type 3 repeats it, so the
        // type-1 message sets a new length and the type-2 one keeps it.
        let ts = match fmt {
            0 if i == 0 => first_ts,
            0 | 1 => prev_ts + 33,
            2 => prev_ts + 34,
            _ => prev_ts + delta,
        };
        let payload = if i == 0 {
            let mut p = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 0];
            p.resize(300, 0);
            Bytes::from(p)
        } else {
            // Lengths: type 0 and 1 messages differ from the one before;
            // types 2 and 3 repeat the type-1 length.
            let len = if fmt == 0 { 700 } else { 500 };
            fake_video((i - 1) % 30 == 0, len)
        };
        let field = if fmt == 0 { ts } else { ts - prev_ts };
        let ext = (field >= 0xFF_FFFF).then_some(field);
        let field24 = field.min(0xFF_FFFF);
        out.put_u8((fmt << 6) | CSID);
        match fmt {
            0 | 1 => {
                out.put_uint(u64::from(field24), 3);
                out.put_uint(payload.len() as u64, 3);
                out.put_u8(9);
                if fmt == 0 {
                    out.put_u32_le(stream_id);
                }
            }
            2 => out.put_uint(u64::from(field24), 3),
            _ => {}
        }
        if let Some(e) = ext {
            out.put_u32(e);
        }
        for (n, piece) in payload.chunks(CHUNK).enumerate() {
            if n > 0 {
                out.put_u8((3 << 6) | CSID);
                if let Some(e) = ext {
                    out.put_u32(e);
                }
            }
            out.put_slice(piece);
        }
        if fmt != 0 {
            delta = ts - prev_ts;
        }
        prev_ts = ts;
        sent.push(ts);
        // Paced like a live encoder: sent all at once, four seconds of
        // media are a player four seconds behind, which the server skips.
        tokio::time::sleep_until(origin + Duration::from_millis(u64::from(ts - first_ts))).await;
        tcp.write_all(&out).await.map_err(|e| e.to_string())?;
        out.clear();
    }
    s.unpublish();
    let _ = tcp.write_all(&s.take_outbound()).await;
    Ok(sent)
}
