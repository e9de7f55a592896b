//! `tally`: open the app, or go live / record from the command line.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tally::pipeline::{AudioSourceSpec, Broadcast, BroadcastSettings, OutputSpec, VideoSourceSpec};
use tally::rtmp::RtmpUrl;

#[derive(Parser, Debug)]
#[command(name = "tally", version, about = "Go live: camera + microphone -> H.264/AAC -> RTMP", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Go live headless to one or more RTMP URLs (rtmp://host[:port]/app[/inst]/key).
    Stream {
        /// Destination URLs; the last path segment is the stream key.
        #[arg(required = true, value_name = "URL")]
        urls: Vec<String>,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Encode to a local FLV file.
    Record {
        /// The FLV file to write (overwritten).
        #[arg(value_name = "FILE.flv")]
        file: PathBuf,
        #[command(flatten)]
        media: MediaArgs,
    },
}

#[derive(Args, Debug)]
struct MediaArgs {
    /// Video source: test (camera[:N] and y4m:PATH come with device support).
    #[arg(long, value_name = "SOURCE", default_value = "test", value_parser = parse_video)]
    video: VideoSourceSpec,
    /// Audio source: sine or silence (mic[:NAME] and wav:PATH come with device support).
    #[arg(long, value_name = "SOURCE", default_value = "sine", value_parser = parse_audio)]
    audio: AudioSourceSpec,
    /// Frame size, WxH (even numbers).
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    size: (u32, u32),
    /// Frames per second.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// Video bitrate, kbit/s.
    #[arg(long = "video-bitrate", allow_negative_numbers = true, value_name = "KBPS", default_value_t = 2500, value_parser = clap::value_parser!(u32).range(50..=100_000))]
    video_bitrate: u32,
    /// Audio bitrate, kbit/s.
    #[arg(long = "audio-bitrate", allow_negative_numbers = true, value_name = "KBPS", default_value_t = 128, value_parser = clap::value_parser!(u32).range(8..=512))]
    audio_bitrate: u32,
    /// Seconds between keyframes.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 2.0, value_parser = parse_keyint)]
    keyint: f64,
    /// Stop after this many seconds of media (default: until Ctrl-C, which stops cleanly).
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Do not pace sources to the wall clock: encode as fast as possible.
    #[arg(long)]
    fast: bool,
    /// Print one line per second: fps, kbps out, queue ms, dropped and skipped frames.
    #[arg(long)]
    stats: bool,
    /// First timestamp in ms (tests use it to cross the 24-bit timestamp boundary).
    #[arg(long = "start-offset-ms", value_name = "MS", default_value_t = 0, hide = true)]
    start_offset_ms: u32,
}

fn parse_video(s: &str) -> Result<VideoSourceSpec, String> {
    match s {
        "test" => Ok(VideoSourceSpec::TestPattern),
        other => Err(format!("unknown video source '{other}' (available: test)")),
    }
}

fn parse_audio(s: &str) -> Result<AudioSourceSpec, String> {
    match s {
        "sine" => Ok(AudioSourceSpec::Sine),
        "silence" => Ok(AudioSourceSpec::Silence),
        other => Err(format!("unknown audio source '{other}' (available: sine, silence)")),
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| "expected WxH, e.g. 1280x720".to_string())?;
    let w: u32 = w.trim().parse().map_err(|_| format!("width '{w}' is not a number"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("height '{h}' is not a number"))?;
    if w < 16 || h < 16 || w > 3840 || h > 2160 {
        return Err(format!("{w}x{h} is outside 16x16..3840x2160"));
    }
    if w % 2 != 0 || h % 2 != 0 {
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

impl MediaArgs {
    fn settings(&self) -> BroadcastSettings {
        BroadcastSettings {
            video: self.video.clone(),
            audio: self.audio.clone(),
            width: self.size.0,
            height: self.size.1,
            fps: self.fps,
            video_kbps: self.video_bitrate,
            audio_kbps: self.audio_bitrate,
            keyint_secs: self.keyint,
            duration: self.duration,
            fast: self.fast,
            start_offset_ms: self.start_offset_ms,
            encoder_threads: 1,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line naming the argument; the usage hint adds nothing for a script.
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut line = lines.next().unwrap_or("error: invalid arguments").to_string();
            // "...were not provided:" names the argument on the next line.
            if line.ends_with(':') {
                if let Some(next) = lines.next() {
                    line = format!("{line} {next}");
                }
            }
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let result = match cli.command {
        None => tally::ui::run().map(|()| true),
        Some(Command::Stream { urls, media }) => match parse_urls(&urls) {
            Ok(outputs) => run_broadcast(outputs, &media),
            Err(line) => {
                eprintln!("{line}");
                return ExitCode::from(2);
            }
        },
        Some(Command::Record { file, media }) => run_broadcast(vec![OutputSpec::Record(file)], &media),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

/// Parses destination URLs here rather than in clap: clap would echo the raw
/// value, stream key included, into its error message.
fn parse_urls(urls: &[String]) -> Result<Vec<OutputSpec>, String> {
    urls.iter()
        .enumerate()
        .map(|(i, raw)| {
            RtmpUrl::parse(raw)
                .map(OutputSpec::Publish)
                .map_err(|e| format!("error: invalid value for '<URL>' #{}: {e}", i + 1))
        })
        .collect()
}

fn run_broadcast(outputs: Vec<OutputSpec>, media: &MediaArgs) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tally-net")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let settings = media.settings();
    let print_stats = media.stats;
    runtime.block_on(async move {
        let broadcast = Broadcast::start(settings, outputs, &tokio::runtime::Handle::current())?;
        let stopper = broadcast.stopper();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: stopping, finishing the outputs cleanly");
                stopper.stop();
            }
        });
        if print_stats {
            let mut rx = broadcast.stats();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let line = rx.borrow_and_update().line();
                    println!("{line}");
                }
            });
        }
        let summary = broadcast.wait().await;
        for e in &summary.pipeline_errors {
            eprintln!("error: {e}");
        }
        for o in &summary.outputs {
            match &o.error {
                None => tracing::info!(output = %o.name, bytes = o.bytes_out, "finished"),
                Some(why) => eprintln!("error: {}: {why}", o.name),
            }
        }
        Ok(summary.all_ok())
    })
}
