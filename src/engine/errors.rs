//! Why something the engine was asked to do failed: typed, with the
//! underlying error as its source. The controller turns one into words
//! (`crate::error_chain`) only where a face shows it: a state's message or
//! a refusal.

use super::plan::PlanError;
use crate::config::ConfigError;
use crate::net::server::ServerError;
use crate::pipeline::{OutputChangeError, PipelineError};
use crate::session::SessionError;
use tokio::task::JoinError;

/// Why a broadcast (or a rehearsal, or a check) could not start.
#[derive(Debug, thiserror::Error)]
pub enum GoLiveError {
    /// The platform's config directory could not be found.
    #[error("finding the config directory")]
    ConfigDir(#[source] ConfigError),
    /// The profile and overrides make no plan.
    #[error("planning the broadcast")]
    Plan(#[source] PlanError),
    /// The plan's own sources could not be opened (a camera, a file, a microphone).
    #[error("opening the broadcast's sources")]
    Sources(#[source] SessionError),
    /// The pipeline did not start (an encoder, a recording file).
    #[error("starting the broadcast")]
    Start(#[source] PipelineError),
    /// A rehearsal needs the local server, and it is not running.
    #[error("rehearsal: the local server is not running")]
    NoServer,
    /// A rehearsal needs the local server, and it could not start.
    #[error("rehearsal")]
    Server(#[source] std::sync::Arc<ServerError>),
    /// The rehearsal's URL on the local server is not an RTMP URL (a bad stream name).
    #[error("rehearsal")]
    RehearsalUrl(#[source] crate::rtmp::UrlError),
    /// The task doing the work panicked or was cancelled.
    #[error("the task starting the broadcast ended")]
    Task(#[source] JoinError),
}

/// Why an output could not be added, retried or removed.
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    /// Nothing is live.
    #[error("not live: there is no broadcast to change")]
    NotLive,
    /// The added destinations could not be planned.
    #[error("adding")]
    Plan(#[source] GoLiveError),
    /// The profile has no destination of that name.
    #[error("adding: the profile has no destination '{0}'")]
    NoSuchDestination(String),
    /// The pipeline refused the new output (a recording file...).
    #[error("adding")]
    Add(#[source] OutputChangeError),
    /// The output could not be started again.
    #[error("retry")]
    Retry(#[source] OutputChangeError),
    /// The output could not be removed.
    #[error("remove")]
    Remove(#[source] OutputChangeError),
    /// The task doing the work panicked or was cancelled.
    #[error("the task changing the outputs ended")]
    Task(#[source] JoinError),
}

/// Why the capture session could not be opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// Opening the sources (a camera, a file, a microphone) failed.
    #[error("opening the sources")]
    Open(#[source] SessionError),
    /// Switching a source failed (the session keeps its old one).
    #[error("switching the source")]
    Switch(#[source] SessionError),
    /// A switch with no session open.
    #[error("no sources are open to switch")]
    NoneOpen,
    /// Listing the devices failed.
    #[error("listing the devices")]
    List(#[source] crate::capture::CaptureError),
    /// The task doing the work panicked or was cancelled.
    #[error("the task opening the sources ended")]
    Task(#[source] JoinError),
}

/// Why the saved profiles could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    /// The platform's config directory could not be found.
    #[error("finding the config directory")]
    ConfigDir(#[source] ConfigError),
    /// The profile directory could not be read.
    #[error("reading the profiles")]
    Read(#[source] ConfigError),
    /// A profile (or one of its keys) could not be saved.
    #[error("saving profile '{name}'")]
    Save {
        /// The profile.
        name: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// A profile (or one of its keys) could not be deleted.
    #[error("deleting profile '{name}'")]
    Delete {
        /// The profile.
        name: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// The task doing the work panicked or was cancelled.
    #[error("the task reading the profiles ended")]
    Task(#[source] JoinError),
}

/// Why the scene collection could not be read or changed, or a scene not shown.
#[derive(Debug, thiserror::Error)]
pub enum ScenesError {
    /// The platform's config directory could not be found.
    #[error("finding the config directory")]
    ConfigDir(#[source] ConfigError),
    /// `scenes.toml` could not be read (it is left as it is: nothing is
    /// written over it until it reads again).
    #[error("reading the scenes")]
    Read(#[source] ConfigError),
    /// A change could not be written to `scenes.toml` (it holds in the
    /// engine until the app ends).
    #[error("saving the scenes")]
    Save(#[source] ConfigError),
    /// A change asked before the collection was read, or after it could not be.
    #[error("the scenes have not been read (yet, or the file could not be)")]
    NotRead,
    /// The change itself is refused (a name taken, a scene with no layers, too many scenes).
    #[error("changing the scenes")]
    Refused(#[source] ConfigError),
    /// No scene of that name.
    #[error("no scene called '{0}'")]
    NoSuchScene(String),
    /// A move from or to a position the collection does not have.
    #[error("cannot move the scene at {from} to {to}: there are {len} scenes")]
    NoSuchPosition {
        /// From where.
        from: usize,
        /// To where.
        to: usize,
        /// How many scenes there are.
        len: usize,
    },
    /// The task doing the work panicked or was cancelled.
    #[error("the task reading or writing the scenes ended")]
    Task(#[source] JoinError),
}
