//! Configuration at rest: profiles (TOML in the platform's configuration
//! directory), stream keys (OS keyring, or a private file), and the
//! built-in service presets.
//!
//! May use `rtmp` (URLs, `StreamKey`), `media` (sizes, defaults) and
//! `capture` (source names) and `session::scene` (what a scene holds);
//! never `net`, `pipeline` or `ui`.
//! Everything here is blocking file/keyring I/O: the UI calls it off its
//! thread.

pub mod editing;
pub mod profile;
pub mod scenes;
pub mod secrets;
pub mod services;

pub use profile::{AudioProfile, DestinationProfile, KeyRef, Profile, ProfileStore, VideoOverride, VideoProfile, check_name, key_id};
pub use editing::{DestinationDraft, EncodeOverrides, parse_key};
pub use scenes::{SceneCollection, SceneStore};
pub use secrets::{Backend, SecretStore};
pub use services::{Service, detect, service, services};

use std::path::{Path, PathBuf};

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

/// Reads a TOML file of ours; a file that does not exist yet is the default.
pub(crate) fn read_toml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), reason: toml_reason(&text, &e) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(ConfigError::Io { path: path.to_path_buf(), reason: e.to_string() }),
    }
}

/// What is wrong with a TOML text, in one line: where and what. toml's own
/// Display quotes the offending line, and a hand-edited file may hold a
/// stream key there, so it is not used.
pub(crate) fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1;
            format!("line {line}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// Like [`read_toml`], but a file that is there and cannot be parsed is
/// renamed aside (`NAME.broken-UNIXTIME`, kept for the person to repair or
/// delete) and read as the default, so Tally starts; the second value says
/// so, naming both files. A file that cannot be renamed stays an error.
pub(crate) fn read_toml_or_set_aside<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<(T, Option<String>), ConfigError> {
    match read_toml(path) {
        Err(ConfigError::Parse { path, reason }) => {
            let aside = set_aside(&path)?;
            let said = format!(
                "{} could not be read ({reason}); it is kept as {} and Tally goes on without it",
                path.display(),
                aside.display()
            );
            Ok((T::default(), Some(said)))
        }
        other => other.map(|t| (t, None)),
    }
}

/// Renames `path` to a free `NAME.broken-UNIXTIME[-N]` beside it.
fn set_aside(path: &Path) -> Result<PathBuf, ConfigError> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    for n in 0..100u32 {
        let suffix = if n == 0 { String::new() } else { format!("-{n}") };
        let aside = path.with_file_name(format!("{name}.broken-{secs}{suffix}"));
        if aside.exists() {
            continue;
        }
        return std::fs::rename(path, &aside).map(|()| aside).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            reason: format!("cannot be parsed, nor renamed aside: {e}"),
        });
    }
    Err(ConfigError::Io { path: path.to_path_buf(), reason: "cannot be parsed, and 100 broken copies are already kept beside it".into() })
}

/// Writes `text` to `path` atomically: a fresh temporary file beside it,
/// synced, then renamed over it, so a crash leaves the old file or the new
/// one, never half of either. With `private` the file is readable by its
/// owner only (0600) from its first byte, whatever was there before.
pub fn write_file_atomic(path: &Path, text: &str, private: bool) -> Result<(), ConfigError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| ConfigError::Io { path: path.to_path_buf(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    // A leftover from a crash may have other permissions: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_private_write_is_owner_only_even_over_a_readable_file_or_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tally-atomic-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("keys.toml");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        // An existing world-readable file, and a world-readable leftover temporary file.
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::write(dir.join("keys.toml.tmp"), "stale").expect("write");
        std::fs::set_permissions(dir.join("keys.toml.tmp"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_file_atomic(&path, "secret = 1\n", true).expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "secret = 1\n");
        assert!(!dir.join("keys.toml.tmp").exists());
        // Missing files read as the default; broken ones are named.
        let missing: std::collections::BTreeMap<String, String> = read_toml(&dir.join("none.toml")).expect("default");
        assert!(missing.is_empty());
        std::fs::write(dir.join("bad.toml"), "= nope").expect("write");
        let bad = read_toml::<std::collections::BTreeMap<String, String>>(&dir.join("bad.toml"));
        assert!(matches!(bad, Err(ConfigError::Parse { .. })));
        // The reason says where, and never quotes the line (it could hold a key).
        std::fs::write(dir.join("bad.toml"), "[ok]\nkey = sk_live_SECRET\n").expect("write");
        let Err(e) = read_toml::<std::collections::BTreeMap<String, toml::Value>>(&dir.join("bad.toml")) else { panic!("parsed") };
        let said = e.to_string();
        assert!(said.contains("line 2") && !said.contains("SECRET"), "{said}");
        // Set aside: the default comes back, the file is kept under a new name, once.
        let (v, note) = read_toml_or_set_aside::<std::collections::BTreeMap<String, toml::Value>>(&dir.join("bad.toml")).expect("set aside");
        assert!(v.is_empty());
        let note = note.expect("a note");
        assert!(!dir.join("bad.toml").exists(), "{note}");
        let kept: Vec<_> = std::fs::read_dir(&dir).expect("ls").flatten().filter(|e| e.file_name().to_string_lossy().starts_with("bad.toml.broken-")).collect();
        assert_eq!(kept.len(), 1, "{note}");
        assert!(note.contains(&kept[0].path().display().to_string()) && !note.contains("SECRET"), "{note}");
        assert_eq!(std::fs::read_to_string(kept[0].path()).expect("read"), "[ok]\nkey = sk_live_SECRET\n");
        let (_, again) = read_toml_or_set_aside::<std::collections::BTreeMap<String, toml::Value>>(&dir.join("bad.toml")).expect("default");
        assert!(again.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
