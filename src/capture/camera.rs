//! Cameras (nokhwa, `input-native`: V4L2 on Linux, Media Foundation on
//! Windows, AVFoundation on macOS) as a live video source.
//!
//! - Enumeration lists each camera with the modes it offers; [`choose_mode`]
//!   picks the one closest to the broadcast's size and rate (never below the
//!   rate if avoidable, the smallest size not below the target, the cheapest
//!   pixel format to convert).
//! - Capture runs on its own thread: grab, convert to I420 at the broadcast
//!   size ([`FrameConverter`], the same code the recorded-frame tests drive),
//!   stamp with the capture time on the broadcast clock, hand over through a
//!   two-frame channel (a slow encoder drops camera frames, never queues them).
//! - A camera that fails or disappears turns into a [`SourceState::Fallback`]
//!   event and the stream keeps going at the nominal rate: a camera that
//!   says it is gone (unplugged: its driver fails the next frame with
//!   ENODEV) is replaced by a slate saying so from the next frame, at most
//!   [`FALLBACK_AFTER`] after its last picture; one that merely stops
//!   delivering freezes its last picture, and after [`STALLED_AFTER`]
//!   without a frame shows the slate too. The capture thread tries to reopen
//!   the camera, soon after a failure and then at most every
//!   [`REOPEN_INTERVAL`], so plugging it back in resumes the picture without
//!   restarting the stream.
//! - A panic inside the device layer (nokhwa and v4l-rs `unwrap` and
//!   `panic!` in places, e.g. when releasing buffers fails with anything but
//!   ENODEV) ends that capture session like a lost camera, not the thread.
//!
//! The grabbing itself is behind [`FrameGrabber`], so everything above can be
//! tested without a camera (these machines have none).

use super::convert::{FrameConverter, PixelFormat, RawFrame};
use super::{CaptureError, FrameRate, SourceState, SourceStatus, VideoFormat, VideoSource, slate};
use crate::media::{MediaClock, VideoFrame};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a lost camera is looked for again, at most.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(2);

/// The first retry of an open that failed comes this soon, and each next
/// one twice as late, up to [`REOPEN_INTERVAL`]: a camera switched away
/// from and back to is busy until the source that had it lets go (the
/// driver refuses buffers to a second user, EBUSY), which takes a frame
/// or two, not two seconds.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Frames waiting between the capture thread and the encoder: the newest
/// matters, so two is enough to absorb jitter without adding latency.
const FRAME_QUEUE: usize = 2;

/// With no camera frame for this long, the stand-in (frozen frame or slate)
/// is sent so the broadcast never stalls on a camera; from then on it is
/// sent at the nominal rate until the camera delivers again.
pub const FALLBACK_AFTER: Duration = Duration::from_millis(250);

/// A camera that stops delivering without reporting an error (a stalled
/// driver, a USB hub browning out) keeps its last picture frozen this long,
/// then shows the slate: viewers should not watch a still face for minutes
/// thinking the stream hung.
pub const STALLED_AFTER: Duration = Duration::from_secs(2);

/// One mode a camera offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CameraMode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Pixel layout.
    #[serde(serialize_with = "ser_format")]
    pub format: PixelFormat,
}

fn ser_format<S: serde::Serializer>(f: &PixelFormat, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.name())
}

impl std::fmt::Display for CameraMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}@{} {}", self.width, self.height, self.fps, self.format)
    }
}

/// A camera as `tally devices` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CameraInfo {
    /// Index for `--video camera:N`.
    pub index: u32,
    /// Human-readable name.
    pub name: String,
    /// What the OS says about it (driver, bus).
    pub description: String,
    /// Modes in a format Tally can convert; empty if the camera could not be queried.
    pub modes: Vec<CameraMode>,
}

/// Relative cost of converting a pixel format to I420 (lower is cheaper).
fn conversion_cost(f: PixelFormat) -> u8 {
    match f {
        PixelFormat::I420 => 0,
        PixelFormat::Nv12 => 1,
        PixelFormat::Yuyv => 2,
        PixelFormat::Gray => 3,
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => 4,
        PixelFormat::Mjpeg => 5,
    }
}

/// Picks the mode closest to `width`x`height`@`fps`: first a rate at least
/// `fps` (else the highest), then the smallest size covering the target
/// (else the largest), then the exact rate, then the cheapest format.
pub fn choose_mode(modes: &[CameraMode], width: u32, height: u32, fps: u32) -> Option<CameraMode> {
    let max_fps = modes.iter().map(|m| m.fps).max()?;
    let fps_floor = fps.min(max_fps);
    let fast_enough: Vec<&CameraMode> = modes.iter().filter(|m| m.fps >= fps_floor).collect();
    let covers = |m: &&CameraMode| m.width >= width && m.height >= height;
    let area = |m: &CameraMode| u64::from(m.width) * u64::from(m.height);
    let pool: Vec<&CameraMode> = if fast_enough.iter().any(covers) {
        fast_enough.into_iter().filter(covers).collect()
    } else {
        let largest = fast_enough.iter().map(|m| area(m)).max()?;
        fast_enough.into_iter().filter(|m| area(m) == largest).collect()
    };
    let best_area = if pool.iter().any(covers) { pool.iter().map(|m| area(m)).min()? } else { area(pool[0]) };
    pool.into_iter()
        .filter(|m| area(m) == best_area)
        .min_by_key(|m| (m.fps.abs_diff(fps), conversion_cost(m.format)))
        .copied()
}

/// Grabs frames from one opened camera (or a stand-in in tests).
/// Created and used on the capture thread only, so it need not be `Send`
/// (nokhwa's camera is not).
pub trait FrameGrabber {
    /// The mode it captures in.
    fn mode(&self) -> CameraMode;
    /// Blocks until the next frame and returns it; an error means the
    /// camera is gone (the capture thread then reopens it later).
    fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError>;
}

/// A frame as the grabber delivered it.
#[derive(Debug)]
pub struct GrabbedFrame<'a> {
    /// Layout.
    pub format: PixelFormat,
    /// Width the device reports for this frame.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Bytes.
    pub data: std::borrow::Cow<'a, [u8]>,
    /// How long ago the device captured it, from the driver's own timestamp
    /// (V4L2's buffer timestamp); `None` when it gives none, and the frame is
    /// stamped when it arrived.
    pub age: Option<Duration>,
}

/// A driver timestamp further back than this is not believed (a clock that
/// jumped, a driver that stamps nonsense): the frame is stamped on arrival.
const MAX_CAPTURE_AGE: Duration = Duration::from_secs(1);

/// Opens (or reopens) the camera; called on the capture thread.
pub type GrabberOpener = Box<dyn FnMut() -> Result<Box<dyn FrameGrabber>, CaptureError> + Send>;

/// A live camera as a video source.
pub struct CameraSource {
    name: String,
    out: VideoFormat,
    rx: Receiver<VideoFrame>,
    status: Arc<SourceStatus>,
    clock: Arc<Mutex<Option<MediaClock>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// What the source last showed: the last camera picture (frozen on a
    /// hiccup) or the slate painted over it. Kept here rather than trusted
    /// to the caller's buffer, which `next_frame` hands out fresh each time.
    held: VideoFrame,
    /// `held` is a real camera picture (freeze it on loss).
    have_picture: bool,
    /// A camera picture arrived at some point.
    ever_live: bool,
    /// Slate painted into the buffer and not overwritten since.
    slate_shown: Option<&'static str>,
    last_pts_us: Option<u64>,
    /// The capture thread's word that the camera is gone (its last grab or
    /// open failed), cleared by its next frame.
    lost: Arc<AtomicBool>,
    /// When the last camera picture arrived.
    last_live_at: Option<Instant>,
    /// The last frame sent was a stand-in: the next wait is one frame
    /// interval, not [`FALLBACK_AFTER`], so the stand-in keeps the rate.
    standing_in: bool,
}

impl std::fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraSource").field("name", &self.name).field("out", &self.out).finish_non_exhaustive()
    }
}

impl CameraSource {
    /// Starts capturing with `opener` (called now on the capture thread and
    /// again after a loss); frames come out at `width`x`height`, nominally `fps`.
    pub fn start(name: &str, opener: GrabberOpener, width: u32, height: u32, fps: u32) -> Result<Self, CaptureError> {
        Self::start_with_reopen(name, opener, width, height, fps, REOPEN_INTERVAL)
    }

    /// [`CameraSource::start`] with another reopen interval (tests).
    pub fn start_with_reopen(
        name: &str,
        opener: GrabberOpener,
        width: u32,
        height: u32,
        fps: u32,
        reopen: Duration,
    ) -> Result<Self, CaptureError> {
        let converter = FrameConverter::new(width, height)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(FRAME_QUEUE);
        let status = Arc::new(SourceStatus::new(name));
        status.set(SourceState::Fallback("waiting for the camera".into()));
        let clock = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, clock, stop, lost) = (status.clone(), clock.clone(), stop.clone(), lost.clone());
            let shared = Shared { tx, status, clock, stop, lost };
            std::thread::Builder::new()
                .name("tally-camera".into())
                .spawn(move || capture_loop(opener, converter, &shared, reopen))
                .map_err(CaptureError::Io)?
        };
        Ok(CameraSource {
            name: name.to_string(),
            out: VideoFormat { width, height, frame_rate: FrameRate::per_second(fps.max(1)) },
            rx,
            status,
            clock,
            stop,
            thread: Some(thread),
            held: VideoFrame::black(width, height, 0),
            have_picture: false,
            ever_live: false,
            slate_shown: None,
            last_pts_us: None,
            lost,
            last_live_at: None,
            standing_in: false,
        })
    }

    /// Opens a real camera: `index` from [`list_cameras`] (the first when
    /// `None`), in the mode closest to the broadcast's.
    pub fn open(index: Option<u32>, width: u32, height: u32, fps: u32) -> Result<Self, CaptureError> {
        let cameras = list_cameras()?;
        let pick = match index {
            None => cameras.first(),
            Some(i) => cameras.iter().find(|c| c.index == i),
        };
        let Some(info) = pick.cloned() else {
            return Err(CaptureError::DeviceNotFound {
                requested: index.map_or("camera".to_string(), |i| format!("camera {i}")),
                available: cameras.iter().map(|c| format!("{}: {}", c.index, c.name)).collect(),
            });
        };
        let mode = choose_mode(&info.modes, width, height, fps).ok_or_else(|| {
            CaptureError::Format(format!("camera {} ({}) offers no mode Tally can convert", info.index, info.name))
        })?;
        tracing::info!(camera = %info.name, %mode, "opening camera");
        let name = format!("camera {}: {}", info.index, info.name);
        let idx = info.index;
        let opener: GrabberOpener = Box::new(move || native::open(idx, mode));
        CameraSource::start(&name, opener, width, height, fps)
    }

    fn clock(&self) -> Option<MediaClock> {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_us(&self) -> u64 {
        self.clock().map_or(0, |c| c.micros_at(Instant::now()))
    }

    /// Keeps timestamps strictly increasing by at least a millisecond (FLV resolution).
    fn stamp(&mut self, pts_us: u64) -> u64 {
        let pts = match self.last_pts_us {
            Some(last) if pts_us < last + 1000 => last + 1000,
            _ => pts_us,
        };
        self.last_pts_us = Some(pts);
        pts
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The thread may be blocked in a driver call; it exits at its next
        // check, so it is detached rather than joined here.
        drop(self.thread.take());
    }
}

/// What the capture thread shares with its [`CameraSource`].
struct Shared {
    tx: SyncSender<VideoFrame>,
    status: Arc<SourceStatus>,
    clock: Arc<Mutex<Option<MediaClock>>>,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
}

/// How one capture session (an open of the camera) ended.
enum SessionEnd {
    /// The source was dropped or its receiver is gone: the thread ends.
    Stopped,
    /// The camera failed; retry after the reopen interval.
    Lost(String),
    /// The camera could not be opened.
    OpenFailed(String),
}

fn capture_loop(mut opener: GrabberOpener, mut converter: FrameConverter, shared: &Shared, reopen: Duration) {
    let mut reported_open_error = false;
    let status = &shared.status;
    let mut retry = FIRST_RETRY.min(reopen);
    while !shared.stop.load(Ordering::Relaxed) {
        // The device layer panics in places (see the module docs); that is
        // a lost camera, retried like any other, not a dead thread.
        let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| capture_session(&mut opener, &mut converter, shared)))
            .unwrap_or_else(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the camera driver layer panicked".into());
                SessionEnd::Lost(format!("camera layer failed: {why}"))
            });
        match end {
            SessionEnd::Stopped => return,
            SessionEnd::Lost(why) => {
                reported_open_error = false;
                retry = FIRST_RETRY.min(reopen);
                shared.lost.store(true, Ordering::SeqCst);
                tracing::warn!(camera = %status.name(), reason = %why, "camera lost; showing a slate and retrying");
                status.set(SourceState::Fallback(format!("camera lost ({why}); retrying")));
            }
            SessionEnd::OpenFailed(e) => {
                shared.lost.store(true, Ordering::SeqCst);
                if !reported_open_error {
                    tracing::warn!(camera = %status.name(), error = %e, "camera not available; retrying (every {reopen:?} at most)");
                    reported_open_error = true;
                }
                status.set(SourceState::Fallback(format!("camera not available: {e}")));
            }
        }
        let until = Instant::now() + retry;
        retry = (retry * 2).min(reopen);
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
    }
}

/// Opens the camera once and grabs until it fails or the source stops.
fn capture_session(opener: &mut GrabberOpener, converter: &mut FrameConverter, shared: &Shared) -> SessionEnd {
    let status = &shared.status;
    let mut grabber = match opener() {
        Ok(g) => g,
        Err(e) => return SessionEnd::OpenFailed(e.to_string()),
    };
    tracing::info!(camera = %status.name(), mode = %grabber.mode(), "camera streaming");
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return SessionEnd::Stopped;
        }
        let frame = match grabber.grab() {
            Ok(f) => f,
            Err(e) => return SessionEnd::Lost(e.to_string()),
        };
        // Stamped when it was captured: frames the thread was too busy to
        // take come out of the driver back to back, and stamped on arrival
        // they would look like a burst (and a pause before it).
        let now = Instant::now();
        let at = frame.age.filter(|age| *age <= MAX_CAPTURE_AGE).and_then(|age| now.checked_sub(age)).unwrap_or(now);
        let Some(clock) = *shared.clock.lock().unwrap_or_else(|e| e.into_inner()) else { continue };
        let raw = RawFrame { format: frame.format, width: frame.width, height: frame.height, data: &frame.data };
        match converter.convert(&raw, clock.micros_at(at)) {
            Ok(picture) => {
                shared.lost.store(false, Ordering::SeqCst);
                status.set(SourceState::Live);
                match shared.tx.try_send(picture) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        status.overruns.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return SessionEnd::Stopped,
                }
            }
            // One bad frame (a corrupt JPEG) is skipped, not fatal.
            Err(e) => {
                status.overruns.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(camera = %status.name(), error = %e, "camera frame skipped");
            }
        }
    }
}

impl VideoSource for CameraSource {
    fn format(&self) -> VideoFormat {
        self.out
    }

    fn is_live(&self) -> bool {
        true
    }

    fn start(&mut self, clock: MediaClock) {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(clock);
    }

    fn status(&self) -> Option<Arc<SourceStatus>> {
        Some(self.status.clone())
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError> {
        let mut frame = VideoFrame::black(self.out.width, self.out.height, 0);
        Ok(self.fill_next(&mut frame)?.then_some(frame))
    }

    /// A camera frame when one comes within [`FALLBACK_AFTER`] (or, once
    /// standing in, within a frame interval); otherwise a stand-in at about
    /// the nominal rate, restamped with the current time: a slate once the
    /// camera said it is gone, never was, or stalled for [`STALLED_AFTER`],
    /// else its last picture frozen. The encoder always gets a frame.
    fn fill_next(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        let interval = Duration::from_micros(self.out.frame_rate.pts_us_of_frame(1).max(1));
        let wait = if self.standing_in {
            let now = self.now_us();
            let due = self.last_pts_us.map_or(now, |l| l + interval.as_micros() as u64);
            Duration::from_micros(due.saturating_sub(now)).min(interval)
        } else {
            FALLBACK_AFTER.max(interval * 3)
        };
        let received = self.rx.recv_timeout(wait);
        if matches!(received, Err(RecvTimeoutError::Disconnected)) {
            // The capture thread is gone (it returns only when stopped, but
            // a stand-in must never run unpaced): wait out the interval.
            std::thread::sleep(wait);
        }
        match received {
            Ok(picture) => {
                let pts = self.stamp(picture.pts_us);
                *frame = picture;
                frame.pts_us = pts;
                copy_frame(&mut self.held, frame);
                self.have_picture = true;
                self.ever_live = true;
                self.slate_shown = None;
                self.standing_in = false;
                self.last_live_at = Some(Instant::now());
                Ok(true)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                self.standing_in = true;
                let stalled = self.last_live_at.is_none_or(|t| t.elapsed() >= STALLED_AFTER);
                let text = if !self.ever_live {
                    Some("waiting for camera")
                } else if self.lost.load(Ordering::SeqCst) {
                    Some("camera disconnected")
                } else if stalled || !self.have_picture {
                    Some("camera not responding")
                } else {
                    None // a hiccup: the last picture, frozen
                };
                if let Some(text) = text
                    && self.slate_shown != Some(text)
                {
                    slate::paint(&mut self.held, &[text]);
                    self.slate_shown = Some(text);
                    self.have_picture = false;
                }
                copy_frame(frame, &self.held);
                frame.pts_us = self.stamp(self.now_us());
                Ok(true)
            }
        }
    }
}

/// Copies `src`'s picture into `dst`, reusing `dst`'s planes when they fit.
fn copy_frame(dst: &mut VideoFrame, src: &VideoFrame) {
    dst.width = src.width;
    dst.height = src.height;
    dst.pts_us = src.pts_us;
    for (d, s) in [(&mut dst.y, &src.y), (&mut dst.u, &src.u), (&mut dst.v, &src.v)] {
        d.clear();
        d.extend_from_slice(s);
    }
}

/// Every camera the OS reports, with the modes Tally can use. An empty list
/// (no camera, as on a headless machine) is not an error.
pub fn list_cameras() -> Result<Vec<CameraInfo>, CaptureError> {
    native::list()
}

mod native;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn m(width: u32, height: u32, fps: u32, format: PixelFormat) -> CameraMode {
        CameraMode { width, height, fps, format }
    }

    #[test]
    fn mode_choice() {
        use PixelFormat::*;
        let webcam = [
            m(1920, 1080, 30, Mjpeg),
            m(1920, 1080, 5, Yuyv),
            m(1280, 720, 30, Mjpeg),
            m(1280, 720, 10, Yuyv),
            m(640, 480, 30, Yuyv),
            m(640, 480, 30, Mjpeg),
        ];
        // 720p30 needs MJPEG on this USB2 camera (YUYV is only 10 fps there).
        assert_eq!(choose_mode(&webcam, 1280, 720, 30), Some(m(1280, 720, 30, Mjpeg)));
        // 480p30: the cheap format wins at equal size and rate.
        assert_eq!(choose_mode(&webcam, 640, 480, 30), Some(m(640, 480, 30, Yuyv)));
        // Larger than anything: the largest that keeps the rate.
        assert_eq!(choose_mode(&webcam, 3840, 2160, 30), Some(m(1920, 1080, 30, Mjpeg)));
        // 60 fps wanted, none offered: the fastest there is.
        assert_eq!(choose_mode(&webcam, 1280, 720, 60), Some(m(1280, 720, 30, Mjpeg)));
        assert_eq!(choose_mode(&[], 1280, 720, 30), None);
    }

    /// Replays frames of one format, then "unplugs" after `frames` frames;
    /// reopening works `reopens` times.
    struct Replay {
        mode: CameraMode,
        data: Vec<u8>,
        left: usize,
    }

    impl FrameGrabber for Replay {
        fn mode(&self) -> CameraMode {
            self.mode
        }
        fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError> {
            if self.left == 0 {
                return Err(CaptureError::Disconnected { device: "replay".into() });
            }
            self.left -= 1;
            std::thread::sleep(Duration::from_millis(10));
            Ok(GrabbedFrame { format: self.mode.format, width: self.mode.width, height: self.mode.height, data: std::borrow::Cow::Borrowed(&self.data), age: None })
        }
    }

    /// Stands in for a camera whose frames stop coming without an error.
    struct Stalls {
        mode: CameraMode,
        data: Vec<u8>,
        left: usize,
        stop: Arc<AtomicBool>,
    }

    impl FrameGrabber for Stalls {
        fn mode(&self) -> CameraMode {
            self.mode
        }
        fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError> {
            if self.left == 0 {
                // Stalled: the grab blocks, as a driver's does, until the
                // source is dropped.
                while !self.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Err(CaptureError::Disconnected { device: "stalled".into() });
            }
            self.left -= 1;
            std::thread::sleep(Duration::from_millis(10));
            Ok(GrabbedFrame { format: self.mode.format, width: self.mode.width, height: self.mode.height, data: std::borrow::Cow::Borrowed(&self.data), age: None })
        }
    }

    /// Runs `cam` until `until` holds for a frame; the luma of the top-left
    /// pixel each time it changes, and the largest step between timestamps.
    /// Through `next_frame`, a fresh buffer each time, as the capture
    /// session asks: the stand-in must not rely on the caller's buffer.
    fn lumas_until(cam: &mut CameraSource, until: impl Fn(u8) -> bool) -> (Vec<u8>, u64) {
        let (mut seen, mut last_pts, mut max_step) = (Vec::new(), None::<u64>, 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let frame = cam.next_frame().unwrap().expect("a camera source never ends");
            if let Some(l) = last_pts {
                assert!(frame.pts_us >= l + 1000, "timestamps must increase: {} after {l}", frame.pts_us);
                max_step = max_step.max(frame.pts_us - l);
            }
            last_pts = Some(frame.pts_us);
            let y = frame.y[0];
            if seen.last() != Some(&y) {
                seen.push(y);
            }
            if until(y) {
                return (seen, max_step);
            }
        }
        panic!("not reached in 20 s: lumas {seen:?}");
    }

    #[test]
    fn unplugged_camera_shows_the_slate_at_the_nominal_rate_then_recovers() {
        let opens = Arc::new(AtomicUsize::new(0));
        let opens2 = opens.clone();
        let mode = m(64, 48, 30, PixelFormat::I420);
        let opener: GrabberOpener = Box::new(move || {
            // First open: 5 frames of luma 200, then the device reports it is gone.
            // Second: refused (unplugged). Third: back, luma 90.
            match opens2.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(Box::new(Replay { mode, data: vec![200; 64 * 48 * 3 / 2], left: 5 }) as Box<dyn FrameGrabber>),
                1 => Err(CaptureError::DeviceNotFound { requested: "camera replay".into(), available: vec![] }),
                _ => Ok(Box::new(Replay { mode, data: vec![90; 64 * 48 * 3 / 2], left: usize::MAX })),
            }
        });
        let mut cam = CameraSource::start_with_reopen("replay", opener, 64, 48, 30, Duration::from_millis(300)).unwrap();
        cam.start(MediaClock::start());
        let status = VideoSource::status(&cam).unwrap();
        // Wait for the first picture (the "waiting" slate before it is fine).
        let _ = lumas_until(&mut cam, |y| y == 200);
        let (seen, max_step) = lumas_until(&mut cam, |y| y == 90);
        // Live 200s, then the slate (background luma 40) while it is gone,
        // not the frozen picture, then 90 once back.
        assert_eq!(seen, vec![200, 40, 90], "luma sequence: {seen:?}");
        // The stand-in keeps about the nominal rate: the only long step is
        // the wait that tells a loss from a late frame.
        assert!(max_step <= FALLBACK_AFTER.as_micros() as u64 + 40_000, "largest timestamp step {max_step} us");
        assert!(opens.load(Ordering::SeqCst) >= 3);
        assert_eq!(status.state(), SourceState::Live);
    }

    #[test]
    fn a_stalled_camera_freezes_its_picture_then_shows_the_slate() {
        let mode = m(64, 48, 30, PixelFormat::I420);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let mut once = true;
        let opener: GrabberOpener = Box::new(move || {
            if std::mem::take(&mut once) {
                Ok(Box::new(Stalls { mode, data: vec![200; 64 * 48 * 3 / 2], left: 5, stop: stop2.clone() }) as Box<dyn FrameGrabber>)
            } else {
                Err(CaptureError::DeviceNotFound { requested: "camera".into(), available: vec![] })
            }
        });
        let mut cam = CameraSource::start_with_reopen("stall", opener, 64, 48, 30, Duration::from_millis(100)).unwrap();
        cam.start(MediaClock::start());
        let _ = lumas_until(&mut cam, |y| y == 200);
        let stalled_at = Instant::now();
        let (seen, max_step) = lumas_until(&mut cam, |y| y == 40);
        let frozen_for = stalled_at.elapsed();
        stop.store(true, Ordering::SeqCst);
        assert_eq!(seen, vec![200, 40], "{seen:?}");
        // Frozen for a while (not the slate at the first late frame)...
        assert!(frozen_for >= STALLED_AFTER - Duration::from_millis(400), "slate after only {frozen_for:?}");
        assert!(max_step <= FALLBACK_AFTER.as_micros() as u64 + 40_000, "largest timestamp step {max_step} us");
    }

    /// A device layer that panics (nokhwa and v4l-rs do, in places) costs
    /// the session, not the capture thread: the camera is reopened.
    #[test]
    fn a_panicking_device_layer_is_a_lost_camera_not_a_dead_thread() {
        struct Panics;
        impl FrameGrabber for Panics {
            fn mode(&self) -> CameraMode {
                m(64, 48, 30, PixelFormat::I420)
            }
            fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError> {
                panic!("release of buffers failed: EIO");
            }
        }
        let opens = Arc::new(AtomicUsize::new(0));
        let opens2 = opens.clone();
        let opener: GrabberOpener = Box::new(move || match opens2.fetch_add(1, Ordering::SeqCst) {
            0 => Ok(Box::new(Panics) as Box<dyn FrameGrabber>),
            _ => Ok(Box::new(Replay { mode: m(64, 48, 30, PixelFormat::I420), data: vec![90; 64 * 48 * 3 / 2], left: usize::MAX })),
        });
        let mut cam = CameraSource::start_with_reopen("panics", opener, 64, 48, 30, Duration::from_millis(50)).unwrap();
        cam.start(MediaClock::start());
        let (seen, _) = lumas_until(&mut cam, |y| y == 90);
        assert_eq!(seen.last(), Some(&90), "{seen:?}");
        assert!(opens.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn no_camera_at_all_sends_a_slate() {
        let opener: GrabberOpener =
            Box::new(|| Err(CaptureError::DeviceNotFound { requested: "camera 0".into(), available: vec![] }));
        let mut cam = CameraSource::start("none", opener, 320, 180, 30).unwrap();
        cam.start(MediaClock::start());
        let mut frame = VideoFrame::black(320, 180, 0);
        assert!(cam.fill_next(&mut frame).unwrap());
        // A slate: mid-grey background, not camera black.
        assert!(frame.y.iter().filter(|&&v| v == 40).count() > 320 * 100);
        assert!(matches!(VideoSource::status(&cam).unwrap().state(), SourceState::Fallback(_)));
    }

    #[test]
    fn listing_on_a_machine_without_cameras_is_empty_not_an_error() {
        // These machines have no camera; a machine with one lists it.
        let cams = list_cameras().unwrap();
        for c in &cams {
            assert!(!c.name.is_empty());
        }
    }
}
