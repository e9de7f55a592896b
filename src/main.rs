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
    /// Run the built-in RTMP server (and HTTP-FLV) until Ctrl-C.
    Serve(ServeArgs),
    /// List cameras (with their modes) and microphones.
    Devices {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// RTMP address to listen on (loopback by default; other addresses only when asked).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1935")]
    listen: std::net::SocketAddr,
    /// HTTP-FLV and /api/streams address, or "none".
    #[arg(long, value_name = "ADDR|none", default_value = "127.0.0.1:8080", value_parser = parse_http)]
    http: HttpListen,
    /// Require this key to publish (as ?key=KEY on the stream name, or a -KEY suffix).
    /// Prefer the TALLY_PUBLISH_KEY environment variable: arguments are visible to other users.
    #[arg(long = "publish-key", value_name = "KEY", env = "TALLY_PUBLISH_KEY", hide_env_values = true)]
    publish_key: Option<String>,
    /// Most RTMP + HTTP connections at once.
    #[arg(long = "max-connections", value_name = "N", default_value_t = tally::net::server::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_connections: u64,
    /// Refuse a second publisher for a live stream instead of letting it take over.
    #[arg(long = "no-takeover")]
    no_takeover: bool,
    /// Network threads. One serves well over a gigabit of fan-out with the
    /// lowest CPU per byte (no cross-thread wake-ups); more spread a very
    /// large audience over cores.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

/// `--http`: an address, or off.
#[derive(Clone, Debug)]
struct HttpListen(Option<std::net::SocketAddr>);

fn parse_http(s: &str) -> Result<HttpListen, String> {
    if s == "none" || s == "off" {
        return Ok(HttpListen(None));
    }
    s.parse().map(|a| HttpListen(Some(a))).map_err(|_| format!("'{s}' is not an address like 127.0.0.1:8080 (or none)"))
}

#[derive(Args, Debug)]
struct MediaArgs {
    /// Video source: auto (first camera, else the test pattern), test, camera[:N], y4m:PATH.
    #[arg(long, value_name = "SOURCE", default_value = "auto", value_parser = parse_video)]
    video: VideoSourceSpec,
    /// Audio source: auto (default microphone, else silence), sine, silence, mic[:NAME], wav:PATH.
    #[arg(long, value_name = "SOURCE", default_value = "auto", value_parser = parse_audio)]
    audio: AudioSourceSpec,
    /// Frame size, WxH (even numbers) [default: 1280x720, or a Y4M file's own size].
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Frames per second [default: 30, or a Y4M file's own rate].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: Option<u32>,
    /// Restart y4m:/wav: files at their end instead of stopping.
    #[arg(long = "loop")]
    looping: bool,
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
    s.parse()
}

fn parse_audio(s: &str) -> Result<AudioSourceSpec, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| "expected WxH, e.g. 1280x720".to_string())?;
    let w: u32 = w.trim().parse().map_err(|_| format!("width '{w}' is not a number"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("height '{h}' is not a number"))?;
    if w < 16 || h < 16 || w > 3840 || h > 2160 {
        return Err(format!("{w}x{h} is outside 16x16..3840x2160"));
    }
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
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
    /// The broadcast settings; a Y4M source lends its own size and rate to
    /// whatever `--size` / `--fps` leave open.
    fn settings(&self) -> anyhow::Result<BroadcastSettings> {
        let (mut size, mut fps) = (self.size, self.fps);
        if let VideoSourceSpec::Y4m(path) = &self.video
            && (size.is_none() || fps.is_none())
        {
            let header = tally::capture::Y4mSource::probe(path).context("reading the Y4M header")?;
            size = size.or(Some((header.width & !1, header.height & !1)));
            fps = fps.or(Some(header.rate.as_f64().round().clamp(1.0, 120.0) as u32));
        }
        let (width, height) = size.unwrap_or((1280, 720));
        Ok(BroadcastSettings {
            video: self.video.clone(),
            audio: self.audio.clone(),
            width,
            height,
            fps: fps.unwrap_or(30),
            video_kbps: self.video_bitrate,
            audio_kbps: self.audio_bitrate,
            keyint_secs: self.keyint,
            duration: self.duration,
            fast: self.fast,
            start_offset_ms: self.start_offset_ms,
            encoder_threads: 1,
            looping: self.looping,
        })
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
            if line.ends_with(':')
                && let Some(next) = lines.next() {
                    line = format!("{line} {next}");
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
        Some(Command::Devices { json }) => list_devices(json).map(|()| true),
        Some(Command::Serve(args)) => serve(args).map(|()| true),
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
    let settings = media.settings()?;
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

/// `tally devices`: what Tally can capture from, and what it cannot find.
fn list_devices(json: bool) -> anyhow::Result<()> {
    let cameras = tally::capture::list_cameras().context("listing cameras")?;
    let mics = tally::capture::list_microphones().context("listing microphones")?;
    if json {
        let doc = serde_json::json!({ "cameras": cameras, "microphones": mics });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("Cameras:");
    if cameras.is_empty() {
        println!("  none found (--video auto sends the test pattern)");
    }
    for c in &cameras {
        println!("  camera:{}  {}{}", c.index, c.name, if c.description.is_empty() { String::new() } else { format!("  ({})", c.description) });
        if c.modes.is_empty() {
            println!("      (its modes could not be read)");
        }
        for m in &c.modes {
            println!("      {m}");
        }
    }
    println!("Microphones:");
    if mics.is_empty() {
        println!("  none found (--audio auto sends silence)");
    }
    for m in &mics {
        let rates: Vec<String> = m
            .rates
            .iter()
            .map(|(lo, hi)| if lo == hi { format!("{lo}") } else { format!("{lo}-{hi}") })
            .collect();
        let channels: Vec<String> = m.channels.iter().map(u16::to_string).collect();
        println!(
            "  mic:{}{}  {}\n      rates {} Hz, channels {}, formats {}",
            m.id,
            if m.is_default { " (default)" } else { "" },
            m.name,
            rates.join(", "),
            channels.join(", "),
            m.formats.join(", ")
        );
    }
    Ok(())
}

/// `tally serve`: the rehearsal server, until Ctrl-C.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.threads))
            .thread_name("tally-server")
            .enable_all()
            .build()
    }
    .context("starting the network runtime")?;
    let config = tally::net::server::ServerConfig {
        rtmp_listen: args.listen,
        http_listen: args.http.0,
        publish_key: args.publish_key.filter(|k| !k.is_empty()).map(tally::rtmp::StreamKey::new),
        max_connections: args.max_connections as usize,
        takeover: !args.no_takeover,
    };
    let keyed = config.publish_key.is_some();
    runtime.block_on(async move {
        let server = tally::net::server::Server::start(config).await?;
        let rtmp = server.rtmp_addr();
        let key_hint = if keyed { "?key=KEY" } else { "" };
        println!("Tally server ready.");
        println!("  publish: rtmp://{rtmp}/live/NAME{key_hint}   (e.g. tally stream rtmp://{rtmp}/live/test{key_hint})");
        println!("  watch:   ffplay rtmp://{rtmp}/live/NAME");
        if let Some(http) = server.http_addr() {
            println!("  watch:   ffplay http://{http}/live/NAME.flv   (browsers: mpegts.js / flv.js)");
            println!("  streams: http://{http}/api/streams");
        }
        println!("Ctrl-C stops.");
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        tracing::info!("stopping the server");
        server.stop().await;
        Ok(())
    })
}
