//! Why publishing failed, sorted into final and retryable.

use crate::net::status::{FailureKind, OutputState};

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The host name did not resolve.
    #[error("could not resolve host '{host}': {reason}")]
    Dns {
        /// Host name.
        host: String,
        /// Resolver's words.
        reason: String,
    },
    /// No TCP connection could be made.
    #[error("could not connect to {addr}: {reason}")]
    Connect {
        /// Address tried last.
        addr: String,
        /// The OS's words (e.g. "Connection refused").
        reason: String,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, or TLS itself.
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// Host whose certificate or handshake failed.
        host: String,
        /// What was wrong, and what to do about it.
        reason: String,
    },
    /// The server refused: `_error`, or `onStatus` with level "error".
    #[error("server rejected the stream: {code}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Rejected {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// Server's description.
        description: String,
    },
    /// The server closed the connection in answer to `publish` — how
    /// nginx-rtmp's `on_publish` denial and several platforms answer a bad key.
    #[error("server closed the connection in answer to publish (stream key rejected, or the application does not exist?)")]
    PublishRefused,
    /// The server closed the connection before `publish` was sent.
    #[error("server closed the connection while {0}")]
    ClosedDuringSetup(&'static str),
    /// The server closed the connection while live.
    #[error("server closed the connection")]
    Closed,
    /// A step took too long.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// Writes made no progress, or the server stopped acknowledging.
    #[error("connection stalled: {0}")]
    Stalled(String),
    /// This destination cannot be used as configured (e.g. an unreadable CA file).
    #[error("{0}")]
    Config(String),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A socket error.
    #[error("network error: {0}")]
    Io(String),
}

impl PublishError {
    /// True for errors that retrying will not fix: rejections, refused keys,
    /// certificate problems, broken configuration or protocol.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PublishError::Rejected { .. }
                | PublishError::PublishRefused
                | PublishError::Tls { .. }
                | PublishError::Config(_)
                | PublishError::Protocol(_)
        )
    }

    /// The kind a face shows.
    pub fn kind(&self) -> FailureKind {
        match self {
            PublishError::Dns { .. } => FailureKind::Resolve,
            PublishError::Connect { .. } => FailureKind::Connect,
            PublishError::Tls { .. } => FailureKind::Tls,
            PublishError::Rejected { .. } | PublishError::PublishRefused => FailureKind::Rejected,
            PublishError::ClosedDuringSetup(_)
            | PublishError::Closed
            | PublishError::Timeout(_)
            | PublishError::Stalled(_)
            | PublishError::Io(_) => FailureKind::Network,
            PublishError::Config(_) => FailureKind::Config,
            PublishError::Protocol(_) => FailureKind::Protocol,
        }
    }

    /// This error as an output's final state.
    pub fn as_state(&self) -> OutputState {
        OutputState::failed(self.kind(), self.is_final(), self.to_string())
    }
}
