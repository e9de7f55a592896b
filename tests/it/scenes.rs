//! Scenes on air: saved with `tally scenes`, put on air with `--scene`,
//! switched while live with `scene NAME` on stdin — judged from what
//! nginx-rtmp and `tally serve` relay to a player.

use crate::cli_control::Controlled;
use crate::common;
use common::flv_judge::{Pictures, read_pictures};
use common::media::ffmpeg_make;
use common::*;
use std::path::Path;
use std::time::Duration;
use tally::capture::FrameMark;

const SIZE: (u32, u32) = (320, 180);
const FPS: u32 = 30;
const EVENT: Duration = Duration::from_secs(30);

/// Saves a scene with `tally scenes add NAME --layer …` under `home`.
fn add_scene(home: &Path, name: &str, layers: &[&str]) {
    let mut args = vec!["scenes", "add", name];
    for l in layers {
        args.extend(["--layer", l]);
    }
    let out = tally_in_home(&args, home, None);
    assert!(out.status.success(), "tally scenes add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The broadcast's media seconds in its newest `--stats-json` line.
fn media_secs(tally: &Controlled) -> f64 {
    tally.stdout().lines().rev().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).and_then(|v| v["media_secs"].as_f64()).unwrap_or(0.0)
}

/// The index where the recording turns from the pattern (numbered frames)
/// to the other scene for good, after checking both sides.
fn switch_point(p: &Pictures, what: &str) -> usize {
    let other = |i: usize| p.marks[i] == FrameMark::Unreadable && p.slate_share[i] < 0.3;
    let at = (0..p.marks.len()).rev().take_while(|&i| other(i)).last().unwrap_or_else(|| panic!("{what}: the new scene never shows: {:?}", p.marks));
    assert!(at >= FPS as usize, "{what}: under a second of the first scene before the switch ({at} pictures): {:?}", p.marks);
    assert!(p.marks.len() - at >= FPS as usize, "{what}: under a second of the new scene: {:?}", &p.marks[at..]);
    let before = Pictures { pts_ms: p.pts_ms[..at].to_vec(), marks: p.marks[..at].to_vec(), slate_share: p.slate_share[..at].to_vec() };
    let first = before.first_index(None).unwrap_or_else(|| panic!("{what}: no frame number before the switch: {:?}", before.marks));
    before.assert_every_frame_from(first, FPS, None, &format!("{what}, before the switch"));
    at
}

/// Every step between pictures is one frame (33 or 34 ms at 30 fps): nothing
/// missing, repeated or stalled at the switch.
fn assert_steps_of_one_frame(p: &Pictures, at: usize, what: &str) {
    let steps: Vec<i64> = p.pts_ms.windows(2).map(|w| w[1] - w[0]).collect();
    let bad: Vec<(usize, i64)> = steps.iter().copied().enumerate().filter(|(_, d)| !(33..=34).contains(d)).collect();
    assert!(bad.is_empty(), "{what}: steps that are not one frame (index, ms), the switch at {at}: {bad:?}");
}

#[test]
fn a_scene_switch_while_live_keeps_one_publish_and_one_frame_steps_on_nginx_and_tally_serve() {
    let _serial = realtime_lock();
    require("ffmpeg");
    require("ffprobe");
    let nginx = Nginx::start();
    let server = TallyServer::start(&[]);
    let dir = TestDir::new("scene-switch");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    // The second scene: ffmpeg's testsrc2 (no frame numbers, not the slate).
    let other = dir.join("other.y4m");
    ffmpeg_make(&["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-t", "4", "-pix_fmt", "yuv420p", other.to_str().expect("utf-8 path")]);
    add_scene(&home, "Pattern", &["test"]);
    add_scene(&home, "Bars", &[&format!("y4m:{}", other.display())]);

    let (to_nginx, to_server) = (nginx.url("scene-key"), server.url("scene"));
    let args = [
        "stream", &to_nginx, &to_server, "--scene", "Pattern", "--audio", "sine", "--size", "320x180", "--fps", "30", "--keyint", "1", "--loop", "--stats-json",
    ];
    let mut tally = Controlled::spawn_cmd(tally_in_home_cmd(&args, &home));
    tally.wait_stderr("output destination-1 is live", 1);
    tally.wait_stderr("output destination-2 is live", 1);

    let (from_nginx, from_server) = (dir.join("nginx.flv"), dir.join("server.flv"));
    let players = [ffmpeg_read(&to_nginx, 8.0, &from_nginx), ffmpeg_read(&to_server, 8.0, &from_server)];
    nginx.wait_players("scene-key", 1, EVENT);
    let joined = wait_until(EVENT, || server.stream("scene").is_some_and(|s| s["players"].as_u64().unwrap_or(0) >= 1));
    assert!(joined, "no player joined tally serve\n{}", tally.describe());
    // Two seconds of media for the players before the switch (nginx's waits for a keyframe).
    let from = media_secs(&tally);
    assert!(wait_until(EVENT, || media_secs(&tally) >= from + 2.0), "the broadcast's media time did not advance\n{}", tally.describe());
    tally.send("scene Bars");
    tally.wait_stderr("video source switched to y4m:", 1);
    for p in &players {
        p.wait_success(EVENT);
    }

    for (file, what) in [(&from_nginx, "through nginx-rtmp"), (&from_server, "through tally serve")] {
        let pictures = read_pictures(file, SIZE, FPS);
        let at = switch_point(&pictures, what);
        assert_steps_of_one_frame(&pictures, at, what);
    }
    assert_eq!(nginx.log_count("publish: name='scene-key'"), 1, "published again to nginx\n{}", nginx.diagnostics());
    let stderr = tally.stderr();
    assert_eq!(stderr.matches("is live").count(), 2, "an output went live again (reconnected)\n{}", tally.describe());
    assert!(!stderr.contains("reconnecting"), "{}", tally.describe());
    tally.send("stop");
    assert!(wait_until(EVENT, || tally.exited()), "`stop` did not end the broadcast\n{}", tally.describe());
}
