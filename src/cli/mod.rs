//! The command line (binary only; the library never sees clap). Each
//! subcommand lives in its own file and ends in the library's types:
//! `stream`/`record` in a [`tally::pipeline::Broadcast`], `serve` in a
//! [`tally::net::server::Server`], `profiles` in a
//! [`tally::config::ProfileStore`].

/// `println!` that shrugs off a closed stdout (`tally profiles list | head`)
/// instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod advice;
pub mod check;
pub mod control;
pub mod devices;
pub mod docs;
pub mod media;
pub mod profiles;
pub mod scenes;
pub mod serve;
pub mod stream;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A command-line value that holds a secret (a URL with its stream key, a
/// publish key): parsing never fails (so clap never echoes it in an error)
/// and Debug prints `<redacted>`.
#[derive(Clone)]
pub struct SecretArg(pub String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(s.to_owned()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(tally::rtmp::REDACTED)
    }
}

/// The destination URLs given on the command line, parsed here rather than
/// by clap (clap would echo the raw value, stream key included, into its
/// error); with no profile either, a usage error.
pub fn destination_urls(raw: &[SecretArg], profile: Option<&str>) -> Result<Vec<tally::rtmp::RtmpUrl>, stream::UsageError> {
    let mut urls = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        urls.push(
            tally::rtmp::RtmpUrl::parse(&r.0)
                .map_err(|e| stream::UsageError(format!("error: invalid value for '<URL>' #{}: {e}", i + 1)))?,
        );
    }
    if urls.is_empty() && profile.is_none() {
        return Err(stream::UsageError("error: give at least one destination URL or --profile NAME".into()));
    }
    Ok(urls)
}

/// `tally`'s arguments.
#[derive(Parser, Debug)]
#[command(
    name = "tally",
    version,
    about = "Go live: camera + microphone -> H.264/AAC -> RTMP",
    long_about = "Tally captures a camera and a microphone, encodes H.264 and AAC, and publishes the stream \
                  over RTMP or RTMPS to YouTube, Twitch, Facebook or any RTMP server, to several at once. \
                  Without a subcommand it opens the window; every subcommand works without one. \
                  `tally serve` runs a local RTMP server to rehearse on."
)]
pub struct Cli {
    /// What to do; without one, the app opens.
    #[command(subcommand)]
    pub command: Option<TallyCommand>,
    /// How the window draws: `glow` (OpenGL, the default: the least memory)
    /// or `wgpu` (Vulkan/GL through wgpu, in the Windows and macOS builds and
    /// in Linux builds made with `--features wgpu`). Try the other if the
    /// window stays black or will not open on your graphics driver.
    #[arg(long, value_enum, env = "TALLY_RENDERER", default_value_t = tally::ui::Renderer::Glow, global = false)]
    pub renderer: tally::ui::Renderer,
}

/// The subcommands of `tally` (not `engine::Command`, what they send the engine).
#[derive(Subcommand, Debug)]
pub enum TallyCommand {
    /// Go live headless to one or more RTMP/RTMPS URLs and/or a saved profile.
    Stream(stream::StreamArgs),
    /// Encode to a local FLV file.
    Record {
        /// The FLV file to write (overwritten).
        #[arg(value_name = "FILE.flv")]
        file: PathBuf,
        #[command(flatten)]
        media: media::MediaArgs,
    },
    /// Check destinations before going live: resolve, TCP, TLS, RTMP
    /// handshake and connect, each timed; optionally a publish test.
    Check(check::CheckArgs),
    /// Saved profiles: destinations, keys and settings.
    #[command(subcommand)]
    Profiles(profiles::ProfilesCommand),
    /// Scenes: layers composed into the picture (screen, camera, images,
    /// text), made from layouts, put on air with --scene.
    #[command(subcommand)]
    Scenes(scenes::ScenesCommand),
    /// Run the built-in RTMP server (and HTTP-FLV) until Ctrl-C.
    Serve(serve::ServeArgs),
    /// List cameras (with their modes) and microphones.
    Devices {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the completion script for a shell on stdout (for example
    /// `tally completions bash > ~/.local/share/bash-completion/completions/tally`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (tally.1, tally-stream.1, ...) into DIR: what
    /// `make package` and `make dist` ship.
    #[command(hide = true)]
    Manpages {
        /// Where to write them (created if missing).
        dir: PathBuf,
    },
}

/// Runs a parsed command; `Ok(false)` for a run that ended with errors
/// already shown.
pub fn run(command: Option<TallyCommand>, renderer: tally::ui::Renderer) -> anyhow::Result<bool> {
    match command {
        None => {
            if let Some(why) = tally::ui::unavailable(renderer) {
                return Err(stream::UsageError(why).into());
            }
            match tally::ui::no_display() {
                Some(why) => {
                    eprintln!("{why}");
                    Ok(false)
                }
                None => tally::ui::run(renderer).map(|()| true),
            }
        }
        Some(TallyCommand::Stream(args)) => stream::stream(args),
        Some(TallyCommand::Record { file, media }) => stream::record(file, &media),
        Some(TallyCommand::Profiles(cmd)) => profiles::run(cmd).map(|()| true),
        Some(TallyCommand::Scenes(cmd)) => scenes::run(cmd).map(|()| true),
        Some(TallyCommand::Devices { json }) => devices::list(json).map(|()| true),
        Some(TallyCommand::Serve(args)) => serve::serve(args).map(|()| true),
        Some(TallyCommand::Check(args)) => check::run(args),
        Some(TallyCommand::Completions { shell }) => {
            docs::completions(shell);
            Ok(true)
        }
        Some(TallyCommand::Manpages { dir }) => {
            for page in docs::manpages(&dir)? {
                say!("{}", page.display());
            }
            Ok(true)
        }
    }
}
