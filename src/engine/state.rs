//! What the engine publishes for a face to draw: plain snapshots, cloned
//! out of a watch channel, never a lock a face could wait on.

use crate::net::OutputState;
use crate::net::probe::CheckReport;
use crate::pipeline::{BroadcastSummary, OutputKind};
use crate::session::SessionFormat;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Everything but the 1 Hz stats (those are on their own channel).
#[derive(Clone, Debug, Default)]
pub struct EngineState {
    /// The broadcast, if any.
    pub broadcast: BroadcastState,
    /// Each output of the current (or last) broadcast, its state as it
    /// changes; the counters are in the stats.
    pub outputs: Vec<OutputSnapshot>,
    /// The capture session (sources running before, during and after a broadcast).
    pub sources: SourcesState,
    /// The built-in server.
    pub server: ServerState,
    /// The services' advice for the latest plan, for the person to read.
    pub warnings: Vec<String>,
    /// The latest pre-flight check.
    pub check: CheckState,
    /// The local server's streams (publisher, players), refreshed once a second while it runs.
    pub server_streams: Vec<crate::net::server::StreamInfo>,
    /// The viewer preview (`Command::Watch`).
    pub viewer: super::viewer::ViewerState,
    /// Cameras and microphones found (`Command::WatchDevices`, `Command::ListMicrophones`).
    pub devices: Devices,
    /// The saved profiles (after `Command::LoadProfiles`), read off the face's thread.
    pub profiles: ProfilesState,
    /// The scene collection (after `ScenesCommand::Load`).
    pub scenes: ScenesState,
    /// The latest command the engine refused or could not carry out, and
    /// why ("already live", "no output 'x'"...), until the next is refused.
    pub refused: Option<Refusal>,
}

/// A capture device as a picker lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    /// What to open it with (`camera:0`, `mic:NAME`).
    pub spec: String,
    /// Its name, for the person.
    pub name: String,
}

/// The capture devices found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Devices {
    /// Cameras (re-listed every few seconds while watched).
    pub cameras: Vec<DeviceEntry>,
    /// Microphones (listed when asked: listing them wakes every sound system).
    pub microphones: Vec<DeviceEntry>,
    /// Why listing failed, if it did.
    pub error: Option<String>,
}

/// The saved profiles, as a face lists them.
#[derive(Clone, Debug, Default)]
pub enum ProfilesState {
    /// Not read yet.
    #[default]
    Unknown,
    /// Read: every profile (destinations without keys) and the last one gone live with.
    Loaded {
        /// By name.
        profiles: Vec<crate::config::Profile>,
        /// The profile of the last broadcast that went live, if it still exists.
        last_used: Option<String>,
    },
    /// The profile directory could not be read.
    Failed {
        /// Why.
        message: String,
    },
}

/// The scene collection, as the engine holds it.
#[derive(Clone, Debug, Default)]
pub struct ScenesState {
    /// The scenes in the order the scene strip shows them and the one last
    /// put on air; `None` until read, or when `scenes.toml` could not be
    /// read. Changes show here at once and are written to the file after.
    pub collection: Option<crate::config::SceneCollection>,
    /// What went wrong last (the file unreadable, a change refused or not
    /// saved), until a later change succeeds.
    pub message: Option<String>,
}

impl ScenesState {
    /// The scenes (none until read).
    pub fn scenes(&self) -> &[crate::session::scene::Scene] {
        self.collection.as_ref().map_or(&[], |c| c.scenes.as_slice())
    }
}

/// A command the engine did not carry out.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// Why, in words for the person (never a key).
    pub message: String,
    /// When.
    pub at: Instant,
}

/// The pre-flight check.
#[derive(Clone, Debug, Default)]
pub enum CheckState {
    /// None asked for.
    #[default]
    Idle,
    /// Running: the destinations done so far, and what to tell the person
    /// before a publish test goes on air.
    Running {
        /// Reports so far, in order.
        done: Vec<CheckReport>,
        /// How many destinations are checked.
        total: usize,
        /// Sentences to show before the test publishes.
        notices: Vec<String>,
    },
    /// Finished: one report per destination.
    Done(Vec<CheckReport>),
    /// Could not start (no such profile, a missing key...).
    Failed {
        /// Why.
        message: String,
    },
}

/// One output as a face shows it.
#[derive(Clone, Debug)]
pub struct OutputSnapshot {
    /// Stable id (`PROFILE/DESTINATION`, or its position).
    pub id: String,
    /// Display name (key redacted).
    pub name: String,
    /// Destination or recording.
    pub kind: OutputKind,
    /// `Connecting`, `Live { since }`, `Reconnecting { attempt, next_try }`,
    /// `Failed { kind, is_final, message }`, `Stopped`.
    pub state: OutputState,
    /// When the current state began.
    pub since: Instant,
}

/// Where the broadcast is. Each destination's own state is in the stats
/// (`Stats::outputs[i].phase`).
#[derive(Clone, Debug, Default)]
pub enum BroadcastState {
    /// Nothing going out.
    #[default]
    Idle,
    /// Planning, opening sources, encoders and outputs.
    Starting,
    /// Media flows to the outputs (each may still be connecting).
    Running {
        /// When it started.
        since: Instant,
    },
    /// Asked to stop: the outputs drain what was encoded.
    Stopping,
    /// Over; the summary says how each output ended.
    Ended(Arc<BroadcastSummary>),
    /// It could not start.
    Failed {
        /// Why (never a key).
        message: String,
    },
}

impl BroadcastState {
    /// True once a broadcast has ended or failed to start.
    pub fn is_over(&self) -> bool {
        matches!(self, BroadcastState::Ended(_) | BroadcastState::Failed { .. })
    }

    /// True while a broadcast is starting, running or stopping.
    pub fn is_active(&self) -> bool {
        matches!(self, BroadcastState::Starting | BroadcastState::Running { .. } | BroadcastState::Stopping)
    }
}

/// The capture session.
#[derive(Clone, Debug, Default)]
pub enum SourcesState {
    /// No sources open: a broadcast opens its own.
    #[default]
    Closed,
    /// Opening the camera and microphone (or their stand-ins).
    Opening,
    /// Capturing: the preview and meter feeds flow.
    Open {
        /// What the video is ("test pattern", "camera 0: …").
        video: String,
        /// What the audio is.
        audio: String,
        /// Frame size and rate.
        format: SessionFormat,
        /// The camera is hidden: a slate goes out instead of the picture.
        hidden: bool,
        /// The microphone is muted: silence goes out.
        muted: bool,
        /// The scene on air (a plain source is a one-layer scene named after it).
        scene: Option<crate::session::scene::Scene>,
    },
    /// They could not be opened (the previous session, if any, keeps running).
    Failed {
        /// Why.
        message: String,
    },
}

/// The built-in RTMP (and HTTP-FLV) server.
#[derive(Clone, Debug, Default)]
pub enum ServerState {
    /// Not running.
    #[default]
    Off,
    /// Binding its sockets.
    Starting,
    /// Serving.
    Running {
        /// Where RTMP publishers and players connect.
        rtmp: SocketAddr,
        /// Where HTTP-FLV and `/api/streams` are, if on.
        http: Option<SocketAddr>,
    },
    /// Closing its connections.
    Stopping,
    /// It could not start (an address in use...).
    Failed {
        /// Why.
        message: String,
    },
}
