//! A live stream through a path the test owns, shared by the destination
//! tests (which judge what arrived) and the recovery and congestion
//! benchmarks (which time it): Tally publishes through [`FaultProxy`] to a
//! private nginx-rtmp, a [`Watcher`] on nginx times every frame, and
//! `--record` writes a local file alongside.

use super::proxy::{FaultProxy, PathState};
use super::rtmp_client::{Seen, Watcher};
use super::flv_judge::{assert_recording_has_every_frame, pattern_clip};
use super::{Nginx, Proc, TestDir, spawn_tally, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use tally::rtmp::MediaKind;

/// Test pattern and tone at 640x360@30: light, so tests can run side by side.
pub const SMALL_SOURCE: [&str; 8] = ["--video", "test", "--audio", "sine", "--size", "640x360", "--fps", "30"];

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
pub fn ms_between(from: Instant, to: Instant) -> i64 {
    if to >= from { (to - from).as_millis() as i64 } else { -((from - to).as_millis() as i64) }
}

/// How late each video frame arrived relative to the first one: arrival time
/// elapsed minus media time elapsed, ms. A constant for a healthy live
/// stream; it grows with every second of backlog.
pub fn lags(video: &[Seen]) -> Vec<(Instant, u32, i64)> {
    let Some(first) = video.first() else { return Vec::new() };
    video.iter().map(|s| (s.at, s.ts, ms_between(first.at, s.at) - (i64::from(s.ts) - i64::from(first.ts)))).collect()
}

/// The lowest lag seen before `until`: the stream's own latency, to measure
/// delay against.
pub fn baseline_lag(video: &[Seen], until: Instant) -> i64 {
    lags(video).iter().filter(|(at, _, _)| *at < until).map(|(_, _, l)| *l).min().unwrap_or(0)
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `--stats-json` lines printed so far.
pub fn stats_lines(tally: &Proc) -> Vec<Value> {
    tally.stdout_text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Seconds since the Unix epoch, as `--stats-json` stamps its lines.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The stats lines stamped between `from` and `to` (Unix seconds).
pub fn stats_between(stats: &[Value], from: f64, to: f64) -> Vec<&Value> {
    stats.iter().filter(|s| s["wall"].as_f64().is_some_and(|w| w >= from && w <= to)).collect()
}

/// Video timestamps strictly increase on every watcher connection.
pub fn assert_video_monotonic(video: &[Seen]) {
    for w in video.windows(2) {
        if w[0].connection == w[1].connection {
            assert!(w[1].ts > w[0].ts, "video timestamp went from {} to {} ms", w[0].ts, w[1].ts);
        }
    }
}

/// The size and rate of the tests' sources ([`SMALL_SOURCE`], [`noisy_clip`]).
pub const SMALL_SIZE: (u32, u32) = (640, 360);
/// See [`SMALL_SIZE`].
pub const SMALL_FPS: u32 = 30;

/// Luma noise of [`noisy_clip`]: at 640x360 and 2500 kbit/s openh264 codes
/// the pattern under it at its bitrate (2475–2540 kbit/s a second) without
/// skipping a frame, even across keyframes forced off the GOP grid (a
/// destination joining or resuming), and every frame's number stays
/// readable. At ±12 the same stream codes at its bitrate too, but from the
/// first forced keyframe on openh264's rate control skips 3–4 frames at
/// every keyframe (measured 2026-12-07): a recording of it loses frames.
const CLIP_NOISE: u8 = 6;

/// A Y4M clip of Tally's test pattern, looped by the tests that use it.
pub struct PatternClip {
    /// The file.
    pub path: PathBuf,
    /// Its length: frame `i` of a looped broadcast shows `i % frames`.
    pub frames: u64,
}

impl PatternClip {
    /// `y4m:PATH`, for `--video`.
    pub fn video_arg(&self) -> String {
        format!("y4m:{}", self.path.display())
    }
}

/// A clip that really needs its bitrate, so a 2.5 Mbit/s stream is
/// 2.5 Mbit/s: the test pattern under noise, 640x360@30, `secs` long, each
/// frame's number readable from a recording of it.
pub fn noisy_clip(dir: &TestDir, secs: u32) -> PatternClip {
    let frames = u64::from(secs) * u64::from(SMALL_FPS);
    PatternClip { path: pattern_clip(dir, "noise.y4m", SMALL_SIZE, SMALL_FPS, frames, CLIP_NOISE), frames }
}

/// The first picture a client sent on a connection, from the bytes it
/// wrote (C0+C1 and C2, then chunks): (timestamp ms, keyframe). `None` if
/// no video frame is in them.
pub fn first_frame_sent(bytes: &[u8]) -> Option<(u32, bool)> {
    use tally::rtmp::{ChunkDecoder, RtmpMessage};
    const HANDSHAKE: usize = 1 + 1536 + 1536;
    let mut dec = ChunkDecoder::new();
    dec.push(bytes.get(HANDSHAKE..)?);
    while let Ok(Some(raw)) = dec.next_message() {
        match RtmpMessage::from_raw(&raw) {
            Ok(RtmpMessage::SetChunkSize(n)) => dec.set_chunk_size(n).ok()?,
            // FLV AVC body: FrameType|CodecID, AVCPacketType 1 = a picture.
            Ok(RtmpMessage::Video(p)) if p.get(1) == Some(&1) => return Some((raw.timestamp, p[0] >> 4 == 1)),
            _ => {}
        }
    }
    None
}

/// How the stream came back after a fault.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// From the path healing to the first frame at the player with no more
    /// delay than before the fault (+1 s): live again.
    pub after: Duration,
    /// The first video frame of the new session: the one after the first
    /// AVC sequence header that arrived after the fault began (nginx-rtmp
    /// relays a new session's metadata and headers to its players).
    pub first_frame: Option<Seen>,
}

/// A live stream to nginx-rtmp through the fault proxy, watched by a player
/// on nginx, recorded locally alongside.
pub struct LiveThroughProxy {
    /// The ingest.
    pub nginx: Nginx,
    /// The path to it.
    pub proxy: FaultProxy,
    /// A viewer on nginx.
    pub watcher: Watcher,
    /// `tally stream ... --record ... --stats-json`.
    pub tally: Proc,
    /// The local recording.
    pub recording: PathBuf,
    /// The stream name (it contains `SECRETKEY`, which must never show).
    pub stream: String,
    /// Where the recording and any clip live.
    pub dir: TestDir,
    /// The looped clip's length, when the source is a [`PatternClip`].
    pub period: Option<u64>,
}

impl LiveThroughProxy {
    /// Goes live with `source` (see [`SMALL_SOURCE`]) plus `extra` and waits
    /// until the viewer has seen 3 s of video.
    pub fn start(label: &str, source: &[&str], extra: &[&str]) -> LiveThroughProxy {
        Self::start_in(TestDir::new(label), label, source, None, extra)
    }

    /// [`LiveThroughProxy::start`] in a directory made beforehand (to hold a
    /// clip), `source` being a clip of `period` frames looped.
    pub fn start_in(dir: TestDir, label: &str, source: &[&str], period: Option<u64>, extra: &[&str]) -> LiveThroughProxy {
        let nginx = Nginx::start();
        let proxy = FaultProxy::start(nginx.port());
        let stream = format!("{label}-SECRETKEY-{}", std::process::id());
        let watcher = Watcher::start(&nginx.url(&stream));
        let recording = dir.join("local.flv");
        let url = proxy.url("live", &stream);
        let rec = recording.to_string_lossy().into_owned();
        let mut args = vec!["stream", url.as_str()];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--record", rec.as_str(), "--stats-json"]);
        args.extend_from_slice(extra);
        let tally = spawn_tally(&args);
        let live = LiveThroughProxy { nginx, proxy, watcher, tally, recording, stream, dir, period };
        live.wait_media_secs(3.0, Duration::from_secs(30));
        live
    }

    /// Waits until the watcher has seen `secs` of video (timestamp span).
    pub fn wait_media_secs(&self, secs: f64, timeout: Duration) {
        let ok = self.watcher.wait_for(timeout, |seen| {
            let v: Vec<&Seen> = seen.iter().filter(|s| s.kind == MediaKind::Video && !s.config).collect();
            v.len() > 1 && f64::from(v[v.len() - 1].ts.saturating_sub(v[0].ts)) / 1000.0 >= secs
        });
        assert!(ok, "the player saw less than {secs} s of video\n{}\n{}", self.tally.describe(), self.nginx.diagnostics());
    }

    /// Waits (up to `timeout`, generous) for the stream to be live again
    /// after `healed`: a video frame arriving after it with no more delay
    /// than before the fault at `fault_at` (+1 s).
    pub fn wait_resumed(&self, fault_at: Instant, healed: Instant, timeout: Duration) -> Resumed {
        let baseline = baseline_lag(&self.watcher.video(), fault_at);
        let mut resumed = None;
        self.watcher.wait_for(timeout, |seen| {
            let video: Vec<Seen> = seen.iter().filter(|s| s.kind == MediaKind::Video && !s.config).cloned().collect();
            resumed = lags(&video).iter().find(|(at, _, lag)| *at >= healed && *lag <= baseline + 1000).map(|(at, _, _)| {
                let header = seen.iter().position(|s| s.kind == MediaKind::Video && s.config && s.at >= fault_at);
                let first_frame = header.and_then(|h| seen[h..].iter().find(|s| s.kind == MediaKind::Video && !s.config)).cloned();
                Resumed { after: *at - healed, first_frame }
            });
            resumed.is_some()
        });
        match resumed {
            Some(r) => r,
            None => panic!(
                "the stream did not resume within {timeout:?} of the path healing\n{}\n{}",
                self.tally.describe(),
                self.nginx.diagnostics()
            ),
        }
    }

    /// Puts the path in `state` for `duration` of wall time (the fault
    /// itself, not a wait for an event) and opens it again; returns when
    /// the fault began and when it healed.
    pub fn fault(&self, state: PathState, duration: Duration) -> (Instant, Instant) {
        let at = Instant::now();
        self.proxy.set_state(state);
        std::thread::sleep(duration);
        self.proxy.set_state(PathState::Open);
        (at, Instant::now())
    }

    /// Ctrl-C: Tally unpublishes and exits 0; the recording holds every
    /// frame of the source from the first, in order and on time, at least
    /// `min_recorded_secs` of them (read from its pictures); the key never
    /// showed; the viewer's timestamps never went back.
    pub fn finish(self, min_recorded_secs: f64) {
        self.tally.signal("INT");
        let status = self.tally.wait_timeout(Duration::from_secs(20)).unwrap_or_else(|| panic!("tally did not stop\n{}", self.tally.describe()));
        assert!(status.success(), "exit {status}\n{}", self.tally.describe());
        let all = format!("{}{}", self.tally.stdout_text(), self.tally.stderr_text());
        assert!(!all.contains("SECRETKEY"), "the key leaked:\n{}", self.tally.describe());
        assert_video_monotonic(&self.watcher.video());
        let min_frames = (min_recorded_secs * f64::from(SMALL_FPS)) as usize;
        assert_recording_has_every_frame(&self.recording, SMALL_SIZE, SMALL_FPS, self.period, min_frames);
    }
}

/// The video bitrate a congested run starts and recovers at.
pub const CONGESTION_FULL_KBPS: u64 = 2500;
/// The thin uplink: 1 Mbit/s.
pub const CONGESTION_LIMIT_BPS: u64 = 1_000_000;

/// One run of the congestion scenario: 10 s clear, 30 s at 1 Mbit/s, then
/// clear until the bitrate is back at 2500 kbit/s (at most 60 s) and 5 s more.
pub struct CongestionRun {
    /// Every `--stats-json` line.
    pub stats: Vec<Value>,
    /// What the viewer on nginx received.
    pub video: Vec<Seen>,
    /// The local recording (kept until the run is dropped).
    pub recording: PathBuf,
    /// The looped clip's length in frames.
    pub clip_frames: u64,
    /// When the limit went on and off (Unix seconds, as the stats lines).
    pub limit_from: f64,
    /// See `limit_from`.
    pub limit_to: f64,
    /// When the limit went on.
    pub limited_at: Instant,
    /// When the limit was lifted.
    pub lifted_at: Instant,
    /// When the run started.
    pub started: Instant,
    /// Whether the bitrate came back to 2500 within 60 s of the lift, and after how long.
    pub recovered: Option<Duration>,
    /// Tally's stderr.
    pub log: String,
    _dir: TestDir,
}

/// Runs the congestion scenario with a noise clip (so 2.5 Mbit/s is real).
pub fn run_congestion() -> CongestionRun {
    let dir = TestDir::new("congestion");
    let clip = noisy_clip(&dir, 4);
    let nginx = Nginx::start();
    let proxy = FaultProxy::start(nginx.port());
    let stream = "congestion-SECRETKEY";
    let watcher = Watcher::start(&nginx.url(stream));
    let recording = dir.join("local.flv");
    let video = clip.video_arg();
    let rec = recording.to_string_lossy().into_owned();
    let kbps = CONGESTION_FULL_KBPS.to_string();
    let url = proxy.url("live", stream);
    let tally = spawn_tally(&[
        "stream", &url, "--video", &video, "--loop", "--audio", "sine", "--video-bitrate", &kbps, "--record", &rec, "--stats-json",
    ]);
    let started = Instant::now();
    assert!(watcher.wait_for(Duration::from_secs(30), |s| s.len() > 100), "nothing arrived\n{}", tally.describe());
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    proxy.limit_rate(CONGESTION_LIMIT_BPS);
    let limited_at = Instant::now();
    let limit_from = unix_secs(SystemTime::now());
    std::thread::sleep(Duration::from_secs(30));
    proxy.limit_rate(0);
    let lifted_at = Instant::now();
    let limit_to = unix_secs(SystemTime::now());
    let recovered = wait_until(Duration::from_secs(60), || {
        stats_lines(&tally).last().and_then(|s| s["outputs"][0]["video_kbps"].as_u64()) == Some(CONGESTION_FULL_KBPS)
    })
    .then(|| lifted_at.elapsed());
    // A little more clear air for the plot.
    std::thread::sleep(Duration::from_secs(5));
    tally.signal("INT");
    let status = tally.wait_timeout(Duration::from_secs(20)).unwrap_or_else(|| panic!("tally did not stop\n{}", tally.describe()));
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    CongestionRun {
        stats: stats_lines(&tally),
        video: watcher.video(),
        recording,
        clip_frames: clip.frames,
        limit_from,
        limit_to,
        limited_at,
        lifted_at,
        started,
        recovered,
        log: tally.stderr_text(),
        _dir: dir,
    }
}

/// A hole in the player's video longer than this is a queue's drop (the
/// encoder's rate control skips single frames, 33 ms apart at 30 fps).
const QUEUE_DROP_GAP_MS: u32 = 400;

/// What a congestion run shows.
#[derive(Debug)]
pub struct CongestionFigures {
    /// Stats lines stamped while the limit was on (+1 s).
    pub lines_in_limit: usize,
    /// Lowest video bitrate in those lines.
    pub lowest_kbps: u64,
    /// Bitrate changes down, and up after the lift.
    pub steps_down: usize,
    /// See `steps_down`.
    pub steps_up: usize,
    /// Deepest queue any stats line reported, ms.
    pub max_queue_ms: u64,
    /// Worst player delay over its pre-fault baseline, ms.
    pub worst_delay_ms: i64,
    /// Frames the destination dropped.
    pub dropped: u64,
    /// Runs of recorded frames the player never got.
    pub missing_runs: usize,
    /// Where the player's video resumed after a gap without a keyframe (ms).
    pub bad_resumes: Vec<u32>,
    /// The run as CSV, for docs/congestion.png.
    pub csv: String,
}

impl CongestionRun {
    /// Works out what the run shows.
    pub fn figures(&self) -> CongestionFigures {
        let stats = &self.stats;
        let wall = |s: &Value| s["wall"].as_f64().unwrap_or(0.0);
        // The destination's rendition's bitrate (the recording keeps its own at full).
        let bitrate = |s: &Value| s["outputs"][0]["video_kbps"].as_u64().unwrap_or(0);
        let in_limit = stats_between(stats, self.limit_from, self.limit_to + 1.0);
        let lowest_kbps = in_limit.iter().map(|s| bitrate(s)).min().unwrap_or(u64::MAX);
        let steps_down = stats.windows(2).filter(|w| bitrate(&w[1]) < bitrate(&w[0])).count();
        let steps_up = stats.windows(2).filter(|w| bitrate(&w[1]) > bitrate(&w[0]) && wall(&w[1]) > self.limit_to).count();
        let max_queue_ms = stats.iter().filter_map(|s| s["outputs"][0]["queue_ms"].as_u64()).max().unwrap_or(0);

        let baseline = baseline_lag(&self.video, self.limited_at);
        let lag_series = lags(&self.video);
        let worst_delay_ms = lag_series.iter().map(|(_, _, l)| l - baseline).max().unwrap_or(0);

        // Drops land on GOP boundaries: after every hole in the player's
        // video longer than the encoder's own frame skipping leaves (it
        // rides at a few hundred kbit/s on its own rendition, skipping
        // frames that neither the recording nor the queue ever lose), the
        // next frame is a keyframe. The recording, on the full-quality
        // rendition, has every frame of the span.
        let mut missing_runs = 0;
        let mut bad_resumes = Vec::new();
        for w in self.video.windows(2) {
            if w[1].ts.wrapping_sub(w[0].ts) > QUEUE_DROP_GAP_MS {
                missing_runs += 1;
                if !w[1].keyframe {
                    bad_resumes.push(w[1].ts);
                }
            }
        }
        let dropped = stats.last().and_then(|s| s["outputs"][0]["dropped_frames"].as_u64()).unwrap_or(0);

        let mut csv = String::from("t_s,path_limit_kbps,video_bitrate_kbps,out_kbps,queue_ms,dropped_frames,player_delay_ms\n");
        let t0 = stats.first().map_or(0.0, wall);
        let mut previous: Option<f64> = None;
        for s in stats {
            let t = wall(s);
            // The last snapshot, taken at the stop a moment after the one
            // before, rates the final flush over a fraction of a second: not
            // a point of the run.
            if previous.is_some_and(|p| t - p < 0.5) {
                continue;
            }
            previous = Some(t);
            let limit = if t >= self.limit_from && t < self.limit_to { CONGESTION_LIMIT_BPS / 1000 } else { 0 };
            let at = self.started + Duration::from_secs_f64((t - t0).max(0.0));
            let delay = lag_series
                .iter()
                .filter(|(a, _, _)| *a <= at && *a + Duration::from_secs(1) > at)
                .map(|(_, _, l)| l - baseline)
                .max()
                .unwrap_or(0);
            let o = &s["outputs"][0];
            csv.push_str(&format!(
                "{:.1},{limit},{},{:.0},{},{},{delay}\n",
                t - t0,
                bitrate(s),
                o["kbps_out"].as_f64().unwrap_or(0.0),
                o["queue_ms"].as_u64().unwrap_or(0),
                o["dropped_frames"].as_u64().unwrap_or(0)
            ));
        }
        CongestionFigures {
            lines_in_limit: in_limit.len(),
            lowest_kbps,
            steps_down,
            steps_up,
            max_queue_ms,
            worst_delay_ms,
            dropped,
            missing_runs,
            bad_resumes,
            csv,
        }
    }
}
