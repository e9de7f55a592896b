//! The audio path's cost per second of audio: device samples -> stereo ->
//! clock-steered resampling to 48 kHz -> 1024-frame blocks -> AAC.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tally::capture::pcm::{BlockCutter, to_stereo};
use tally::capture::resample::StereoResampler;
use tally::encode::{AacEncoder, AacSettings};

/// One second of a device's audio, interleaved f32, 10 ms callbacks.
fn device_second(rate: u32, channels: usize) -> Vec<f32> {
    (0..rate as usize * channels).map(|i| ((i as f32) * 0.01).sin() * 0.3).collect()
}

fn run(input: &[f32], rate: u32, channels: usize, aac: Option<&mut AacEncoder>) -> usize {
    let mut resampler = StereoResampler::new(rate, 48_000, true).expect("resampler");
    resampler.set_relative_ratio(1.0 + 150e-6);
    let mut cutter = BlockCutter::new(48_000, 1024);
    let (mut stereo, mut out) = (Vec::new(), Vec::new());
    let mut blocks = Vec::new();
    for callback in input.chunks(rate as usize / 100 * channels) {
        stereo.clear();
        to_stereo(callback, channels, &mut stereo);
        out.clear();
        resampler.process(&stereo, &mut out).expect("resample");
        cutter.push(&out);
        while let Some(b) = cutter.pop() {
            blocks.push(b);
        }
    }
    let mut bytes = 0;
    if let Some(enc) = aac {
        for b in &blocks {
            bytes += enc.encode(b).expect("aac").iter().map(|p| p.data.len()).sum::<usize>();
        }
    }
    blocks.len() + bytes
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("audio_path_per_second");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    for (rate, channels) in [(48_000u32, 2usize), (44_100, 2), (48_000, 1)] {
        let input = device_second(rate, channels);
        g.bench_function(format!("capture/{rate}Hz_{channels}ch"), |b| b.iter(|| black_box(run(&input, rate, channels, None))));
        let mut enc = AacEncoder::new(&AacSettings { sample_rate: 48_000, channels: 2, bitrate_kbps: 128 }).expect("aac");
        g.bench_function(format!("capture+aac/{rate}Hz_{channels}ch"), |b| {
            b.iter(|| black_box(run(&input, rate, channels, Some(&mut enc))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
