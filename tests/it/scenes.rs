//! Scenes on air: saved with `tally scenes`, put on air with `--scene`,
//! switched while live with `scene NAME` on stdin — judged from what
//! nginx-rtmp and `tally serve` relay to a player.

use crate::cli_control::Controlled;
use crate::common;
use common::flv_judge::{Pictures, mean_rgb, read_pictures, read_pictures_in, rgb_pictures};
use common::xvfb::Xvfb;
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

/// Pictures each side of a switch whose steps must be exactly one frame.
const AROUND_SWITCH: usize = 15;

/// The steps around the switch are one frame each (33 or 34 ms at 30 fps):
/// nothing missing, repeated or stalled where the scene changes. Elsewhere a
/// loaded machine (the other tests of this binary run beside this one) may
/// make the encoder drop a frame to keep real time: at most one in a row,
/// and rarely.
fn assert_steps_of_one_frame(p: &Pictures, at: usize, what: &str) {
    let steps: Vec<i64> = p.pts_ms.windows(2).map(|w| w[1] - w[0]).collect();
    let near = at.saturating_sub(AROUND_SWITCH)..(at + AROUND_SWITCH).min(steps.len());
    let bad: Vec<(usize, i64)> = near.clone().map(|i| (i, steps[i])).filter(|(_, d)| !(33..=34).contains(d)).collect();
    assert!(bad.is_empty(), "{what}: steps that are not one frame around the switch at {at} (index, ms): {bad:?}");
    let odd: Vec<(usize, i64)> = steps.iter().copied().enumerate().filter(|(_, d)| !(33..=34).contains(d)).collect();
    assert!(odd.iter().all(|(_, d)| (66..=68).contains(d)) && odd.len() * 50 <= steps.len(), "{what}: steps elsewhere (index, ms): {odd:?}");
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

/// The bars a test shows on the X server, left to right (white, yellow,
/// cyan, green, magenta, red, blue, dark grey), each `BAR` pixels wide.
const BARS: [[u8; 3]; 8] = [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255], [64, 64, 64]];
const BAR: u32 = 80;
const BARS_HEIGHT: u32 = 360;
/// Per channel, after capture (RGB to I420), H.264 at 2.5 Mbit/s and back to RGB.
const COLOUR_TOLERANCE: f64 = 24.0;
const CANVAS: (u32, u32) = (1280, 720);

fn near(got: [f64; 3], want: [f64; 3]) -> bool {
    got.iter().zip(want).all(|(g, w)| (g - w).abs() <= COLOUR_TOLERANCE)
}

/// Every bar's colour at its place: a 16x16 patch at each bar's centre, the
/// bars' top-left corner at `at` on the canvas.
fn assert_bars_at(rgb: &[u8], at: (u32, u32), what: &str) {
    for (i, want) in BARS.iter().enumerate() {
        let (x, y) = (at.0 + BAR * i as u32 + BAR / 2 - 8, at.1 + BARS_HEIGHT / 2 - 8);
        let got = mean_rgb(rgb, CANVAS.0, (x, y, 16, 16));
        assert!(near(got, want.map(f64::from)), "{what}: bar {i} at ({x}, {y}) is {got:.0?}, not {want:?}");
    }
}

/// The pixel rectangle of a layer at `rect` (canvas fractions) on the canvas.
fn pixels(rect: tally::compose::Rect) -> (u32, u32, u32, u32) {
    let r = tally::compose::canvas_rect(&rect, CANVAS.0, CANVAS.1);
    (r.x as u32, r.y as u32, r.w, r.h)
}

/// Plays `url` for `secs` into `file` and returns the recording's pictures
/// from its second second on, as RGB.
fn play_rgb(url: &str, secs: f64, file: &Path, tally: &Controlled) -> Vec<Vec<u8>> {
    ffmpeg_read(url, secs, file).wait_success(EVENT);
    let frames = rgb_pictures(file, CANVAS, 1.0, 10);
    assert!(frames.len() >= 5, "{}: {} pictures after its first second\n{}", file.display(), frames.len(), tally.describe());
    frames
}

#[test]
fn screen_and_camera_through_nginx_show_the_bars_the_camera_counter_and_the_logo_and_a_closed_window_becomes_a_slate() {
    let _serial = realtime_lock();
    require("ffmpeg");
    let xvfb = Xvfb::start("1280x720x24");
    let nginx = Nginx::start();
    let dir = TestDir::new("scene-screen");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    // The bars in a window of a real X client, away from the corner.
    let bars = dir.join("bars.png");
    image::RgbImage::from_fn(BAR * 8, BARS_HEIGHT, |x, _| image::Rgb(BARS[(x / BAR) as usize])).save(&bars).expect("bars.png");
    let (client, win) = xvfb.show_image(&bars, "tallybars", (300, 200));
    // A logo: its left half opaque orange, its right half blue at half alpha.
    let logo = dir.join("logo.png");
    image::RgbaImage::from_fn(128, 128, |x, _| if x < 64 { image::Rgba([255, 128, 0, 255]) } else { image::Rgba([0, 0, 255, 128]) })
        .save(&logo)
        .expect("logo.png");
    let corner = tally::compose::Rect { x: 0.7, y: 0.7, w: 0.25, h: 0.25 };
    let logo_at = tally::compose::Rect { x: 0.05, y: 0.7, w: 0.1, h: 128.0 / 720.0 };
    let layer = |source: &str, r: tally::compose::Rect| format!("{source}@{},{},{},{}", r.x, r.y, r.w, r.h);
    add_scene(&home, "Desk", &["screen,nocursor", &layer("test", corner), &layer(&format!("image:{}", logo.display()), logo_at)]);
    let half = tally::compose::Rect { x: 0.0, y: 0.0, w: 0.5, h: 0.5 };
    add_scene(&home, "Window", &[&layer("window:tallybars", half), &layer("test", corner)]);

    let url = nginx.url("desk");
    let args = ["stream", &url, "--scene", "Desk", "--audio", "silence", "--size", "1280x720", "--fps", "30", "--keyint", "1", "--stats-json"];
    let mut cmd = tally_in_home_cmd(&args, &home);
    cmd.env("DISPLAY", xvfb.display());
    let mut tally = Controlled::spawn_cmd(cmd);
    tally.wait_stderr("output destination-1 is live", 1);

    // The monitor: the bars where the window is, the counter in its corner, the logo with its alpha.
    let desk = dir.join("desk.flv");
    let frames = play_rgb(&url, 4.0, &desk, &tally);
    let (cx, cy, cw, ch) = pixels(corner);
    let counter = read_pictures_in(&desk, (cx, cy, cw, ch), FPS);
    let first = counter.first_index(None).unwrap_or_else(|| panic!("no frame number in the camera's corner: {:?}", counter.marks));
    counter.assert_every_frame_from(first, FPS, None, "the camera's corner, monitor scene");
    let (lx, ly, _, _) = pixels(logo_at);
    for rgb in &frames {
        assert_bars_at(rgb, (win.x as u32, win.y as u32), "the monitor");
        let opaque = mean_rgb(rgb, CANVAS.0, (lx + 16, ly + 32, 24, 64));
        assert!(near(opaque, [255.0, 128.0, 0.0]), "the logo's opaque half is {opaque:.0?}");
        // Half blue over Xvfb's black root.
        let blended = mean_rgb(rgb, CANVAS.0, (lx + 88, ly + 32, 24, 64));
        assert!(near(blended, [0.0, 0.0, 128.0]), "the logo's half-transparent half is {blended:.0?}, not blue at half over black");
    }

    // The window alone in the top-left quarter (the bars at the layer's rectangle, not where the window is).
    tally.send("scene Window");
    tally.wait_stderr("video source switched to scene 'Window'", 1);
    let window = dir.join("window.flv");
    for rgb in play_rgb(&url, 3.0, &window, &tally) {
        assert_bars_at(&rgb, (0, 0), "the window at its layer");
    }

    // The window closed: a slate in its place, the stream goes on, the counter too.
    client.kill();
    tally.wait_stderr("a slate goes out in its place", 1);
    let closed = dir.join("closed.flv");
    let frames = play_rgb(&url, 3.0, &closed, &tally);
    for rgb in &frames {
        // The slate's dark grey (luma 40: RGB about 28) over most of the layer, no bar left.
        let (_, _, hw, hh) = pixels(half);
        let grey = (0..hh).step_by(8).flat_map(|y| (0..hw).step_by(8).map(move |x| (x, y))).filter(|&(x, y)| {
            let p = mean_rgb(rgb, CANVAS.0, (x, y, 1, 1));
            p.iter().all(|c| (10.0..=50.0).contains(c))
        });
        let share = grey.count() as f64 / f64::from((hw / 8) * (hh / 8));
        assert!(share > 0.6, "the closed window's layer is not the slate ({share:.2} of it dark grey)");
    }
    let counter = read_pictures_in(&closed, (cx, cy, cw, ch), FPS);
    let first = counter.first_index(None).unwrap_or_else(|| panic!("no frame number after the window closed: {:?}", counter.marks));
    counter.assert_every_frame_from(first, FPS, None, "the camera's corner after the window closed");
    assert_eq!(nginx.log_count("publish: name='desk'"), 1, "published again\n{}", nginx.diagnostics());
    tally.send("stop");
    assert!(wait_until(EVENT, || tally.exited()), "`stop` did not end the broadcast\n{}", tally.describe());
}
