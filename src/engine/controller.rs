//! The controller: one task on the engine's runtime that takes commands
//! and owns what they start (the broadcast, the server). Everything slow —
//! reading profiles, opening devices and files, binding sockets — happens
//! here, never on the caller's thread; its outcome comes back as state.

use super::plan::{BroadcastPlan, GoLiveRequest, RunOptions};
use super::state::{BroadcastState, EngineState, OutputSnapshot, ServerState};
use crate::config::{EncodeOverrides, ProfileStore};
use crate::net::server::{Server, ServerConfig, ServerHandle};
use crate::pipeline::{Broadcast, OutputSpec, Stats, Stopper};
use crate::rtmp::{RtmpUrl, StreamKey};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// What a face asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Go live with a profile and/or URLs (planned on the engine's side).
    GoLive(GoLiveRequest),
    /// Go live with a ready plan.
    GoLivePlan(BroadcastPlan),
    /// End the broadcast cleanly (outputs drain what was encoded).
    Stop,
    /// Start the built-in server.
    StartServer(ServerConfig),
    /// Stop the built-in server.
    StopServer,
    /// Go live to the built-in server (started with its defaults if off)
    /// as `live/STREAM`: a rehearsal nobody else sees.
    Rehearse {
        /// The stream name.
        stream: String,
        /// Settings over the defaults.
        encode: EncodeOverrides,
        /// Duration, pacing.
        run: RunOptions,
    },
}

/// The server the engine runs, and the key a rehearsal publishes with.
struct RunningServer {
    handle: ServerHandle,
    publish_key: Option<StreamKey>,
}

/// Sent by the task that waits for a broadcast's end.
struct Ended(Arc<crate::pipeline::BroadcastSummary>);

pub(super) struct Controller {
    pub config_dir: Option<PathBuf>,
    pub server_defaults: ServerConfig,
    pub state: watch::Sender<EngineState>,
    pub stats: watch::Sender<Stats>,
}

impl Controller {
    fn set(&self, f: impl FnOnce(&mut EngineState)) {
        self.state.send_modify(f);
    }

    /// Runs until shut down (or every command sender is gone), then ends
    /// what runs cleanly.
    pub async fn run(self, mut commands: mpsc::Receiver<Command>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
        let (ended_tx, mut ended_rx) = mpsc::channel::<Ended>(1);
        let mut stopper: Option<Stopper> = None;
        let mut server: Option<RunningServer> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.handle(cmd, &mut stopper, &mut server, &ended_tx).await;
                }
                Some(Ended(summary)) = ended_rx.recv() => {
                    stopper = None;
                    self.set(|s| s.broadcast = BroadcastState::Ended(summary));
                }
            }
        }
        // The faces are gone: end cleanly what they started.
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
    }

    async fn handle(
        &self,
        cmd: Command,
        stopper: &mut Option<Stopper>,
        server: &mut Option<RunningServer>,
        ended: &mpsc::Sender<Ended>,
    ) {
        match cmd {
            Command::GoLive(request) => {
                if self.refuse_second_broadcast(stopper) {
                    return;
                }
                self.set(|s| s.broadcast = BroadcastState::Starting);
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
                    Ok(Ok(plan)) => self.go_live(plan, stopper, ended).await,
                    Ok(Err(e)) => self.fail_start(&e),
                    Err(e) => self.fail_start(&e),
                }
            }
            Command::GoLivePlan(plan) => {
                if self.refuse_second_broadcast(stopper) {
                    return;
                }
                self.set(|s| s.broadcast = BroadcastState::Starting);
                self.go_live(plan, stopper, ended).await;
            }
            Command::Stop => {
                if let Some(s) = stopper.as_ref() {
                    s.stop();
                    self.set(|s| s.broadcast = BroadcastState::Stopping);
                }
            }
            Command::StartServer(config) => {
                if server.is_none() {
                    self.start_server(config, server).await;
                }
            }
            Command::StopServer => {
                if let Some(running) = server.take() {
                    self.set(|s| s.server = ServerState::Stopping);
                    running.handle.stop().await;
                    self.set(|s| s.server = ServerState::Off);
                }
            }
            Command::Rehearse { stream, encode, run } => {
                if self.refuse_second_broadcast(stopper) {
                    return;
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
                        let plan = BroadcastPlan { settings, outputs: vec![OutputSpec::publish(url)], warnings: Vec::new() };
                        self.go_live(plan, stopper, ended).await;
                    }
                    Ok(Err(e)) => self.fail_start(&e),
                    Err(e) => self.fail_start(&e),
                }
            }
        }
    }

    fn refuse_second_broadcast(&self, stopper: &Option<Stopper>) -> bool {
        if stopper.is_some() {
            tracing::warn!("already live: stop the broadcast first");
        }
        stopper.is_some()
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
    async fn go_live(&self, plan: BroadcastPlan, stopper: &mut Option<Stopper>, ended: &mpsc::Sender<Ended>) {
        let warnings = plan.warnings.clone();
        self.set(|s| s.warnings = warnings);
        for output in &plan.outputs {
            if let OutputSpec::Publish(d) = output {
                super::log::LogRing::global().remember_secret(&d.url.stream_key);
            }
        }
        let runtime = tokio::runtime::Handle::current();
        let started = tokio::task::spawn_blocking(move || Broadcast::start(plan.settings, plan.outputs, &runtime)).await;
        let broadcast = match started {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return self.fail_start(&e),
            Err(e) => return self.fail_start(&e),
        };
        *stopper = Some(broadcast.stopper());
        let watches = broadcast.output_states();
        let now = Instant::now();
        self.set(|s| {
            s.broadcast = BroadcastState::Running { since: now };
            s.outputs = watches
                .iter()
                .map(|w| OutputSnapshot { id: w.id.clone(), name: w.name.clone(), kind: w.kind, state: w.state.borrow().clone(), since: now })
                .collect();
        });
        for (index, mut watch) in watches.into_iter().enumerate() {
            let state = self.state.clone();
            tokio::spawn(async move {
                while watch.state.changed().await.is_ok() {
                    let new = watch.state.borrow_and_update().clone();
                    state.send_modify(|s| {
                        if let Some(o) = s.outputs.get_mut(index).filter(|o| o.id == watch.id) {
                            o.state = new;
                            o.since = Instant::now();
                        }
                    });
                }
            });
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

/// An error and its causes, `outer: inner: ...`, as anyhow's `{:#}` prints them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
