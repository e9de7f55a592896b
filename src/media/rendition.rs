//! The shape of what Tally encodes, and its defaults: one set, used by the
//! command line, saved profiles, the app and the pipeline alike — a
//! rendition's frame size, rate, bitrate and keyframe interval
//! (`RenditionSpec`, run by `pipeline::renditions`), and the audio bitrate.
//!
//! Was `media::settings`, which read like `pipeline::settings` (the
//! settings of one running broadcast, built from these).

use std::fmt;
use std::str::FromStr;

/// A frame size in pixels; `WxH` as text (in profiles and on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameSize {
    /// Width, even.
    pub width: u32,
    /// Height, even.
    pub height: u32,
}

impl FrameSize {
    /// Smallest accepted side: openh264 and the test pattern need a few macroblocks.
    pub const MIN: u32 = 16;
    /// Largest accepted width (4K UHD).
    pub const MAX_WIDTH: u32 = 3840;
    /// Largest accepted height (4K UHD).
    pub const MAX_HEIGHT: u32 = 2160;

    /// A size, unchecked.
    pub const fn new(width: u32, height: u32) -> Self {
        FrameSize { width, height }
    }
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl FromStr for FrameSize {
    type Err = String;
    /// `WxH`, both even, within 16x16..3840x2160 (I420 chroma is subsampled 2x2).
    fn from_str(s: &str) -> Result<Self, String> {
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| "expected WxH, e.g. 1280x720".to_string())?;
        let w: u32 = w.trim().parse().map_err(|_| format!("width '{w}' is not a number"))?;
        let h: u32 = h.trim().parse().map_err(|_| format!("height '{h}' is not a number"))?;
        if w < Self::MIN || h < Self::MIN || w > Self::MAX_WIDTH || h > Self::MAX_HEIGHT {
            return Err(format!("{w}x{h} is outside 16x16..3840x2160"));
        }
        if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
            return Err(format!("{w}x{h}: width and height must be even"));
        }
        Ok(FrameSize { width: w, height: h })
    }
}

/// Serde through the text form, so a profile reads `size = "1280x720"`.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;

serde_as_text!(FrameSize);

/// Frame size when neither the user, a profile nor a Y4M file says.
pub const DEFAULT_SIZE: FrameSize = FrameSize::new(1280, 720);
/// Frames per second by default.
pub const DEFAULT_FPS: u32 = 30;
/// Video bitrate by default, kbit/s: a good 720p30 that every service takes.
pub const DEFAULT_VIDEO_KBPS: u32 = 2500;
/// Audio bitrate by default, kbit/s (AAC-LC stereo).
pub const DEFAULT_AUDIO_KBPS: u32 = 128;
/// Seconds between keyframes by default: what YouTube, Twitch and Facebook ask for.
pub const DEFAULT_KEYINT_SECS: f64 = 2.0;

/// The video a rendition encodes: size, rate, bitrate and keyframe
/// interval. Destinations whose effective settings are equal share one
/// encoder; each distinct one is an encode of its own.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RenditionSpec {
    /// Frame size (never larger than what is captured: scaled down only).
    pub size: FrameSize,
    /// Frames per second (at most the capture's rate: frames are dropped evenly).
    pub fps: u32,
    /// Target video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Seconds between keyframes.
    pub keyint_secs: f64,
}

impl fmt::Display for RenditionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} fps {} kbit/s", self.size, self.fps, self.video_kbps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_print_and_refuse() {
        assert_eq!("1280x720".parse::<FrameSize>().unwrap(), DEFAULT_SIZE);
        assert_eq!(DEFAULT_SIZE.to_string(), "1280x720");
        assert!("1281x720".parse::<FrameSize>().unwrap_err().contains("even"));
        assert!("8x8".parse::<FrameSize>().unwrap_err().contains("outside"));
        assert!("axb".parse::<FrameSize>().unwrap_err().contains("not a number"));
        assert!("1280".parse::<FrameSize>().unwrap_err().contains("WxH"));
    }
}
