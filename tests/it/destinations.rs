//! Destinations that hold up, against real peers: RTMPS through stunnel with
//! a private CA, two destinations at once with one server killed and
//! restarted, network faults through a proxy the test owns (cut, stall,
//! refusal, a long outage), a bad key, congestion on a thin uplink, and
//! trace-level runs of `tally stream` and `tally serve` that must never show
//! a stream key.
//!
//! These run at 640x360 (a few % of a core each), so they do not take the
//! real-time lock. Nothing here asserts how fast a stream resumes or how far
//! behind a player falls: each test waits for the event with a generous
//! timeout and judges what arrived. The figures themselves come from
//! `benches/recovery.rs` and `benches/congestion.rs` (docs/PERFORMANCE.md).

use crate::common;

use common::flv_judge::{assert_recording_has_every_frame, video_kbps_by_media_time};
use common::live::*;
use common::proxy::{FaultProxy, PathState};
use common::rtmp_client::Watcher;
use common::tls::{Stunnel, TestCa};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tally::rtmp::MediaKind;

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(SMALL_SOURCE.iter()).chain(tail.iter()).copied().collect()
}

/// A resumed stream restarts on a keyframe, in a fresh session. Seen in
/// what Tally sent on every connection after the first (nginx-rtmp would
/// hide a bad restart: it holds a new publisher's video back from players
/// until a keyframe), and at the viewer: after the new session's sequence
/// header, the first frame is a keyframe.
fn assert_restarted_on_keyframe(live: &LiveThroughProxy, resumed: &Resumed, what: &str) {
    let sessions = live.proxy.carried();
    assert!(sessions >= 2, "{what}: no new connection carried the stream");
    for nth in 1..sessions {
        let first = first_frame_sent(&live.proxy.sent_on(nth));
        // A connection that never got to media (an attempt into a stalled path) has none.
        if let Some((ts, key)) = first {
            assert!(key, "{what}: connection {nth} started with a non-keyframe at {ts} ms");
        }
    }
    assert!(first_frame_sent(&live.proxy.sent_on(sessions - 1)).is_some(), "{what}: the last connection carried no video");
    let first = resumed.first_frame.as_ref();
    assert!(first.is_some_and(|f| f.keyframe), "{what}: the viewer's new session starts with {first:?}, not a keyframe");
}

// ---------------------------------------------------------------------------
// RTMPS
// ---------------------------------------------------------------------------

#[test]
fn rtmps_with_a_private_ca_publishes_and_without_it_fails_clearly() {
    let nginx = Nginx::start();
    let ca = TestCa::new();
    let tls = Stunnel::start(&ca, nginx.port());

    // Without the CA: one attempt, a final error naming the host.
    let out = run_tally(&args(&["stream", &tls.url("live", "tls-SECRETKEY-1")], &["--duration", "5"]), Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("TLS with localhost failed") && err.contains("not trusted") && err.contains("--ca-file"), "{err}");
    assert_eq!(err.matches("connecting").count(), 1, "a certificate error is final:\n{err}");
    assert!(!nginx.has_publisher("tls-SECRETKEY-1"));
    assert!(!err.contains("SECRETKEY"), "{err}");

    // With --ca-file: live through TLS, the player on nginx sees it.
    let watcher = Watcher::start(&nginx.url("tls-SECRETKEY-2"));
    let ca_path = ca.ca_pem().to_string_lossy().into_owned();
    let out = run_tally(
        &args(&["stream", &tls.url("live", "tls-SECRETKEY-2")], &["--ca-file", &ca_path, "--duration", "6"]),
        Duration::from_secs(40),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}\n{}", tls.log());
    let video = watcher.video();
    let span = video.last().map_or(0, |l| l.ts - video[0].ts);
    assert!(span >= 4000, "the player saw {span} ms of video over RTMPS\n{err}\n{}", nginx.diagnostics());
    assert!(!err.contains("SECRETKEY"), "{err}");

    // The CA as a profile field.
    let home = TestDir::new("tls-home");
    let server = format!("rtmps://localhost:{}/live", tls.port());
    let out = tally_in_home(
        &["profiles", "add", "private", "--url", &server, "--ca-file", &ca_path, "--key-stdin"],
        home.path(),
        Some("tls-SECRETKEY-3\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let watcher = Watcher::start(&nginx.url("tls-SECRETKEY-3"));
    let out = tally_in_home(&args(&["stream", "--profile", "private"], &["--duration", "4"]), home.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!watcher.video().is_empty(), "nothing arrived through the profile's RTMPS destination\n{}", nginx.diagnostics());
}

// ---------------------------------------------------------------------------
// Several destinations
// ---------------------------------------------------------------------------

#[test]
fn two_destinations_one_server_killed_the_other_unaffected_and_it_reconnects() {
    let dir = TestDir::new("two-dest");
    let mut nginx = Nginx::start();
    let listen_out = dir.join("ffmpeg-listen.flv");
    let listener = FfmpegListen::start(free_port(), &listen_out);
    let stream = "two-SECRETKEY-dest";
    let watcher = Watcher::start(&nginx.url(stream));
    let seconds = 24;
    let duration = seconds.to_string();
    let tally = spawn_tally(&args(&["stream", &nginx.url(stream), &listener.url()], &["--duration", &duration]));
    assert!(
        watcher.wait_for(Duration::from_secs(30), |s| s.iter().filter(|s| s.kind == MediaKind::Video).count() > 60),
        "nginx's player saw nothing\n{}",
        tally.describe()
    );
    // Kill nginx the hard way; Tally keeps going to ffmpeg and retries nginx.
    nginx.kill();
    let killed_at = Instant::now();
    assert!(
        tally.wait_for_stderr("reconnecting", Duration::from_secs(15)),
        "no reconnection attempt after nginx died\n{}",
        tally.describe()
    );
    // Down for a few failed attempts.
    assert!(
        wait_until(Duration::from_secs(20), || tally.stderr_text().matches("could not connect").count() >= 3),
        "{}",
        tally.describe()
    );
    nginx.restart();
    let back_at = Instant::now();
    assert!(
        watcher.wait_for(Duration::from_secs(10), |s| s.iter().any(|s| s.kind == MediaKind::Video && s.at > back_at)),
        "the killed destination did not come back\n{}\n{}",
        tally.describe(),
        nginx.diagnostics()
    );
    let status = tally.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| panic!("tally did not finish\n{}", tally.describe()));
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    assert!(tally.stderr_text().contains("reconnected"), "{}", tally.describe());
    listener.wait_exit(Duration::from_secs(10));
    // The other destination got every frame, as if nothing happened.
    let info = probe(&listen_out);
    assert_eq!(info.video_pts().len(), seconds * 30, "ffmpeg -listen's frame count: {}", info.summary());
    assert_video_continuous(&info.video_pts(), 30.0, seconds as f64 - 0.1);
    eprintln!("nginx was down for {:.1} s", (back_at - killed_at).as_secs_f64());
}

#[test]
fn a_bad_key_fails_once_and_never_loops_while_the_other_destination_streams() {
    let dir = TestDir::new("bad-key");
    let nginx = NginxConfig::new().on_publish_allow(&["good-stream"]).start();
    let listen_out = dir.join("ffmpeg-listen.flv");
    let listener = FfmpegListen::start(free_port(), &listen_out);
    let out = run_tally(
        &args(&["stream", &nginx.url("wrong-SECRETKEY-bad"), &listener.url()], &["--duration", "8"]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a rejected destination makes the run fail:\n{err}");
    assert_eq!(err.matches("closed the connection in answer to publish").count(), 1, "reported once:\n{err}");
    assert!(!err.contains("reconnecting"), "{err}");
    assert_eq!(nginx.log_count("publish: name='wrong-"), 1, "exactly one attempt:\n{}", nginx.diagnostics());
    assert!(!err.contains("SECRETKEY"), "{err}");
    listener.wait_exit(Duration::from_secs(10));
    assert_eq!(probe(&listen_out).video_pts().len(), 8 * 30, "the good destination got everything");
}

// ---------------------------------------------------------------------------
// Network faults
// ---------------------------------------------------------------------------

/// Generous: the stream comes back in about a second (docs/PERFORMANCE.md,
/// `benches/recovery.rs`); this only bounds a test that would otherwise wait
/// for ever.
const RESUME_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_cut_connection_resumes_on_a_new_connection_from_a_keyframe() {
    let live = LiveThroughProxy::start("cut", &SMALL_SOURCE, &[]);
    let accepted = live.proxy.accepted();
    let at = Instant::now();
    live.proxy.cut();
    let resumed = live.wait_resumed(at, at, RESUME_TIMEOUT);
    eprintln!("cut: resumed {:.2} s after the cut", resumed.after.as_secs_f64());
    assert!(live.proxy.accepted() > accepted, "a new connection carried the stream");
    assert_restarted_on_keyframe(&live, &resumed, "cut");
    // Counted the moment it is live again, not when that session ends.
    assert!(
        wait_until(Duration::from_secs(5), || stats_lines(&live.tally)
            .last()
            .and_then(|s| s["outputs"][0]["reconnects"].as_u64())
            == Some(1)),
        "the stats never counted the reconnection while live: {:?}\n{}",
        stats_lines(&live.tally).last().map(|s| s["outputs"][0].clone()),
        live.tally.describe()
    );
    assert!(live.tally.stderr_text().contains("reconnected; live"), "{}", live.tally.describe());
    live.wait_media_secs(8.0, Duration::from_secs(20));
    live.finish(7.0);
}

#[test]
fn a_ten_second_stall_resumes_from_a_keyframe_once_the_path_heals() {
    let live = LiveThroughProxy::start("stall", &SMALL_SOURCE, &[]);
    let accepted = live.proxy.accepted();
    let (at, healed) = live.fault(PathState::Stalled, Duration::from_secs(10));
    let resumed = live.wait_resumed(at, healed, RESUME_TIMEOUT);
    eprintln!("stall: resumed {:.2} s after the path healed", resumed.after.as_secs_f64());
    assert_restarted_on_keyframe(&live, &resumed, "stall");
    // The stalled connection was given up on, not waited out.
    assert!(live.proxy.accepted() > accepted, "the stream did not move to a new connection");
    assert!(live.tally.stderr_text().contains("reconnecting"), "{}", live.tally.describe());
    live.wait_media_secs(18.0, Duration::from_secs(20));
    live.finish(17.0);
}

#[test]
fn twenty_seconds_of_refused_connections_then_it_resumes_from_a_keyframe() {
    let live = LiveThroughProxy::start("refuse", &SMALL_SOURCE, &[]);
    let (at, healed) = live.fault(PathState::Refusing, Duration::from_secs(20));
    let resumed = live.wait_resumed(at, healed, RESUME_TIMEOUT);
    eprintln!("refuse: resumed {:.2} s after the port reopened", resumed.after.as_secs_f64());
    assert_restarted_on_keyframe(&live, &resumed, "refused");
    let err = live.tally.stderr_text();
    assert!(err.contains("Connection refused"), "attempts met refusals:\n{err}");
    // Kept trying through the 20 s, with a backoff: more than one attempt.
    assert!(err.matches("could not connect").count() >= 2, "{err}");
    live.wait_media_secs(28.0, Duration::from_secs(20));
    live.finish(27.0);
}

/// The 60-second outage's memory bound, as a share of what an unbounded
/// queue would have held: everything encoded during the outage.
const OUTAGE_GROWTH_SHARE: f64 = 0.25;

#[test]
fn a_sixty_second_outage_keeps_memory_bounded_and_the_recording_whole() {
    // A source that really is ~2.5 Mbit/s: the test pattern compresses to a
    // tenth of that, and an unbounded queue of it would fit in any bound.
    let dir = TestDir::new("outage");
    let clip = noisy_clip(&dir, 4);
    let video = clip.video_arg();
    let source = ["--video", video.as_str(), "--loop", "--audio", "sine", "--video-bitrate", "2500"];
    let live = LiveThroughProxy::start_in(dir, "outage", &source, Some(clip.frames), &[]);
    live.wait_media_secs(6.0, Duration::from_secs(30));
    let pid = live.tally.pid();
    let before = rss_kib(pid);
    let at = Instant::now();
    let outage_from = unix_secs(std::time::SystemTime::now());
    live.proxy.set_state(PathState::Stalled);
    // Sample memory once a second through the outage (the samples pace it).
    let mut samples = Vec::new();
    while at.elapsed() < Duration::from_secs(60) {
        samples.push(rss_kib(pid));
        std::thread::sleep(Duration::from_secs(1));
    }
    live.proxy.set_state(PathState::Open);
    let healed = Instant::now();
    let outage_to = unix_secs(std::time::SystemTime::now());

    // What an unbounded queue would hold by the end: every byte encoded
    // during the outage (the encoder's own output rate, once a second).
    let stats = stats_lines(&live.tally);
    let during = stats_between(&stats, outage_from, outage_to);
    assert!(during.len() >= 50, "only {} stats lines during the 60 s outage", during.len());
    let encoded_kbit: f64 = during.iter().filter_map(|s| s["encoded_kbps"].as_f64()).sum();
    let unbounded_kib = encoded_kbit * 1000.0 / 8.0 / 1024.0;
    let mean_kbps = encoded_kbit / during.len() as f64;
    let before_outage = stats_between(&stats, outage_from - 5.0, outage_from);
    let live_kbps = before_outage.iter().filter_map(|s| s["encoded_kbps"].as_f64()).sum::<f64>() / before_outage.len().max(1) as f64;
    assert!(live_kbps >= 2000.0, "the source encodes at only {live_kbps:.0} kbit/s before the outage: not a 2.5 Mbit/s test");

    let peak = samples.iter().copied().max().unwrap_or(0);
    let first_half = samples[..samples.len() / 2].iter().copied().max().unwrap_or(0);
    let second_half = samples[samples.len() / 2..].iter().copied().max().unwrap_or(0);
    eprintln!(
        "outage: encoded {mean_kbps:.0} kbit/s on average ({live_kbps:.0} before): an unbounded queue would hold {unbounded_kib:.0} KiB; \
         RSS before {before} KiB, peak during {peak} KiB (first half {first_half}, second half {second_half})"
    );
    let growth = peak.saturating_sub(before) as f64;
    assert!(
        growth <= OUTAGE_GROWTH_SHARE * unbounded_kib,
        "RSS grew by {growth:.0} KiB during the outage, more than {:.0} % of the {unbounded_kib:.0} KiB an unbounded queue would hold",
        OUTAGE_GROWTH_SHARE * 100.0
    );
    let second_growth = second_half.saturating_sub(first_half) as f64;
    assert!(
        second_growth <= OUTAGE_GROWTH_SHARE * unbounded_kib / 2.0,
        "RSS kept growing: {first_half} then {second_half} KiB (an unbounded queue adds {:.0} KiB in 30 s)",
        unbounded_kib / 2.0
    );
    let resumed = live.wait_resumed(at, healed, RESUME_TIMEOUT);
    eprintln!("outage: resumed {:.2} s after the path healed", resumed.after.as_secs_f64());
    assert_restarted_on_keyframe(&live, &resumed, "outage");
    live.wait_media_secs(66.0, Duration::from_secs(30));
    live.finish(65.0);
}

// ---------------------------------------------------------------------------
// Congestion
// ---------------------------------------------------------------------------

/// The publisher's queue bound: audio is kept up to twice the 1.5 s of
/// video (`net::output_queue::QueueLimits::PUBLISHER`), plus a frame.
const PUBLISHER_QUEUE_BOUND_MS: u64 = 3_000 + 50;

#[test]
fn congestion_steps_the_bitrate_down_keeps_the_queue_bounded_and_steps_back_up() {
    let run = run_congestion();
    let f = run.figures();
    eprintln!(
        "congestion: lowest bitrate {} kbit/s over {} stats lines under the limit, {} steps down, {} up, recovered {:?}; \
         deepest queue {} ms; worst player delay {} ms; {} frames dropped in {} runs",
        f.lowest_kbps, f.lines_in_limit, f.steps_down, f.steps_up, run.recovered, f.max_queue_ms, f.worst_delay_ms, f.dropped, f.missing_runs
    );
    // About one line a second for the 30 s under the limit.
    assert!(f.lines_in_limit >= 25, "only {} stats lines fell while the path was limited\n{}", f.lines_in_limit, f.csv);
    assert!(f.lowest_kbps <= 800, "the bitrate only went down to {} kbit/s under a 1 Mbit/s path\n{}", f.lowest_kbps, f.csv);
    // Latency is kept by dropping, not queueing: the queue never held more
    // than its bound, and what it dropped is missing at the player, whole GOPs.
    assert!(f.max_queue_ms <= PUBLISHER_QUEUE_BOUND_MS, "the queue held {} ms of media\n{}", f.max_queue_ms, f.csv);
    assert!(f.steps_down >= 1 && f.dropped > 0 && f.missing_runs > 0, "congestion showed no effect\n{}", f.csv);
    assert!(f.bad_resumes.is_empty(), "video resumed without a keyframe at {:?} ms", f.bad_resumes);
    assert!(run.recovered.is_some() && f.steps_up >= 2, "the bitrate did not step back up to 2500 within 60 s\n{}", f.csv);
    // The congested destination had an encode of its own, judged from the
    // recording's pictures: every frame of the looped clip from the first
    // to the last, in order and on time (a lowered encode of noise skips
    // frames), and while the path was limited more video a second of its
    // media time than the path could carry.

    let frames = assert_recording_has_every_frame(&run.recording, SMALL_SIZE, SMALL_FPS, Some(run.clip_frames), 40 * 30);
    let limited = run.limited_at.duration_since(run.started).as_millis() as u32;
    let lifted = run.lifted_at.duration_since(run.started).as_millis() as u32;
    // Media time trails the run's clock by the start-up (a second or two):
    // these windows lie inside the limited span of the recording's timeline.
    let (from, to) = (limited + 2_000, lifted.saturating_sub(5_000));
    let during: Vec<(u32, f64)> =
        video_kbps_by_media_time(&run.recording, 2_000).into_iter().filter(|(t, _)| *t >= from && t + 2_000 <= to).collect();
    eprintln!("congestion: the recording has all {frames} frames; its video while limited: {during:.0?} kbit/s");
    assert!(during.len() >= 10, "too few windows of the recording fall in the limit ({from}..{to} ms): {during:?}");
    let path_kbps = (CONGESTION_LIMIT_BPS / 1000) as f64;
    assert!(
        during.iter().all(|(_, k)| *k > path_kbps),
        "the recording went down with the destination: {during:.0?} kbit/s, the path carries {path_kbps}"
    );
    assert!(!run.log.contains("SECRETKEY"));
}

// ---------------------------------------------------------------------------
// The key never shows
// ---------------------------------------------------------------------------

#[test]
fn at_trace_level_across_connect_error_and_reconnect_the_key_shows_nowhere() {
    const GOOD: &str = "sk_live_TRACEKEY_0123456789";
    const BAD: &str = "sk_live_BADKEY_9876543210";
    let home = TestDir::new("trace-home");
    let good_nginx = Nginx::start();
    let proxy = FaultProxy::start(good_nginx.port());
    let bad_nginx = NginxConfig::new().on_publish_allow(&["nobody"]).start();
    let add = tally_in_home(
        &["profiles", "add", "show", "--url", &format!("rtmp://127.0.0.1:{}/live", proxy.port()), "--dest", "main", "--key-stdin"],
        home.path(),
        Some(&format!("{GOOD}\n")),
    );
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let add = tally_in_home(
        &["profiles", "add-destination", "show", "--url", &format!("rtmp://127.0.0.1:{}/live", bad_nginx.port()), "--dest", "backup", "--key-stdin"],
        home.path(),
        Some(&format!("{BAD}\n")),
    );
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));

    let watcher = Watcher::start(&good_nginx.url(GOOD));
    let mut cmd = tally_in_home_cmd(&args(&["stream", "--profile", "show"], &["--stats", "--duration", "12"]), home.path());
    cmd.env("RUST_LOG", "trace");
    let tally = Proc::spawn("tally", &mut cmd);
    assert!(watcher.wait_for(Duration::from_secs(30), |s| s.len() > 30), "not live\n{}", tally.describe());
    proxy.cut();
    assert!(tally.wait_for_stderr("reconnected", Duration::from_secs(15)), "{}", tally.describe());
    let status = tally.wait_timeout(Duration::from_secs(60)).unwrap_or_else(|| panic!("{}", tally.describe()));
    assert_eq!(status.code(), Some(1), "the rejected backup makes the run fail\n{}", tally.describe());

    let (stdout, stderr) = (tally.stdout_text(), strip_ansi(&tally.stderr_text()));
    assert!(stderr.contains("in answer to publish"), "the rejection was reported:\n{}", tail(&stderr, 40));
    // The very lines that carry a key were written, with the key redacted:
    // the URL at each attempt, and the commands that name the stream.
    for port in [proxy.port(), bad_nginx.port()] {
        let line = format!("connecting url=rtmp://127.0.0.1:{port}/live/<redacted>");
        assert!(stderr.contains(&line), "no '{line}' line:\n{}", tail(&stderr, 40));
    }
    let publishes = trace_lines(&stderr, "rtmp: sending", "name: \"publish\"");
    // Main, backup, and main again after the cut.
    assert!(publishes.len() >= 3, "{} traced publish commands:\n{}", publishes.len(), tail(&stderr, 60));
    for line in &publishes {
        assert!(line.contains("args: [String(\"<redacted>\"), String(\"live\")]"), "{line}");
    }
    for name in ["releaseStream", "FCPublish", "FCUnpublish"] {
        let lines = trace_lines(&stderr, "rtmp: sending", &format!("name: \"{name}\""));
        assert!(!lines.is_empty() && lines.iter().all(|l| l.contains("String(\"<redacted>\")")), "{name}: {lines:?}");
    }
    for key in [GOOD, BAD] {
        for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(!text.contains(key), "{what} shows a key");
            // Nor its distinctive middle, in case something cut it up.
            assert!(!text.contains(&key[8..20]), "{what} shows part of a key");
        }
    }
    let profiles = std::fs::read_to_string(home.join(".config/tally/profiles.toml")).expect("profiles.toml");
    assert!(!profiles.contains(GOOD) && !profiles.contains(BAD), "{profiles}");
    for entry in walk(home.path()) {
        let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "keys.toml" {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&entry).expect("keys.toml").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the key file is private");
            continue;
        }
        let text = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains(GOOD) && !text.contains(BAD), "{} holds a key", entry.display());
    }
}

/// The TRACE lines of `log` that contain both `what` and `detail`.
fn trace_lines<'a>(log: &'a str, what: &str, detail: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(" TRACE ") && l.contains(what) && l.contains(detail)).collect()
}

#[test]
fn at_trace_level_tally_serve_never_shows_a_publish_key() {
    const KEY: &str = "srv_PUBLISHKEY_0123456789";
    let mut cmd = Command::new(tally_bin());
    let server = {
        let (rtmp_port, http_port) = (free_port(), free_port());
        let (listen, http) = (format!("127.0.0.1:{rtmp_port}"), format!("127.0.0.1:{http_port}"));
        cmd.args(["serve", "--listen", &listen, "--http", &http, "--publish-key", KEY]).env("RUST_LOG", "trace");
        let proc = Proc::spawn("tally serve", &mut cmd);
        assert!(wait_until(READY_TIMEOUT, || is_listening(rtmp_port) || proc.has_exited()), "{}", proc.describe());
        (proc, rtmp_port)
    };
    let (serve, port) = server;
    // Tally with the key as a query, ffmpeg with it as a suffix; then one
    // with a wrong key, refused.
    let url = |name: &str| format!("rtmp://127.0.0.1:{port}/live/{name}");
    let out = run_tally(&args(&["stream", &url(&format!("cam?key={KEY}"))], &["--duration", "2"]), Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ff = ffmpeg_publish_live(&url(&format!("cam2-{KEY}")), "320x180", 2);
    ff.wait_success(Duration::from_secs(30));
    let wrong = run_tally(&args(&["stream", &url("cam?key=srv_WRONGKEY_55555")], &["--duration", "1"]), Duration::from_secs(30));
    assert_eq!(wrong.status.code(), Some(1), "{}", String::from_utf8_lossy(&wrong.stderr));
    serve.signal("INT");
    serve.wait_timeout(Duration::from_secs(20));

    let log = strip_ansi(&serve.stderr_text());
    // The commands that carry the key were traced, redacted.
    let publishes = trace_lines(&log, "rtmp: received", "name: \"publish\"");
    assert_eq!(publishes.len(), 3, "traced publish commands:\n{}", tail(&log, 60));
    for line in &publishes {
        assert!(line.contains("args: [String(\"<redacted>\"), String(\"live\")]"), "{line}");
    }
    for name in ["releaseStream", "FCPublish"] {
        let lines = trace_lines(&log, "rtmp: received", &format!("name: \"{name}\""));
        assert!(lines.len() >= 3 && lines.iter().all(|l| l.contains("String(\"<redacted>\")")), "{name}: {lines:?}");
    }
    // ...and so were the answers, and the streams by their plain names.
    let statuses = trace_lines(&log, "rtmp: sending", "name: \"onStatus\"");
    assert_eq!(statuses.iter().filter(|l| l.contains("NetStream.Publish.Start")).count(), 2, "{statuses:#?}");
    assert_eq!(statuses.iter().filter(|l| l.contains("NetStream.Publish.Denied")).count(), 1, "{statuses:#?}");
    assert!(log.contains("stream=cam ") && log.contains("stream=cam2 "), "{}", tail(&log, 60));
    for secret in [KEY, &KEY[4..18], "srv_WRONGKEY_55555"] {
        assert!(!log.contains(secret), "the server's log shows '{secret}'");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}
