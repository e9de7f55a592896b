//! `tally serve` with real clients: ffmpeg and `tally stream` publish;
//! ffmpeg, rtmpdump, GStreamer, VLC and mpv play, all at once, and each must
//! get H.264 + AAC at the published size with a frame count within 5 % of
//! what the rate over its received span gives — and what each wrote down,
//! decoded frame by frame, shows the test pattern's counter running on
//! without a gap, with the tone decodable beside it. Plus HTTP-FLV: ffprobe
//! and a headless Chromium page with mpegts.js.

use crate::common;

use common::frames::{assert_stretch_of_sent, assert_tone_decodes, decode_marks, frame_numbers};
use common::players::{self, End, Received, received_from_file};
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const W: u32 = 640;
const H: u32 = 360;
const FPS: f64 = 30.0;
/// Each player reads about this long.
const READ_SECS: u32 = 5;
/// Seconds of the clip ffmpeg publishes: longer than the players can take
/// to come and go on a loaded machine.
const FFMPEG_CLIP_SECS: u32 = 40;

enum Publisher {
    Tally,
    Ffmpeg,
}

/// A publisher of Tally's test pattern with its tone, and the frame
/// numbers it sent (read back from its own recording, so that a frame its
/// encoder skipped is not blamed on the server).
struct Published {
    proc: Proc,
    /// Where what it sent is written down.
    reference: std::path::PathBuf,
    /// The reference is Tally's recording, complete once Tally stops.
    recording: bool,
}

impl Published {
    /// Stops publishing (Tally with Ctrl-C, so its recording is whole) and
    /// returns the frame numbers it sent.
    fn stop(self) -> Vec<u64> {
        if self.recording {
            self.proc.signal("INT");
            self.proc.wait_success(Duration::from_secs(30));
        }
        drop(self.proc);
        frame_numbers(&decode_marks(&self.reference, W, H, FPS as u32), FPS as u32, "the publisher's own recording")
    }
}

/// Starts publishing Tally's test pattern with its tone at `url` for `secs`.
///
/// Tally records what it sends beside (`--record`). ffmpeg publishes the
/// same picture re-encoded with x264 (High profile) and ffmpeg's AAC, from
/// a clip `tally record` writes first (`--fast`): ffmpeg's own `testsrc2`
/// carries no frame counter, and the counter is what tells a relay that
/// lost or reordered a frame from one that did not. What the players get
/// is still ffmpeg's RTMP client, encoders and timestamps.
fn start_publisher(kind: Publisher, url: &str, secs: u32, dir: &TestDir) -> Published {
    let size = format!("{W}x{H}");
    let dur = secs.to_string();
    match kind {
        Publisher::Tally => {
            let reference = dir.join("sent.flv");
            let rec = reference.to_string_lossy().into_owned();
            let args = ["stream", url, "--video", "test", "--audio", "sine", "--size", &size, "--duration", &dur, "--record", &rec];
            Published { proc: spawn_tally(&args), reference, recording: true }
        }
        Publisher::Ffmpeg => {
            let clip = dir.join("pattern.flv");
            let clip_arg = clip.to_string_lossy().into_owned();
            let secs = secs.min(FFMPEG_CLIP_SECS).to_string();
            let made = run_tally(
                &["record", &clip_arg, "--video", "test", "--audio", "sine", "--size", &size, "--duration", &secs, "--fast"],
                Duration::from_secs(120),
            );
            assert!(made.status.success(), "tally record: {}", String::from_utf8_lossy(&made.stderr));
            let proc = Proc::spawn(
                "ffmpeg publisher",
                Command::new(require("ffmpeg"))
                    .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i"])
                    .arg(&clip)
                    .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-b:v", "1500k"])
                    .args(["-c:a", "aac", "-ac", "2", "-b:a", "128k", "-f", "flv", url]),
            );
            Published { proc, reference: clip, recording: false }
        }
    }
}

/// What one player wrote, decoded: the pattern's counter shows an
/// unbroken stretch of the frames sent over nearly all of what it read,
/// and the tone decodes.
fn assert_decoded(player: &str, path: &std::path::Path, sent: &[u64]) {
    let min_frames = ((f64::from(READ_SECS) - 1.5) * FPS) as usize;
    let numbers = frame_numbers(&decode_marks(path, W, H, FPS as u32), FPS as u32, player);
    let (first, last) = assert_stretch_of_sent(&numbers, sent, min_frames, player);
    let audio = assert_tone_decodes(path, f64::from(READ_SECS) - 1.5, player);
    eprintln!("{player}: frames {first}..={last} decoded, as sent, {audio:.2} s of the tone");
}

fn every_player_sees_the_stream(kind: Publisher, stream: &str) {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url(stream);
    let dir = TestDir::new("server-players");
    let publisher = start_publisher(kind, &url, 600, &dir);
    server.wait_live(stream, &publisher.proc, Duration::from_secs(20));

    // Everyone at once: the server serves them side by side.
    let ff_out = dir.join("ffmpeg.flv");
    let ff = ffmpeg_read(&url, f64::from(READ_SECS), &ff_out);
    let rd_out = dir.join("rtmpdump.flv");
    let rd = players::rtmpdump(&url, READ_SECS + 1, &rd_out);
    let gst_out = dir.join("gstreamer.flv");
    let gst = players::gstreamer(&url, READ_SECS + 1, &gst_out);
    let (vlc, vlc_out) = players::vlc(&url, READ_SECS, &dir);
    let mpv_out = dir.join("mpv.flv");
    let mpv = players::mpv(&url, READ_SECS, &mpv_out);
    let limit = Duration::from_secs(u64::from(READ_SECS) + 30);
    // The server lists all five while they play, each as an RTMP player
    // from loopback, and its count always agrees with its list. (They do not
    // all overlap on a loaded machine: VLC may start after ffmpeg is done,
    // so each is looked for while it plays rather than all at one instant.)
    let mut listed = Value::Null;
    let mut seen = std::collections::BTreeSet::new();
    let mut miscounted = None;
    let players_done = || [&ff, &rd, &gst, &vlc, &mpv].iter().all(|p| p.has_exited());
    wait_until(limit, || {
        listed = server.stream(stream).unwrap_or_default();
        let list = listed["player_list"].as_array().cloned().unwrap_or_default();
        if listed["players"].as_u64() != Some(list.len() as u64) {
            miscounted.get_or_insert_with(|| listed.clone());
        }
        for p in &list {
            assert!(p["protocol"] == "rtmp" && p["peer"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{listed}");
            seen.insert(p["peer"].as_str().unwrap_or_default().to_string());
        }
        seen.len() >= 5 || players_done()
    });

    ff.wait_success(limit);
    // rtmpdump and GStreamer play until `timeout` stops them (GStreamer
    // perhaps only with SIGKILL); VLC and mpv stop by themselves after
    // their run time.
    players::finish(&rd, limit, End::StoppedByTimeout);
    players::finish(&gst, limit, End::StoppedByTimeoutOrKilled);
    let vlc_log = players::finish(&vlc, limit, End::Exits(0));
    let mpv_log = players::finish(&mpv, limit, End::Exits(0));

    let mut results: Vec<Received> = vec![received_from_file("ffmpeg", &ff_out), received_from_file("rtmpdump", &rd_out)];
    results.push(received_from_file("gstreamer", &gst_out));
    assert!(vlc_log.contains("video codec = h264") && vlc_log.contains("audio codec = mp4a"), "VLC did not add H.264 + AAC:\n{}", tail(&vlc_log, 30));
    results.push(received_from_file("vlc", &vlc_out));
    assert!(mpv_log.contains(&format!("VO: [null] {W}x{H}")) && mpv_log.contains("AO: [null] 48000Hz stereo"), "mpv log:\n{}", tail(&mpv_log, 30));
    results.push(received_from_file("mpv", &mpv_out));
    for r in &results {
        eprintln!("{}: {} frames over {:.2} s, {}x{} {}+{}", r.player, r.frames, r.span, r.width, r.height, r.video_codec, r.audio_codec);
    }
    for r in &results {
        r.assert_ok(W, H, FPS, f64::from(READ_SECS) - 1.5);
    }
    // All gone now; the stream is still live.
    let mut info = Value::Null;
    let gone = wait_until(Duration::from_secs(10), || {
        info = server.stream(stream).unwrap_or_default();
        info["players"] == 0
    });
    assert!(gone && info["live"] == true, "after the players left: {info}");
    // What each wrote down, decoded frame by frame, against what was sent.
    let sent = publisher.stop();
    for (player, path) in [("ffmpeg", &ff_out), ("rtmpdump", &rd_out), ("gstreamer", &gst_out), ("vlc", &vlc_out), ("mpv", &mpv_out)] {
        assert_decoded(player, path, &sent);
    }
    // Each played, so each must have been listed (checked after their own
    // verdicts, which say more when one of them failed).
    assert!(seen.len() >= 5, "the server listed {} of the five players ({seen:?}); last: {listed}", seen.len());
    assert!(miscounted.is_none(), "the player count disagreed with the list: {miscounted:?}");
}

#[test]
fn players_of_a_tally_published_stream() {
    every_player_sees_the_stream(Publisher::Tally, "from-tally");
}

#[test]
fn players_of_an_ffmpeg_published_stream() {
    every_player_sees_the_stream(Publisher::Ffmpeg, "from-ffmpeg");
}

#[test]
fn http_flv_plays_in_ffprobe_and_in_chromium_with_mpegts_js() {
    let _serial = realtime_lock();
    let node = require("node");
    require("chromium");
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    let mpegts = web.join("node_modules/mpegts.js/dist/mpegts.js");
    assert!(mpegts.is_file(), "{} missing: `make test-deps` runs `npm ci` in tests/web", mpegts.display());

    let server = TallyServer::start(&[]);
    let url = server.url("web");
    // Live for longer than the test can take: on a loaded machine Chromium
    // alone took 30 s to start, and found the stream over. (The publisher
    // is stopped when the test ends.)
    let dir = TestDir::new("http-flv");
    let publisher = start_publisher(Publisher::Tally, &url, 600, &dir);
    server.wait_live("web", &publisher.proc, Duration::from_secs(20));

    // ffprobe / ffmpeg over HTTP.
    let out = dir.join("http.flv");
    let reader = ffmpeg_read(&server.http_url("web"), 4.0, &out);
    // Listed while it reads (4 s of media, seconds of wall time): looked
    // for until then, and judged whatever ended the wait.
    let mut listed = Value::Null;
    let is_listed = |l: &Value| {
        l["player_list"].as_array().is_some_and(|l| {
            l.len() == 1 && l[0]["protocol"] == "http-flv" && l[0]["peer"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:"))
        })
    };
    wait_until(Duration::from_secs(20), || {
        listed = server.stream("web").unwrap_or_default();
        is_listed(&listed) || reader.has_exited()
    });
    assert!(is_listed(&listed), "the HTTP-FLV player was not listed while it read: {listed}\n{}", reader.describe());
    reader.wait_success(Duration::from_secs(30));
    let r = received_from_file("ffmpeg (HTTP-FLV)", &out);
    eprintln!("{r:?}");
    r.assert_ok(W, H, FPS, 3.0);

    // A page with mpegts.js, served from another port, in headless Chromium,
    // sound on: it plays JUDGED_SECS after its first 30 frames.
    const JUDGED_SECS: f64 = 4.0;
    let page = StaticFiles::serve(&[("/page.html", web.join("page.html")), ("/mpegts.js", mpegts)]);
    let page_url = format!("http://127.0.0.1:{}/page.html?src={}", page.port(), server.http_url("web"));
    let browser = Proc::spawn(
        "node play.mjs",
        Command::new(node).arg(web.join("play.mjs")).arg(&page_url).arg("40").arg(JUDGED_SECS.to_string()).current_dir(&web),
    );
    let out = browser.wait_output(Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no report from the browser:\n{}", browser.describe()));
    assert_eq!(report["supported"], true, "mpegts.js not supported: {report}");
    assert_eq!(report["errors"], serde_json::json!([]), "the player reported errors: {report}\n{}", browser.describe());
    let decoded = report["decodedFrames"].as_u64().unwrap_or(0);
    assert!(decoded >= 30, "the page decoded {decoded} frames, expected 30 or more: {report}\n{}", browser.describe());
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(u64::from(W)), Some(u64::from(H))), "{report}");
    let judged = report["window"].as_array().and_then(|w| Some((w.first()?.as_f64()?, w.get(1)?.as_f64()?)));
    let Some((from, to)) = judged else { panic!("the page never decoded 30 frames: {report}") };
    let inside = |key: &str| -> Vec<Value> {
        let all = report[key].as_array().cloned().unwrap_or_default();
        all.into_iter().filter(|s| s["wall"].as_f64().is_some_and(|t| (from..=to).contains(&t))).collect()
    };
    let num = |s: &Value, k: &str| s[k].as_f64().unwrap_or(f64::NAN);

    // The picture: each presented frame's own media time only goes on, in
    // frame-sized steps, over most of what the stream carried meanwhile;
    // the element's clock (currentTime) shows that time, not merely some
    // moving number; and the frames decoded per second of media are the
    // stream's 30 (a stream stamped wrong, e.g. video timestamps scaled,
    // has fewer or more). Nothing is judged against the page's clock
    // itself: a loaded machine may stall the page for a while.
    let frames = inside("frames");
    assert!(frames.len() >= 2, "no pictures presented while judged: {report}");
    for w in frames.windows(2) {
        let step = num(&w[1], "media") - num(&w[0], "media");
        assert!(step > 0.0 && step <= 0.5, "the picture's media time went {} -> {}: {:?}", w[0]["media"], w[1]["media"], w);
    }
    for f in &frames {
        let drift = num(f, "current") - num(f, "media");
        assert!(drift.abs() < 0.25, "currentTime {} against the picture's media time {}", f["current"], f["media"]);
    }
    let (a, b) = (&frames[0], &frames[frames.len() - 1]);
    let media = num(b, "media") - num(a, "media");
    let per_media_second = (num(b, "decoded") - num(a, "decoded")) / media;
    eprintln!("browser: {media:.3} s of media presented while judged, {per_media_second:.1} frames decoded per second of media");
    assert!(media >= JUDGED_SECS / 2.0, "the picture's media time covered only {media:.3} s while {JUDGED_SECS} s were judged: {frames:?}");
    assert!((per_media_second / FPS - 1.0).abs() <= 0.15, "{per_media_second:.1} frames decoded per second of media, the stream has {FPS}");

    // The sound: the element goes on decoding audio, unmuted, and what
    // Web Audio hears behind it is the 440 Hz tone.
    let audio = inside("audio");
    assert!(audio.len() >= 8, "too few audio samples while judged: {report}");
    for s in &audio {
        assert!(s["muted"] == false && s["state"] == "running", "the page's audio is not playing: {s}");
    }
    for w in audio.windows(4) {
        assert!(num(&w[3], "decodedBytes") > num(&w[0], "decodedBytes"), "no audio decoded for 0.75 s: {:?}", w);
    }
    let median = |k: &str| {
        let mut v: Vec<f64> = audio.iter().map(|s| num(s, k)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (hz, rms) = (median("peakHz"), median("rms"));
    eprintln!("browser: audio peak {hz:.1} Hz at RMS {rms:.3}, {} bytes decoded", num(&audio[audio.len() - 1], "decodedBytes"));
    assert!((hz - 440.0).abs() < 10.0 && rms > 0.01, "the page hears {hz:.1} Hz at RMS {rms:.3}, not the 440 Hz tone: {audio:?}");
}
