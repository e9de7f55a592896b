//! The window's way in: one snapshot to draw, one sink for commands, one
//! callback to be woken by.
//!
//! A face that draws frames (the egui window) needs three things of the
//! engine and no more: everything it shows, in one shared [`Snapshot`];
//! somewhere to send what the person asked for; and a call when there is
//! something new to draw. [`EngineLink`] is those three. [`Engine`]
//! implements it from its watch channels: the snapshot is made again once
//! per change (only the changed part, when the window next asks; never per
//! frame), and a task on the engine's runtime calls the waker; a
//! test implements it with a snapshot it sets by hand and a list of the
//! commands sent (`tests/app/scripted.rs`), so the window's own logic is
//! testable without a runtime, a device or a peer.
//!
//! The window owns no runtime and reads no channel: tokio stays on this
//! side of the link.

use super::viewer::ViewerFrame;
use super::{Command, Engine, EngineError, EngineState, ProcessLoad};
use crate::net::server::ServerConfig;
use crate::pipeline::Stats;
use crate::session::{AudioLevels, PreviewFrame, SourceHealth};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

/// A meter change smaller than this (dB) does not wake the window: the
/// meters are read 50 times a second, and a steady tone moves them by
/// less than anyone sees.
pub const METER_STEP_DB: f32 = 0.5;

/// Everything the window shows, as of the latest change. Each part is
/// shared: a new snapshot copies the pointers of the parts that did not
/// change, never their contents.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The engine's state (broadcast, outputs, sources, server, profiles...).
    pub state: Arc<EngineState>,
    /// The current broadcast's once-a-second stats.
    pub stats: Arc<Stats>,
    /// The newest preview picture of the capture session.
    pub preview: Option<Arc<PreviewFrame>>,
    /// The capture session's audio meters.
    pub levels: Arc<AudioLevels>,
    /// What the capture session's sources are doing (live, or a stand-in and why).
    pub health: Arc<SourceHealth>,
    /// This process's CPU and memory.
    pub load: ProcessLoad,
    /// The viewer preview's newest picture.
    pub viewer: Option<Arc<ViewerFrame>>,
    /// The server a rehearsal starts when none runs (the server panel's defaults).
    pub server_defaults: Arc<ServerConfig>,
}

/// Called by the engine when the snapshot changed in a way worth drawing
/// (a window passes `ctx.request_repaint()`); from any thread.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// What a window needs of the engine: a snapshot source and a command sink.
pub trait EngineLink {
    /// The latest snapshot (cheap: a shared pointer).
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Queues a command; never waits.
    fn send(&self, command: Command) -> Result<(), EngineError>;
    /// Replaces the callback the engine calls when the snapshot changes.
    fn set_waker(&self, waker: Waker);
}

/// The engine's channels a face reads (the engine holds one set; a
/// snapshot is made from a clone of it).
#[derive(Clone, Debug)]
pub(super) struct Feeds {
    pub state: watch::Receiver<EngineState>,
    pub stats: watch::Receiver<Stats>,
    pub preview: watch::Receiver<Option<Arc<PreviewFrame>>>,
    pub levels: watch::Receiver<AudioLevels>,
    pub health: watch::Receiver<SourceHealth>,
    pub load: watch::Receiver<ProcessLoad>,
    pub viewer: watch::Receiver<Option<Arc<ViewerFrame>>>,
}

impl Feeds {
    fn of(engine: &Engine) -> Feeds {
        engine.channels.clone()
    }
}

/// The latest snapshot and the window's waker. The snapshot is made again
/// only when a channel changed since it was made (and then only the
/// changed part), when the window next asks: never per frame, and never
/// behind the engine's state (a test that saw the state change draws it).
pub(super) struct SnapshotFeed {
    current: Mutex<(Feeds, Arc<Snapshot>)>,
    waker: Arc<Mutex<Option<Arc<Waker>>>>,
}

impl SnapshotFeed {
    fn latest(&self) -> Arc<Snapshot> {
        let Ok(mut current) = self.current.lock() else { return Arc::default() };
        let (feeds, snapshot) = &mut *current;
        let mut next: Option<Snapshot> = None;
        let changed = |rx_changed: Result<bool, watch::error::RecvError>| rx_changed.unwrap_or(false);
        if changed(feeds.state.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).state = Arc::new(feeds.state.borrow_and_update().clone());
        }
        if changed(feeds.stats.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).stats = Arc::new(feeds.stats.borrow_and_update().clone());
        }
        if changed(feeds.preview.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).preview = feeds.preview.borrow_and_update().clone();
        }
        if changed(feeds.levels.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).levels = Arc::new(feeds.levels.borrow_and_update().clone());
        }
        if changed(feeds.health.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).health = Arc::new(feeds.health.borrow_and_update().clone());
        }
        if changed(feeds.load.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).load = *feeds.load.borrow_and_update();
        }
        if changed(feeds.viewer.has_changed()) {
            next.get_or_insert_with(|| (**snapshot).clone()).viewer = feeds.viewer.borrow_and_update().clone();
        }
        if let Some(next) = next {
            *snapshot = Arc::new(next);
        }
        snapshot.clone()
    }
}

/// Makes the feed and starts the task that wakes the window: on a change
/// of the state, the stats, a picture or the sources' health, and of the
/// meters only when they moved by [`METER_STEP_DB`]; the once-a-second
/// process load wakes nothing (it is drawn with whatever wakes the window
/// next).
fn start_feed(engine: &Engine) -> Arc<SnapshotFeed> {
    let mut feeds = Feeds::of(engine);
    let snapshot = Snapshot {
        state: Arc::new(feeds.state.borrow_and_update().clone()),
        stats: Arc::new(feeds.stats.borrow_and_update().clone()),
        preview: feeds.preview.borrow_and_update().clone(),
        levels: Arc::new(feeds.levels.borrow_and_update().clone()),
        health: Arc::new(feeds.health.borrow_and_update().clone()),
        load: *feeds.load.borrow_and_update(),
        viewer: feeds.viewer.borrow_and_update().clone(),
        server_defaults: Arc::new(engine.server_defaults().clone()),
    };
    let feed = Arc::new(SnapshotFeed { current: Mutex::new((feeds, Arc::new(snapshot))), waker: Arc::default() });
    let waker = feed.waker.clone();
    let Feeds { mut state, mut stats, mut preview, mut levels, mut health, mut viewer, .. } = Feeds::of(engine);
    engine.runtime().spawn(async move {
        let mut drawn = levels.borrow_and_update().clone();
        loop {
            tokio::select! {
                c = state.changed() => if c.is_err() { break },
                c = stats.changed() => if c.is_err() { break },
                c = preview.changed() => if c.is_err() { break },
                c = viewer.changed() => if c.is_err() { break },
                c = health.changed() => if c.is_err() { break },
                c = levels.changed() => {
                    if c.is_err() { break }
                    let now = levels.borrow_and_update().clone();
                    if !meters_moved(&drawn, &now) {
                        continue;
                    }
                    drawn = now;
                }
            }
            // Called outside the lock: a waker may take its time.
            let wake = waker.lock().ok().and_then(|w| w.clone());
            if let Some(wake) = wake {
                wake();
            }
        }
    });
    feed
}

/// True when the meters moved enough to be worth drawing again.
pub fn meters_moved(drawn: &AudioLevels, now: &AudioLevels) -> bool {
    if drawn.clipping != now.clipping || drawn.peak_dbfs.len() != now.peak_dbfs.len() {
        return true;
    }
    let moved = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(x, y)| (x - y).abs() > METER_STEP_DB);
    moved(&drawn.peak_dbfs, &now.peak_dbfs) || moved(&drawn.rms_dbfs, &now.rms_dbfs)
}

/// The engine's feed, started on first use (the command line never asks).
#[derive(Default)]
pub(super) struct LazyFeed(OnceLock<Arc<SnapshotFeed>>);

impl LazyFeed {
    fn get(&self, engine: &Engine) -> &SnapshotFeed {
        self.0.get_or_init(|| start_feed(engine))
    }
}

impl EngineLink for Engine {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.feed.get(self).latest()
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        Engine::send(self, command)
    }

    fn set_waker(&self, waker: Waker) {
        if let Ok(mut w) = self.feed.get(self).waker.lock() {
            *w = Some(Arc::new(waker));
        }
    }
}

/// A shared engine is a link too: a test holds the engine and gives the
/// window a clone.
impl<L: EngineLink + ?Sized> EngineLink for Arc<L> {
    fn snapshot(&self) -> Arc<Snapshot> {
        (**self).snapshot()
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        (**self).send(command)
    }

    fn set_waker(&self, waker: Waker) {
        (**self).set_waker(waker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meters_wake_the_window_only_when_they_move_half_a_decibel() {
        let at = |db: f32| AudioLevels { peak_dbfs: vec![db, db], rms_dbfs: vec![db - 3.0, db - 3.0], ..Default::default() };
        assert!(!meters_moved(&at(-20.0), &at(-20.4)));
        assert!(meters_moved(&at(-20.0), &at(-20.6)));
        assert!(meters_moved(&at(-20.0), &AudioLevels { peak_dbfs: vec![-20.0], ..Default::default() }), "channels changed");
    }
}
