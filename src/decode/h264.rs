//! An H.264 decoder fed FLV video tag bodies (FLV 10.1 E.4.3.1): the AVC
//! sequence header (an AVCDecoderConfigurationRecord, ISO 14496-15 5.2.4.1)
//! configures it, NAL units with their length prefixes follow. Out come
//! I420 [`VideoFrame`]s.

use crate::media::VideoFrame;

/// Why a tag could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// openh264 could not start or failed on the data.
    #[error("H.264 decoder: {0}")]
    Decoder(String),
    /// The tag is not an AVC video tag this decoder understands.
    #[error("not an AVC video tag: {0}")]
    NotAvc(&'static str),
    /// The configuration record is cut short or inconsistent.
    #[error("bad AVC configuration record: {0}")]
    BadConfig(&'static str),
    /// A NAL unit's length runs past the tag.
    #[error("a NAL unit's length ({len}) runs past the tag ({left} bytes left)")]
    BadLength {
        /// The declared length.
        len: usize,
        /// What was left.
        left: usize,
    },
    /// Media before any sequence header.
    #[error("video before the AVC sequence header")]
    NotConfigured,
}

/// Decodes one stream's video tags in order.
pub struct H264Decoder {
    decoder: openh264::decoder::Decoder,
    /// Bytes of each NAL unit's length prefix (1, 2 or 4), once configured.
    length_size: Option<usize>,
    annexb: Vec<u8>,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").field("length_size", &self.length_size).finish_non_exhaustive()
    }
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

impl H264Decoder {
    /// A decoder waiting for its sequence header.
    pub fn new() -> Result<Self, DecodeError> {
        let decoder = openh264::decoder::Decoder::new().map_err(|e| DecodeError::Decoder(e.to_string()))?;
        Ok(H264Decoder { decoder, length_size: None, annexb: Vec::new() })
    }

    /// Feeds one FLV video tag body (`timestamp_ms` becomes the frame's pts).
    /// A sequence header configures the decoder and yields no picture; a
    /// frame yields its picture once the decoder has one.
    pub fn decode_tag(&mut self, body: &[u8], timestamp_ms: u32) -> Result<Option<VideoFrame>, DecodeError> {
        let header = body.get(..5).ok_or(DecodeError::NotAvc("shorter than the AVC video header"))?;
        if header[0] & 0x0F != 7 {
            return Err(DecodeError::NotAvc("codec id is not 7 (AVC)"));
        }
        let data = &body[5..];
        self.annexb.clear();
        match header[1] {
            0 => {
                self.length_size = Some(config_to_annexb(data, &mut self.annexb)?);
            }
            1 => {
                let size = self.length_size.ok_or(DecodeError::NotConfigured)?;
                avcc_to_annexb(data, size, &mut self.annexb)?;
            }
            // End of sequence: nothing to show.
            _ => return Ok(None),
        }
        let decoded = self.decoder.decode(&self.annexb).map_err(|e| DecodeError::Decoder(e.to_string()))?;
        Ok(decoded.map(|yuv| to_frame(&yuv, u64::from(timestamp_ms) * 1000)))
    }
}

/// The record's SPS and PPS as Annex-B into `out`; the NAL length size.
fn config_to_annexb(record: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let cut = DecodeError::BadConfig("cut short");
    if record.first() != Some(&1) {
        return Err(DecodeError::BadConfig("version is not 1"));
    }
    let length_size = usize::from(*record.get(4).ok_or(DecodeError::BadConfig("cut short"))? & 0x03) + 1;
    if length_size == 3 {
        return Err(DecodeError::BadConfig("NAL length size 3"));
    }
    let mut p = 5;
    let nsps = usize::from(*record.get(p).ok_or(DecodeError::BadConfig("cut short"))? & 0x1F);
    p += 1;
    for _ in 0..nsps {
        p = copy_parameter_set(record, p, out)?;
    }
    let npps = usize::from(*record.get(p).ok_or(cut)?);
    p += 1;
    for _ in 0..npps {
        p = copy_parameter_set(record, p, out)?;
    }
    Ok(length_size)
}

fn copy_parameter_set(record: &[u8], p: usize, out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let len = record.get(p..p + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))).ok_or(DecodeError::BadConfig("cut short"))?;
    let set = record.get(p + 2..p + 2 + len).ok_or(DecodeError::BadConfig("a parameter set runs past the record"))?;
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(set);
    Ok(p + 2 + len)
}

/// Length-prefixed NAL units -> Annex-B (what openh264 reads).
fn avcc_to_annexb(mut data: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    while !data.is_empty() {
        let prefix = data.get(..length_size).ok_or(DecodeError::BadLength { len: length_size, left: data.len() })?;
        let len = prefix.iter().fold(0usize, |n, &b| n << 8 | usize::from(b));
        let nal = data
            .get(length_size..length_size + len)
            .ok_or(DecodeError::BadLength { len, left: data.len() - length_size })?;
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        data = &data[length_size + len..];
    }
    Ok(())
}

fn to_frame(yuv: &openh264::decoder::DecodedYUV<'_>, pts_us: u64) -> VideoFrame {
    use openh264::formats::YUVSource;
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    let plane = |src: &[u8], stride: usize, width: usize, height: usize| {
        let mut out = Vec::with_capacity(width * height);
        for row in src.chunks(stride).take(height) {
            out.extend_from_slice(&row[..width.min(row.len())]);
        }
        out
    };
    let (cw, ch) = (w / 2, h / 2);
    VideoFrame {
        width: w as u32,
        height: h as u32,
        y: plane(yuv.y(), sy, w, h),
        u: plane(yuv.u(), su, cw, ch),
        v: plane(yuv.v(), sv, cw, ch),
        pts_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{H264Encoder, H264Settings, VideoOutput};

    #[test]
    fn what_the_encoder_makes_decodes_at_its_size() {
        let mut enc = H264Encoder::new(H264Settings { width: 320, height: 180, fps: 30.0, bitrate_kbps: 500, keyint_secs: 1.0, threads: 1 }).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut pictures = 0;
        for i in 0..10u64 {
            let mut frame = VideoFrame::black(320, 180, i * 33_333);
            frame.y.iter_mut().enumerate().for_each(|(n, p)| *p = (n as u64 + i * 7) as u8);
            let VideoOutput::Frame { packet, config } = enc.encode(&frame).unwrap() else { continue };
            if let Some(config) = config {
                let header = crate::tags::video_sequence_header(&config, 0).unwrap();
                assert!(dec.decode_tag(&header.data, 0).unwrap().is_none());
            }
            let tag = crate::tags::video_tag(&packet);
            if let Some(pic) = dec.decode_tag(&tag.data, tag.timestamp_ms).unwrap() {
                assert_eq!((pic.width, pic.height, pic.y.len(), pic.u.len()), (320, 180, 320 * 180, 160 * 90));
                pictures += 1;
            }
        }
        assert!(pictures >= 9, "{pictures} pictures of 10 frames");
    }

    #[test]
    fn hostile_tags_are_refused_not_panicked_on() {
        let mut dec = H264Decoder::new().unwrap();
        assert!(matches!(dec.decode_tag(&[0x27, 1, 0, 0, 0, 0, 0, 0, 9, 1], 0), Err(DecodeError::NotConfigured)));
        assert!(matches!(dec.decode_tag(&[0x12, 1, 0, 0, 0], 0), Err(DecodeError::NotAvc(_))));
        assert!(matches!(dec.decode_tag(&[0x17, 0, 0, 0, 0, 1, 66, 0, 30, 0xFF, 0xE1, 0x00, 0x40, 1], 0), Err(DecodeError::BadConfig(_))));
        dec.length_size = Some(4);
        assert!(matches!(dec.decode_tag(&[0x27, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1], 0), Err(DecodeError::BadLength { .. })));
    }
}
