//! The tag model (FLV 10.1, E.4.1 FLVTAG).

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of an FLV tag header (E.4.1).
pub const TAG_HEADER_LEN: usize = 11;

/// An FLV file header (E.2) announcing audio and video, followed by the
/// first PreviousTagSize (0): what a live FLV stream starts with.
pub const STREAM_HEADER: [u8; 13] = [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0];

/// TagType (E.4.1): 8 audio, 9 video, 18 script data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagType {
    /// AUDIODATA.
    Audio = 8,
    /// VIDEODATA.
    Video = 9,
    /// SCRIPTDATA (onMetaData).
    Script = 18,
}

impl TagType {
    /// From the 5-bit TagType field; `None` for reserved values.
    pub fn from_u8(v: u8) -> Option<TagType> {
        match v {
            8 => Some(TagType::Audio),
            9 => Some(TagType::Video),
            18 => Some(TagType::Script),
            _ => None,
        }
    }
}

/// One FLV tag: type, 32-bit millisecond timestamp, body.
///
/// `data` is the tag body — exactly an RTMP message payload — shared by
/// reference between every output.
#[derive(Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Audio, video or script.
    pub tag_type: TagType,
    /// Milliseconds (24 bits + TimestampExtended, E.4.1).
    pub timestamp_ms: u32,
    /// Tag body.
    pub data: Bytes,
    /// Known once, when the tag is made (see [`nature`]); queues, the
    /// publisher and the server read these instead of the body.
    keyframe: bool,
    config: bool,
}

/// What a tag is to a player, from its type and the first bytes of its
/// body: a video keyframe (FLV 10.1 E.4.3.1: FrameType 1), and whether it is
/// configuration a decoder cannot do without — metadata, the AVC sequence
/// header (CodecID 7, AVCPacketType 0), the AAC AudioSpecificConfig
/// (SoundFormat 10, AACPacketType 0; E.4.2.1). The one place that reads it.
pub fn nature(tag_type: TagType, body: &[u8]) -> (bool, bool) {
    let first = body.first().copied().unwrap_or(0);
    match tag_type {
        TagType::Video => (first >> 4 == 1, first & 0x0F == 7 && body.get(1) == Some(&0)),
        TagType::Audio => (false, first >> 4 == 10 && body.get(1) == Some(&0)),
        TagType::Script => (false, true),
    }
}

impl FlvTag {
    /// A tag; its nature is read from the body once, here.
    pub fn new(tag_type: TagType, timestamp_ms: u32, data: Bytes) -> FlvTag {
        let (keyframe, config) = nature(tag_type, &data);
        FlvTag { tag_type, timestamp_ms, data, keyframe, config }
    }

    /// A video keyframe.
    pub fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    /// Metadata or a sequence header: never dropped, replayed to new players.
    pub fn is_config(&self) -> bool {
        self.config
    }

    /// The tag as it appears in a file or an HTTP-FLV stream: header, body
    /// and the PreviousTagSize that follows it. `None` for a body over the
    /// 24-bit DataSize limit.
    pub fn to_bytes(&self) -> Option<Bytes> {
        let len = self.data.len();
        if len > 0xFF_FFFF {
            return None;
        }
        let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + len + 4);
        out.put_u8(self.tag_type as u8);
        out.put_uint(len as u64, 3);
        out.put_uint(u64::from(self.timestamp_ms & 0xFF_FFFF), 3);
        out.put_u8((self.timestamp_ms >> 24) as u8);
        out.put_uint(0, 3); // StreamID, always 0
        out.put_slice(&self.data);
        out.put_u32((TAG_HEADER_LEN + len) as u32);
        Some(out.freeze())
    }
}

impl std::fmt::Debug for FlvTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlvTag")
            .field("tag_type", &self.tag_type)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("len", &self.data.len())
            .finish()
    }
}
