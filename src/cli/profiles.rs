//! `tally profiles …`: saved ways of going live. Keys go in through stdin
//! (or a no-echo prompt), never through arguments, which other users of
//! the machine can read; nothing here ever prints one except an export
//! asked for with `--include-keys`.

use super::media::EncodeArgs;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use tally::config::{self, DestinationDraft, DestinationProfile, KeyRef, Profile, ProfileStore, VideoOverride};
use tally::rtmp::StreamKey;

/// The `profiles` subcommands.
#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// List saved profiles, and where profiles and keys are kept.
    List,
    /// Show one profile: settings, destinations, whether each has a key (never the key).
    Show {
        /// Profile name.
        name: String,
    },
    /// Save a new profile with one destination (add more with add-destination).
    Add {
        /// Profile name.
        name: String,
        #[command(flatten)]
        dest: DestinationArgs,
        /// Record locally too: a directory (timestamped files) or an .flv file.
        #[arg(long, value_name = "DIR|FILE.flv")]
        record: Option<PathBuf>,
        /// Replace a profile of the same name (keys of kept destinations stay).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        encode: EncodeArgs,
    },
    /// Add a destination to a profile (several destinations go live together).
    AddDestination {
        /// Profile name.
        profile: String,
        #[command(flatten)]
        dest: DestinationArgs,
        #[command(flatten)]
        video: DestinationVideoArgs,
    },
    /// Give a destination its own video settings (an encode of its own), or
    /// back the profile's with --clear.
    SetVideo {
        /// Profile name.
        profile: String,
        /// Destination name.
        destination: String,
        #[command(flatten)]
        video: DestinationVideoArgs,
        /// Forget its own settings: it shares the profile's encode again.
        #[arg(long, conflicts_with_all = ["size", "fps", "video_bitrate"])]
        clear: bool,
        /// Save even when the service's hard limits are exceeded.
        #[arg(long)]
        force: bool,
    },
    /// Remove a destination (and its key) from a profile.
    RemoveDestination {
        /// Profile name.
        profile: String,
        /// Destination name.
        destination: String,
    },
    /// Set or replace a destination's stream key (read from stdin, or prompted without echo).
    SetKey {
        /// Profile name.
        profile: String,
        /// Destination name.
        destination: String,
        /// Accepted for symmetry with add: the key is always read from stdin.
        #[arg(long = "key-stdin")]
        key_stdin: bool,
    },
    /// Delete a profile and its keys.
    Remove {
        /// Profile name.
        name: String,
    },
    /// Print a profile as TOML (without keys unless --include-keys).
    Export {
        /// Profile name.
        name: String,
        /// Include the stream keys: anyone with the output can stream as you.
        #[arg(long = "include-keys")]
        include_keys: bool,
        /// Write to this file (created 0600) instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Import profiles from an export; keys in it go to the keyring.
    Import {
        /// The exported TOML file.
        file: PathBuf,
        /// Save even when a service's hard limits are exceeded.
        #[arg(long)]
        force: bool,
    },
    /// List the built-in service presets and their limits.
    Presets,
}

/// One destination, as given to `add` / `add-destination`.
#[derive(Args, Debug)]
pub struct DestinationArgs {
    /// Server URL without the key: rtmp[s]://host[:port]/app[/instance]
    /// [default: the preset's first server].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Service preset (tally profiles presets); detected from the URL's host when omitted.
    #[arg(long, value_name = "ID")]
    preset: Option<String>,
    /// The destination's name within the profile [default: the preset id, or "main"].
    #[arg(long = "dest", value_name = "NAME")]
    dest: Option<String>,
    /// Read the stream key from stdin (a no-echo prompt on a terminal).
    #[arg(long = "key-stdin")]
    key_stdin: bool,
    /// PEM file of a private CA to trust for this rtmps:// server.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Save even when the service's hard limits are exceeded.
    #[arg(long)]
    force: bool,
}

/// A destination's own video settings, each over the profile's.
#[derive(Args, Debug, Default)]
pub struct DestinationVideoArgs {
    /// Its own frame size, WxH, at most the profile's (scaled down from the captured picture).
    #[arg(long, value_name = "WxH")]
    size: Option<tally::media::FrameSize>,
    /// Its own frame rate, at most the profile's.
    #[arg(long, value_name = "FPS")]
    fps: Option<u32>,
    /// Its own video bitrate, kbit/s.
    #[arg(long = "video-bitrate", value_name = "KBPS")]
    video_bitrate: Option<u32>,
}

impl DestinationVideoArgs {
    fn overrides(&self) -> VideoOverride {
        VideoOverride { size: self.size, fps: self.fps, bitrate_kbps: self.video_bitrate }
    }
}

fn store() -> anyhow::Result<ProfileStore> {
    Ok(ProfileStore::open(&config::config_dir()?))
}

/// Runs a `profiles` subcommand.
pub fn run(cmd: ProfilesCommand) -> anyhow::Result<()> {
    match cmd {
        ProfilesCommand::List => list(),
        ProfilesCommand::Show { name } => show(&name),
        ProfilesCommand::Add { name, dest, record, replace, encode } => add(name, dest, record, replace, &encode),
        ProfilesCommand::AddDestination { profile, dest, video } => add_destination(&profile, dest, &video),
        ProfilesCommand::SetVideo { profile, destination, video, clear, force } => set_video(&profile, &destination, &video, clear, force),
        ProfilesCommand::RemoveDestination { profile, destination } => remove_destination(&profile, &destination),
        ProfilesCommand::SetKey { profile, destination, key_stdin: _ } => {
            let key = read_key(&format!("Stream key for {profile}/{destination}: "))?;
            warn_all(store()?.set_key(&profile, &destination, &key)?);
            say!("Key saved for {profile}/{destination}.");
            Ok(())
        }
        ProfilesCommand::Remove { name } => {
            store()?.remove(&name)?;
            say!("Removed profile '{name}' and its keys.");
            Ok(())
        }
        ProfilesCommand::Export { name, include_keys, output } => export(&name, include_keys, output),
        ProfilesCommand::Import { file, force } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let (names, warnings) = store()?.import(&text, force)?;
            warn_all(warnings);
            say!("Imported: {}", names.join(", "));
            Ok(())
        }
        ProfilesCommand::Presets => {
            presets();
            Ok(())
        }
    }
}

fn warn_all(warnings: Vec<String>) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Reads one key: a no-echo prompt on a terminal (a key typed on screen
/// ends up on stream), else the first line of stdin.
fn read_key(prompt: &str) -> anyhow::Result<StreamKey> {
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the key")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the key from stdin")?;
        line
    };
    if line.trim().is_empty() {
        bail!("no stream key given on stdin");
    }
    Ok(config::parse_key(&line)?)
}

/// A destination from the arguments, and its key if one was read.
fn destination(args: &DestinationArgs) -> anyhow::Result<(DestinationProfile, Option<StreamKey>)> {
    let draft = DestinationDraft { url: args.url.clone(), preset: args.preset.clone(), name: args.dest.clone(), ca_file: args.ca_file.clone(), video: Default::default() };
    let dest = draft.build()?;
    let key = if args.key_stdin { Some(read_key(&format!("Stream key for {}: ", dest.name))?) } else { None };
    Ok((dest, key))
}

fn add(name: String, args: DestinationArgs, record: Option<PathBuf>, replace: bool, encode: &EncodeArgs) -> anyhow::Result<()> {
    let store = store()?;
    let (dest, key) = destination(&args)?;
    let mut profile = Profile::named(&name);
    profile.record = record.map(|p| std::path::absolute(&p).unwrap_or(p));
    profile.destinations.push(dest);
    encode.overrides().apply_to(&mut profile);
    let dest_name = profile.destinations[0].name.clone();
    let keys: Vec<(String, StreamKey)> = key.into_iter().map(|k| (dest_name.clone(), k)).collect();
    let warnings = if replace {
        store.save_keeping_keys(profile, &keys, args.force)?
    } else {
        store.save(profile, &keys, false, args.force)?
    };
    warn_all(warnings);
    say!("Saved profile '{name}' in {}.", store.path().display());
    let saved = store.get(&name)?;
    if saved.destinations.iter().all(|d| d.key != KeyRef::SecretStore) {
        say!("No stream key yet: tally profiles set-key {name} {dest_name} --key-stdin");
    }
    Ok(())
}

fn add_destination(profile: &str, args: DestinationArgs, video: &DestinationVideoArgs) -> anyhow::Result<()> {
    let store = store()?;
    let (mut dest, key) = destination(&args)?;
    dest.video = video.overrides();
    let dest_name = dest.name.clone();
    let has_key = key.is_some();
    warn_all(store.add_destination(profile, dest, key, args.force)?);
    say!("Added destination '{dest_name}' to profile '{profile}'.");
    if !has_key {
        say!("No stream key yet: tally profiles set-key {profile} {dest_name} --key-stdin");
    }
    Ok(())
}

fn set_video(profile: &str, destination: &str, video: &DestinationVideoArgs, clear: bool, force: bool) -> anyhow::Result<()> {
    let store = store()?;
    let mut p = store.get(profile)?;
    let d = p
        .destinations
        .iter_mut()
        .find(|d| d.name == destination)
        .ok_or_else(|| anyhow::anyhow!("profile '{profile}' has no destination '{destination}'"))?;
    if clear {
        d.video = VideoOverride::default();
    } else {
        let o = video.overrides();
        if o.is_empty() {
            anyhow::bail!("give --size, --fps and/or --video-bitrate, or --clear");
        }
        d.video = VideoOverride { size: o.size.or(d.video.size), fps: o.fps.or(d.video.fps), bitrate_kbps: o.bitrate_kbps.or(d.video.bitrate_kbps) };
    }
    let what = if d.video.is_empty() { "the profile's video settings".to_string() } else { format!("its own video: {}", d.video.describe()) };
    warn_all(store.save_keeping_keys(p, &[], force)?);
    say!("Destination '{destination}' of profile '{profile}' now has {what}.");
    Ok(())
}

fn remove_destination(profile: &str, destination: &str) -> anyhow::Result<()> {
    store()?.remove_destination(profile, destination)?;
    say!("Removed destination '{destination}' from profile '{profile}'.");
    Ok(())
}

fn list() -> anyhow::Result<()> {
    let store = store()?;
    let profiles = store.list()?;
    say!("Profiles: {}", store.path().display());
    say!("Keys:     {}", store.secrets().backend());
    if profiles.is_empty() {
        say!("\nNo profiles yet: tally profiles add NAME --preset twitch --key-stdin");
    }
    for p in &profiles {
        let dests: Vec<String> = p.destinations.iter().map(|d| d.name.clone()).collect();
        say!("  {:<20} {}x{}  -> {}", p.name, p.video.size, p.video.fps, dests.join(", "));
    }
    Ok(())
}

fn show(name: &str) -> anyhow::Result<()> {
    let store = store()?;
    let p = store.get(name)?;
    say!("Profile {}", p.name);
    say!("  video: {} {} @ {} fps, {} kbit/s, keyframe every {} s", p.video.source, p.video.size, p.video.fps, p.video.bitrate_kbps, p.video.keyint_secs);
    say!("  audio: {}, {} kbit/s AAC", p.audio.source, p.audio.bitrate_kbps);
    match &p.record {
        Some(r) => say!("  record: {}", r.display()),
        None => say!("  record: no"),
    }
    for d in &p.destinations {
        // Whether a key exists, never the key.
        let key = match store.key_and_place(&p.name, d) {
            Ok(Some((_, tally::config::Backend::Keyring))) => "set, in the OS keyring".to_string(),
            Ok(Some((_, tally::config::Backend::File(path)))) => format!("set, in the key file {}", path.display()),
            Ok(None) => "NOT SET".to_string(),
            Err(e) => format!("unreadable: {e}"),
        };
        say!("  destination {}: {}", d.name, d.server);
        if let Some(preset) = &d.preset {
            say!("    preset: {preset}");
        }
        if let Some(ca) = &d.ca_file {
            say!("    trusts CA: {}", ca.display());
        }
        if !d.video.is_empty() {
            say!("    own video: {} (an encode of its own)", d.video.describe());
        }
        say!("    key: {key}");
    }
    for w in p.check(true)? {
        say!("  note: {w}");
    }
    Ok(())
}

fn export(name: &str, include_keys: bool, output: Option<PathBuf>) -> anyhow::Result<()> {
    let text = store()?.export(name, include_keys)?;
    match output {
        None => {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
        Some(path) => {
            // Private even over an existing file: it may hold keys.
            config::write_file_atomic(&path, &text, true)?;
            eprintln!("Exported '{name}' to {}{}", path.display(), if include_keys { " (WITH stream keys)" } else { "" });
        }
    }
    Ok(())
}

fn presets() {
    for s in config::services() {
        say!("{:<9} {}", s.id, s.name);
        for srv in &s.servers {
            say!("            {:<22} {}", srv.name, srv.url);
        }
        let mut limits = Vec::new();
        if let Some(v) = s.max_video_kbps {
            limits.push(format!("video <= {v} kbit/s"));
        }
        if let Some(a) = s.max_audio_kbps {
            limits.push(format!("audio <= {a} kbit/s"));
        }
        if let Some(f) = s.max_fps {
            limits.push(format!("<= {f} fps"));
        }
        if let Some(k) = s.max_keyint_secs {
            limits.push(format!("keyframe <= {k} s"));
        }
        if s.cbr {
            limits.push("CBR".into());
        }
        if s.rtmps_only {
            limits.push("RTMPS only".into());
        }
        if !limits.is_empty() {
            say!("            limits: {}", limits.join(", "));
        }
        if !s.notes.is_empty() {
            say!("            {}", s.notes);
        }
    }
}
