//! A capture session: the chosen camera/microphone (or test pattern,
//! silence, Y4M, WAV) kept running whether or not anything goes out, so a
//! face shows the picture and the meters before going live.
//!
//! Two threads (`tally-capture-video`, `tally-capture-audio`) pull from the
//! sources on one [`MediaClock`], pacing the non-live ones to it. Every
//! frame goes to the preview feed; while a broadcast is attached, every
//! frame and audio block also goes to it through a bounded channel. A source
//! can be replaced at any time: the new one continues the old one's
//! timestamps and the attached broadcast is told to start a keyframe.
//! A third thread (`tally-preview`) turns the newest frame into RGBA at the
//! size a face asks for, never more often than it asks.

use super::settings::{AUDIO_CHANNELS, AUDIO_RATE, AudioSourceSpec, BroadcastSettings, VideoSourceSpec};
use super::sources::{BoxedAudio, BoxedVideo, SessionVideo};
use crate::capture::{AudioSource as _, SourceState, SourceStatus, VideoSource as _, convert::fit_into};
use crate::media::{AudioFrame, MediaClock, VideoFrame};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Frames or blocks buffered towards an attached broadcast: enough to ride
/// out an encoder hiccup, few enough that the picture stays current.
pub const ATTACH_QUEUE: usize = 4;
/// Meter updates come at least this often while audio flows: a block is
/// measured in slices of this length (20 ms at 48 kHz = 50 updates a second).
pub const LEVEL_SLICE_FRAMES: usize = 960;
/// Full scale for the clipping flag: a sample this close to the rail clips.
const CLIP_LEVEL: i32 = 32_700;

/// An RGBA picture for the preview.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviewFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, RGBA, unpremultiplied.
    pub rgba: Vec<u8>,
    /// The source frame's time on the session clock, µs.
    pub pts_us: u64,
    /// Frames converted so far in this session (a face can tell new from old).
    pub serial: u64,
}

impl std::fmt::Debug for PreviewFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviewFrame({}x{}, #{} at {} µs)", self.width, self.height, self.serial, self.pts_us)
    }
}

/// What a face asks of the preview feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviewRequest {
    /// The largest picture wanted (the frame is fitted inside, aspect kept).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// At most this many pictures a second.
    pub max_fps: u32,
}

/// The audio meters: one update per slice of [`LEVEL_SLICE_FRAMES`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioLevels {
    /// Peak per channel, dBFS (−120 for silence).
    pub peak_dbfs: Vec<f32>,
    /// RMS per channel, dBFS.
    pub rms_dbfs: Vec<f32>,
    /// A sample reached full scale in this slice.
    pub clipping: bool,
    /// Updates so far in this session.
    pub serial: u64,
    /// The end of the slice on the session clock, µs.
    pub media_us: u64,
}

impl AudioLevels {
    /// The levels of interleaved `samples` with `channels` channels.
    pub fn measure(samples: &[i16], channels: usize, serial: u64) -> AudioLevels {
        let channels = channels.max(1);
        let frames = samples.len() / channels;
        let mut peak = vec![0i32; channels];
        let mut sum = vec![0f64; channels];
        for frame in samples.chunks_exact(channels) {
            for (c, &s) in frame.iter().enumerate() {
                let s = i32::from(s);
                peak[c] = peak[c].max(s.abs());
                sum[c] += f64::from(s * s);
            }
        }
        let db = crate::capture::pcm::Levels::dbfs;
        AudioLevels {
            clipping: peak.iter().any(|&p| p >= CLIP_LEVEL),
            peak_dbfs: peak.iter().map(|&p| db(p as f32 / 32768.0)).collect(),
            rms_dbfs: sum.iter().map(|&s| db(((s / frames.max(1) as f64).sqrt() / 32768.0) as f32)).collect(),
            serial,
            media_us: 0,
        }
    }
}

/// The channels a face reads; they outlive any one session (the engine
/// makes them once and hands them to each session it opens).
#[derive(Clone, Debug)]
pub struct SessionFeeds {
    /// The newest preview picture.
    pub preview: watch::Sender<Option<Arc<PreviewFrame>>>,
    /// The newest meter reading.
    pub levels: watch::Sender<AudioLevels>,
    /// What the sources are doing: live, or a stand-in and why.
    pub health: watch::Sender<SourceHealth>,
}

impl Default for SessionFeeds {
    fn default() -> Self {
        SessionFeeds {
            preview: watch::Sender::new(None),
            levels: watch::Sender::new(AudioLevels::default()),
            health: watch::Sender::new(SourceHealth::default()),
        }
    }
}

/// What a session's sources are doing, as a face shows it: a camera that
/// stopped delivering (its stand-in is a frozen frame or a slate), a file
/// that failed (a slate), a microphone that failed (silence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceHealth {
    /// The video source.
    pub video: SourceState,
    /// The audio source.
    pub audio: SourceState,
}

impl Default for SourceHealth {
    fn default() -> Self {
        SourceHealth { video: SourceState::Live, audio: SourceState::Live }
    }
}

impl Shared {
    /// Publishes a source's state when it changed (read each frame or block:
    /// one uncontended lock).
    fn report_health(&self, video: bool) {
        let status = {
            let slots = self.slots();
            if video { slots.video_status.clone() } else { slots.audio_status.clone() }
        };
        let state = status.map(|s| s.state()).unwrap_or(SourceState::Live);
        self.feeds.health.send_if_modified(|h| {
            let slot = if video { &mut h.video } else { &mut h.audio };
            let changed = *slot != state;
            *slot = state;
            changed
        });
    }

    /// The status a failed source reports from now on (its own, or a new one).
    fn failed_status(&self, video: bool, why: String) -> Arc<SourceStatus> {
        let slots = self.slots();
        let status = if video { slots.video_status.clone() } else { slots.audio_status.clone() };
        let status = status.unwrap_or_else(|| Arc::new(SourceStatus::new(if video { "video" } else { "audio" })));
        status.set(SourceState::Fallback(why));
        status
    }
}

#[derive(Default)]
struct Slots {
    video_sink: Option<SyncSender<SessionVideo>>,
    audio_sink: Option<SyncSender<AudioFrame>>,
    next_video: Option<BoxedVideo>,
    next_audio: Option<BoxedAudio>,
    video_status: Option<Arc<SourceStatus>>,
    audio_status: Option<Arc<SourceStatus>>,
    preview: Option<PreviewRequest>,
    /// The newest frame, for the preview thread.
    newest: Option<Arc<VideoFrame>>,
}

struct Shared {
    stop: AtomicBool,
    /// "Hide camera": a slate goes out (and into the preview) instead of the picture.
    hidden: AtomicBool,
    /// "Mute microphone": silence goes out (and into the meters) instead of the sound.
    muted: AtomicBool,
    slots: Mutex<Slots>,
    /// Wakes the preview thread when a frame or a request arrives.
    preview_wake: Condvar,
    feeds: SessionFeeds,
    frames: AtomicU64,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The format every frame of a session has (sources are opened to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionFormat {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// A running capture session. Dropping it stops and joins its threads.
pub struct CaptureSession {
    shared: Arc<Shared>,
    clock: MediaClock,
    format: SessionFormat,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CaptureSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureSession").field("format", &self.format).finish_non_exhaustive()
    }
}

/// What a broadcast gets when it attaches.
pub(super) struct Attachment {
    pub video: Receiver<SessionVideo>,
    pub audio: Receiver<AudioFrame>,
    /// Session time the broadcast's media time 0 corresponds to, µs.
    pub origin_us: u64,
    /// The same moment on the wall clock.
    pub origin: Instant,
    pub video_status: Arc<SourceStatus>,
    pub audio_status: Arc<SourceStatus>,
}

impl CaptureSession {
    /// Opens the sources (blocking: a camera takes a moment) and starts the
    /// session. `auto` falls back to the test pattern / silence with a notice.
    pub fn open(
        video: &VideoSourceSpec,
        audio: &AudioSourceSpec,
        format: SessionFormat,
        looping: bool,
        feeds: SessionFeeds,
    ) -> Result<CaptureSession, super::PipelineError> {
        let settings = opening_settings(video, audio, format, looping);
        let v = super::sources::open_video(&settings)?;
        let a = super::sources::open_audio(&settings)?;
        Self::start((v.source, v.status), (a.source, a.status), format, feeds)
    }

    /// Opens `spec` at this session's format (blocking) and switches to it:
    /// the attached broadcast stays up, its timestamps continue, and it
    /// starts a keyframe at the switch.
    pub fn switch_video(&self, spec: &VideoSourceSpec, looping: bool) -> Result<(), super::PipelineError> {
        let settings = opening_settings(spec, &AudioSourceSpec::Silence, self.format, looping);
        let v = super::sources::open_video(&settings)?;
        self.replace_video(v.source, v.status);
        Ok(())
    }

    /// Opens `spec` (blocking) and switches the audio to it.
    pub fn switch_audio(&self, spec: &AudioSourceSpec, looping: bool) -> Result<(), super::PipelineError> {
        let settings = opening_settings(&VideoSourceSpec::TestPattern, spec, self.format, looping);
        let a = super::sources::open_audio(&settings)?;
        self.replace_audio(a.source, a.status);
        Ok(())
    }

    /// Starts the session on already-opened sources (see `sources::open_*`).
    pub(super) fn start(
        video: (BoxedVideo, Arc<SourceStatus>),
        audio: (BoxedAudio, Arc<SourceStatus>),
        format: SessionFormat,
        feeds: SessionFeeds,
    ) -> Result<CaptureSession, super::PipelineError> {
        let clock = MediaClock::start();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            hidden: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            slots: Mutex::new(Slots { video_status: Some(video.1.clone()), audio_status: Some(audio.1.clone()), ..Slots::default() }),
            preview_wake: Condvar::new(),
            feeds,
            frames: AtomicU64::new(0),
        });
        let spawn = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(|source| super::PipelineError::Spawn { what: name, source })
        };
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(spawn("tally-capture-video", Box::new(move || video_loop(video.0, clock, &s)))?);
        let s = shared.clone();
        threads.push(spawn("tally-capture-audio", Box::new(move || audio_loop(audio.0, clock, &s)))?);
        let s = shared.clone();
        threads.push(spawn("tally-preview", Box::new(move || preview_loop(&s)))?);
        Ok(CaptureSession { shared, clock, format, threads })
    }

    /// The frame format of this session.
    pub fn format(&self) -> SessionFormat {
        self.format
    }

    /// Video frames captured so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// What the video and audio sources report (name, live or fallback).
    pub fn statuses(&self) -> (Option<Arc<SourceStatus>>, Option<Arc<SourceStatus>>) {
        let slots = self.shared.slots();
        (slots.video_status.clone(), slots.audio_status.clone())
    }

    /// Hides the camera: from the next frame on a slate goes out instead
    /// of the picture (the broadcast stays up), or shows it again.
    pub fn set_hidden(&self, hidden: bool) {
        self.shared.hidden.store(hidden, Ordering::Relaxed);
    }

    /// Mutes the microphone: from the next block on silence goes out (the
    /// meters show it too), or unmutes it.
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }

    /// Whether the camera is hidden and the microphone muted.
    pub fn hidden_muted(&self) -> (bool, bool) {
        (self.shared.hidden.load(Ordering::Relaxed), self.shared.muted.load(Ordering::Relaxed))
    }

    /// Asks for preview pictures (or none, with `None`).
    pub fn set_preview(&self, request: Option<PreviewRequest>) {
        self.shared.slots().preview = request;
        self.shared.preview_wake.notify_all();
    }

    /// Replaces the video source from its next frame on (opened by the caller).
    pub(super) fn replace_video(&self, source: BoxedVideo, status: Arc<SourceStatus>) {
        let mut slots = self.shared.slots();
        slots.video_status = Some(status);
        slots.next_video = Some(source);
    }

    /// Replaces the audio source from its next block on.
    pub(super) fn replace_audio(&self, source: BoxedAudio, status: Arc<SourceStatus>) {
        let mut slots = self.shared.slots();
        slots.audio_status = Some(status);
        slots.next_audio = Some(source);
    }

    /// Attaches a broadcast: its media time 0 is now.
    pub(super) fn attach(&self) -> Result<Attachment, super::PipelineError> {
        let (vtx, vrx) = std::sync::mpsc::sync_channel(ATTACH_QUEUE);
        let (atx, arx) = std::sync::mpsc::sync_channel(ATTACH_QUEUE);
        let mut slots = self.shared.slots();
        // One broadcast at a time (the engine's rule): a new one replaces
        // whatever sink an ended broadcast left behind.
        slots.video_sink = Some(vtx);
        slots.audio_sink = Some(atx);
        let origin_us = self.clock.now().as_micros() as u64;
        let (Some(video_status), Some(audio_status)) = (slots.video_status.clone(), slots.audio_status.clone()) else {
            return Err(super::PipelineError::NoSources);
        };
        let origin = self.clock.instant_of(origin_us);
        Ok(Attachment { video: vrx, audio: arx, origin_us, origin, video_status, audio_status })
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let mut slots = self.shared.slots();
            slots.video_sink = None;
            slots.audio_sink = None;
        }
        self.shared.preview_wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn opening_settings(video: &VideoSourceSpec, audio: &AudioSourceSpec, format: SessionFormat, looping: bool) -> BroadcastSettings {
    BroadcastSettings {
        video: video.clone(),
        audio: audio.clone(),
        width: format.width,
        height: format.height,
        fps: format.fps,
        looping,
        ..BroadcastSettings::default()
    }
}

/// Sleeps until `pts_us` is due (non-live sources), waking to notice a stop.
fn pace(clock: MediaClock, pts_us: u64, stop: &AtomicBool) {
    loop {
        let due = clock.instant_of(pts_us);
        let now = Instant::now();
        if due <= now || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((due - now).min(super::POLL));
    }
}

/// Sends to an attached broadcast; a broadcast that has gone is detached.
fn deliver<T>(sink: &mut Option<SyncSender<T>>, item: T) {
    if let Some(tx) = sink.as_ref()
        && tx.send(item).is_err()
    {
        *sink = None;
    }
}

fn video_loop(mut source: BoxedVideo, clock: MediaClock, shared: &Shared) {
    source.start(clock);
    // Timestamps of a new source continue the old one's: pts + offset.
    let mut offset_us = 0u64;
    let mut next_us = 0u64;
    let mut last_ms: Option<u64> = None;
    let mut switched = false;
    let mut ended = false;
    // The slate that replaces the picture while the camera is hidden, made once per size.
    let mut slate: Option<VideoFrame> = None;
    let frame_us = |s: &BoxedVideo| s.format().frame_rate.pts_us_of_frame(1).max(1);
    while !shared.stop.load(Ordering::Relaxed) {
        let replacement = shared.slots().next_video.take();
        if let Some(mut next) = replacement {
            next.start(clock);
            // A live source stamps by capture time (already continuous); a
            // synthetic or file one counts from 0 and is moved to now.
            offset_us = if next.is_live() { 0 } else { next_us.max(clock.now().as_micros() as u64) };
            source = next;
            switched = true;
            ended = false;
        }
        if ended {
            std::thread::sleep(super::POLL);
            continue;
        }
        let mut frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                // A file ended: the broadcast's video ends here; the preview freezes.
                shared.slots().video_sink = None;
                ended = true;
                continue;
            }
            Err(e) => {
                // A source that fails while running (a camera unplugged for
                // good, a broken file) is replaced by a slate saying so: the
                // stream stays up, the preview shows it, the state says why.
                tracing::error!("video source failed: {e}; a slate goes out instead");
                let status = shared.failed_status(true, format!("failed: {e}"));
                let mut stand_in = crate::capture::slate::SlateSource::new(source.format(), &["video source failed"], status);
                stand_in.start(clock);
                offset_us = next_us.max(clock.now().as_micros() as u64);
                source = Box::new(stand_in);
                switched = true;
                shared.report_health(true);
                continue;
            }
        };
        frame.pts_us += offset_us;
        if let Some(last) = last_ms
            && frame.pts_us / 1000 <= last
        {
            frame.pts_us = (last + 1) * 1000;
        }
        last_ms = Some(frame.pts_us / 1000);
        next_us = frame.pts_us + frame_us(&source);
        if !source.is_live() {
            pace(clock, frame.pts_us, &shared.stop);
        }
        shared.frames.fetch_add(1, Ordering::Relaxed);
        shared.report_health(true);
        if shared.hidden.load(Ordering::Relaxed) {
            let picture = match slate.take() {
                Some(s) if (s.width, s.height) == (frame.width, frame.height) => s,
                _ => {
                    let mut s = VideoFrame::black(frame.width, frame.height, 0);
                    crate::capture::slate::paint(&mut s, &["camera hidden"]);
                    s
                }
            };
            frame.y.copy_from_slice(&picture.y);
            frame.u.copy_from_slice(&picture.u);
            frame.v.copy_from_slice(&picture.v);
            slate = Some(picture);
        }
        let frame = Arc::new(frame);
        let mut sink = {
            let mut slots = shared.slots();
            slots.newest = Some(frame.clone());
            slots.video_sink.clone()
        };
        shared.preview_wake.notify_all();
        if sink.is_some() {
            deliver(&mut sink, SessionVideo { frame, switched });
            switched = false;
            if sink.is_none() {
                shared.slots().video_sink = None;
            }
        }
    }
}

fn audio_loop(mut source: BoxedAudio, clock: MediaClock, shared: &Shared) {
    source.start(clock);
    let mut offset_us = 0u64;
    let mut next_us = 0u64;
    let mut serial = 0u64;
    let mut ended = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let replacement = shared.slots().next_audio.take();
        if let Some(mut next) = replacement {
            next.start(clock);
            offset_us = if next.is_live() { 0 } else { next_us.max(clock.now().as_micros() as u64) };
            source = next;
            ended = false;
        }
        if ended {
            std::thread::sleep(super::POLL);
            continue;
        }
        let mut block = match source.next_block() {
            Ok(Some(b)) if b.sample_rate == AUDIO_RATE && b.channels == AUDIO_CHANNELS => b,
            Ok(Some(b)) => {
                tracing::error!(rate = b.sample_rate, channels = b.channels, "audio source: not 48 kHz stereo");
                ended = true;
                continue;
            }
            Ok(None) => {
                shared.slots().audio_sink = None;
                ended = true;
                continue;
            }
            Err(e) => {
                // As for video: silence instead, the stream stays up.
                tracing::error!("audio source failed: {e}; silence goes out instead");
                shared.failed_status(false, format!("failed: {e}"));
                let mut stand_in = crate::capture::Silence::new(AUDIO_RATE, AUDIO_CHANNELS);
                stand_in.start(clock);
                offset_us = next_us.max(clock.now().as_micros() as u64);
                source = Box::new(stand_in);
                shared.report_health(false);
                continue;
            }
        };
        block.pts_us += offset_us;
        shared.report_health(false);
        if shared.muted.load(Ordering::Relaxed) {
            block.samples.fill(0);
        }
        next_us = block.pts_us + block.frames() as u64 * 1_000_000 / u64::from(AUDIO_RATE);
        if !source.is_live() {
            pace(clock, block.pts_us, &shared.stop);
        }
        let channels = usize::from(block.channels);
        let mut at_us = block.pts_us;
        for slice in block.samples.chunks(LEVEL_SLICE_FRAMES * channels) {
            serial += 1;
            at_us += (slice.len() / channels) as u64 * 1_000_000 / u64::from(AUDIO_RATE);
            let mut levels = AudioLevels::measure(slice, channels, serial);
            levels.media_us = at_us;
            shared.feeds.levels.send_replace(levels);
        }
        let mut sink = shared.slots().audio_sink.clone();
        if sink.is_some() {
            deliver(&mut sink, block);
            if sink.is_none() {
                shared.slots().audio_sink = None;
            }
        }
    }
}

fn preview_loop(shared: &Shared) {
    let mut last_pts = None;
    let mut last_at: Option<Instant> = None;
    let mut serial = 0u64;
    let mut rgba = Vec::new();
    loop {
        let (frame, request) = {
            let mut slots = shared.slots();
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let fresh = slots.newest.as_ref().is_some_and(|f| Some(f.pts_us) != last_pts);
                if let (true, Some(req)) = (fresh, slots.preview) {
                    break (slots.newest.clone(), req);
                }
                slots = shared.preview_wake.wait_timeout(slots, super::POLL).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
            }
        };
        let Some(frame) = frame else { continue };
        // Never more often than asked.
        let min_gap = Duration::from_secs_f64(1.0 / f64::from(request.max_fps.max(1)));
        if let Some(at) = last_at {
            let since = at.elapsed();
            if since < min_gap {
                std::thread::sleep(min_gap - since);
            }
        }
        last_pts = Some(frame.pts_us);
        last_at = Some(Instant::now());
        serial += 1;
        match to_rgba(&frame, request, &mut rgba) {
            Ok((width, height)) => {
                let picture = PreviewFrame { width, height, rgba: std::mem::take(&mut rgba), pts_us: frame.pts_us, serial };
                shared.feeds.preview.send_replace(Some(Arc::new(picture)));
            }
            Err(e) => tracing::warn!("preview: {e}"),
        }
    }
}

/// One preview picture of `frame` for `request` (what the preview thread
/// makes for each frame it shows; public for the benchmark).
pub fn preview_picture(frame: &VideoFrame, request: PreviewRequest) -> Result<PreviewFrame, String> {
    let mut rgba = Vec::new();
    let (width, height) = to_rgba(frame, request, &mut rgba)?;
    Ok(PreviewFrame { width, height, rgba, pts_us: frame.pts_us, serial: 0 })
}

/// The frame fitted into the request (aspect kept, never enlarged), as RGBA.
fn to_rgba(frame: &VideoFrame, request: PreviewRequest, rgba: &mut Vec<u8>) -> Result<(u32, u32), String> {
    let (w, h) = fit_size(frame.width, frame.height, request.width, request.height);
    let scaled;
    let src = if (w, h) == (frame.width, frame.height) {
        frame
    } else {
        scaled = fit_into(frame, w, h, frame.pts_us);
        &scaled
    };
    rgba.resize(w as usize * h as usize * 4, 0);
    let image = yuvutils_rs::YuvPlanarImage {
        y_plane: &src.y,
        y_stride: src.width,
        u_plane: &src.u,
        u_stride: src.width / 2,
        v_plane: &src.v,
        v_stride: src.width / 2,
        width: src.width,
        height: src.height,
    };
    yuvutils_rs::yuv420_to_rgba(&image, rgba, w * 4, yuvutils_rs::YuvRange::Limited, yuvutils_rs::YuvStandardMatrix::Bt709)
        .map_err(|e| format!("conversion: {e:?}"))?;
    Ok((w, h))
}

/// The largest even size inside `max_w`x`max_h` with the frame's aspect, at most the frame's own.
pub fn fit_size(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    if width <= max_w && height <= max_h {
        return (width, height);
    }
    let scale = (f64::from(max_w) / f64::from(width)).min(f64::from(max_h) / f64::from(height));
    let w = ((f64::from(width) * scale) as u32 & !1).max(2);
    let h = ((f64::from(height) * scale) as u32 & !1).max(2);
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_per_channel_and_clipping() {
        let mut samples = Vec::new();
        for i in 0..960 {
            samples.push(if i % 2 == 0 { 16384 } else { -16384 });
            samples.push(0);
        }
        let l = AudioLevels::measure(&samples, 2, 1);
        assert!((l.peak_dbfs[0] + 6.02).abs() < 0.1, "{l:?}");
        assert!((l.rms_dbfs[0] + 6.02).abs() < 0.1, "{l:?}");
        assert_eq!(l.peak_dbfs[1], -120.0);
        assert!(!l.clipping);
        samples[0] = i16::MAX;
        assert!(AudioLevels::measure(&samples, 2, 2).clipping);
    }

    #[test]
    fn preview_sizes_keep_the_aspect_and_never_enlarge() {
        assert_eq!(fit_size(1280, 720, 640, 640), (640, 360));
        assert_eq!(fit_size(1280, 720, 1920, 1080), (1280, 720));
        assert_eq!(fit_size(640, 480, 320, 180), (240, 180));
    }
}
