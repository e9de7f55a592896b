//! A camera that is a V4L2 device, driven through nokhwa's real V4L2 code
//! (enumeration, formats, mmap streaming, unplugging): `common::camera`
//! says how it is made and why it is not PipeWire's V4L2 layer.
//!
//! - `tally devices` lists it, with its name and every mode;
//! - streaming from it at 720p30, as YUYV and as MJPEG, through nginx-rtmp:
//!   what a player decodes is the camera's clip — every frame's number read
//!   back from its pixels, in order, none repeated, the colour bars within
//!   a stated tolerance of the clip's own;
//! - unplugged while live: the slate within its stated time, the stream up
//!   at its rate; plugged back: the camera's picture again, same stream.

use crate::common;

use common::camera::{CAMERA_NAME, CLIP_FRAMES, CameraFormat, FakeCamera, Mode};
use common::*;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tally::capture::{FrameMark, TestPattern};

const W: u32 = 1280;
const H: u32 = 720;
const FPS: u32 = 30;

/// How far a colour bar of the decoded stream may be from the clip's, in
/// 8-bit code values, per plane (mean over a 16x16 patch). The YUYV path
/// only re-lays the samples out, and H.264 at 2500 kbit/s keeps flat bars
/// within 2; the MJPEG path adds a JPEG and two matrix conversions
/// (the clip's BT.709 -> JFIF's BT.601 -> RGB -> BT.709), within 4 here.
/// A wrong matrix or range moves the saturated bars by 10 to 40.
const BAR_TOLERANCE: f64 = 6.0;

/// A camera frame lost on the way is tolerated this often (seen: none on
/// an idle machine; 2-3 % with other builds loading both cores, when the
/// capture session falls behind the camera and its two-frame queue
/// overflows); a repeated, reordered or unreadable frame never is.
const MAX_MISSING_FRACTION: f64 = 0.03;

/// Stated in `tally::capture::camera`: an unplugged camera's slate comes
/// from the next frame at most `FALLBACK_AFTER` (250 ms) after its last
/// picture. Judged on the stream's timeline, with a frame of slack.
const SLATE_WITHIN_S: f64 = 0.25 + 1.0 / 30.0 + 0.05;

/// What one decoded frame shows.
#[derive(Clone, Debug)]
struct Seen {
    mark: FrameMark,
    slate: bool,
    /// Mean Y, U, V of a patch in the middle of each of the seven bars.
    bars: [[f64; 3]; 7],
}

/// Where the bars are sampled: under the counter box, above the moving box.
fn bar_patch(c: usize, w: usize, h: usize) -> (usize, usize) {
    let x = (2 * c + 1) * w / 14 - 8;
    let y = h * 34 / 100;
    (x & !1, y & !1)
}

fn patch_means(y: &[u8], u: &[u8], v: &[u8], w: usize, h: usize) -> [[f64; 3]; 7] {
    let mut out = [[0.0; 3]; 7];
    for (c, bar) in out.iter_mut().enumerate() {
        let (x0, y0) = bar_patch(c, w, h);
        let (mut sy, mut su, mut sv) = (0u32, 0u32, 0u32);
        for dy in 0..16 {
            for dx in 0..16 {
                sy += u32::from(y[(y0 + dy) * w + x0 + dx]);
            }
        }
        for dy in 0..8 {
            for dx in 0..8 {
                let i = (y0 / 2 + dy) * (w / 2) + x0 / 2 + dx;
                su += u32::from(u[i]);
                sv += u32::from(v[i]);
            }
        }
        *bar = [f64::from(sy) / 256.0, f64::from(su) / 64.0, f64::from(sv) / 64.0];
    }
    out
}

/// A slate (`capture::slate`): most of the picture is its dark grey (luma
/// 40), which no bar of the pattern is.
fn is_slate(y: &[u8]) -> bool {
    let grey = y.iter().step_by(7).filter(|&&v| (32..=48).contains(&v)).count();
    grey * 10 >= y.len().div_ceil(7) * 7
}

/// Decodes the video of `path` (ffmpeg, every frame as it was sent) and
/// reads each frame.
fn decode(path: &Path, w: u32, h: u32) -> Vec<Seen> {
    let pattern = TestPattern::new(w, h, FPS).expect("pattern");
    let mut child = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ffmpeg");
    let mut stdout = child.stdout.take().expect("ffmpeg's stdout");
    let (wu, hu) = (w as usize, h as usize);
    let mut frame = vec![0u8; wu * hu * 3 / 2];
    let mut seen = Vec::new();
    while stdout.read_exact(&mut frame).is_ok() {
        let (y, rest) = frame.split_at(wu * hu);
        let (u, v) = rest.split_at(wu * hu / 4);
        seen.push(Seen { mark: pattern.read_mark(y, w, h), slate: is_slate(y), bars: patch_means(y, u, v, wu, hu) });
    }
    let status = child.wait().expect("wait for ffmpeg");
    assert!(status.success(), "ffmpeg could not decode {}: {status}", path.display());
    seen
}

/// The clip's own bars (every frame of the pattern has the same background).
fn clip_bars(w: u32, h: u32) -> [[f64; 3]; 7] {
    let f = TestPattern::new(w, h, FPS).expect("pattern").frame(1);
    patch_means(&f.y, &f.u, &f.v, w as usize, h as usize)
}

/// Positions in the clip (0..CLIP_FRAMES) of a run of camera frames, a
/// flash standing for the next multiple of the rate; panics on a frame that
/// is neither.
fn clip_positions(run: &[Seen]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for (i, s) in run.iter().enumerate() {
        let pos = match s.mark {
            FrameMark::Number(n) => n,
            FrameMark::Flash => out.last().map_or(0, |p| (p + 1).div_ceil(u64::from(FPS)) * u64::from(FPS)) % CLIP_FRAMES,
            FrameMark::Unreadable => panic!("camera frame {i} of {} is unreadable (slate: {})", run.len(), s.slate),
        };
        assert!(pos < CLIP_FRAMES, "frame {i} reads {pos}, past the clip's {CLIP_FRAMES} frames");
        out.push(pos);
    }
    out
}

/// Frames missing from `positions` (each step is one frame of the looping
/// clip, more is a loss); panics on a repeat or a step back.
fn missing_frames(positions: &[u64], what: &str) -> u64 {
    let mut missing = 0;
    for (i, p) in positions.windows(2).enumerate() {
        let step = (p[1] + CLIP_FRAMES - p[0]) % CLIP_FRAMES;
        assert!(step != 0, "{what}: frame {} repeats clip frame {} ({positions:?})", i + 1, p[0]);
        // More than half the clip ahead is a step back.
        assert!(step < CLIP_FRAMES / 2, "{what}: frame {} goes from clip frame {} to {}", i + 1, p[0], p[1]);
        if step > 1 {
            eprintln!("{what}: {} camera frame(s) missing between clip frames {} and {} (decoded frame {i})", step - 1, p[0], p[1]);
        }
        missing += step - 1;
    }
    missing
}

fn assert_bars(seen: &[Seen], what: &str) {
    let want = clip_bars(W, H);
    // The frames that show the bars (not a flash): their mean.
    let shown: Vec<&Seen> = seen.iter().filter(|s| matches!(s.mark, FrameMark::Number(_))).collect();
    assert!(!shown.is_empty(), "{what}: no frame shows the bars");
    for (c, want_bar) in want.iter().enumerate() {
        for (p, plane) in ["Y", "U", "V"].iter().enumerate() {
            let got = shown.iter().map(|s| s.bars[c][p]).sum::<f64>() / shown.len() as f64;
            eprintln!("{what}: bar {c} {plane}: {got:.1} (clip {:.1})", want_bar[p]);
            assert!(
                (got - want_bar[p]).abs() <= BAR_TOLERANCE,
                "{what}: bar {c} {plane} is {got:.1}, the clip's is {:.1} (tolerance {BAR_TOLERANCE})",
                want_bar[p]
            );
        }
    }
}

/// The newest `--stats-json` line `tally` printed.
fn last_stats(tally: &Proc) -> Value {
    tally.stdout_text().lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null)
}

fn wait_stats(tally: &Proc, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(Duration::from_secs(30), || {
        last = last_stats(tally);
        pred(&last) || tally.has_exited()
    });
    assert!(ok && pred(&last), "{what}: not reached; last stats: {last}\n{}", tally.describe());
    last
}

fn mode(format: CameraFormat, width: u32, height: u32) -> Mode {
    Mode { format, width, height, fps: FPS }
}

#[test]
fn tally_devices_lists_the_v4l2_camera_with_its_modes() {
    let cam = FakeCamera::new(
        "camera-list",
        &[mode(CameraFormat::Mjpeg, 1920, 1080), mode(CameraFormat::Mjpeg, W, H), mode(CameraFormat::Yuyv, W, H)],
    );
    let listing = Proc::spawn("tally devices", &mut cam.command(&tally_bin(), &["devices", "--json"])).wait_output(Duration::from_secs(30));
    assert!(listing.status.success(), "tally devices failed: {}", String::from_utf8_lossy(&listing.stderr));
    let json: Value = serde_json::from_slice(&listing.stdout).expect("devices --json prints JSON");
    let cameras = json["cameras"].as_array().cloned().unwrap_or_default();
    assert_eq!(cameras.len(), 1, "one camera expected: {json}");
    let c = &cameras[0];
    assert_eq!(c["index"], 0, "{c}");
    // Named by its driver (there is no /sys/class/video4linux here).
    assert_eq!(c["name"], CAMERA_NAME, "{c}");
    let modes: Vec<(u64, u64, u64, String)> = c["modes"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    let n = |k: &str| m[k].as_u64().unwrap_or(0);
                    (n("width"), n("height"), n("fps"), m["format"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let want = [(1920, 1080, 30, "MJPEG"), (1280, 720, 30, "YUYV"), (1280, 720, 30, "MJPEG")];
    for (w, h, f, fmt) in want {
        assert!(modes.contains(&(w, h, f, fmt.to_string())), "mode {w}x{h}@{f} {fmt} not listed: {modes:?}");
    }
    assert_eq!(modes.len(), want.len(), "{modes:?}");
}

/// Streams the camera in `format` at 720p30 through nginx-rtmp; a player
/// reads it; every frame it decodes must be the clip's next.
fn streams_at_720p30(format: CameraFormat) {
    let _serial = realtime_lock();
    require("nginx");
    let cam = FakeCamera::new(&format!("camera-{}", format.fourcc().to_lowercase()), &[mode(format, W, H)]);
    let nginx = Nginx::start();
    let url = nginx.url("camera");
    let out = cam.dir().join("read.flv");
    let tally = Proc::spawn(
        "tally stream (camera)",
        &mut cam.command(&tally_bin(), &["stream", &url, "--video", "camera:0", "--audio", "silence", "--size", "1280x720", "--fps", "30", "--duration", "10", "--stats-json"]),
    );
    nginx.wait_publishing("camera", &tally, Duration::from_secs(20));
    let reader = ffmpeg_read(&url, 6.0, &out);
    reader.wait_success(Duration::from_secs(40));
    tally.wait_success(Duration::from_secs(40));
    let log = strip_ansi(&tally.stderr_text());
    let opened = format!("mode=1280x720@30 {}", format.tally_name());
    assert!(log.contains("camera streaming") && log.contains(&opened), "the camera was not opened in {opened}:\n{}", tail(&log, 20));

    eprintln!("tally's last stats: {}", last_stats(&tally));
    let seen = decode(&out, W, H);
    let info = probe(&out);
    let pts = info.video_pts();
    let span = pts.iter().copied().fold(f64::MIN, f64::max) - pts.iter().copied().fold(f64::MAX, f64::min);
    eprintln!("{format:?}: {} frames decoded over {span:.2} s", seen.len());
    assert!(span >= 3.5, "the player got only {span:.2} s");
    assert!(seen.iter().all(|s| !s.slate), "a slate in the stream of a working camera");
    let positions = clip_positions(&seen);
    let missing = missing_frames(&positions, &format!("{format:?}"));
    let expected = seen.len() as u64 + missing;
    eprintln!("{format:?}: {missing} of {expected} camera frames missing");
    assert!(
        (missing as f64) <= MAX_MISSING_FRACTION * expected as f64,
        "{format:?}: {missing} of {expected} camera frames missing (at most {:.0} %)",
        MAX_MISSING_FRACTION * 100.0
    );
    assert_bars(&seen, &format!("{format:?}"));
}

#[test]
fn streams_a_yuyv_camera_at_720p30_frame_for_frame() {
    streams_at_720p30(CameraFormat::Yuyv);
}

#[test]
fn streams_an_mjpeg_camera_at_720p30_frame_for_frame() {
    streams_at_720p30(CameraFormat::Mjpeg);
}

/// Live from the camera; unplugged: the slate within its stated time while
/// the stream carries on at its rate; plugged back: the camera's picture
/// again, on the same stream (one publish, timestamps continuous).
#[test]
fn a_camera_unplugged_while_live_shows_the_slate_and_comes_back_on_the_same_stream() {
    let _serial = realtime_lock();
    require("nginx");
    let cam = FakeCamera::new("camera-unplug", &[mode(CameraFormat::Yuyv, W, H)]);
    let nginx = Nginx::start();
    let url = nginx.url("unplug");
    let out = cam.dir().join("read.flv");
    // The player joins first, so it sees the whole stream.
    let reader = common::media::ffmpeg_read_until_end(&url, 5, &out);
    nginx.wait_players("unplug", 1, Duration::from_secs(10));
    let tally = Proc::spawn(
        "tally stream (camera)",
        &mut cam.command(
            &tally_bin(),
            &["stream", &url, "--video", "camera:0", "--audio", "silence", "--size", "1280x720", "--fps", "30", "--duration", "13", "--stats-json"],
        ),
    );
    let live = |s: &Value| s["video_source"]["state"] == "live";
    let secs = |s: &Value| s["media_secs"].as_f64().unwrap_or(0.0);
    let before = wait_stats(&tally, "live from the camera", |s| live(s) && secs(s) >= 3.0);
    cam.unplug(&tally);
    let gone = wait_stats(&tally, "the loss seen", |s| !live(s) && secs(s) >= secs(&before));
    assert!(
        gone["video_source"]["state"].as_str().is_some_and(|t| t.contains("camera lost") || t.contains("camera not available")),
        "the stats do not say the camera is gone: {gone}"
    );
    wait_stats(&tally, "streaming without the camera", |s| secs(s) >= secs(&gone) + 3.0);
    cam.plug(&tally);
    wait_stats(&tally, "the camera back", |s| live(s) && secs(s) >= secs(&gone) + 5.0);
    tally.wait_success(Duration::from_secs(40));
    reader.wait_success(Duration::from_secs(30));

    assert_eq!(nginx.log_count("publish"), 1, "the stream was published more than once:\n{}", nginx.error_log());
    let info = probe(&out);
    let mut pts = info.video_pts();
    pts.sort_by(f64::total_cmp);
    let seen = decode(&out, W, H);
    assert_eq!(seen.len(), pts.len(), "decoded frames and packets disagree");
    // The stream never paused: at most the wait that tells a lost camera
    // from a late frame between two frames, and the rate kept.
    let widest = pts.windows(2).map(|p| p[1] - p[0]).fold(0.0, f64::max);
    assert!(widest <= 0.3, "a {widest:.3} s gap in the stream's video");
    let span = pts[pts.len() - 1] - pts[0];
    assert!(seen.len() as f64 >= span * 0.9 * f64::from(FPS), "{} frames over {span:.1} s", seen.len());

    // Camera, slate, camera — in that order, nothing else.
    let kinds: Vec<char> = seen.iter().map(|s| if s.slate { 's' } else { 'c' }).collect();
    let mut runs: Vec<(char, usize, usize)> = Vec::new(); // kind, first index, length
    for (i, &k) in kinds.iter().enumerate() {
        match runs.last_mut() {
            Some((kind, _, len)) if *kind == k => *len += 1,
            _ => runs.push((k, i, 1)),
        }
    }
    let shape: Vec<char> = runs.iter().map(|r| r.0).collect();
    assert_eq!(shape, vec!['c', 's', 'c'], "expected camera, slate, camera; runs {runs:?}");
    let (_, first_slate, slate_len) = runs[1];
    let last_camera = first_slate - 1;
    let to_slate = pts[first_slate] - pts[last_camera];
    eprintln!("slate {to_slate:.3} s after the last camera frame, for {slate_len} frames ({:.1} s)", pts[first_slate + slate_len] - pts[first_slate]);
    assert!(to_slate <= SLATE_WITHIN_S, "the slate came {to_slate:.3} s after the camera's last frame (stated: within {SLATE_WITHIN_S:.3} s)");
    // Each camera run is the clip, frame after frame.
    let (_, a_start, a_len) = runs[0];
    let (_, b_start, b_len) = runs[2];
    for (name, start, len) in [("before the unplug", a_start, a_len), ("after the replug", b_start, b_len)] {
        let run = &seen[start..start + len];
        let missing = missing_frames(&clip_positions(run), name);
        assert!((missing as f64) <= MAX_MISSING_FRACTION * (len as f64 + missing as f64), "{name}: {missing} camera frames missing of {len}");
        assert!(len >= 30, "{name}: only {len} camera frames");
    }
    let log = strip_ansi(&tally.stderr_text());
    assert_eq!(log.matches("camera streaming").count(), 2, "opened twice (at the start, after the replug):\n{}", tail(&log, 30));
}
