//! Service presets (`assets/services.toml`, built in): where each ingest
//! service listens and what it accepts, so a profile can be checked before
//! the streamer goes live rather than rejected by the platform mid-show.

use serde::Deserialize;

/// The presets shipped with Tally.
const SERVICES_TOML: &str = include_str!("../../assets/services.toml");

/// One server URL a service offers.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ServerUrl {
    /// Label ("Primary (RTMPS)").
    pub name: String,
    /// `rtmp[s]://host[:port]/app` without a key.
    pub url: String,
}

/// An ingest service.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Service {
    /// Short id (`twitch`), used by `--preset`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Servers, preferred first.
    #[serde(default)]
    pub servers: Vec<ServerUrl>,
    /// Only `rtmps://` is accepted.
    #[serde(default)]
    pub rtmps_only: bool,
    /// The service asks for constant bitrate.
    #[serde(default)]
    pub cbr: bool,
    /// Recommended keyframe interval, s.
    pub keyint_secs: Option<f64>,
    /// Longest keyframe interval accepted, s.
    pub max_keyint_secs: Option<f64>,
    /// Highest video bitrate accepted, kbit/s.
    pub max_video_kbps: Option<u32>,
    /// Highest audio bitrate accepted, kbit/s.
    pub max_audio_kbps: Option<u32>,
    /// Highest frame rate accepted.
    pub max_fps: Option<u32>,
    /// What the streamer should know.
    #[serde(default)]
    pub notes: String,
}

#[derive(Deserialize)]
struct ServicesFile {
    service: Vec<Service>,
}

/// Every built-in service. The file is part of the binary and checked by a
/// unit test, so parsing cannot fail at run time; an empty list would only
/// mean no presets.
pub fn services() -> Vec<Service> {
    toml::from_str::<ServicesFile>(SERVICES_TOML).map(|f| f.service).unwrap_or_default()
}

/// The service with this id (case-insensitive), if any.
pub fn service(id: &str) -> Option<Service> {
    services().into_iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

/// The service whose servers live on the same host as `server_url`, if any
/// (so a pasted Twitch URL gets Twitch's limits without `--preset`).
pub fn detect(server_url: &str) -> Option<Service> {
    let host = crate::rtmp::RtmpUrl::with_key(server_url, "k").ok()?.host.to_ascii_lowercase();
    services().into_iter().filter(|s| s.id != "tally").find(|s| {
        s.servers.iter().any(|srv| crate::rtmp::RtmpUrl::with_key(&srv.url, "k").is_ok_and(|u| u.host.eq_ignore_ascii_case(&host)))
    })
}

/// What a service says about some settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advice {
    /// Over a hard limit: the platform would reject or cut the stream.
    Exceeds(String),
    /// Not what the service recommends.
    Recommend(String),
}

/// The settings a service checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked {
    /// Video kbit/s.
    pub video_kbps: u32,
    /// Audio kbit/s.
    pub audio_kbps: u32,
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval, s.
    pub keyint_secs: f64,
}

impl Service {
    /// Checks settings and a server URL against the service's limits.
    pub fn check(&self, s: &Checked, server_url: &str) -> Vec<Advice> {
        let mut out = Vec::new();
        let name = &self.name;
        if self.rtmps_only && !server_url.starts_with("rtmps://") {
            out.push(Advice::Exceeds(format!("{name} accepts only RTMPS (rtmps://...:443)")));
        }
        if let Some(max) = self.max_video_kbps
            && s.video_kbps > max
        {
            out.push(Advice::Exceeds(format!("{name} accepts at most {max} kbit/s of video (asked {})", s.video_kbps)));
        }
        if let Some(max) = self.max_audio_kbps
            && s.audio_kbps > max
        {
            out.push(Advice::Exceeds(format!("{name} accepts at most {max} kbit/s of audio (asked {})", s.audio_kbps)));
        }
        if let Some(max) = self.max_fps
            && s.fps > max
        {
            out.push(Advice::Exceeds(format!("{name} accepts at most {max} fps (asked {})", s.fps)));
        }
        if let Some(max) = self.max_keyint_secs
            && s.keyint_secs > max + 1e-9
        {
            out.push(Advice::Exceeds(format!("{name} needs a keyframe at least every {max} s (asked {} s)", s.keyint_secs)));
        } else if let Some(rec) = self.keyint_secs
            && (s.keyint_secs - rec).abs() > 1e-9
        {
            out.push(Advice::Recommend(format!("{name} recommends a keyframe every {rec} s (profile has {} s)", s.keyint_secs)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_parses_and_has_the_promised_services() {
        let all = services();
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for want in ["youtube", "twitch", "facebook", "vimeo", "kick", "tally", "custom"] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        for s in &all {
            for server in &s.servers {
                assert!(crate::rtmp::RtmpUrl::with_key(&server.url, "k").is_ok(), "{}: bad URL {}", s.id, server.url);
                if s.rtmps_only {
                    assert!(server.url.starts_with("rtmps://"), "{}", server.url);
                }
            }
        }
        assert_eq!(detect("rtmps://live.twitch.tv:443/app").map(|s| s.id), Some("twitch".into()));
        assert_eq!(detect("rtmp://127.0.0.1:1935/live"), None);
        let yt = service("YouTube").unwrap();
        assert!(yt.servers.iter().any(|s| s.url.starts_with("rtmps://")) && yt.servers.iter().any(|s| s.url.starts_with("rtmp://")));
    }

    #[test]
    fn twitch_and_facebook_limits() {
        let twitch = service("twitch").unwrap();
        let ok = Checked { video_kbps: 6000, audio_kbps: 160, fps: 60, keyint_secs: 2.0 };
        assert!(twitch.check(&ok, "rtmp://live.twitch.tv/app").is_empty());
        let too_much = Checked { video_kbps: 8000, keyint_secs: 4.0, ..ok };
        let advice = twitch.check(&too_much, "rtmp://live.twitch.tv/app");
        assert!(advice.iter().any(|a| matches!(a, Advice::Exceeds(m) if m.contains("6000"))));
        assert!(advice.iter().any(|a| matches!(a, Advice::Exceeds(m) if m.contains("every 2"))));
        let fb = service("facebook").unwrap();
        assert!(fb.check(&ok, "rtmp://live-api-s.facebook.com/rtmp").iter().any(|a| matches!(a, Advice::Exceeds(m) if m.contains("RTMPS"))));
        let yt = service("youtube").unwrap();
        let three = Checked { keyint_secs: 3.0, ..ok };
        assert!(matches!(yt.check(&three, "rtmps://a").as_slice(), [Advice::Recommend(_)]));
    }
}
