//! What a face asks of the engine: one [`Command`] per domain (the
//! broadcast, the capture session's sources, the saved profiles and their
//! keys, the scenes, the local server, the viewer preview), each domain's commands in
//! an enum of its own. [`Engine::send`](super::Engine::send) takes any of
//! them (`impl Into<Command>`).

use super::plan::{BroadcastPlan, GoLiveRequest, RunOptions};
use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::compose::layout::Layout;
use crate::config::EncodeOverrides;
use crate::net::server::ServerConfig;
use crate::session::scene::{Cast, Scene, Transition};
use crate::session::{PreviewRequest, SessionFormat};
use crate::rtmp::StreamKey;

/// What a face asks of the engine, by domain.
#[derive(Debug)]
pub enum Command {
    /// Going live, rehearsing, ending, checking, changing outputs.
    Broadcast(BroadcastCommand),
    /// The capture session: opening, switching, closing sources; preview, hide, mute; device lists.
    Sources(SourcesCommand),
    /// The saved profiles and their keys.
    Profiles(ProfilesCommand),
    /// The scene collection and the scene on air.
    Scenes(ScenesCommand),
    /// The built-in server.
    Server(ServerCommand),
    /// The viewer preview of what the local server relays.
    Viewer(ViewerCommand),
}

/// The broadcast: one at a time.
#[derive(Debug)]
pub enum BroadcastCommand {
    /// Go live with a profile and/or URLs (planned on the engine's side).
    GoLive(GoLiveRequest),
    /// Go live with a ready plan.
    GoLivePlan(BroadcastPlan),
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
    /// End the broadcast cleanly (outputs drain what was encoded); a
    /// broadcast still starting is ended as soon as it has started.
    Stop,
    /// Check destinations (a profile's and/or URLs) without publishing;
    /// with `publish_test`, publish the test pattern to each for that long.
    Check {
        /// Which destinations (and the bitrate a publish test uses).
        request: GoLiveRequest,
        /// Publish for this long after the checks pass.
        publish_test: Option<std::time::Duration>,
    },
    /// Check the destinations of a ready plan; see `Check`.
    CheckPlan {
        /// The plan (its recording outputs are ignored).
        plan: BroadcastPlan,
        /// Publish for this long after the checks pass.
        publish_test: Option<std::time::Duration>,
    },
    /// Add destinations to the running broadcast: the request's URLs and
    /// its profile's destinations (only `destination` of them, if named),
    /// planned as going live plans them, keys from the secret store. Each
    /// joins at the next keyframe; the others are untouched.
    AddOutputs {
        /// Which destinations (its encode settings are ignored: the
        /// broadcast's are used); a recording only if `record` is given.
        request: GoLiveRequest,
        /// One destination of the profile, by name.
        destination: Option<String>,
    },
    /// Start a failed output again (by its id).
    RetryOutput(String),
    /// Take an output out of the running broadcast (by its id): a live one
    /// ends cleanly; the last one is not removed (end the stream instead).
    RemoveOutput(String),
}

/// The capture session and the devices it can open.
#[derive(Debug)]
pub enum SourcesCommand {
    /// Open the capture session (replacing one that runs): the preview and
    /// meters flow from then on, and a broadcast goes out from it.
    Open {
        /// Video source.
        video: VideoSourceSpec,
        /// Audio source.
        audio: AudioSourceSpec,
        /// Frame size and rate.
        format: SessionFormat,
        /// Files restart at their end.
        looping: bool,
    },
    /// Switch the session's video source; a broadcast stays up (same
    /// clock, continuous timestamps, a keyframe at the switch).
    SwitchVideo(VideoSourceSpec),
    /// Put a scene on air (its new sources opened first): a cut, a fade, or
    /// the scene on air edited; a broadcast stays up, as for `SwitchVideo`.
    ShowScene {
        /// The scene.
        scene: crate::session::scene::Scene,
        /// How the picture changes to it.
        transition: crate::session::scene::Transition,
    },
    /// Switch the session's audio source; see `SwitchVideo`.
    SwitchAudio(AudioSourceSpec),
    /// Close the capture session (refused while a broadcast uses it).
    Close,
    /// What the preview feed should deliver (`None`: nothing).
    SetPreview(Option<PreviewRequest>),
    /// Hide the camera (a slate goes out instead, the stream stays up) or show it again.
    /// Kept across sessions; applies to what the capture session sends.
    SetHideCamera(bool),
    /// Mute the microphone (silence goes out and shows on the meters) or unmute it.
    SetMute(bool),
    /// List the cameras now and every few seconds while `true` (cameras come and go).
    WatchDevices(bool),
    /// List the microphones now (on demand: listing them probes every sound system).
    ListMicrophones,
}

/// The saved profiles and their keys.
#[derive(Debug)]
pub enum ProfilesCommand {
    /// Read the saved profiles (and the last one used) into `EngineState::profiles`.
    Load,
    /// Save a profile as an editor leaves it (keys into the secret store,
    /// never the profile file); the profiles are read again after.
    Save {
        /// The profile (destinations without keys).
        profile: crate::config::Profile,
        /// The profile it was opened from: a rename or a duplicate when the name differs.
        from: Option<String>,
        /// Keep `from` (a duplicate) rather than replace it (a rename).
        keep_from: bool,
        /// New keys, by destination name.
        keys: Vec<(String, StreamKey)>,
    },
    /// Delete a profile and its keys.
    Delete(String),
}

/// The scene collection (`scenes.toml`) and the scene on air. The engine
/// holds the collection once read: a change shows in
/// `EngineState::scenes` at once and is written to the file after, in the
/// order asked.
#[derive(Debug)]
pub enum ScenesCommand {
    /// Read the collection into `EngineState::scenes` (and show the scene
    /// last on air once the capture session is open).
    Load,
    /// Add a scene, or replace the one of its name when `replace`.
    Put {
        /// The scene.
        scene: Scene,
        /// Replace a scene of the same name (else that is refused).
        replace: bool,
    },
    /// Remove the scene of this name.
    Remove(String),
    /// Move the scene at position `from` to position `to` (the order the
    /// scene strip shows, and Ctrl+1…9 follow).
    Reorder {
        /// Where it is.
        from: usize,
        /// Where it goes.
        to: usize,
    },
    /// Add a scene made from a built-in layout, at the capture session's aspect.
    MakeLayout {
        /// Its name (a new one: an existing name is refused).
        name: String,
        /// The layout.
        layout: Layout,
        /// Which sources play the layout's roles.
        cast: Cast,
    },
    /// Put a saved scene on air (while live too), and remember it as the
    /// one to show at the next start.
    GoTo {
        /// The scene's name.
        name: String,
        /// A cut or a fade.
        transition: Transition,
    },
    /// The scene on air was edited (a layer moved, hidden, reordered): it
    /// is shown at once with no keyframe (same sources) and saved; of many
    /// edits in a row (a drag) only the last waits to be written.
    EditOnAir(Scene),
}

/// The built-in server.
#[derive(Debug)]
pub enum ServerCommand {
    /// Start it (nothing happens if it runs).
    Start(ServerConfig),
    /// Stop it, and the viewer preview watching it.
    Stop,
}

/// The viewer preview.
#[derive(Debug)]
pub enum ViewerCommand {
    /// Show what the local server relays for a stream (decoded, in
    /// `Engine::viewer()`), replacing what was watched. The server must be running.
    Watch(WatchRequest),
    /// Stop watching.
    Stop,
}

/// What the viewer preview watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    /// A stream of the local server's `live` application.
    pub stream: String,
    /// The pictures wanted (size, rate).
    pub preview: PreviewRequest,
}

impl From<BroadcastCommand> for Command {
    fn from(c: BroadcastCommand) -> Command {
        Command::Broadcast(c)
    }
}

impl From<SourcesCommand> for Command {
    fn from(c: SourcesCommand) -> Command {
        Command::Sources(c)
    }
}

impl From<ProfilesCommand> for Command {
    fn from(c: ProfilesCommand) -> Command {
        Command::Profiles(c)
    }
}

impl From<ScenesCommand> for Command {
    fn from(c: ScenesCommand) -> Command {
        Command::Scenes(c)
    }
}

impl From<ServerCommand> for Command {
    fn from(c: ServerCommand) -> Command {
        Command::Server(c)
    }
}

impl From<ViewerCommand> for Command {
    fn from(c: ViewerCommand) -> Command {
        Command::Viewer(c)
    }
}
