//! FLV: the tag format shared by RTMP media messages and `.flv` files.
//!
//! Spec: Adobe "Video File Format Specification v10.1", Annex E. A tag body
//! (`FlvTag::data`) is exactly what an RTMP audio/video/data message carries,
//! so the same tags feed the publisher, the recorder and (later) the server.
//!
//! The tag format, the reader and the writer live in the protocol core
//! (`tally_proto::flv`, re-exported here); this module adds the muxer, which
//! turns the app's encoded packets and stream configs into tags. Uses
//! `media/` and `amf0/` only.

mod mux;

pub use mux::{audio_sequence_header, audio_tag, stream_metadata, video_sequence_header, video_tag};
pub use tally_proto::flv::*;
