//! The tag model (FLV 10.1, E.4.1 FLVTAG).

use bytes::Bytes;

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
