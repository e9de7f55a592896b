//! The engine both faces drive (see `docs/ARCHITECTURE.md`, "Two faces").
//!
//! [`Engine::start`] makes the tokio runtime and a controller task on it;
//! a face sends [`Command`]s (a bounded channel, never waited on) and reads
//! [`EngineState`] and [`Stats`] snapshots from watch channels (the
//! command line), or one shared [`Snapshot`] through [`EngineLink`] (the
//! window, which owns no runtime: `link.rs`). What a command starts — a broadcast's threads, the server's tasks — belongs to
//! the engine; [`Engine::shutdown`] ends them cleanly and joins them.
//!
//! May use `pipeline`, `net` (the server), `config`, `capture`; never `ui`
//! or the command line.

mod command;
pub mod preflight;
mod controller;
pub mod errors;
mod feeds;
mod link;
pub mod log;
pub mod log_file;
pub mod plan;
mod state;
pub mod viewer;

pub use command::{BroadcastCommand, Command, ProfilesCommand, ScenesCommand, ServerCommand, SourcesCommand, ViewerCommand, WatchRequest};
pub use controller::error_chain;
pub use feeds::SessionFeeds;
pub use link::{EngineLink, Snapshot, Waker};
pub use viewer::{ViewerFrame, ViewerState};
pub use log::{LogEvent, LogRing};
pub use plan::{BroadcastPlan, GoLiveRequest, PlanError, RunOptions};
pub use state::{BroadcastState, CheckState, DeviceEntry, Devices, EngineState, OutputSnapshot, ProfilesState, Refusal, ScenesState, ServerState, SourcesState};

use crate::net::server::ServerConfig;
use crate::pipeline::Stats;
use crate::session::{AudioLevels, PreviewFrame, SourceHealth};
pub use crate::session::{PreviewRequest, SessionFormat};
use std::sync::Arc;
use std::path::PathBuf;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, watch};

/// The process's own load, sampled once a second for a status bar.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessLoad {
    /// CPU time used over the last second, % of one core (200 % = two busy cores).
    pub cpu_percent: f32,
    /// Resident memory, KiB.
    pub rss_kib: u64,
}

/// Reads this process's CPU ticks and resident memory (Linux: `/proc/self`).
#[cfg(target_os = "linux")]
fn process_ticks_and_rss() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some((utime + stime, rss))
}

#[cfg(not(target_os = "linux"))]
fn process_ticks_and_rss() -> Option<(u64, u64)> {
    None
}

/// Linux counts CPU time in USER_HZ ticks, 100 a second on every platform it runs on.
const TICKS_PER_SEC: f32 = 100.0;

/// Commands queued before the engine takes them: a face that sends more
/// than this without the engine keeping up is told so, not blocked.
pub const COMMAND_QUEUE: usize = 32;

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Where profiles and keys are; `None`: the platform's config directory.
    pub config_dir: Option<PathBuf>,
    /// Network threads. 1 runs everything on the engine's own thread (the
    /// lowest CPU per byte for `tally serve`, no cross-thread wake-ups);
    /// 2 suits a broadcast with several destinations.
    pub net_threads: u16,
    /// The server a rehearsal starts when none runs.
    pub server: ServerConfig,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { config_dir: None, net_threads: 2, server: ServerConfig::default() }
    }
}

/// Why the engine did not take a command.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The runtime or its thread could not be made.
    #[error("starting the engine: {0}")]
    Start(String),
    /// More commands are waiting than [`COMMAND_QUEUE`].
    #[error("the engine is busy: too many commands waiting")]
    Busy,
    /// The engine has shut down.
    #[error("the engine has stopped")]
    Gone,
}

/// The running engine.
pub struct Engine {
    commands: Option<mpsc::Sender<Command>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// What a face reads: state, stats, the preview, meters, health, load, the viewer.
    channels: link::Feeds,
    server_defaults: ServerConfig,
    /// The window's snapshots (see [`EngineLink`]), made once a window asks.
    feed: link::LazyFeed,
    handle: tokio::runtime::Handle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("state", &*self.channels.state.borrow()).finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the runtime and the controller on a thread of their own.
    pub fn start(options: EngineOptions) -> Result<Engine, EngineError> {
        let runtime = if options.net_threads <= 1 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(usize::from(options.net_threads))
                .thread_name("tally-net")
                .enable_all()
                .build()
        }
        .map_err(|e| EngineError::Start(e.to_string()))?;
        let handle = runtime.handle().clone();
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (state_tx, state) = watch::channel(EngineState::default());
        let (stats_tx, stats) = watch::channel(Stats::default());
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let feeds = SessionFeeds::default();
        let (viewer_tx, viewer) = watch::channel(None);
        let options_server = options.server.clone();
        let (preview, levels, health) = (feeds.preview.subscribe(), feeds.levels.subscribe(), feeds.health.subscribe());
        let controller = controller::Controller {
            config_dir: options.config_dir,
            feeds,
            server_defaults: options.server.clone(),
            state: state_tx,
            stats: stats_tx,
            viewer_frames: viewer_tx,
            origin: watch::Sender::new(None),
        };
        let (load_tx, load) = watch::channel(ProcessLoad::default());
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut last: Option<(u64, std::time::Instant)> = None;
            loop {
                tick.tick().await;
                let Some((ticks, rss_kib)) = process_ticks_and_rss() else { break };
                let now = std::time::Instant::now();
                if let Some((t0, at)) = last {
                    let secs = now.duration_since(at).as_secs_f32().max(1e-3);
                    let cpu_percent = ticks.saturating_sub(t0) as f32 / TICKS_PER_SEC / secs * 100.0;
                    if load_tx.send(ProcessLoad { cpu_percent, rss_kib }).is_err() {
                        break;
                    }
                }
                last = Some((ticks, now));
            }
        });
        let thread = std::thread::Builder::new()
            .name("tally-engine".into())
            .spawn(move || {
                runtime.block_on(controller.run(commands_rx, shutdown_rx));
                // Tasks still running (a player's linger) get a moment, not forever.
                runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            })
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let channels = link::Feeds { state, stats, preview, levels, health, load, viewer };
        Ok(Engine { commands: Some(commands_tx), shutdown: Some(shutdown_tx), channels, server_defaults: options_server, feed: Default::default(), handle, thread: Some(thread) })
    }

    /// Queues a command; never waits.
    pub fn send(&self, command: impl Into<Command>) -> Result<(), EngineError> {
        let tx = self.commands.as_ref().ok_or(EngineError::Gone)?;
        tx.try_send(command.into()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Busy,
            mpsc::error::TrySendError::Closed(_) => EngineError::Gone,
        })
    }

    /// A sender for commands from another task (a Ctrl-C handler, a UI
    /// callback); `try_send` on it never waits.
    pub fn command_sender(&self) -> mpsc::Sender<Command> {
        match &self.commands {
            Some(tx) => tx.clone(),
            // After shutdown: a sender whose receiver is gone.
            None => mpsc::channel(1).0,
        }
    }

    /// The engine's state; `changed()` wakes on every change.
    pub fn state(&self) -> watch::Receiver<EngineState> {
        self.channels.state.clone()
    }

    /// The current broadcast's once-a-second stats.
    pub fn stats(&self) -> watch::Receiver<Stats> {
        self.channels.stats.clone()
    }

    /// The newest preview picture of the capture session (see
    /// `Command::SetPreview`); a new session keeps feeding the same channel.
    pub fn preview(&self) -> watch::Receiver<Option<Arc<PreviewFrame>>> {
        self.channels.preview.clone()
    }

    /// The audio meters of the capture session, 50 updates a second while audio flows.
    pub fn levels(&self) -> watch::Receiver<AudioLevels> {
        self.channels.levels.clone()
    }

    /// What the capture session's sources are doing: live, or a stand-in
    /// (frozen frame, slate, silence) and why.
    pub fn health(&self) -> watch::Receiver<SourceHealth> {
        self.channels.health.clone()
    }

    /// The server a rehearsal starts when none runs (a face's defaults for its server panel).
    pub fn server_defaults(&self) -> &ServerConfig {
        &self.server_defaults
    }

    /// The viewer preview's newest picture (see `Command::Watch`).
    pub fn viewer(&self) -> watch::Receiver<Option<Arc<ViewerFrame>>> {
        self.channels.viewer.clone()
    }

    /// This process's CPU and memory, once a second.
    pub fn load(&self) -> watch::Receiver<ProcessLoad> {
        self.channels.load.clone()
    }

    /// The engine's runtime, for a face that awaits its channels (the CLI
    /// blocks on it from the main thread; the UI never does).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Ends what runs cleanly (the broadcast drains, the server closes its
    /// connections) and joins every thread the engine started.
    pub fn shutdown(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.commands = None;
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.finish();
    }
}
