//! Profiles: everything needed to go live with one click, saved as TOML.
//!
//! A profile has a name, one or more destinations (a service preset or a
//! custom server, and a reference to its stream key in the
//! [`SecretStore`]), the video and audio
//! settings, and whether to record locally. The file never holds a key;
//! an export holds one only when asked (`--include-keys`), and importing
//! such a file moves the key into the secret store.

use super::ConfigError;
use super::secrets::SecretStore;
use super::services::{self, Advice, Checked};
use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::media::FrameSize;
use crate::media::rendition::RenditionSpec;
use crate::media::rendition::{DEFAULT_AUDIO_KBPS, DEFAULT_FPS, DEFAULT_KEYINT_SECS, DEFAULT_SIZE, DEFAULT_VIDEO_KBPS};
use crate::rtmp::{RtmpUrl, StreamKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The profiles file's name, in the configuration directory.
pub const PROFILES_FILE: &str = "profiles.toml";

/// Video settings of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoProfile {
    /// `auto`, `test`, `camera[:N]`, `y4m:PATH`.
    pub source: VideoSourceSpec,
    /// `WxH`.
    pub size: FrameSize,
    /// Frames per second.
    pub fps: u32,
    /// kbit/s.
    pub bitrate_kbps: u32,
    /// Seconds between keyframes.
    pub keyint_secs: f64,
}

impl Default for VideoProfile {
    fn default() -> Self {
        VideoProfile {
            source: VideoSourceSpec::Auto,
            size: DEFAULT_SIZE,
            fps: DEFAULT_FPS,
            bitrate_kbps: DEFAULT_VIDEO_KBPS,
            keyint_secs: DEFAULT_KEYINT_SECS,
        }
    }
}

/// Audio settings of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AudioProfile {
    /// `auto`, `sine`, `silence`, `mic[:NAME]`, `wav:PATH`.
    pub source: AudioSourceSpec,
    /// kbit/s.
    pub bitrate_kbps: u32,
}

impl Default for AudioProfile {
    fn default() -> Self {
        AudioProfile { source: AudioSourceSpec::Auto, bitrate_kbps: DEFAULT_AUDIO_KBPS }
    }
}

/// Where a destination's key is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRef {
    /// In the secret store under `PROFILE/DESTINATION`.
    SecretStore,
    /// No key (a server that needs none, or not set yet).
    None,
}

/// One destination of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationProfile {
    /// Unique within the profile ("twitch", "backup").
    pub name: String,
    /// The service preset it was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `rtmp[s]://host[:port]/app[/instance]`, no key.
    pub server: String,
    /// Where its stream key is.
    pub key: KeyRef,
    /// A PEM file of a private CA to trust for RTMPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Only in exports made with `--include-keys`: the key itself (its Debug is redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_value: Option<StreamKey>,
    /// Its own video settings, each over the profile's.
    #[serde(default, flatten)]
    pub video: VideoOverride,
}

/// A destination's own video settings (each `None`: the profile's). It
/// gets an encode of its own when they differ from the profile's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoOverride {
    /// `WxH`, at most the profile's (pictures are scaled down, never up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<FrameSize>,
    /// Frames per second, at most the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Video kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "video_bitrate_kbps")]
    pub bitrate_kbps: Option<u32>,
}

impl VideoOverride {
    /// True when nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == VideoOverride::default()
    }

    /// The settings a destination with these overrides gets, over
    /// `base` (the profile's, or the broadcast's): a size larger than the
    /// base is brought down to it, a rate above it likewise.
    pub fn over(&self, base: RenditionSpec) -> RenditionSpec {
        let size = self.size.map_or(base.size, |s| FrameSize::new(s.width.min(base.size.width), s.height.min(base.size.height)));
        RenditionSpec {
            size,
            fps: self.fps.map_or(base.fps, |f| f.clamp(1, base.fps)),
            video_kbps: self.bitrate_kbps.unwrap_or(base.video_kbps),
            keyint_secs: base.keyint_secs,
        }
    }

    /// What a person reads: "1280x720, 3000 kbit/s".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.size {
            parts.push(s.to_string());
        }
        if let Some(f) = self.fps {
            parts.push(format!("{f} fps"));
        }
        if let Some(k) = self.bitrate_kbps {
            parts.push(format!("{k} kbit/s"));
        }
        parts.join(", ")
    }
}

/// A saved way of going live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// Video settings.
    #[serde(default)]
    pub video: VideoProfile,
    /// Audio settings.
    #[serde(default)]
    pub audio: AudioProfile,
    /// Record locally as well: an `.flv` file, or a directory for timestamped files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<PathBuf>,
    /// Where it goes.
    #[serde(default, rename = "destination")]
    pub destinations: Vec<DestinationProfile>,
}

/// A profile or destination name: non-empty, no '/' (it is half a key id).
pub fn check_name(name: &str, what: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() || name.contains('/') {
        return Err(ConfigError::Invalid(format!("a {what} name must be non-empty and without '/'")));
    }
    Ok(())
}

/// The id a destination's key is stored under.
pub fn key_id(profile: &str, destination: &str) -> String {
    format!("{profile}/{destination}")
}

impl Profile {
    /// A profile with the default settings and no destination yet.
    pub fn named(name: &str) -> Self {
        Profile {
            name: name.into(),
            video: VideoProfile::default(),
            audio: AudioProfile::default(),
            record: None,
            destinations: Vec::new(),
        }
    }

    /// Checks every destination against its service preset: hard limits
    /// exceeded are errors unless `force`; recommendations are returned as
    /// warnings.
    pub fn check(&self, force: bool) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if self.destinations.is_empty() {
            return Err(ConfigError::Invalid(format!("profile '{}' has no destination", self.name)));
        }
        let settings = Checked {
            video_kbps: self.video.bitrate_kbps,
            audio_kbps: self.audio.bitrate_kbps,
            fps: self.video.fps,
            keyint_secs: self.video.keyint_secs,
        };
        for d in &self.destinations {
            RtmpUrl::with_key(&d.server, "k")
                .map_err(|e| ConfigError::Invalid(format!("destination '{}': server {}: {e}", d.name, d.server)))?;
            self.check_override(d)?;
            let mut settings = settings;
            settings.video_kbps = d.video.bitrate_kbps.unwrap_or(settings.video_kbps);
            settings.fps = d.video.fps.unwrap_or(settings.fps);
            let Some(preset) = d.preset.as_deref() else { continue };
            let service = services::service(preset)
                .ok_or_else(|| ConfigError::Invalid(format!("destination '{}': no service preset '{preset}'", d.name)))?;
            for advice in service.check(&settings, &d.server) {
                match advice {
                    Advice::Exceeds(m) if !force => {
                        return Err(ConfigError::Invalid(format!("destination '{}': {m} (--force to save anyway)", d.name)));
                    }
                    Advice::Exceeds(m) | Advice::Recommend(m) => warnings.push(format!("destination '{}': {m}", d.name)),
                }
            }
        }
        Ok(warnings)
    }

    /// A destination's own video settings fit within the profile's: Tally
    /// scales the captured picture down for it, never up, and drops
    /// frames for a lower rate, never makes them up.
    fn check_override(&self, d: &DestinationProfile) -> Result<(), ConfigError> {
        let o = &d.video;
        if let Some(size) = o.size
            && (size.width > self.video.size.width || size.height > self.video.size.height)
        {
            return Err(ConfigError::Invalid(format!(
                "destination '{}': {size} is larger than the profile's {} (pictures are scaled down, never up: raise the profile's size)",
                d.name, self.video.size
            )));
        }
        if let Some(fps) = o.fps
            && (fps == 0 || fps > self.video.fps)
        {
            return Err(ConfigError::Invalid(format!(
                "destination '{}': {fps} fps must be between 1 and the profile's {} fps",
                d.name, self.video.fps
            )));
        }
        if let Some(kbps) = o.bitrate_kbps
            && !(MIN_VIDEO_KBPS..=MAX_VIDEO_KBPS).contains(&kbps)
        {
            return Err(ConfigError::Invalid(format!(
                "destination '{}': a video bitrate of {kbps} kbit/s is outside {MIN_VIDEO_KBPS}..={MAX_VIDEO_KBPS}",
                d.name
            )));
        }
        Ok(())
    }
}

/// The lowest video bitrate a destination's own settings may ask for, kbit/s.
pub const MIN_VIDEO_KBPS: u32 = 100;
/// The highest, kbit/s (what openh264 and any ingest take for 4K).
pub const MAX_VIDEO_KBPS: u32 = 100_000;

#[derive(Default, Serialize, Deserialize)]
struct ProfilesFile {
    #[serde(default, rename = "profile")]
    profiles: Vec<Profile>,
}

/// The profiles of one configuration directory, and their keys.
#[derive(Debug)]
pub struct ProfileStore {
    path: PathBuf,
    secrets: SecretStore,
}

impl ProfileStore {
    /// The store in `config_dir` (nothing is created until something is saved).
    pub fn open(config_dir: &Path) -> Self {
        Self::with_secrets(config_dir, SecretStore::open(config_dir))
    }

    /// The profiles of `config_dir` with keys kept in `secrets`.
    pub fn with_secrets(config_dir: &Path, secrets: SecretStore) -> Self {
        ProfileStore { path: config_dir.join(PROFILES_FILE), secrets }
    }

    /// The profiles file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key store.
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// The file's profiles; a file that cannot be parsed is set aside (the
    /// app and the CLI start with no profiles rather than not at all), said
    /// in the log once.
    fn read(&self) -> Result<ProfilesFile, ConfigError> {
        let (file, said) = super::read_toml_or_set_aside(&self.path)?;
        if let Some(said) = said {
            tracing::warn!("{said}");
        }
        Ok(file)
    }

    fn write(&self, file: &ProfilesFile) -> Result<(), ConfigError> {
        let mut text = String::from("# Tally profiles. Stream keys are not in this file: see `tally profiles list`.\n\n");
        text.push_str(&toml::to_string_pretty(file).map_err(|e| ConfigError::Invalid(e.to_string()))?);
        super::write_file_atomic(&self.path, &text, false)
    }

    /// Every profile, in file order.
    pub fn list(&self) -> Result<Vec<Profile>, ConfigError> {
        Ok(self.read()?.profiles)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Result<Profile, ConfigError> {
        self.read()?
            .profiles
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ConfigError::NotFound(format!("no profile '{name}' (tally profiles list)")))
    }

    /// Saves a new profile (or replaces one with `replace`); `keys` are the
    /// destinations' keys by destination name, stored in the secret store.
    /// Returns warnings (service recommendations, the key-file notice).
    pub fn save(&self, mut profile: Profile, keys: &[(String, StreamKey)], replace: bool, force: bool) -> Result<Vec<String>, ConfigError> {
        check_name(&profile.name, "profile")?;
        let mut warnings = profile.check(force)?;
        let mut file = self.read()?;
        let exists = file.profiles.iter().any(|p| p.name == profile.name);
        if exists && !replace {
            return Err(ConfigError::Invalid(format!("profile '{}' already exists (remove it first)", profile.name)));
        }
        for (dest, key) in keys {
            let (_, notice) = self.secrets.set(&key_id(&profile.name, dest), key)?;
            warnings.extend(notice);
            if let Some(d) = profile.destinations.iter_mut().find(|d| &d.name == dest) {
                d.key = KeyRef::SecretStore;
            }
        }
        for d in &mut profile.destinations {
            d.key_value = None;
        }
        file.profiles.retain(|p| p.name != profile.name);
        file.profiles.push(profile);
        self.write(&file)?;
        Ok(warnings)
    }

    /// Deletes a profile and its keys.
    pub fn remove(&self, name: &str) -> Result<(), ConfigError> {
        let profile = self.get(name)?;
        for d in &profile.destinations {
            self.secrets.delete(&key_id(name, &d.name))?;
        }
        let mut file = self.read()?;
        file.profiles.retain(|p| p.name != name);
        self.write(&file)
    }

    /// The key of a destination, if stored.
    pub fn key(&self, profile: &str, destination: &DestinationProfile) -> Result<Option<StreamKey>, ConfigError> {
        Ok(self.key_and_place(profile, destination)?.map(|(key, _)| key))
    }

    /// The key of a destination and where it is kept, if stored.
    pub fn key_and_place(
        &self,
        profile: &str,
        destination: &DestinationProfile,
    ) -> Result<Option<(StreamKey, super::Backend)>, ConfigError> {
        match destination.key {
            KeyRef::None => Ok(None),
            KeyRef::SecretStore => self.secrets.locate(&key_id(profile, &destination.name)),
        }
    }

    /// Sets (or replaces) one destination's key.
    pub fn set_key(&self, profile: &str, destination: &str, key: &StreamKey) -> Result<Vec<String>, ConfigError> {
        let mut p = self.get(profile)?;
        if !p.destinations.iter().any(|d| d.name == destination) {
            let names: Vec<&str> = p.destinations.iter().map(|d| d.name.as_str()).collect();
            return Err(ConfigError::NotFound(format!("profile '{profile}' has no destination '{destination}' ({})", names.join(", "))));
        }
        p.destinations.iter_mut().filter(|d| d.name == destination).for_each(|d| d.key = KeyRef::SecretStore);
        self.save(p, &[(destination.to_string(), key.clone())], true, true)
    }

    /// The profile as TOML for another machine; keys only with `include_keys`.
    pub fn export(&self, name: &str, include_keys: bool) -> Result<String, ConfigError> {
        let mut p = self.get(name)?;
        if include_keys {
            for d in &mut p.destinations {
                d.key_value = self.key(name, d)?;
            }
        }
        let file = ProfilesFile { profiles: vec![p] };
        let body = toml::to_string_pretty(&file).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let head = if include_keys {
            "# Tally profile export WITH STREAM KEYS: anyone with this file can stream as you.\n\n"
        } else {
            "# Tally profile export (no stream keys: set them with `tally profiles set-key`).\n\n"
        };
        Ok(format!("{head}{body}"))
    }

    /// Imports the profiles of an export; keys in it go to the secret store.
    /// Returns the imported names and warnings.
    pub fn import(&self, text: &str, force: bool) -> Result<(Vec<String>, Vec<String>), ConfigError> {
        let file: ProfilesFile =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: PathBuf::from("(import)"), reason: super::toml_reason(text, &e) })?;
        let mut names = Vec::new();
        let mut warnings = Vec::new();
        for mut p in file.profiles {
            let keys: Vec<(String, StreamKey)> =
                p.destinations.iter().filter_map(|d| d.key_value.clone().map(|k| (d.name.clone(), k))).collect();
            for d in &mut p.destinations {
                if d.key_value.is_none() {
                    d.key = KeyRef::None;
                    warnings.push(format!("profile '{}', destination '{}': no key imported (tally profiles set-key)", p.name, d.name));
                }
            }
            names.push(p.name.clone());
            warnings.extend(self.save(p, &keys, false, force)?);
        }
        Ok((names, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        std::env::temp_dir().join(format!("tally-profiles-{}-{}", std::process::id(), fastrand::u64(..)))
    }

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            video: VideoProfile::default(),
            audio: AudioProfile::default(),
            record: None,
            destinations: vec![DestinationProfile {
                name: "twitch".into(),
                preset: Some("twitch".into()),
                server: "rtmp://live.twitch.tv/app".into(),
                key: KeyRef::None,
                ca_file: None,
                key_value: None,
                video: Default::default(),
            }],
        }
    }

    #[test]
    fn save_list_export_import_remove_never_writing_the_key_unasked() {
        let dir = tmp();
        // The file store, as on a machine without a keyring.
        let store = ProfileStore { path: dir.join(PROFILES_FILE), secrets: SecretStore::open_file_only(&dir) };
        store.save(profile("show"), &[("twitch".into(), StreamKey::new("live_999_secret"))], false, false).unwrap();
        let toml_text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!toml_text.contains("live_999_secret"), "{toml_text}");
        assert!(toml_text.contains("key = \"secret-store\""), "{toml_text}");
        let p = store.get("show").unwrap();
        assert_eq!(store.key("show", &p.destinations[0]).unwrap().unwrap().expose(), "live_999_secret");
        assert!(store.save(profile("show"), &[], false, false).is_err(), "duplicate names are refused");

        let plain = store.export("show", false).unwrap();
        assert!(!plain.contains("live_999_secret"));
        let with_keys = store.export("show", true).unwrap();
        assert!(with_keys.contains("live_999_secret") && with_keys.contains("WITH STREAM KEYS"));

        store.remove("show").unwrap();
        assert!(store.get("show").is_err());
        assert!(store.secrets().get("show/twitch").unwrap().is_none(), "removing a profile removes its keys");
        let (names, warnings) = store.import(&with_keys, false).unwrap();
        assert_eq!(names, vec!["show"]);
        assert!(warnings.iter().all(|w| !w.contains("no key imported")));
        assert!(!std::fs::read_to_string(store.path()).unwrap().contains("live_999_secret"));
        let (_, warnings) = store.import(&plain.replace("name = \"show\"", "name = \"show2\""), false).unwrap();
        assert!(warnings.iter().any(|w| w.contains("no key imported")));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn presets_are_enforced_or_warned() {
        let mut p = profile("x");
        p.video.bitrate_kbps = 8000;
        assert!(p.check(false).unwrap_err().to_string().contains("6000"));
        assert!(!p.check(true).unwrap().is_empty());
        p.video.bitrate_kbps = 4000;
        assert!(p.check(false).unwrap().is_empty());
        p.destinations[0].server = "not a url".into();
        assert!(p.check(true).is_err());
    }
}
