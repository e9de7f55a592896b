//! Capture devices, for real where this machine allows it:
//!
//! - a microphone reached through cpal's ALSA backend (a private PulseAudio
//!   server behind an ALSA PCM, see `common::pulse`): a known tone goes in,
//!   is published through nginx-rtmp, and ffmpeg decodes the same tone out;
//! - this machine's real "no camera, no microphone" state: `tally devices`
//!   says so, defaults fall back with a notice, named devices are errors
//!   that list what exists.

use crate::common;

use common::media::{decode_mono, loud_part, rms_dbfs, tone_frequency};
use common::pulse::{FAKE_MIC_DESCRIPTION, FAKE_MIC_PCM, FakeMic};
use common::*;
use std::time::Duration;

/// The fake microphone's tone: 1 kHz at -12 dBFS peak (-15.05 dBFS RMS).
const TONE_HZ: f64 = 1000.0;
const TONE_PEAK_DBFS: f64 = -12.0;
const TONE_RMS_DBFS: f64 = TONE_PEAK_DBFS - 3.0103;

fn home_env(mic: &FakeMic) -> [(&'static str, &std::ffi::OsStr); 1] {
    [("HOME", mic.home().as_os_str())]
}

#[test]
fn microphone_tone_goes_through_cpal_and_rtmp_unchanged() {
    let _serial = realtime_lock();
    require("nginx");
    let mic = FakeMic::start(TONE_HZ, TONE_PEAK_DBFS, 60.0);
    let nginx = Nginx::start();
    let url = nginx.url("mic");
    let out = mic.join("read.flv");

    // cpal lists the device under its ALSA name and hint.
    let listing = spawn_tally_env(&["devices", "--json"], &home_env(&mic)).wait_output(Duration::from_secs(30));
    let json: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("devices --json prints JSON");
    let mics = json["microphones"].as_array().cloned().unwrap_or_default();
    assert!(
        mics.iter().any(|m| m["id"] == FAKE_MIC_PCM && m["name"] == FAKE_MIC_DESCRIPTION),
        "tally devices --json does not list the fake microphone: {json}"
    );

    let audio = format!("mic:{FAKE_MIC_PCM}");
    let tally = spawn_tally_env(
        &["stream", &url, "--video", "test", "--audio", &audio, "--size", "640x360", "--duration", "9", "--stats"],
        &home_env(&mic),
    );
    nginx.wait_publishing("mic", &tally, Duration::from_secs(15));
    let reader = ffmpeg_read(&url, 7.0, &out);
    reader.wait_success(Duration::from_secs(30));
    tally.wait_success(Duration::from_secs(40));
    assert!(
        tally.stderr_text().contains("microphone open"),
        "tally did not open the microphone:\n{}",
        tally.describe()
    );

    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_eq!(info.audio().codec, "aac");
    assert_eq!((info.audio().sample_rate, info.audio().channels), (48_000, 2));
    // The device may take a moment to start; judge the steady tone.
    let samples = decode_mono(&out, 0.0, 10.0, 48_000);
    let tone = loud_part(&samples, 48_000, -40.0);
    assert!(
        tone.len() >= 48_000 * 3,
        "only {:.2} s of tone in {:.2} s of audio read back",
        tone.len() as f64 / 48_000.0,
        samples.len() as f64 / 48_000.0
    );
    // Skip the first and last 100 ms of the tone (onset, codec edges).
    let steady = &tone[4800..tone.len() - 4800];
    let freq = tone_frequency(steady, 48_000);
    let level = rms_dbfs(steady);
    eprintln!("received tone: {freq:.2} Hz at {level:.2} dBFS RMS (sent {TONE_HZ} Hz at {TONE_RMS_DBFS:.2} dBFS)");
    assert!((freq - TONE_HZ).abs() <= TONE_HZ * 0.01, "tone frequency {freq:.2} Hz, sent {TONE_HZ} Hz (±1 %)");
    assert!((level - TONE_RMS_DBFS).abs() <= 1.0, "tone level {level:.2} dBFS RMS, sent {TONE_RMS_DBFS:.2} (±1 dB)");
    // --stats shows the level meter reading the tone.
    assert!(tally.stdout_text().contains("audio=-15dBFS"), "meter never read -15 dBFS:\n{}", tally.stdout_text());
}

#[test]
fn devices_lists_none_here_and_says_so() {
    let out = run_tally(&["devices"], Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Cameras:\n  none found"), "{text}");
    assert!(text.contains("Microphones:"), "{text}");
    let json = run_tally(&["devices", "--json"], Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["cameras"], serde_json::json!([]), "{v}");
    assert!(v["microphones"].is_array());
}

#[test]
fn defaults_fall_back_to_test_pattern_and_silence_with_a_notice() {
    let dir = TestDir::new("fallback");
    let out = dir.join("out.flv");
    let out_arg = out.to_string_lossy().into_owned();
    let run = run_tally(&["record", &out_arg, "--duration", "2", "--fast"], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("no camera found; sending the test pattern"), "{stderr}");
    assert!(stderr.contains("sending silence"), "{stderr}");
    let info = probe(&out);
    assert_eq!(info.video_packets.len(), 60, "{}", info.summary());
    assert!((info.audio_duration() - 2.0).abs() < 0.03, "{}", info.summary());
}

#[test]
fn named_devices_that_do_not_exist_are_errors_listing_what_exists() {
    let dir = TestDir::new("missing-dev");
    let out = dir.join("x.flv");
    let out_arg = out.to_string_lossy().into_owned();
    let cam = run_tally(&["record", &out_arg, "--video", "camera:3", "--audio", "silence", "--duration", "1"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&cam.stderr);
    assert_eq!(cam.status.code(), Some(1), "{err}");
    assert!(err.contains("camera 3 not found; there are none"), "{err}");
    let mic = run_tally(&["record", &out_arg, "--video", "test", "--audio", "mic:usb-podcast", "--duration", "1"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&mic.stderr);
    assert_eq!(mic.status.code(), Some(1), "{err}");
    assert!(err.contains("microphone 'usb-podcast' not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The ALSA `type file` PCM over a `null` slave (the classic fake
/// microphone) has no clock: it delivers thousands of times faster than real
/// time. Tally must not send minutes of audio per second, nor go quiet about
/// it: the recording keeps real time and the misbehaviour is reported.
#[test]
fn a_device_without_a_clock_is_reported_and_kept_to_real_time() {
    let _serial = realtime_lock();
    let dir = TestDir::new("filemic");
    let raw = dir.join("tone.raw");
    common::media::write_tone_raw(&raw, 440.0, -6.0, 5.0);
    std::fs::write(
        dir.join(".asoundrc"),
        format!(
            "pcm.filemic {{\n  type file\n  slave.pcm null\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n  \
             hint {{ show on description \"Unpaced file microphone\" }}\n}}\n",
            raw.display()
        ),
    )
    .expect("write .asoundrc");
    let out = dir.join("out.flv");
    let out_s = out.to_string_lossy().into_owned();
    let home = [("HOME", dir.path().as_os_str())];
    let tally = spawn_tally_env(
        &["record", &out_s, "--video", "test", "--audio", "mic:filemic", "--size", "320x180", "--duration", "6", "--stats"],
        &home,
    );
    tally.wait_success(Duration::from_secs(40));
    let stderr = tally.stderr_text();
    assert!(stderr.contains("faster than real time"), "no warning about the device:\n{}", tally.describe());
    assert!(tally.stdout_text().contains("overruns="), "--stats never showed the overruns:\n{}", tally.stdout_text());
    let info = probe(&out);
    eprintln!("{}", info.summary());
    assert_eq!(info.video_packets.len(), 180, "video is unaffected");
    assert!((info.audio_duration() - 6.0).abs() < 0.05, "audio lasts {:.3} s, not 6 s", info.audio_duration());
    assert_audio_continuous(&info.audio_pts(), 48_000, 5.9);
}
