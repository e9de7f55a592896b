//! Building and parsing tag bodies (FLV 10.1 E.4.2 audio, E.4.3 video,
//! E.4.4 script data; ISO 14496-15 5.2.4.1 AVCDecoderConfigurationRecord).

use super::{FlvError, FlvTag, TagType};
use crate::amf0::{self, Amf0Value};
use crate::media::{AudioConfig, EncodedPacket, VideoConfig};
use bytes::{BufMut, Bytes, BytesMut};

/// SoundFormat 10 (AAC), SoundRate 3 (44 kHz: always 3 for AAC, the real rate
/// is in the AudioSpecificConfig), SoundSize 1 (16-bit), SoundType 1 (stereo). E.4.2.1.
const AAC_AUDIO_HEADER: u8 = 0xAF;
/// FrameType 1 (keyframe) + CodecID 7 (AVC). E.4.3.1.
const AVC_KEYFRAME: u8 = 0x17;
/// FrameType 2 (inter frame) + CodecID 7 (AVC).
const AVC_INTER: u8 = 0x27;
/// Video codec id for AVC in onMetaData and VIDEODATA.
const CODEC_AVC: u8 = 7;
/// Sound format id for AAC.
const SOUND_AAC: u8 = 10;

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

/// The AVC sequence header tag (AVCPacketType 0, CompositionTime 0).
pub fn video_sequence_header(cfg: &VideoConfig, timestamp_ms: u32) -> Result<FlvTag, FlvError> {
    let record = avc_decoder_configuration_record(&cfg.sps, &cfg.pps)?;
    let mut b = BytesMut::with_capacity(5 + record.len());
    b.put_slice(&[AVC_KEYFRAME, 0, 0, 0, 0]);
    b.put_slice(&record);
    Ok(FlvTag::new(TagType::Video, timestamp_ms, b.freeze()))
}

/// The AAC sequence header tag (AACPacketType 0 + AudioSpecificConfig).
pub fn audio_sequence_header(cfg: &AudioConfig, timestamp_ms: u32) -> FlvTag {
    let mut b = BytesMut::with_capacity(2 + cfg.asc.len());
    b.put_slice(&[AAC_AUDIO_HEADER, 0]);
    b.put_slice(&cfg.asc);
    FlvTag::new(TagType::Audio, timestamp_ms, b.freeze())
}

/// A coded H.264 frame (AVCPacketType 1), timestamp = dts, CompositionTime = pts - dts.
pub fn video_tag(pkt: &EncodedPacket) -> FlvTag {
    let cts = (pkt.pts_ms as i64 - pkt.dts_ms as i64).clamp(-(1 << 23), (1 << 23) - 1) as i32;
    let mut b = BytesMut::with_capacity(5 + pkt.data.len());
    b.put_u8(if pkt.keyframe { AVC_KEYFRAME } else { AVC_INTER });
    b.put_u8(1);
    b.put_slice(&cts.to_be_bytes()[1..]);
    b.put_slice(&pkt.data);
    FlvTag::new(TagType::Video, pkt.dts_ms as u32, b.freeze())
}

/// AVC end of sequence (AVCPacketType 2).
pub fn video_end_of_sequence(timestamp_ms: u32) -> FlvTag {
    FlvTag::new(TagType::Video, timestamp_ms, Bytes::from_static(&[AVC_KEYFRAME, 2, 0, 0, 0]))
}

/// A raw AAC frame (AACPacketType 1).
pub fn audio_tag(pkt: &EncodedPacket) -> FlvTag {
    let mut b = BytesMut::with_capacity(2 + pkt.data.len());
    b.put_slice(&[AAC_AUDIO_HEADER, 1]);
    b.put_slice(&pkt.data);
    FlvTag::new(TagType::Audio, pkt.dts_ms as u32, b.freeze())
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
    /// Metadata for a live stream of these configurations.
    pub fn new(video: Option<&VideoConfig>, audio: Option<&AudioConfig>, encoder: &str) -> Self {
        StreamMetadata {
            duration: 0.0,
            video: video.map(|v| (v.width, v.height, v.fps, v.bitrate_kbps)),
            audio: audio.map(|a| (a.sample_rate, a.channels, a.bitrate_kbps)),
            encoder: encoder.to_string(),
            filesize: 0.0,
        }
    }

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

    #[test]
    fn media_tags_and_headers_parse_back() {
        let pkt = EncodedPacket {
            codec: crate::media::Codec::H264,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            pts_ms: 1040,
            dts_ms: 1000,
            keyframe: true,
        };
        let t = video_tag(&pkt);
        assert_eq!(t.timestamp_ms, 1000);
        let h = parse_video_header(&t.data).unwrap();
        assert_eq!((h.frame_type, h.codec_id, h.avc_packet_type, h.composition_time), (1, 7, Some(1), 40));
        let neg = EncodedPacket { pts_ms: 990, ..pkt.clone() };
        assert_eq!(parse_video_header(&video_tag(&neg).data).unwrap().composition_time, -10);
        let a = audio_sequence_header(
            &AudioConfig { asc: Bytes::from_static(&[0x11, 0x90]), sample_rate: 48000, channels: 2, bitrate_kbps: 128 },
            0,
        );
        assert_eq!(&a.data[..], &[0xAF, 0, 0x11, 0x90]);
        let ah = parse_audio_header(&a.data).unwrap();
        assert_eq!((ah.sound_format, ah.sound_rate, ah.sound_size, ah.stereo, ah.aac_packet_type), (10, 3, 1, true, Some(0)));
        assert!(parse_video_header(&[0x17, 1]).is_err());
        assert!(parse_audio_header(&[]).is_err());
    }

    #[test]
    fn metadata_round_trips_and_set_data_frame_strips() {
        let v = VideoConfig {
            sps: Bytes::from_static(SPS),
            pps: Bytes::from_static(PPS),
            width: 1280,
            height: 720,
            fps: 30.0,
            bitrate_kbps: 2500,
        };
        let a = AudioConfig { asc: Bytes::from_static(&[0x11, 0x90]), sample_rate: 48000, channels: 2, bitrate_kbps: 128 };
        let tag = metadata_tag(&StreamMetadata::new(Some(&v), Some(&a), "Tally"), 0);
        let (name, value) = parse_script(&tag.data).unwrap();
        assert_eq!(name, "onMetaData");
        for (k, want) in [("width", 1280.0), ("height", 720.0), ("videocodecid", 7.0), ("audiocodecid", 10.0), ("framerate", 30.0)] {
            assert_eq!(value.get(k).and_then(Amf0Value::as_number), Some(want), "{k}");
        }
        assert_eq!(value.get("stereo"), Some(&Amf0Value::Boolean(true)));
        let wrapped = set_data_frame(&tag.data);
        assert_eq!(strip_set_data_frame(&wrapped), tag.data);
        assert_eq!(strip_set_data_frame(&tag.data), tag.data);
    }
}
