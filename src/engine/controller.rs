//! The controller: one task on the engine's runtime that takes commands
//! and owns what they start (the broadcast, the server). Everything slow —
//! reading profiles, opening devices and files, binding sockets — happens
//! here, never on the caller's thread; its outcome comes back as state.

use super::command::{BroadcastCommand, Command, ProfilesCommand, ServerCommand, SourcesCommand, ViewerCommand, WatchRequest};
use super::plan::{BroadcastPlan, GoLiveRequest};
use super::state::{BroadcastState, CheckState, EngineState, OutputSnapshot, ProfilesState, Refusal, ServerState, SourcesState};
use super::viewer::ViewerState;
use super::state::DeviceEntry;

/// How often the cameras are listed while a face watches them.
const CAMERA_POLL: std::time::Duration = std::time::Duration::from_secs(3);

/// In the config directory: the name of the profile last gone live with.
const LAST_USED_FILE: &str = "last-profile";
use crate::config::ProfileStore;
use crate::net::server::{Server, ServerConfig, ServerHandle};
use crate::pipeline::{Broadcast, CaptureSession, OutputControl, OutputSpec, OutputWatch, PreviewRequest, SessionFeeds, Stats, Stopper};
use crate::rtmp::{RtmpUrl, StreamKey};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// The running broadcast, as the controller holds it.
struct Live {
    stopper: Stopper,
    outputs: OutputControl,
    /// When media time 0 was.
    origin: Instant,
}

impl Live {
    fn stop(&self) {
        self.stopper.stop();
    }
}

/// The server the engine runs, and the key a rehearsal publishes with.
struct RunningServer {
    handle: ServerHandle,
    publish_key: Option<StreamKey>,
}

/// Sent by the task that waits for a broadcast's end.
struct Ended(Arc<crate::pipeline::BroadcastSummary>);

/// The capture session, and whether its files loop (a switched-to file does too).
struct OpenSession {
    session: Arc<CaptureSession>,
    looping: bool,
}

pub(super) struct Controller {
    pub config_dir: Option<PathBuf>,
    pub feeds: SessionFeeds,
    pub server_defaults: ServerConfig,
    pub state: watch::Sender<EngineState>,
    pub stats: watch::Sender<Stats>,
    /// The viewer preview's pictures.
    pub viewer_frames: watch::Sender<Option<Arc<super::viewer::ViewerFrame>>>,
    /// Media time 0 of the running rehearsal, and its stream.
    pub origin: watch::Sender<super::viewer::MediaOrigin>,
    /// Hide camera / mute microphone, kept across capture sessions.
    pub hidden: std::sync::atomic::AtomicBool,
    pub muted: std::sync::atomic::AtomicBool,
}

impl Controller {
    fn set(&self, f: impl FnOnce(&mut EngineState)) {
        self.state.send_modify(f);
    }

    /// Runs until shut down (or every command sender is gone), then ends
    /// what runs cleanly.
    pub async fn run(self, mut commands: mpsc::Receiver<Command>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
        let (ended_tx, mut ended_rx) = mpsc::channel::<Ended>(1);
        let mut stopper: Option<Live> = None;
        let mut server: Option<RunningServer> = None;
        let mut session: Option<OpenSession> = None;
        let mut preview: Option<PreviewRequest> = None;
        let mut viewer: Option<super::viewer::Viewer> = None;
        let mut watch_devices = false;
        let mut device_poll = tokio::time::interval(CAMERA_POLL);
        device_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The server's streams, for a face's server panel, once a second.
        let mut listing = tokio::time::interval(std::time::Duration::from_secs(1));
        listing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = device_poll.tick(), if watch_devices => self.list_cameras().await,
                _ = listing.tick() => {
                    let streams = server.as_ref().map(|s| s.handle.streams()).unwrap_or_default();
                    if self.state.borrow().server_streams != streams {
                        self.set(|s| s.server_streams = streams);
                    }
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    match cmd {
                        Command::Sources(SourcesCommand::WatchDevices(on)) => {
                            watch_devices = on;
                            if on {
                                self.list_cameras().await;
                            }
                        }
                        Command::Sources(SourcesCommand::ListMicrophones) => self.list_microphones().await,
                        Command::Sources(cmd) => self.sources(cmd, &mut session, &mut preview, stopper.is_some()).await,
                        Command::Viewer(cmd) => {
                            if let Some(v) = viewer.take() {
                                v.stop().await;
                            }
                            let request = match cmd {
                                ViewerCommand::Watch(r) => Some(r),
                                ViewerCommand::Stop => None,
                            };
                            match (request, server.as_ref()) {
                                (None, _) => {
                                    self.viewer_frames.send_replace(None);
                                    self.set(|s| s.viewer = ViewerState::Off);
                                }
                                (Some(r), Some(running)) => viewer = self.watch(r, running),
                                (Some(_), None) => self.refuse("watch: the local server is not running".into()),
                            }
                        }
                        Command::Server(ServerCommand::Stop) => {
                            // Its viewer goes with it.
                            if let Some(v) = viewer.take() {
                                v.stop().await;
                            }
                            self.set(|s| s.viewer = ViewerState::Off);
                            self.handle(ServerCommand::Stop.into(), &mut stopper, &mut server, &ended_tx, None).await;
                        }
                        Command::Broadcast(BroadcastCommand::GoLive(_) | BroadcastCommand::GoLivePlan(_) | BroadcastCommand::Rehearse { .. }) if stopper.is_none() => {
                            // A broadcast goes out from the capture session, if one runs.
                            let s = session.as_ref().map(|s| s.session.clone());
                            self.handle(cmd, &mut stopper, &mut server, &ended_tx, s).await;
                        }
                        cmd => self.handle(cmd, &mut stopper, &mut server, &ended_tx, None).await,
                    }
                }
                Some(Ended(summary)) = ended_rx.recv() => {
                    stopper = None;
                    self.origin.send_replace(None);
                    self.set(|s| s.broadcast = BroadcastState::Ended(summary));
                }
            }
        }
        // The faces are gone: end cleanly what they started.
        if let Some(v) = viewer.take() {
            v.stop().await;
        }
        if let Some(s) = stopper.take() {
            s.stop();
            self.set(|s| s.broadcast = BroadcastState::Stopping);
            if let Some(Ended(summary)) = ended_rx.recv().await {
                self.set(|s| s.broadcast = BroadcastState::Ended(summary));
            }
        }
        if let Some(running) = server.take() {
            running.handle.stop().await;
            self.set(|s| s.server = ServerState::Off);
        }
        if let Some(open) = session.take() {
            close_session(open.session).await;
            self.set(|s| s.sources = SourcesState::Closed);
        }
    }

    async fn sources(&self, cmd: SourcesCommand, session: &mut Option<OpenSession>, preview: &mut Option<PreviewRequest>, live: bool) {
        match cmd {
            SourcesCommand::Open { video, audio, format, looping } => {
                if live {
                    tracing::warn!("live: switch sources one at a time instead of reopening them");
                    return;
                }
                self.set(|s| s.sources = SourcesState::Opening);
                if let Some(old) = session.take() {
                    close_session(old.session).await;
                }
                let (v, a, feeds) = (video.clone(), audio.clone(), self.feeds.clone());
                let opened = tokio::task::spawn_blocking(move || CaptureSession::open(&v, &a, format, looping, feeds)).await;
                match opened {
                    Ok(Ok(s)) => {
                        s.set_preview(*preview);
                        s.set_hidden(self.hidden.load(std::sync::atomic::Ordering::Relaxed));
                        s.set_muted(self.muted.load(std::sync::atomic::Ordering::Relaxed));
                        let s = Arc::new(s);
                        self.publish_sources(&s);
                        *session = Some(OpenSession { session: s, looping });
                    }
                    Ok(Err(e)) => self.fail_sources(&e),
                    Err(e) => self.fail_sources(&e),
                }
            }
            cmd @ (SourcesCommand::SwitchVideo(_) | SourcesCommand::SwitchAudio(_)) => {
                let Some(open) = session.as_ref() else {
                    self.set(|s| s.sources = SourcesState::Failed { message: "no sources are open to switch".into() });
                    return;
                };
                let (s, looping) = (open.session.clone(), open.looping);
                let switched = tokio::task::spawn_blocking(move || match cmd {
                    SourcesCommand::SwitchVideo(v) => s.switch_video(&v, looping),
                    SourcesCommand::SwitchAudio(a) => s.switch_audio(&a, looping),
                    _ => Ok(()),
                })
                .await;
                match switched {
                    Ok(Ok(())) => self.publish_sources(&open.session),
                    Ok(Err(e)) => self.fail_sources(&e),
                    Err(e) => self.fail_sources(&e),
                }
            }
            SourcesCommand::Close => {
                if live {
                    tracing::warn!("live: stop the broadcast before closing its sources");
                    return;
                }
                if let Some(old) = session.take() {
                    close_session(old.session).await;
                }
                self.set(|s| s.sources = SourcesState::Closed);
            }
            SourcesCommand::SetPreview(request) => {
                *preview = request;
                if let Some(open) = session.as_ref() {
                    open.session.set_preview(request);
                }
            }
            SourcesCommand::SetHideCamera(hidden) => {
                self.hidden.store(hidden, std::sync::atomic::Ordering::Relaxed);
                if let Some(open) = session.as_ref() {
                    open.session.set_hidden(hidden);
                    self.publish_sources(&open.session);
                }
                tracing::info!("camera {}", if hidden { "hidden: the slate goes out" } else { "shown" });
            }
            SourcesCommand::SetMute(muted) => {
                self.muted.store(muted, std::sync::atomic::Ordering::Relaxed);
                if let Some(open) = session.as_ref() {
                    open.session.set_muted(muted);
                    self.publish_sources(&open.session);
                }
                tracing::info!("microphone {}", if muted { "muted" } else { "unmuted" });
            }
            // Taken in `run`.
            SourcesCommand::WatchDevices(_) | SourcesCommand::ListMicrophones => {}
        }
    }

    fn publish_sources(&self, session: &CaptureSession) {
        let (v, a) = session.statuses();
        let name = |s: Option<Arc<crate::capture::SourceStatus>>| s.map(|s| s.name().to_string()).unwrap_or_default();
        let (video, audio, format) = (name(v), name(a), session.format());
        let (hidden, muted) = session.hidden_muted();
        self.set(|s| s.sources = SourcesState::Open { video, audio, format, hidden, muted });
    }

    fn fail_sources(&self, e: &dyn std::error::Error) {
        let message = error_chain(e);
        tracing::error!("sources: {message}");
        self.set(|s| s.sources = SourcesState::Failed { message });
    }

    async fn handle(
        &self,
        cmd: Command,
        stopper: &mut Option<Live>,
        server: &mut Option<RunningServer>,
        ended: &mpsc::Sender<Ended>,
        session: Option<Arc<CaptureSession>>,
    ) {
        match cmd {
            Command::Broadcast(BroadcastCommand::GoLive(request)) => {
                if self.refuse_second_broadcast(stopper) {
                    return;
                }
                self.set(|s| s.broadcast = BroadcastState::Starting);
                let profile = request.profile.clone();
                match self.plan(request).await {
                    Ok(plan) => {
                        self.go_live(plan, stopper, ended, session).await;
                        if let Some(name) = profile.filter(|_| stopper.is_some()) {
                            self.remember_last_used(name).await;
                        }
                    }
                    Err(message) => {
                        tracing::error!("{message}");
                        self.set(|s| s.broadcast = BroadcastState::Failed { message });
                    }
                }
            }
            Command::Broadcast(BroadcastCommand::GoLivePlan(plan)) => {
                if self.refuse_second_broadcast(stopper) {
                    return;
                }
                self.set(|s| s.broadcast = BroadcastState::Starting);
                self.go_live(plan, stopper, ended, session).await;
            }
            Command::Broadcast(BroadcastCommand::Stop) => {
                if let Some(s) = stopper.as_ref() {
                    s.stop();
                    self.set(|s| s.broadcast = BroadcastState::Stopping);
                }
            }
            Command::Server(ServerCommand::Start(config)) => {
                if server.is_none() {
                    self.start_server(config, server).await;
                }
            }
            Command::Server(ServerCommand::Stop) => {
                if let Some(running) = server.take() {
                    self.set(|s| s.server = ServerState::Stopping);
                    running.handle.stop().await;
                    self.set(|s| s.server = ServerState::Off);
                }
            }
            Command::Broadcast(BroadcastCommand::Rehearse { stream, mut encode, run }) => {
                if self.refuse_second_broadcast(stopper) {
                    return;
                }
                // A rehearsal shows what the capture session captures, at its size.
                if let Some(s) = &session {
                    let f = s.format();
                    encode.size = encode.size.or(Some(crate::media::FrameSize::new(f.width, f.height)));
                    encode.fps = encode.fps.or(Some(f.fps));
                }
                if server.is_none() {
                    self.start_server(self.server_defaults.clone(), server).await;
                }
                let Some(running) = server.as_ref() else {
                    let why = match &self.state.borrow().server {
                        ServerState::Failed { message } => message.clone(),
                        _ => "the local server is not running".into(),
                    };
                    self.set(|s| s.broadcast = BroadcastState::Failed { message: format!("rehearsal: {why}") });
                    return;
                };
                let key = running.publish_key.as_ref().map(|k| format!("?key={}", k.expose())).unwrap_or_default();
                let url = match RtmpUrl::parse(&format!("rtmp://{}/live/{stream}{key}", running.handle.rtmp_addr())) {
                    Ok(u) => u,
                    Err(e) => {
                        self.set(|s| s.broadcast = BroadcastState::Failed { message: format!("rehearsal: {e}") });
                        return;
                    }
                };
                self.set(|s| s.broadcast = BroadcastState::Starting);
                // A Y4M source's header is read here: off the caller's thread.
                let planned = tokio::task::spawn_blocking(move || super::plan::settings(&encode, &run)).await;
                match planned {
                    Ok(Ok(settings)) => {
                        let mut dest = crate::net::publisher::Destination::new(url, 0, 0);
                        dest.id = Some(format!("rehearsal/{stream}"));
                        let plan = BroadcastPlan { settings, outputs: vec![OutputSpec::Publish(dest)], warnings: Vec::new() };
                        self.go_live(plan, stopper, ended, session).await;
                        // The viewer preview measures its latency against this stream.
                        if let Some(live) = stopper.as_ref() {
                            self.origin.send_replace(Some((stream.clone(), live.origin)));
                        }
                    }
                    Ok(Err(e)) => self.fail_start(&e),
                    Err(e) => self.fail_start(&e),
                }
            }
            Command::Broadcast(cmd @ (BroadcastCommand::AddOutputs { .. } | BroadcastCommand::RetryOutput(_) | BroadcastCommand::RemoveOutput(_))) => {
                self.change_outputs(cmd, stopper).await
            }
            Command::Broadcast(BroadcastCommand::Check { request, publish_test }) => self.check(request, publish_test).await,
            Command::Profiles(ProfilesCommand::Load) => self.load_profiles().await,
            Command::Profiles(ProfilesCommand::Save { profile, from, keep_from, keys }) => {
                for (_, k) in &keys {
                    super::log::LogRing::global().remember_secret(k);
                }
                let name = profile.name.clone();
                let saved = self
                    .with_store(move |store| store.save_edited(profile, from.as_deref(), keep_from, &keys))
                    .await;
                match saved {
                    Ok(warnings) => {
                        tracing::info!(profile = %name, "profile saved");
                        self.set(|s| s.warnings = warnings);
                    }
                    Err(message) => self.refuse(format!("saving profile '{name}': {message}")),
                }
                self.load_profiles().await;
            }
            Command::Profiles(ProfilesCommand::Delete(name)) => {
                let n = name.clone();
                match self.with_store(move |store| store.remove(&n)).await {
                    Ok(()) => tracing::info!(profile = %name, "profile deleted"),
                    Err(message) => self.refuse(format!("deleting profile '{name}': {message}")),
                }
                self.load_profiles().await;
            }
            Command::Broadcast(BroadcastCommand::CheckPlan { plan, publish_test }) => self.start_check(plan, publish_test),
            // Taken in `run`.
            Command::Sources(_) | Command::Viewer(_) => {}
        }
    }

    /// The config directory, found off the runtime's threads.
    async fn dir(&self) -> Result<PathBuf, String> {
        match &self.config_dir {
            Some(d) => Ok(d.clone()),
            None => match tokio::task::spawn_blocking(crate::config::config_dir).await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(e)) => Err(error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            },
        }
    }

    /// Lists the cameras off the runtime; the state changes only when they did.
    async fn list_cameras(&self) {
        let listed = list_devices(crate::capture::list_cameras, |c| DeviceEntry { spec: format!("camera:{}", c.index), name: c.name }).await;
        self.set_devices(listed, |d| &mut d.cameras);
    }

    /// Lists the microphones off the runtime.
    async fn list_microphones(&self) {
        let listed = list_devices(crate::capture::list_microphones, |m| DeviceEntry { spec: format!("mic:{}", m.id), name: m.name }).await;
        self.set_devices(listed, |d| &mut d.microphones);
    }

    /// Puts a listing into `EngineState::devices` (its list, or why it failed), if it changed.
    fn set_devices(&self, listed: Result<Vec<DeviceEntry>, String>, list: fn(&mut super::state::Devices) -> &mut Vec<DeviceEntry>) {
        let (entries, error) = match listed {
            Ok(e) => (e, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut devices = self.state.borrow().devices.clone();
        *list(&mut devices) = entries;
        devices.error = error;
        if self.state.borrow().devices != devices {
            self.set(|s| s.devices = devices);
        }
    }

    /// Runs `f` on the profile store off the runtime (files and the keyring); the error in words.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ProfileStore) -> Result<T, crate::config::ConfigError> + Send + 'static,
    ) -> Result<T, String> {
        let dir = self.dir().await?;
        match tokio::task::spawn_blocking(move || f(&ProfileStore::open(&dir))).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        }
    }

    /// Reads the profiles and the last used one (files: off the runtime).
    async fn load_profiles(&self) {
        let dir = match self.dir().await {
            Ok(d) => d,
            Err(message) => return self.set(|s| s.profiles = ProfilesState::Failed { message }),
        };
        let read = tokio::task::spawn_blocking(move || {
            let profiles = ProfileStore::open(&dir).list()?;
            let last = std::fs::read_to_string(dir.join(LAST_USED_FILE)).ok().map(|t| t.trim().to_string());
            let last_used = last.filter(|l| profiles.iter().any(|p| &p.name == l));
            Ok::<_, crate::config::ConfigError>((profiles, last_used))
        })
        .await;
        let state = match read {
            Ok(Ok((profiles, last_used))) => ProfilesState::Loaded { profiles, last_used },
            Ok(Err(e)) => ProfilesState::Failed { message: error_chain(&e) },
            Err(e) => ProfilesState::Failed { message: error_chain(&e) },
        };
        self.set(|s| s.profiles = state);
    }

    /// Notes the profile a broadcast went live with: a face selects it next time.
    async fn remember_last_used(&self, name: String) {
        let Ok(dir) = self.dir().await else { return };
        let n = name.clone();
        let written = tokio::task::spawn_blocking(move || crate::config::write_file_atomic(&dir.join(LAST_USED_FILE), &format!("{n}\n"), false)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("could not note the last used profile: {}", error_chain(&e));
        }
        self.set(|s| {
            if let ProfilesState::Loaded { last_used, .. } = &mut s.profiles {
                *last_used = Some(name);
            }
        });
    }

    /// Plans, then checks each destination in a task of its own: the
    /// controller keeps taking commands meanwhile.
    async fn check(&self, request: GoLiveRequest, publish_test: Option<std::time::Duration>) {
        match self.plan(request).await {
            Ok(plan) => self.start_check(plan, publish_test),
            Err(message) => self.set(|s| s.check = CheckState::Failed { message }),
        }
    }

    /// A request planned off the runtime (profiles and keys are files and
    /// the keyring); the error in words.
    async fn plan(&self, request: GoLiveRequest) -> Result<BroadcastPlan, String> {
        let dir = self.config_dir.clone();
        let planned = tokio::task::spawn_blocking(move || {
            let dir = match dir {
                Some(d) => d,
                None => crate::config::config_dir()?,
            };
            BroadcastPlan::go_live(&request, &ProfileStore::open(&dir))
        })
        .await;
        match planned {
            Ok(Ok(plan)) => Ok(plan),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        }
    }

    fn start_check(&self, plan: BroadcastPlan, publish_test: Option<std::time::Duration>) {
        for output in &plan.outputs {
            if let OutputSpec::Publish(d) = output {
                super::log::LogRing::global().remember_secret(&d.url.stream_key);
            }
        }
        let targets = super::check::destinations(&plan, publish_test);
        let notices: Vec<String> = targets.iter().filter_map(|(_, n)| n.clone()).collect();
        let total = targets.len();
        self.set(|s| s.check = CheckState::Running { done: Vec::new(), total, notices });
        let state = self.state.clone();
        tokio::spawn(async move {
            let mut done = Vec::new();
            for (dest, _) in targets {
                let report = super::check::run(dest, &plan, publish_test).await;
                done.push(report);
                let so_far = done.clone();
                state.send_modify(|s| {
                    if let CheckState::Running { done, .. } = &mut s.check {
                        *done = so_far;
                    }
                });
            }
            state.send_modify(|s| s.check = CheckState::Done(done));
        });
    }

    fn refuse_second_broadcast(&self, stopper: &Option<Live>) -> bool {
        if stopper.is_some() {
            self.refuse("already live: stop the broadcast first".into());
        }
        stopper.is_some()
    }

    /// Says why a command was not carried out: in the state and the log.
    fn refuse(&self, message: String) {
        tracing::warn!("{message}");
        self.set(|s| s.refused = Some(Refusal { message, at: Instant::now() }));
    }

    /// Starts the viewer preview of `request.stream` on the running server.
    fn watch(&self, request: WatchRequest, server: &RunningServer) -> Option<super::viewer::Viewer> {
        let url = match RtmpUrl::parse(&format!("rtmp://{}/live/{}", server.handle.rtmp_addr(), request.stream)) {
            Ok(u) => u,
            Err(e) => {
                self.refuse(format!("watch: {}", error_chain(&e)));
                return None;
            }
        };
        self.viewer_frames.send_replace(None);
        Some(super::viewer::start(url, request.stream, request.preview, self.origin.subscribe(), self.viewer_frames.clone(), self.state.clone()))
    }

    /// Adds, retries or removes outputs of the running broadcast.
    async fn change_outputs(&self, cmd: BroadcastCommand, live: &Option<Live>) {
        let Some(live) = live.as_ref() else {
            return self.refuse("not live: there is no broadcast to change".into());
        };
        let control = live.outputs.clone();
        match cmd {
            BroadcastCommand::AddOutputs { request, destination } => {
                let record = request.record.is_some();
                let profile = request.profile.clone();
                let plan = match self.plan(request).await {
                    Ok(plan) => plan,
                    Err(message) => return self.refuse(format!("adding: {message}")),
                };
                let wanted = destination.as_ref().zip(profile.as_ref()).map(|(d, p)| format!("{p}/{d}"));
                let specs: Vec<OutputSpec> = plan
                    .outputs
                    .into_iter()
                    .filter(|o| match o {
                        OutputSpec::Record(_) => record,
                        OutputSpec::Publish(d) => match (&wanted, &d.id) {
                            (Some(w), Some(id)) => w == id,
                            (Some(_), None) => true,
                            (None, _) => true,
                        },
                    })
                    .collect();
                if let (Some(w), true) = (&wanted, specs.is_empty()) {
                    return self.refuse(format!("adding: the profile has no destination '{w}'"));
                }
                for spec in specs {
                    if let OutputSpec::Publish(d) = &spec {
                        super::log::LogRing::global().remember_secret(&d.url.stream_key);
                    }
                    let c = control.clone();
                    // A recording's file is created here: off the runtime.
                    match tokio::task::spawn_blocking(move || c.add(spec)).await {
                        Ok(Ok(watch)) => self.follow_output(watch),
                        Ok(Err(e)) => self.refuse(format!("adding: {}", error_chain(&e))),
                        Err(e) => self.refuse(format!("adding: {}", error_chain(&e))),
                    }
                }
            }
            BroadcastCommand::RetryOutput(id) => {
                let c = control.clone();
                match tokio::task::spawn_blocking(move || c.retry(&id)).await {
                    Ok(Ok(watch)) => self.follow_output(watch),
                    Ok(Err(e)) => self.refuse(format!("retry: {}", error_chain(&e))),
                    Err(e) => self.refuse(format!("retry: {}", error_chain(&e))),
                }
            }
            BroadcastCommand::RemoveOutput(id) => match control.remove(&id) {
                Ok(()) => self.set(|s| s.outputs.retain(|o| o.id != id)),
                Err(e) => self.refuse(format!("remove: {}", error_chain(&e))),
            },
            _ => {}
        }
    }

    /// Lists an output (or its new start, for a retry) and keeps its row
    /// up to date as its state changes.
    fn follow_output(&self, mut watch: OutputWatch) {
        let now = Instant::now();
        let snapshot = OutputSnapshot { id: watch.id.clone(), name: watch.name.clone(), kind: watch.kind, state: watch.state.borrow().clone(), since: now };
        self.set(|s| match s.outputs.iter_mut().find(|o| o.id == snapshot.id) {
            Some(o) => *o = snapshot,
            None => s.outputs.push(snapshot),
        });
        let state = self.state.clone();
        tokio::spawn(async move {
            while watch.state.changed().await.is_ok() {
                let new = watch.state.borrow_and_update().clone();
                state.send_modify(|s| {
                    if let Some(o) = s.outputs.iter_mut().find(|o| o.id == watch.id) {
                        o.state = new;
                        o.since = Instant::now();
                    }
                });
            }
        });
    }

    fn fail_start(&self, e: &dyn std::error::Error) {
        let message = error_chain(e);
        tracing::error!("{message}");
        self.set(|s| s.broadcast = BroadcastState::Failed { message });
    }

    async fn start_server(&self, config: ServerConfig, server: &mut Option<RunningServer>) {
        self.set(|s| s.server = ServerState::Starting);
        let publish_key = config.publish_key.clone();
        if let Some(k) = &publish_key {
            super::log::LogRing::global().remember_secret(k);
        }
        match Server::start(config).await {
            Ok(handle) => {
                let (rtmp, http) = (handle.rtmp_addr(), handle.http_addr());
                *server = Some(RunningServer { handle, publish_key });
                self.set(|s| s.server = ServerState::Running { rtmp, http });
            }
            Err(e) => {
                let message = error_chain(&e);
                tracing::error!("{message}");
                self.set(|s| s.server = ServerState::Failed { message });
            }
        }
    }

    /// Starts the broadcast off this task (sources and files open
    /// blocking), forwards its stats, and reports its end.
    async fn go_live(
        &self,
        plan: BroadcastPlan,
        stopper: &mut Option<Live>,
        ended: &mpsc::Sender<Ended>,
        session: Option<Arc<CaptureSession>>,
    ) {
        let warnings = plan.warnings.clone();
        self.set(|s| s.warnings = warnings);
        for output in &plan.outputs {
            if let OutputSpec::Publish(d) = output {
                super::log::LogRing::global().remember_secret(&d.url.stream_key);
            }
        }
        let runtime = tokio::runtime::Handle::current();
        // With a capture session running (and the same frame format), the
        // broadcast goes out from it; otherwise it opens its own sources.
        let session = session.filter(|s| {
            let f = s.format();
            (f.width, f.height, f.fps) == (plan.settings.width, plan.settings.height, plan.settings.fps) && !plan.settings.fast
        });
        let started = tokio::task::spawn_blocking(move || match session {
            Some(s) => Broadcast::start_on(&s, plan.settings, plan.outputs, &runtime),
            None => Broadcast::start(plan.settings, plan.outputs, &runtime),
        })
        .await;
        let broadcast = match started {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return self.fail_start(&e),
            Err(e) => return self.fail_start(&e),
        };
        *stopper = Some(Live { stopper: broadcast.stopper(), outputs: broadcast.outputs(), origin: broadcast.media_origin() });
        let now = Instant::now();
        self.set(|s| {
            s.broadcast = BroadcastState::Running { since: now };
            s.outputs.clear();
        });
        for watch in broadcast.output_states() {
            self.follow_output(watch);
        }
        let mut rx = broadcast.stats();
        let stats = self.stats.clone();
        let ended = ended.clone();
        tokio::spawn(async move {
            // Ends when the broadcast's sampler ends, after its last snapshot.
            let forward = tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    stats.send_replace(rx.borrow_and_update().clone());
                }
            });
            let summary = broadcast.wait().await;
            let _ = forward.await;
            let _ = ended.send(Ended(Arc::new(summary))).await;
        });
    }
}

/// Stops and joins a session's threads off the runtime (a camera read may
/// take a moment to return).
async fn close_session(session: Arc<CaptureSession>) {
    let _ = tokio::task::spawn_blocking(move || drop(session)).await;
}

pub use crate::error_chain;

/// Runs a device listing off the runtime (it may block on the OS) and names each entry.
async fn list_devices<T: Send + 'static>(
    list: fn() -> Result<Vec<T>, crate::capture::CaptureError>,
    entry: fn(T) -> DeviceEntry,
) -> Result<Vec<DeviceEntry>, String> {
    match tokio::task::spawn_blocking(list).await {
        Ok(Ok(found)) => Ok(found.into_iter().map(entry).collect()),
        Ok(Err(e)) => Err(error_chain(&e)),
        Err(e) => Err(error_chain(&e)),
    }
}
