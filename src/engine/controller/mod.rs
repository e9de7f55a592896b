//! The controller: one task on the engine's runtime that takes commands
//! and owns what they start. Each domain has its own part with its own
//! slice of state — the broadcast ([`OnAir`]), the capture session
//! ([`Capture`]), the saved profiles ([`Profiles`]), the scene collection
//! ([`Scenes`]), the built-in server ([`LocalServer`]), the viewer preview
//! ([`ViewerPreview`]) — and one select loop hands each command and each
//! event to its part.
//!
//! Nothing slow is awaited in the loop: opening a device or a session,
//! starting the server or a broadcast, planning from profiles and the
//! keyring, reading and writing profile files all run as tasks whose
//! results come back as [`Event`]s on a bounded channel. So the next
//! command (a Stop behind a camera that takes seconds to open) is answered
//! at once, and a result that arrives after it was superseded is closed
//! or dropped (see each part's generation or attempt counter).

mod broadcast;
mod latest;
mod profiles;
mod scenes;
mod server;
mod sources;
mod viewer;

use super::command::{Command, ServerCommand};
use super::errors::GoLiveError;
use super::state::{EngineState, Refusal};
use crate::net::server::ServerConfig;
use crate::pipeline::Stats;
use crate::engine::SessionFeeds;
use broadcast::OnAir;
use profiles::Profiles;
use scenes::Scenes;
use server::LocalServer;
use sources::Capture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use viewer::ViewerPreview;

pub use crate::error_chain;

/// How often the cameras are listed while a face watches them.
const CAMERA_POLL: Duration = Duration::from_secs(3);

/// How often the server's streams are refreshed for a face's server panel.
const STREAMS_POLL: Duration = Duration::from_secs(1);

/// Results of slow work waiting for the loop. Each task sends one; the
/// loop takes them as fast as commands, so this only fills if the loop
/// is stuck (the tasks then wait, they never drop a result).
const EVENT_QUEUE: usize = 64;

/// What a task reports back to the controller, by domain.
pub(super) enum Event {
    /// The go-live steps, a change of outputs, the broadcast's end.
    Broadcast(broadcast::Event),
    /// A session opened, a source switched, devices listed.
    Sources(sources::Event),
    /// Profiles read, saved, deleted.
    Profiles(profiles::Event),
    /// The scene collection read or written.
    Scenes(scenes::Event),
    /// The server started or stopped.
    Server(server::Event),
}

/// What the controller publishes for the faces, and where its tasks
/// report: every part gets this, cloned into the tasks it starts.
#[derive(Clone)]
pub(super) struct Outbox {
    state: watch::Sender<EngineState>,
    stats: watch::Sender<Stats>,
    /// The viewer preview's pictures.
    viewer_frames: watch::Sender<Option<Arc<super::viewer::ViewerFrame>>>,
    /// Media time 0 of the running rehearsal, and its stream.
    origin: watch::Sender<super::viewer::MediaOrigin>,
    events: mpsc::Sender<Event>,
    /// The last job on the profile store (files and the keyring) not yet
    /// done: the next waits for it (see [`Outbox::in_order`]).
    store_tail: Tail,
}

/// The last job of a series not yet done: the next one waits for it (see
/// [`Outbox::after`]).
#[derive(Clone, Default)]
pub(super) struct Tail(Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>);

impl Outbox {
    fn set(&self, f: impl FnOnce(&mut EngineState)) {
        self.state.send_modify(f);
    }

    /// Says why a command was not carried out: in the state and the log.
    fn refuse(&self, why: &dyn std::error::Error) {
        self.refuse_text(error_chain(why));
    }

    fn refuse_text(&self, message: String) {
        tracing::warn!("{message}");
        self.set(|s| s.refused = Some(Refusal { message, at: Instant::now() }));
    }

    /// Runs `work` off the runtime (files, devices, the keyring) and sends
    /// its result, made into an event by `event`, back to the loop.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        event: impl FnOnce(Result<T, tokio::task::JoinError>) -> Event + Send + 'static,
    ) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let done = tokio::task::spawn_blocking(work).await;
            // The loop is gone only at shutdown; the result is dropped then.
            let _ = events.send(event(done)).await;
        });
    }

    /// As [`Outbox::blocking`], for work on the profile store (reading,
    /// saving, deleting profiles and keys; planning from them): each job
    /// starts once the one asked for before it is done, so a go-live sent
    /// right after a save plans with the saved key.
    fn in_order<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        event: impl FnOnce(Result<T, tokio::task::JoinError>) -> Event + Send + 'static,
    ) {
        self.after(&self.store_tail, work, event);
    }

    /// As [`Outbox::blocking`], each job of the series `tail` starting once
    /// the one asked for before it is done (a file's writes, a session's switches).
    fn after<T: Send + 'static>(
        &self,
        tail: &Tail,
        work: impl FnOnce() -> T + Send + 'static,
        event: impl FnOnce(Result<T, tokio::task::JoinError>) -> Event + Send + 'static,
    ) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let before = tail.0.lock().unwrap_or_else(|e| e.into_inner()).replace(done_rx);
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Some(before) = before {
                // Done, or its task gone: either way this one may start.
                let _ = before.await;
            }
            let done = tokio::task::spawn_blocking(work).await;
            let _ = done_tx.send(());
            let _ = events.send(event(done)).await;
        });
    }

    /// Runs an async `work` as a task of its own and sends its event back.
    fn task(&self, work: impl std::future::Future<Output = Event> + Send + 'static) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let _ = events.send(work.await).await;
        });
    }
}

/// What the engine gives the controller to start with.
pub(super) struct Controller {
    pub config_dir: Option<PathBuf>,
    pub feeds: SessionFeeds,
    pub server_defaults: ServerConfig,
    pub state: watch::Sender<EngineState>,
    pub stats: watch::Sender<Stats>,
    pub viewer_frames: watch::Sender<Option<Arc<super::viewer::ViewerFrame>>>,
    pub origin: watch::Sender<super::viewer::MediaOrigin>,
}

/// The parts, each with its slice of state.
struct Parts {
    on_air: OnAir,
    capture: Capture,
    profiles: Profiles,
    scenes: Scenes,
    server: LocalServer,
    viewer: ViewerPreview,
}

impl Controller {
    /// Runs until shut down (or every command sender is gone), then ends
    /// what runs cleanly.
    pub async fn run(self, mut commands: mpsc::Receiver<Command>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
        let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_QUEUE);
        let out = Outbox { state: self.state, stats: self.stats, viewer_frames: self.viewer_frames, origin: self.origin, events: events_tx, store_tail: Default::default() };
        let mut parts = Parts {
            on_air: OnAir::default(),
            capture: Capture::new(self.feeds),
            scenes: Scenes::new(self.config_dir.clone()),
            profiles: Profiles::new(self.config_dir),
            server: LocalServer::new(self.server_defaults),
            viewer: ViewerPreview::default(),
        };
        let mut device_poll = tokio::time::interval(CAMERA_POLL);
        device_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut streams_poll = tokio::time::interval(STREAMS_POLL);
        streams_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = device_poll.tick(), if parts.capture.watching_devices() => parts.capture.list_cameras(&out),
                _ = streams_poll.tick() => parts.server.publish_streams(&out),
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    parts.command(cmd, &out);
                }
                Some(event) = events.recv() => parts.event(event, &out),
            }
        }
        // The faces are gone: end cleanly what they started (here, and
        // only here, the controller waits).
        parts.viewer.stop_and_wait(&out).await;
        if parts.on_air.stop_for_shutdown(&out) {
            while parts.on_air.is_live() {
                match events.recv().await {
                    Some(event) => parts.event(event, &out),
                    None => break,
                }
            }
        }
        parts.server.stop_and_wait(&out).await;
        parts.capture.close_and_wait(&out).await;
    }
}

impl Parts {
    /// Hands a command to its part; never waits.
    fn command(&mut self, cmd: Command, out: &Outbox) {
        match cmd {
            Command::Broadcast(c) => self.on_air.command(c, out, &self.capture, &mut self.server, &self.profiles),
            Command::Sources(c) => self.capture.command(c, out, self.on_air.is_busy()),
            Command::Profiles(c) => self.profiles.command(c, out),
            Command::Scenes(c) => self.scenes.command(c, out, &mut self.capture),
            Command::Server(c) => {
                if let ServerCommand::Stop = c {
                    // Its viewer goes with it.
                    self.viewer.stop(out);
                }
                self.server.command(c, out);
            }
            Command::Viewer(c) => self.viewer.command(c, out, self.server.running()),
        }
    }

    /// Hands a task's result to its part; never waits.
    fn event(&mut self, event: Event, out: &Outbox) {
        match event {
            Event::Broadcast(e) => {
                self.on_air.event(e, out, &mut self.capture, &self.profiles);
                // A session opened for the broadcast may have been adopted.
                self.scenes.restore(&mut self.capture, out);
            }
            Event::Sources(e) => {
                self.capture.event(e, out);
                // Sources that just opened show the scene last on air.
                self.scenes.restore(&mut self.capture, out);
            }
            Event::Profiles(e) => self.profiles.event(e, out),
            Event::Scenes(e) => {
                self.scenes.event(e, out);
                self.scenes.restore(&mut self.capture, out);
            }
            Event::Server(e) => {
                let failed = self.server.event(e, out);
                // A rehearsal waiting for the server goes on (or fails) with it.
                if self.on_air.awaits_server() && !self.server.is_starting() {
                    let ready = match (self.server.running(), failed) {
                        (Some(running), _) => Ok(running),
                        (None, Some(e)) => Err(GoLiveError::Server(e)),
                        (None, None) => Err(GoLiveError::NoServer),
                    };
                    self.on_air.server_ready(ready, out);
                }
            }
        }
    }
}
