//! A/V sync, measured the way a viewer would notice it: the test pattern
//! flashes white and the tone beeps on every whole second of source time;
//! ffmpeg decodes what a player receives, and the flash and the beep must
//! line up within one frame (33 ms at 30 fps) — at the start and after 30
//! minutes of media (produced with `--fast`, so the test takes about a
//! minute), both through nginx-rtmp and in a `tally record` file.

use crate::common;

use common::media::{assert_av_sync, ffmpeg_read_until_end};
use common::*;
use std::time::Duration;

/// One frame at 30 fps.
const ONE_FRAME: f64 = 1.0 / 30.0;
/// Media length: 30 minutes.
const LONG_SECS: f64 = 1800.0;
/// Seconds of media examined at each end.
const WINDOW: f64 = 10.0;

/// Smaller than the default so 30 minutes encode in well under a minute;
/// sync does not depend on the picture size.
const SIZE: &str = "640x360";

fn check_both_ends(path: &std::path::Path, what: &str) {
    let info = probe(path);
    eprintln!("{what}: {}", info.summary());
    let video_end = info.video_packets.last().map(|p| p.pts).unwrap_or(0.0);
    let start = info.video_packets.first().map(|p| p.pts).unwrap_or(0.0);
    assert!(video_end - start > LONG_SECS - 2.0 * WINDOW, "{what}: only {:.0} s of video", video_end - start);
    let early = assert_av_sync(path, start, WINDOW, 8, ONE_FRAME, &format!("{what}, start"));
    let late = assert_av_sync(path, video_end - WINDOW, WINDOW, 8, ONE_FRAME, &format!("{what}, after 30 min"));
    // No drift between the two ends either.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let drift = mean(&late) - mean(&early);
    eprintln!("{what}: mean offset {:+.1} ms at the start, {:+.1} ms after 30 min", mean(&early) * 1000.0, mean(&late) * 1000.0);
    assert!(drift.abs() < ONE_FRAME / 2.0, "{what}: A/V drifted {:+.1} ms over 30 minutes", drift * 1000.0);
}

#[test]
fn flash_and_beep_line_up_through_nginx_at_start_and_after_30_minutes() {
    let _serial = realtime_lock();
    require("nginx");
    let nginx = Nginx::start();
    let dir = TestDir::new("avsync-nginx");
    let out = dir.join("read.flv");
    let url = nginx.url("sync");
    // The player joins first so it receives the stream from the first frame.
    let reader = ffmpeg_read_until_end(&url, 5, &out);
    nginx.wait_players("sync", 1, Duration::from_secs(10));
    let secs = format!("{LONG_SECS}");
    let tally = spawn_tally(&[
        "stream", &url, "--video", "test", "--audio", "sine", "--size", SIZE, "--video-bitrate", "800", "--duration", &secs, "--fast",
    ]);
    tally.wait_success(Duration::from_secs(600));
    reader.wait_success(Duration::from_secs(60));
    check_both_ends(&out, "through nginx-rtmp");
}

#[test]
fn flash_and_beep_line_up_in_a_recording_at_start_and_after_30_minutes() {
    let _serial = realtime_lock();
    let dir = TestDir::new("avsync-record");
    let out = dir.join("rec.flv");
    let out_arg = out.to_string_lossy().into_owned();
    let secs = format!("{LONG_SECS}");
    let run = run_tally(
        &["record", &out_arg, "--video", "test", "--audio", "sine", "--size", SIZE, "--video-bitrate", "800", "--duration", &secs, "--fast"],
        Duration::from_secs(600),
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    check_both_ends(&out, "tally record");
}
