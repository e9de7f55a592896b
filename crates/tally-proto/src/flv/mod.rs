//! FLV: the tag format shared by RTMP media messages and `.flv` files.
//!
//! Spec: Adobe "Video File Format Specification v10.1", Annex E. A tag body
//! (`FlvTag::data`) is exactly what an RTMP audio/video/data message carries,
//! so the same tags feed the publisher, the recorder and (later) the server.
//!
//! Pure: no clock, no sockets. The writer is generic over `Write + Seek` and
//! flushes by media time; the reader validates and bounds everything. What
//! turns encoded packets into tags is the app's (`tally::tags`),
//! since it speaks the app's media types.

mod body;
mod reader;
mod tag;
mod writer;

pub use body::{
    AAC_AUDIO_HEADER, AVC_INTER, AVC_KEYFRAME, AudioTagHeader, CODEC_AVC, SOUND_AAC, StreamMetadata, VideoTagHeader,
    avc_decoder_configuration_record, metadata_tag, parse_audio_header, parse_script, parse_video_header, set_data_frame,
    strip_set_data_frame, video_end_of_sequence,
};
pub use reader::{FlvHeader, FlvReader, MAX_TAG_SIZE};
pub use tag::{FlvTag, STREAM_HEADER, TAG_HEADER_LEN, TagType, nature};
pub use writer::{FLUSH_INTERVAL_MS, FlvWriter};

/// What is wrong with FLV bytes or tag-builder input.
#[derive(Debug, thiserror::Error)]
pub enum FlvError {
    /// The file does not start with "FLV".
    #[error("not an FLV file (bad signature)")]
    BadSignature,
    /// FLV version other than 1.
    #[error("unsupported FLV version {0}")]
    BadVersion(u8),
    /// DataOffset smaller than the 9-byte header or absurdly large.
    #[error("bad FLV header size {0}")]
    BadHeaderSize(u32),
    /// PreviousTagSize does not match the preceding tag (E.3).
    #[error("PreviousTagSize {found} at offset {offset} does not match the previous tag size {expected}")]
    TagSizeMismatch {
        /// Byte offset of the PreviousTagSize field.
        offset: u64,
        /// The size of the previous tag.
        expected: u32,
        /// What the file says.
        found: u32,
    },
    /// A tag larger than [`MAX_TAG_SIZE`].
    #[error("tag of {0} bytes exceeds the limit")]
    TagTooLarge(u32),
    /// A reserved tag type, or an encrypted/filtered tag.
    #[error("unknown or unsupported tag type {0} at offset {1}")]
    UnknownTagType(u8, u64),
    /// The file ends inside a tag (a recording that was cut off).
    #[error("file truncated inside a tag at offset {0}")]
    Truncated(u64),
    /// A tag body too short for its header.
    #[error("{0} tag body too short")]
    ShortBody(&'static str),
    /// Invalid SPS/PPS given to the tag builder.
    #[error("invalid H.264 parameter set: {0}")]
    BadParameterSet(&'static str),
    /// Script data that is not AMF0 "name, value".
    #[error("bad script data: {0}")]
    BadScript(String),
    /// I/O error from the underlying writer/reader.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
