//! The capture session's part: opening it (a task: devices and files take
//! a moment), switching and closing its sources and putting scenes on air
//! (tasks run in the order asked: the last switch asked is the one on
//! air), the preview, hide and mute, and listing the devices a picker offers.

use super::latest::Latest;
use super::{Event as ControllerEvent, Outbox, Tail};
use crate::engine::command::SourcesCommand;
use crate::engine::errors::SourcesError;
use crate::engine::state::{DeviceEntry, Devices, SourcesState};
use crate::engine::SessionFeeds;
use crate::session::scene::{Scene, Transition};
use crate::session::{CaptureSession, Pacing, PreviewRequest, SessionSpec};
use std::sync::Arc;

/// What the capture session's tasks report.
pub(in crate::engine) enum Event {
    /// A session opened (or not) for the open numbered `generation`.
    Opened { generation: u64, result: Result<CaptureSession, SourcesError> },
    /// A source was switched (or not) in the session of `generation`.
    Switched { generation: u64, video: bool, result: Result<(), SourcesError> },
    /// The cameras were listed.
    Cameras(Result<Vec<DeviceEntry>, SourcesError>),
    /// The microphones were listed.
    Microphones(Result<Vec<DeviceEntry>, SourcesError>),
}

/// The capture session the controller holds (the window's, or one opened for a plan).
pub(super) struct OpenSession {
    pub session: Arc<CaptureSession>,
}

/// The capture session's slice of state.
pub(super) struct Capture {
    feeds: SessionFeeds,
    open: Option<OpenSession>,
    /// Counts opens and closes: a session opened for an older one is closed on arrival.
    generation: u64,
    preview: Option<PreviewRequest>,
    /// Hide camera / mute microphone, kept across capture sessions.
    hidden: bool,
    muted: bool,
    /// A face watches the camera list.
    watch_devices: bool,
    /// Switches and scenes shown, one after the other.
    switches: Tail,
    /// The edit of the scene on air waiting to be shown (a drag sends
    /// many), and the session generation it waits to be shown in.
    edit: Latest<Scene>,
    edit_generation: u64,
}

impl Capture {
    pub fn new(feeds: SessionFeeds) -> Self {
        let (switches, edit) = (Tail::default(), Latest::default());
        Capture { feeds, open: None, generation: 0, preview: None, hidden: false, muted: false, watch_devices: false, switches, edit, edit_generation: 0 }
    }

    /// The generation of the running session, if one runs (a new session, a new number).
    pub fn open_generation(&self) -> Option<u64> {
        self.open.as_ref().map(|_| self.generation)
    }

    /// The running session's picture format.
    pub fn format(&self) -> Option<crate::session::SessionFormat> {
        self.open.as_ref().map(|o| o.session.format())
    }

    /// Puts `scene` on air in the running session (its new sources opened
    /// off the runtime); edits in a row are shown as one, the last.
    pub fn show(&mut self, scene: Scene, transition: Transition, out: &Outbox) {
        if transition != Transition::Edit {
            self.edit.close();
            return self.switch(out, true, move |s| s.show(&scene, transition));
        }
        if self.edit_generation != self.generation {
            // The waiting job is for a session that is gone.
            self.edit.close();
            self.edit_generation = self.generation;
        }
        let Some(slot) = self.edit.offer(scene) else { return };
        self.switch(out, true, move |s| match slot.take() {
            Some(scene) => s.show(&scene, Transition::Edit),
            None => Ok(()),
        });
    }

    /// The feeds a session opened for a broadcast feeds too.
    pub fn feeds(&self) -> SessionFeeds {
        self.feeds.clone()
    }

    /// The running session, for a broadcast to go out from.
    pub fn session(&self) -> Option<&Arc<CaptureSession>> {
        self.open.as_ref().map(|o| &o.session)
    }

    pub fn watching_devices(&self) -> bool {
        self.watch_devices
    }

    /// `busy`: a broadcast is starting or live (and may be using the session).
    pub fn command(&mut self, cmd: SourcesCommand, out: &Outbox, busy: bool) {
        match cmd {
            SourcesCommand::Open { video, audio, format, looping } => {
                if busy {
                    tracing::warn!("live: switch sources one at a time instead of reopening them");
                    return;
                }
                self.generation += 1;
                let generation = self.generation;
                out.set(|s| s.sources = SourcesState::Opening);
                // The old one closes first: a camera opens only once.
                let old = self.open.take();
                let feeds = self.feeds.clone();
                // The window's: running from now on, previewed before going live.
                let spec = SessionSpec { video, scene: None, audio, format, looping, pacing: Pacing::RealTime, from_first_frame: false };
                out.blocking(
                    move || {
                        drop(old);
                        CaptureSession::open(spec, std::sync::Arc::new(feeds)).map_err(SourcesError::Open)
                    },
                    move |done| {
                        let result = done.unwrap_or_else(|e| Err(SourcesError::Task(e)));
                        ControllerEvent::Sources(Event::Opened { generation, result })
                    },
                );
            }
            SourcesCommand::SwitchVideo(v) => {
                self.edit.close();
                self.switch(out, true, move |s| s.switch_video(&v));
            }
            SourcesCommand::ShowScene { scene, transition } => self.show(scene, transition, out),
            SourcesCommand::SwitchAudio(a) => self.switch(out, false, move |s| s.switch_audio(&a)),
            SourcesCommand::Close => {
                if busy {
                    tracing::warn!("live: stop the broadcast before closing its sources");
                    return;
                }
                // An open still under way is superseded too.
                self.generation += 1;
                if let Some(old) = self.open.take() {
                    close_session(old.session);
                }
                out.set(|s| s.sources = SourcesState::Closed);
            }
            SourcesCommand::SetPreview(request) => {
                self.preview = request;
                if let Some(open) = &self.open {
                    open.session.set_preview(request);
                }
            }
            SourcesCommand::SetHideCamera(hidden) => {
                self.hidden = hidden;
                self.apply(out, |s| s.set_hidden(hidden));
                tracing::info!("camera {}", if hidden { "hidden: the slate goes out" } else { "shown" });
            }
            SourcesCommand::SetMute(muted) => {
                self.muted = muted;
                self.apply(out, |s| s.set_muted(muted));
                tracing::info!("microphone {}", if muted { "muted" } else { "unmuted" });
            }
            SourcesCommand::WatchDevices(on) => {
                self.watch_devices = on;
                if on {
                    self.list_cameras(out);
                }
            }
            SourcesCommand::ListMicrophones => list(
                out,
                crate::capture::list_microphones,
                |m| DeviceEntry { spec: format!("mic:{}", m.id), name: m.name },
                |r| ControllerEvent::Sources(Event::Microphones(r)),
            ),
        }
    }

    /// Applies a setting (hide, mute) to the running session, if any, and shows it.
    fn apply(&self, out: &Outbox, set: impl FnOnce(&CaptureSession)) {
        if let Some(open) = &self.open {
            set(&open.session);
            publish_sources(&open.session, out);
        }
    }

    /// Switches a source of the running session, off the runtime (a camera
    /// opens), after the switches asked before.
    fn switch(
        &self,
        out: &Outbox,
        video: bool,
        switch: impl FnOnce(&CaptureSession) -> Result<(), crate::session::SessionError> + Send + 'static,
    ) {
        let Some(open) = &self.open else {
            return out.refuse(&SourcesError::NoneOpen);
        };
        let (s, generation) = (open.session.clone(), self.generation);
        out.after(
            &self.switches,
            move || switch(&s).map_err(SourcesError::Switch),
            move |done| ControllerEvent::Sources(Event::Switched { generation, video, result: done.unwrap_or_else(|e| Err(SourcesError::Task(e))) }),
        );
    }

    /// Holds a session opened for a broadcast of a plan no open session
    /// fitted (the command line's): mute, hide and switching act on it, as
    /// on the window's. The one it replaces is closed.
    pub fn adopt(&mut self, session: Arc<CaptureSession>, out: &Outbox) {
        self.generation += 1;
        if let Some(old) = self.open.take() {
            close_session(old.session);
        }
        session.set_preview(self.preview);
        session.set_hidden(self.hidden);
        session.set_muted(self.muted);
        publish_sources(&session, out);
        self.open = Some(OpenSession { session });
    }

    /// Hide and mute as the person set them, for a session opened for a broadcast.
    pub fn hidden_muted(&self) -> (bool, bool) {
        (self.hidden, self.muted)
    }

    /// Lists the cameras off the runtime; the state changes only when they did.
    pub fn list_cameras(&self, out: &Outbox) {
        list(
            out,
            crate::capture::list_cameras,
            |c| DeviceEntry { spec: format!("camera:{}", c.index), name: c.name },
            |r| ControllerEvent::Sources(Event::Cameras(r)),
        );
    }

    pub fn event(&mut self, event: Event, out: &Outbox) {
        match event {
            Event::Opened { generation, result } => {
                if generation != self.generation {
                    // Superseded by a newer open or a close: not shown, not kept.
                    if let Ok(late) = result {
                        tracing::info!("sources opened after they were replaced or closed: closing them");
                        close_session(Arc::new(late));
                    }
                    return;
                }
                match result {
                    Ok(s) => {
                        s.set_preview(self.preview);
                        s.set_hidden(self.hidden);
                        s.set_muted(self.muted);
                        let s = Arc::new(s);
                        publish_sources(&s, out);
                        self.open = Some(OpenSession { session: s });
                    }
                    Err(e) => fail_sources(&e, out),
                }
            }
            Event::Switched { generation, video, result } => match (result, &self.open) {
                (Ok(()), Some(open)) if generation == self.generation => {
                    let (v, a) = open.session.statuses();
                    let (what, now) = if video { ("video", v) } else { ("audio", a) };
                    tracing::info!("{what} source switched to {}", now.name());
                    publish_sources(&open.session, out)
                }
                (Ok(()), _) => {}
                // The session keeps what it showed: it stays open, the switch is refused.
                (Err(e), Some(open)) if generation == self.generation => {
                    publish_sources(&open.session, out);
                    out.refuse(&e);
                }
                (Err(e), _) => out.refuse(&e),
            },
            Event::Cameras(listed) => set_devices(listed, |d| &mut d.cameras, out),
            Event::Microphones(listed) => set_devices(listed, |d| &mut d.microphones, out),
        }
    }

    /// At shutdown: closes the session and joins its threads.
    pub async fn close_and_wait(&mut self, out: &Outbox) {
        self.generation += 1;
        if let Some(open) = self.open.take() {
            let _ = tokio::task::spawn_blocking(move || drop(open)).await;
            out.set(|s| s.sources = SourcesState::Closed);
        }
    }
}

/// What the session captures, into the state.
fn publish_sources(session: &CaptureSession, out: &Outbox) {
    let (v, a) = session.statuses();
    let name = |s: Arc<crate::capture::SourceStatus>| s.name().to_string();
    let (video, audio, format) = (name(v), name(a), session.format());
    let (hidden, muted) = session.hidden_muted();
    let scene = session.scene();
    out.set(|s| s.sources = SourcesState::Open { video, audio, format, hidden, muted, scene });
}

fn fail_sources(e: &SourcesError, out: &Outbox) {
    let message = crate::error_chain(e);
    tracing::error!("sources: {message}");
    out.set(|s| s.sources = SourcesState::Failed { message });
}

/// Stops and joins a session's threads off the runtime (a camera read may
/// take a moment to return); the last holder of the session drops it.
fn close_session(session: Arc<CaptureSession>) {
    tokio::task::spawn_blocking(move || drop(session));
}

/// Runs a device listing off the runtime (it may block on the OS) and names each entry.
fn list<T: Send + 'static>(
    out: &Outbox,
    list: fn() -> Result<Vec<T>, crate::capture::CaptureError>,
    entry: fn(T) -> DeviceEntry,
    event: fn(Result<Vec<DeviceEntry>, SourcesError>) -> ControllerEvent,
) {
    out.blocking(
        move || list().map(|found| found.into_iter().map(entry).collect()).map_err(SourcesError::List),
        move |done| event(done.unwrap_or_else(|e| Err(SourcesError::Task(e)))),
    );
}

/// Puts a listing into `EngineState::devices` (its list, or why it failed), if it changed.
fn set_devices(listed: Result<Vec<DeviceEntry>, SourcesError>, list: fn(&mut Devices) -> &mut Vec<DeviceEntry>, out: &Outbox) {
    let (entries, error) = match listed {
        Ok(e) => (e, None),
        Err(e) => (Vec::new(), Some(crate::error_chain(&e))),
    };
    let mut devices = out.state.borrow().devices.clone();
    *list(&mut devices) = entries;
    devices.error = error;
    if out.state.borrow().devices != devices {
        out.set(|s| s.devices = devices);
    }
}
