//! A recording cut off by a crash (SIGKILL) is still a playable FLV: the
//! writer flushes at least once per second of media.

mod common;

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
