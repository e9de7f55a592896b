//! WAV files as an audio source (hound): any PCM or float layout hound reads,
//! converted to the broadcast's 48 kHz stereo, paced by the pipeline like a
//! live device, looping on request.
//!
//! A file that is cut short (its header promises more samples than it holds,
//! as a crashed recorder leaves it) ends the source with a warning at the
//! last whole sample frame.

use super::pcm::{BlockCutter, to_stereo};
use super::resample::StereoResampler;
use super::{AUDIO_BLOCK_FRAMES, AudioFormat, AudioSource, CaptureError, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use crate::media::AudioFrame;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Sample frames read from the file per step (~20 ms at 48 kHz).
const READ_FRAMES: usize = 1024;

/// What a WAV file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Sample frames the header declares.
    pub frames: u64,
}

/// A WAV file as a (non-live) audio source.
pub struct WavSource {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    info: WavInfo,
    looping: bool,
    resampler: StereoResampler,
    cutter: BlockCutter,
    out_rate: u32,
    /// Scratch: file samples as f32, and the same as stereo.
    native: Vec<f32>,
    stereo: Vec<f32>,
    resampled: Vec<f32>,
    /// Frames read in the current pass.
    pass_frames: u64,
    ended: bool,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource").field("path", &self.path).field("info", &self.info).finish_non_exhaustive()
    }
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> CaptureError {
    CaptureError::Format(format!("{}: {msg}", path.display()))
}

impl WavSource {
    /// Opens `path`; blocks come out as `out_rate` Hz stereo.
    pub fn open(path: &Path, out_rate: u32, looping: bool) -> Result<Self, CaptureError> {
        let reader = hound::WavReader::open(path).map_err(|e| bad(path, e))?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.channels > MAX_CHANNELS {
            return Err(bad(path, format!("{} channels (1..={MAX_CHANNELS} supported)", spec.channels)));
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
            return Err(bad(path, format!("sample rate {} Hz outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}", spec.sample_rate)));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => {}
            (f, b) => return Err(bad(path, format!("{b}-bit {f:?} samples are not supported"))),
        }
        let info = WavInfo { sample_rate: spec.sample_rate, channels: spec.channels, frames: u64::from(reader.duration()) };
        Ok(WavSource {
            path: path.to_path_buf(),
            reader,
            spec,
            info,
            looping,
            resampler: StereoResampler::new(spec.sample_rate, out_rate, false)?,
            cutter: BlockCutter::new(out_rate, AUDIO_BLOCK_FRAMES),
            out_rate,
            native: Vec::new(),
            stereo: Vec::new(),
            resampled: Vec::new(),
            pass_frames: 0,
            ended: false,
        })
    }

    /// What the file holds.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// Reads up to [`READ_FRAMES`] frames as f32 into `native`; `Ok(0)` at the end.
    fn read_some(&mut self) -> Result<usize, CaptureError> {
        self.native.clear();
        let want = READ_FRAMES * usize::from(self.spec.channels);
        let scale = match self.spec.bits_per_sample {
            8 => 1.0 / 128.0,
            16 => 1.0 / 32_768.0,
            24 => 1.0 / 8_388_608.0,
            _ => 1.0 / 2_147_483_648.0,
        };
        let result: Result<(), hound::Error> = match self.spec.sample_format {
            hound::SampleFormat::Float => self.reader.samples::<f32>().take(want).try_for_each(|s| {
                self.native.push(s?);
                Ok(())
            }),
            hound::SampleFormat::Int => self.reader.samples::<i32>().take(want).try_for_each(|s| {
                self.native.push(s? as f32 * scale);
                Ok(())
            }),
        };
        if let Err(e) = result {
            // hound reports a short data chunk as an I/O error at the end.
            tracing::warn!(file = %self.path.display(), after_frames = self.pass_frames, error = %e, "WAV file is cut short; stopping there");
        }
        let frames = self.native.len() / usize::from(self.spec.channels);
        self.native.truncate(frames * usize::from(self.spec.channels));
        Ok(frames)
    }
}

impl AudioSource for WavSource {
    fn format(&self) -> AudioFormat {
        AudioFormat { sample_rate: self.out_rate, channels: 2 }
    }

    fn is_live(&self) -> bool {
        false
    }

    fn next_block(&mut self) -> Result<Option<AudioFrame>, CaptureError> {
        loop {
            if let Some(block) = self.cutter.pop() {
                return Ok(Some(block));
            }
            if self.ended {
                return Ok(self.cutter.pop_rest());
            }
            let frames = self.read_some()?;
            if frames == 0 {
                if self.looping && self.pass_frames > 0 {
                    self.reader.seek(0).map_err(|e| bad(&self.path, e))?;
                    self.pass_frames = 0;
                    continue;
                }
                self.resampled.clear();
                self.resampler.flush(&mut self.resampled)?;
                self.cutter.push(&self.resampled);
                self.ended = true;
                continue;
            }
            self.pass_frames += frames as u64;
            self.stereo.clear();
            to_stereo(&self.native, usize::from(self.spec.channels), &mut self.stereo);
            self.resampled.clear();
            self.resampler.process(&self.stereo, &mut self.resampled)?;
            self.cutter.push(&self.resampled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tally-wav-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(path: &Path, spec: hound::WavSpec, frames: usize, value: impl Fn(usize, u16) -> i32) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for c in 0..spec.channels {
                match spec.sample_format {
                    hound::SampleFormat::Int => w.write_sample(value(i, c)).unwrap(),
                    hound::SampleFormat::Float => w.write_sample(value(i, c) as f32 / 32768.0).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
    }

    fn drain(s: &mut WavSource, max: usize) -> Vec<AudioFrame> {
        std::iter::from_fn(|| s.next_block().unwrap()).take(max).collect()
    }

    #[test]
    fn stereo_48k_passes_through_in_exact_blocks() {
        let d = tmp();
        let p = d.join("a.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 48_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        write(&p, spec, 3000, |i, c| if c == 0 { i as i32 } else { -(i as i32) });
        let mut s = WavSource::open(&p, 48_000, false).unwrap();
        assert_eq!(s.info(), WavInfo { sample_rate: 48_000, channels: 2, frames: 3000 });
        let blocks = drain(&mut s, 10);
        assert_eq!(blocks.iter().map(AudioFrame::frames).collect::<Vec<_>>(), vec![1024, 1024, 952]);
        assert_eq!(blocks[1].pts_us, 21_333);
        assert_eq!(&blocks[1].samples[..4], &[1024, -1024, 1025, -1025]);
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn mono_24bit_and_float_and_looping() {
        let d = tmp();
        let p = d.join("m.wav");
        let spec = hound::WavSpec { channels: 1, sample_rate: 48_000, bits_per_sample: 24, sample_format: hound::SampleFormat::Int };
        write(&p, spec, 1000, |_, _| 4_194_304); // half scale
        let mut s = WavSource::open(&p, 48_000, true).unwrap();
        let blocks = drain(&mut s, 3);
        assert_eq!(blocks.len(), 3);
        assert!(blocks.iter().all(|b| b.frames() == 1024));
        assert!(blocks[2].samples.iter().all(|&v| (16_383..=16_384).contains(&v)));
        assert_eq!(blocks[2].pts_us, 42_666);

        let f = d.join("f.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 48_000, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
        write(&f, spec, 100, |_, _| -8192);
        let mut s = WavSource::open(&f, 48_000, false).unwrap();
        let b = s.next_block().unwrap().unwrap();
        assert_eq!((b.frames(), b.samples[0]), (100, -8192));
        assert!(s.next_block().unwrap().is_none());
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn resamples_44k1_to_the_right_length() {
        let d = tmp();
        let p = d.join("r.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 44_100, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        write(&p, spec, 44_100, |i, _| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 44_100.0).sin() * 10_000.0) as i32);
        let mut s = WavSource::open(&p, 48_000, false).unwrap();
        let total: usize = drain(&mut s, 100).iter().map(AudioFrame::frames).sum();
        assert!((47_990..=48_010).contains(&total), "{total}");
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn bad_and_cut_files() {
        let d = tmp();
        let p = d.join("x.wav");
        std::fs::write(&p, b"RIFF....WAVEjunk").unwrap();
        assert!(WavSource::open(&p, 48_000, false).is_err());
        assert!(WavSource::open(&d.join("missing.wav"), 48_000, false).is_err());
        // A file whose data chunk is cut short: what is there plays, then it ends.
        let c = d.join("cut.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 48_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        write(&c, spec, 2000, |_, _| 100);
        let bytes = std::fs::read(&c).unwrap();
        std::fs::write(&c, &bytes[..bytes.len() - 4001]).unwrap();
        let mut s = WavSource::open(&c, 48_000, false).unwrap();
        let total: usize = drain(&mut s, 10).iter().map(AudioFrame::frames).sum();
        assert_eq!(total, 2000 - 1001);
        std::fs::remove_dir_all(d).ok();
    }
}
