//! Camera frames in every pixel format a webcam delivers (YUYV, NV12,
//! RGB24, BGR24, GRAY, MJPEG), recorded by ffmpeg, go through the same code
//! the live camera uses — `CameraSource`'s capture thread and its
//! `FrameConverter` — and must come out as the I420 picture ffmpeg makes of
//! the same bytes (BT.709 limited range for RGB and JPEG input).
//!
//! These machines have no camera (and no v4l2loopback), so the device itself
//! is replaced at the one seam made for it, the `FrameGrabber`.

use crate::common;

use common::media::ffmpeg_make;
use common::*;
use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};
use tally::capture::camera::{CameraMode, FrameGrabber, GrabbedFrame, GrabberOpener};
use tally::capture::{CameraSource, PixelFormat, VideoSource};
use tally::media::{MediaClock, VideoFrame};

/// Replays one recorded frame forever, at about 30 fps.
struct Recorded {
    mode: CameraMode,
    data: Vec<u8>,
}

impl FrameGrabber for Recorded {
    fn mode(&self) -> CameraMode {
        self.mode
    }
    fn grab(&mut self) -> Result<GrabbedFrame<'_>, tally::capture::CaptureError> {
        // A camera's own pace (this is the device clock, not a test wait).
        std::thread::sleep(Duration::from_millis(33));
        Ok(GrabbedFrame { format: self.mode.format, width: self.mode.width, height: self.mode.height, data: Cow::Borrowed(&self.data), age: None })
    }
}

/// Runs `data` through a CameraSource producing `out_w`x`out_h` and returns
/// the first real (non-slate) frame.
fn through_camera_source(format: PixelFormat, w: u32, h: u32, data: Vec<u8>, out_w: u32, out_h: u32) -> VideoFrame {
    let mode = CameraMode { width: w, height: h, fps: 30, format };
    let mut data = Some(data);
    let opener: GrabberOpener = Box::new(move || match data.take() {
        Some(d) => Ok(Box::new(Recorded { mode, data: d }) as Box<dyn FrameGrabber>),
        None => Err(tally::capture::CaptureError::Disconnected { device: "recorded".into() }),
    });
    let mut cam = CameraSource::start("recorded camera", opener, out_w, out_h, 30).expect("camera source");
    cam.start(MediaClock::start());
    let status = VideoSource::status(&cam).expect("status");
    let mut frame = VideoFrame::black(out_w, out_h, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(cam.fill_next(&mut frame).expect("frame"), "camera source ended");
        if status.state() == tally::capture::SourceState::Live {
            // The frame after the state flips is certainly a camera frame.
            assert!(cam.fill_next(&mut frame).expect("frame"));
            return frame;
        }
        assert!(Instant::now() < deadline, "no camera frame within 10 s: {:?}", status.state());
    }
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>() / a.len() as f64;
    if mse == 0.0 { 99.0 } else { 10.0 * (255.0f64 * 255.0 / mse).log10() }
}

fn read_i420(path: &Path, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(path).expect("read reference");
    assert_eq!(bytes.len(), w * h * 3 / 2, "reference size");
    let (y, rest) = bytes.split_at(w * h);
    let (u, v) = rest.split_at(w * h / 4);
    (y.to_vec(), u.to_vec(), v.to_vec())
}

/// ffmpeg's pix_fmt name for a camera format.
fn ffmpeg_fmt(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Yuyv => "yuyv422",
        PixelFormat::Nv12 => "nv12",
        PixelFormat::Rgb24 => "rgb24",
        PixelFormat::Bgr24 => "bgr24",
        PixelFormat::Gray => "gray",
        PixelFormat::I420 => "yuv420p",
        PixelFormat::Mjpeg => "mjpeg",
    }
}

/// Records one frame in `format` at `w`x`h`, and ffmpeg's own I420 of it at
/// `out_w`x`out_h`; converts through the camera path and compares.
fn check(format: PixelFormat, w: u32, h: u32, out_w: u32, out_h: u32) {
    require("ffmpeg");
    let dir = TestDir::new(&format!("camfmt-{}", ffmpeg_fmt(format)));
    let raw = dir.join("frame.raw");
    let reference = dir.join("reference.yuv");
    let size = format!("{w}x{h}");
    let src = format!("testsrc2=size={size}:rate=1");
    let raw_s = raw.to_string_lossy().into_owned();
    let ref_s = reference.to_string_lossy().into_owned();
    let to_ref = format!("scale={out_w}:{out_h}:out_color_matrix=bt709:out_range=tv,format=yuv420p");
    if format == PixelFormat::Mjpeg {
        ffmpeg_make(&["-f", "lavfi", "-i", &src, "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "2", "-f", "mjpeg", &raw_s]);
        ffmpeg_make(&["-i", &raw_s, "-vf", &to_ref, "-f", "rawvideo", &ref_s]);
    } else {
        let fmt = ffmpeg_fmt(format);
        ffmpeg_make(&["-f", "lavfi", "-i", &src, "-frames:v", "1", "-pix_fmt", fmt, "-f", "rawvideo", &raw_s]);
        // The reference is made from the recorded bytes, not from testsrc2 again.
        let in_matrix = if matches!(format, PixelFormat::Rgb24 | PixelFormat::Bgr24) { to_ref.clone() } else { format!("scale={out_w}:{out_h},format=yuv420p") };
        ffmpeg_make(&["-f", "rawvideo", "-pix_fmt", fmt, "-s", &size, "-i", &raw_s, "-vf", &in_matrix, "-f", "rawvideo", &ref_s]);
    }
    let data = std::fs::read(&raw).expect("recorded frame");
    let frame = through_camera_source(format, w, h, data, out_w, out_h);
    assert_eq!((frame.width, frame.height), (out_w, out_h));
    let (ry, ru, rv) = read_i420(&reference, out_w as usize, out_h as usize);
    let (py, pu, pv) = (psnr(&frame.y, &ry), psnr(&frame.u, &ru), psnr(&frame.v, &rv));
    eprintln!("{format} {w}x{h} -> {out_w}x{out_h}: PSNR Y {py:.1} dB, U {pu:.1} dB, V {pv:.1} dB");
    // Rounding and chroma siting differ between converters; a wrong matrix,
    // range, plane order or swapped channels costs 15 dB or more.
    // Scaling: bilinear here, bicubic in ffmpeg, which shows most in the
    // small chroma planes.
    let (min_y, min_c) = if w == out_w && h == out_h { (38.0, 34.0) } else { (30.0, 25.0) };
    assert!(py >= min_y, "{format}: luma PSNR {py:.1} dB < {min_y}");
    if format != PixelFormat::Gray {
        assert!(pu >= min_c && pv >= min_c, "{format}: chroma PSNR U {pu:.1} / V {pv:.1} dB < {min_c}");
    }
}

#[test]
fn yuyv() {
    check(PixelFormat::Yuyv, 640, 480, 640, 480);
}

#[test]
fn nv12() {
    check(PixelFormat::Nv12, 640, 480, 640, 480);
}

#[test]
fn rgb24() {
    check(PixelFormat::Rgb24, 640, 480, 640, 480);
}

#[test]
fn bgr24() {
    check(PixelFormat::Bgr24, 640, 480, 640, 480);
}

#[test]
fn gray() {
    check(PixelFormat::Gray, 640, 480, 640, 480);
}

#[test]
fn mjpeg() {
    check(PixelFormat::Mjpeg, 640, 480, 640, 480);
}

/// A camera that cannot give the broadcast size is scaled (same aspect).
#[test]
fn mjpeg_scaled_up_and_yuyv_scaled_down() {
    check(PixelFormat::Mjpeg, 320, 240, 640, 480);
    check(PixelFormat::Yuyv, 1280, 960, 640, 480);
}
