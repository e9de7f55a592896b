//! Interop: `tally stream` publishes to real RTMP servers (nginx-rtmp, and
//! ffmpeg in `-listen` mode), real ffmpeg plays the result back, and ffprobe
//! judges it; `tally record` writes an FLV file ffprobe accepts.
//!
//! nginx-rtmp keeps no GOP cache: a player that joins a running stream gets
//! video from the next keyframe on, so a joining reader is judged by the
//! frame rate over what it received and by a span of at least its read time
//! minus one keyframe interval — not by a raw frame count.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Frame rate every test asks for.
const FPS: f64 = 30.0;
/// Tally's default `--keyint` (seconds): the longest a joining player waits
/// for video.
const KEYINT: f64 = 2.0;
/// Sample rate and channels Tally's AAC always has.
const AUDIO_RATE: u32 = 48_000;
const AUDIO_CHANNELS: u32 = 2;
/// How long a real-time `tally stream` may overrun its `--duration` (start-up,
/// connect, clean unpublish) before the test calls it hung.
const STREAM_GRACE: Duration = Duration::from_secs(30);
/// Stream key used on nginx.
const STREAM: &str = "test";

fn require_peers() {
    require("nginx");
    require("ffmpeg");
    require("ffprobe");
}

/// Codec parameters every Tally stream must have.
fn assert_codecs(info: &ProbeInfo, width: u32, height: u32) {
    let video = info.video();
    assert_eq!(video.codec, "h264", "video codec: {video:?}");
    assert_eq!(
        (video.width, video.height),
        (width, height),
        "video size: {video:?}"
    );
    // ffprobe estimates avg_frame_rate from the packets; with millisecond
    // FLV timestamps it is 30/1 or very close.
    assert_close(video.avg_frame_rate, FPS, FPS * 0.02, "avg_frame_rate");
    let audio = info.audio();
    assert_eq!(audio.codec, "aac", "audio codec: {audio:?}");
    assert_eq!(
        audio.sample_rate, AUDIO_RATE,
        "audio sample rate: {audio:?}"
    );
    assert_eq!(audio.channels, AUDIO_CHANNELS, "audio channels: {audio:?}");
}

/// Neither ffprobe nor a full decode has anything to complain about.
fn assert_clean_file(path: &Path) {
    let complaints = ffprobe_errors(path);
    assert!(
        complaints.trim().is_empty(),
        "ffprobe -v error {} printed:\n{complaints}",
        path.display()
    );
    let errors = decode_errors(path);
    assert!(
        errors.trim().is_empty(),
        "decoding {} reported:\n{errors}",
        path.display()
    );
}

/// Publishes `duration` seconds of WxH@30 to a private nginx-rtmp; once nginx
/// reports the publish, ffmpeg plays `read_secs` of it into a file.
fn stream_to_nginx_and_read_back(width: u32, height: u32) {
    const DURATION: &str = "10";
    const READ_SECS: f64 = 7.0;
    let _serial = realtime_lock();
    require_peers();
    let nginx = Nginx::start();
    let dir = TestDir::new("interop-nginx");
    let out = dir.join("read.flv");
    let url = nginx.url(STREAM);
    let size = format!("{width}x{height}");

    let tally = spawn_tally(&[
        "stream",
        &url,
        "--video",
        "test",
        "--audio",
        "sine",
        "--size",
        &size,
        "--fps",
        "30",
        "--duration",
        DURATION,
    ]);
    nginx.wait_publishing(STREAM, &tally, Duration::from_secs(10));
    let reader = ffmpeg_read(&url, READ_SECS, &out);
    // The reader needs READ_SECS of media after it joins; tally publishes
    // for 10 s, so the reader ends first.
    reader.wait_success(Duration::from_secs_f64(READ_SECS) + Duration::from_secs(15));
    tally.wait_success(Duration::from_secs(10) + STREAM_GRACE);

    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_codecs(&info, width, height);
    assert_clean_file(&out);
    // The reader counts READ_SECS from the first packet it receives; video
    // starts at the next keyframe, at most KEYINT later, and the last frame
    // is one frame short of the end.
    let min_span = READ_SECS - KEYINT - 2.0 / FPS;
    assert_video_continuous(&info.video_pts(), FPS, min_span);
    assert_monotonic_no_jump(&info.video_dts(), 1.5 / FPS, "video dts");
    assert!(
        info.video_packets[0].key,
        "the first video packet read back is not a keyframe"
    );
    assert_audio_continuous(&info.audio_pts(), AUDIO_RATE, min_span);
}

#[test]
fn stream_720p_to_nginx_rtmp_plays_back_in_ffmpeg() {
    stream_to_nginx_and_read_back(1280, 720);
}

#[test]
fn stream_1080p_to_nginx_rtmp_plays_back_in_ffmpeg() {
    stream_to_nginx_and_read_back(1920, 1080);
}

/// ffmpeg as the server sees the whole stream from the first frame: every
/// one of the 300 frames and 10 s of audio must arrive.
fn stream_to_ffmpeg_listen_delivers_every_frame(width: u32, height: u32) {
    let _serial = realtime_lock();
    require("ffmpeg");
    require("ffprobe");
    let dir = TestDir::new("interop-listen");
    let out = dir.join("listen.flv");
    let server = FfmpegListen::start(free_port(), &out);
    let url = server.url();
    let size = format!("{width}x{height}");

    let tally = spawn_tally(&[
        "stream",
        &url,
        "--video",
        "test",
        "--audio",
        "sine",
        "--size",
        &size,
        "--fps",
        "30",
        "--duration",
        "10",
    ]);
    let status = server.wait_exit(Duration::from_secs(10) + STREAM_GRACE);
    tally.wait_success(STREAM_GRACE);
    assert!(
        status.success(),
        "ffmpeg -listen exited with {status}\n{}",
        server.proc().describe()
    );

    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_codecs(&info, width, height);
    assert_clean_file(&out);
    let frames = info.video_packets.len();
    assert!(
        (298..=302).contains(&frames),
        "expected 300 ± 2 video frames, got {frames}"
    );
    assert!(
        info.video_packets[0].key,
        "the first video packet is not a keyframe"
    );
    assert_video_continuous(&info.video_pts(), FPS, 9.9);
    assert_monotonic_no_jump(&info.video_dts(), 1.5 / FPS, "video dts");
    assert_audio_continuous(&info.audio_pts(), AUDIO_RATE, 9.9);
    assert_close(info.audio_duration(), 10.0, 0.05, "audio duration (s)");
}

#[test]
fn stream_720p_to_ffmpeg_listen_delivers_every_frame() {
    stream_to_ffmpeg_listen_delivers_every_frame(1280, 720);
}

#[test]
fn stream_1080p_to_ffmpeg_listen_delivers_every_frame() {
    stream_to_ffmpeg_listen_delivers_every_frame(1920, 1080);
}

/// A first timestamp 215 ms below 0xFFFFFF ms forces the switch to extended
/// timestamps (RTMP 1.0, 5.3.1.3) a fifth of a second into the stream. Both
/// readers join before the publisher so they see the crossing: ffprobe
/// reports the timestamps exactly as nginx relayed them, ffmpeg copies the
/// stream into a file (rebased to zero, so only its steps are compared).
#[test]
fn extended_timestamps_cross_0xffffff_without_a_jump() {
    const OFFSET_MS: u32 = 16_777_000;
    const WRAP_S: f64 = 0xFF_FFFF as f64 / 1000.0;
    const READ_SECS: f64 = 6.0;
    /// About 5.8 s of 30 fps video plus 46.9 AAC packets a second.
    const LIVE_PACKETS: usize = 450;
    /// Larger than any frame or AAC packet interval, far smaller than the
    /// jump a mishandled extended timestamp causes (seconds to hours).
    const MAX_STEP: f64 = 0.1;
    let _serial = realtime_lock();
    require_peers();
    let nginx = Nginx::start();
    let dir = TestDir::new("interop-extts");
    let out = dir.join("read.flv");
    let url = nginx.url(STREAM);

    let file_reader = ffmpeg_read(&url, READ_SECS, &out);
    let live_reader = ffprobe_live(&url, LIVE_PACKETS);
    nginx.wait_players(STREAM, 2, Duration::from_secs(10));
    let offset = OFFSET_MS.to_string();
    let tally = spawn_tally(&[
        "stream",
        &url,
        "--video",
        "test",
        "--audio",
        "sine",
        "--size",
        "1280x720",
        "--fps",
        "30",
        "--duration",
        "8",
        "--start-offset-ms",
        &offset,
    ]);
    live_reader.wait_success(Duration::from_secs(8) + STREAM_GRACE);
    file_reader.wait_success(Duration::from_secs(8) + STREAM_GRACE);
    tally.wait_success(Duration::from_secs(8) + STREAM_GRACE);

    // Timestamps as nginx relayed them.
    let (video, audio) = parse_live_packets(&live_reader.stdout_text());
    let video_dts: Vec<f64> = video.iter().map(|p| p.dts).collect();
    let audio_dts: Vec<f64> = audio.iter().map(|p| p.dts).collect();
    let first = video_dts.first().copied().unwrap_or(f64::NAN);
    let last = video_dts.last().copied().unwrap_or(f64::NAN);
    eprintln!(
        "live reader: {} video packets, dts {first:.3}..{last:.3} s; {} audio packets",
        video.len(),
        audio.len()
    );
    assert!(
        first >= OFFSET_MS as f64 / 1000.0 - MAX_STEP && first < WRAP_S,
        "first video dts relayed by nginx is {first:.3} s; expected just after the {:.3} s start offset, \
         before the 0xFFFFFF ms crossing",
        OFFSET_MS as f64 / 1000.0
    );
    assert!(
        last > WRAP_S + 1.0,
        "live reader stopped at {last:.3} s, before getting well past 0xFFFFFF ms"
    );
    assert_monotonic_no_jump(&video_dts, MAX_STEP, "video dts relayed by nginx");
    assert_monotonic_no_jump(&audio_dts, MAX_STEP, "audio dts relayed by nginx");
    assert_video_continuous(&video.iter().map(|p| p.pts).collect::<Vec<_>>(), FPS, 5.0);

    // The same stream through ffmpeg's reader and FLV writer.
    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_codecs(&info, 1280, 720);
    assert_monotonic_no_jump(&info.video_dts(), MAX_STEP, "video dts in ffmpeg's copy");
    assert_monotonic_no_jump(&info.audio_dts(), MAX_STEP, "audio dts in ffmpeg's copy");
    assert!(
        info.video_packets[0].pts < 0.2,
        "ffmpeg's copy starts video at {:.3} s; the crossing is 0.215 s into the stream and must be inside the copy",
        info.video_packets[0].pts
    );
    assert_video_continuous(&info.video_pts(), FPS, READ_SECS - 0.5);
}

/// `tally record` (720p by default) writes exactly `--duration` of media.
#[test]
fn record_writes_a_clean_flv_of_the_requested_duration() {
    const SECONDS: f64 = 5.0;
    let _serial = realtime_lock();
    require("ffmpeg");
    require("ffprobe");
    let dir = TestDir::new("interop-record");
    let out = dir.join("out.flv");
    let out_arg = out.to_string_lossy().into_owned();

    let output = run_tally(
        &["record", &out_arg, "--duration", "5", "--fast", "--stats"],
        Duration::from_secs(60),
    );
    assert!(
        output.status.success(),
        "tally record exited with {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let complaints = ffprobe_errors(&out);
    assert!(
        complaints.is_empty(),
        "ffprobe -v error {} printed:\n{complaints}",
        out.display()
    );
    let errors = decode_errors(&out);
    assert!(
        errors.trim().is_empty(),
        "decoding {} reported:\n{errors}",
        out.display()
    );
    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_codecs(&info, 1280, 720);
    assert_eq!(
        info.video_packets.len(),
        150,
        "video frames in a 5 s recording at 30 fps"
    );
    assert!(
        info.video_packets[0].key,
        "the recording does not start with a keyframe"
    );
    assert_video_continuous(&info.video_pts(), FPS, SECONDS - 2.0 / FPS);
    let frame = 1.0 / FPS;
    // One frame, plus a millisecond for FLV's timestamp rounding.
    assert_close(
        info.video_duration(FPS),
        SECONDS,
        frame + 0.001,
        "video duration (s)",
    );
    assert_close(
        info.audio_duration(),
        SECONDS,
        frame + 0.001,
        "audio duration (s)",
    );
    assert_audio_continuous(&info.audio_pts(), AUDIO_RATE, SECONDS - 0.1);

    // At default settings the rate controller skips nothing (--stats says so).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains("skipped=0 "), "rate control skipped frames: {last:?}");

    // Our own reader sees every tag ffmpeg sees, with the same timestamps.
    let bytes = std::fs::read(&out).expect("read recording");
    let tags = tally::flv::FlvReader::read_all(bytes).expect("FlvReader reads the recording");
    let media = |ty: tally::flv::TagType| -> Vec<u32> {
        tags.iter()
            .filter(|t| t.tag_type == ty && t.data.get(1) == Some(&1))
            .map(|t| t.timestamp_ms)
            .collect()
    };
    let ms = |pkts: &[f64]| -> Vec<u32> { pkts.iter().map(|s| (s * 1000.0).round() as u32).collect() };
    assert_eq!(media(tally::flv::TagType::Video), ms(&info.video_dts()), "video tags vs ffprobe");
    assert_eq!(media(tally::flv::TagType::Audio), ms(&info.audio_dts()), "audio tags vs ffprobe");
    let (name, meta) = tally::flv::parse_script(&tags[0].data).expect("first tag is metadata");
    assert_eq!(name, "onMetaData");
    let duration = meta.get("duration").and_then(|v| v.as_number()).unwrap_or_default();
    assert_close(duration, SECONDS, frame + 0.001, "patched onMetaData duration (s)");
}
