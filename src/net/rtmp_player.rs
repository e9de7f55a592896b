//! An RTMP player: a tokio driver around `rtmp::ClientSession` in play mode.
//!
//! What viewers get, seen from inside Tally: the local server's preview,
//! the fan-out load generator and the tests use it. It yields the session's
//! events (status, media) one at a time and answers acknowledgements and
//! pings on the way.

use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, RtmpUrl, SessionError};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest wait for DNS + TCP connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why playing failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The server could not be reached.
    #[error("could not connect to {addr}: {reason}")]
    Connect {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A socket error.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] SessionError),
}

/// A connection playing one stream.
pub struct RtmpPlayer {
    stream: TcpStream,
    session: ClientSession,
    buf: BytesMut,
    events: VecDeque<ClientEvent>,
    bytes_in: u64,
}

impl std::fmt::Debug for RtmpPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpPlayer").field("bytes_in", &self.bytes_in).finish_non_exhaustive()
    }
}

impl RtmpPlayer {
    /// Connects and asks to play `url` (its last path segment is the stream name).
    pub async fn connect(url: &RtmpUrl) -> Result<RtmpPlayer, PlayError> {
        let addr = format!("{}:{}", url.host, url.port);
        let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(PlayError::Connect { addr, reason: e.to_string() }),
            Err(_) => return Err(PlayError::Connect { addr, reason: "timed out".into() }),
        };
        let _ = stream.set_nodelay(true);
        let session = ClientSession::new(ClientConfig::play_from_url(url), fastrand::u64(..), 0);
        let mut p = RtmpPlayer { stream, session, buf: BytesMut::with_capacity(64 * 1024), events: VecDeque::new(), bytes_in: 0 };
        p.flush().await?;
        Ok(p)
    }

    async fn flush(&mut self) -> Result<(), PlayError> {
        let out = self.session.take_outbound();
        if !out.is_empty() {
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    /// The connection itself (e.g. to stop reading it).
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }

    /// The local end of the connection: how the server lists this player.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.stream.local_addr()
    }

    /// Bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// The next event; `Ok(None)` when the server closed the connection.
    pub async fn next_event(&mut self) -> Result<Option<ClientEvent>, PlayError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            self.buf.clear();
            let n = self.stream.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_in += n as u64;
            let events = self.session.handle_input(&self.buf)?;
            self.events.extend(events);
            self.flush().await?;
        }
    }
}
