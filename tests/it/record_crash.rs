//! Recordings when things go wrong: one cut off by a crash (SIGKILL) is
//! still a playable FLV (the writer flushes at least once per second of
//! media), and a disk that fills up stops the recording with a clear error
//! while the broadcast goes on.

use crate::common;

use common::*;
use std::time::Duration;
use tally::flv::{FlvError, FlvReader, TagType};

/// The recorder's write buffer (`pipeline::outputs`): without the
/// once-a-second flush, nothing reaches the disk before this much is written.
const WRITE_BUFFER_BYTES: u64 = 256 * 1024;

fn media_ms_on_disk(path: &std::path::Path) -> u32 {
    let Ok(bytes) = std::fs::read(path) else { return 0 };
    let Ok(reader) = FlvReader::new(bytes) else { return 0 };
    reader.map_while(Result::ok).filter(|t| t.tag_type == TagType::Video).map(|t| t.timestamp_ms).max().unwrap_or(0)
}

#[test]
fn a_killed_recording_plays_up_to_the_last_second() {
    let _serial = realtime_lock();
    require("ffprobe");
    let dir = TestDir::new("record-crash");
    let out = dir.join("crash.flv");
    let out_arg = out.to_string_lossy().into_owned();
    // A low bitrate (~16 KB/s) so that the 256 KiB write buffer would take
    // ~15 s to fill: 2.5 s of media reach the disk while the file is far
    // smaller than that buffer only if the writer flushes by media time.
    let tally = spawn_tally(&[
        "record", &out_arg, "--size", "640x360", "--video-bitrate", "100", "--audio-bitrate", "32",
    ]);
    let mut on_disk = (0, 0);
    let reached = wait_until(Duration::from_secs(60), || {
        on_disk = (media_ms_on_disk(&out), std::fs::metadata(&out).map_or(0, |m| m.len()));
        on_disk.0 >= 2500
    });
    assert!(reached, "recording never reached 2.5 s on disk: {}", tally.describe());
    assert!(
        on_disk.1 < WRITE_BUFFER_BYTES,
        "2.5 s of media reached the disk only with {} bytes written: a full buffer, not a timely flush",
        on_disk.1
    );
    tally.signal("KILL");
    tally.wait_timeout(Duration::from_secs(5));

    let bytes = std::fs::read(&out).expect("read recording");
    let mut reader = FlvReader::new(bytes).expect("header is valid");
    let mut video = 0;
    let mut last_ms = 0;
    loop {
        match reader.next_tag() {
            Ok(Some(t)) => {
                if t.tag_type == TagType::Video && t.data.get(1) == Some(&1) {
                    video += 1;
                    last_ms = t.timestamp_ms;
                }
            }
            Ok(None) | Err(FlvError::Truncated(_)) => break,
            Err(e) => panic!("corrupt recording after a crash: {e}"),
        }
    }
    assert!(last_ms >= 2500, "only {last_ms} ms readable");
    // ffmpeg decodes what is there: as many frames as our reader found.
    let info = probe(&out);
    assert_eq!(info.video().width, 640);
    assert!(info.video_packets.len() >= video - 1, "ffprobe saw {} of {video} frames", info.video_packets.len());
    let last_pts = info.video_pts().into_iter().fold(0.0, f64::max);
    assert!(last_pts >= 2.5, "ffprobe reads only up to {last_pts} s");
    // (At 100 kbit/s the rate controller skips frames, so no continuity check here.)
}

/// Size of the small filesystem the disk-full test records into: about
/// 6 s of the 1500 kbit/s stream below.
const SMALL_DISK: &str = "1m";

/// The disk filling up while recording and going live: the recording stops
/// with an error that says the disk is full and names the file, the
/// broadcast goes on (a player of the ingest keeps receiving after the
/// error), and what was recorded up to then is a readable FLV.
///
/// The full disk is a 1 MiB tmpfs mounted in a mount namespace of Tally's
/// own (`unshare -m`), so nothing outside the test sees it; the file is
/// read through `/proc/PID/root` while Tally runs.
#[test]
fn a_full_disk_stops_the_recording_with_a_clear_error_and_the_broadcast_goes_on() {
    let _serial = realtime_lock();
    let unshare = require("unshare");
    let nginx = Nginx::start();
    let url = nginx.url("full-disk");
    let dir = TestDir::new("disk-full");
    let mount_point = dir.join("small-disk");
    std::fs::create_dir_all(&mount_point).expect("mount point");
    let recording = mount_point.join("live.flv");
    let script = "mount -t tmpfs -o size=$1 tally-test-full \"$2\" && shift 2 && exec \"$@\"";
    let mut cmd = std::process::Command::new(unshare);
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh", SMALL_DISK])
        .arg(&mount_point)
        .arg(tally_bin())
        .args(["stream", &url, "--record"])
        .arg(&recording)
        .args(["--video", "noise", "--audio", "sine", "--size", "640x360", "--video-bitrate", "1500", "--duration", "40"]);
    let tally = Proc::spawn("tally", &mut cmd);

    // The recording fails once the 1 MiB are used up.
    let said = tally.wait_for_stderr("No space left", Duration::from_secs(60));
    assert!(said, "no disk-full error\n{}", tally.describe());
    let log = strip_ansi(&tally.stderr_text());
    let line = log.lines().find(|l| l.contains("No space left")).unwrap_or_default().to_string();
    assert!(line.contains("live.flv") && line.contains("disk is full"), "the error does not say which file and why: {line}");
    assert!(!tally.has_exited(), "the broadcast ended with the recording\n{}", tally.describe());

    // What reached the small disk is a readable recording.
    let inside = std::path::PathBuf::from(format!("/proc/{}/root", tally.pid())).join(recording.strip_prefix("/").expect("absolute"));
    let copy = dir.join("recorded.flv");
    std::fs::copy(&inside, &copy).expect("read the recording through /proc/PID/root");
    let recorded = probe(&copy);
    let last = recorded.video_pts().into_iter().fold(0.0, f64::max);
    eprintln!("recorded {:.1} s ({} bytes) before the disk was full", last, std::fs::metadata(&copy).map_or(0, |m| m.len()));
    assert!(last >= 2.0, "only {last} s of the recording is readable");

    // The broadcast goes on: a player that starts after the error gets media
    // (from nginx's next keyframe: it has no GOP cache).
    let watched = dir.join("after.flv");
    let player = ffmpeg_read(&url, 6.0, &watched);
    player.wait_success(Duration::from_secs(60));
    let after = probe(&watched);
    let span = after.video_pts().into_iter().fold(0.0, f64::max) - after.video_pts().into_iter().fold(f64::MAX, f64::min);
    eprintln!("after the disk filled, a player got {} frames over {span:.1} s", after.video_packets.len());
    assert!(after.video_packets.len() >= 60 && span >= 2.0, "a player after the disk filled got {} frames over {span:.1} s", after.video_packets.len());
    assert!(!tally.has_exited(), "the broadcast ended\n{}", tally.describe());
    assert_eq!(log.matches("No space left").count(), 1, "the error was said more than once:\n{}", tail(&log, 20));
}
