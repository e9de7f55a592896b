//! Sources of raw media: everything that produces [`VideoFrame`]s and
//! [`AudioFrame`]s for the encoders.
//!
//! - Synthetic, for rehearsals and for measuring A/V sync end to end:
//!   [`TestPattern`] (colour bars, a moving box, burned-in frame number and
//!   media time, a white flash once per second), [`Tone`] (440 Hz with a
//!   1 kHz beep once per second, on the same beat as the flash), [`Silence`].
//! - Devices: [`CameraSource`] (nokhwa) and [`MicSource`] (cpal), each with
//!   its own capture thread or real-time callback, converting to I420 /
//!   48 kHz stereo, and keeping the broadcast going with a stand-in (frozen
//!   frame, slate, silence) when the device goes away.
//! - Files: [`Y4mSource`] and [`WavSource`], looping on request.
//! - Stills ([`still`]): an image file, a text, a colour, rendered once per
//!   change into I420 with an alpha plane for the compositor's layers.
//! - The screen ([`screen`]): a monitor or one window, grabbed at the rate
//!   the scene needs ([`screen::x11::X11Screen`] on X11).
//!
//! All implement [`VideoSource`] / [`AudioSource`]. Live sources (devices)
//! deliver in real time by themselves; the pipeline paces the others with a
//! [`Pacer`].
//!
//! This module may use `crate::media` only: no other Tally module, no tokio,
//! no egui.

pub mod camera;
pub mod convert;
pub mod drift;
mod font;
mod kern;
pub mod mic;
mod pacing;
pub mod pcm;
pub mod resample;
pub mod screen;
pub(crate) mod slate;
mod spec;
pub mod still;
mod text;
mod test_pattern;
mod tone;
pub mod wav;
pub mod y4m;

pub use camera::{CameraInfo, CameraMode, CameraSource, list_cameras};
pub use convert::{FrameConverter, PixelFormat, RawFrame};
pub use mic::{MicInfo, MicSource, list_microphones};
pub use pacing::Pacer;
pub use spec::{AudioSourceSpec, VideoSourceSpec};
pub use still::{Rgba, Still, TextStyle, colour_fill, load_image, render_text};
pub use wav::WavSource;
pub use y4m::Y4mSource;
pub use test_pattern::{FLASH_LUMA, FrameMark, MAX_FPS, MAX_PATTERN_HEIGHT, MAX_PATTERN_WIDTH, MIN_DIMENSION, TestPattern};
pub use tone::{
    AUDIO_BLOCK_FRAMES, BEEP_DBFS, BEEP_HZ, BEEP_MS, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Silence,
    TONE_DBFS, TONE_HZ, Tone,
};

use crate::media::{AudioFrame, MediaClock, VideoFrame};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// What a source is doing, as the stats line and the UI show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// Delivering its own media.
    Live,
    /// Not delivering; a stand-in (frozen frame, slate, silence) goes out instead. Why.
    Fallback(String),
}

impl std::fmt::Display for SourceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceState::Live => f.write_str("live"),
            SourceState::Fallback(why) => f.write_str(why),
        }
    }
}

/// The shared, updatable state of a device source: written by its capture
/// thread or worker, read by the stats sampler. Never touched by a real-time
/// callback.
#[derive(Debug)]
pub struct SourceStatus {
    name: String,
    state: Mutex<SourceState>,
    /// Frames (video) or sample frames (audio) lost because the consumer fell behind.
    pub overruns: AtomicU64,
}

impl SourceStatus {
    /// A live source called `name`.
    pub fn new(name: &str) -> Self {
        SourceStatus { name: name.to_string(), state: Mutex::new(SourceState::Live), overruns: AtomicU64::new(0) }
    }

    /// The source's name ("camera 0: HD Webcam", "microphone hw:...").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Current state.
    pub fn state(&self) -> SourceState {
        self.state.lock().map(|s| s.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Sets the state.
    pub fn set(&self, state: SourceState) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *g = state;
    }
}

/// Why a source could not deliver media.
///
/// Shaped for real devices as well as the synthetic sources: a camera that is
/// not plugged in, unplugged mid-broadcast, a file that cannot be read, or a
/// format the pipeline cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The requested device does not exist; `available` lists what does, so the
    /// user can pick one (`tally devices` prints the same names).
    #[error("{requested} not found; {}", if available.is_empty() { "there are none (`tally devices` lists what Tally sees)".to_string() } else { format!("available: {}", available.join(", ")) })]
    DeviceNotFound {
        /// The name or index the user asked for.
        requested: String,
        /// Names of the devices that were found.
        available: Vec<String>,
    },
    /// The device exists but cannot be used now (busy, no permission, its
    /// sound server is not running...).
    #[error("{device} is not available: {reason}")]
    Unavailable {
        /// Which device.
        device: String,
        /// The system's words.
        reason: String,
    },
    /// The device went away while capturing (unplugged, taken by another app).
    #[error("capture device {device:?} disconnected")]
    Disconnected {
        /// Name of the device that was lost.
        device: String,
    },
    /// Reading a device or a media file failed.
    #[error("capture I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The requested or delivered format is unusable (odd frame size, zero
    /// frame rate, unsupported sample format, malformed file header, ...).
    #[error("unusable capture format: {0}")]
    Format(String),
}

/// A frame rate as an exact fraction, `num / den` frames per second
/// (30/1, 25/1, NTSC's 30000/1001).
///
/// Kept as a fraction so that timestamps computed from a frame count never
/// drift, which a floating-point rate would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRate {
    /// Frames (numerator).
    pub num: u32,
    /// Seconds (denominator).
    pub den: u32,
}

impl FrameRate {
    /// A whole number of frames per second.
    pub const fn per_second(fps: u32) -> Self {
        FrameRate { num: fps, den: 1 }
    }

    /// The rate as a float, for metadata (`onMetaData.framerate`) and display.
    pub fn as_f64(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }

    /// Presentation time of frame `index` relative to the first frame:
    /// `round(index * 1_000_000 * den / num)` microseconds, computed exactly
    /// from the count so that it never accumulates rounding error.
    /// Saturates at `u64::MAX`; a zero `num` gives 0.
    pub fn pts_us_of_frame(self, index: u64) -> u64 {
        if self.num == 0 {
            return 0;
        }
        let num = u128::from(self.num);
        let scaled = u128::from(index) * 1_000_000 * u128::from(self.den);
        u64::try_from((2 * scaled + num) / (2 * num)).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for FrameRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.den == 1 {
            write!(f, "{} fps", self.num)
        } else {
            write!(f, "{}/{} fps", self.num, self.den)
        }
    }
}

/// What a video source delivers: the encoder is configured from this before
/// the first frame arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoFormat {
    /// Frame width in pixels (even: I420).
    pub width: u32,
    /// Frame height in pixels (even: I420).
    pub height: u32,
    /// Nominal frame rate. Live devices may deliver slightly off it; their
    /// timestamps, not this rate, are authoritative.
    pub frame_rate: FrameRate,
}

/// What an audio source delivers: interleaved i16 PCM of this shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioFormat {
    /// Sample frames per second.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
}

impl AudioFormat {
    /// Presentation time of sample frame `n` relative to the first sample:
    /// `n * 1_000_000 / sample_rate`, truncated, from the count (no drift;
    /// the same rule as the AAC encoder's packet timestamps).
    /// Saturates at `u64::MAX`; a zero rate gives 0.
    pub fn pts_us_of_sample(self, n: u64) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        u64::try_from(u128::from(n) * 1_000_000 / u128::from(self.sample_rate)).unwrap_or(u64::MAX)
    }
}

/// Anything that produces raw I420 video: the test pattern, cameras, Y4M files.
pub trait VideoSource {
    /// Size and nominal rate of the frames this source delivers.
    fn format(&self) -> VideoFormat;

    /// True when the source delivers in real time by itself (a camera blocks
    /// until the sensor has a frame): the pipeline must not pace it. False for
    /// synthetic and file sources, which produce as fast as asked; the
    /// pipeline paces them to their timestamps with a [`Pacer`].
    fn is_live(&self) -> bool;

    /// Called once when the broadcast's clock starts (go-live): live sources
    /// timestamp their frames on it from then on.
    fn start(&mut self, _clock: MediaClock) {}

    /// The state a device source reports (fallbacks, overruns); `None` for
    /// sources that cannot fail at run time.
    fn status(&self) -> Option<Arc<SourceStatus>> {
        None
    }

    /// The next frame, `Ok(None)` at the end of a finite source (end of file).
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError>;

    /// Writes the next frame into `frame`, reusing its buffers where the source
    /// can; returns `Ok(false)` at the end of the source (then `frame` is
    /// unchanged). The default allocates through [`VideoSource::next_frame`].
    fn fill_next(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        match self.next_frame()? {
            Some(next) => {
                *frame = next;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Anything that produces interleaved i16 PCM: tone, silence, microphones, WAV files.
pub trait AudioSource {
    /// Rate and channel count of the blocks this source delivers.
    fn format(&self) -> AudioFormat;

    /// True when the source delivers in real time by itself (a microphone):
    /// the pipeline must not pace it. False for synthetic and file sources;
    /// see [`VideoSource::is_live`].
    fn is_live(&self) -> bool;

    /// Called once when the broadcast's clock starts (go-live).
    fn start(&mut self, _clock: MediaClock) {}

    /// See [`VideoSource::status`].
    fn status(&self) -> Option<Arc<SourceStatus>> {
        None
    }

    /// The next block of samples, `Ok(None)` at the end of a finite source.
    /// Block sizes may vary between sources; the synthetic ones deliver
    /// [`AUDIO_BLOCK_FRAMES`] sample frames per block.
    fn next_block(&mut self) -> Result<Option<AudioFrame>, CaptureError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_pts_is_exact_and_rounded() {
        let r30 = FrameRate::per_second(30);
        assert_eq!(r30.pts_us_of_frame(0), 0);
        assert_eq!(r30.pts_us_of_frame(1), 33_333);
        assert_eq!(r30.pts_us_of_frame(2), 66_667);
        assert_eq!(r30.pts_us_of_frame(30), 1_000_000);
        assert_eq!(r30.pts_us_of_frame(30 * 3600 * 24), 86_400_000_000);
        let ntsc = FrameRate { num: 30_000, den: 1001 };
        assert_eq!(ntsc.pts_us_of_frame(1), 33_367);
        assert_eq!(ntsc.pts_us_of_frame(30_000), 1_001_000_000);
        assert_eq!(FrameRate { num: 0, den: 1 }.pts_us_of_frame(5), 0);
        assert_eq!(FrameRate::per_second(1).pts_us_of_frame(u64::MAX), u64::MAX);
        assert_eq!(ntsc.to_string(), "30000/1001 fps");
        assert_eq!(r30.to_string(), "30 fps");
    }

    #[test]
    fn audio_pts_truncates_from_count() {
        let f = AudioFormat {
            sample_rate: 48_000,
            channels: 2,
        };
        assert_eq!(f.pts_us_of_sample(1024), 21_333);
        assert_eq!(f.pts_us_of_sample(48_000), 1_000_000);
        assert_eq!(
            AudioFormat {
                sample_rate: 0,
                channels: 2
            }
            .pts_us_of_sample(5),
            0
        );
    }

    #[test]
    fn device_not_found_lists_alternatives() {
        let e = CaptureError::DeviceNotFound {
            requested: "camera 9".into(),
            available: vec!["0: HD Webcam".into(), "2: Capture card".into()],
        };
        assert_eq!(e.to_string(), "camera 9 not found; available: 0: HD Webcam, 2: Capture card");
        let none = CaptureError::DeviceNotFound { requested: "microphone 'usb'".into(), available: vec![] };
        assert!(none.to_string().contains("there are none"));
    }

    #[test]
    fn sources_are_object_safe_and_send() {
        fn assert_send<T: Send>(_: &T) {}
        let v: Box<dyn VideoSource + Send> = Box::new(TestPattern::new(64, 48, 30).unwrap());
        let a: Box<dyn AudioSource + Send> = Box::new(Tone::new(48_000, 2));
        let s: Box<dyn AudioSource + Send> = Box::new(Silence::new(48_000, 2));
        assert_send(&v);
        assert!(!v.is_live() && !a.is_live() && !s.is_live());
    }
}
