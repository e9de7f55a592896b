//! Media options shared by `stream`, `record` and `profiles add`, and how
//! they combine with a profile: an option given on the command line wins,
//! then the profile's setting, then the default.

use clap::Args;
use std::time::Duration;
use tally::config::EncodeOverrides;
use tally::engine::RunOptions;
use tally::media::FrameSize;
use tally::capture::{AudioSourceSpec, VideoSourceSpec};

/// What is captured and how it is encoded (savable in a profile).
#[derive(Args, Debug, Clone, Default)]
pub struct EncodeArgs {
    /// Video source: auto (first camera, else the test pattern), test, noise (the pattern under
    /// noise: needs its whole bitrate), camera[:N], y4m:PATH.
    #[arg(long, value_name = "SOURCE", value_parser = parse_video)]
    pub video: Option<VideoSourceSpec>,
    /// Audio source: auto (default microphone, else silence), sine, silence, mic[:NAME], wav:PATH.
    #[arg(long, value_name = "SOURCE", value_parser = parse_audio)]
    pub audio: Option<AudioSourceSpec>,
    /// Frame size, WxH (even numbers) [default: 1280x720, or a Y4M file's own size].
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<FrameSize>,
    /// Frames per second [default: 30, or a Y4M file's own rate].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: Option<u32>,
    /// Video bitrate, kbit/s [default: 2500].
    #[arg(long = "video-bitrate", allow_negative_numbers = true, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..=100_000))]
    pub video_bitrate: Option<u32>,
    /// Audio bitrate, kbit/s [default: 128].
    #[arg(long = "audio-bitrate", allow_negative_numbers = true, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(8..=512))]
    pub audio_bitrate: Option<u32>,
    /// Seconds between keyframes [default: 2].
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", value_parser = parse_keyint)]
    pub keyint: Option<f64>,
}

/// How a run goes (never saved).
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Restart y4m:/wav: files at their end instead of stopping.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop after this many seconds of media (default: until Ctrl-C, which stops cleanly).
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Do not pace sources to the wall clock: encode as fast as possible.
    #[arg(long)]
    pub fast: bool,
    /// Print one line per second: fps, bitrate, and per output its state,
    /// kbps out, queue ms, dropped frames, reconnects, unacknowledged bytes, uptime.
    #[arg(long)]
    pub stats: bool,
    /// Like --stats, as one JSON object per line (for scripts and plots).
    #[arg(long = "stats-json")]
    pub stats_json: bool,
    /// First timestamp in ms (tests use it to cross the 24-bit timestamp boundary).
    #[arg(long = "start-offset-ms", value_name = "MS", default_value_t = 0, hide = true)]
    pub start_offset_ms: u32,
    /// CPU the video encoders may use together, in percent of one core
    /// (default: 75 % of every core). A congested destination gets an encode
    /// of its own only within it; beyond, it shares at the lowest bitrate.
    #[arg(long = "encoder-budget", value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub encoder_budget: Option<u32>,
    /// Compose this saved scene (`tally scenes list`) instead of the video
    /// source alone; switch scenes while live with `scene NAME` on stdin.
    #[arg(long, value_name = "NAME")]
    pub scene: Option<String>,
}

/// Everything `stream` and `record` take about media.
#[derive(Args, Debug, Clone, Default)]
pub struct MediaArgs {
    #[command(flatten)]
    pub encode: EncodeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_video(s: &str) -> Result<VideoSourceSpec, String> {
    s.parse()
}

fn parse_audio(s: &str) -> Result<AudioSourceSpec, String> {
    s.parse()
}

/// `WxH`, even, within 16x16..3840x2160.
fn parse_size(s: &str) -> Result<FrameSize, String> {
    s.parse()
}

fn parse_keyint(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 60.0) {
        return Err(format!("{v} is outside (0, 60] seconds"));
    }
    Ok(v)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v < 1e7) {
        return Err(format!("{v} must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

impl EncodeArgs {
    /// The options as the library's overrides.
    pub fn overrides(&self) -> EncodeOverrides {
        EncodeOverrides {
            video: self.video.clone(),
            audio: self.audio.clone(),
            size: self.size,
            fps: self.fps,
            video_kbps: self.video_bitrate,
            audio_kbps: self.audio_bitrate,
            keyint_secs: self.keyint,
        }
    }
}

impl RunArgs {
    /// The options as the library's run options (the scene read from the collection).
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let scene = self.scene.as_deref().map(super::scenes::load).transpose()?;
        Ok(RunOptions {
            duration: self.duration,
            fast: self.fast,
            looping: self.looping,
            start_offset_ms: self.start_offset_ms,
            encoder_budget_percent: self.encoder_budget,
            scene,
        })
    }
}
