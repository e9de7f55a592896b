//! Media options shared by `stream`, `record` and `profiles add`, and how
//! they combine with a profile: an option given on the command line wins,
//! then the profile's setting, then the default.

use anyhow::Context;
use clap::Args;
use std::time::Duration;
use tally::config::Profile;
use tally::pipeline::{AudioSourceSpec, BroadcastSettings, VideoSourceSpec};

/// Default frame size when neither the command line, a profile nor a Y4M file says.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);
/// Default frame rate.
pub const DEFAULT_FPS: u32 = 30;
/// Default video bitrate, kbit/s.
pub const DEFAULT_VIDEO_KBPS: u32 = 2500;
/// Default audio bitrate, kbit/s.
pub const DEFAULT_AUDIO_KBPS: u32 = 128;
/// Default keyframe interval, s.
pub const DEFAULT_KEYINT: f64 = 2.0;

/// What is captured and how it is encoded (savable in a profile).
#[derive(Args, Debug, Clone, Default)]
pub struct EncodeArgs {
    /// Video source: auto (first camera, else the test pattern), test, camera[:N], y4m:PATH.
    #[arg(long, value_name = "SOURCE", value_parser = parse_video)]
    pub video: Option<VideoSourceSpec>,
    /// Audio source: auto (default microphone, else silence), sine, silence, mic[:NAME], wav:PATH.
    #[arg(long, value_name = "SOURCE", value_parser = parse_audio)]
    pub audio: Option<AudioSourceSpec>,
    /// Frame size, WxH (even numbers) [default: 1280x720, or a Y4M file's own size].
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
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
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| "expected WxH, e.g. 1280x720".to_string())?;
    let w: u32 = w.trim().parse().map_err(|_| format!("width '{w}' is not a number"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("height '{h}' is not a number"))?;
    if w < 16 || h < 16 || w > 3840 || h > 2160 {
        return Err(format!("{w}x{h} is outside 16x16..3840x2160"));
    }
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(format!("{w}x{h}: width and height must be even"));
    }
    Ok((w, h))
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

/// The encode settings a profile holds, as if typed on the command line.
fn from_profile(p: &Profile) -> anyhow::Result<EncodeArgs> {
    let ctx = |what: &str| format!("profile '{}': {what}", p.name);
    Ok(EncodeArgs {
        video: Some(p.video.source.parse().map_err(anyhow::Error::msg).with_context(|| ctx("video source"))?),
        audio: Some(p.audio.source.parse().map_err(anyhow::Error::msg).with_context(|| ctx("audio source"))?),
        size: Some(parse_size(&p.video.size).map_err(anyhow::Error::msg).with_context(|| ctx("video size"))?),
        fps: Some(p.video.fps),
        video_bitrate: Some(p.video.bitrate_kbps),
        audio_bitrate: Some(p.audio.bitrate_kbps),
        keyint: Some(p.video.keyint_secs),
    })
}

impl EncodeArgs {
    /// These options over `base`: what is given here wins.
    pub fn over(&self, base: &EncodeArgs) -> EncodeArgs {
        EncodeArgs {
            video: self.video.clone().or_else(|| base.video.clone()),
            audio: self.audio.clone().or_else(|| base.audio.clone()),
            size: self.size.or(base.size),
            fps: self.fps.or(base.fps),
            video_bitrate: self.video_bitrate.or(base.video_bitrate),
            audio_bitrate: self.audio_bitrate.or(base.audio_bitrate),
            keyint: self.keyint.or(base.keyint),
        }
    }

    /// These options over a profile's settings.
    pub fn over_profile(&self, profile: Option<&Profile>) -> anyhow::Result<EncodeArgs> {
        Ok(match profile {
            Some(p) => self.over(&from_profile(p)?),
            None => self.clone(),
        })
    }

    /// Writes the given options into a profile.
    pub fn apply_to(&self, p: &mut Profile) {
        if let Some(v) = &self.video {
            p.video.source = v.to_string();
        }
        if let Some(a) = &self.audio {
            p.audio.source = a.to_string();
        }
        if let Some((w, h)) = self.size {
            p.video.size = format!("{w}x{h}");
        }
        if let Some(fps) = self.fps {
            p.video.fps = fps;
        }
        if let Some(k) = self.video_bitrate {
            p.video.bitrate_kbps = k;
        }
        if let Some(k) = self.audio_bitrate {
            p.audio.bitrate_kbps = k;
        }
        if let Some(k) = self.keyint {
            p.video.keyint_secs = k;
        }
    }
}

impl MediaArgs {
    /// The broadcast settings; a Y4M source lends its own size and rate to
    /// whatever the options leave open.
    pub fn settings(&self, encode: &EncodeArgs) -> anyhow::Result<BroadcastSettings> {
        let video = encode.video.clone().unwrap_or(VideoSourceSpec::Auto);
        let (mut size, mut fps) = (encode.size, encode.fps);
        if let VideoSourceSpec::Y4m(path) = &video
            && (size.is_none() || fps.is_none())
        {
            let header = tally::capture::Y4mSource::probe(path).context("reading the Y4M header")?;
            size = size.or(Some((header.width & !1, header.height & !1)));
            fps = fps.or(Some(header.rate.as_f64().round().clamp(1.0, 120.0) as u32));
        }
        let (width, height) = size.unwrap_or(DEFAULT_SIZE);
        Ok(BroadcastSettings {
            video,
            audio: encode.audio.clone().unwrap_or(AudioSourceSpec::Auto),
            width,
            height,
            fps: fps.unwrap_or(DEFAULT_FPS),
            video_kbps: encode.video_bitrate.unwrap_or(DEFAULT_VIDEO_KBPS),
            audio_kbps: encode.audio_bitrate.unwrap_or(DEFAULT_AUDIO_KBPS),
            keyint_secs: encode.keyint.unwrap_or(DEFAULT_KEYINT),
            duration: self.run.duration,
            fast: self.run.fast,
            start_offset_ms: self.run.start_offset_ms,
            encoder_threads: 1,
            looping: self.run.looping,
        })
    }
}
