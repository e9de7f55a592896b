//! The saved profiles' part: reading, saving and deleting them (files and
//! the keyring: tasks off the runtime), and noting the last one used.

use super::{Event as ControllerEvent, Outbox};
use crate::config::{ConfigError, Profile, ProfileStore};
use crate::engine::command::ProfilesCommand;
use crate::engine::errors::ProfilesError;
use crate::engine::state::ProfilesState;
use std::path::{Path, PathBuf};

/// In the config directory: the name of the profile last gone live with.
const LAST_USED_FILE: &str = "last-profile";

/// The profiles as read, and the last one used (if it still exists).
type Listing = (Vec<Profile>, Option<String>);

/// What the profile tasks report: each ends with the profiles read again.
pub(in crate::engine) enum Event {
    /// The profiles were read (`seq` orders the reads: an older one never wins).
    Read { seq: u64, listing: Result<Listing, ProfilesError> },
    /// A profile was saved (the services' warnings) or deleted, and the
    /// profiles read after (`None`: not read, the task having failed first).
    Changed { seq: u64, change: Result<Vec<String>, ProfilesError>, listing: Option<Result<Listing, ProfilesError>> },
}

/// The profiles' slice of state.
pub(super) struct Profiles {
    /// Where profiles and keys are; `None`: the platform's config directory.
    config_dir: Option<PathBuf>,
    /// Reads started, and the newest one shown.
    reads: u64,
    shown: u64,
}

impl Profiles {
    pub fn new(config_dir: Option<PathBuf>) -> Self {
        Profiles { config_dir, reads: 0, shown: 0 }
    }

    /// Where profiles and keys are (finding the platform's may read the environment: call off the runtime).
    pub fn dir_finder(&self) -> impl FnOnce() -> Result<PathBuf, ConfigError> + Send + 'static {
        let dir = self.config_dir.clone();
        move || match dir {
            Some(d) => Ok(d),
            None => crate::config::config_dir(),
        }
    }

    pub fn command(&mut self, cmd: ProfilesCommand, out: &Outbox) {
        self.reads += 1;
        let (seq, dir) = (self.reads, self.dir_finder());
        match cmd {
            ProfilesCommand::Load => out.in_order(move || read(dir), move |done| flatten_read(seq, done)),
            ProfilesCommand::Save { profile, from, keep_from, keys } => {
                for (_, k) in &keys {
                    crate::engine::log::LogRing::global().remember_secret(k);
                }
                let name = profile.name.clone();
                let save = move |store: &ProfileStore| {
                    let saved = store.save_edited(profile, from.as_deref(), keep_from, &keys);
                    saved.map_err(|source| ProfilesError::Save { name, source })
                };
                out.in_order(move || change_then_read(dir, save), move |done| flatten_change(seq, done));
            }
            ProfilesCommand::Delete(name) => {
                let delete = move |store: &ProfileStore| {
                    let removed = store.remove(&name).map(|()| Vec::new());
                    removed.map_err(|source| ProfilesError::Delete { name, source })
                };
                out.in_order(move || change_then_read(dir, delete), move |done| flatten_change(seq, done));
            }
        }
    }

    pub fn event(&mut self, event: Event, out: &Outbox) {
        let (seq, listing) = match event {
            Event::Read { seq, listing } => (seq, listing),
            Event::Changed { seq, change, listing } => {
                match change {
                    Ok(warnings) => {
                        tracing::info!("profiles changed");
                        out.set(|s| s.warnings = warnings);
                    }
                    Err(e) => out.refuse(&e),
                }
                let Some(listing) = listing else { return };
                (seq, listing)
            }
        };
        if seq < self.shown {
            return;
        }
        self.shown = seq;
        let state = match listing {
            Ok((profiles, last_used)) => ProfilesState::Loaded { profiles, last_used },
            Err(e) => ProfilesState::Failed { message: crate::error_chain(&e) },
        };
        out.set(|s| s.profiles = state);
    }

    /// Notes the profile a broadcast went live with: a face selects it next time.
    pub fn remember_last_used(&self, name: String, out: &Outbox) {
        let dir = self.dir_finder();
        let n = name.clone();
        tokio::task::spawn_blocking(move || {
            let written = dir().and_then(|d| crate::config::write_file_atomic(&d.join(LAST_USED_FILE), &format!("{n}\n"), false));
            if let Err(e) = written {
                tracing::warn!("could not note the last used profile: {}", crate::error_chain(&e));
            }
        });
        out.set(|s| {
            if let ProfilesState::Loaded { last_used, .. } = &mut s.profiles {
                *last_used = Some(name);
            }
        });
    }
}

/// Reads the profiles and the last used one (blocking: files).
fn read(dir: impl FnOnce() -> Result<PathBuf, ConfigError>) -> Result<Listing, ProfilesError> {
    let dir = dir().map_err(ProfilesError::ConfigDir)?;
    read_in(&dir)
}

fn read_in(dir: &Path) -> Result<Listing, ProfilesError> {
    let profiles = ProfileStore::open(dir).list().map_err(ProfilesError::Read)?;
    let last = std::fs::read_to_string(dir.join(LAST_USED_FILE)).ok().map(|t| t.trim().to_string());
    let last_used = last.filter(|l| profiles.iter().any(|p| &p.name == l));
    Ok((profiles, last_used))
}

fn flatten_read(seq: u64, done: Result<Result<Listing, ProfilesError>, tokio::task::JoinError>) -> ControllerEvent {
    ControllerEvent::Profiles(Event::Read { seq, listing: done.unwrap_or_else(|e| Err(ProfilesError::Task(e))) })
}

type ChangeDone = (Result<Vec<String>, ProfilesError>, Option<Result<Listing, ProfilesError>>);

/// Changes the store, then reads it again (blocking: files and the keyring).
fn change_then_read(
    dir: impl FnOnce() -> Result<PathBuf, ConfigError>,
    change: impl FnOnce(&ProfileStore) -> Result<Vec<String>, ProfilesError>,
) -> ChangeDone {
    match dir() {
        Ok(d) => (change(&ProfileStore::open(&d)), Some(read_in(&d))),
        Err(e) => (Err(ProfilesError::ConfigDir(e)), None),
    }
}

fn flatten_change(seq: u64, done: Result<ChangeDone, tokio::task::JoinError>) -> ControllerEvent {
    let (change, listing) = done.unwrap_or_else(|e| (Err(ProfilesError::Task(e)), None));
    ControllerEvent::Profiles(Event::Changed { seq, change, listing })
}
