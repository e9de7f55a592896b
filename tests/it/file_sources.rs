//! Y4M and WAV files as sources: published to nginx-rtmp they arrive whole
//! (every frame, the whole audio), at the file's own size and rate; looping
//! is seamless; broken or unsupported files are clear errors.

use crate::common;

use common::media::{ffmpeg_make, ffmpeg_read_until_end};
use common::*;
use std::time::Duration;

/// 4 s of 320x240 at 25 fps: 100 frames.
const FRAMES: usize = 100;
const SECONDS: f64 = 4.0;
/// One AAC frame at 48 kHz.
const AAC_FRAME: f64 = 1024.0 / 48_000.0;

#[test]
fn y4m_and_wav_published_to_nginx_arrive_whole() {
    let _serial = realtime_lock();
    require("nginx");
    let dir = TestDir::new("files-nginx");
    let y4m = dir.join("in.y4m");
    let wav = dir.join("in.wav");
    let out = dir.join("read.flv");
    let (y4m_s, wav_s) = (y4m.to_string_lossy().into_owned(), wav.to_string_lossy().into_owned());
    ffmpeg_make(&["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", &y4m_s]);
    // 44.1 kHz mono: the source resamples and upmixes.
    ffmpeg_make(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=4", "-ac", "1", &wav_s]);

    let nginx = Nginx::start();
    let url = nginx.url("files");
    let reader = ffmpeg_read_until_end(&url, 4, &out);
    nginx.wait_players("files", 1, Duration::from_secs(10));
    let video = format!("y4m:{y4m_s}");
    let audio = format!("wav:{wav_s}");
    // No --size/--fps: the file's own 320x240 at 25 fps.
    let tally = spawn_tally(&["stream", &url, "--video", &video, "--audio", &audio]);
    tally.wait_success(Duration::from_secs(40));
    reader.wait_success(Duration::from_secs(30));

    let info = probe(&out);
    eprintln!("{}", info.summary());
    let v = info.video();
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 320, 240));
    assert_eq!(info.video_packets.len(), FRAMES, "every Y4M frame arrives once");
    assert_video_continuous(&info.video_pts(), 25.0, SECONDS - 2.0 / 25.0);
    let a = info.audio();
    assert_eq!((a.codec.as_str(), a.sample_rate, a.channels), ("aac", 48_000, 2));
    let d = info.audio_duration();
    assert!((d - SECONDS).abs() <= AAC_FRAME, "audio lasts {d:.4} s, the WAV {SECONDS} s (± one AAC frame)");
    assert_audio_continuous(&info.audio_pts(), 48_000, SECONDS - 0.1);
}

#[test]
fn looped_files_continue_seamlessly() {
    let dir = TestDir::new("files-loop");
    let y4m = dir.join("one.y4m");
    let wav = dir.join("half.wav");
    let out = dir.join("out.flv");
    let (y4m_s, wav_s, out_s) =
        (y4m.to_string_lossy().into_owned(), wav.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    ffmpeg_make(&["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", &y4m_s]);
    ffmpeg_make(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5", "-ac", "2", &wav_s]);
    let video = format!("y4m:{y4m_s}");
    let audio = format!("wav:{wav_s}");
    let run = run_tally(&["record", &out_s, "--video", &video, "--audio", &audio, "--loop", "--duration", "3", "--fast"], Duration::from_secs(60));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_eq!(info.video_packets.len(), 75, "3 s of a 1 s, 25 fps file looped");
    assert_video_continuous(&info.video_pts(), 25.0, 3.0 - 2.0 / 25.0);
    assert_audio_continuous(&info.audio_pts(), 48_000, 2.9);
    assert!((info.audio_duration() - 3.0).abs() <= AAC_FRAME, "{}", info.audio_duration());
}

#[test]
fn unsupported_and_broken_files_are_clear_errors() {
    let dir = TestDir::new("files-bad");
    let y444 = dir.join("444.y4m");
    let junk = dir.join("junk.wav");
    let out = dir.join("out.flv");
    let (y444_s, junk_s, out_s) =
        (y444.to_string_lossy().into_owned(), junk.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    ffmpeg_make(&["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25", "-t", "0.2", "-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe", &y444_s]);
    std::fs::write(&junk, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").expect("write junk");
    let cases = [
        (vec!["--video".to_string(), format!("y4m:{y444_s}"), "--audio".into(), "silence".into()], "colour space '444"),
        (vec!["--video".into(), "test".into(), "--audio".into(), format!("wav:{junk_s}")], "junk.wav"),
        (vec!["--video".into(), "y4m:/nonexistent/clip.y4m".into(), "--audio".into(), "silence".into()], "/nonexistent/clip.y4m"),
    ];
    for (args, expect) in cases {
        let mut all = vec!["record".to_string(), out_s.clone(), "--duration".into(), "1".into()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let run = run_tally(&refs, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{all:?}: {err}");
        assert!(err.contains(expect), "{all:?}: expected {expect:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
