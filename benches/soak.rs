//! Soak: live 720p30 to nginx-rtmp and to `tally serve` at once for half an
//! hour, players on both, a fault every few minutes, memory and queues
//! watched every second.
//!
//! One `tally stream` (test pattern and tone, 1280x720@30, `--record`,
//! `--stats-json`) publishes to a private nginx-rtmp and to a `tally serve`,
//! each through its own [`FaultProxy`], and records locally. Players on
//! each server (Tally's own `RtmpPlayer`, playing again whenever their
//! connection ends or falls silent) count the video frames they receive.
//! Every `FAULT_EVERY` seconds one path gets a fault, the faults rotating —
//! a cut, a 10 s stall, 15 s of refused connections, 30 s at 1 Mbit/s — and
//! the paths taking turns, so that every fault meets both servers. The next
//! fault waits until the last one's destination is back.
//!
//! Each second (a fixed schedule, not a synchronisation): the resident
//! memory of tally stream, tally serve and nginx; the publisher's queue per
//! output (its stats line); the deepest player queue on tally serve
//! (`/api/streams`); frames received per player. Written to `SOAK_CSV`
//! (docs/soak.csv under `cargo bench`), which docs/soak.gp draws into
//! docs/soak.png (`make soak`).
//!
//! At the end it checks, and fails if one does not hold: no process
//! panicked or died; after every fault the destination was live again and
//! every player of that server received video; every connection loss in
//! Tally's log came back to a live session, their number matches the
//! reconnects of its last stats line and the faults that force one;
//! memory in the last 5 minutes (median) has not grown past a bound over
//! the first 5; the queues stayed within their bounds; players' video
//! timestamps never went back; the recording (ffprobe) has video and audio
//! timestamps strictly increasing with no step over 100 ms — it is local,
//! so no network fault may leave a hole in it. It prints a Markdown
//! summary for docs/PERFORMANCE.md either way.
//!
//! `cargo bench --bench soak`: `SOAK_SECS` (default 1800), `FAULT_EVERY`
//! (180), `SOAK_PLAYERS` per server (10). Under `cargo test` (no `--bench`
//! argument) a smoke run: 20 s, one cut at 8 s, 2 players per server, the
//! same checks; the same variables make it longer (no CSV unless
//! `SOAK_CSV` is set). `SOAK_VIDEO=noise` sends the pattern under noise,
//! which needs the whole 2.5 Mbit/s, so the 1 Mbit/s limit bites (the plain
//! pattern needs about 0.5); at 720p it keeps up only in a release build.

#[path = "../tests/common/mod.rs"]
mod common;

use common::live::{rss_kib, unix_secs};
use common::proxy::{FaultProxy, PathState};
use common::{Nginx, Proc, TallyServer, TestDir, ffprobe_errors, probe, spawn_tally, strip_ansi, wait_until};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tally::net::rtmp_player::RtmpPlayer;
use tally::rtmp::{ClientEvent, MediaKind, RtmpUrl};

/// The live source but its video (`SOAK_VIDEO`, default the test pattern):
/// Tally's default format spelled out, so the soak stays 720p30 whatever
/// the defaults become.
const SOURCE: [&str; 6] = ["--audio", "sine", "--size", "1280x720", "--fps", "30"];
/// Frames per second of [`SOURCE`].
const FPS: f64 = 30.0;
/// The stream name on both servers.
const STREAM: &str = "soak";

/// From a path healing to its destination being live again with every
/// player of that server receiving: generous, a soak is not a latency
/// benchmark (`benches/recovery.rs` times recovery).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames each player of the faulted server must receive after the path
/// heals for the destination to count as back: one second of video.
const FRAMES_TO_RECOVER: u64 = 30;
/// A player whose connection has carried nothing for this long drops it and
/// plays again. Longer than the longest outage a fault makes (15 s refused
/// plus the publisher's backoff), so players ride out the faults on their
/// connection when the server keeps it, as both servers do.
const PLAYER_IDLE: Duration = Duration::from_secs(30);
/// Between a player's connection attempts: a pace, not a wait for anything.
const PLAYER_RETRY: Duration = Duration::from_millis(500);
/// How long the players may take to receive their first second of video.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long Tally may take to stop cleanly after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The thin uplink of the rate-limit fault.
const LIMIT_BPS: u64 = 1_000_000;
/// Largest step between consecutive timestamps of one stream in the recording.
const MAX_RECORDED_STEP_MS: f64 = 100.0;
/// Memory windows compared: the first and the last this many seconds
/// (a quarter of the run when it is shorter than 20 minutes).
const RSS_WINDOW_SECS: f64 = 300.0;
/// A process's memory has grown when the last window's median exceeds the
/// first's by more than this many MiB *and* this share: allocator noise on
/// a small process is not a leak, a steady climb is.
const RSS_GROWTH_MIB: f64 = 16.0;
/// See [`RSS_GROWTH_MIB`].
const RSS_GROWTH_SHARE: f64 = 0.25;
/// The publisher's queue per destination: 1.5 s of video, audio kept 3 s
/// (`QueueLimits::PUBLISHER`), plus a second of slack for the sampling.
const PUBLISHER_QUEUE_MAX_MS: u64 = 4_000;
/// A player's queue on tally serve: 3 s (`PlayerLimits::PLAYER`) plus the
/// cached GOP of a fast start (2 s keyframe interval), which does not count
/// against the bound, plus a second of slack.
const PLAYER_QUEUE_MAX_MS: u64 = 6_000;
/// Each player receives at least this share of the frames made while it
/// watched: faults cost seconds, not half the run.
const MIN_FRAME_SHARE: f64 = 0.5;

/// How the run goes: from the environment, with the bench's or the smoke
/// run's defaults.
struct Settings {
    /// Seconds of soak after every player receives video.
    secs: f64,
    /// Seconds between faults.
    fault_every: f64,
    /// Players on each server.
    players: usize,
    /// Where the samples go, if anywhere.
    csv: Option<PathBuf>,
    /// `--video`: `test` (about 0.5 Mbit/s at 720p, so the 1 Mbit/s limit
    /// costs nothing) or `noise` (the whole 2.5 Mbit/s: the limit bites).
    video: String,
}

impl Settings {
    fn from_env(full: bool) -> Settings {
        let num = |name: &str, default: f64| -> f64 {
            match std::env::var(name) {
                Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")),
                Err(_) => default,
            }
        };
        let (secs, fault_every, players) = if full { (1800.0, 180.0, 10.0) } else { (20.0, 8.0, 2.0) };
        let csv = std::env::var_os("SOAK_CSV")
            .map(PathBuf::from)
            .or_else(|| full.then(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/soak.csv"))));
        let settings = Settings { secs: num("SOAK_SECS", secs), fault_every: num("FAULT_EVERY", fault_every), players: num("SOAK_PLAYERS", players) as usize, csv, video: std::env::var("SOAK_VIDEO").unwrap_or_else(|_| "test".into()) };
        assert!(settings.secs > 0.0 && settings.fault_every > 0.0 && settings.players > 0, "SOAK_SECS, FAULT_EVERY and SOAK_PLAYERS must be positive");
        settings
    }
}

/// What a fault does to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    /// Every open connection reset.
    Cut,
    /// Nothing moves, nothing fails.
    Stall,
    /// Open connections reset, new ones refused.
    Refuse,
    /// Client→server paced to [`LIMIT_BPS`].
    Limit,
}

/// The order the faults come in.
const ROTATION: [FaultKind; 4] = [FaultKind::Cut, FaultKind::Stall, FaultKind::Refuse, FaultKind::Limit];

impl FaultKind {
    /// How long the path stays faulted (a cut heals at once).
    fn hold(self) -> Duration {
        Duration::from_secs(match self {
            FaultKind::Cut => 0,
            FaultKind::Stall => 10,
            FaultKind::Refuse => 15,
            FaultKind::Limit => 30,
        })
    }

    fn label(self) -> &'static str {
        match self {
            FaultKind::Cut => "cut",
            FaultKind::Stall => "10 s stall",
            FaultKind::Refuse => "15 s refused",
            FaultKind::Limit => "30 s at 1 Mbit/s",
        }
    }

    /// Whether it always ends the publisher's connection. A 10 s stall
    /// usually outlasts the publisher's 8 s write-progress deadline, but
    /// need not; a rate limit above the stream's bitrate ends nothing.
    fn forces_reconnect(self) -> bool {
        matches!(self, FaultKind::Cut | FaultKind::Refuse)
    }

    fn apply(self, proxy: &FaultProxy) {
        match self {
            FaultKind::Cut => proxy.cut(),
            FaultKind::Stall => proxy.set_state(PathState::Stalled),
            FaultKind::Refuse => proxy.set_state(PathState::Refusing),
            FaultKind::Limit => proxy.limit_rate(LIMIT_BPS),
        }
    }

    fn heal(self, proxy: &FaultProxy) {
        match self {
            FaultKind::Cut => {}
            FaultKind::Stall | FaultKind::Refuse => proxy.set_state(PathState::Open),
            FaultKind::Limit => proxy.limit_rate(0),
        }
    }
}

/// One fault of the run.
struct Fault {
    kind: FaultKind,
    /// Index into the ingests.
    ingest: usize,
    /// Seconds into the soak.
    at: f64,
    /// When the path healed: seconds into the soak, and as the stats lines stamp time.
    healed: Option<(f64, f64)>,
    /// Each player's frame count (of the faulted server) when the path healed.
    frames_at_heal: Vec<u64>,
    /// Seconds from the path healing to the destination being back.
    recovered_after: Option<f64>,
    /// Not back within [`RECOVERY_TIMEOUT`].
    gave_up: bool,
}

impl Fault {
    /// Still being held, or healed and not yet back.
    fn pending(&self) -> bool {
        self.healed.is_none() || (self.recovered_after.is_none() && !self.gave_up)
    }
}

/// What one player counts.
#[derive(Default)]
struct PlayerCounters {
    /// Video frames (not sequence headers) received.
    frames: AtomicU64,
    /// Connections that got as far as playing.
    sessions: AtomicU64,
    /// Connection attempts that failed.
    failed_connects: AtomicU64,
    /// Times a video timestamp did not increase on one connection.
    backwards: AtomicU64,
}

/// Plays `url` until aborted, counting; plays again whenever the
/// connection ends, fails or stays silent for [`PLAYER_IDLE`].
async fn play(url: RtmpUrl, counters: Arc<PlayerCounters>) {
    loop {
        match RtmpPlayer::connect(&url).await {
            Ok(mut player) => {
                counters.sessions.fetch_add(1, Ordering::Relaxed);
                let mut last: Option<u32> = None;
                while let Ok(Ok(Some(event))) = tokio::time::timeout(PLAYER_IDLE, player.next_event()).await {
                    if let ClientEvent::Media { kind: MediaKind::Video, timestamp, payload } = event
                        // AVCPacketType 1: a picture, not the sequence header.
                        && payload.get(1) == Some(&1)
                    {
                        if last.is_some_and(|l| timestamp <= l) {
                            counters.backwards.fetch_add(1, Ordering::Relaxed);
                        }
                        last = Some(timestamp);
                        counters.frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(_) => {
                counters.failed_connects.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(PLAYER_RETRY).await;
    }
}

/// A server, the path from Tally to it, and its players.
struct Ingest {
    /// "nginx-rtmp" or "tally serve".
    name: &'static str,
    /// For the CSV and the plot's labels (no spaces).
    tag: &'static str,
    proxy: FaultProxy,
    players: Vec<Arc<PlayerCounters>>,
}

impl Ingest {
    fn frames_each(&self) -> Vec<u64> {
        self.players.iter().map(|p| p.frames.load(Ordering::Relaxed)).collect()
    }

    fn frames(&self) -> u64 {
        self.frames_each().iter().sum()
    }

    /// `url=rtmp://127.0.0.1:PORT/`: how Tally's log names this destination.
    fn log_url(&self) -> String {
        format!("url=rtmp://127.0.0.1:{}/", self.proxy.port())
    }

    /// This destination's entry in a stats line.
    fn output<'a>(&self, stats: &'a Value) -> Option<&'a Value> {
        let port = format!("127.0.0.1:{}/", self.proxy.port());
        stats["outputs"].as_array()?.iter().find(|o| o["name"].as_str().is_some_and(|n| n.contains(&port)))
    }
}

/// Tally's `--stats-json` lines, parsed as they arrive.
#[derive(Default)]
struct StatsLines {
    read: usize,
    lines: Vec<Value>,
}

impl StatsLines {
    fn poll(&mut self, tally: &Proc) {
        let out = tally.stdout_bytes();
        let new = out.get(self.read..).unwrap_or_default();
        let Some(end) = new.iter().rposition(|&b| b == b'\n') else { return };
        self.lines.extend(new[..end].split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()));
        self.read += end + 1;
    }

    fn latest(&self) -> Option<&Value> {
        self.lines.last()
    }
}

/// The recording's entry in a stats line (the output that is not RTMP).
fn record_output(stats: &Value) -> Option<&Value> {
    stats["outputs"].as_array()?.iter().find(|o| o["name"].as_str().is_some_and(|n| !n.starts_with("rtmp")))
}

/// `GET /api/streams` on tally serve: (players, deepest player queue in
/// ms) of [`STREAM`]; `None` if the server does not answer within 2 s.
fn server_players(http_port: u16) -> Option<(usize, u64)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /api/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let json: Value = serde_json::from_str(body).ok()?;
    let stream = json["streams"].as_array()?.iter().find(|s| s["name"] == STREAM)?;
    let players = stream["player_list"].as_array()?;
    Some((players.len(), players.iter().filter_map(|p| p["queue_ms"].as_u64()).max().unwrap_or(0)))
}

/// CPU seconds (utime + stime) of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map_or("", |x| x.1).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// One second of the run.
struct Sample {
    t: f64,
    /// tally stream, tally serve, nginx; KiB.
    rss_kib: [u64; 3],
    /// The publisher's queue to nginx, to tally serve, to the recording; ms.
    queue_ms: [Option<u64>; 3],
    /// The deepest player queue on tally serve, ms.
    player_queue_ms: Option<u64>,
}

const CSV_HEADER: &str = "t_s,rss_stream_mib,rss_serve_mib,rss_nginx_mib,queue_to_nginx_ms,queue_to_serve_ms,queue_record_ms,\
player_queue_max_ms,fps_per_player_nginx,fps_per_player_serve,live_nginx,live_serve,fault_nginx,fault_serve,reconnects_nginx,reconnects_serve,event\n";

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Connection losses and live sessions per destination, from Tally's log.
struct LogCounts {
    /// The first "connection lost" after being live (`attempt=1`).
    losses: usize,
    /// "live" and "reconnected; live" lines: the first session and every reconnection.
    live: usize,
}

fn log_counts(log: &str, url: &str) -> LogCounts {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(url)).collect();
    LogCounts {
        losses: lines.iter().filter(|l| l.contains("connection lost") && l.trim_end().ends_with("attempt=1")).count(),
        live: lines
            .iter()
            .filter(|l| l.contains(&format!("INFO live {url}")) || l.contains(&format!("INFO reconnected; live {url}")))
            .count(),
    }
}

/// What ffprobe finds in the recording.
struct RecordingFigures {
    video: usize,
    audio: usize,
    span_secs: f64,
    largest_video_step_ms: f64,
    largest_audio_step_ms: f64,
}

/// Reads the recording; pushes a failure for each thing wrong with it.
fn check_recording(path: &Path, min_span: f64, failures: &mut Vec<String>) -> RecordingFigures {
    let errors = ffprobe_errors(path);
    if !errors.trim().is_empty() {
        failures.push(format!("ffprobe complains about the recording: {}", errors.trim()));
    }
    let info = probe(path);
    let mut largest = |pts: &[f64], what: &str| -> f64 {
        if pts.len() < 2 {
            failures.push(format!("the recording has {} {what} packets", pts.len()));
            return 0.0;
        }
        let mut worst = 0.0f64;
        let mut reported = 0;
        for (i, w) in pts.windows(2).enumerate() {
            let step = (w[1] - w[0]) * 1000.0;
            worst = worst.max(step);
            if (step <= 0.0 || step > MAX_RECORDED_STEP_MS) && reported < 5 {
                reported += 1;
                failures.push(format!("recording: {what} timestamp step of {step:.1} ms at packet {i} ({:.3} s → {:.3} s)", w[0], w[1]));
            }
        }
        worst
    };
    let (video, audio) = (info.video_pts(), info.audio_pts());
    let largest_video_step_ms = largest(&video, "video");
    let largest_audio_step_ms = largest(&audio, "audio");
    let span_secs = match (video.first(), video.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    if span_secs < min_span {
        failures.push(format!("the recording's video covers {span_secs:.1} s, the soak ran {min_span:.1} s"));
    }
    RecordingFigures { video: video.len(), audio: audio.len(), span_secs, largest_video_step_ms, largest_audio_step_ms }
}

/// Runs the soak; returns the Markdown summary and what failed.
fn soak(settings: &Settings) -> (String, Vec<String>) {
    let dir = TestDir::new("soak");
    let nginx = Nginx::start();
    let server = TallyServer::start(&[]);
    let mut ingests = [
        Ingest { name: "nginx-rtmp", tag: "nginx", proxy: FaultProxy::start(nginx.port()), players: Vec::new() },
        Ingest { name: "tally serve", tag: "tally-serve", proxy: FaultProxy::start(server.rtmp_port), players: Vec::new() },
    ];
    let player_urls = [nginx.url(STREAM), server.url(STREAM)];

    // Players first: both servers hold a player until the stream starts.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("players' runtime");
    let mut tasks = Vec::new();
    for (ingest, url) in ingests.iter_mut().zip(&player_urls) {
        let url = RtmpUrl::parse(url).expect("player URL");
        for _ in 0..settings.players {
            let counters = Arc::new(PlayerCounters::default());
            tasks.push((ingest.name, rt.spawn(play(url.clone(), counters.clone()))));
            ingest.players.push(counters);
        }
    }

    let recording = dir.join("soak.flv");
    let rec = recording.to_string_lossy().into_owned();
    let (to_nginx, to_serve) = (ingests[0].proxy.url("live", STREAM), ingests[1].proxy.url("live", STREAM));
    let mut args = vec!["stream", to_nginx.as_str(), to_serve.as_str(), "--video", settings.video.as_str()];
    args.extend_from_slice(&SOURCE);
    args.extend_from_slice(&["--record", rec.as_str(), "--stats-json"]);
    let tally = spawn_tally(&args);

    let everyone_plays = wait_until(START_TIMEOUT, || {
        tally.has_exited() || ingests.iter().all(|i| i.frames_each().iter().all(|&n| n >= FRAMES_TO_RECOVER))
    });
    if !everyone_plays || tally.has_exited() {
        let counts: Vec<String> = ingests.iter().map(|i| format!("{}: {:?}", i.name, i.frames_each())).collect();
        panic!(
            "not every player received a second of video within {START_TIMEOUT:?} (frames {})\n{}\n{}\n{}",
            counts.join(", "),
            tally.describe(),
            server.proc().describe(),
            nginx.diagnostics()
        );
    }

    let pids = [tally.pid(), server.proc().pid(), nginx.proc().pid()];
    let cpu_at_start = pids.map(cpu_secs);
    let mut csv = settings.csv.as_ref().map(|path| {
        let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        f.write_all(CSV_HEADER.as_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        f
    });
    let mut failures: Vec<String> = Vec::new();
    let mut stats = StatsLines::default();
    let mut samples: Vec<Sample> = Vec::new();
    let mut faults: Vec<Fault> = Vec::new();
    let mut next_fault_at = settings.fault_every;
    let mut api_misses = 0usize;
    let mut last_frames = ingests.each_ref().map(Ingest::frames);
    let start = Instant::now();
    let mut tick = 0u32;
    eprintln!("soak: {} s, a fault every {} s, {} players per server", settings.secs, settings.fault_every, settings.players);
    loop {
        // Once a second on the run's own schedule; a late tick skips ahead.
        let mut due = start + Duration::from_secs(u64::from(tick));
        while due + Duration::from_secs(1) < Instant::now() {
            tick += 1;
            due = start + Duration::from_secs(u64::from(tick));
        }
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        tick += 1;
        let t = start.elapsed().as_secs_f64();
        stats.poll(&tally);
        let latest = stats.latest();

        // The fault in progress: heal it when its time is up, then wait for
        // its destination to be back.
        let mut event = String::new();
        if let Some(f) = faults.last_mut() {
            let ingest = &ingests[f.ingest];
            match f.healed {
                None if t >= f.at + f.kind.hold().as_secs_f64() => {
                    f.kind.heal(&ingest.proxy);
                    f.healed = Some((t, unix_secs(SystemTime::now())));
                    f.frames_at_heal = ingest.frames_each();
                }
                Some((healed_t, healed_wall)) if f.pending() => {
                    let live = latest
                        .filter(|s| s["wall"].as_f64().is_some_and(|w| w >= healed_wall))
                        .and_then(|s| ingest.output(s))
                        .is_some_and(|o| o["state"] == "live");
                    let every_player = ingest.frames_each().iter().zip(&f.frames_at_heal).all(|(now, then)| *now >= then + FRAMES_TO_RECOVER);
                    if live && every_player {
                        f.recovered_after = Some(t - healed_t);
                        eprintln!("soak: {:.0} s: {} back {:.0} s after the {} healed", t, ingest.name, t - healed_t, f.kind.label());
                    } else if t - healed_t > RECOVERY_TIMEOUT.as_secs_f64() {
                        f.gave_up = true;
                        failures.push(format!(
                            "{} was not back within {RECOVERY_TIMEOUT:?} of the {} at {:.0} s healing (live: {live}, every player receiving: {every_player})",
                            ingest.name,
                            f.kind.label(),
                            f.at
                        ));
                    }
                }
                _ => {}
            }
        }
        let n = faults.len();
        let kind = ROTATION[n % ROTATION.len()];
        // The paths take turns, shifted every rotation so each fault meets both servers.
        let target = (n + n / ROTATION.len()) % 2;
        if !faults.iter().any(Fault::pending) && t >= next_fault_at && t + kind.hold().as_secs_f64() < settings.secs {
            kind.apply(&ingests[target].proxy);
            eprintln!("soak: {t:.0} s: {} on the path to {}", kind.label(), ingests[target].name);
            let _ = write!(event, "{} {}", kind.label(), ingests[target].tag);
            faults.push(Fault { kind, ingest: target, at: t, healed: None, frames_at_heal: Vec::new(), recovered_after: None, gave_up: false });
            next_fault_at += settings.fault_every;
            if kind.hold().is_zero() {
                // A cut heals at once; the next ticks wait for the destination.
                let f = faults.last_mut().expect("just pushed");
                f.healed = Some((t, unix_secs(SystemTime::now())));
                f.frames_at_heal = ingests[target].frames_each();
            }
        }

        // The sample.
        let api = server_players(server.http_port);
        api_misses += usize::from(api.is_none());
        let queue = |o: Option<&Value>| o.and_then(|o| o["queue_ms"].as_u64());
        let sample = Sample {
            t,
            rss_kib: pids.map(rss_kib),
            queue_ms: [
                queue(latest.and_then(|s| ingests[0].output(s))),
                queue(latest.and_then(|s| ingests[1].output(s))),
                queue(latest.and_then(record_output)),
            ],
            player_queue_ms: api.map(|(_, q)| q),
        };
        let frames = ingests.each_ref().map(Ingest::frames);
        // Frames per player over the second since the last sample (none for the first).
        let fps = |i: usize| {
            samples.last().map_or(String::new(), |s| format!("{:.1}", (frames[i] - last_frames[i]) as f64 / (t - s.t).max(1e-3) / ingests[i].players.len() as f64))
        };
        let live = |i: usize| u8::from(latest.and_then(|s| ingests[i].output(s)).is_some_and(|o| o["state"] == "live"));
        let reconnects = |i: usize| latest.and_then(|s| ingests[i].output(s)).and_then(|o| o["reconnects"].as_u64()).unwrap_or(0);
        let faulted = |i: usize| u8::from(faults.last().is_some_and(|f| f.ingest == i && (f.healed.is_none() || f.at == t)));
        if let Some(f) = csv.as_mut() {
            let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
            let row = format!(
                "{t:.1},{:.2},{:.2},{:.2},{},{},{},{},{},{},{},{},{},{},{},{},{event}\n",
                mib(sample.rss_kib[0] as f64),
                mib(sample.rss_kib[1] as f64),
                mib(sample.rss_kib[2] as f64),
                opt(sample.queue_ms[0]),
                opt(sample.queue_ms[1]),
                opt(sample.queue_ms[2]),
                opt(sample.player_queue_ms),
                fps(0),
                fps(1),
                live(0),
                live(1),
                faulted(0),
                faulted(1),
                reconnects(0),
                reconnects(1)
            );
            f.write_all(row.as_bytes()).expect("write the soak CSV");
        }
        last_frames = frames;
        samples.push(sample);

        if tally.has_exited() {
            failures.push(format!("tally stream exited {:.0} s into the soak", t));
            break;
        }
        if t >= settings.secs && !faults.iter().any(Fault::pending) {
            break;
        }
    }
    let soaked = start.elapsed().as_secs_f64();
    let cpu = [0, 1, 2].map(|i| cpu_secs(pids[i]) - cpu_at_start[i]);

    // Ctrl-C: Tally unpublishes, closes the recording and exits 0 when
    // every output ended cleanly.
    tally.signal("INT");
    match tally.wait_timeout(STOP_TIMEOUT) {
        Some(status) if status.success() => {}
        Some(status) => failures.push(format!("tally stream exited with {status}")),
        None => {
            tally.kill();
            failures.push(format!("tally stream did not stop within {STOP_TIMEOUT:?} of Ctrl-C"));
        }
    }
    stats.poll(&tally);
    for (name, task) in tasks {
        task.abort();
        if let Err(e) = rt.block_on(task)
            && e.is_panic()
        {
            failures.push(format!("a player on {name} panicked"));
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));

    // No process panicked or died.
    let tally_log = strip_ansi(&tally.stderr_text());
    let failures_before = failures.len();
    for (name, proc) in [("tally stream", &tally), ("tally serve", server.proc()), ("nginx", nginx.proc())] {
        if proc.stderr_text().contains("panicked") {
            failures.push(format!("{name} panicked:\n{}", proc.describe()));
        }
    }
    for (name, proc) in [("tally serve", server.proc()), ("nginx", nginx.proc())] {
        if proc.has_exited() {
            failures.push(format!("{name} died during the soak:\n{}", proc.describe()));
        }
    }
    let crashed = failures.len() > failures_before || failures.iter().any(|f| f.contains("panicked") || f.contains("exited"));
    if api_misses > 0 {
        failures.push(format!("tally serve's /api/streams did not answer (or did not list '{STREAM}') {api_misses} times"));
    }

    // Every loss came back; the counts agree with each other and with the faults.
    let last = stats.latest().cloned().unwrap_or_default();
    let mut reconnect_rows = Vec::new();
    for (i, ingest) in ingests.iter().enumerate() {
        let counts = log_counts(&tally_log, &ingest.log_url());
        let on_it: Vec<&Fault> = faults.iter().filter(|f| f.ingest == i).collect();
        let forced = on_it.iter().filter(|f| f.kind.forces_reconnect()).count();
        // The last line's count only: Tally counts a reconnection when the
        // reconnected session ends, so while live the count lags a session.
        let reconnects = ingest.output(&last).and_then(|o| o["reconnects"].as_u64());
        let final_state = ingest.output(&last).and_then(|o| o["state"].as_str()).unwrap_or("(not in the stats)").to_string();
        if reconnects != Some(counts.losses as u64) {
            failures.push(format!("{}: the last stats line counts {reconnects:?} reconnects, the log {} connection losses", ingest.name, counts.losses));
        }
        if counts.live != counts.losses + 1 {
            failures.push(format!("{}: {} connection losses but {} sessions live (expected one more than the losses)", ingest.name, counts.losses, counts.live));
        }
        if counts.losses < forced || counts.losses > on_it.len() {
            failures.push(format!("{}: {} connection losses for {} faults of which {forced} end the connection", ingest.name, counts.losses, on_it.len()));
        }
        if final_state.starts_with("failed") {
            failures.push(format!("{}: the destination ended {final_state}", ingest.name));
        }
        reconnect_rows.push(format!("{} {} ({} faults, {forced} that end the connection)", ingest.name, counts.losses, on_it.len()));
    }

    // Players.
    let mut player_rows = Vec::new();
    for ingest in &ingests {
        let each = ingest.frames_each();
        let (least, most) = (each.iter().copied().min().unwrap_or(0), each.iter().copied().max().unwrap_or(0));
        let expected = soaked * FPS;
        if (least as f64) < MIN_FRAME_SHARE * expected {
            failures.push(format!("a player on {} received {least} frames in {soaked:.0} s ({expected:.0} at 30 fps)", ingest.name));
        }
        let backwards: u64 = ingest.players.iter().map(|p| p.backwards.load(Ordering::Relaxed)).sum();
        if backwards > 0 {
            failures.push(format!("players on {} saw the video timestamp go back {backwards} times", ingest.name));
        }
        let sessions: u64 = ingest.players.iter().map(|p| p.sessions.load(Ordering::Relaxed)).sum();
        let failed_connects: u64 = ingest.players.iter().map(|p| p.failed_connects.load(Ordering::Relaxed)).sum();
        player_rows.push(format!(
            "{}: {}–{} frames each ({:.1}–{:.1} fps over the soak), {sessions} sessions for {} players, {failed_connects} failed connects",
            ingest.name,
            least,
            most,
            least as f64 / soaked,
            most as f64 / soaked,
            ingest.players.len()
        ));
    }

    // Faults.
    if faults.is_empty() {
        failures.push("no fault was injected: SOAK_SECS is too short for FAULT_EVERY".to_string());
    }
    let recovered: Vec<f64> = faults.iter().filter_map(|f| f.recovered_after).collect();

    // Memory, CPU and queues.
    let window = RSS_WINDOW_SECS.min(soaked / 4.0);
    let first: Vec<&Sample> = samples.iter().filter(|s| s.t < window).collect();
    let tail: Vec<&Sample> = samples.iter().filter(|s| s.t > soaked - window).collect();
    let mut memory_rows = Vec::new();
    for (i, name) in ["tally stream", "tally serve", "nginx-rtmp"].iter().enumerate() {
        let early = median(&first.iter().map(|s| s.rss_kib[i] as f64).collect::<Vec<_>>());
        let late = median(&tail.iter().map(|s| s.rss_kib[i] as f64).collect::<Vec<_>>());
        let peak = samples.iter().map(|s| s.rss_kib[i]).max().unwrap_or(0) as f64;
        let growth = mib(late - early);
        if growth > RSS_GROWTH_MIB && growth > RSS_GROWTH_SHARE * mib(early) {
            failures.push(format!("{name}'s memory grew from {:.1} MiB to {:.1} MiB (medians of the first and last {window:.0} s)", mib(early), mib(late)));
        }
        memory_rows.push(format!(
            "| {name} | {:.1} MiB | {:.1} MiB | {growth:+.1} MiB | {:.1} MiB | {:.0} % |",
            mib(early),
            mib(late),
            mib(peak),
            cpu[i] / soaked * 100.0
        ));
    }
    let deepest = |f: fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    let queue_rows = [
        ("tally stream → nginx-rtmp", deepest(|s| s.queue_ms[0]), PUBLISHER_QUEUE_MAX_MS),
        ("tally stream → tally serve", deepest(|s| s.queue_ms[1]), PUBLISHER_QUEUE_MAX_MS),
        ("tally stream → recording", deepest(|s| s.queue_ms[2]), u64::MAX),
        ("tally serve → its players (deepest)", deepest(|s| s.player_queue_ms), PLAYER_QUEUE_MAX_MS),
    ];
    for (what, max, bound) in &queue_rows {
        match max {
            None => failures.push(format!("{what}: no queue depth was ever read")),
            Some(ms) if ms > bound => failures.push(format!("{what}: queue reached {ms} ms (bound {bound} ms)")),
            Some(_) => {}
        }
    }

    // The recording: local, so gapless whatever the network did.
    let rec = check_recording(&recording, settings.secs, &mut failures);

    // The summary.
    let mut md = String::new();
    let minutes = |s: f64| if s >= 120.0 { format!("{:.0} min", s / 60.0) } else { format!("{s:.0} s") };
    let _ = writeln!(
        md,
        "### Soak: {} of 720p30 (`--video {}`, tone) to nginx-rtmp and tally serve, {} players, {} faults\n",
        minutes(soaked),
        settings.video,
        settings.players * 2,
        faults.len()
    );
    let _ = writeln!(md, "| check | result |\n|---|---|");
    let _ = writeln!(
        md,
        "| panics, crashes | {} |",
        if crashed { "**yes**, see the failures" } else { "none (tally stream, tally serve, nginx, the players)" }
    );
    let _ = writeln!(
        md,
        "| destination live again, every player receiving | {} of {} faults, {} after the path healed (sampled each second) |",
        recovered.len(),
        faults.len(),
        match (recovered.iter().copied().reduce(f64::min), recovered.iter().copied().reduce(f64::max)) {
            (Some(a), Some(b)) => format!("{a:.0}–{b:.0} s"),
            _ => "—".to_string(),
        }
    );
    let _ = writeln!(md, "| connection losses, each reconnected | {} |", reconnect_rows.join("; "));
    let _ = writeln!(md, "| players | {} |", player_rows.join("; "));
    let _ = writeln!(
        md,
        "| recording (ffprobe) | {} video + {} audio packets over {:.0} s; largest step {:.0} ms video, {:.0} ms audio (limit {MAX_RECORDED_STEP_MS:.0} ms) |",
        rec.video, rec.audio, rec.span_secs, rec.largest_video_step_ms, rec.largest_audio_step_ms
    );
    let _ = writeln!(md, "\n| process | RSS, median of the first {w} | of the last {w} | change | peak | CPU (mean) |\n|---|---|---|---|---|---|", w = minutes(window));
    for r in &memory_rows {
        let _ = writeln!(md, "{r}");
    }
    let _ = writeln!(md, "\n| queue | deepest | bound |\n|---|---|---|");
    for (what, max, bound) in &queue_rows {
        let bound = if *bound == u64::MAX { "20 000 ms (the recorder's)".to_string() } else { format!("{bound} ms") };
        let _ = writeln!(md, "| {what} | {} | {bound} |", max.map_or("—".to_string(), |m| format!("{m} ms")));
    }
    let _ = writeln!(md, "\n| # | at | fault | path to | back after the path healed |\n|---|---|---|---|---|");
    for (i, f) in faults.iter().enumerate() {
        let back = match (f.recovered_after, f.gave_up) {
            (Some(s), _) => format!("{s:.0} s"),
            (None, true) => format!("**not within {} s**", RECOVERY_TIMEOUT.as_secs()),
            (None, false) => "—".to_string(),
        };
        let _ = writeln!(md, "| {} | {:.0} s | {} | {} | {back} |", i + 1, f.at, f.kind.label(), ingests[f.ingest].name);
    }
    if let Some(path) = &settings.csv {
        let _ = writeln!(md, "\nSamples: {} (plot: `gnuplot docs/soak.gp`).", path.display());
    }
    (md, failures)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings = Settings::from_env(full);
    let (summary, failures) = soak(&settings);
    println!("{summary}");
    assert!(failures.is_empty(), "the soak failed:\n- {}", failures.join("\n- "));
    println!("soak passed");
}
