//! How fast a destination comes back, and how far behind a viewer falls:
//! the fault scenarios of `tests/it/destinations.rs`, timed. Tally publishes a
//! 640x360@30 stream through the fault proxy to a private nginx-rtmp; a
//! viewer on nginx times every frame; `--record` writes a file alongside.
//!
//! - cut, 10 s stall, 20 s of refused connections: from the path healing to
//!   the first frame at the viewer with no more delay than before the fault
//!   (+1 s), `RUNS` times each (default 3);
//! - a 60 s stall with the 2.5 Mbit/s noise clip: the same, plus Tally's
//!   RSS before and at its peak;
//! - congestion: 30 s at 1 Mbit/s under a 2.5 Mbit/s stream (the noise
//!   clip): first step down, lowest bitrate, worst viewer delay over its
//!   pre-fault baseline, frames dropped, time back at 2500 kbit/s; the last
//!   run's CSV goes to `TALLY_CONGESTION_CSV` (`make plot` draws it).
//!
//! - `tally check --publish-test 16` through the proxy limited to 1 Mbit/s:
//!   the sustained upload it reports, `RUNS` times (the test only holds it
//!   to at most the path's limit).
//!
//! `cargo bench --bench recovery` prints Markdown tables for
//! docs/PERFORMANCE.md; `cargo bench --bench recovery -- upload` only the
//! publish test's. Under `cargo test` it times one cut (the tests
//! judge the behaviour; this measures it).

#[path = "../tests/common/mod.rs"]
mod common;

use common::live::*;
use common::proxy::{FaultProxy, PathState};
use common::{NginxConfig, TestDir, run_tally};
use std::time::{Duration, Instant};

/// Generous: a scenario that does not come back in this long is broken.
const RESUME_TIMEOUT: Duration = Duration::from_secs(60);

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn range(v: &[Duration]) -> String {
    let min = v.iter().min().copied().unwrap_or_default();
    let max = v.iter().max().copied().unwrap_or_default();
    format!("{}–{} s", secs(min), secs(max))
}

/// One fault scenario: time from healing to live again.
fn fault(label: &str, state: Option<PathState>, hold: Duration) -> Duration {
    let live = LiveThroughProxy::start(label, &SMALL_SOURCE, &[]);
    let (at, healed) = match state {
        Some(s) => live.fault(s, hold),
        None => {
            let at = Instant::now();
            live.proxy.cut();
            (at, at)
        }
    };
    let resumed = live.wait_resumed(at, healed, RESUME_TIMEOUT);
    live.wait_media_secs(3.0, Duration::from_secs(30));
    live.finish(1.0);
    resumed.after
}

/// The 60 s outage with the noise clip: (resumed after, RSS before, RSS peak) in KiB.
fn outage() -> (Duration, u64, u64) {
    let dir = TestDir::new("outage-bench");
    let clip = noisy_clip(&dir, 4);
    let video = clip.video_arg();
    let source = ["--video", video.as_str(), "--loop", "--audio", "sine", "--video-bitrate", "2500"];
    let live = LiveThroughProxy::start_in(dir, "outage", &source, Some(clip.frames), &[]);
    live.wait_media_secs(6.0, Duration::from_secs(30));
    let pid = live.tally.pid();
    let before = rss_kib(pid);
    let at = Instant::now();
    live.proxy.set_state(PathState::Stalled);
    let mut peak = before;
    while at.elapsed() < Duration::from_secs(60) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_secs(1));
    }
    live.proxy.set_state(PathState::Open);
    let healed = Instant::now();
    let resumed = live.wait_resumed(at, healed, RESUME_TIMEOUT);
    live.wait_media_secs(66.0, Duration::from_secs(30));
    live.finish(60.0);
    (resumed.after, before, peak)
}

/// `tally check --publish-test 16` through 1 Mbit/s: the upload it reports, kbit/s.
fn upload_through_one_megabit() -> f64 {
    // nginx acknowledges every 5 MB by default: more than the test sends.
    let nginx = NginxConfig::new().server_directive("ack_window 250000;").start();
    let proxy = FaultProxy::start(nginx.port());
    proxy.limit_rate(1_000_000);
    let url = proxy.url("live", "upload-bench");
    let out = run_tally(&["check", "--json", &url, "--publish-test", "16", "--video-bitrate", "2500", "--size", "640x360"], Duration::from_secs(120));
    let line = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
    let report: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    report["upload_kbps"].as_f64().unwrap_or_else(|| panic!("no upload_kbps: {report}"))
}

fn upload_table(runs: usize) {
    let figures: Vec<f64> = (0..runs).map(|_| upload_through_one_megabit()).collect();
    let shown: Vec<String> = figures.iter().map(|k| format!("{k:.0}")).collect();
    println!("| path | runs | `tally check --publish-test 16` reports (kbit/s) |");
    println!("|---|---|---|");
    println!("| 1 Mbit/s (the test proxy) | {runs} | {} |", shown.join(", "));
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    if full && std::env::args().any(|a| a == "upload") {
        upload_table(runs);
        return;
    }
    if !full {
        let took = fault("cut-smoke", None, Duration::ZERO);
        println!("recovery smoke: a cut stream was live again {} s after the cut", secs(took));
        return;
    }
    let mut rows = Vec::new();
    for (label, state, hold, what) in [
        ("cut", None, Duration::ZERO, "cut (RST both ways)"),
        ("stall", Some(PathState::Stalled), Duration::from_secs(10), "10 s stall (nothing moves, nothing fails)"),
        ("refuse", Some(PathState::Refusing), Duration::from_secs(20), "20 s of refused connections"),
    ] {
        let times: Vec<Duration> = (0..runs).map(|_| fault(label, state, hold)).collect();
        eprintln!("{what}: {times:?}");
        rows.push(format!("| {what} | {runs} | {} |", range(&times)));
    }
    let (took, before, peak) = outage();
    rows.push(format!("| 60 s stall, 2.5 Mbit/s noise clip | 1 | {} s (RSS {:.1} MiB before, +{:.1} MiB at the peak) |", secs(took), before as f64 / 1024.0, peak.saturating_sub(before) as f64 / 1024.0));
    println!("| fault | runs | live again after the path healed |");
    println!("|---|---|---|");
    for r in rows {
        println!("{r}");
    }

    println!();
    println!("| run | first step down after the limit | lowest video bitrate | deepest queue | worst viewer delay over baseline | frames dropped | back at 2500 kbit/s after the lift |");
    println!("|---|---|---|---|---|---|---|");
    let congestion_runs = runs.min(2);
    for i in 0..congestion_runs {
        let run = run_congestion();
        let f = run.figures();
        let first_down = run
            .stats
            .windows(2)
            .find(|w| w[1]["outputs"][0]["video_kbps"].as_u64() < w[0]["outputs"][0]["video_kbps"].as_u64())
            .and_then(|w| w[1]["wall"].as_f64())
            .map_or("none".to_string(), |t| format!("{:.0} s", t - run.limit_from));
        let back = run.recovered.map_or("not within 60 s".to_string(), |d| format!("{:.1} s", d.as_secs_f64()));
        println!(
            "| {} | {first_down} | {} kbit/s | {} ms | {} ms | {} ({} runs, {} resumed off a keyframe) | {back} |",
            i + 1,
            f.lowest_kbps,
            f.max_queue_ms,
            f.worst_delay_ms,
            f.dropped,
            f.missing_runs,
            f.bad_resumes.len()
        );
        if i + 1 == congestion_runs
            && let Some(out) = std::env::var_os("TALLY_CONGESTION_CSV")
        {
            std::fs::write(&out, &f.csv).expect("write TALLY_CONGESTION_CSV");
        }
    }

    println!();
    upload_table(runs);
}
