//! What a new session sends first after a reconnection.

use crate::flv::{FlvTag, TagType};

/// Metadata and sequence headers last sent, replayed at the start of every
/// new session so players can decode what follows.
#[derive(Default)]
pub(super) struct ConfigCache {
    pub(super) metadata: Option<FlvTag>,
    pub(super) video: Option<FlvTag>,
    pub(super) audio: Option<FlvTag>,
}

impl ConfigCache {
    pub(super) fn note(&mut self, tag: &FlvTag) {
        match tag.tag_type {
            TagType::Script => self.metadata = Some(tag.clone()),
            TagType::Video if tag.is_config() => self.video = Some(tag.clone()),
            TagType::Audio if tag.is_config() => self.audio = Some(tag.clone()),
            _ => {}
        }
    }
}
