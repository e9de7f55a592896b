//! Live state of one output, shared between the task that drives it and
//! whoever displays it. Lock-free reads except for the short state text.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What an output is doing, as a user would say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputState {
    /// Opening the file / resolving, connecting, handshaking, publishing.
    Connecting,
    /// Delivering media.
    Live,
    /// Ended cleanly.
    Done,
    /// Ended with an error (final).
    Failed(String),
}

impl std::fmt::Display for OutputState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputState::Connecting => f.write_str("connecting"),
            OutputState::Live => f.write_str("live"),
            OutputState::Done => f.write_str("done"),
            OutputState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Shared, updatable status of one output.
#[derive(Debug)]
pub struct OutputStatus {
    state: Mutex<OutputState>,
    bytes_out: AtomicU64,
    finished: AtomicBool,
}

impl Default for OutputStatus {
    fn default() -> Self {
        OutputStatus { state: Mutex::new(OutputState::Connecting), bytes_out: AtomicU64::new(0), finished: AtomicBool::new(false) }
    }
}

impl OutputStatus {
    /// Current state.
    pub fn state(&self) -> OutputState {
        self.state.lock().map(|s| s.clone()).unwrap_or(OutputState::Failed("status lock poisoned".into()))
    }

    /// Sets the state; `Done` and `Failed` also mark the output finished.
    pub fn set_state(&self, state: OutputState) {
        let end = matches!(state, OutputState::Done | OutputState::Failed(_));
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
        if end {
            self.finished.store(true, Ordering::SeqCst);
        }
    }

    /// True once the output ended (either way).
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// True once the output ended with an error.
    pub fn failed(&self) -> bool {
        matches!(self.state(), OutputState::Failed(_))
    }

    /// Adds delivered payload bytes.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Payload bytes delivered so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}
