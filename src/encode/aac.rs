//! AAC-LC encoding with fdk-aac (raw access units, 1024 samples each).

use super::EncodeError;
use crate::media::{AudioConfig, AudioFrame, Codec, EncodedPacket};
use bytes::Bytes;
use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

/// Samples per channel in one AAC-LC frame (ISO 14496-3, frameLengthFlag 0).
pub const AAC_FRAME_SAMPLES: usize = 1024;

/// fdk-aac's worst case for one LC stereo access unit is 6144 bits per channel
/// (ISO 14496-3 4.5.3.2); twice that leaves room.
const MAX_ACCESS_UNIT: usize = 2 * 6144 / 8 * 2;

/// Most pending PCM kept before encoding: a few frames. Input arrives in
/// blocks of any size, so bound what a caller can make us hold.
const MAX_PENDING_SAMPLES: usize = 48_000 * 2;

/// What the AAC encoder is asked to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AacSettings {
    /// Samples per second (48000 for everything Tally sends).
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u16,
    /// Target bitrate in kbit/s (CBR).
    pub bitrate_kbps: u32,
}

/// An fdk-aac encoder that takes PCM blocks of any size and yields AAC
/// packets timestamped from the sample count.
///
/// Timestamps line the decoded audio up with its input: fdk-aac's codec delay
/// (`nDelay`, 2048 samples at 48 kHz LC as measured here) is padded up to a
/// whole number of frames with leading silence and those priming frames are
/// dropped, so packet `j` decodes to input samples `[1024 j, 1024 (j+1))`.
/// FLV has no edit list to carry a priming offset, so this is the only way a
/// player that decodes from the first packet stays in sync.
pub struct AacEncoder {
    encoder: Encoder,
    config: AudioConfig,
    pending: Vec<i16>,
    out: Vec<u8>,
    priming_frames_left: u64,
    packets_out: u64,
    samples_in: u64,
    origin_us: u64,
    bytes_out: u64,
}

impl AacEncoder {
    /// Creates an encoder; fails with fdk-aac's reason on settings it cannot honour.
    pub fn new(settings: &AacSettings) -> Result<Self, EncodeError> {
        let channels = match settings.channels {
            1 => ChannelMode::Mono,
            2 => ChannelMode::Stereo,
            n => return Err(EncodeError::Settings(format!("{n} audio channels; 1 or 2 supported"))),
        };
        if !(8..=512).contains(&settings.bitrate_kbps) {
            return Err(EncodeError::Settings(format!("audio bitrate {} kbps outside 8..=512", settings.bitrate_kbps)));
        }
        let encoder = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(settings.bitrate_kbps * 1000),
            sample_rate: settings.sample_rate,
            transport: Transport::Raw,
            channels,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| EncodeError::Aac(e.to_string()))?;
        let info = encoder.info().map_err(|e| EncodeError::Aac(e.to_string()))?;
        let conf_len = (info.confSize as usize).min(info.confBuf.len());
        if conf_len == 0 {
            return Err(EncodeError::Aac("encoder reported no AudioSpecificConfig".into()));
        }
        let asc = Bytes::copy_from_slice(&info.confBuf[..conf_len]);
        let delay = info.nDelay as usize;
        let pad = (AAC_FRAME_SAMPLES - delay % AAC_FRAME_SAMPLES) % AAC_FRAME_SAMPLES;
        let priming_frames = ((delay + pad) / AAC_FRAME_SAMPLES) as u64;
        let ch = settings.channels as usize;
        Ok(AacEncoder {
            encoder,
            config: AudioConfig {
                asc,
                sample_rate: settings.sample_rate,
                channels: settings.channels,
                bitrate_kbps: settings.bitrate_kbps,
            },
            pending: vec![0; pad * ch],
            out: vec![0; MAX_ACCESS_UNIT],
            priming_frames_left: priming_frames,
            packets_out: 0,
            samples_in: 0,
            origin_us: 0,
            bytes_out: 0,
        })
    }

    /// The AudioSpecificConfig and parameters for the sequence header.
    pub fn config(&self) -> &AudioConfig {
        &self.config
    }

    /// Bytes of AAC produced so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Encodes a block; returns the packets completed by it (often 0 or 1).
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<EncodedPacket>, EncodeError> {
        if frame.sample_rate != self.config.sample_rate || frame.channels != self.config.channels {
            return Err(EncodeError::Settings(format!(
                "audio block is {} Hz x{}, encoder expects {} Hz x{}",
                frame.sample_rate, frame.channels, self.config.sample_rate, self.config.channels
            )));
        }
        if self.samples_in == 0 {
            // The first block fixes where sample 0 sits on the media clock.
            self.origin_us = frame.pts_us;
        }
        self.samples_in += frame.frames() as u64;
        if self.pending.len() + frame.samples.len() > MAX_PENDING_SAMPLES {
            return Err(EncodeError::Aac(format!(
                "audio block of {} samples exceeds the {MAX_PENDING_SAMPLES}-sample input bound",
                frame.samples.len()
            )));
        }
        self.pending.extend_from_slice(&frame.samples);
        self.drain_full_frames()
    }

    /// Pushes out the audio still inside the codec delay (pads with silence).
    /// Call once at the end of a stream; returns the last packets.
    pub fn finish(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        let ch = self.config.channels as usize;
        let wanted = self.samples_in.div_ceil(AAC_FRAME_SAMPLES as u64);
        let mut packets = self.drain_full_frames()?;
        // Each padded frame pushes one more real frame out of the delay line.
        let mut guard = 0;
        while self.packets_out < wanted && guard < 16 {
            let need = AAC_FRAME_SAMPLES * ch - self.pending.len() % (AAC_FRAME_SAMPLES * ch);
            self.pending.extend(std::iter::repeat_n(0, need));
            packets.extend(self.drain_full_frames()?);
            guard += 1;
        }
        packets.truncate(packets.len().saturating_sub((self.packets_out.saturating_sub(wanted)) as usize));
        self.packets_out = self.packets_out.min(wanted);
        Ok(packets)
    }

    fn drain_full_frames(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        let block = AAC_FRAME_SAMPLES * self.config.channels as usize;
        let mut packets = Vec::new();
        let mut consumed = 0;
        while self.pending.len() - consumed >= block {
            let input = &self.pending[consumed..consumed + block];
            let info = self.encoder.encode(input, &mut self.out).map_err(|e| EncodeError::Aac(e.to_string()))?;
            // fdk-aac consumes whole frames in raw mode; anything else would
            // desynchronise our sample count, so treat it as an encoder fault.
            if info.input_consumed != block {
                return Err(EncodeError::Aac(format!("consumed {} of {block} samples", info.input_consumed)));
            }
            consumed += block;
            if info.output_size == 0 {
                continue;
            }
            if self.priming_frames_left > 0 {
                self.priming_frames_left -= 1;
                continue;
            }
            let samples = self.packets_out * AAC_FRAME_SAMPLES as u64;
            let pts_us = self.origin_us + samples * 1_000_000 / self.config.sample_rate as u64;
            let pts_ms = pts_us / 1000;
            self.packets_out += 1;
            self.bytes_out += info.output_size as u64;
            packets.push(EncodedPacket {
                codec: Codec::Aac,
                data: Bytes::copy_from_slice(&self.out[..info.output_size]),
                pts_ms,
                dts_ms: pts_ms,
                keyframe: true,
            });
        }
        self.pending.drain(..consumed);
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AacSettings {
        AacSettings { sample_rate: 48_000, channels: 2, bitrate_kbps: 128 }
    }

    #[test]
    fn asc_is_48k_stereo_lc() {
        let enc = AacEncoder::new(&settings()).unwrap();
        assert_eq!(&enc.config().asc[..], &[0x11, 0x90]);
    }

    #[test]
    fn packet_count_and_timestamps_follow_samples() {
        let mut enc = AacEncoder::new(&settings()).unwrap();
        let mut packets = Vec::new();
        // one second in odd-sized blocks
        let mut sent = 0u64;
        for n in [1000usize, 480, 24_000, 22_520] {
            let block = AudioFrame {
                sample_rate: 48_000,
                channels: 2,
                samples: (0..n * 2).map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16).collect(),
                pts_us: sent * 1_000_000 / 48_000,
            };
            sent += n as u64;
            packets.extend(enc.encode(&block).unwrap());
        }
        packets.extend(enc.finish().unwrap());
        assert_eq!(packets.len(), 47); // ceil(48000 / 1024)
        for (j, p) in packets.iter().enumerate() {
            assert_eq!(p.pts_ms, (j as u64 * 1024 * 1000) / 48_000);
            assert!(!p.data.is_empty());
        }
    }

    #[test]
    fn wrong_format_is_an_error() {
        let mut enc = AacEncoder::new(&settings()).unwrap();
        let block = AudioFrame { sample_rate: 44_100, channels: 2, samples: vec![0; 2048], pts_us: 0 };
        assert!(enc.encode(&block).is_err());
        assert!(AacEncoder::new(&AacSettings { channels: 6, ..settings() }).is_err());
    }
}
