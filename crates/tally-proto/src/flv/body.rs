//! Tag bodies without the app's media types (FLV 10.1 E.4.2 audio, E.4.3
//! video, E.4.4 script data; ISO 14496-15 5.2.4.1 AVCDecoderConfigurationRecord):
//! the header parsers a server and a reader need, and the pieces the app's
//! tag builder (`tally::tags`) builds its tags from.

use super::{FlvError, FlvTag, TagType};
use crate::amf0::{self, Amf0Value};
use bytes::{BufMut, Bytes, BytesMut};

/// SoundFormat 10 (AAC), SoundRate 3 (44 kHz: always 3 for AAC, the real rate
/// is in the AudioSpecificConfig), SoundSize 1 (16-bit), SoundType 1 (stereo). E.4.2.1.
pub const AAC_AUDIO_HEADER: u8 = 0xAF;
/// FrameType 1 (keyframe) + CodecID 7 (AVC). E.4.3.1.
pub const AVC_KEYFRAME: u8 = 0x17;
/// FrameType 2 (inter frame) + CodecID 7 (AVC).
pub const AVC_INTER: u8 = 0x27;
/// Video codec id for AVC in onMetaData and VIDEODATA.
pub const CODEC_AVC: u8 = 7;
/// Sound format id for AAC.
pub const SOUND_AAC: u8 = 10;

/// ISO 14496-15 5.2.4.1: the AVC decoder configuration for one SPS and one PPS,
/// with 4-byte NALU lengths (lengthSizeMinusOne = 3).
pub fn avc_decoder_configuration_record(sps: &[u8], pps: &[u8]) -> Result<Bytes, FlvError> {
    if sps.len() < 4 || sps[0] & 0x1f != 7 {
        return Err(FlvError::BadParameterSet("SPS must be a NAL unit of type 7, at least 4 bytes"));
    }
    if pps.is_empty() || pps[0] & 0x1f != 8 {
        return Err(FlvError::BadParameterSet("PPS must be a NAL unit of type 8"));
    }
    if sps.len() > u16::MAX as usize || pps.len() > u16::MAX as usize {
        return Err(FlvError::BadParameterSet("parameter set longer than 65535 bytes"));
    }
    let mut b = BytesMut::with_capacity(11 + sps.len() + pps.len());
    b.put_u8(1); // configurationVersion
    b.put_u8(sps[1]); // AVCProfileIndication
    b.put_u8(sps[2]); // profile_compatibility
    b.put_u8(sps[3]); // AVCLevelIndication
    b.put_u8(0xFC | 3); // reserved 6 bits + lengthSizeMinusOne
    b.put_u8(0xE0 | 1); // reserved 3 bits + numOfSequenceParameterSets
    b.put_u16(sps.len() as u16);
    b.put_slice(sps);
    b.put_u8(1); // numOfPictureParameterSets
    b.put_u16(pps.len() as u16);
    b.put_slice(pps);
    Ok(b.freeze())
}

/// AVC end of sequence (AVCPacketType 2).
pub fn video_end_of_sequence(timestamp_ms: u32) -> FlvTag {
    FlvTag::new(TagType::Video, timestamp_ms, Bytes::from_static(&[AVC_KEYFRAME, 2, 0, 0, 0]))
}

const SET_DATA_FRAME: &str = "@setDataFrame";

/// Prefixes a script body with AMF0 "@setDataFrame", as RTMP publishers
/// (FMLE, ffmpeg, OBS) send metadata; servers strip it before relaying.
pub fn set_data_frame(body: &[u8]) -> Bytes {
    let mut b = amf0::encode_all(&[Amf0Value::string(SET_DATA_FRAME)]);
    b.put_slice(body);
    b.freeze()
}

/// The inverse of [`set_data_frame`]: the body without the prefix (unchanged if absent).
pub fn strip_set_data_frame(body: &Bytes) -> Bytes {
    let prefix = 3 + SET_DATA_FRAME.len();
    if body.len() >= prefix && body[0] == 0x02 && &body[3..prefix] == SET_DATA_FRAME.as_bytes() {
        body.slice(prefix..)
    } else {
        body.clone()
    }
}

/// The fields of a VIDEODATA header (E.4.3.1) and AVCVIDEOPACKET (E.4.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTagHeader {
    /// 1 keyframe, 2 inter, 3 disposable, 4 generated, 5 info/command.
    pub frame_type: u8,
    /// 7 = AVC.
    pub codec_id: u8,
    /// For AVC: 0 sequence header, 1 NALU, 2 end of sequence.
    pub avc_packet_type: Option<u8>,
    /// For AVC: CompositionTime (signed 24 bits).
    pub composition_time: i32,
}

/// Parses a video tag body's header.
pub fn parse_video_header(body: &[u8]) -> Result<VideoTagHeader, FlvError> {
    let first = *body.first().ok_or(FlvError::ShortBody("video"))?;
    let codec_id = first & 0x0f;
    let mut h = VideoTagHeader { frame_type: first >> 4, codec_id, avc_packet_type: None, composition_time: 0 };
    if codec_id == CODEC_AVC && h.frame_type != 5 {
        if body.len() < 5 {
            return Err(FlvError::ShortBody("AVC video"));
        }
        h.avc_packet_type = Some(body[1]);
        let raw = i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8; // sign-extend 24 bits
        h.composition_time = raw;
    }
    Ok(h)
}

/// The fields of an AUDIODATA header (E.4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTagHeader {
    /// 10 = AAC.
    pub sound_format: u8,
    /// 0..=3 (5.5, 11, 22, 44 kHz).
    pub sound_rate: u8,
    /// 0 = 8-bit, 1 = 16-bit.
    pub sound_size: u8,
    /// True for stereo.
    pub stereo: bool,
    /// For AAC: 0 sequence header, 1 raw.
    pub aac_packet_type: Option<u8>,
}

/// Parses an audio tag body's header.
pub fn parse_audio_header(body: &[u8]) -> Result<AudioTagHeader, FlvError> {
    let first = *body.first().ok_or(FlvError::ShortBody("audio"))?;
    let sound_format = first >> 4;
    let aac_packet_type = if sound_format == SOUND_AAC {
        Some(*body.get(1).ok_or(FlvError::ShortBody("AAC audio"))?)
    } else {
        None
    };
    Ok(AudioTagHeader {
        sound_format,
        sound_rate: (first >> 2) & 3,
        sound_size: (first >> 1) & 1,
        stereo: first & 1 == 1,
        aac_packet_type,
    })
}

/// Parses a script tag body into its name and value (E.4.4.1).
pub fn parse_script(body: &[u8]) -> Result<(String, Amf0Value), FlvError> {
    let mut input = body;
    let name = amf0::decode(&mut input).map_err(|e| FlvError::BadScript(e.to_string()))?;
    let name = name.as_str().ok_or_else(|| FlvError::BadScript("name is not a string".into()))?.to_string();
    let value = amf0::decode(&mut input).map_err(|e| FlvError::BadScript(e.to_string()))?;
    Ok((name, value))
}

/// The onMetaData properties Tally writes (E.5), in the order ffmpeg writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamMetadata {
    /// Seconds; 0 while live, patched at the end of a file.
    pub duration: f64,
    /// Video, if any: width, height, frame rate, kbit/s.
    pub video: Option<(u32, u32, f64, u32)>,
    /// Audio, if any: sample rate, channels, kbit/s.
    pub audio: Option<(u32, u16, u32)>,
    /// Software that made the stream.
    pub encoder: String,
    /// Bytes; 0 while live, patched at the end of a file.
    pub filesize: f64,
}

impl StreamMetadata {
    /// The ECMA array of properties.
    pub fn to_amf0(&self) -> Amf0Value {
        let mut p: Vec<(String, Amf0Value)> = vec![("duration".into(), Amf0Value::Number(self.duration))];
        if let Some((w, h, fps, kbps)) = self.video {
            p.push(("width".into(), Amf0Value::Number(w as f64)));
            p.push(("height".into(), Amf0Value::Number(h as f64)));
            p.push(("videodatarate".into(), Amf0Value::Number(kbps as f64)));
            p.push(("framerate".into(), Amf0Value::Number(fps)));
            p.push(("videocodecid".into(), Amf0Value::Number(CODEC_AVC as f64)));
        }
        if let Some((rate, ch, kbps)) = self.audio {
            p.push(("audiodatarate".into(), Amf0Value::Number(kbps as f64)));
            p.push(("audiosamplerate".into(), Amf0Value::Number(rate as f64)));
            p.push(("audiosamplesize".into(), Amf0Value::Number(16.0)));
            p.push(("stereo".into(), Amf0Value::Boolean(ch == 2)));
            p.push(("audiocodecid".into(), Amf0Value::Number(SOUND_AAC as f64)));
        }
        p.push(("encoder".into(), Amf0Value::String(self.encoder.clone())));
        p.push(("filesize".into(), Amf0Value::Number(self.filesize)));
        Amf0Value::EcmaArray(p)
    }
}

/// The onMetaData script tag: AMF0 "onMetaData" + ECMA array (E.4.4.1).
pub fn metadata_tag(meta: &StreamMetadata, timestamp_ms: u32) -> FlvTag {
    let body = amf0::encode_all(&[Amf0Value::string("onMetaData"), meta.to_amf0()]);
    FlvTag::new(TagType::Script, timestamp_ms, body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real openh264 output for 1280x720.
    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08, 0x84, 0x6a];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn avc_record_bytes() {
        let r = avc_decoder_configuration_record(SPS, PPS).unwrap();
        let mut want = vec![1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 14];
        want.extend_from_slice(SPS);
        want.extend_from_slice(&[1, 0, 4]);
        want.extend_from_slice(PPS);
        assert_eq!(&r[..], &want[..]);
        assert!(avc_decoder_configuration_record(PPS, SPS).is_err());
        assert!(avc_decoder_configuration_record(&[], PPS).is_err());
    }
}
