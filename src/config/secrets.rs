//! Stream keys at rest: the OS keyring (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows) through the keyring crate, and where
//! no keyring service exists (a server, a bare VM) a `keys.toml` beside the
//! configuration, created readable by its owner only (0600), with a warning
//! the first time it is used. Profiles only refer to a key; the key itself
//! is never written to the profile file.
//!
//! A keyring that is there but will not take a key (locked, or with no
//! default collection and no one to answer its unlock prompt) is treated the
//! same way: the key goes to the file and the store says so once, then
//! stops asking the keyring for the rest of the run.
//!
//! `TALLY_SECRET_STORE=file` forces the file (headless machines, tests).

use super::ConfigError;
use crate::rtmp::StreamKey;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keyring service name every Tally key is stored under.
pub const KEYRING_SERVICE: &str = "tally";
/// The fallback file's name, in the configuration directory.
pub const KEYS_FILE: &str = "keys.toml";

/// Where keys end up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The OS keyring.
    Keyring,
    /// The 0600 file.
    File(PathBuf),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Keyring => f.write_str("the OS keyring"),
            Backend::File(p) => write!(f, "{} (readable only by you; no OS keyring available)", p.display()),
        }
    }
}

/// Reads and writes stream keys by id (`PROFILE/DESTINATION`).
#[derive(Debug)]
pub struct SecretStore {
    file: PathBuf,
    use_keyring: bool,
    /// The keyring refused a key in this run: new keys go to the file.
    refused: std::sync::atomic::AtomicBool,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct KeysFile {
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

fn keyring_usable() -> bool {
    if std::env::var("TALLY_SECRET_STORE").is_ok_and(|v| v == "file") {
        return false;
    }
    if keyring::Entry::store_status().is_err() {
        return false;
    }
    // The store may initialise yet have no service behind it (no D-Bus
    // session, no Secret Service): a harmless read tells.
    matches!(keyring::Entry::new(KEYRING_SERVICE, "probe").map(|e| e.get_password()), Ok(Ok(_) | Err(keyring::Error::NoEntry)))
}

impl SecretStore {
    /// The store for the configuration in `config_dir`.
    pub fn open(config_dir: &Path) -> Self {
        SecretStore { file: config_dir.join(KEYS_FILE), use_keyring: keyring_usable(), refused: Default::default() }
    }

    /// A store that never uses the keyring (tests, `TALLY_SECRET_STORE=file`).
    pub fn open_file_only(config_dir: &Path) -> Self {
        SecretStore { file: config_dir.join(KEYS_FILE), use_keyring: false, refused: Default::default() }
    }

    fn keyring_in_use(&self) -> bool {
        self.use_keyring && !self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where new keys go.
    pub fn backend(&self) -> Backend {
        if self.keyring_in_use() { Backend::Keyring } else { Backend::File(self.file.clone()) }
    }

    /// Stores `key` under `id`; returns where it went, and a notice to show
    /// the person once: the first key written to the fallback file where
    /// there is no keyring, or the keyring refusing a key in this run.
    pub fn set(&self, id: &str, key: &StreamKey) -> Result<(Backend, Option<String>), ConfigError> {
        let mut notice = None;
        if self.keyring_in_use() {
            let stored = keyring::Entry::new(KEYRING_SERVICE, id).and_then(|e| e.set_password(key.expose()));
            match stored {
                Ok(()) => return Ok((Backend::Keyring, None)),
                Err(e) => {
                    self.refused.store(true, std::sync::atomic::Ordering::Relaxed);
                    notice = Some(format!(
                        "the OS keyring refused the key (is it locked?): {e}; stream keys are kept in {} (readable only by you)",
                        self.file.display()
                    ));
                }
            }
        } else if !self.file.exists() {
            notice = Some(format!("no OS keyring is available: stream keys are kept in {}", Backend::File(self.file.clone())));
        }
        let mut keys = self.read_file()?;
        keys.keys.insert(id.to_string(), key.expose().to_string());
        self.write_file(&keys)?;
        Ok((Backend::File(self.file.clone()), notice))
    }

    /// The key stored under `id`, from the keyring or the file.
    pub fn get(&self, id: &str) -> Result<Option<StreamKey>, ConfigError> {
        Ok(self.locate(id)?.map(|(key, _)| key))
    }

    /// The key stored under `id` and where it was found (a key the keyring
    /// refused is in the file even when a keyring exists).
    pub fn locate(&self, id: &str) -> Result<Option<(StreamKey, Backend)>, ConfigError> {
        if self.use_keyring
            && let Ok(Ok(k)) = keyring::Entry::new(KEYRING_SERVICE, id).map(|e| e.get_password())
        {
            return Ok(Some((StreamKey::new(k), Backend::Keyring)));
        }
        Ok(self.read_file()?.keys.remove(id).map(|k| (StreamKey::new(k), Backend::File(self.file.clone()))))
    }

    /// Forgets the key under `id` (both places).
    pub fn delete(&self, id: &str) -> Result<(), ConfigError> {
        if self.use_keyring
            && let Ok(e) = keyring::Entry::new(KEYRING_SERVICE, id)
        {
            let _ = e.delete_credential();
        }
        if self.file.exists() {
            let mut keys = self.read_file()?;
            if keys.keys.remove(id).is_some() {
                self.write_file(&keys)?;
            }
        }
        Ok(())
    }

    fn read_file(&self) -> Result<KeysFile, ConfigError> {
        super::read_toml(&self.file)
    }

    /// Writes the key file atomically, owner-only from the first byte.
    fn write_file(&self, keys: &KeysFile) -> Result<(), ConfigError> {
        let mut text = String::from("# Tally stream keys (no OS keyring was available). Keep this file private.\n");
        text.push_str(&toml::to_string(keys).map_err(|e| ConfigError::Invalid(e.to_string()))?);
        super::write_file_atomic(&self.file, &text, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("tally-secrets-{}-{}", std::process::id(), fastrand::u64(..)));
        let store = SecretStore::open_file_only(&dir);
        let (backend, notice) = store.set("show/twitch", &StreamKey::new("live_123_abc")).unwrap();
        assert!(notice.is_some_and(|n| n.contains("no OS keyring")) && matches!(backend, Backend::File(_)));
        let (_, notice) = store.set("show/youtube", &StreamKey::new("yt-key")).unwrap();
        assert!(notice.is_none());
        assert!(matches!(store.locate("show/youtube").unwrap(), Some((_, Backend::File(_)))));
        assert_eq!(store.get("show/twitch").unwrap().unwrap().expose(), "live_123_abc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEYS_FILE)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        store.delete("show/twitch").unwrap();
        assert!(store.get("show/twitch").unwrap().is_none());
        assert!(store.get("show/youtube").unwrap().is_some());
        std::fs::remove_dir_all(dir).ok();
    }
}
