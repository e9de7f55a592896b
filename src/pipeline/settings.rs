//! What a broadcast is asked to do.

use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::media::rendition::{DEFAULT_AUDIO_KBPS, DEFAULT_FPS, DEFAULT_KEYINT_SECS, DEFAULT_SIZE, DEFAULT_VIDEO_KBPS};
use crate::session::scene::Scene;
use crate::session::{Pacing, SessionFormat, SessionSpec};
use std::time::Duration;

/// Everything the capture and encode stages need.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastSettings {
    /// Video source (alone, full frame, unless `scene` is set).
    pub video: VideoSourceSpec,
    /// The scene to compose instead (`--scene`).
    pub scene: Option<Scene>,
    /// Audio source.
    pub audio: AudioSourceSpec,
    /// Frame width (even).
    pub width: u32,
    /// Frame height (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Audio bitrate, kbit/s.
    pub audio_kbps: u32,
    /// Seconds between keyframes.
    pub keyint_secs: f64,
    /// Stop after this much media; `None` runs until stopped.
    pub duration: Option<Duration>,
    /// Do not pace sources to the wall clock; outputs apply back-pressure instead of dropping.
    pub fast: bool,
    /// Added to every FLV/RTMP timestamp (tests use it to cross 0xFFFFFF ms).
    pub start_offset_ms: u32,
    /// openh264 threads (1 keeps output deterministic and leaves a core for the rest).
    pub encoder_threads: u16,
    /// File sources restart at their end instead of ending the broadcast.
    pub looping: bool,
    /// CPU the encoders may use together, percent of one core (`None`: 75 %
    /// of every core). A congested destination gets an encode of its own
    /// only within it.
    pub encoder_budget_percent: Option<u32>,
}

impl Default for BroadcastSettings {
    fn default() -> Self {
        BroadcastSettings {
            video: VideoSourceSpec::Auto,
            scene: None,
            audio: AudioSourceSpec::Auto,
            width: DEFAULT_SIZE.width,
            height: DEFAULT_SIZE.height,
            fps: DEFAULT_FPS,
            video_kbps: DEFAULT_VIDEO_KBPS,
            audio_kbps: DEFAULT_AUDIO_KBPS,
            keyint_secs: DEFAULT_KEYINT_SECS,
            duration: None,
            fast: false,
            start_offset_ms: 0,
            encoder_threads: 1,
            looping: false,
            encoder_budget_percent: None,
        }
    }
}

impl BroadcastSettings {
    /// The capture session this broadcast's own sources run in (the command
    /// line opens one for it): paced unless `--fast`, and from the first
    /// frame — media time 0 is the sources' start, a file is sent whole.
    pub fn session_spec(&self) -> SessionSpec {
        SessionSpec {
            video: self.video.clone(),
            scene: self.scene.clone(),
            audio: self.audio.clone(),
            format: SessionFormat { width: self.width, height: self.height, fps: self.fps },
            looping: self.looping,
            pacing: if self.fast { Pacing::Unpaced } else { Pacing::RealTime },
            from_first_frame: true,
        }
    }
}
