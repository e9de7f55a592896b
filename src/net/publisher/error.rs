//! Why publishing failed, sorted into final and retryable. Each failure
//! keeps its cause (the OS's, rustls's, the RTMP session's) as its
//! `source`; [`crate::error_chain`] prints the whole story.

use crate::net::status::{FailureKind, OutputState};
use crate::rtmp::SessionError;
use std::path::PathBuf;
use std::time::Duration;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The host name did not resolve.
    #[error("could not resolve host '{host}'")]
    Dns {
        /// Host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The host name resolved to nothing.
    #[error("could not resolve host '{host}': no addresses")]
    NoAddress {
        /// Host name.
        host: String,
    },
    /// No TCP connection could be made.
    #[error("could not connect to {addr}")]
    Connect {
        /// Address tried last.
        addr: String,
        /// The OS's error (e.g. "Connection refused").
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, or TLS itself.
    #[error("TLS with {host} failed{}", if *untrusted { ": its certificate is not trusted; for a private CA pass its certificate with --ca-file" } else { "" })]
    Tls {
        /// Host whose certificate or handshake failed.
        host: String,
        /// The certificate was refused (the advice is about a CA file).
        untrusted: bool,
        /// What rustls said.
        #[source]
        source: rustls::Error,
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
    Stalled(Stall),
    /// This destination cannot be used as configured.
    #[error(transparent)]
    Config(#[from] DestinationConfigError),
    /// The peer broke the protocol (or the session refused what we asked of it).
    #[error("protocol error")]
    Protocol(#[source] SessionError),
    /// A socket error.
    #[error("network error")]
    Io(#[source] std::io::Error),
}

/// How a connection stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stall {
    /// Nothing written for this long (the socket's buffer stayed full).
    #[error("no write progress for {}s", .0.as_secs())]
    NoWriteProgress(Duration),
    /// The server acknowledged nothing for this long (RTMP 1.0 5.4.3).
    #[error("no acknowledgement for {}s", .0.as_secs())]
    NoAcknowledgement(Duration),
}

/// A destination's configuration that cannot work, whatever the network does.
#[derive(Debug, thiserror::Error)]
pub enum DestinationConfigError {
    /// The CA file could not be read or parsed.
    #[error("cannot read CA file {}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The CA file holds no certificate.
    #[error("CA file {} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the CA file was refused.
    #[error("CA file {}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// rustls could not be set up.
    #[error("TLS setup")]
    TlsSetup(#[source] rustls::Error),
    /// The host cannot be a TLS server name.
    #[error("'{host}' is not a valid TLS server name")]
    ServerName {
        /// The host.
        host: String,
    },
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
            PublishError::Dns { .. } | PublishError::NoAddress { .. } => FailureKind::Resolve,
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

    /// This error as an output's final state (the message with its causes).
    pub fn as_state(&self) -> OutputState {
        OutputState::failed(self.kind(), self.is_final(), crate::error_chain(self))
    }
}
