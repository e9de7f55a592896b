//! Bare openh264 throughput on the test pattern, for `benches/compare.sh`:
//! the same encoder settings as `tally record`, without capture pacing,
//! muxing, queues or file output. Prints `fps=<frames per second>`.
//!
//! Usage: cargo run --release --example raw_h264 -- WxH FRAMES

use std::time::Instant;
use tally::capture::{TestPattern, VideoSource};
use tally::encode::{H264Encoder, H264Settings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).map(String::as_str).unwrap_or("1280x720");
    let frames: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let (w, h) = size.split_once('x').ok_or("size must be WxH")?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let mut pattern = TestPattern::new(w, h, 30)?;
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
