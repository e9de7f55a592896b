//! An RTMP player: a tokio driver around `rtmp::ClientSession` in play mode.
//!
//! What viewers get, seen from inside Tally: the local server's preview,
//! the fan-out load generator and the tests use it. It yields the session's
//! events (status, media) one at a time and answers acknowledgements and
//! pings on the way.

use super::client_setup;
use super::publisher::error::PublishError;
use super::transport::{self, Transport};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, RtmpUrl, Scheme, SessionError};
use bytes::BytesMut;
use std::collections::VecDeque;
use tokio::io::AsyncReadExt;

/// Longest wait for the TCP connection (and the TLS handshake): the transport's.
pub use super::transport::TCP_CONNECT_TIMEOUT;

/// Why playing failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The server could not be reached.
    #[error("could not reach {addr}")]
    Connect {
        /// host:port.
        addr: String,
        /// Why: resolving, connecting or TLS, as for a publisher.
        #[source]
        source: PublishError,
    },
    /// A socket error.
    #[error("network error")]
    Io(#[from] std::io::Error),
    /// The server broke the protocol.
    #[error("protocol error")]
    Protocol(#[from] SessionError),
    /// The server closed or failed the connection before answering `play`.
    #[error("setting up the stream")]
    Setup(#[from] client_setup::SetupError),
}

/// A connection playing one stream.
pub struct RtmpPlayer {
    stream: Box<dyn Transport>,
    local: Option<std::net::SocketAddr>,
    session: ClientSession,
    buf: BytesMut,
    events: VecDeque<ClientEvent>,
    bytes_in: u64,
    /// Most bytes per read, yielding to other tasks before each: a viewer
    /// behind a slow link (the fan-out benchmark's slow readers).
    read_limit: Option<usize>,
}

impl std::fmt::Debug for RtmpPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpPlayer").field("bytes_in", &self.bytes_in).finish_non_exhaustive()
    }
}

impl RtmpPlayer {
    /// Connects and asks to play `url` (its last path segment is the stream name).
    pub async fn connect(url: &RtmpUrl) -> Result<RtmpPlayer, PlayError> {
        Self::connect_with(url, None).await
    }

    /// Like [`RtmpPlayer::connect`]; `rtmps://` trusts `ca_file` besides the
    /// platform's roots (the publisher's transport: DNS, TCP, TLS).
    pub async fn connect_with(url: &RtmpUrl, ca_file: Option<&std::path::Path>) -> Result<RtmpPlayer, PlayError> {
        let addr = format!("{}:{}", url.host, url.port);
        let failed = |source: PublishError| PlayError::Connect { addr: addr.clone(), source };
        let tls = match url.scheme {
            Scheme::Rtmps => Some(transport::tls_config(ca_file).map_err(failed)?),
            Scheme::Rtmp => None,
        };
        let addrs = transport::resolve(url).await.map_err(failed)?;
        let tcp = transport::connect_tcp(&addrs).await.map_err(failed)?;
        let local = tcp.local_addr().ok();
        let stream = transport::connect_transport(url, tcp, tls.as_ref()).await.map_err(failed)?;
        let mut stream = stream;
        let mut session = ClientSession::new(ClientConfig::play_from_url(url), fastrand::u64(..), 0);
        // Until the server answers `play`; what arrived with the answer is kept for `next_event`.
        let events = client_setup::drive_until(&mut session, &mut stream, client_setup::play_started).await?;
        Ok(RtmpPlayer { stream, local, session, buf: BytesMut::with_capacity(64 * 1024), events: events.into(), bytes_in: 0, read_limit: None })
    }

    async fn flush(&mut self) -> Result<(), PlayError> {
        Ok(client_setup::flush(&mut self.session, &mut self.stream).await?)
    }

    /// The local end of the connection: how the server lists this player.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.local.ok_or_else(|| std::io::Error::other("no local address"))
    }

    /// Bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Reads at most `limit` bytes at a time and yields to other tasks
    /// before each read (`None`: whatever the socket has, at once).
    pub fn set_read_limit(&mut self, limit: Option<usize>) {
        self.read_limit = limit.map(|l| l.max(1));
    }

    /// The next event; `Ok(None)` when the server closed the connection.
    pub async fn next_event(&mut self) -> Result<Option<ClientEvent>, PlayError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            self.buf.clear();
            let n = match self.read_limit {
                None => self.stream.read_buf(&mut self.buf).await?,
                Some(limit) => {
                    tokio::task::yield_now().await;
                    self.buf.resize(limit, 0);
                    let n = self.stream.read(&mut self.buf[..limit]).await?;
                    self.buf.truncate(n);
                    n
                }
            };
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
