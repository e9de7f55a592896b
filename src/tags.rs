//! FLV tags from the app's encoded packets and stream configurations (FLV
//! 10.1 E.4.2 audio, E.4.3 video, E.5 onMetaData); the body pieces and
//! parsers they rest on are the protocol core's (`crate::flv`, which is
//! `tally_proto::flv`). Uses `media/` and `flv/` only.
//!
//! Was `tally::flv` (with a `mux` inside) over the core's `flv`, and so
//! shared its name with the tag format itself and its file name with the
//! rendition's muxer (`pipeline::muxer`); it only builds tags.

use crate::flv::{AAC_AUDIO_HEADER, AVC_INTER, AVC_KEYFRAME, FlvError, FlvTag, StreamMetadata, TagType, avc_decoder_configuration_record};
use crate::media::{AudioConfig, EncodedPacket, VideoConfig};
use bytes::{BufMut, BytesMut};

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

/// A raw AAC frame (AACPacketType 1).
pub fn audio_tag(pkt: &EncodedPacket) -> FlvTag {
    let mut b = BytesMut::with_capacity(2 + pkt.data.len());
    b.put_slice(&[AAC_AUDIO_HEADER, 1]);
    b.put_slice(&pkt.data);
    FlvTag::new(TagType::Audio, pkt.dts_ms as u32, b.freeze())
}

/// The onMetaData properties of a live stream of these configurations.
pub fn stream_metadata(video: Option<&VideoConfig>, audio: Option<&AudioConfig>, encoder: &str) -> StreamMetadata {
    StreamMetadata {
        duration: 0.0,
        video: video.map(|v| (v.width, v.height, v.fps, v.bitrate_kbps)),
        audio: audio.map(|a| (a.sample_rate, a.channels, a.bitrate_kbps)),
        encoder: encoder.to_string(),
        filesize: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf0::Amf0Value;
    use crate::flv::{metadata_tag, parse_audio_header, parse_script, parse_video_header, set_data_frame, strip_set_data_frame};
    use bytes::Bytes;

    // Real openh264 output for 1280x720.
    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08, 0x84, 0x6a];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

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
        let tag = metadata_tag(&stream_metadata(Some(&v), Some(&a), "Tally"), 0);
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
