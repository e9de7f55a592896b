//! Reading media back the way a viewer's player does (ffmpeg decodes), and
//! measuring it: the test pattern's flash against the tone's beep (A/V
//! sync), a tone's frequency and level.

use super::{Proc, require, tail};
use std::path::Path;
use std::process::Command;

/// Frames brighter than this (mean luma of a 32x18 thumbnail) are the flash:
/// the pattern's bars average about 100, the flash is 235.
const FLASH_MEAN_LUMA: f64 = 180.0;

/// Audio above this RMS (dBFS, per 1 ms after a 700 Hz high-pass) is the
/// 1 kHz beep (-6 dBFS); the 440 Hz tone (-20 dBFS) falls far below it
/// after the filter.
const BEEP_RMS_DBFS: f64 = -22.0;

fn ffmpeg_stderr(args: &[&str]) -> String {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg {args:?} failed ({}):\n{}", out.status, tail(&text, 20));
    text
}

fn ffmpeg_stdout(args: &[&str]) -> Vec<u8> {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed ({}):\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stderr), 20)
    );
    out.stdout
}

fn field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(key)? + key.len();
    let rest = line[at..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Presentation times (stream time, `-copyts`) of the first frame of each
/// flash between `start` and `start + duration` seconds.
pub fn flash_times(path: &Path, start: f64, duration: f64) -> Vec<f64> {
    let p = path.to_string_lossy();
    let (ss, t) = (format!("{start}"), format!("{duration}"));
    let log = ffmpeg_stderr(&[
        "-copyts", "-ss", &ss, "-t", &t, "-i", &p, "-an", "-vf", "scale=32:18,format=gray,showinfo", "-f", "null", "-",
    ]);
    let mut flashes = Vec::new();
    let mut in_flash = false;
    for line in log.lines().filter(|l| l.contains("showinfo") && l.contains("pts_time:")) {
        let (Some(pts), Some(mean)) = (field(line, "pts_time:"), field(line, "mean:[")) else { continue };
        let bright = mean > FLASH_MEAN_LUMA;
        if bright && !in_flash {
            flashes.push(pts);
        }
        in_flash = bright;
    }
    flashes
}

/// Onset times (stream time) of each beep between `start` and
/// `start + duration`: the first millisecond whose 1 kHz-band RMS rises
/// above [`BEEP_RMS_DBFS`].
pub fn beep_onsets(path: &Path, start: f64, duration: f64) -> Vec<f64> {
    let p = path.to_string_lossy();
    let (ss, t) = (format!("{start}"), format!("{duration}"));
    let out = ffmpeg_stdout(&[
        "-v",
        "error",
        "-copyts",
        "-ss",
        &ss,
        // Input options: with -copyts an output -t would count from zero.
        "-t",
        &t,
        "-i",
        &p,
        "-vn",
        "-af",
        "highpass=f=700,highpass=f=700,asetnsamples=n=48:p=0,astats=metadata=1:reset=1,\
         ametadata=print:key=lavfi.astats.Overall.RMS_level:file=-",
        "-f",
        "null",
        "-",
    ]);
    let text = String::from_utf8_lossy(&out);
    let mut onsets = Vec::new();
    let mut pts = None;
    let mut loud = false;
    for line in text.lines() {
        if let Some(v) = field(line, "pts_time:") {
            pts = Some(v);
        } else if let Some(rest) = line.strip_prefix("lavfi.astats.Overall.RMS_level=") {
            let level: f64 = rest.trim().parse().unwrap_or(-200.0);
            let now_loud = level > BEEP_RMS_DBFS;
            if now_loud && !loud
                && let Some(t) = pts
            {
                onsets.push(t);
            }
            loud = now_loud;
        }
    }
    onsets
}

/// For each flash, how far the nearest beep onset is from it (beep - flash,
/// seconds), when one is within half a second.
pub fn av_offsets(path: &Path, start: f64, duration: f64) -> Vec<(f64, f64)> {
    let flashes = flash_times(path, start, duration);
    let beeps = beep_onsets(path, start, duration);
    flashes
        .iter()
        .filter_map(|&f| {
            beeps
                .iter()
                .map(|&b| b - f)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                .filter(|d| d.abs() < 0.5)
                .map(|d| (f, d))
        })
        .collect()
}

/// Asserts every flash in the window has its beep within `max_offset`
/// seconds and that at least `min_pairs` pairs were found; returns the offsets.
pub fn assert_av_sync(path: &Path, start: f64, duration: f64, min_pairs: usize, max_offset: f64, what: &str) -> Vec<f64> {
    let pairs = av_offsets(path, start, duration);
    let offsets: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let shown: Vec<String> = pairs.iter().map(|(t, d)| format!("{t:.3}s:{:+.1}ms", d * 1000.0)).collect();
    eprintln!("{what}: A/V offsets (beep - flash) {}", shown.join(" "));
    assert!(
        pairs.len() >= min_pairs,
        "{what}: only {} flash/beep pairs between {start} s and {} s (flashes {:?}, beeps {:?})",
        pairs.len(),
        start + duration,
        flash_times(path, start, duration),
        beep_onsets(path, start, duration)
    );
    for (t, d) in &pairs {
        assert!(d.abs() <= max_offset, "{what}: at {t:.3} s the beep is {:+.1} ms from the flash (limit ±{:.1} ms)", d * 1000.0, max_offset * 1000.0);
    }
    offsets
}

/// Decodes the left channel of the first audio stream between `start` and
/// `start + duration` (seconds, file time) to f32 at `rate`. (Not `-ac 1`:
/// ffmpeg's stereo-to-mono downmix adds the channels at -3 dB each, which
/// reads 3 dB hot for a centred signal.)
pub fn decode_mono(path: &Path, start: f64, duration: f64, rate: u32) -> Vec<f32> {
    let p = path.to_string_lossy();
    let (ss, t, r) = (format!("{start}"), format!("{duration}"), rate.to_string());
    let raw = ffmpeg_stdout(&[
        "-v", "error", "-ss", &ss, "-i", &p, "-t", &t, "-vn", "-af", "pan=mono|c0=c0", "-ar", &r, "-f", "f32le", "-",
    ]);
    raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// RMS level in dBFS (a full-scale sine is -3.01 dBFS).
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -200.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    20.0 * (sum / samples.len() as f64).sqrt().max(1e-10).log10()
}

/// Frequency of a steady tone from its upward zero crossings, interpolated
/// between samples.
pub fn tone_frequency(samples: &[f32], rate: u32) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..samples.len() {
        let (a, b) = (samples[i - 1], samples[i]);
        if a < 0.0 && b >= 0.0 {
            crossings.push((i - 1) as f64 + f64::from(-a / (b - a)));
        }
    }
    if crossings.len() < 2 {
        return 0.0;
    }
    (crossings.len() - 1) as f64 * f64::from(rate) / (crossings[crossings.len() - 1] - crossings[0])
}

/// The longest run of 10 ms windows louder than `threshold_dbfs`, as a slice.
pub fn loud_part(samples: &[f32], rate: u32, threshold_dbfs: f64) -> &[f32] {
    let win = (rate / 100) as usize;
    let (mut best, mut cur) = ((0, 0), None::<usize>);
    for (i, w) in samples.chunks(win).enumerate() {
        if rms_dbfs(w) > threshold_dbfs {
            let s = *cur.get_or_insert(i);
            if i + 1 - s > best.1 - best.0 {
                best = (s, i + 1);
            }
        } else {
            cur = None;
        }
    }
    &samples[best.0 * win..(best.1 * win).min(samples.len())]
}

/// Writes `seconds` of a stereo S16LE sine at `hz` and `dbfs` (peak) at 48 kHz.
pub fn write_tone_raw(path: &Path, hz: f64, dbfs: f64, seconds: f64) {
    let amp = 32767.0 * 10f64.powf(dbfs / 20.0);
    let n = (48_000.0 * seconds) as usize;
    let mut bytes = Vec::with_capacity(n * 4);
    for i in 0..n {
        let v = (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin()).round() as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs ffmpeg to make a test file; panics with its log on failure.
pub fn ffmpeg_make(args: &[&str]) {
    let mut full = vec!["-v", "error", "-y"];
    full.extend_from_slice(args);
    ffmpeg_stderr(&full);
}

/// `ffmpeg -rw_timeout T -i URL -map 0 -c copy -f flv OUT`: a player that
/// joins (before the publisher, if started first) and copies everything
/// until the stream has been gone for `rw_timeout_s` seconds.
pub fn ffmpeg_read_until_end(url: &str, rw_timeout_s: u32, out_path: &Path) -> Proc {
    Proc::spawn(
        "ffmpeg reader (until end)",
        Command::new(require("ffmpeg"))
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", &format!("{}", u64::from(rw_timeout_s) * 1_000_000)])
            .args(["-i", url, "-map", "0", "-c", "copy", "-f", "flv", "-y"])
            .arg(out_path),
    )
}
