//! What a broadcast is asked to do.

use std::time::Duration;

/// Where video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSourceSpec {
    /// The synthetic test pattern (colour bars, counter, flash each second).
    TestPattern,
}

/// Where audio comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSourceSpec {
    /// A 440 Hz tone with a beep on each second, in step with the pattern's flash.
    Sine,
    /// Digital silence.
    Silence,
}

/// Everything the capture and encode stages need.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastSettings {
    /// Video source.
    pub video: VideoSourceSpec,
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
}

impl Default for BroadcastSettings {
    fn default() -> Self {
        BroadcastSettings {
            video: VideoSourceSpec::TestPattern,
            audio: AudioSourceSpec::Sine,
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 2500,
            audio_kbps: 128,
            keyint_secs: 2.0,
            duration: None,
            fast: false,
            start_offset_ms: 0,
            encoder_threads: 1,
        }
    }
}

/// Audio format of everything Tally sends: 48 kHz stereo (what every ingest accepts).
pub const AUDIO_RATE: u32 = 48_000;
/// See [`AUDIO_RATE`].
pub const AUDIO_CHANNELS: u16 = 2;
