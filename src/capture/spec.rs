//! What a user picks as a source, by name: `auto`, the test pattern, a
//! camera, a Y4M file; `auto`, a tone, silence, a microphone, a WAV file.
//! The same text form on the command line, in profiles and in the app.

use super::screen::ScreenTarget;
use crate::media::rendition::serde_as_text;
use std::path::PathBuf;

/// Where video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSourceSpec {
    /// The first camera if there is one, else the test pattern (with a notice).
    Auto,
    /// The synthetic test pattern (colour bars, counter, flash each second).
    TestPattern,
    /// The test pattern under heavy noise: it needs its whole bitrate
    /// (bandwidth tests, the pre-flight check's publish test).
    Noise,
    /// A camera: by index from `tally devices`, or the first one.
    Camera(Option<u32>),
    /// A YUV4MPEG2 file.
    Y4m(PathBuf),
    /// The screen: a monitor or a window, with or without the cursor.
    Screen {
        /// Which monitor or window.
        target: ScreenTarget,
        /// The mouse cursor drawn in.
        cursor: bool,
    },
}

/// Written after a screen source to leave the cursor out: `screen:1,nocursor`.
const NO_CURSOR: &str = ",nocursor";

/// Where audio comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSourceSpec {
    /// The default microphone if it opens, else silence (with a notice).
    Auto,
    /// A 440 Hz tone with a beep on each second, in step with the pattern's flash.
    Sine,
    /// Digital silence.
    Silence,
    /// A microphone: by id or name (see `tally devices`), or the default one.
    Mic(Option<String>),
    /// A WAV file.
    Wav(PathBuf),
}

impl std::fmt::Display for VideoSourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VideoSourceSpec::Auto => f.write_str("auto"),
            VideoSourceSpec::TestPattern => f.write_str("test"),
            VideoSourceSpec::Noise => f.write_str("noise"),
            VideoSourceSpec::Camera(None) => f.write_str("camera"),
            VideoSourceSpec::Camera(Some(i)) => write!(f, "camera:{i}"),
            VideoSourceSpec::Y4m(p) => write!(f, "y4m:{}", p.display()),
            VideoSourceSpec::Screen { target, cursor } => {
                match target {
                    ScreenTarget::Monitor(0) => f.write_str("screen")?,
                    ScreenTarget::Monitor(n) => write!(f, "screen:{n}")?,
                    ScreenTarget::Window(title) => write!(f, "window:{title}")?,
                }
                if !cursor { f.write_str(NO_CURSOR) } else { Ok(()) }
            }
        }
    }
}

impl std::fmt::Display for AudioSourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioSourceSpec::Auto => f.write_str("auto"),
            AudioSourceSpec::Sine => f.write_str("sine"),
            AudioSourceSpec::Silence => f.write_str("silence"),
            AudioSourceSpec::Mic(None) => f.write_str("mic"),
            AudioSourceSpec::Mic(Some(n)) => write!(f, "mic:{n}"),
            AudioSourceSpec::Wav(p) => write!(f, "wav:{}", p.display()),
        }
    }
}

impl std::str::FromStr for VideoSourceSpec {
    type Err = String;
    /// `auto`, `test`, `camera`, `camera:N`, `y4m:PATH`, `screen`,
    /// `screen:N`, `window:TITLE` (a screen with `,nocursor` after it leaves
    /// the cursor out).
    fn from_str(s: &str) -> Result<Self, String> {
        let screen = |target| {
            let cursor = !s.ends_with(NO_CURSOR);
            Ok(VideoSourceSpec::Screen { target, cursor })
        };
        let bare = s.strip_suffix(NO_CURSOR).unwrap_or(s);
        match bare.split_once(':') {
            None if bare == "screen" => screen(ScreenTarget::Monitor(0)),
            Some(("screen", n)) => n.parse().map_err(|_| format!("screen number '{n}' is not a number")).and_then(|n| screen(ScreenTarget::Monitor(n))),
            Some(("window", t)) if !t.trim().is_empty() => screen(ScreenTarget::Window(t.to_string())),
            Some(("window", _)) => Err("window needs a title (part of it): window:TITLE".into()),
            _ => Self::plain(s),
        }
    }
}

impl VideoSourceSpec {
    /// The sources that are not the screen.
    fn plain(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None => match s {
                "auto" => Ok(VideoSourceSpec::Auto),
                "test" => Ok(VideoSourceSpec::TestPattern),
                "noise" => Ok(VideoSourceSpec::Noise),
                "camera" => Ok(VideoSourceSpec::Camera(None)),
                "y4m" => Err("y4m needs a file: y4m:PATH".into()),
                other => Err(format!("unknown video source '{other}' (auto, test, noise, camera[:N], y4m:PATH, screen[:N], window:TITLE)")),
            },
            Some(("camera", n)) => {
                n.parse().map(|i| VideoSourceSpec::Camera(Some(i))).map_err(|_| format!("camera index '{n}' is not a number"))
            }
            Some(("y4m", p)) if !p.is_empty() => Ok(VideoSourceSpec::Y4m(PathBuf::from(p))),
            Some(("y4m", _)) => Err("y4m needs a file: y4m:PATH".into()),
            Some((kind, _)) => Err(format!("unknown video source '{kind}' (auto, test, noise, camera[:N], y4m:PATH, screen[:N], window:TITLE)")),
        }
    }
}

impl std::str::FromStr for AudioSourceSpec {
    type Err = String;
    /// `auto`, `sine`, `silence`, `mic`, `mic:NAME`, `wav:PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None => match s {
                "auto" => Ok(AudioSourceSpec::Auto),
                "sine" => Ok(AudioSourceSpec::Sine),
                "silence" => Ok(AudioSourceSpec::Silence),
                "mic" => Ok(AudioSourceSpec::Mic(None)),
                "wav" => Err("wav needs a file: wav:PATH".into()),
                other => Err(format!("unknown audio source '{other}' (auto, sine, silence, mic[:NAME], wav:PATH)")),
            },
            // ALSA names contain colons (hw:CARD=0,DEV=0): everything after "mic:" is the name.
            Some(("mic", n)) if !n.is_empty() => Ok(AudioSourceSpec::Mic(Some(n.to_string()))),
            Some(("mic", _)) => Ok(AudioSourceSpec::Mic(None)),
            Some(("wav", p)) if !p.is_empty() => Ok(AudioSourceSpec::Wav(PathBuf::from(p))),
            Some(("wav", _)) => Err("wav needs a file: wav:PATH".into()),
            Some((kind, _)) => Err(format!("unknown audio source '{kind}' (auto, sine, silence, mic[:NAME], wav:PATH)")),
        }
    }
}

serde_as_text!(VideoSourceSpec);
serde_as_text!(AudioSourceSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_parse_and_print() {
        for s in ["auto", "test", "noise", "camera", "camera:2", "y4m:/tmp/a b.y4m", "screen", "screen:1", "window:Firefox: a page", "screen:1,nocursor"] {
            assert_eq!(s.parse::<VideoSourceSpec>().unwrap().to_string(), s);
        }
        for s in ["auto", "sine", "silence", "mic", "mic:hw:CARD=0,DEV=0", "wav:x.wav"] {
            assert_eq!(s.parse::<AudioSourceSpec>().unwrap().to_string(), s);
        }
        assert!("camera:x".parse::<VideoSourceSpec>().unwrap_err().contains("not a number"));
        assert!("y4m:".parse::<VideoSourceSpec>().is_err());
        assert!("webcam".parse::<VideoSourceSpec>().unwrap_err().contains("unknown video source"));
        assert!("wav".parse::<AudioSourceSpec>().is_err());
        assert!("speaker".parse::<AudioSourceSpec>().unwrap_err().contains("unknown audio source"));
    }
}
