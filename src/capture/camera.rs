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
//!   event: the stream keeps going with the last frame frozen (or a slate if
//!   there never was one), and the capture thread tries to reopen the camera
//!   every [`REOPEN_INTERVAL`], so plugging it back in resumes the picture.
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

/// How often a lost camera is looked for again.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(2);

/// Frames waiting between the capture thread and the encoder: the newest
/// matters, so two is enough to absorb jitter without adding latency.
const FRAME_QUEUE: usize = 2;

/// With no camera frame for this long, the stand-in (frozen frame or slate)
/// is sent so the broadcast never stalls on a camera.
const FALLBACK_AFTER: Duration = Duration::from_millis(250);

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
}

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
    /// The pipeline's buffer holds a real camera picture (freeze it on loss).
    have_picture: bool,
    /// A camera picture arrived at some point.
    ever_live: bool,
    /// Slate painted into the buffer and not overwritten since.
    slate_shown: Option<&'static str>,
    last_pts_us: Option<u64>,
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
        let thread = {
            let (status, clock, stop) = (status.clone(), clock.clone(), stop.clone());
            std::thread::Builder::new()
                .name("tally-camera".into())
                .spawn(move || capture_loop(opener, converter, &tx, &status, &clock, &stop, reopen))
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
            have_picture: false,
            ever_live: false,
            slate_shown: None,
            last_pts_us: None,
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

fn capture_loop(
    mut opener: GrabberOpener,
    mut converter: FrameConverter,
    tx: &SyncSender<VideoFrame>,
    status: &SourceStatus,
    clock: &Mutex<Option<MediaClock>>,
    stop: &AtomicBool,
    reopen: Duration,
) {
    let mut reported_open_error = false;
    while !stop.load(Ordering::Relaxed) {
        match opener() {
            Ok(mut grabber) => {
                reported_open_error = false;
                tracing::info!(camera = %status.name(), mode = %grabber.mode(), "camera streaming");
                let why = loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let frame = match grabber.grab() {
                        Ok(f) => f,
                        Err(e) => break e.to_string(),
                    };
                    let at = Instant::now();
                    let Some(clock) = *clock.lock().unwrap_or_else(|e| e.into_inner()) else { continue };
                    let raw = RawFrame { format: frame.format, width: frame.width, height: frame.height, data: &frame.data };
                    match converter.convert(&raw, clock.micros_at(at)) {
                        Ok(picture) => {
                            status.set(SourceState::Live);
                            match tx.try_send(picture) {
                                Ok(()) => {}
                                Err(TrySendError::Full(_)) => {
                                    status.overruns.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(TrySendError::Disconnected(_)) => return,
                            }
                        }
                        // One bad frame (a corrupt JPEG) is skipped, not fatal.
                        Err(e) => {
                            status.overruns.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(camera = %status.name(), error = %e, "camera frame skipped");
                        }
                    }
                };
                tracing::warn!(camera = %status.name(), reason = %why, "camera lost; keeping the stream going with the last frame and retrying");
                status.set(SourceState::Fallback(format!("camera lost ({why}); showing the last frame")));
            }
            Err(e) => {
                if !reported_open_error {
                    tracing::warn!(camera = %status.name(), error = %e, "camera not available; retrying every {reopen:?}");
                    reported_open_error = true;
                }
                status.set(SourceState::Fallback(format!("camera not available: {e}")));
            }
        }
        let until = Instant::now() + reopen;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
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

    /// A camera frame when one comes within `FALLBACK_AFTER`; otherwise the
    /// buffer's last picture frozen (or a slate), restamped with the current
    /// time, so the encoder always gets a frame at about the nominal rate.
    fn fill_next(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        let interval = Duration::from_micros(self.out.frame_rate.pts_us_of_frame(1).max(1));
        match self.rx.recv_timeout(FALLBACK_AFTER.max(interval * 3)) {
            Ok(picture) => {
                let pts = self.stamp(picture.pts_us);
                *frame = picture;
                frame.pts_us = pts;
                self.have_picture = true;
                self.ever_live = true;
                self.slate_shown = None;
                Ok(true)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                if frame.width != self.out.width || frame.height != self.out.height {
                    *frame = VideoFrame::black(self.out.width, self.out.height, 0);
                    self.have_picture = false;
                }
                if !self.have_picture {
                    let text = if self.ever_live { "camera disconnected" } else { "waiting for camera" };
                    if self.slate_shown != Some(text) {
                        slate::paint(frame, &[text]);
                        self.slate_shown = Some(text);
                    }
                }
                // Pace the stand-in at about the nominal rate.
                let now = self.now_us();
                let due = self.last_pts_us.map_or(now, |l| l + interval.as_micros() as u64);
                if due > now {
                    std::thread::sleep(Duration::from_micros(due - now).min(interval));
                }
                frame.pts_us = self.stamp(self.now_us());
                Ok(true)
            }
        }
    }
}

/// Every camera the OS reports, with the modes Tally can use. An empty list
/// (no camera, as on a headless machine) is not an error.
pub fn list_cameras() -> Result<Vec<CameraInfo>, CaptureError> {
    native::list()
}

/// The nokhwa-backed parts: the only code here that touches a real device.
mod native {
    use super::*;
    use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

    /// Formats Tally converts (nokhwa's names).
    const USABLE: &[FrameFormat] =
        &[FrameFormat::NV12, FrameFormat::YUYV, FrameFormat::MJPEG, FrameFormat::RAWRGB, FrameFormat::RAWBGR, FrameFormat::GRAY];

    fn pixel_format(f: FrameFormat) -> PixelFormat {
        match f {
            FrameFormat::MJPEG => PixelFormat::Mjpeg,
            FrameFormat::YUYV => PixelFormat::Yuyv,
            FrameFormat::NV12 => PixelFormat::Nv12,
            FrameFormat::GRAY => PixelFormat::Gray,
            FrameFormat::RAWRGB => PixelFormat::Rgb24,
            FrameFormat::RAWBGR => PixelFormat::Bgr24,
        }
    }

    fn frame_format(f: PixelFormat) -> Option<FrameFormat> {
        Some(match f {
            PixelFormat::Mjpeg => FrameFormat::MJPEG,
            PixelFormat::Yuyv => FrameFormat::YUYV,
            PixelFormat::Nv12 => FrameFormat::NV12,
            PixelFormat::Gray => FrameFormat::GRAY,
            PixelFormat::Rgb24 => FrameFormat::RAWRGB,
            PixelFormat::Bgr24 => FrameFormat::RAWBGR,
            PixelFormat::I420 => return None,
        })
    }

    fn err(e: nokhwa::NokhwaError) -> CaptureError {
        CaptureError::Format(format!("camera: {e}"))
    }

    pub(super) fn list() -> Result<Vec<CameraInfo>, CaptureError> {
        let Some(backend) = nokhwa::native_api_backend() else { return Ok(Vec::new()) };
        // No camera subsystem at all (no /dev/video*, no permission) reads
        // as "no cameras", which is what the user needs to know.
        let infos = match nokhwa::query(backend) {
            Ok(list) => list,
            Err(e) => {
                tracing::debug!(error = %e, "camera query failed; treating as no cameras");
                Vec::new()
            }
        };
        let mut out = Vec::new();
        for (n, info) in infos.into_iter().enumerate() {
            let index = info.index().as_index().unwrap_or(n as u32);
            let modes = query_modes(info.index()).unwrap_or_else(|e| {
                tracing::debug!(camera = %info.human_name(), error = %e, "could not list camera modes");
                Vec::new()
            });
            out.push(CameraInfo { index, name: info.human_name(), description: info.description().to_string(), modes });
        }
        Ok(out)
    }

    fn query_modes(index: &CameraIndex) -> Result<Vec<CameraMode>, CaptureError> {
        let request = RequestedFormat::with_formats(RequestedFormatType::None, USABLE);
        let mut cam = nokhwa::Camera::with_backend(index.clone(), request, ApiBackend::Auto).map_err(err)?;
        let formats = cam.compatible_camera_formats().map_err(err)?;
        let mut modes: Vec<CameraMode> = formats
            .into_iter()
            .filter(|f| USABLE.contains(&f.format()))
            .map(|f| CameraMode { width: f.width(), height: f.height(), fps: f.frame_rate(), format: pixel_format(f.format()) })
            .collect();
        modes.sort_by_key(|m| (std::cmp::Reverse(u64::from(m.width) * u64::from(m.height)), std::cmp::Reverse(m.fps), conversion_cost(m.format)));
        modes.dedup();
        Ok(modes)
    }

    struct NokhwaGrabber {
        camera: nokhwa::Camera,
        mode: CameraMode,
        buf: Vec<u8>,
    }

    impl FrameGrabber for NokhwaGrabber {
        fn mode(&self) -> CameraMode {
            self.mode
        }

        fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError> {
            let buffer = self.camera.frame().map_err(|e| CaptureError::Disconnected { device: format!("{e}") })?;
            let res = buffer.resolution();
            self.buf.clear();
            self.buf.extend_from_slice(buffer.buffer());
            Ok(GrabbedFrame {
                format: pixel_format(buffer.source_frame_format()),
                width: res.width(),
                height: res.height(),
                data: std::borrow::Cow::Borrowed(&self.buf),
            })
        }
    }

    impl Drop for NokhwaGrabber {
        fn drop(&mut self) {
            let _ = self.camera.stop_stream();
        }
    }

    pub(super) fn open(index: u32, mode: CameraMode) -> Result<Box<dyn FrameGrabber>, CaptureError> {
        let fourcc = frame_format(mode.format).ok_or_else(|| CaptureError::Format(format!("{} is not a camera format", mode.format)))?;
        let wanted = CameraFormat::new_from(mode.width, mode.height, fourcc, mode.fps);
        let request = RequestedFormat::with_formats(RequestedFormatType::Exact(wanted), USABLE);
        let mut camera = nokhwa::Camera::with_backend(CameraIndex::Index(index), request, ApiBackend::Auto).map_err(err)?;
        camera.open_stream().map_err(err)?;
        Ok(Box::new(NokhwaGrabber { camera, mode, buf: Vec::new() }))
    }
}

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
            Ok(GrabbedFrame { format: self.mode.format, width: self.mode.width, height: self.mode.height, data: std::borrow::Cow::Borrowed(&self.data) })
        }
    }

    #[test]
    fn unplugged_camera_freezes_the_last_frame_and_keeps_going_then_recovers() {
        let opens = Arc::new(AtomicUsize::new(0));
        let opens2 = opens.clone();
        let mode = m(64, 48, 30, PixelFormat::I420);
        let opener: GrabberOpener = Box::new(move || {
            // First open: 5 frames of luma 200. Second: refused (unplugged). Third: back, luma 90.
            match opens2.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(Box::new(Replay { mode, data: vec![200; 64 * 48 * 3 / 2], left: 5 }) as Box<dyn FrameGrabber>),
                1 => Err(CaptureError::DeviceNotFound { requested: "camera replay".into(), available: vec![] }),
                _ => Ok(Box::new(Replay { mode, data: vec![90; 64 * 48 * 3 / 2], left: usize::MAX })),
            }
        });
        let mut cam = CameraSource::start_with_reopen("replay", opener, 64, 48, 30, Duration::from_millis(100)).unwrap();
        cam.start(MediaClock::start());
        let status = VideoSource::status(&cam).unwrap();
        let mut frame = VideoFrame::black(64, 48, 0);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last_pts = None;
        // Run until the camera came back.
        while Instant::now() < deadline {
            assert!(cam.fill_next(&mut frame).unwrap());
            if let Some(l) = last_pts {
                assert!(frame.pts_us >= l + 1000, "timestamps must increase: {} after {l}", frame.pts_us);
            }
            last_pts = Some(frame.pts_us);
            let y = frame.y[0];
            if seen.last() != Some(&y) {
                seen.push(y);
            }
            if y == 90 {
                break;
            }
        }
        // Live 200s, then the same 200 frozen while it is gone, then 90 once back:
        // the picture never went black.
        assert_eq!(seen, vec![200, 90], "luma sequence: {seen:?}");
        assert!(opens.load(Ordering::SeqCst) >= 3);
        assert_eq!(status.state(), SourceState::Live);
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
