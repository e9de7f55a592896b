//! The channels a face reads what the capture session shows from: they
//! outlive any one session (the engine makes them once and hands them to
//! each session it opens, through `session::Feeds`).

use crate::session::{AudioLevels, Feeds, PreviewFrame, SourceHealth};
use std::sync::Arc;
use tokio::sync::watch;

/// The preview, meter and health channels of the capture session.
#[derive(Clone, Debug)]
pub struct SessionFeeds {
    /// The newest preview picture.
    pub preview: watch::Sender<Option<Arc<PreviewFrame>>>,
    /// The newest meter reading.
    pub levels: watch::Sender<AudioLevels>,
    /// What the sources are doing: live, or a stand-in and why.
    pub health: watch::Sender<SourceHealth>,
}

impl Default for SessionFeeds {
    fn default() -> Self {
        SessionFeeds {
            preview: watch::Sender::new(None),
            levels: watch::Sender::new(AudioLevels::default()),
            health: watch::Sender::new(SourceHealth::default()),
        }
    }
}

impl Feeds for SessionFeeds {
    fn preview(&self, picture: Arc<PreviewFrame>) {
        self.preview.send_replace(Some(picture));
    }

    fn levels(&self, levels: AudioLevels) {
        self.levels.send_replace(levels);
    }

    fn health(&self, health: &SourceHealth) {
        self.health.send_replace(health.clone());
    }
}
