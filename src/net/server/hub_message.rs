//! A published message as the server holds it: wrapped once, shared by
//! every player, with its RTMP chunking and FLV tag form computed once.
//! The hub stores these; player queues carry them. (`HubMessage`, in
//! `hub_message`: an RTMP message as such is `rtmp::message`.)

use crate::flv::{FlvTag, TagType};
use crate::rtmp::{CSID_AUDIO, CSID_DATA, CSID_VIDEO, MediaKind, PLAYER_STREAM_ID, RawMessage, encode_standalone};
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// One message of a published stream, shared by every player.
pub struct HubMessage {
    /// Audio, video or data (`onMetaData`).
    pub kind: MediaKind,
    /// Timestamp, ms, as the publisher sent it.
    pub timestamp: u32,
    /// FLV tag body (for data: from `onMetaData` on, without `@setDataFrame`).
    pub payload: Bytes,
    /// A video keyframe.
    pub keyframe: bool,
    /// Metadata or a sequence header: never dropped, replayed to new players.
    pub config: bool,
    /// When the server received it (relay latency, queue age).
    pub received_at: Instant,
    rtmp: OnceLock<Option<Bytes>>,
    flv: OnceLock<Option<Bytes>>,
}

impl std::fmt::Debug for HubMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubMessage")
            .field("kind", &self.kind)
            .field("timestamp", &self.timestamp)
            .field("len", &self.payload.len())
            .field("keyframe", &self.keyframe)
            .field("config", &self.config)
            .finish()
    }
}

impl HubMessage {
    /// Wraps a received message; classifies it from its FLV body.
    pub fn new(kind: MediaKind, timestamp: u32, payload: Bytes) -> Arc<HubMessage> {
        // Read once, here, where the bytes come in from a publisher.
        let (keyframe, config) = crate::flv::nature(tag_type(kind), &payload);
        Arc::new(HubMessage {
            kind,
            timestamp,
            payload,
            keyframe,
            config,
            received_at: Instant::now(),
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        })
    }

    fn raw(&self, stream_id: u32) -> RawMessage {
        let csid = match self.kind {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        };
        RawMessage { csid, timestamp: self.timestamp, type_id: self.kind.type_id(), stream_id, payload: self.payload.clone() }
    }

    /// The message chunked for a player on `stream_id` with outgoing chunk
    /// size `chunk_size`: the shared encoding when those are the server's
    /// defaults (computed once), a private one otherwise.
    pub fn rtmp_bytes(&self, stream_id: u32, chunk_size: u32, shared_chunk_size: u32) -> Option<Bytes> {
        let encode = |sid, cs| {
            let mut out = BytesMut::with_capacity(self.payload.len() + 64);
            encode_standalone(&self.raw(sid), cs, &mut out).ok().map(|()| out.freeze())
        };
        if stream_id == PLAYER_STREAM_ID && chunk_size == shared_chunk_size {
            self.rtmp.get_or_init(|| encode(PLAYER_STREAM_ID, shared_chunk_size)).clone()
        } else {
            encode(stream_id, chunk_size)
        }
    }

    /// The message as an FLV tag (header, body, PreviousTagSize), computed once.
    pub fn flv_bytes(&self) -> Option<Bytes> {
        self.flv
            .get_or_init(|| {
                FlvTag::new(tag_type(self.kind), self.timestamp, self.payload.clone()).to_bytes()
            })
            .clone()
    }
}

fn tag_type(kind: MediaKind) -> TagType {
    match kind {
        MediaKind::Audio => TagType::Audio,
        MediaKind::Video => TagType::Video,
        MediaKind::Data => TagType::Script,
    }
}
