//! Each destination at its own quality, against real nginx-rtmp servers:
//! a congested destination gets an encode of its own and the others keep
//! theirs, then it rejoins; a profile with two sizes makes two encodes
//! (ffprobe reads each player's size and bitrate), equal settings one; a
//! CPU budget too small for another encoder falls back to sharing and says
//! so.
//!
//! Nothing here asserts how fast anything happens: each step waits for its
//! event with a generous timeout and judges what arrived.

use crate::common;

use common::live::*;
use common::proxy::FaultProxy;
use common::rtmp_client::{Seen, Watcher};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

/// What each destination aims at in the congestion run, kbit/s.
const FULL_KBPS: u64 = 2500;

/// Received video kbit/s in each whole second of `video` (by arrival).
fn per_second_kbps(video: &[Seen], from: Instant) -> Vec<(f64, f64)> {
    let mut bins: Vec<f64> = Vec::new();
    for s in video {
        let Some(t) = s.at.checked_duration_since(from) else { continue };
        let i = t.as_secs() as usize;
        if bins.len() <= i {
            bins.resize(i + 1, 0.0);
        }
        bins[i] += s.len as f64 * 8.0 / 1000.0;
    }
    bins.into_iter().enumerate().map(|(i, k)| (i as f64, k)).collect()
}

fn rendition_of(s: &Value, output: usize) -> &str {
    s["outputs"][output]["rendition"].as_str().unwrap_or("")
}

fn rendition_count(s: &Value) -> usize {
    s["renditions"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_congested_destination_gets_its_own_encode_and_the_other_keeps_its_bitrate_then_it_rejoins() {
    let _rt = realtime_lock();
    let dir = TestDir::new("renditions-congestion");
    let clip = noisy_clip(&dir, 4);
    let (thin, clear) = (Nginx::start(), Nginx::start());
    let proxy = FaultProxy::start(thin.port());
    let (thin_url, clear_url) = (proxy.url("live", "thin"), clear.url("clear"));
    let (thin_player, clear_player) = (Watcher::start(&thin.url("thin")), Watcher::start(&clear.url("clear")));
    let video = clip.video_arg();
    let kbps = FULL_KBPS.to_string();
    let tally = spawn_tally(&[
        "stream", &thin_url, &clear_url, "--video", &video, "--loop", "--audio", "sine", "--video-bitrate", &kbps, "--stats-json",
    ]);
    let started = Instant::now();
    let both_live = wait_until(Duration::from_secs(30), || {
        let l = stats_lines(&tally);
        l.last().is_some_and(|s| s["outputs"][0]["state"] == "live" && s["outputs"][1]["state"] == "live")
    });
    assert!(both_live, "the destinations did not go live\n{}", tally.describe());
    let shared_at_start = stats_lines(&tally).last().map(|s| (rendition_count(s), rendition_of(s, 0).to_string(), rendition_of(s, 1).to_string()));
    assert!(
        matches!(&shared_at_start, Some((1, a, b)) if a == b && a == "r1"),
        "two destinations with the same settings should share one encode: {shared_at_start:?}"
    );
    // Clear air, so both players have a baseline.
    assert!(clear_player.wait_for(Duration::from_secs(20), |s| s.iter().any(|s| s.at > started + Duration::from_secs(6))));

    proxy.limit_rate(CONGESTION_LIMIT_BPS);
    let limit_from = unix_secs(SystemTime::now());
    let limited_at = Instant::now();
    // The thin one splits off onto its own rendition and steps down.
    let split = wait_until(Duration::from_secs(40), || {
        stats_lines(&tally).last().is_some_and(|s| {
            rendition_of(s, 0) != rendition_of(s, 1) && s["outputs"][0]["video_kbps"].as_u64().is_some_and(|k| k <= 1000)
        })
    });
    assert!(split, "the congested destination never got a rendition of its own at <= 1000 kbit/s\n{}", tally.describe());
    // The limit stays on until the clear destination's player has received
    // 20 s more of the stream's media time: it keeps flowing meanwhile.
    let ts_at_limit = clear_player.video().iter().filter(|s| s.at <= limited_at).map(|s| s.ts).max().unwrap_or(0);
    assert!(
        clear_player.wait_for(Duration::from_secs(60), |seen| seen
            .iter()
            .any(|s| s.kind == tally::rtmp::MediaKind::Video && !s.config && s.ts >= ts_at_limit + 20_000)),
        "the clear destination's player did not receive 20 s of media while the other path was limited\n{}",
        tally.describe()
    );
    proxy.limit_rate(0);
    let limit_to = unix_secs(SystemTime::now());
    let lifted_at = Instant::now();
    let rejoined = wait_until(Duration::from_secs(90), || {
        stats_lines(&tally).last().is_some_and(|s| rendition_count(s) == 1 && rendition_of(s, 0) == rendition_of(s, 1))
    });
    assert!(rejoined, "the destination did not rejoin the shared encode within 90 s of the lift\n{}", tally.describe());
    let rejoin_secs = lifted_at.elapsed().as_secs_f64();
    // A few seconds on the shared encode again, seen by the player.
    let after = Instant::now();
    assert!(thin_player.wait_for(Duration::from_secs(20), |s| s.iter().any(|s| s.at > after + Duration::from_secs(4))));
    tally.signal("INT");
    let status = tally.wait_timeout(Duration::from_secs(20)).unwrap_or_else(|| panic!("tally did not stop\n{}", tally.describe()));
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    let stats = stats_lines(&tally);
    let log = tally.stderr_text();

    // The clear destination: its rendition stayed at 2500 kbit/s in every
    // line, its player received every frame of the run (timestamps 1/30 s
    // apart on one connection: a lowered encode of the noise would skip
    // some), and in every 3 s of media time more video than the thin path
    // could carry. What it received per second of the wall clock is a
    // figure for `make plot-renditions` (docs/PERFORMANCE.md), printed here.
    let clear_rate: Vec<u64> = stats.iter().filter_map(|s| s["outputs"][1]["video_kbps"].as_u64()).collect();
    assert!(clear_rate.iter().all(|&k| k == FULL_KBPS), "the clear destination's encode went down: {clear_rate:?}");
    let clear_video = clear_player.video();
    assert!(clear_video.iter().all(|s| s.connection == 0), "the clear destination's player was reconnected");
    for w in clear_video.windows(2) {
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!((33..=34).contains(&step), "the clear player's video went from {} ms to {} ms: frames are missing", w[0].ts, w[1].ts);
    }
    let first_ts = clear_video.first().map_or(0, |s| s.ts);
    let mut by_media: Vec<f64> = Vec::new();
    for s in &clear_video {
        let i = ((s.ts - first_ts) / 3000) as usize;
        if by_media.len() <= i {
            by_media.resize(i + 1, 0.0);
        }
        by_media[i] += s.len as f64 * 8.0 / 3000.0;
    }
    by_media.pop(); // the last window is cut short by the stop
    let path_kbps = (CONGESTION_LIMIT_BPS / 1000) as f64;
    assert!(by_media.len() >= 10, "too short a run to judge: {by_media:.0?}");
    assert!(
        by_media.iter().all(|&k| k > path_kbps),
        "the clear player got a lowered encode in some 3 s of media time: {by_media:.0?} kbit/s"
    );
    let clear_seen = per_second_kbps(&clear_player.video(), started);
    let thin_seen = per_second_kbps(&thin_player.video(), started);
    let end = clear_seen.len().saturating_sub(1);
    let windows: Vec<f64> = (4..end.saturating_sub(3)).step_by(3).map(|i| clear_seen[i..i + 3].iter().map(|(_, k)| k).sum::<f64>() / 3.0).collect();
    let thin_during: Vec<f64> = thin_seen
        .iter()
        .filter(|(t, _)| *t >= limited_at.duration_since(started).as_secs_f64() + 5.0 && *t < lifted_at.duration_since(started).as_secs_f64())
        .map(|(_, k)| *k)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    eprintln!(
        "renditions: clear player {:.0} kbit/s on average (lowest 3-s window {:.0}), thin player {:.0} kbit/s while limited; rejoined {rejoin_secs:.1} s after the lift",
        mean(&windows),
        windows.iter().copied().fold(f64::MAX, f64::min),
        mean(&thin_during)
    );
    // What the proxy lets through: at most its limit, over the limited span.
    assert!(mean(&thin_during) <= path_kbps, "the thin path carried {:.0} kbit/s of video under a 1 Mbit/s limit?", mean(&thin_during));
    // Both players' video only moves forward, and every hole in the thin
    // one's (a queue's drop, a switch) resumes on a keyframe.
    assert_video_monotonic(&thin_player.video());
    assert_video_monotonic(&clear_player.video());
    for w in thin_player.video().windows(2) {
        assert!(w[1].ts.wrapping_sub(w[0].ts) <= 400 || w[1].keyframe, "thin video resumed at {} ms without a keyframe", w[1].ts);
    }
    // On its own encode it climbed back step by step before rejoining.
    let thin_encode: Vec<u64> = stats
        .iter()
        .filter(|s| s["wall"].as_f64().is_some_and(|w| w >= limit_to) && rendition_of(s, 0) != rendition_of(s, 1))
        .filter_map(|s| s["outputs"][0]["video_kbps"].as_u64())
        .collect();
    let ups = thin_encode.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(ups >= 2, "its own encode did not step back up before the rejoin: {thin_encode:?}");
    assert!(log.contains("gets a rendition of its own") && log.contains("back on r1"), "the log does not tell the split and the rejoin:\n{}", tail(&log, 40));

    if let Ok(path) = std::env::var("TALLY_RENDITIONS_CSV") {
        let mut csv = String::from("t_s,path_limit_kbps,clear_received_kbps,thin_received_kbps,clear_encode_kbps,thin_encode_kbps,renditions\n");
        let t0 = unix_secs(SystemTime::now()) - started.elapsed().as_secs_f64();
        for s in &stats {
            let t = s["wall"].as_f64().unwrap_or(0.0) - t0;
            // The second that ended at this line, as the stats' own rates are.
            let i = (t.floor() as usize).saturating_sub(1);
            let wall = s["wall"].as_f64().unwrap_or(0.0);
            let limit = if wall >= limit_from && wall < limit_to { CONGESTION_LIMIT_BPS / 1000 } else { 0 };
            csv.push_str(&format!(
                "{t:.1},{limit},{:.0},{:.0},{},{},{}\n",
                clear_seen.get(i).map_or(0.0, |x| x.1),
                thin_seen.get(i).map_or(0.0, |x| x.1),
                s["outputs"][1]["video_kbps"].as_u64().unwrap_or(0),
                s["outputs"][0]["video_kbps"].as_u64().unwrap_or(0),
                rendition_count(s)
            ));
        }
        std::fs::write(&path, csv).expect("write the CSV");
    }
}

#[test]
fn with_no_cpu_to_spare_a_congested_destination_shares_the_encode_and_says_so() {
    let dir = TestDir::new("renditions-budget");
    let clip = noisy_clip(&dir, 4);
    let (thin, clear) = (Nginx::start(), Nginx::start());
    let proxy = FaultProxy::start(thin.port());
    let (thin_url, clear_url) = (proxy.url("live", "thin"), clear.url("clear"));
    let video = clip.video_arg();
    // 1 % of a core: no second encoder fits.
    let tally = spawn_tally(&[
        "stream", &thin_url, &clear_url, "--video", &video, "--loop", "--audio", "sine", "--video-bitrate", "2500", "--stats-json",
        "--encoder-budget", "1",
    ]);
    let both_live = wait_until(Duration::from_secs(30), || {
        stats_lines(&tally).last().is_some_and(|s| s["outputs"][0]["state"] == "live" && s["outputs"][1]["state"] == "live")
    });
    assert!(both_live, "the destinations did not go live\n{}", tally.describe());
    proxy.limit_rate(CONGESTION_LIMIT_BPS);
    let fell_back = wait_until(Duration::from_secs(40), || {
        stats_lines(&tally).last().is_some_and(|s| {
            s["outputs"][0]["note"].as_str().is_some_and(|n| n.contains("budget"))
                && s["outputs"][1]["video_kbps"].as_u64().is_some_and(|k| k < 2500)
        })
    });
    assert!(fell_back, "no fallback to the shared, lowered encode was reported\n{}", tally.describe());
    tally.signal("INT");
    let status = tally.wait_timeout(Duration::from_secs(20)).unwrap_or_else(|| panic!("tally did not stop\n{}", tally.describe()));
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    let stats = stats_lines(&tally);
    assert!(stats.iter().all(|s| rendition_count(s) <= 1), "a second encode was started beyond the budget");
    let last_note = stats.iter().rev().find_map(|s| s["renditions"][0]["fallback"].as_str().map(str::to_string));
    assert!(last_note.is_some_and(|n| n.contains("% budget")), "the rendition does not say why it is shared");
    let log = tally.stderr_text();
    assert!(log.contains("shares r1 at its lowest bitrate"), "the log does not say so:\n{}", tail(&log, 30));
    proxy.limit_rate(0);
}

/// A profile with YouTube at 1920x1080 6000 kbit/s and Twitch at its own
/// 1280x720 3000 kbit/s (presets, pointed at a local nginx-rtmp).
fn youtube_and_twitch(home: &std::path::Path, nginx: &Nginx, twitch_own: &[&str]) {
    let server = format!("rtmp://127.0.0.1:{}/live", nginx.port());
    let out = tally_in_home(
        &["profiles", "add", "multi", "--preset", "youtube", "--url", &server, "--dest", "yt", "--key-stdin", "--size", "1920x1080", "--video-bitrate", "6000", "--fps", "30"],
        home,
        Some("ytkey\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut args = vec!["profiles", "add-destination", "multi", "--preset", "twitch", "--url", &server, "--dest", "tw", "--key-stdin"];
    args.extend_from_slice(twitch_own);
    let out = tally_in_home(&args, home, Some("twkey\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Video size and kbit/s of a recorded stream (ffprobe over its packets).
fn size_and_kbps(path: &std::path::Path) -> (u32, u32, f64) {
    let out = std::process::Command::new(require("ffprobe"))
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height", "-show_entries", "packet=pts_time,size", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let stream = &v["streams"][0];
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    let times: Vec<f64> = packets.iter().filter_map(|p| p["pts_time"].as_str()?.parse().ok()).collect();
    let bytes: u64 = packets.iter().filter_map(|p| p["size"].as_str()?.parse::<u64>().ok()).sum();
    let span = times.iter().copied().fold(f64::MIN, f64::max) - times.iter().copied().fold(f64::MAX, f64::min);
    (stream["width"].as_u64().unwrap_or(0) as u32, stream["height"].as_u64().unwrap_or(0) as u32, bytes as f64 * 8.0 / 1000.0 / span.max(1e-3))
}

/// One second of 1080p30 that needs its bitrate without defeating the
/// encoder (light noise: openh264 codes it at 6000 kbit/s without skipping,
/// and its 720p scaling at 3000), looped by the test.
fn light_noise_1080p(dir: &TestDir) -> std::path::PathBuf {
    y4m_clip(dir, "light-noise-1080p.y4m", "testsrc2=size=1920x1080:rate=30,noise=alls=6:allf=t+u", 1)
}

#[test]
fn a_profile_with_two_sizes_makes_two_encodes_each_player_gets_its_own_and_equal_settings_share_one() {
    let _rt = realtime_lock();
    let dir = TestDir::new("renditions-profile");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let nginx = Nginx::start();
    youtube_and_twitch(&home, &nginx, &["--size", "1280x720", "--video-bitrate", "3000"]);
    let (yt_file, tw_file) = (dir.join("yt.flv"), dir.join("tw.flv"));
    let player = |stream: &str, out: &std::path::Path| {
        Proc::spawn(
            "ffmpeg",
            std::process::Command::new(require("ffmpeg"))
                .args(["-hide_banner", "-nostdin", "-v", "error", "-rw_timeout", "20000000", "-i", &nginx.url(stream)])
                .args(["-t", "8", "-map", "0", "-c", "copy", "-f", "flv", "-y"])
                .arg(out),
        )
    };
    let (yt, tw) = (player("ytkey", &yt_file), player("twkey", &tw_file));
    let clip = format!("y4m:{}", light_noise_1080p(&dir).display());
    let tally = Proc::spawn(
        "tally",
        &mut tally_in_home_cmd(&["stream", "--profile", "multi", "--video", &clip, "--loop", "--audio", "sine", "--duration", "14", "--stats-json"], &home),
    );
    yt.wait_success(Duration::from_secs(60));
    tw.wait_success(Duration::from_secs(60));
    tally.wait_success(Duration::from_secs(60));
    let stats = stats_lines(&tally);
    let busiest = stats.iter().map(rendition_count).max().unwrap_or(0);
    assert_eq!(busiest, 2, "YouTube 1080p and Twitch 720p should be two encodes\n{}", tally.describe());
    let (yw, yh, ykbps) = size_and_kbps(&yt_file);
    let (tw_w, tw_h, tkbps) = size_and_kbps(&tw_file);
    eprintln!("renditions: YouTube player {yw}x{yh} {ykbps:.0} kbit/s, Twitch player {tw_w}x{tw_h} {tkbps:.0} kbit/s");
    assert_eq!((yw, yh), (1920, 1080));
    assert_eq!((tw_w, tw_h), (1280, 720));
    assert!((6000.0 * 0.75..=6000.0 * 1.25).contains(&ykbps), "YouTube's player got {ykbps:.0} kbit/s, not ~6000");
    assert!((3000.0 * 0.75..=3000.0 * 1.25).contains(&tkbps), "Twitch's player got {tkbps:.0} kbit/s, not ~3000");
    let last = stats.iter().rev().find(|s| rendition_count(s) == 2).expect("a line with both renditions");
    let r = |i: usize| &last["renditions"][i];
    let sizes: Vec<(u64, u64, u64)> = (0..2).map(|i| (r(i)["width"].as_u64().unwrap_or(0), r(i)["height"].as_u64().unwrap_or(0), r(i)["target_kbps"].as_u64().unwrap_or(0))).collect();
    assert!(sizes.contains(&(1920, 1080, 6000)) && sizes.contains(&(1280, 720, 3000)), "{sizes:?}");
    assert!((0..2).all(|i| r(i)["encoder_cpu_percent"].as_f64().is_some_and(|c| c > 0.0)), "encoder CPU not measured: {last}");

    // The same settings for both (Twitch's own cleared): one encode.
    let out = tally_in_home(&["profiles", "set-video", "multi", "tw", "--clear"], &home, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tally = Proc::spawn(
        "tally",
        &mut tally_in_home_cmd(&["stream", "--profile", "multi", "--video", "test", "--audio", "sine", "--size", "640x360", "--duration", "3", "--stats-json"], &home),
    );
    tally.wait_success(Duration::from_secs(60));
    let stats = stats_lines(&tally);
    assert!(stats.iter().all(|s| rendition_count(s) == 1), "equal settings made more than one encode\n{}", tally.describe());
    assert!(stats.iter().any(|s| rendition_of(s, 0) == "r1" && rendition_of(s, 1) == "r1"));
}

#[test]
fn a_destination_cannot_ask_for_more_than_its_service_takes_or_the_profile_captures() {
    let dir = TestDir::new("renditions-limits");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let nginx = Nginx::start();
    youtube_and_twitch(&home, &nginx, &[]);
    let refused = |args: &[&str], needle: &str| {
        let out = tally_in_home(args, &home, Some("k\n"));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && err.contains(needle), "{args:?} was not refused with '{needle}': {err}");
    };
    // Twitch takes at most 6000 kbit/s: as a destination's own setting too.
    refused(&["profiles", "set-video", "multi", "tw", "--video-bitrate", "8000"], "6000");
    // Larger than what the profile captures.
    refused(&["profiles", "set-video", "multi", "tw", "--size", "2560x1440"], "scaled down, never up");
    refused(&["profiles", "set-video", "multi", "tw", "--fps", "60"], "fps");
    let ok = tally_in_home(&["profiles", "set-video", "multi", "tw", "--size", "1280x720", "--video-bitrate", "3000"], &home, None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let shown = String::from_utf8_lossy(&tally_in_home(&["profiles", "show", "multi"], &home, None).stdout).to_string();
    assert!(shown.contains("own video: 1280x720, 3000 kbit/s"), "{shown}");
}
