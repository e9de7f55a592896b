//! A broadcast plan: a profile plus plain overrides turned into broadcast
//! settings and outputs — keys fetched from the secret store, the
//! services' limits checked, the recording path chosen. Both faces go
//! live through this; it takes no command-line types.

use crate::capture::{VideoSourceSpec, Y4mSource};
use crate::config::{ConfigError, EncodeOverrides, Profile, ProfileStore};
use crate::media::rendition::{DEFAULT_AUDIO_KBPS, DEFAULT_FPS, DEFAULT_KEYINT_SECS, DEFAULT_SIZE, DEFAULT_VIDEO_KBPS};
use crate::net::publisher::Destination;
use crate::capture::AudioSourceSpec;
use crate::pipeline::{BroadcastSettings, OutputSpec};
use crate::rtmp::RtmpUrl;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a run goes (never saved in a profile).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// Stop after this much media; `None` runs until stopped.
    pub duration: Option<Duration>,
    /// Encode as fast as possible instead of in real time.
    pub fast: bool,
    /// Restart Y4M/WAV files at their end.
    pub looping: bool,
    /// Added to every timestamp (tests cross 0xFFFFFF ms with it).
    pub start_offset_ms: u32,
    /// CPU the encoders may use together, percent of one core (`None`: the default).
    pub encoder_budget_percent: Option<u32>,
    /// Compose this scene instead of the video source alone (`--scene`).
    pub scene: Option<crate::session::scene::Scene>,
}

/// What to go live with: a saved profile and/or URLs, overrides on top.
#[derive(Clone, Debug, Default)]
pub struct GoLiveRequest {
    /// A saved profile's name: its destinations, keys, settings and recording.
    pub profile: Option<String>,
    /// More destinations (the key in each URL).
    pub urls: Vec<RtmpUrl>,
    /// Also record to this file (overwritten); else the profile's recording place.
    pub record: Option<PathBuf>,
    /// CA file for `rtmps://` destinations that do not name their own.
    pub ca_file: Option<PathBuf>,
    /// Settings that win over the profile's.
    pub encode: EncodeOverrides,
    /// Duration, pacing, looping.
    pub run: RunOptions,
}

/// A broadcast ready to start.
#[derive(Clone, Debug)]
pub struct BroadcastPlan {
    /// Sources and encoding.
    pub settings: BroadcastSettings,
    /// Where it goes, in order.
    pub outputs: Vec<OutputSpec>,
    /// The services' advice about these settings, for the person to read.
    pub warnings: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The profile could not be read, or breaks a service's hard limit.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A destination of the profile has no key stored.
    #[error("profile '{profile}', destination '{destination}' has no stream key")]
    MissingKey {
        /// Profile name.
        profile: String,
        /// Destination name.
        destination: String,
    },
    /// A destination's server URL is not an RTMP URL.
    #[error("profile '{profile}', destination '{destination}'")]
    BadServer {
        /// Profile name.
        profile: String,
        /// Destination name.
        destination: String,
        /// What is wrong (never the key).
        #[source]
        source: crate::rtmp::UrlError,
    },
    /// No destination at all.
    #[error("no destination: neither a URL nor a profile with destinations")]
    NoDestination,
    /// A Y4M source's header could not be read.
    #[error("reading the Y4M header")]
    Y4m(#[source] crate::capture::CaptureError),
    /// The recording directory could not be created.
    #[error("creating the recording directory {}", dir.display())]
    RecordingDir {
        /// The directory.
        dir: PathBuf,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
}

impl BroadcastPlan {
    /// Going live: `request`'s profile (from `store`) and URLs, with its overrides.
    pub fn go_live(request: &GoLiveRequest, store: &ProfileStore) -> Result<BroadcastPlan, PlanError> {
        let profile = request.profile.as_deref().map(|name| store.get(name)).transpose()?;
        let base = profile.as_ref().map(EncodeOverrides::of_profile).unwrap_or_default();
        let settings = settings(&request.encode.over(&base), &request.run)?;
        let mut outputs = Vec::new();
        let mut warnings = Vec::new();
        if let Some(p) = &profile {
            warnings = check_effective(p, &settings)?;
            outputs.extend(profile_outputs(p, store, request.ca_file.as_deref(), &settings, &mut warnings)?);
        }
        for url in &request.urls {
            let mut dest = Destination::new(url.clone(), 0, 0);
            dest.ca_file = request.ca_file.clone();
            outputs.push(OutputSpec::Publish(dest));
        }
        if outputs.is_empty() {
            return Err(PlanError::NoDestination);
        }
        let record = match (&request.record, profile.as_ref().and_then(|p| p.record.as_deref())) {
            (Some(file), _) => Some(file.clone()),
            (None, Some(place)) => Some(recording_path(place, SystemTime::now())?),
            (None, None) => None,
        };
        if let Some(file) = record {
            outputs.push(OutputSpec::Record(file));
        }
        Ok(BroadcastPlan { settings, outputs, warnings })
    }

    /// Recording only, to `file` (overwritten).
    pub fn record(file: PathBuf, encode: &EncodeOverrides, run: &RunOptions) -> Result<BroadcastPlan, PlanError> {
        Ok(BroadcastPlan { settings: settings(encode, run)?, outputs: vec![OutputSpec::Record(file)], warnings: Vec::new() })
    }
}

/// Broadcast settings from overrides over the defaults; a Y4M source lends
/// its own size and rate to whatever is left open.
pub fn settings(encode: &EncodeOverrides, run: &RunOptions) -> Result<BroadcastSettings, PlanError> {
    let video = encode.video.clone().unwrap_or(VideoSourceSpec::Auto);
    let (mut size, mut fps) = (encode.size, encode.fps);
    if let VideoSourceSpec::Y4m(path) = &video
        && (size.is_none() || fps.is_none())
    {
        let header = Y4mSource::probe(path).map_err(PlanError::Y4m)?;
        size = size.or(Some(crate::media::FrameSize::new(header.width & !1, header.height & !1)));
        fps = fps.or(Some(header.rate.as_f64().round().clamp(1.0, 120.0) as u32));
    }
    let size = size.unwrap_or(DEFAULT_SIZE);
    Ok(BroadcastSettings {
        video,
        scene: run.scene.clone(),
        audio: encode.audio.clone().unwrap_or(AudioSourceSpec::Auto),
        width: size.width,
        height: size.height,
        fps: fps.unwrap_or(DEFAULT_FPS),
        video_kbps: encode.video_kbps.unwrap_or(DEFAULT_VIDEO_KBPS),
        audio_kbps: encode.audio_kbps.unwrap_or(DEFAULT_AUDIO_KBPS),
        keyint_secs: encode.keyint_secs.unwrap_or(DEFAULT_KEYINT_SECS),
        duration: run.duration,
        fast: run.fast,
        start_offset_ms: run.start_offset_ms,
        encoder_threads: 1,
        looping: run.looping,
        encoder_budget_percent: run.encoder_budget_percent,
    })
}

/// The services' verdict on the settings actually used (overrides included):
/// hard limits refuse, unless... they are warned about, as the CLI always did
/// (an override is the person's explicit choice).
fn check_effective(p: &Profile, settings: &BroadcastSettings) -> Result<Vec<String>, PlanError> {
    let mut effective = p.clone();
    effective.video.bitrate_kbps = settings.video_kbps;
    effective.video.fps = settings.fps;
    effective.video.keyint_secs = settings.keyint_secs;
    effective.audio.bitrate_kbps = settings.audio_kbps;
    Ok(effective.check(true)?)
}

/// The destinations of a profile with their keys from the secret store.
fn profile_outputs(
    p: &Profile,
    store: &ProfileStore,
    ca_file: Option<&Path>,
    settings: &BroadcastSettings,
    warnings: &mut Vec<String>,
) -> Result<Vec<OutputSpec>, PlanError> {
    let base = crate::pipeline::base_spec(settings);
    let mut outputs = Vec::new();
    for d in &p.destinations {
        let key = store
            .key(&p.name, d)?
            .ok_or_else(|| PlanError::MissingKey { profile: p.name.clone(), destination: d.name.clone() })?;
        let url = RtmpUrl::with_key(&d.server, key.expose()).map_err(|source| PlanError::BadServer {
            profile: p.name.clone(),
            destination: d.name.clone(),
            source,
        })?;
        let mut dest = Destination::new(url, 0, 0);
        dest.ca_file = d.ca_file.clone().or_else(|| ca_file.map(Path::to_path_buf));
        dest.id = Some(crate::config::key_id(&p.name, &d.name));
        // Its own settings over the broadcast's (a size or rate above what
        // is captured, after a command-line override, comes down to it).
        let own = d.video.over(base);
        if let Some(size) = d.video.size
            && size != own.size
        {
            warnings.push(format!("destination '{}': {size} is larger than the {} captured: sending {}", d.name, base.size, own.size));
        }
        if own != base {
            dest.video = Some(own);
        }
        outputs.push(OutputSpec::Publish(dest));
    }
    Ok(outputs)
}

/// Where a profile's recording goes: `place` is a directory (created if
/// missing) that gets `tally-YYYY-MM-DDTHH-MM-SSZ.flv`, or an `.flv` file,
/// which is never overwritten (an existing one gets the time added).
pub fn recording_path(place: &Path, now: SystemTime) -> Result<PathBuf, PlanError> {
    let stamp = utc_stamp(now);
    let is_file = place.extension().is_some_and(|e| e.eq_ignore_ascii_case("flv"));
    let (dir, stem) = if is_file {
        if !place.exists() {
            return Ok(place.to_path_buf());
        }
        let stem = place.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        (place.parent().map(Path::to_path_buf).unwrap_or_default(), stem)
    } else {
        std::fs::create_dir_all(place)
            .map_err(|source| PlanError::RecordingDir { dir: place.to_path_buf(), source })?;
        (place.to_path_buf(), "tally".to_owned())
    };
    // Never overwrite an earlier recording, even from the same second.
    let mut candidate = dir.join(format!("{stem}-{stamp}.flv"));
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("{stem}-{stamp}-{n}.flv"));
        n += 1;
    }
    Ok(candidate)
}

/// `YYYY-MM-DDTHH-MM-SSZ` (UTC; no colons, which some file systems refuse).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rem = secs % 86_400;
    format!("{}T{:02}-{:02}-{:02}Z", utc_date(secs as i64), rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds, by Howard Hinnant's
/// civil_from_days: no date crate for the recordings' names and the man
/// pages' date.
pub fn utc_date(unix_secs: i64) -> String {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DestinationDraft, SecretStore};
    use crate::rtmp::StreamKey;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01T00-00-00Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_000_000)), "2026-11-18T11-06-40Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_825_600)), "2000-02-29T12-00-00Z");
    }

    #[test]
    fn a_profile_becomes_outputs_with_keys_and_overrides_win() {
        let dir = std::env::temp_dir().join(format!("tally-plan-{}-{}", std::process::id(), fastrand::u64(..)));
        let store = ProfileStore::with_secrets(&dir, SecretStore::open_file_only(&dir));
        let dest = DestinationDraft { url: Some("rtmp://127.0.0.1:1935/live".into()), ..Default::default() }.build().unwrap();
        let mut p = Profile::named("show");
        p.destinations.push(dest);
        p.record = Some(dir.join("recordings"));
        store.save(p.clone(), &[], false, false).unwrap();
        let request = GoLiveRequest {
            profile: Some("show".into()),
            encode: EncodeOverrides { video_kbps: Some(1000), video: Some(VideoSourceSpec::TestPattern), ..Default::default() },
            ..Default::default()
        };
        let missing = BroadcastPlan::go_live(&request, &store).unwrap_err();
        assert!(matches!(missing, PlanError::MissingKey { .. }), "{missing}");
        store.set_key("show", "main", &StreamKey::new("sekrit")).unwrap();
        let plan = BroadcastPlan::go_live(&request, &store).unwrap();
        assert_eq!((plan.settings.video_kbps, plan.settings.width, plan.settings.fps), (1000, 1280, 30));
        assert_eq!(plan.outputs.len(), 2, "the destination and the profile's recording");
        assert!(matches!(&plan.outputs[0], OutputSpec::Publish(d) if d.url.stream_key.expose() == "sekrit"));
        assert!(matches!(&plan.outputs[1], OutputSpec::Record(f) if f.starts_with(dir.join("recordings"))));
        assert!(matches!(BroadcastPlan::go_live(&GoLiveRequest::default(), &store), Err(PlanError::NoDestination)));
        std::fs::remove_dir_all(dir).ok();
    }
}
