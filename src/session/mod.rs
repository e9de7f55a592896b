//! The capture session: the only way frames reach the encoders, for the
//! window, `tally stream` and `tally record` alike.
//!
//! It holds a set of sources (today one video and one audio: camera or
//! test pattern or Y4M, microphone or tone or silence or WAV) and runs
//! whether or not anything goes out, so a face shows the picture and the
//! meters before going live. Two threads (`tally-capture-video`,
//! `tally-capture-audio`) pull from the sources on one [`MediaClock`],
//! pace the non-live ones to it (unless the session is [`Pacing::Unpaced`],
//! `--fast`), and hand each tick's result — one composed picture, one mixed
//! audio block (see [`stage`]) — to the preview and meter feeds and, while
//! a broadcast is attached, to it through bounded channels. The session
//! owns the timestamp rule (continuous across source switches, never
//! repeating or going back a millisecond); a picture goes to the broadcast
//! with the media offset it is rebased by, never copied for it.
//!
//! A source can be replaced at any time: the new one continues the old
//! one's timestamps and the attached broadcast is told to start a keyframe.
//! A source that fails is replaced by a slate (or silence) saying why.
//! A third thread (`tally-preview`) turns the newest picture into RGBA at the
//! size a face asks for, never more often than it asks.
//!
//! May use `capture` and `media`; never `pipeline`, `net`, `engine` or a face.

mod audio;
mod feed;
mod levels;
mod open;
mod preview;
mod program;
pub mod scene;
pub mod stage;
mod tick;

pub use levels::{AudioLevels, LEVEL_SLICE_FRAMES};
pub use preview::{PreviewFrame, PreviewRequest, fit_size, preview_picture};

use crate::capture::{AudioSourceSpec, CaptureError, SourceState, SourceStatus, VideoSourceSpec};
use crate::compose::LayerInput;
use crate::media::{AudioFrame, MediaClock, VideoFrame};
use feed::Wait;
use open::BoxedAudio;
use program::Program;
use scene::{Scene, Transition};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Audio format of everything Tally sends: 48 kHz stereo (what every ingest accepts).
pub const AUDIO_RATE: u32 = 48_000;
/// See [`AUDIO_RATE`].
pub const AUDIO_CHANNELS: u16 = 2;
/// Pictures or blocks buffered towards an attached broadcast: enough to ride
/// out an encoder hiccup, few enough that the picture stays current.
pub const ATTACH_QUEUE: usize = 4;
/// Canvases the tick keeps for reuse: a canvas is drawn again once the
/// preview, the broadcast and every rendition are done with it (each draw
/// writes the whole picture), so frames are not allocated per tick.
const FRAME_POOL: usize = 4;
/// How long the tick waits for a paced source's next picture (a slow read,
/// a starved thread on a loaded machine) before it goes on with the
/// previous one: long enough that a file goes out frame for frame, short
/// enough that a stuck source costs its layer a repeat, not the canvas a stall.
const PACED_WAIT: Duration = Duration::from_millis(250);
/// How long the tick waits for the lead source's next picture before it
/// ticks on the clock instead (a camera keeps delivering by itself — a
/// frozen frame, a slate — so this is the wait of a wedged device only).
const LEAD_WAIT: Duration = Duration::from_millis(250);
/// How far the tick may fall behind the clock (a machine too slow to
/// compose in real time) before it skips ahead rather than catch up.
const MAX_TICK_LAG: Duration = Duration::from_secs(1);
/// How long the session's threads wait before re-checking for a stop.
const POLL: Duration = Duration::from_millis(100);

/// The format every picture of a session has (sources are opened to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionFormat {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Whether the session keeps to the wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// Files and synthetic sources are paced to the clock, as a camera is.
    #[default]
    RealTime,
    /// As fast as the attached broadcast takes them (`--fast`): nothing is
    /// paced and nothing is dropped; the channels' back-pressure sets the rate.
    Unpaced,
}

/// What a session captures and how.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSpec {
    /// The video source (shown alone, full frame, unless `scene` is set).
    pub video: VideoSourceSpec,
    /// The scene to compose instead of `video` alone.
    pub scene: Option<Scene>,
    /// The audio source.
    pub audio: AudioSourceSpec,
    /// The picture's size and rate.
    pub format: SessionFormat,
    /// File sources restart at their end (a switched-to file does too).
    pub looping: bool,
    /// Paced to the wall clock, or as fast as the broadcast takes it.
    pub pacing: Pacing,
    /// The sources start when the first broadcast attaches, which then gets
    /// them from their first frame (a file sent whole, media time 0 at its
    /// start); otherwise they start at once and a broadcast joins them where
    /// they are.
    pub from_first_frame: bool,
}

/// Why a session could not open or switch a source.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A source could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// A thread could not be spawned.
    #[error("starting the {what} thread")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
}

/// Where a session publishes what a face shows: the newest preview
/// picture, the meters, the sources' health. The engine's channels take
/// them (they outlive any one session); a session nobody watches is given
/// [`Unwatched`]. Called from the capture threads: never blocks.
pub trait Feeds: Send + Sync {
    /// A new preview picture.
    fn preview(&self, picture: Arc<PreviewFrame>);
    /// A new meter reading.
    fn levels(&self, levels: AudioLevels);
    /// The sources' health, when it changed.
    fn health(&self, health: &SourceHealth);
}

/// The feeds of a session nobody watches (a publish test, a benchmark).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwatched;

impl Feeds for Unwatched {
    fn preview(&self, _: Arc<PreviewFrame>) {}
    fn levels(&self, _: AudioLevels) {}
    fn health(&self, _: &SourceHealth) {}
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

/// One picture for an attached broadcast: the session's frame, shared with
/// the preview, and the offset that rebases it onto the broadcast's media time.
pub struct Picture {
    /// The composed picture, stamped on the session clock.
    pub frame: Arc<VideoFrame>,
    /// Session time of the broadcast's media time 0, µs (a whole millisecond).
    pub offset_us: u64,
    /// The first picture of a new source: the encoder starts a keyframe here.
    pub switched: bool,
}

impl Picture {
    /// The picture's time in the broadcast, µs. Millisecond-distinct and
    /// rising, as the session's own stamps are (the offset is whole ms).
    pub fn media_us(&self) -> u64 {
        self.frame.pts_us.saturating_sub(self.offset_us)
    }
}

/// What a broadcast gets when it attaches.
pub struct Attachment {
    /// One picture per tick.
    pub video: Receiver<Picture>,
    /// One audio block per tick, already on the broadcast's media time
    /// (a block that began before it keeps only its samples from then on).
    pub audio: Receiver<AudioFrame>,
    /// The wall-clock moment of the broadcast's media time 0.
    pub origin: Instant,
    /// What the video source reports (name, live or a stand-in).
    pub video_status: Arc<SourceStatus>,
    /// What the audio source reports.
    pub audio_status: Arc<SourceStatus>,
}

/// A broadcast's end of the session: where its pictures and blocks go.
struct Sink<T> {
    tx: SyncSender<T>,
    offset_us: u64,
    /// Which attach made it (a sink is detached only by its own broadcast's end).
    serial: u64,
}

struct Slots {
    video_sink: Option<Sink<Picture>>,
    audio_sink: Option<Sink<AudioFrame>>,
    /// The program handed over for the tick to take up, and how.
    next_program: Option<(Arc<Program>, Transition)>,
    /// The program most recently handed over (what a switch reuses sources of).
    shown: Option<Arc<Program>>,
    next_audio: Option<BoxedAudio>,
    video_status: Arc<SourceStatus>,
    audio_status: Arc<SourceStatus>,
    preview: Option<PreviewRequest>,
    /// The newest picture, for the preview thread.
    newest: Option<Arc<VideoFrame>>,
    /// The session clock: set at open, or at the first attach when the
    /// session runs from the first frame (the threads wait for it).
    clock: Option<MediaClock>,
}

struct Shared {
    stop: AtomicBool,
    /// "Hide camera": a slate goes out (and into the preview) instead of the picture.
    hidden: AtomicBool,
    /// "Mute microphone": silence goes out (and into the meters) instead of the sound.
    muted: AtomicBool,
    /// The scene on air mutes the microphone (a "be right back" card).
    scene_muted: AtomicBool,
    /// Programs built so far (each gets its number).
    programs: AtomicU64,
    format: SessionFormat,
    looping: bool,
    slots: Mutex<Slots>,
    /// Wakes the preview thread when a picture or a request arrives, and
    /// the capture threads when the clock starts or the session stops.
    wake: Condvar,
    feeds: Arc<dyn Feeds>,
    /// The health last published (published again only when it changes).
    health: Mutex<SourceHealth>,
    frames: AtomicU64,
    pacing: Pacing,
    attaches: AtomicU64,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the clock to start (at once unless the session runs from
    /// the first frame); `None` when the session stops first.
    fn clock(&self) -> Option<MediaClock> {
        self.clock_or(&self.stop)
    }

    /// [`Shared::clock`], also giving up when `stop` is set (a feed closed before it started).
    fn clock_or(&self, stop: &AtomicBool) -> Option<MediaClock> {
        let mut slots = self.slots();
        loop {
            if self.stop.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(c) = slots.clock {
                return Some(c);
            }
            slots = self.wake.wait_timeout(slots, POLL).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Publishes the audio source's state when it changed (read each block: one uncontended lock).
    fn report_health(&self, video: bool) {
        let state = self.slots().audio_status.state();
        self.publish_health(video, state);
    }

    /// Publishes a state of the picture or the sound when it changed.
    fn publish_health(&self, video: bool, state: SourceState) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let slot = if video { &mut health.video } else { &mut health.audio };
        if *slot != state {
            *slot = state;
            self.feeds.health(&health);
        }
    }

    /// Marks the audio source failed: its status says why from now on.
    fn fail_audio(&self, why: String) {
        let status = self.slots().audio_status.clone();
        status.set(SourceState::Fallback(why));
    }

    /// Sleeps until `pts_us` is due (a source that is not live, in real
    /// time): that is the pace of a real camera, not test synchronisation.
    fn pace(&self, clock: MediaClock, pts_us: u64) {
        if self.pacing == Pacing::Unpaced {
            return;
        }
        loop {
            let due = clock.instant_of(pts_us);
            let now = Instant::now();
            if due <= now || self.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep((due - now).min(POLL));
        }
    }
}

/// A running capture session. Dropping it stops and joins its threads.
pub struct CaptureSession {
    shared: Arc<Shared>,
    spec: SessionSpec,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CaptureSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureSession").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl CaptureSession {
    /// Opens the sources (blocking: a camera takes a moment, a file's header
    /// is read) and starts the session. `auto` falls back to the test
    /// pattern / silence with a notice.
    pub fn open(spec: SessionSpec, feeds: Arc<dyn Feeds>) -> Result<CaptureSession, SessionError> {
        let a = open::open_audio(&spec.audio, spec.looping)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            hidden: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            scene_muted: AtomicBool::new(false),
            programs: AtomicU64::new(0),
            format: spec.format,
            looping: spec.looping,
            slots: Mutex::new(Slots {
                video_sink: None,
                audio_sink: None,
                next_program: None,
                shown: None,
                next_audio: None,
                video_status: Arc::new(SourceStatus::new("video")),
                audio_status: a.status,
                preview: None,
                newest: None,
                clock: (!spec.from_first_frame).then(MediaClock::start),
            }),
            wake: Condvar::new(),
            feeds,
            health: Mutex::new(SourceHealth::default()),
            frames: AtomicU64::new(0),
            pacing: spec.pacing,
            attaches: AtomicU64::new(0),
        });
        let mut session = CaptureSession { shared: shared.clone(), spec, threads: Vec::new() };
        let first = session.spec.scene.clone().unwrap_or_else(|| Scene::single(session.spec.video.clone()));
        session.show(&first, Transition::Cut)?;
        let spawn = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(|source| SessionError::Spawn { what: name, source })
        };
        let s = shared.clone();
        session.threads.push(spawn("tally-capture-video", Box::new(move || tick::video_loop(&s)))?);
        let (s, audio) = (shared.clone(), a.source);
        session.threads.push(spawn("tally-capture-audio", Box::new(move || audio::audio_loop(audio, &s)))?);
        session.threads.push(spawn("tally-preview", Box::new(move || preview::preview_loop(&shared)))?);
        Ok(session)
    }

    /// What this session was opened with (the sources as first opened).
    pub fn spec(&self) -> &SessionSpec {
        &self.spec
    }

    /// The picture format of this session.
    pub fn format(&self) -> SessionFormat {
        self.spec.format
    }

    /// Pictures captured so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// What the video and audio sources report (name, live or fallback).
    pub fn statuses(&self) -> (Arc<SourceStatus>, Arc<SourceStatus>) {
        let slots = self.shared.slots();
        (slots.video_status.clone(), slots.audio_status.clone())
    }

    /// Hides the camera: from the next picture on a slate goes out instead
    /// (the broadcast stays up), or shows it again.
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
        self.shared.wake.notify_all();
    }

    /// Opens `spec` at this session's format (blocking) and switches to it
    /// alone, full frame: the attached broadcast stays up, its timestamps
    /// continue, and it starts a keyframe at the switch.
    pub fn switch_video(&self, spec: &VideoSourceSpec) -> Result<(), SessionError> {
        self.show(&Scene::single(spec.clone()), Transition::Cut)
    }

    /// Switches to `scene` (blocking while its new sources open and deliver
    /// their first pictures; those it shares with the scene on air stay
    /// open): a cut or a fade, or with [`Transition::Edit`] the scene on
    /// air with its layers moved. The broadcast stays up and its timestamps
    /// continue; a cut or a fade starts a keyframe.
    pub fn show(&self, scene: &Scene, transition: Transition) -> Result<(), SessionError> {
        let shown = self.shared.slots().shown.clone();
        let edited = match (transition, &shown) {
            (Transition::Edit, Some(p)) => p.edited(scene),
            _ => None,
        };
        let program = match edited {
            Some(p) => p,
            None => {
                let id = self.shared.programs.fetch_add(1, Ordering::Relaxed) + 1;
                let (format, looping) = (self.shared.format, self.shared.looping);
                Program::build(id, scene, shown.as_deref(), format, looping, &self.shared)?
            }
        };
        let transition = if transition == Transition::Edit && shown.as_ref().is_some_and(|p| p.id != program.id) {
            Transition::Cut
        } else {
            transition
        };
        let program = Arc::new(program);
        self.hand_over(|slots| {
            slots.video_status = program.status.clone();
            slots.shown = Some(program.clone());
            if let Some((replaced, _)) = slots.next_program.replace((program, transition)) {
                retire(replaced);
            }
        });
        Ok(())
    }

    /// The scene on air (the one most recently switched to).
    pub fn scene(&self) -> Option<Scene> {
        self.shared.slots().shown.as_ref().map(|p| p.scene.clone())
    }

    /// Opens `spec` (blocking) and switches the audio to it.
    pub fn switch_audio(&self, spec: &AudioSourceSpec) -> Result<(), SessionError> {
        let a = open::open_audio(spec, self.spec.looping)?;
        self.hand_over(|slots| {
            slots.audio_status = a.status;
            slots.next_audio = Some(a.source);
        });
        Ok(())
    }

    /// Leaves a new source in its slot for the capture thread, and wakes a
    /// thread whose source had ended.
    fn hand_over(&self, put: impl FnOnce(&mut Slots)) {
        put(&mut self.shared.slots());
        self.shared.wake.notify_all();
    }

    /// Attaches a broadcast: its media time 0 is now (or the sources' first
    /// frame, for a session that runs from it). One broadcast at a time: a
    /// new one replaces what an ended broadcast left behind.
    pub fn attach(&self) -> Attachment {
        let (vtx, video) = std::sync::mpsc::sync_channel(ATTACH_QUEUE);
        let (atx, audio) = std::sync::mpsc::sync_channel(ATTACH_QUEUE);
        let mut slots = self.shared.slots();
        let clock = *slots.clock.get_or_insert_with(MediaClock::start);
        // A whole millisecond, so that rebasing keeps the session's
        // millisecond-distinct stamps distinct (FLV's resolution).
        let offset_us = clock.now().as_micros() as u64 / 1000 * 1000;
        let serial = self.shared.attaches.fetch_add(1, Ordering::Relaxed);
        slots.video_sink = Some(Sink { tx: vtx, offset_us, serial });
        slots.audio_sink = Some(Sink { tx: atx, offset_us, serial });
        let attachment = Attachment {
            video,
            audio,
            origin: clock.instant_of(offset_us),
            video_status: slots.video_status.clone(),
            audio_status: slots.audio_status.clone(),
        };
        drop(slots);
        self.shared.wake.notify_all();
        attachment
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let programs = {
            let mut slots = self.shared.slots();
            slots.video_sink = None;
            slots.audio_sink = None;
            (slots.shown.take(), slots.next_program.take())
        };
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The feeds' threads hold the shared state: closing them here
        // (after the tick, which held the programs on air) ends the cycle.
        drop(programs);
    }
}

/// Closes a program's sources that no newer program uses, off the calling
/// thread (the tick never waits for a camera to close).
fn retire(program: Arc<Program>) {
    if Arc::strong_count(&program) > 1 {
        return;
    }
    // On failure the closure, and the program with it, is dropped here.
    if let Err(e) = std::thread::Builder::new().name("tally-feed-close".into()).spawn(move || drop(program)) {
        tracing::warn!("closing sources on the tick: {e}");
    }
}

impl Shared {
    /// Detaches the broadcast from the video or audio (only the one
    /// attached as `serial`, when given: a newer one stays).
    fn detach(&self, video: bool, serial: Option<u64>) {
        let mut slots = self.slots();
        if video {
            if serial.is_none_or(|n| slots.video_sink.as_ref().is_some_and(|s| s.serial == n)) {
                slots.video_sink = None;
            }
        } else if serial.is_none_or(|n| slots.audio_sink.as_ref().is_some_and(|s| s.serial == n)) {
            slots.audio_sink = None;
        }
    }
}

/// Sends `item` to the attached broadcast (`tx`, attached as `serial`); a
/// broadcast that has gone is detached.
fn deliver<T>(shared: &Shared, video: bool, (tx, serial): (SyncSender<T>, u64), item: T) {
    if tx.send(item).is_err() {
        shared.detach(video, Some(serial));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpaced(video: VideoSourceSpec, scene: Option<Scene>) -> CaptureSession {
        let spec = SessionSpec {
            video,
            scene,
            audio: AudioSourceSpec::Silence,
            format: SessionFormat { width: 64, height: 48, fps: 50 },
            looping: false,
            pacing: Pacing::Unpaced,
            from_first_frame: true,
        };
        CaptureSession::open(spec, Arc::new(Unwatched)).expect("session")
    }

    fn flat_y4m(dir: &std::path::Path, name: &str, luma: u8, frames: usize) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut bytes = b"YUV4MPEG2 W32 H32 F50:1 Ip A1:1 C420jpeg\n".to_vec();
        for _ in 0..frames {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend(std::iter::repeat_n(luma, 32 * 32));
            bytes.extend(std::iter::repeat_n(128u8, 2 * 16 * 16));
        }
        std::fs::write(&path, bytes).expect("y4m");
        path
    }

    #[test]
    fn a_switch_keeps_the_ticks_timestamps_and_starts_a_keyframe() {
        let session = unpaced(VideoSourceSpec::TestPattern, None);
        let attached = session.attach();
        let mut stamps = Vec::new();
        let mut switches = 0;
        for i in 0..40 {
            if i == 10 {
                session.switch_video(&VideoSourceSpec::Noise).expect("switch");
            }
            let p = attached.video.recv_timeout(Duration::from_secs(5)).expect("a picture");
            switches += usize::from(p.switched);
            stamps.push(p.media_us());
        }
        assert!(stamps.windows(2).all(|w| w[1] - w[0] == 20_000), "{stamps:?}");
        assert_eq!(switches, 1);
    }

    #[test]
    fn a_file_goes_out_whole_and_then_the_picture_ends() {
        let dir = std::env::temp_dir().join(format!("tally-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = flat_y4m(&dir, "whole.y4m", 90, 7);
        let session = unpaced(VideoSourceSpec::Y4m(path), None);
        let attached = session.attach();
        let got: Vec<_> = attached.video.iter().collect();
        assert_eq!(got.len(), 7);
        // 32x32 fitted into 64x48: the middle is the file's.
        assert!(got.iter().all(|p| p.frame.y[24 * 64 + 32] == 90));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_scene_draws_each_layer_at_its_rectangle_and_a_fade_mixes() {
        use crate::compose::{Placement, Rect};
        use scene::{Layer, LayerSource};
        let dir = std::env::temp_dir().join(format!("tally-scene-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let bright = flat_y4m(&dir, "bright.y4m", 200, 400);
        let dark = flat_y4m(&dir, "dark.y4m", 40, 400);
        let corner = Placement::at(Rect { x: 0.5, y: 0.5, w: 0.5, h: 0.5 });
        let two = Scene {
            name: "two".into(),
            layers: vec![
                Layer::full("dark", LayerSource::Video(VideoSourceSpec::Y4m(dark.clone()))),
                Layer { name: "bright".into(), source: LayerSource::Video(VideoSourceSpec::Y4m(bright)), placement: corner },
            ],
            mute_audio: false,
        };
        let session = unpaced(VideoSourceSpec::TestPattern, Some(two));
        let attached = session.attach();
        let p = attached.video.recv_timeout(Duration::from_secs(5)).expect("a picture");
        let y = |p: &Picture, x: usize, row: usize| p.frame.y[row * 64 + x];
        assert_eq!((y(&p, 10, 10), y(&p, 50, 40)), (40, 200));
        // A fade to the dark file alone: between the two, then dark.
        session.show(&Scene::single(VideoSourceSpec::Y4m(dark)), Transition::Fade(100)).expect("fade");
        let corner_luma: Vec<u8> = (0..12).map(|_| attached.video.recv_timeout(Duration::from_secs(5)).expect("a picture")).map(|p| y(&p, 50, 40)).collect();
        assert!(corner_luma.iter().any(|&v| v > 40 && v < 200), "{corner_luma:?}");
        assert_eq!(corner_luma.last(), Some(&40), "{corner_luma:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_rebased_picture_keeps_its_millisecond() {
        let frame = Arc::new(VideoFrame::black(16, 16, 12_345_678));
        let p = Picture { frame, offset_us: 2_345_000, switched: false };
        assert_eq!(p.media_us(), 10_000_678);
    }
}
