//! Tally's own RTMP server (and HTTP-FLV): the rehearsal stage.
//!
//! [`Server::start`] binds the sockets and returns a [`ServerHandle`]; the
//! CLI's `tally serve` and the GUI run the same type. One tokio task per
//! connection drives an `rtmp::ServerSession`; streams live in a
//! [`hub::Registry`] keyed by app and stream name; players get the cached
//! start of the stream at once and live media through a bounded
//! [`player_queue::PlayerQueue`] each.
//!
//! Every limit is a named constant below or in [`ServerConfig`]; a hostile or
//! broken client costs its own connection and nothing else.

pub mod hub;
mod http_conn;
pub mod hub_message;
mod outbox;
pub mod player_queue;
mod rtmp_conn;

pub use hub::{Registry, StreamInfo};

use crate::rtmp::{DecoderLimits, ServerConfig as SessionConfig, ServerTimeouts, StreamKey, chunk};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest a client may take for the RTMP handshake (or an HTTP request head).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the handshake, a client has this long to send `connect`; other
/// bytes do not extend it (nginx-rtmp keeps such a connection for its
/// 60 s `timeout`, refreshed by any input).
pub const RTMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that neither publishes nor plays is closed after this long
/// without a byte from the client.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A publisher that sends nothing for this long is dropped (nginx-rtmp's
/// `drop_idle_publisher`), freeing the stream name.
pub const PUBLISHER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to a player that makes no progress for this long ends it: a
/// player that stopped reading entirely.
pub const CLIENT_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a refused client gets to read our reason and close after we
/// have (see `rtmp_conn::Conn::close_gracefully`); a client that keeps
/// sending is cut off then.
pub const REFUSED_CLOSE_LINGER: Duration = Duration::from_secs(5);
/// Default connection limit (RTMP and HTTP together).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default limit of connections from one client address (loopback clients
/// are not limited unless asked: every local player shares 127.0.0.1).
pub const DEFAULT_MAX_PER_ADDRESS: usize = 32;
/// Refused connections answered at once (told why, given `REFUSED_CLOSE_LINGER` to
/// read it); beyond this a refused connection is closed without an answer,
/// so a flood of refusals costs no more than this many tasks.
pub const MAX_REFUSING: usize = 64;
/// Chunk size the server sends with, announced to every client at `connect`:
/// the size shared player media is chunked for.
pub const SERVER_CHUNK_SIZE: u32 = 4096;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// RTMP listen address (loopback by default).
    pub rtmp_listen: SocketAddr,
    /// HTTP-FLV and `/api/streams` listen address; `None` disables HTTP.
    pub http_listen: Option<SocketAddr>,
    /// When set, publishing needs it (`?key=` or a `-KEY`/`_KEY` suffix).
    pub publish_key: Option<StreamKey>,
    /// RTMP and HTTP connections accepted at once; more are refused with a reason.
    pub max_connections: usize,
    /// Connections accepted at once from one client address; more are refused with a reason.
    pub max_per_address: usize,
    /// Apply `max_per_address` to loopback clients too.
    pub limit_loopback: bool,
    /// A second publisher for a live name takes over (true) or is refused.
    pub takeover: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            rtmp_listen: SocketAddr::from(([127, 0, 0, 1], 1935)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            publish_key: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
            limit_loopback: false,
            takeover: true,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS's words.
        reason: String,
    },
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub registry: Registry,
    pub session: SessionConfig,
    pub connections: AtomicUsize,
    /// Connections per client address (those the per-address cap applies
    /// to); at most `max_connections` entries, removed at zero.
    pub per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Refused connections still being answered.
    pub refusing: AtomicUsize,
    pub next_conn: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
}

/// Why a connection is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` reached.
    Full,
    /// `max_per_address` reached for the client's address.
    PerAddress,
}

impl Refusal {
    /// The reason told to the client (RTMP `_error` description, HTTP body).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "Server full: too many connections",
            Refusal::PerAddress => "Too many connections from your address",
        }
    }
}

impl Shared {
    /// Takes a connection slot for a client at `peer`, or says why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let prev = self.connections.fetch_add(1, Ordering::SeqCst);
        let mut slot = ConnectionSlot { shared: self.clone(), address: None };
        if prev >= self.config.max_connections {
            return Err(Refusal::Full);
        }
        if peer.is_loopback() && !self.config.limit_loopback {
            return Ok(slot);
        }
        let mut counts = self.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(peer).or_insert(0);
        if *count >= self.config.max_per_address {
            if *count == 0 {
                counts.remove(&peer);
            }
            return Err(Refusal::PerAddress);
        }
        *count += 1;
        slot.address = Some(peer);
        Ok(slot)
    }

    /// A turn to answer a refused connection; `None` when `MAX_REFUSING`
    /// are being answered already (close this one without a word).
    pub fn refusing(self: &Arc<Self>) -> Option<RefusingSlot> {
        let prev = self.refusing.fetch_add(1, Ordering::SeqCst);
        let turn = RefusingSlot(self.clone());
        (prev < MAX_REFUSING).then_some(turn)
    }
}

/// A counted connection; frees its slot (and its address's) on drop.
pub(crate) struct ConnectionSlot {
    shared: Arc<Shared>,
    address: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::SeqCst);
        if let Some(a) = self.address {
            let mut counts = self.shared.per_address.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = counts.get_mut(&a) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    counts.remove(&a);
                }
            }
        }
    }
}

/// A refused connection being answered; frees its turn on drop.
pub(crate) struct RefusingSlot(Arc<Shared>);

impl Drop for RefusingSlot {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's standing: admitted, or refused and being told why.
pub(crate) enum Admission {
    /// Counted until the connection ends (the slot is freed on drop).
    Admitted {
        _slot: ConnectionSlot,
    },
    /// Answered with the reason, then closed.
    Refused(Refusal, RefusingSlot),
}

/// A running server.
pub struct ServerHandle {
    rtmp_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("rtmp", &self.rtmp_addr).field("http", &self.http_addr).finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound RTMP address (useful with port 0).
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// The bound HTTP address, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Every stream, as `/api/streams` shows them.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.shared.registry.streams()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        self.shared.registry.close_all();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.shared.registry.close_all();
    }
}

/// The server type the CLI and the GUI start.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds the RTMP (and HTTP) sockets and starts serving on the current
    /// tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr).await.map_err(|e| ServerError::Bind { addr, reason: e.to_string() })
        };
        let rtmp = bind(config.rtmp_listen).await?;
        let http = match config.http_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let rtmp_addr = rtmp.local_addr().map_err(|e| ServerError::Bind { addr: config.rtmp_listen, reason: e.to_string() })?;
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        for addr in std::iter::once(rtmp_addr).chain(http_addr) {
            if !addr.ip().is_loopback() && config.publish_key.is_none() {
                tracing::warn!(%addr, "listening beyond this machine without --publish-key: anyone who can reach it can publish");
            }
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let session = SessionConfig {
            chunk_size: SERVER_CHUNK_SIZE,
            // The longest message a client may send (8 MiB, several times a
            // 4K keyframe) and the most chunk streams it may use at once:
            // the core's own limits, under their one name.
            limits: DecoderLimits { max_message_len: chunk::MAX_MESSAGE_LEN, max_chunk_streams: chunk::MAX_CHUNK_STREAMS, ..DecoderLimits::default() },
            timeouts: ServerTimeouts {
                handshake: HANDSHAKE_TIMEOUT,
                connect: RTMP_CONNECT_TIMEOUT,
                idle: IDLE_TIMEOUT,
                publisher_idle: PUBLISHER_IDLE_TIMEOUT,
            },
            ..SessionConfig::default()
        };
        let shared = Arc::new(Shared {
            config,
            registry: Registry::default(),
            session,
            connections: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
            next_conn: AtomicU64::new(0),
            shutdown: shutdown_rx,
        });
        let mut tasks = vec![tokio::spawn(accept_loop(rtmp, shared.clone(), Protocol::Rtmp))];
        if let Some(h) = http {
            tasks.push(tokio::spawn(accept_loop(h, shared.clone(), Protocol::Http)));
        }
        tracing::info!(rtmp = %rtmp_addr, http = ?http_addr, "server listening");
        Ok(ServerHandle { rtmp_addr, http_addr, shared, shutdown: shutdown_tx, tasks })
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Rtmp,
    Http,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, proto: Protocol) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let admission = match shared.admit(peer.ip()) {
            Ok(slot) => Admission::Admitted { _slot: slot },
            Err(why) => match shared.refusing() {
                Some(turn) => {
                    tracing::warn!(conn = id, %peer, "refusing connection: {}", why.reason());
                    Admission::Refused(why, turn)
                }
                None => {
                    tracing::debug!(conn = id, %peer, "closing connection unanswered: {} (and {MAX_REFUSING} refusals being answered)", why.reason());
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            match proto {
                Protocol::Rtmp => rtmp_conn::serve(socket, peer, id, admission, shared).await,
                Protocol::Http => http_conn::serve(socket, peer, id, admission, shared).await,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(config: ServerConfig) -> Arc<Shared> {
        let (_tx, shutdown) = watch::channel(false);
        Arc::new(Shared {
            config,
            registry: Registry::default(),
            session: SessionConfig::default(),
            connections: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
            next_conn: AtomicU64::new(0),
            shutdown,
        })
    }

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let s = shared(ServerConfig { max_connections: 4, max_per_address: 2, ..ServerConfig::default() });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let (a1, a2) = (s.admit(a).ok(), s.admit(a).ok());
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(s.admit(a).err(), Some(Refusal::PerAddress));
        let b1 = s.admit(b).ok();
        // Loopback is not limited per address, but counts towards the total.
        let l1 = s.admit(IpAddr::from([127, 0, 0, 1])).ok();
        assert!(b1.is_some() && l1.is_some());
        assert_eq!(s.admit(b).err(), Some(Refusal::Full));
        drop(a1);
        assert!(s.admit(a).is_ok(), "a slot given back is free again");
        drop((a2, b1, l1));
        assert_eq!(s.connections.load(Ordering::SeqCst), 0);
        assert!(s.per_address.lock().expect("lock").is_empty(), "no address kept at zero");
    }

    #[test]
    fn refusals_answered_at_once_are_bounded() {
        let s = shared(ServerConfig::default());
        let turns: Vec<_> = (0..MAX_REFUSING).map(|_| s.refusing().expect("a turn")).collect();
        assert!(s.refusing().is_none(), "beyond MAX_REFUSING a refusal gets no answer");
        drop(turns);
        assert!(s.refusing().is_some());
    }
}
