//! Configuration at rest: profiles (TOML in the platform's configuration
//! directory), stream keys (OS keyring, or a private file), and the
//! built-in service presets.
//!
//! May use `rtmp` (URLs, `StreamKey`); never `net`, `pipeline` or `ui`.
//! Everything here is blocking file/keyring I/O: the UI calls it off its
//! thread.

pub mod profile;
pub mod secrets;
pub mod services;

pub use profile::{AudioProfile, DestinationProfile, KeyRef, Profile, ProfileStore, VideoProfile, key_id};
pub use secrets::{Backend, SecretStore};
pub use services::{Service, detect, service, services};

use std::path::PathBuf;

/// Why configuration could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's words.
        reason: String,
    },
    /// A file is not valid TOML of the expected shape.
    #[error("{} is not a valid Tally file: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Asked for something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Settings that cannot be saved or used.
    #[error("{0}")]
    Invalid(String),
    /// No configuration directory could be determined (no HOME).
    #[error("no configuration directory: set HOME or XDG_CONFIG_HOME")]
    NoConfigDir,
}

/// Tally's configuration directory: `$XDG_CONFIG_HOME/tally` (usually
/// `~/.config/tally`) on Linux, the platform's equivalent elsewhere.
pub fn config_dir() -> Result<PathBuf, ConfigError> {
    directories::ProjectDirs::from("", "", "tally").map(|d| d.config_dir().to_path_buf()).ok_or(ConfigError::NoConfigDir)
}
