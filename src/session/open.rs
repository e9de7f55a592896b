//! Opening a source by its spec, with the fallbacks a streamer expects: no
//! camera means the test pattern, no microphone means silence (each with a
//! notice); a camera or microphone named explicitly that is not there is an
//! error listing those that are.

use super::{AUDIO_CHANNELS, AUDIO_RATE, SessionFormat};
use crate::capture::{
    AudioSource, AudioSourceSpec, CameraSource, CaptureError, MicSource, Silence, SourceStatus, TestPattern, Tone, VideoSource,
    VideoSourceSpec, WavSource, Y4mSource, list_cameras,
};
use crate::capture::screen::{ScreenOptions, ScreenTarget};
#[cfg(all(unix, not(target_os = "macos")))]
use crate::capture::screen::x11::X11Screen;
use std::sync::Arc;

/// A video source of any kind.
pub(crate) type BoxedVideo = Box<dyn VideoSource + Send>;
/// An audio source of any kind.
pub(crate) type BoxedAudio = Box<dyn AudioSource + Send>;

/// An opened source and the status the stats and the faces report for it.
pub(crate) struct Opened<S> {
    pub source: S,
    pub status: Arc<SourceStatus>,
}

/// Luma noise of the `noise` source: enough that openh264 needs all of any
/// bitrate a destination takes (2.5 Mbit/s at 720p and well beyond).
const NOISE_AMPLITUDE: u8 = 40;

fn test_pattern(format: SessionFormat) -> Result<Opened<BoxedVideo>, CaptureError> {
    let src = TestPattern::new(format.width, format.height, format.fps)?;
    Ok(Opened { source: Box::new(src), status: Arc::new(SourceStatus::new("test pattern")) })
}

fn camera(index: Option<u32>, format: SessionFormat) -> Result<Opened<BoxedVideo>, CaptureError> {
    let cam = CameraSource::open(index, format.width, format.height, format.fps)?;
    let status = VideoSource::status(&cam).unwrap_or_else(|| Arc::new(SourceStatus::new("camera")));
    Ok(Opened { source: Box::new(cam), status })
}

/// The screen, at its own size, grabbed at the session's rate: through the
/// X server named by `DISPLAY` (Xorg, or XWayland's windows).
#[cfg(all(unix, not(target_os = "macos")))]
fn screen(target: &ScreenTarget, cursor: bool, format: SessionFormat) -> Result<Opened<BoxedVideo>, CaptureError> {
    let opts = ScreenOptions { target: target.clone(), cursor, fps: format.fps };
    let screen = X11Screen::open(None, &opts)?;
    let status = VideoSource::status(&screen).unwrap_or_else(|| Arc::new(SourceStatus::new("screen")));
    Ok(Opened { source: Box::new(screen), status })
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn screen(_: &ScreenTarget, _: bool, _: SessionFormat) -> Result<Opened<BoxedVideo>, CaptureError> {
    Err(CaptureError::Unavailable { device: "the screen".into(), reason: "screen capture is built for X11 and Wayland only".into() })
}

/// Opens the video source at the session's format (blocking: a camera takes a moment).
pub(crate) fn open_video(spec: &VideoSourceSpec, format: SessionFormat, looping: bool) -> Result<Opened<BoxedVideo>, CaptureError> {
    match spec {
        VideoSourceSpec::TestPattern => test_pattern(format),
        VideoSourceSpec::Noise => {
            let src = TestPattern::new(format.width, format.height, format.fps)?.with_noise(NOISE_AMPLITUDE);
            Ok(Opened { source: Box::new(src), status: Arc::new(SourceStatus::new("noisy test pattern")) })
        }
        VideoSourceSpec::Auto => {
            if list_cameras().unwrap_or_default().is_empty() {
                tracing::warn!("notice: no camera found; sending the test pattern");
                return test_pattern(format);
            }
            camera(None, format).or_else(|e| {
                tracing::warn!("notice: the camera could not be opened ({e}); sending the test pattern");
                test_pattern(format)
            })
        }
        VideoSourceSpec::Camera(index) => camera(*index, format),
        VideoSourceSpec::Screen { target, cursor } => screen(target, *cursor, format),
        VideoSourceSpec::Y4m(path) => {
            let src = Y4mSource::open(path, format.width, format.height, looping)?;
            Ok(Opened { source: Box::new(src), status: Arc::new(SourceStatus::new(&format!("y4m:{}", path.display()))) })
        }
    }
}

/// Opens the audio source (48 kHz stereo; blocking).
pub(crate) fn open_audio(spec: &AudioSourceSpec, looping: bool) -> Result<Opened<BoxedAudio>, CaptureError> {
    let simple = |source: BoxedAudio, name: &str| Ok(Opened { source, status: Arc::new(SourceStatus::new(name)) });
    let mic = |name: Option<&str>| {
        let mic = MicSource::open(name, AUDIO_RATE)?;
        let status = AudioSource::status(&mic).unwrap_or_else(|| Arc::new(SourceStatus::new("microphone")));
        Ok::<Opened<BoxedAudio>, CaptureError>(Opened { source: Box::new(mic), status })
    };
    match spec {
        AudioSourceSpec::Sine => simple(Box::new(Tone::new(AUDIO_RATE, AUDIO_CHANNELS)), "tone"),
        AudioSourceSpec::Silence => simple(Box::new(Silence::new(AUDIO_RATE, AUDIO_CHANNELS)), "silence"),
        AudioSourceSpec::Auto => mic(None).or_else(|e| {
            tracing::warn!("notice: no usable microphone ({e}); sending silence");
            simple(Box::new(Silence::new(AUDIO_RATE, AUDIO_CHANNELS)), "silence (no microphone)")
        }),
        AudioSourceSpec::Mic(name) => mic(name.as_deref()),
        AudioSourceSpec::Wav(path) => {
            let src = WavSource::open(path, AUDIO_RATE, looping)?;
            simple(Box::new(src), &format!("wav:{}", path.display()))
        }
    }
}
