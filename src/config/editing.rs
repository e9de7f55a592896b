//! Profile editing that both faces do: a destination built from what a
//! person gave (a preset, a URL, a name, a CA file) and checked, a key
//! checked before it is stored, encode settings laid over a profile's,
//! and the store operations that keep keys and destinations together.

use super::ConfigError;
use super::profile::{DestinationProfile, KeyRef, Profile, ProfileStore, check_name, key_id};
use super::services;
use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::media::FrameSize;
use crate::rtmp::StreamKey;
use std::path::PathBuf;

/// A destination as a person describes it; [`DestinationDraft::build`] makes it a
/// [`DestinationProfile`] or says what is wrong.
#[derive(Clone, Debug, Default)]
pub struct DestinationDraft {
    /// Server URL without the key; default: the preset's first server.
    pub url: Option<String>,
    /// Service preset id; detected from the URL's host when `None`.
    pub preset: Option<String>,
    /// Name within the profile; default: the preset id, or "main".
    pub name: Option<String>,
    /// PEM file of a private CA to trust for RTMPS.
    pub ca_file: Option<PathBuf>,
    /// Its own video settings (checked against the profile's when it is saved).
    pub video: super::profile::VideoOverride,
}

impl DestinationDraft {
    /// The destination, without a key yet (`KeyRef::None`).
    pub fn build(&self) -> Result<DestinationProfile, ConfigError> {
        let preset = match &self.preset {
            Some(id) => Some(
                services::service(id)
                    .ok_or_else(|| ConfigError::NotFound(format!("no service preset '{id}' (tally profiles presets)")))?,
            ),
            None => self.url.as_deref().and_then(services::detect),
        };
        let server = match (&self.url, &preset) {
            (Some(url), _) => url.clone(),
            (None, Some(p)) => match p.servers.first() {
                Some(s) => s.url.clone(),
                None => return Err(ConfigError::Invalid(format!("preset '{}' has no server of its own: give --url", p.id))),
            },
            (None, None) => return Err(ConfigError::Invalid("give --url URL or --preset ID".into())),
        };
        let name = self.name.clone().or_else(|| preset.as_ref().map(|p| p.id.clone())).unwrap_or_else(|| "main".into());
        check_name(&name, "destination")?;
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(ConfigError::Invalid(format!("CA file {} does not exist", ca.display())));
        }
        Ok(DestinationProfile {
            name,
            preset: preset.map(|p| p.id),
            server,
            key: KeyRef::None,
            ca_file: self.ca_file.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            key_value: None,
            video: self.video,
        })
    }
}

/// A stream key as pasted: trimmed; refused when empty or when it looks like
/// a URL or holds spaces (pasting the whole URL is the usual mistake).
pub fn parse_key(text: &str) -> Result<StreamKey, ConfigError> {
    let key = text.trim();
    if key.is_empty() {
        return Err(ConfigError::Invalid("no stream key given".into()));
    }
    if key.contains('/') || key.chars().any(char::is_whitespace) {
        return Err(ConfigError::Invalid("a stream key cannot contain '/' or spaces (paste only the key, not the URL)".into()));
    }
    Ok(StreamKey::new(key))
}

/// Encode settings given by a person, each optional: laid over a profile's
/// (what is given wins), written into one, or turned into a broadcast's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodeOverrides {
    /// Video source.
    pub video: Option<VideoSourceSpec>,
    /// Audio source.
    pub audio: Option<AudioSourceSpec>,
    /// Frame size.
    pub size: Option<FrameSize>,
    /// Frames per second.
    pub fps: Option<u32>,
    /// Video kbit/s.
    pub video_kbps: Option<u32>,
    /// Audio kbit/s.
    pub audio_kbps: Option<u32>,
    /// Seconds between keyframes.
    pub keyint_secs: Option<f64>,
}

impl EncodeOverrides {
    /// Every setting a profile holds.
    pub fn of_profile(p: &Profile) -> Self {
        EncodeOverrides {
            video: Some(p.video.source.clone()),
            audio: Some(p.audio.source.clone()),
            size: Some(p.video.size),
            fps: Some(p.video.fps),
            video_kbps: Some(p.video.bitrate_kbps),
            audio_kbps: Some(p.audio.bitrate_kbps),
            keyint_secs: Some(p.video.keyint_secs),
        }
    }

    /// These over `base`: what is given here wins.
    pub fn over(&self, base: &EncodeOverrides) -> EncodeOverrides {
        EncodeOverrides {
            video: self.video.clone().or_else(|| base.video.clone()),
            audio: self.audio.clone().or_else(|| base.audio.clone()),
            size: self.size.or(base.size),
            fps: self.fps.or(base.fps),
            video_kbps: self.video_kbps.or(base.video_kbps),
            audio_kbps: self.audio_kbps.or(base.audio_kbps),
            keyint_secs: self.keyint_secs.or(base.keyint_secs),
        }
    }

    /// Writes what is given into a profile.
    pub fn apply_to(&self, p: &mut Profile) {
        if let Some(v) = &self.video {
            p.video.source = v.clone();
        }
        if let Some(a) = &self.audio {
            p.audio.source = a.clone();
        }
        if let Some(size) = self.size {
            p.video.size = size;
        }
        if let Some(fps) = self.fps {
            p.video.fps = fps;
        }
        if let Some(k) = self.video_kbps {
            p.video.bitrate_kbps = k;
        }
        if let Some(k) = self.audio_kbps {
            p.audio.bitrate_kbps = k;
        }
        if let Some(k) = self.keyint_secs {
            p.video.keyint_secs = k;
        }
    }
}

impl ProfileStore {
    /// Saves `profile` over the one of the same name, if any: destinations
    /// that keep their name keep their stored key; `keys` adds or replaces keys.
    pub fn save_keeping_keys(&self, mut profile: Profile, keys: &[(String, StreamKey)], force: bool) -> Result<Vec<String>, ConfigError> {
        let replace = match self.get(&profile.name) {
            Ok(old) => {
                for d in &mut profile.destinations {
                    if let Some(o) = old.destinations.iter().find(|o| o.name == d.name) {
                        d.key = o.key.clone();
                    }
                }
                true
            }
            Err(ConfigError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        self.save(profile, keys, replace, force)
    }

    /// Saves `profile` as an editor leaves it: `from` is the profile it was
    /// opened from (`None` for a new one). Kept under its name, destinations
    /// keep their stored keys; under a new name (a rename, or a duplicate
    /// with `keep_from`) the keys of same-named destinations are copied
    /// over, and a rename removes the old profile and its keys. `keys` adds
    /// or replaces keys. Warnings as [`ProfileStore::save`] gives them.
    pub fn save_edited(
        &self,
        profile: Profile,
        from: Option<&str>,
        keep_from: bool,
        keys: &[(String, StreamKey)],
    ) -> Result<Vec<String>, ConfigError> {
        let Some(old_name) = from.filter(|old| *old != profile.name) else {
            return self.save_keeping_keys(profile, keys, false);
        };
        let old = self.get(old_name)?;
        let mut all = keys.to_vec();
        for d in &profile.destinations {
            if all.iter().any(|(name, _)| name == &d.name) {
                continue;
            }
            if let Some(o) = old.destinations.iter().find(|o| o.name == d.name)
                && let Some(key) = self.key(old_name, o)?
            {
                all.push((d.name.clone(), key));
            }
        }
        let warnings = self.save(profile, &all, false, false)?;
        if !keep_from {
            self.remove(old_name)?;
        }
        Ok(warnings)
    }

    /// Adds a destination (and its key, if given) to a saved profile.
    pub fn add_destination(
        &self,
        profile: &str,
        dest: DestinationProfile,
        key: Option<StreamKey>,
        force: bool,
    ) -> Result<Vec<String>, ConfigError> {
        let mut p = self.get(profile)?;
        if p.destinations.iter().any(|d| d.name == dest.name) {
            return Err(ConfigError::Invalid(format!(
                "profile '{profile}' already has a destination '{}' (name another with --dest)",
                dest.name
            )));
        }
        let keys: Vec<(String, StreamKey)> = key.into_iter().map(|k| (dest.name.clone(), k)).collect();
        p.destinations.push(dest);
        self.save(p, &keys, true, force)
    }

    /// Removes a destination and its key in one step; the last destination
    /// cannot go (remove the profile instead).
    pub fn remove_destination(&self, profile: &str, destination: &str) -> Result<(), ConfigError> {
        let mut p = self.get(profile)?;
        let before = p.destinations.len();
        p.destinations.retain(|d| d.name != destination);
        if p.destinations.len() == before {
            return Err(ConfigError::NotFound(format!("profile '{profile}' has no destination '{destination}'")));
        }
        if p.destinations.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "'{destination}' is the profile's only destination: remove the profile instead"
            )));
        }
        self.save(p, &[], true, true)?;
        self.secrets().delete(&key_id(profile, destination))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secrets::SecretStore;

    fn store() -> (ProfileStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("tally-editing-{}-{}", std::process::id(), fastrand::u64(..)));
        (ProfileStore::with_secrets(&dir, SecretStore::open_file_only(&dir)), dir)
    }

    #[test]
    fn drafts_take_the_preset_server_and_name_or_say_what_is_missing() {
        let d = DestinationDraft { preset: Some("twitch".into()), ..Default::default() }.build().unwrap();
        assert_eq!((d.name.as_str(), d.preset.as_deref()), ("twitch", Some("twitch")));
        assert!(d.server.starts_with("rtmp"));
        let custom = DestinationDraft { url: Some("rtmp://127.0.0.1/live".into()), ..Default::default() }.build().unwrap();
        assert_eq!(custom.name, "main");
        assert!(DestinationDraft::default().build().unwrap_err().to_string().contains("--url"));
        assert!(DestinationDraft { preset: Some("nope".into()), ..Default::default() }.build().is_err());
        let bad = DestinationDraft { url: Some("rtmp://h/a".into()), name: Some("a/b".into()), ..Default::default() };
        assert!(bad.build().unwrap_err().to_string().contains("without '/'"));
    }

    #[test]
    fn keys_are_checked_before_they_are_stored() {
        assert_eq!(parse_key("  live_123 \n").unwrap().expose(), "live_123");
        assert!(parse_key("rtmp://a/b/live_123").is_err());
        assert!(parse_key("   ").is_err());
    }

    #[test]
    fn replacing_keeps_keys_and_removing_a_destination_removes_its_key() {
        let (store, dir) = store();
        let first = DestinationDraft { preset: Some("twitch".into()), ..Default::default() }.build().unwrap();
        let p = Profile { name: "show".into(), destinations: vec![first], ..Profile::named("show") };
        store.save_keeping_keys(p.clone(), &[("twitch".into(), StreamKey::new("k1"))], false).unwrap();
        let mut again = p.clone();
        EncodeOverrides { fps: Some(60), ..Default::default() }.apply_to(&mut again);
        store.save_keeping_keys(again, &[], false).unwrap();
        let saved = store.get("show").unwrap();
        assert_eq!(saved.video.fps, 60);
        assert_eq!(store.key("show", &saved.destinations[0]).unwrap().unwrap().expose(), "k1", "the key stayed");

        let backup = DestinationDraft { url: Some("rtmp://127.0.0.1/live".into()), name: Some("backup".into()), ..Default::default() };
        store.add_destination("show", backup.build().unwrap(), Some(StreamKey::new("k2")), false).unwrap();
        assert!(store.add_destination("show", backup.build().unwrap(), None, false).is_err(), "names are unique");
        store.remove_destination("show", "backup").unwrap();
        assert!(store.secrets().get("show/backup").unwrap().is_none(), "its key went with it");
        assert!(store.remove_destination("show", "twitch").unwrap_err().to_string().contains("only destination"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn overrides_win_over_the_profile() {
        let mut p = Profile::named("x");
        p.video.fps = 25;
        let given = EncodeOverrides { fps: Some(50), size: Some(FrameSize::new(640, 360)), ..Default::default() };
        let merged = given.over(&EncodeOverrides::of_profile(&p));
        assert_eq!((merged.fps, merged.size, merged.video_kbps), (Some(50), Some(FrameSize::new(640, 360)), Some(p.video.bitrate_kbps)));
    }
}
