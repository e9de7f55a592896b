//! Live state of one output, shared between the task that drives it and
//! whoever displays it (the `--stats` line, the UI). Lock-free reads except
//! for the state value, which is a watch channel so a face can await changes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What an output is doing, as a user would say it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputState {
    /// Opening the file / resolving, connecting, handshaking, publishing.
    #[default]
    Connecting,
    /// Delivering media.
    Live,
    /// The network went away; the next attempt is at `next_try`.
    Reconnecting {
        /// Attempts made since the connection was lost (1 = the first retry pending).
        attempt: u32,
        /// When the next attempt starts.
        next_try: Instant,
    },
    /// Ended with an error: no more attempts.
    Failed {
        /// What went wrong, for a face to pick its words and icon.
        kind: FailureKind,
        /// The error itself is final (a rejection, a bad certificate): retrying
        /// the same settings would fail the same way. `false` means the
        /// network failed and a retry later may work.
        is_final: bool,
        /// What to tell the person (never a key).
        message: String,
    },
    /// Ended cleanly.
    Stopped,
}

impl std::fmt::Display for OutputState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputState::Connecting => f.write_str("connecting"),
            OutputState::Live => f.write_str("live"),
            OutputState::Reconnecting { attempt, next_try } => {
                let wait = next_try.saturating_duration_since(Instant::now());
                write!(f, "reconnecting (attempt {attempt} in {:.1}s)", wait.as_secs_f64())
            }
            OutputState::Failed { message, .. } => write!(f, "failed: {message}"),
            OutputState::Stopped => f.write_str("stopped"),
        }
    }
}

/// The kind of error that ended an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The host name did not resolve.
    Resolve,
    /// No TCP connection could be made.
    Connect,
    /// TLS failed (certificate, handshake).
    Tls,
    /// The server refused the stream (a bad key, a name in use).
    Rejected,
    /// The server closed or stalled the connection, or a step timed out.
    Network,
    /// The peer broke the protocol.
    Protocol,
    /// The output cannot work as configured (a CA file, a recording path).
    Config,
    /// Writing a recording failed.
    File,
    /// Tally itself failed (a thread, a lock).
    Internal,
}

impl OutputState {
    /// A failure of `kind`.
    pub fn failed(kind: FailureKind, is_final: bool, message: impl Into<String>) -> Self {
        OutputState::Failed { kind, is_final, message: message.into() }
    }
}

/// Shared, updatable status of one output.
#[derive(Debug)]
pub struct OutputStatus {
    /// A watch channel rather than a mutex: a face can wait for the next change.
    state: tokio::sync::watch::Sender<OutputState>,
    /// Media payload bytes handed to the output.
    bytes_out: AtomicU64,
    /// Bytes written to the network, protocol overhead included, this connection.
    wire_sent: AtomicU64,
    /// Bytes the server acknowledged, this connection.
    wire_acked: AtomicU64,
    reconnects: AtomicU32,
    /// When the current live period began (µs since `created`), 0 when not live.
    live_since_us: AtomicU64,
    created: Instant,
    /// The video bitrate this output can carry now (congestion control), kbit/s; 0 = no limit.
    bitrate_kbps: AtomicU32,
    finished: AtomicBool,
    /// The output needs a keyframe now (a new session after a reconnection).
    keyframe_wanted: AtomicBool,
}

impl Default for OutputStatus {
    fn default() -> Self {
        OutputStatus {
            state: tokio::sync::watch::Sender::new(OutputState::Connecting),
            bytes_out: AtomicU64::new(0),
            wire_sent: AtomicU64::new(0),
            wire_acked: AtomicU64::new(0),
            reconnects: AtomicU32::new(0),
            live_since_us: AtomicU64::new(0),
            created: Instant::now(),
            bitrate_kbps: AtomicU32::new(0),
            finished: AtomicBool::new(false),
            keyframe_wanted: AtomicBool::new(false),
        }
    }
}

impl OutputStatus {
    /// Current state.
    pub fn state(&self) -> OutputState {
        self.state.borrow().clone()
    }

    /// A receiver that wakes on every state change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<OutputState> {
        self.state.subscribe()
    }

    /// Sets the state; `Stopped` and `Failed` also mark the output finished.
    pub fn set_state(&self, state: OutputState) {
        let end = matches!(state, OutputState::Stopped | OutputState::Failed { .. });
        if state == OutputState::Live {
            let now = self.created.elapsed().as_micros().max(1) as u64;
            let _ = self.live_since_us.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
        } else {
            self.live_since_us.store(0, Ordering::SeqCst);
        }
        self.state.send_replace(state);
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
        matches!(self.state(), OutputState::Failed { .. })
    }

    /// True while live or getting back to live (not failed, not stopped).
    pub fn healthy(&self) -> bool {
        matches!(self.state(), OutputState::Live)
    }

    /// Adds delivered payload bytes.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Payload bytes delivered so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Records the connection's wire counters (sent, acknowledged by the server).
    pub fn set_wire(&self, sent: u64, acked: u64) {
        self.wire_sent.store(sent, Ordering::Relaxed);
        self.wire_acked.store(acked, Ordering::Relaxed);
    }

    /// Bytes the server acknowledged on this connection.
    pub fn acked(&self) -> u64 {
        self.wire_acked.load(Ordering::Relaxed)
    }

    /// Bytes sent but not yet acknowledged by the server (0 when it does not acknowledge).
    pub fn unacked(&self) -> u64 {
        let acked = self.wire_acked.load(Ordering::Relaxed);
        if acked == 0 { 0 } else { self.wire_sent.load(Ordering::Relaxed).saturating_sub(acked) }
    }

    /// Counts a reconnection.
    pub fn add_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconnections so far.
    pub fn reconnects(&self) -> u32 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// How long the output has been live without interruption.
    pub fn uptime(&self) -> Duration {
        match self.live_since_us.load(Ordering::SeqCst) {
            0 => Duration::ZERO,
            since => self.created.elapsed().saturating_sub(Duration::from_micros(since)),
        }
    }

    /// The video bitrate this output asks for (0: no limit).
    pub fn bitrate_limit(&self) -> u32 {
        self.bitrate_kbps.load(Ordering::Relaxed)
    }

    /// Asks the encoder for a keyframe as soon as possible.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Relaxed);
    }

    /// Takes a pending keyframe request (the encoder calls this).
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// Sets the video bitrate this output can carry (0: no limit).
    pub fn set_bitrate_limit(&self, kbps: u32) {
        self.bitrate_kbps.store(kbps, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_and_states() {
        let s = OutputStatus::default();
        assert_eq!(s.uptime(), Duration::ZERO);
        s.set_state(OutputState::Live);
        assert!(s.healthy());
        s.set_state(OutputState::Reconnecting { attempt: 1, next_try: Instant::now() + Duration::from_secs(2) });
        assert!(s.state().to_string().starts_with("reconnecting (attempt 1 in"));
        assert_eq!(s.uptime(), Duration::ZERO);
        assert!(!s.finished());
        s.set_state(OutputState::Stopped);
        assert!(s.finished() && !s.failed());
        s.set_wire(1000, 0);
        assert_eq!(s.unacked(), 0);
        s.set_wire(1000, 400);
        assert_eq!(s.unacked(), 600);
    }
}
