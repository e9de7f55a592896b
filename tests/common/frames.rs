//! Pictures judged by what they show: Tally's test pattern (`--video test`)
//! burns its frame number into every frame, so a stream that went through a
//! server, a player or a file can be decoded and read back frame by frame —
//! a frame lost, repeated, reordered or damaged on the way shows as a gap,
//! a repeat or an unreadable picture, whatever the timestamps say.
//!
//! Two decoders: ffmpeg for whatever a player wrote to a file
//! ([`decode_marks`]), the library's openh264 decoder for FLV video bodies
//! an in-process player received ([`marks_of_video_tags`]).
//!
//! The counter box is read by `tally::capture::TestPattern::read_mark`. A
//! frame whose index is a multiple of the rate is a flash (all white, no
//! number); it stands for the one number between its neighbours.

use super::{require, tail};
use std::path::Path;
use std::process::Command;
pub use tally::capture::FrameMark;
use tally::capture::TestPattern;
use tally::decode::H264Decoder;

/// The pattern of `width` x `height` at `fps`, or a panic naming the size.
fn pattern(width: u32, height: u32, fps: u32) -> TestPattern {
    TestPattern::new(width, height, fps).unwrap_or_else(|e| panic!("no test pattern of {width}x{height} at {fps} fps: {e}"))
}

/// Decodes every video frame of the media file at `path` with ffmpeg (in
/// presentation order, `-fps_mode passthrough`: no frame added or dropped
/// to fit a rate) and reads each one's mark; a file the decoder complains
/// about fails. The file must hold
/// `width` x `height` pictures of the pattern at `fps`; a picture of
/// another size is not decoded to it but reads as [`FrameMark::Unreadable`]
/// because its bytes do not line up (and the count of bytes would not
/// divide). Panics when ffmpeg cannot read the file at all.
pub fn decode_marks(path: &Path, width: u32, height: u32, fps: u32) -> Vec<FrameMark> {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    // A damaged frame can hide from the counter — ffmpeg conceals the
    // broken macroblocks from the frame before, and a flipped byte in a
    // static part of the picture shows nowhere near the number — but never
    // from the decoder, which says so.
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg could not decode the video of {} cleanly ({}): {}",
        path.display(),
        out.status,
        tail(&errors, 10)
    );
    let frame = width as usize * height as usize;
    assert!(
        out.stdout.len().is_multiple_of(frame),
        "{}: {} bytes of luma is not a whole number of {width}x{height} pictures",
        path.display(),
        out.stdout.len()
    );
    let pattern = pattern(width, height, fps);
    out.stdout.chunks_exact(frame).map(|y| pattern.read_mark(y, width, height)).collect()
}

/// Decodes FLV video tag bodies (sequence headers included, in the order
/// received) with the library's decoder and reads each picture's mark. A
/// body the decoder rejects is an [`FrameMark::Unreadable`] frame; a frame
/// that yields no picture (a decoder still waiting for a keyframe) is none.
pub fn marks_of_video_tags<'a>(bodies: impl IntoIterator<Item = &'a [u8]>, width: u32, height: u32, fps: u32) -> Vec<FrameMark> {
    let pattern = pattern(width, height, fps);
    let mut decoder = H264Decoder::new().expect("openh264 decoder");
    let mut marks = Vec::new();
    for body in bodies {
        let is_header = body.get(1) == Some(&0);
        match decoder.decode_tag(body, 0) {
            Ok(Some(picture)) => marks.push(pattern.read_mark(&picture.y, picture.width, picture.height)),
            Ok(None) => {}
            Err(_) if is_header => panic!("the decoder refused an AVC sequence header"),
            Err(_) => marks.push(FrameMark::Unreadable),
        }
    }
    marks
}

/// The frame numbers the marks stand for, each flash resolved to the number
/// between its neighbours (the next one's minus one when the next is a
/// number, else the previous one's plus one), checked to be a multiple of
/// `fps` as flashes are. Panics at an unreadable frame or a flash that fits
/// neither neighbour, naming where.
pub fn frame_numbers(marks: &[FrameMark], fps: u32, what: &str) -> Vec<u64> {
    let fps = u64::from(fps);
    let mut numbers: Vec<u64> = Vec::with_capacity(marks.len());
    for (i, mark) in marks.iter().enumerate() {
        let n = match *mark {
            FrameMark::Number(n) => n,
            FrameMark::Flash => {
                let from_next = match marks.get(i + 1) {
                    Some(FrameMark::Number(next)) => next.checked_sub(1),
                    _ => None,
                };
                let from_prev = numbers.last().map(|p| p + 1);
                match from_next.filter(|n| n % fps == 0).or(from_prev.filter(|n| n % fps == 0)) {
                    Some(n) => n,
                    None => panic!("{what}: a flash at frame {i} of {} fits neither neighbour ({})", marks.len(), around(marks, i)),
                }
            }
            FrameMark::Unreadable => {
                panic!("{what}: frame {i} of {} does not show the pattern's counter ({})", marks.len(), around(marks, i))
            }
        };
        numbers.push(n);
    }
    numbers
}

/// The marks around index `i`, for failure messages.
fn around(marks: &[FrameMark], i: usize) -> String {
    let from = i.saturating_sub(3);
    let to = (i + 4).min(marks.len());
    let shown: Vec<String> = marks[from..to]
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let s = match m {
                FrameMark::Number(n) => n.to_string(),
                FrameMark::Flash => "flash".into(),
                FrameMark::Unreadable => "?".into(),
            };
            if from + k == i { format!("[{s}]") } else { s }
        })
        .collect();
    format!("frames {from}..{to}: {}", shown.join(" "))
}

/// The frame numbers of `marks` run n, n+1, n+2... with no gap, repeat or
/// step back, over at least `min_frames` frames; returns (first, last). A
/// stream may start anywhere (a player joins at a keyframe).
pub fn assert_frames_continuous(marks: &[FrameMark], fps: u32, min_frames: usize, what: &str) -> (u64, u64) {
    let numbers = frame_numbers(marks, fps, what);
    assert_numbers_consecutive(&numbers, min_frames, what)
}

/// [`assert_frames_continuous`] on numbers already resolved.
pub fn assert_numbers_consecutive(numbers: &[u64], min_frames: usize, what: &str) -> (u64, u64) {
    assert!(numbers.len() >= min_frames.max(1), "{what}: {} frames decoded, expected at least {min_frames}", numbers.len());
    for (i, w) in numbers.windows(2).enumerate() {
        assert!(
            w[1] == w[0] + 1,
            "{what}: frame {} shows {} after {} (frames {}..{} of {}: {:?})",
            i + 1,
            w[1],
            w[0],
            i.saturating_sub(3),
            (i + 5).min(numbers.len()),
            numbers.len(),
            &numbers[i.saturating_sub(3)..(i + 5).min(numbers.len())]
        );
    }
    (numbers[0], numbers[numbers.len() - 1])
}

/// The frame numbers a player decoded are an unbroken stretch of those the
/// publisher sent (`sent`, decoded from its own recording: an encoder that
/// skipped a frame under rate control skipped it for everyone): from the
/// player's first frame on, every frame sent, in order, none repeated, none
/// missing, none added, over at least `min_frames`. A player may start
/// anywhere (it joins at a keyframe) and stop anywhere. `sent` itself must
/// only go up. Returns (first, last).
pub fn assert_stretch_of_sent(numbers: &[u64], sent: &[u64], min_frames: usize, what: &str) -> (u64, u64) {
    assert!(sent.windows(2).all(|w| w[1] > w[0]), "{what}: the publisher's own frames do not only go up: {sent:?}");
    assert!(numbers.len() >= min_frames.max(1), "{what}: {} frames decoded, expected at least {min_frames}", numbers.len());
    let first = numbers[0];
    let Some(start) = sent.iter().position(|&n| n == first) else {
        panic!("{what}: its first frame, {first}, is not one the publisher sent ({} frames, {:?}..{:?})", sent.len(), sent.first(), sent.last());
    };
    let expected = &sent[start..(start + numbers.len()).min(sent.len())];
    if let Some(i) = numbers.iter().zip(expected).position(|(a, b)| a != b) {
        let (from, to) = (i.saturating_sub(3), (i + 5).min(numbers.len()));
        panic!(
            "{what}: frame {i} shows {} where the publisher sent {} next (received {:?}, sent {:?})",
            numbers[i],
            expected[i],
            &numbers[from..to],
            &expected[from..(i + 5).min(expected.len())]
        );
    }
    assert!(
        numbers.len() <= expected.len(),
        "{what}: {} frames after the publisher's last, {:?}",
        numbers.len() - expected.len(),
        sent.last()
    );
    (first, numbers[numbers.len() - 1])
}

/// Splits resolved frame numbers where the counter starts again lower (a
/// new publisher's pattern counts from 0): each run in order.
pub fn runs_of_publishers(numbers: &[u64]) -> Vec<&[u64]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..numbers.len() {
        if numbers[i] < numbers[i - 1] {
            runs.push(&numbers[start..i]);
            start = i;
        }
    }
    if start < numbers.len() {
        runs.push(&numbers[start..]);
    }
    runs
}

/// The sound of a file: its first audio stream decodes without an error
/// from ffmpeg's decoder into at least `min_secs` of audio that is the
/// pattern's companion tone (`--audio sine`: 440 Hz, a beep each second) —
/// not silence, not noise. Returns the seconds decoded.
///
/// The last audio packet is left out: a player stopped while it records
/// may cut it short (VLC's MPEG-TS ends with a 170-byte half of a 348-byte
/// AAC frame), which says nothing about what it received.
pub fn assert_tone_decodes(path: &Path, min_secs: f64, what: &str) -> f64 {
    const RATE: u32 = 16_000;
    // Two AAC frames: ffmpeg's input `-t` still read the last packet when
    // it was cut 1 ms before it.
    const LAST_PACKET_MARGIN: f64 = 0.043;
    let info = super::probe(path);
    let pts = info.audio_pts();
    let (Some(first), Some(last)) = (pts.iter().copied().reduce(f64::min), pts.iter().copied().reduce(f64::max)) else {
        panic!("{what}: no audio packets in {}", path.display());
    };
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-t", &format!("{:.3}", last - first - LAST_PACKET_MARGIN), "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-af", "pan=mono|c0=c0", "-ar", &RATE.to_string(), "-f", "f32le", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && errors.trim().is_empty(), "{what}: decoding the audio ({}): {errors}", out.status);
    let samples: Vec<f32> = out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let secs = samples.len() as f64 / f64::from(RATE);
    assert!(secs >= min_secs, "{what}: {secs:.2} s of audio decoded, expected at least {min_secs} s");
    // 100 ms windows: most are the bare tone (the beep takes a few of them a second).
    let mut freqs: Vec<f64> = samples.chunks_exact(RATE as usize / 10).map(|w| super::media::tone_frequency(w, RATE)).collect();
    freqs.sort_by(f64::total_cmp);
    let median = freqs.get(freqs.len() / 2).copied().unwrap_or(0.0);
    let level = super::media::rms_dbfs(&samples);
    assert!((median - 440.0).abs() < 10.0 && level > -40.0, "{what}: the audio is not the 440 Hz tone: median {median:.1} Hz at {level:.1} dBFS");
    secs
}

#[cfg(test)]
mod tests {
    // The benches include this module too, without the test harness: there
    // the tests are compiled out and nothing here is used.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn flashes_stand_for_the_number_between_their_neighbours() {
        let marks = [FrameMark::Flash, FrameMark::Number(1), FrameMark::Number(2), FrameMark::Number(29), FrameMark::Flash, FrameMark::Number(31)];
        assert_eq!(frame_numbers(&marks, 30, "t"), vec![0, 1, 2, 29, 30, 31]);
        let restart = [FrameMark::Number(58), FrameMark::Number(59), FrameMark::Flash, FrameMark::Number(61), FrameMark::Number(62), FrameMark::Flash, FrameMark::Number(1)];
        assert_eq!(frame_numbers(&restart, 30, "t"), vec![58, 59, 60, 61, 62, 0, 1]);
        assert_eq!(runs_of_publishers(&[58, 59, 60, 0, 1]), vec![&[58u64, 59, 60][..], &[0, 1][..]]);
    }
}
