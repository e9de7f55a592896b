//! Bare openh264 throughput on the test pattern, for `benches/compare.sh`:
//! the same encoder settings as `tally record`, without capture pacing,
//! muxing, queues or file output. Prints `fps=<frames per second>`.
//!
//! Usage:
//!   raw_h264 WxH FRAMES          encode FRAMES pre-rendered pattern frames, print fps
//!   raw_h264 --y4m WxH FRAMES    write the same frames as YUV4MPEG2 to stdout, so
//!                                another encoder (ffmpeg) can be fed the identical source

use std::io::Write;
use std::time::Instant;
use tally::capture::{TestPattern, VideoSource};
use tally::encode::{H264Encoder, H264Settings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let y4m = args.first().is_some_and(|a| a == "--y4m");
    if y4m {
        args.remove(0);
    }
    let size = args.first().map(String::as_str).unwrap_or("1280x720");
    let frames: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let (w, h) = size.split_once('x').ok_or("size must be WxH")?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let mut pattern = TestPattern::new(w, h, 30)?;
    if y4m {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        writeln!(out, "YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg")?;
        for _ in 0..frames {
            let f = pattern.next_frame()?.ok_or("pattern ended")?;
            out.write_all(b"FRAME\n")?;
            out.write_all(&f.y)?;
            out.write_all(&f.u)?;
            out.write_all(&f.v)?;
        }
        out.flush()?;
        return Ok(());
    }
    // Pre-render so only encoding is timed.
    let mut input = Vec::new();
    for _ in 0..frames {
        input.push(pattern.next_frame()?.ok_or("pattern ended")?);
    }
    let mut enc = H264Encoder::new(H264Settings {
        width: w,
        height: h,
        fps: 30.0,
        bitrate_kbps: 2500,
        keyint_secs: 2.0,
        threads: 1,
    })?;
    let start = Instant::now();
    for f in &input {
        enc.encode(f)?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("fps={:.1}", frames as f64 / secs);
    Ok(())
}
