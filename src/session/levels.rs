//! The meters: peak and RMS per channel of what the session sends.

/// Meter updates come at least this often while audio flows: a block is
/// measured in slices of this length (20 ms at 48 kHz = 50 updates a second).
pub const LEVEL_SLICE_FRAMES: usize = 960;
/// Full scale for the clipping flag: a sample this close to the rail clips.
const CLIP_LEVEL: i32 = 32_700;

/// The audio meters: one update per slice of [`LEVEL_SLICE_FRAMES`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioLevels {
    /// Peak per channel, dBFS (−120 for silence).
    pub peak_dbfs: Vec<f32>,
    /// RMS per channel, dBFS.
    pub rms_dbfs: Vec<f32>,
    /// A sample reached full scale in this slice.
    pub clipping: bool,
    /// Updates so far in this session.
    pub serial: u64,
    /// The end of the slice on the session clock, µs.
    pub media_us: u64,
}

impl AudioLevels {
    /// The levels of interleaved `samples` with `channels` channels.
    pub fn measure(samples: &[i16], channels: usize, serial: u64) -> AudioLevels {
        let channels = channels.max(1);
        let frames = samples.len() / channels;
        let mut peak = vec![0i32; channels];
        let mut sum = vec![0f64; channels];
        for frame in samples.chunks_exact(channels) {
            for (c, &s) in frame.iter().enumerate() {
                let s = i32::from(s);
                peak[c] = peak[c].max(s.abs());
                sum[c] += f64::from(s * s);
            }
        }
        let db = crate::capture::pcm::Levels::dbfs;
        AudioLevels {
            clipping: peak.iter().any(|&p| p >= CLIP_LEVEL),
            peak_dbfs: peak.iter().map(|&p| db(p as f32 / 32768.0)).collect(),
            rms_dbfs: sum.iter().map(|&s| db(((s / frames.max(1) as f64).sqrt() / 32768.0) as f32)).collect(),
            serial,
            media_us: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_per_channel_and_clipping() {
        let mut samples = Vec::new();
        for i in 0..960 {
            samples.push(if i % 2 == 0 { 16384 } else { -16384 });
            samples.push(0);
        }
        let l = AudioLevels::measure(&samples, 2, 1);
        assert!((l.peak_dbfs[0] + 6.02).abs() < 0.1, "{l:?}");
        assert!((l.rms_dbfs[0] + 6.02).abs() < 0.1, "{l:?}");
        assert_eq!(l.peak_dbfs[1], -120.0);
        assert!(!l.clipping);
        samples[0] = i16::MAX;
        assert!(AudioLevels::measure(&samples, 2, 2).clipping);
    }
}
