//! Live control of `tally stream` from standard input, against nginx-rtmp:
//! while live, `add URL` publishes to one more destination (a player gets
//! its pictures), `remove ID` ends it and leaves the first one live, `mute`
//! really silences what goes out, `hide` sends the slate and `show` the
//! pattern again (decoded from what nginx relays), a refused command
//! and a mistyped one are reported and the broadcast goes on, `stop` ends it
//! with exit status 0 — and the stream keys, typed on stdin, never appear
//! in anything Tally prints. A second run shows that stdin's end and bad
//! lines never stop a broadcast.
//!
//! 320x180 test pattern and sine: a few % of a core, no real-time lock.

use crate::common;

use common::flv_judge::{Pictures, read_pictures};
use common::media::ffmpeg_make;
use common::players::received_from_file;
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tally::capture::FrameMark;

const KEY_ONE: &str = "key-one-SECRET-7f3a";
const KEY_TWO: &str = "key-two-SECRET-9c1d";
/// A keyframe a second: a player's copy starts at one (ffmpeg drops what comes before).
const SOURCE: [&str; 10] = ["--video", "test", "--audio", "sine", "--size", "320x180", "--fps", "30", "--keyint", "1"];
/// The size in [`SOURCE`].
const SIZE: (u32, u32) = (320, 180);
/// Generous bounds for events that take a second or two.
const EVENT: Duration = Duration::from_secs(30);

/// `tally` with a stdin the test keeps open and writes to over time
/// ([`Proc`] closes its stdin after the input it is given).
/// `tally` with its stdin piped for live commands (also used by the scenes tests).
pub(crate) struct Controlled {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let into = Arc::new(Mutex::new(Vec::new()));
    let buf = Arc::clone(&into);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(&chunk[..n]);
        }
    });
    into
}

impl Controlled {
    fn spawn(args: &[&str]) -> Controlled {
        let mut cmd = Command::new(tally_bin());
        cmd.args(args);
        Controlled::spawn_cmd(cmd)
    }

    /// Runs `cmd` (a `tally` command line with its environment) with stdin piped.
    pub(crate) fn spawn_cmd(mut cmd: Command) -> Controlled {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tally");
        let stdin = child.stdin.take();
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Controlled { child, stdin, stdout, stderr }
    }

    pub(crate) fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()).unwrap_or_else(|e| panic!("writing {line:?}: {e}\n{}", self.describe()));
    }

    fn text(buf: &Mutex<Vec<u8>>) -> String {
        String::from_utf8_lossy(&buf.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        strip_ansi(&Self::text(&self.stderr))
    }

    pub(crate) fn stdout(&self) -> String {
        Self::text(&self.stdout)
    }

    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until stderr holds `needle` `count` times; panics with the logs otherwise.
    pub(crate) fn wait_stderr(&mut self, needle: &str, count: usize) {
        let found = wait_until(EVENT, || self.stderr().matches(needle).count() >= count || self.exited());
        assert!(found && self.stderr().matches(needle).count() >= count, "no {count}× {needle:?} on stderr\n{}", self.describe());
    }

    /// Waits until stdout holds `needle`.
    fn wait_stdout(&mut self, needle: &str) {
        let found = wait_until(EVENT, || self.stdout().contains(needle) || self.exited());
        assert!(found && self.stdout().contains(needle), "no {needle:?} on stdout\n{}", self.describe());
    }

    pub(crate) fn describe(&self) -> String {
        format!("--- tally stderr:\n{}\n--- tally stdout:\n{}", tail(&self.stderr(), 60), tail(&self.stdout(), 30))
    }
}

impl Drop for Controlled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.describe());
        }
    }
}

/// The loudest audio sample in `file` from `from` seconds on, dBFS (ffmpeg's volumedetect).
fn max_volume(file: &Path, from: f64) -> f64 {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-ss", &from.to_string(), "-i"])
        .arg(file)
        .args(["-map", "0:a", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg volumedetect");
    let log = String::from_utf8_lossy(&out.stderr);
    log.lines()
        .find_map(|l| l.split("max_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no max_volume from ffmpeg:\n{log}"))
}

/// Plays `url` for `secs` into `file` and checks pictures arrived: H.264
/// and AAC at 320x180, at least `min_frames` frames.
fn play(url: &str, secs: f64, file: &Path, min_frames: usize, tally: &Controlled) {
    let reader = ffmpeg_read(url, secs, file);
    reader.wait_success(EVENT);
    let got = received_from_file("ffmpeg", file);
    assert_eq!((got.video_codec.as_str(), got.audio_codec.as_str(), got.width, got.height), ("h264", "aac", 320, 180), "{got:?}\n{}", tally.describe());
    assert!(got.frames >= min_frames, "only {} frames from {file:?} ({got:?})\n{}", got.frames, tally.describe());
}

/// The connection (`*N`) on whose line of nginx's log `needle` is.
fn connection_of(nginx: &Nginx, needle: &str) -> String {
    let log = nginx.error_log();
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in nginx's log\n{}", nginx.diagnostics()));
    let star = line.find(" *").map(|i| &line[i + 1..]).unwrap_or_default();
    star.split(' ').next().unwrap_or_default().to_string()
}

fn assert_no_key(what: &str, text: &str) {
    for key in [KEY_ONE, KEY_TWO] {
        assert!(!text.contains(key), "{what} shows a stream key:\n{text}");
    }
    assert!(!text.contains("SECRET"), "{what} shows part of a stream key:\n{text}");
}

#[test]
fn stdin_commands_add_remove_mute_hide_and_stop_a_live_broadcast() {
    require("ffmpeg");
    require("ffprobe");
    let nginx = Nginx::start();
    let dir = TestDir::new("cli-control");
    let (one, two) = (nginx.url(KEY_ONE), nginx.url(KEY_TWO));
    let mut args = vec!["stream", one.as_str()];
    args.extend(SOURCE);
    let mut tally = Controlled::spawn(&args);
    tally.wait_stderr("output destination-1 is live", 1);
    assert!(nginx.has_publisher(KEY_ONE), "{}", nginx.diagnostics());

    tally.send("help");
    tally.wait_stdout("add-profile NAME [DESTINATION]");

    // add: a second destination, really published (a player gets pictures).
    tally.send(&format!("add {two}"));
    tally.wait_stderr("output destination-2 is live", 1);
    assert!(wait_until(EVENT, || nginx.has_publisher(KEY_TWO)), "nginx saw no publish of the added destination\n{}", nginx.diagnostics());
    let two_file = dir.join("two.flv");
    play(&two, 3.0, &two_file, 45, &tally);
    let loud = max_volume(&two_file, 1.0);
    assert!(loud > -30.0, "the sine before `mute` peaks at {loud} dBFS");

    tally.send("outputs");
    tally.wait_stdout("destination-2  live");
    assert!(tally.stdout().contains("destination-1  live"), "{}", tally.describe());

    // A command the engine refuses is reported once; the broadcast goes on.
    tally.send("retry destination-1");
    tally.wait_stderr("refused: retry:", 1);
    // A mistyped one: one clear line.
    tally.send("bogus");
    tally.wait_stderr("error: unknown command", 1);

    // remove: the added destination ends cleanly, the first one stays.
    tally.send("remove destination-2");
    tally.wait_stderr("output destination-2 removed", 1);
    tally.wait_stderr("removed from the broadcast", 1);
    let publisher = connection_of(&nginx, &format!("publish: name='{KEY_TWO}'"));
    assert!(
        wait_until(EVENT, || nginx.log_count(&format!(": {publisher} deleteStream")) > 0),
        "nginx never saw the removed stream end\n{}",
        nginx.diagnostics()
    );
    let first = connection_of(&nginx, &format!("publish: name='{KEY_ONE}'"));
    assert!(!nginx.error_log().contains(&format!(": {first} deleteStream")), "the first destination ended too\n{}", nginx.diagnostics());

    // mute: what goes out is silent (the first destination is still live).
    tally.send("mute");
    tally.wait_stderr("microphone muted", 1);
    tally.send("hide");
    tally.wait_stderr("camera hidden", 1);
    let one_file = dir.join("one.flv");
    play(&one, 3.0, &one_file, 45, &tally);
    // From a second in: what was encoded before `mute` has long gone out.
    let muted = max_volume(&one_file, 1.0);
    assert!(muted < -80.0, "after `mute` the audio still peaks at {muted} dBFS\n{}", tally.describe());
    // hide: what goes out is the slate (decoded: the dark grey, no frame
    // number), from a second in as for the sound.
    let hidden = read_pictures(&one_file, SIZE, 30);
    let from = hidden.pts_ms.first().map_or(0, |t| t + 1000);
    let after: Vec<(FrameMark, f64)> =
        hidden.pts_ms.iter().zip(hidden.marks.iter().zip(&hidden.slate_share)).filter(|(t, _)| **t >= from).map(|(_, (m, s))| (*m, *s)).collect();
    assert!(after.len() >= 30, "only {} of {} pictures a second after `hide`", after.len(), hidden.marks.len());
    assert!(
        after.iter().all(|(m, s)| *m == FrameMark::Unreadable && *s > 0.6),
        "after `hide` not every picture is the slate (mark, share at its grey): {after:?}\n{}",
        tally.describe()
    );
    // show: the pattern again, every frame in order from the first shown.
    tally.send("show");
    tally.wait_stderr("camera shown", 1);
    let shown_file = dir.join("shown.flv");
    play(&one, 3.0, &shown_file, 45, &tally);
    let shown = read_pictures(&shown_file, SIZE, 30);
    let first = shown.marks.iter().position(|m| *m != FrameMark::Unreadable).unwrap_or(shown.marks.len());
    let pattern = Pictures { pts_ms: shown.pts_ms[first..].to_vec(), marks: shown.marks[first..].to_vec(), slate_share: shown.slate_share[first..].to_vec() };
    assert!(pattern.marks.len() >= 60 && first <= 30, "after `show` the pattern came back at picture {first} of {}: {:?}", shown.marks.len(), shown.marks);
    let start = pattern.first_index(None).unwrap_or_else(|| panic!("no frame number after `show`: {:?}", shown.marks));
    pattern.assert_every_frame_from(start, 30, None, "after `show`");
    let before = tally.stdout().len();
    tally.send("outputs");
    assert!(wait_until(EVENT, || tally.stdout()[before..].contains("destination-1  live")), "{}", tally.describe());
    assert!(!tally.stdout()[before..].contains("destination-2"), "a removed output is still listed\n{}", tally.describe());

    // stop: a clean end, exit status 0.
    tally.send("stop");
    assert!(wait_until(EVENT, || tally.exited()), "`stop` did not end the broadcast\n{}", tally.describe());
    let status = tally.child.wait().expect("status");
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    let (out, err) = (tally.stdout(), tally.stderr());
    assert_eq!(err.matches("refused:").count(), 1, "each refusal is printed once\n{err}");
    assert_no_key("stdout", &out);
    assert_no_key("stderr", &err);
}

#[test]
fn the_end_of_stdin_and_bad_lines_never_stop_the_broadcast() {
    require("ffmpeg");
    let nginx = Nginx::start();
    let dir = TestDir::new("cli-control-eof");
    let one = nginx.url(KEY_ONE);
    // Written at once, then stdin is closed: read (probably) before going live.
    let input = format!(
        "bogus\nadd rtmp://127.0.0.1:1/live\nremove {one}\nadd rtmp://127.0.0.1:99999/live/{KEY_TWO}\n{}\nmute now\n",
        "x".repeat(5000)
    );
    let mut args = vec!["stream", one.as_str()];
    args.extend(SOURCE);
    let tally = Proc::spawn_with_input("tally", Command::new(tally_bin()).args(&args), Some(&input));
    nginx.wait_publishing(KEY_ONE, &tally, EVENT);
    assert!(tally.wait_for_stderr("`mute` takes no arguments", EVENT), "{}", tally.describe());
    // Still live after stdin's end: a player gets pictures.
    let file = dir.join("one.flv");
    let reader = ffmpeg_read(&one, 3.0, &file);
    reader.wait_success(EVENT);
    let got = received_from_file("ffmpeg", &file);
    assert!(got.frames >= 45, "{got:?}\n{}", tally.describe());
    assert!(!tally.has_exited(), "{}", tally.describe());
    tally.signal("INT");
    let status = tally.wait_timeout(EVENT).unwrap_or_else(|| panic!("Ctrl-C did not stop it\n{}", tally.describe()));
    assert!(status.success(), "exit {status}\n{}", tally.describe());
    let err = strip_ansi(&tally.stderr_text());
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 6, "one line per bad command:\n{err}");
    assert!(err.contains("longer than 4096 bytes"), "{err}");
    assert_no_key("stderr", &err);
    assert_no_key("stdout", &tally.stdout_text());
}

/// Waits for `n` more pictures' worth of a fresh copy of `url` and reads
/// its pictures from a second in (what was encoded before a command has
/// gone out by then; nginx-rtmp starts a new player at a keyframe).
fn pictures_after(url: &str, file: &Path, tally: &Controlled) -> Vec<(FrameMark, f64)> {
    play(url, 3.0, file, 45, tally);
    let p = read_pictures(file, SIZE, 30);
    let from = p.pts_ms.first().map_or(0, |t| t + 1000);
    p.pts_ms.iter().zip(p.marks.iter().zip(&p.slate_share)).filter(|(t, _)| **t >= from).map(|(_, (m, s))| (*m, *s)).collect()
}

#[test]
fn file_sources_are_muted_hidden_and_switched_while_live_from_stdin() {
    require("ffmpeg");
    require("ffprobe");
    let nginx = Nginx::start();
    let dir = TestDir::new("cli-control-files");
    // A looped clip of the pattern (frame numbers readable after encoding),
    // a looped tone, and a second clip without numbers (ffmpeg's testsrc2).
    let clip = common::flv_judge::pattern_clip(&dir, "clip.y4m", SIZE, 30, 300, 0);
    let tone = dir.join("tone.wav");
    ffmpeg_make(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-ac", "2", "-t", "10", tone.to_str().expect("utf-8 path")]);
    let other = dir.join("other.y4m");
    ffmpeg_make(&["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-t", "4", "-pix_fmt", "yuv420p", other.to_str().expect("utf-8 path")]);
    let url = nginx.url(KEY_ONE);
    let (video, audio) = (format!("y4m:{}", clip.display()), format!("wav:{}", tone.display()));
    let args = ["stream", url.as_str(), "--video", &video, "--audio", &audio, "--loop", "--size", "320x180", "--fps", "30", "--keyint", "1"];
    let mut tally = Controlled::spawn(&args);
    tally.wait_stderr("output destination-1 is live", 1);

    // The files as they are: every frame of the looped clip in order, the tone loud.
    let first = dir.join("first.flv");
    play(&url, 3.0, &first, 45, &tally);
    let pictures = read_pictures(&first, SIZE, 30);
    let start = pictures.first_index(Some(300)).unwrap_or_else(|| panic!("no frame number: {:?}", pictures.marks));
    pictures.assert_every_frame_from(start, 30, Some(300), "the clip before any command");
    assert!(max_volume(&first, 1.0) > -30.0, "the tone is not heard\n{}", tally.describe());

    // mute + hide: silence and the slate go out.
    tally.send("mute");
    tally.wait_stderr("microphone muted", 1);
    tally.send("hide");
    tally.wait_stderr("camera hidden", 1);
    let hidden_file = dir.join("hidden.flv");
    let hidden = pictures_after(&url, &hidden_file, &tally);
    assert!(hidden.len() >= 30 && hidden.iter().all(|(m, s)| *m == FrameMark::Unreadable && *s > 0.6), "after `hide`: {hidden:?}\n{}", tally.describe());
    let muted = max_volume(&hidden_file, 1.0);
    assert!(muted < -80.0, "after `mute` the audio still peaks at {muted} dBFS\n{}", tally.describe());

    // show + unmute, and switch: the other clip (no numbers, not the slate) and silence.
    tally.send("show");
    tally.wait_stderr("camera shown", 1);
    tally.send("unmute");
    tally.wait_stderr("microphone unmuted", 1);
    tally.send(&format!("video y4m:{}", other.display()));
    tally.wait_stderr("video source switched to y4m:", 1);
    tally.send("audio silence");
    tally.wait_stderr("audio source switched to silence", 1);
    let switched_file = dir.join("switched.flv");
    let switched = pictures_after(&url, &switched_file, &tally);
    assert!(
        switched.len() >= 30 && switched.iter().all(|(m, s)| *m == FrameMark::Unreadable && *s < 0.3),
        "after `video y4m:other` (mark, share at the slate's grey): {switched:?}\n{}",
        tally.describe()
    );
    let silent = max_volume(&switched_file, 1.0);
    assert!(silent < -80.0, "after `audio silence` the audio peaks at {silent} dBFS\n{}", tally.describe());

    // Back to a numbered source, and the tone: every frame in order again, on one publish.
    tally.send("video test");
    tally.wait_stderr("video source switched to test pattern", 1);
    tally.send("audio sine");
    tally.wait_stderr("audio source switched to tone", 1);
    let back_file = dir.join("back.flv");
    play(&url, 3.0, &back_file, 45, &tally);
    let back = read_pictures(&back_file, SIZE, 30);
    let start = back.first_index(None).unwrap_or_else(|| panic!("no frame number after `video test`: {:?}", back.marks));
    let from = back.marks.iter().position(|m| *m != FrameMark::Unreadable).unwrap_or(0);
    let numbered = Pictures { pts_ms: back.pts_ms[from..].to_vec(), marks: back.marks[from..].to_vec(), slate_share: back.slate_share[from..].to_vec() };
    numbered.assert_every_frame_from(start + from as u64, 30, None, "after `video test`");
    assert!(max_volume(&back_file, 1.0) > -30.0, "after `audio sine` the tone is not heard\n{}", tally.describe());
    assert_eq!(nginx.log_count(&format!("publish: name='{KEY_ONE}'")), 1, "the stream was published again\n{}", nginx.diagnostics());

    tally.send("stop");
    assert!(wait_until(EVENT, || tally.exited()), "`stop` did not end the broadcast\n{}", tally.describe());
    let status = tally.child.wait().expect("status");
    assert!(status.success(), "exit {status}\n{}", tally.describe());
}
