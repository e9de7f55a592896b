//! A scripted engine for window tests that need no peer: the test sets the
//! snapshot the window draws and reads back the commands it sent. No
//! runtime, no threads, no devices — the window's own logic (the light, the
//! rows, the editor's checks, the shortcuts) and nothing else.
//!
//! It implements `tally::engine::EngineLink`, the same interface the real
//! `Engine` gives the window; a test holds an `Arc<ScriptedEngine>` and
//! hands the window a clone.

use std::sync::{Arc, Mutex};
use tally::engine::{Command, EngineError, EngineLink, EngineState, Snapshot, Waker};
use tally::pipeline::Stats;

/// The snapshot the window sees and the commands it sent.
#[derive(Default)]
pub struct ScriptedEngine {
    snapshot: Mutex<Arc<Snapshot>>,
    sent: Mutex<Vec<Command>>,
    wakes: Mutex<Option<Waker>>,
}

impl ScriptedEngine {
    /// A new engine showing `state` (and no stats).
    pub fn with_state(state: EngineState) -> Arc<ScriptedEngine> {
        let engine = Arc::new(ScriptedEngine::default());
        engine.set_state(state);
        engine
    }

    /// Shows `state` from the next frame on (the rest of the snapshot kept),
    /// and wakes the window as the real engine does on a change.
    pub fn set_state(&self, state: EngineState) {
        self.change(|s| s.state = Arc::new(state));
    }

    /// Shows `picture` as the preview from the next frame on.
    pub fn set_preview(&self, picture: tally::session::PreviewFrame) {
        self.change(|s| s.preview = Some(Arc::new(picture)));
    }

    /// Shows `stats` from the next frame on.
    pub fn set_stats(&self, stats: Stats) {
        self.change(|s| s.stats = Arc::new(stats));
    }

    fn change(&self, f: impl FnOnce(&mut Snapshot)) {
        {
            let mut current = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = (**current).clone();
            f(&mut next);
            *current = Arc::new(next);
        }
        if let Some(wake) = self.wakes.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            wake();
        }
    }

    /// Every command sent so far, oldest first, taken out.
    pub fn take_sent(&self) -> Vec<Command> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True once the window has handed over its waker.
    pub fn has_waker(&self) -> bool {
        self.wakes.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

impl EngineLink for ScriptedEngine {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(command);
        Ok(())
    }

    fn set_waker(&self, waker: Waker) {
        *self.wakes.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }
}
