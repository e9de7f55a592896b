//! A feed: one open video source of a session, on its own thread, handing
//! its pictures to the session's tick (libobs's model: the source never
//! pushes the compositor; the tick takes what is there).
//!
//! A live source (camera, screen) runs at its own rate and leaves its newest
//! picture; the tick takes the newest, or the one before again when none
//! came (a late source costs its own layer a repeated frame, never the
//! canvas a stall). A paced source (test pattern, file) fills a queue of
//! [`FEED_QUEUE`] pictures ahead and waits; the tick takes exactly one per
//! tick, so a file goes out frame by frame, none repeated or skipped, and
//! with `--fast` the tick waits for it. A still (image, text, colour) has
//! no thread: its one picture is there from the start.
//!
//! A source that fails is replaced, on the same thread, by a slate of its
//! size saying why; the layer shows that, the rest of the canvas goes on.

use super::Shared;
use super::open::BoxedVideo;
use crate::capture::{SourceState, SourceStatus, VideoSource};
use crate::compose::LayerInput;
use crate::media::VideoFrame;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Pictures a paced source runs ahead of the tick: enough to ride out a
/// slow read, few enough to hold little memory.
pub const FEED_QUEUE: usize = 2;
/// Pictures a live source may hold for the tick: a tick late by this many
/// frames (a loaded machine) still gets every camera frame in order.
const LIVE_QUEUE: usize = 4;
/// Pictures a feed's thread keeps for reuse (see `FRAME_POOL` of the session).
const FEED_POOL: usize = LIVE_QUEUE + 3;

struct FeedState {
    /// The picture the tick took last (or a still's one picture).
    newest: Option<LayerInput>,
    /// A paced source's pictures not yet taken.
    queue: VecDeque<LayerInput>,
    /// Whether the source delivers in real time (may change: a failed
    /// camera's stand-in is a paced slate).
    live: bool,
    /// The source ran out (a file that does not loop).
    ended: bool,
    serial: u64,
}

struct FeedShared {
    state: Mutex<FeedState>,
    /// Wakes the tick when a picture arrives and the thread when one is taken.
    cond: Condvar,
    stop: AtomicBool,
}

impl FeedShared {
    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One open source of a session. Dropping it stops and joins its thread.
pub(crate) struct Feed {
    shared: Arc<FeedShared>,
    thread: Option<JoinHandle<()>>,
    status: Arc<SourceStatus>,
    /// Whether the source has an end (a file that does not loop).
    finite: bool,
}

impl Feed {
    /// Starts `source` on its own thread; it starts pulling when the session's clock does.
    pub(crate) fn start(
        source: BoxedVideo,
        status: Arc<SourceStatus>,
        finite: bool,
        session: &Arc<Shared>,
    ) -> Result<Feed, std::io::Error> {
        let live = source.is_live();
        let shared = Arc::new(FeedShared {
            state: Mutex::new(FeedState { newest: None, queue: VecDeque::new(), live, ended: false, serial: 0 }),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (feed, session, why) = (shared.clone(), session.clone(), status.clone());
        let name = if live { "tally-feed-live" } else { "tally-feed" };
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || run(source, &feed, &session, &why))?;
        Ok(Feed { shared, thread: Some(thread), status, finite })
    }

    /// A still: its one picture, no thread.
    pub(crate) fn still(frame: VideoFrame, alpha: Option<Vec<u8>>, status: Arc<SourceStatus>) -> Feed {
        let input = LayerInput { frame: Arc::new(frame), alpha: alpha.map(Arc::new), serial: 1 };
        let shared = Arc::new(FeedShared {
            state: Mutex::new(FeedState { newest: Some(input), queue: VecDeque::new(), live: true, ended: false, serial: 1 }),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        Feed { shared, thread: None, status, finite: false }
    }

    /// What the source reports (name, live or a stand-in).
    pub(crate) fn status(&self) -> &Arc<SourceStatus> {
        &self.status
    }

    /// The picture for this tick and whether it is new: a paced source's
    /// next one, a live source's newest; the last one again when there is
    /// no new one by the time `wait` allows.
    /// With `newest_only` a live source's queue is skipped to its newest
    /// picture (a layer that is not the lead); otherwise its pictures are
    /// taken in order (the lead camera: none lost to a tick that ran late).
    pub(crate) fn take(&self, wait: Wait, stop: &AtomicBool, newest_only: bool) -> (Option<LayerInput>, bool) {
        let mut s = self.shared.state();
        let fresh = loop {
            let next = if newest_only && s.live {
                let newest = s.queue.pop_back();
                s.queue.clear();
                newest
            } else {
                s.queue.pop_front()
            };
            if let Some(next) = next {
                s.newest = Some(next);
                self.shared.cond.notify_all();
                break true;
            }
            if s.live && matches!(wait, Wait::No) {
                break false;
            }
            if s.ended || stop.load(Ordering::Relaxed) {
                break false;
            }
            let left = match wait {
                Wait::No => break false,
                Wait::Forever => super::POLL,
                Wait::Until(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(super::POLL),
                    _ => break false,
                },
            };
            s = self.shared.cond.wait_timeout(s, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        };
        (s.newest.clone(), fresh)
    }

    /// Whether the source delivers in real time now (a camera, the screen;
    /// not a still, not a failed camera's slate).
    pub(crate) fn is_live(&self) -> bool {
        self.thread.is_some() && self.shared.state().live
    }

    /// Whether the source is paced (the tick takes one picture per tick from it).
    pub(crate) fn is_paced(&self) -> bool {
        !self.shared.state().live
    }

    /// Whether the source ran out and everything it sent was taken.
    pub(crate) fn has_ended(&self) -> bool {
        let s = self.shared.state();
        s.ended && s.queue.is_empty()
    }

    /// Whether the source has an end at all.
    pub(crate) fn is_finite(&self) -> bool {
        self.finite
    }

    /// Waits until the source has a picture (a camera that takes a moment
    /// after opening), at most `timeout`: true when it has one.
    pub(crate) fn wait_first(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut s = self.shared.state();
        loop {
            if s.newest.is_some() || !s.queue.is_empty() || s.ended {
                return s.newest.is_some() || !s.queue.is_empty();
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            s = self.shared.cond.wait_timeout(s, (until - now).min(super::POLL)).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the tick waits for a feed's next picture.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all: the newest there is.
    No,
    /// Until then at most.
    Until(Instant),
    /// Until it comes or the source ends (an unpaced session).
    Forever,
}

/// A frame to fill: one of the pool nobody else holds any more, or a new one.
fn free_frame(pool: &mut Vec<Arc<VideoFrame>>, width: u32, height: u32) -> Arc<VideoFrame> {
    match pool.iter_mut().position(|f| Arc::get_mut(f).is_some()) {
        Some(i) => pool.swap_remove(i),
        None => Arc::new(VideoFrame::black(width, height, 0)),
    }
}

/// The feed's thread: pulls the source until it ends or the feed is dropped.
fn run(mut source: BoxedVideo, feed: &FeedShared, session: &Shared, status: &Arc<SourceStatus>) {
    let Some(clock) = session.clock_or(&feed.stop) else { return };
    source.start(clock);
    let mut pool: Vec<Arc<VideoFrame>> = Vec::with_capacity(FEED_POOL);
    while !feed.stop.load(Ordering::Relaxed) && !session.stop.load(Ordering::Relaxed) {
        // A paced source waits while its queue is full.
        {
            let mut s = feed.state();
            while !s.live && s.queue.len() >= FEED_QUEUE && !feed.stop.load(Ordering::Relaxed) {
                s = feed.cond.wait_timeout(s, super::POLL).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
            }
        }
        if feed.stop.load(Ordering::Relaxed) {
            break;
        }
        let format = source.format();
        let mut picture = free_frame(&mut pool, format.width, format.height);
        let Some(frame) = Arc::get_mut(&mut picture) else { continue };
        match source.fill_next(frame) {
            Ok(true) => {}
            Ok(false) => {
                feed.state().ended = true;
                feed.cond.notify_all();
                return;
            }
            Err(e) => {
                tracing::error!("{}: {e}; a slate goes out in its place", status.name());
                status.set(SourceState::Fallback(format!("failed: {e}")));
                let why = short_reason(&e.to_string());
                let mut slate = crate::capture::slate::SlateSource::new(format, &[status.name(), &why], status.clone());
                slate.start(clock);
                source = Box::new(slate);
                feed.state().live = false;
                continue;
            }
        }
        if pool.len() < FEED_POOL {
            pool.push(picture.clone());
        }
        let mut s = feed.state();
        s.serial += 1;
        let input = LayerInput { frame: picture, alpha: None, serial: s.serial };
        s.queue.push_back(input);
        // A live source never waits: past a few pictures the oldest goes.
        if s.live && s.queue.len() > LIVE_QUEUE {
            s.queue.pop_front();
            status.overruns.fetch_add(1, Ordering::Relaxed);
        }
        drop(s);
        feed.cond.notify_all();
    }
}

/// A reason short enough for a slate line.
fn short_reason(why: &str) -> String {
    const MAX: usize = 48;
    if why.chars().count() <= MAX { why.to_string() } else { format!("{}…", why.chars().take(MAX - 1).collect::<String>()) }
}
