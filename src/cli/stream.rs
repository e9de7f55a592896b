//! `tally stream` and `tally record`: run a broadcast from the terminal.

use super::media::{MediaArgs, RunArgs};
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tally::config::{self, Profile, ProfileStore};
use tally::net::publisher::Destination;
use tally::pipeline::{Broadcast, BroadcastSettings, OutputKind, OutputSpec};
use tally::rtmp::RtmpUrl;

/// A mistake in the arguments (exit status 2, like clap's own).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `tally stream`'s options.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Destination URLs, rtmp[s]://host[:port]/app[/instance]/KEY: the last
    /// path segment is the stream key. Added to the profile's destinations.
    #[arg(value_name = "URL")]
    urls: Vec<super::SecretArg>,
    /// Go live with a saved profile (tally profiles list): its destinations,
    /// keys and settings; options given here override its settings.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Also record to this FLV file (overwritten), continuous through network faults.
    #[arg(long, value_name = "FILE.flv")]
    record: Option<PathBuf>,
    /// Trust this PEM file of CA certificates for rtmps:// (besides the system's),
    /// for destinations that do not name their own.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    media: MediaArgs,
}

/// `tally stream`.
pub fn stream(args: StreamArgs) -> anyhow::Result<bool> {
    let mut outputs = Vec::new();
    let profile = match &args.profile {
        Some(name) => Some(ProfileStore::open(&config::config_dir()?).get(name)?),
        None => None,
    };
    let encode = args.media.encode.over_profile(profile.as_ref())?;
    let settings = args.media.settings(&encode)?;
    if let Some(p) = &profile {
        outputs.extend(profile_outputs(p, args.ca_file.as_deref(), &settings)?);
    }
    // URLs are parsed here rather than by clap: clap would echo the raw
    // value, stream key included, into its error message.
    for (i, raw) in args.urls.iter().enumerate() {
        let url = RtmpUrl::parse(&raw.0).map_err(|e| UsageError(format!("error: invalid value for '<URL>' #{}: {e}", i + 1)))?;
        let mut dest = Destination::new(url, 0, 0);
        dest.ca_file = args.ca_file.clone();
        outputs.push(OutputSpec::Publish(dest));
    }
    if outputs.is_empty() {
        return Err(UsageError("error: give at least one destination URL or --profile NAME".into()).into());
    }
    let record = match (&args.record, profile.as_ref().and_then(|p| p.record.as_deref())) {
        (Some(file), _) => Some(file.clone()),
        (None, Some(place)) => Some(recording_path(place, SystemTime::now())?),
        (None, None) => None,
    };
    if let Some(file) = record {
        tracing::info!(file = %file.display(), "recording locally as well");
        outputs.push(OutputSpec::Record(file));
    }
    run_broadcast(outputs, settings, &args.media.run)
}

/// `tally record FILE.flv`.
pub fn record(file: PathBuf, media: &MediaArgs) -> anyhow::Result<bool> {
    let settings = media.settings(&media.encode)?;
    run_broadcast(vec![OutputSpec::Record(file)], settings, &media.run)
}

/// The destinations of a profile, keys fetched from the secret store, with
/// the service's advice about the settings actually used.
fn profile_outputs(p: &Profile, ca_file: Option<&Path>, settings: &BroadcastSettings) -> anyhow::Result<Vec<OutputSpec>> {
    let store = ProfileStore::open(&config::config_dir()?);
    let mut effective = p.clone();
    effective.video.bitrate_kbps = settings.video_kbps;
    effective.video.fps = settings.fps;
    effective.video.keyint_secs = settings.keyint_secs;
    effective.audio.bitrate_kbps = settings.audio_kbps;
    for warning in effective.check(true)? {
        eprintln!("warning: {warning}");
    }
    let mut outputs = Vec::new();
    for d in &p.destinations {
        let key = store.key(&p.name, d)?.ok_or_else(|| {
            anyhow::anyhow!(
                "profile '{}', destination '{}' has no stream key: tally profiles set-key {} {} --key-stdin",
                p.name,
                d.name,
                p.name,
                d.name
            )
        })?;
        let url = RtmpUrl::with_key(&d.server, key.expose())
            .with_context(|| format!("profile '{}', destination '{}'", p.name, d.name))?;
        let mut dest = Destination::new(url, 0, 0);
        dest.ca_file = d.ca_file.clone().or_else(|| ca_file.map(Path::to_path_buf));
        outputs.push(OutputSpec::Publish(dest));
    }
    Ok(outputs)
}

/// Where a profile's recording goes: `place` is a directory (created if
/// missing) that gets `tally-YYYY-MM-DDTHH-MM-SSZ.flv`, or an `.flv` file,
/// which is never overwritten (an existing one gets the time added).
fn recording_path(place: &Path, now: SystemTime) -> anyhow::Result<PathBuf> {
    let stamp = utc_stamp(now);
    let is_file = place.extension().is_some_and(|e| e.eq_ignore_ascii_case("flv"));
    let (dir, stem) = if is_file {
        if !place.exists() {
            return Ok(place.to_path_buf());
        }
        let stem = place.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        (place.parent().map(Path::to_path_buf).unwrap_or_default(), stem)
    } else {
        std::fs::create_dir_all(place).with_context(|| format!("creating the recording directory {}", place.display()))?;
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
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Runs a broadcast until it ends (`--duration`, a file source's end, all
/// outputs failed) or Ctrl-C; a second Ctrl-C quits at once.
fn run_broadcast(outputs: Vec<OutputSpec>, settings: BroadcastSettings, run: &RunArgs) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tally-net")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let (print_stats, print_json) = (run.stats, run.stats_json);
    runtime.block_on(async move {
        let broadcast = Broadcast::start(settings, outputs, &tokio::runtime::Handle::current())?;
        let stopper = broadcast.stopper();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Stopping: finishing the outputs cleanly (Ctrl-C again to quit at once)");
                stopper.stop();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        // The printer ends when the stats channel closes (the broadcast's
        // sampler is done), after printing the last snapshot; it is awaited
        // below so that last line is never lost to the runtime shutting down.
        let mut printer = None;
        if print_stats || print_json {
            let mut rx = broadcast.stats();
            printer = Some(tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let stats = rx.borrow_and_update().clone();
                    if print_json {
                        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
                        let mut doc = serde_json::to_value(&stats).unwrap_or_default();
                        if let Some(obj) = doc.as_object_mut() {
                            obj.insert("wall".into(), serde_json::json!(wall));
                        }
                        say!("{doc}");
                    } else {
                        say!("{}", stats.line());
                    }
                }
            }));
        }
        let summary = broadcast.wait().await;
        if let Some(p) = printer {
            let _ = p.await;
        }
        for e in &summary.pipeline_errors {
            eprintln!("error: {e}");
        }
        // Failures were reported when they happened; name them once more in
        // a multi-output run so the end of the log tells the whole story.
        let failed: Vec<&str> = summary.outputs.iter().filter(|o| o.error.is_some()).map(|o| o.name.as_str()).collect();
        for o in summary.outputs.iter().filter(|o| o.error.is_none()) {
            let what = if o.kind == OutputKind::Record { "recorded" } else { "finished" };
            tracing::info!(output = %o.name, bytes = o.bytes_out, "{what}");
        }
        if !failed.is_empty() && summary.outputs.len() > 1 {
            eprintln!("{} of {} outputs did not finish cleanly: {}", failed.len(), summary.outputs.len(), failed.join(", "));
        }
        Ok(summary.all_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01T00-00-00Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_000_000)), "2026-11-18T11-06-40Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_825_600)), "2000-02-29T12-00-00Z");
    }
}
