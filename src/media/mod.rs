//! Plain media data shared by every stage: raw frames from capture, encoded
//! packets from the encoders, codec configuration, and the one clock.
//!
//! This module owns no threads, no I/O and no codecs. Every other module may
//! use it; it uses nothing of Tally's.

mod clock;
pub mod rendition;
pub mod scale;

pub use clock::MediaClock;
pub use rendition::FrameSize;

use bytes::Bytes;

/// One raw video frame, planar I420 (Y full size, U and V quarter size).
///
/// Width and height are even: I420 chroma planes are subsampled 2x2.
#[derive(Clone)]
pub struct VideoFrame {
    /// Luma width in pixels.
    pub width: u32,
    /// Luma height in pixels.
    pub height: u32,
    /// Y plane, `width * height` bytes, stride = width.
    pub y: Vec<u8>,
    /// U (Cb) plane, `width/2 * height/2` bytes, stride = width/2.
    pub u: Vec<u8>,
    /// V (Cr) plane, `width/2 * height/2` bytes, stride = width/2.
    pub v: Vec<u8>,
    /// Presentation time in microseconds on the broadcast's [`MediaClock`].
    pub pts_us: u64,
}

impl VideoFrame {
    /// A black frame of the given size (dimensions are rounded down to even).
    pub fn black(width: u32, height: u32, pts_us: u64) -> Self {
        let (w, h) = (width & !1, height & !1);
        let luma = (w as usize) * (h as usize);
        VideoFrame {
            width: w,
            height: h,
            y: vec![16; luma],
            u: vec![128; luma / 4],
            v: vec![128; luma / 4],
            pts_us,
        }
    }
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("pts_us", &self.pts_us)
            .finish_non_exhaustive()
    }
}

/// A block of interleaved signed 16-bit PCM.
#[derive(Clone)]
pub struct AudioFrame {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved channel count.
    pub channels: u16,
    /// Interleaved samples: `frames * channels` values.
    pub samples: Vec<i16>,
    /// Presentation time of the first sample, microseconds on the [`MediaClock`].
    pub pts_us: u64,
}

impl AudioFrame {
    /// Number of sample frames (samples per channel) in this block.
    pub fn frames(&self) -> usize {
        if self.channels == 0 {
            0
        } else {
            self.samples.len() / self.channels as usize
        }
    }
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("frames", &self.frames())
            .field("pts_us", &self.pts_us)
            .finish()
    }
}

/// Which codec an [`EncodedPacket`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC; packet data is AVCC (4-byte big-endian NALU lengths).
    H264,
    /// AAC-LC; packet data is one raw access unit (no ADTS header).
    Aac,
}

/// One compressed access unit, ready to be muxed.
///
/// `data` is reference-counted: every output (publishers, recorder, server
/// subscribers) shares the same allocation.
#[derive(Clone)]
pub struct EncodedPacket {
    /// Codec of the payload.
    pub codec: Codec,
    /// Payload: AVCC NAL units for H.264, a raw AAC frame for AAC.
    pub data: Bytes,
    /// Presentation timestamp, milliseconds from the start of the broadcast.
    pub pts_ms: u64,
    /// Decode timestamp, milliseconds. Equal to `pts_ms` for streams without B-frames.
    pub dts_ms: u64,
    /// True for an IDR frame (video) and for every audio frame.
    pub keyframe: bool,
}

impl std::fmt::Debug for EncodedPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedPacket")
            .field("codec", &self.codec)
            .field("len", &self.data.len())
            .field("pts_ms", &self.pts_ms)
            .field("dts_ms", &self.dts_ms)
            .field("keyframe", &self.keyframe)
            .finish()
    }
}

/// H.264 decoder configuration, as needed for an AVCDecoderConfigurationRecord.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoConfig {
    /// Sequence parameter set NAL unit, without start code.
    pub sps: Bytes,
    /// Picture parameter set NAL unit, without start code.
    pub pps: Bytes,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Nominal frame rate.
    pub fps: f64,
    /// Target bitrate in kbit/s (for metadata).
    pub bitrate_kbps: u32,
}

/// AAC decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// ISO 14496-3 AudioSpecificConfig (e.g. `[0x11, 0x90]` for 48 kHz stereo LC).
    pub asc: Bytes,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Target bitrate in kbit/s (for metadata).
    pub bitrate_kbps: u32,
}
