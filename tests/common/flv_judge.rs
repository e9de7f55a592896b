//! A recording judged by its pictures, not by Tally's counters: every frame
//! of the test pattern carries its number (`TestPattern::read_mark`), so a
//! file decoded back tells a lost, repeated or reordered frame from its
//! pixels, and its timestamps from the container.
//!
//! The sources are Tally's own test pattern: `--video test`, or a Y4M clip
//! of it under noise ([`pattern_clip`]) when the stream must need its whole
//! bitrate. Looping a clip of `period` frames shows frame `i` as `i % period`.

use super::{TestDir, probe, require, tail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tally::capture::{FrameMark, TestPattern};

/// What each picture of a decoded file says about itself, with its time.
#[derive(Debug)]
pub struct Pictures {
    /// Presentation times, ms, in presentation order.
    pub pts_ms: Vec<i64>,
    /// The mark read from each picture, in the same order.
    pub marks: Vec<FrameMark>,
    /// The share of each picture's pixels at the camera slate's dark grey
    /// (luma 40, `capture::slate`): above 0.6 for a slate, far below for
    /// the pattern.
    pub slate_share: Vec<f64>,
}

/// Luma around the slate's background (40) after encoding.
const SLATE_LUMA: std::ops::RangeInclusive<u8> = 20..=48;

/// Writes `frames` frames of the `w`x`h` test pattern at `fps` under luma
/// noise of ±`noise` as a Y4M file: a source whose frames can be told apart
/// after encoding, and (with noise) one that needs its bitrate.
pub fn pattern_clip(dir: &TestDir, name: &str, (w, h): (u32, u32), fps: u32, frames: u64, noise: u8) -> PathBuf {
    let pattern = TestPattern::new(w, h, fps).expect("a valid test pattern").with_noise(noise);
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(file);
    let written = (|| -> std::io::Result<()> {
        writeln!(out, "YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg")?;
        for i in 0..frames {
            let f = pattern.frame(i);
            out.write_all(b"FRAME\n")?;
            out.write_all(&f.y)?;
            out.write_all(&f.u)?;
            out.write_all(&f.v)?;
        }
        out.flush()
    })();
    written.unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Decodes the video of `path` (a `w`x`h` test pattern at `fps`) and reads
/// every picture's mark; times come from ffprobe's packets (Tally's H.264
/// has no B-frames: decode order is presentation order).
pub fn read_pictures(path: &Path, (w, h): (u32, u32), fps: u32) -> Pictures {
    read_pictures_in(path, (0, 0, w, h), fps)
}

/// [`read_pictures`] of the part (x, y, w, h) of each picture: a `w`x`h`
/// test pattern drawn there (a scene's layer).
pub fn read_pictures_in(path: &Path, (x, y, w, h): (u32, u32, u32, u32), fps: u32) -> Pictures {
    let pattern = TestPattern::new(w, h, fps).expect("a valid test pattern");
    let crop = format!("crop={w}:{h}:{x}:{y}");
    let mut child = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        // The encoder time base of the input stream: a 1/fps one (what the
        // crop filter would bring) merges pictures under 1/fps apart.
        .args(["-map", "0:v", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-vf", &crop, "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let size = (w * h) as usize;
    let mut picture = vec![0u8; size];
    let (mut marks, mut slate_share) = (Vec::new(), Vec::new());
    // One picture at a time: a minute of 640x360 is 500 MB of luma.
    while stdout.read_exact(&mut picture).is_ok() {
        marks.push(pattern.read_mark(&picture, w, h));
        slate_share.push(picture.iter().filter(|y| SLATE_LUMA.contains(y)).count() as f64 / size as f64);
    }
    let status = child.wait().expect("wait for ffmpeg");
    let errors = errors.join().unwrap_or_default();
    assert!(status.success() && errors.trim().is_empty(), "decoding {} ({status}):\n{}", path.display(), tail(&errors, 20));
    let mut pts: Vec<f64> = probe(path).video_pts();
    pts.sort_by(f64::total_cmp);
    assert_eq!(pts.len(), marks.len(), "{}: {} video packets but {} pictures decoded", path.display(), pts.len(), marks.len());
    Pictures { pts_ms: pts.iter().map(|t| (t * 1000.0).round() as i64).collect(), marks, slate_share }
}

/// The mark source frame `index` shows: a flash on every whole second.
pub fn mark_of(index: u64, fps: u32) -> FrameMark {
    if index.is_multiple_of(u64::from(fps)) { FrameMark::Flash } else { FrameMark::Number(index) }
}

impl Pictures {
    /// The source index of the first picture: from the first number read
    /// and its position.
    pub fn first_index(&self, period: Option<u64>) -> Option<u64> {
        let (at, n) = self.marks.iter().enumerate().find_map(|(i, m)| match m {
            FrameMark::Number(n) => Some((i as u64, *n)),
            _ => None,
        })?;
        match period {
            Some(p) => Some((n + p - at % p) % p),
            None => n.checked_sub(at),
        }
    }

    /// Every picture is the source frame after the one before it, from
    /// source frame `first`, and its time is that frame's (1/`fps` apart,
    /// ±1 ms of the container's rounding): nothing lost, repeated, moved or
    /// reordered. `period`: the source is a clip of that many frames, looped.
    /// Returns the number of pictures.
    pub fn assert_every_frame_from(&self, first: u64, fps: u32, period: Option<u64>, what: &str) -> usize {
        assert!(!self.marks.is_empty(), "{what}: no pictures");
        let t0 = self.pts_ms[0];
        for (k, (mark, pts)) in self.marks.iter().zip(&self.pts_ms).enumerate() {
            let index = first + k as u64;
            let shown = period.map_or(index, |p| index % p);
            let want = mark_of(shown, fps);
            let context = || {
                let from = k.saturating_sub(3);
                let around: Vec<String> =
                    (from..(k + 4).min(self.marks.len())).map(|j| format!("#{j} {} ms {:?}", self.pts_ms[j], self.marks[j])).collect();
                format!("{what}: picture {k} of {} (source frame {index}): {}", self.marks.len(), around.join(", "))
            };
            assert_eq!(*mark, want, "{} — expected {want:?}", context());
            let due = t0 + (k as i64 * 1000 + i64::from(fps) / 2) / i64::from(fps);
            assert!((pts - due).abs() <= 1, "{} — at {pts} ms, due at {due} ms", context());
        }
        self.marks.len()
    }
}

/// The recording at `path` holds every frame of the `w`x`h` pattern at
/// `fps` from the broadcast's first (frame 0 at 0 ms) to its last, in order
/// and on time, and at least `min_frames` of them. `period`: the source is
/// a clip of that many frames, looped. Returns the number of frames.
pub fn assert_recording_has_every_frame(path: &Path, size: (u32, u32), fps: u32, period: Option<u64>, min_frames: usize) -> usize {
    let pictures = read_pictures(path, size, fps);
    assert_eq!(pictures.pts_ms.first(), Some(&0), "{}: the recording does not start at 0 ms", path.display());
    let n = pictures.assert_every_frame_from(0, fps, period, &format!("the recording {}", path.display()));
    assert!(n >= min_frames, "{}: {n} frames recorded, expected at least {min_frames}", path.display());
    n
}

/// Video kbit/s of the FLV at `path` in each whole `window_ms` of its own
/// media time (tag timestamps, not arrival): `(window start ms, kbit/s)`.
pub fn video_kbps_by_media_time(path: &Path, window_ms: u32) -> Vec<(u32, f64)> {
    use tally::flv::{FlvReader, TagType};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let reader = FlvReader::new(bytes).unwrap_or_else(|e| panic!("{}: not an FLV: {e}", path.display()));
    let mut bins: Vec<u64> = Vec::new();
    for tag in reader {
        let tag = tag.unwrap_or_else(|e| panic!("{}: a broken tag: {e}", path.display()));
        if tag.tag_type != TagType::Video {
            continue;
        }
        let i = (tag.timestamp_ms / window_ms) as usize;
        if bins.len() <= i {
            bins.resize(i + 1, 0);
        }
        bins[i] += tag.data.len() as u64;
    }
    bins.iter().enumerate().map(|(i, b)| (i as u32 * window_ms, *b as f64 * 8.0 / f64::from(window_ms))).collect()
}

/// The pictures of `path` from `from_s` seconds on (at most `max` of them)
/// as RGB24 at its own size: for colours compared at a layer's place.
pub fn rgb_pictures(path: &Path, (w, h): (u32, u32), from_s: f64, max: usize) -> Vec<Vec<u8>> {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-ss", &format!("{from_s:.3}"), "-i"])
        .arg(path)
        .args(["-map", "0:v", "-frames:v", &max.to_string(), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(out.status.success(), "decoding {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact((w * h * 3) as usize).map(<[u8]>::to_vec).collect()
}

/// The mean RGB of the `(x, y, w, h)` part of an RGB24 picture `width` wide.
pub fn mean_rgb(rgb: &[u8], width: u32, (x, y, w, h): (u32, u32, u32, u32)) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for row in y..y + h {
        for col in x..x + w {
            let i = ((row * width + col) * 3) as usize;
            for (c, s) in sum.iter_mut().enumerate() {
                *s += f64::from(rgb[i + c]);
            }
        }
    }
    sum.map(|s| s / f64::from(w * h))
}
