//! The nokhwa-backed parts of the camera: the only code that touches a
//! real device (enumeration, opening, grabbing through V4L2 and the other
//! backends nokhwa has).

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
        let listed_name = info.human_name();
        let description = info.description().to_string();
        let (name, modes) = match query_modes(info.index()) {
            Ok((card, modes)) => {
                // V4L2 names a camera from sysfs; where /sys is not there
                // (a sandbox, a container) nokhwa falls back to the
                // device path, and the driver's own card name reads
                // better (uvcvideo gives both the same name).
                let name = if listed_name.starts_with("/dev/") && !card.trim().is_empty() { card } else { listed_name };
                remember(index, &description, &name, &modes);
                (name, modes)
            }
            Err(e) => match recall(index, &description) {
                // A camera streaming in this process cannot be queried
                // (its driver refuses a format change while streaming:
                // EBUSY): what it offered when last asked still holds.
                Some(known) => known,
                None => {
                    tracing::debug!(camera = %listed_name, error = %e, "could not list camera modes");
                    (listed_name, Vec::new())
                }
            },
        };
        out.push(CameraInfo { index, name, description, modes });
    }
    Ok(out)
}

/// The last name and modes read from each camera (index, description).
type Known = Vec<((u32, String), (String, Vec<CameraMode>))>;
static KNOWN: Mutex<Known> = Mutex::new(Vec::new());
/// Cameras remembered at most (a machine with more is still listed, only
/// not remembered).
const MAX_KNOWN: usize = 64;

fn remember(index: u32, description: &str, name: &str, modes: &[CameraMode]) {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let key = (index, description.to_string());
    known.retain(|(k, _)| *k != key);
    if known.len() < MAX_KNOWN {
        known.push((key, (name.to_string(), modes.to_vec())));
    }
}

fn recall(index: u32, description: &str) -> Option<(String, Vec<CameraMode>)> {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    known.iter().find(|((i, d), _)| *i == index && d == description).map(|(_, v)| v.clone())
}

/// The driver's name for the camera and the modes Tally can use.
fn query_modes(index: &CameraIndex) -> Result<(String, Vec<CameraMode>), CaptureError> {
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
    Ok((cam.info().human_name(), modes))
}

struct NokhwaGrabber {
    camera: nokhwa::Camera,
    mode: CameraMode,
    /// The last frame, as nokhwa copied it out of the driver's buffer:
    /// lent to the converter rather than copied once more (it is the
    /// whole mmapped buffer, 4 MB for a 1080p MJPEG camera, whatever
    /// the JPEG's size: v4l-rs does not trim it to `bytesused`).
    last: Option<nokhwa::Buffer>,
}

impl FrameGrabber for NokhwaGrabber {
    fn mode(&self) -> CameraMode {
        self.mode
    }

    fn grab(&mut self) -> Result<GrabbedFrame<'_>, CaptureError> {
        let buffer = self.camera.frame().map_err(|e| CaptureError::Disconnected { device: format!("{e}") })?;
        let res = buffer.resolution();
        // nokhwa turns the driver's monotonic timestamp into wall time.
        let age = buffer.capture_timestamp().and_then(|at| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
            now.checked_sub(at)
        });
        let format = pixel_format(buffer.source_frame_format());
        let buffer = self.last.insert(buffer);
        Ok(GrabbedFrame {
            format,
            width: res.width(),
            height: res.height(),
            data: std::borrow::Cow::Borrowed(buffer.buffer()),
            age,
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
    Ok(Box::new(NokhwaGrabber { camera, mode, last: None }))
}
