//! The RTMP/RTMPS publisher: a tokio task driving `rtmp::ClientSession`s
//! for one destination, fed by the destination's [`OutputQueue`].
//!
//! - **Transport**: TCP, or TLS (rustls, SNI, certificates verified against
//!   the platform's roots plus Mozilla's, plus an optional private CA).
//! - **Failures are sorted**: a rejection (`_error`, onStatus level error), a
//!   server that closes the connection in answer to `publish` (nginx-rtmp's
//!   `on_publish` denial, several platforms' bad key), a certificate error,
//!   a protocol violation, and any failure before the first time live are
//!   final — shown once, no retry loop. Losing the network while live
//!   (reset, EOF, timeout, a write that makes no progress, no
//!   acknowledgements for too long) is not: the publisher reconnects with a
//!   jittered geometric backoff (10 % of the outage so far, 1 s to 30 s), a
//!   fresh session, metadata and sequence headers first, and media resuming
//!   at a keyframe the encoder makes for it, the timestamps continuing.
//! - **Congestion**: the queue's depth in ms of media is sampled twice a
//!   second; a sustained backlog lowers this destination's bitrate limit in
//!   steps, a clear queue raises it back (see [`Congestion`]). The pipeline
//!   encodes at the lowest limit of its live destinations. The queue itself
//!   drops video to the next keyframe when it is over its bound.
//!
//! Errors never contain the stream key.

use super::queue::OutputQueue;
use super::status::{FailureKind, OutputState, OutputStatus};
use crate::flv::{self, FlvTag, TagType};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, ClientState, MediaKind, RtmpUrl, Scheme};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest wait for DNS.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the TCP connection (and the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait from connected to `NetStream.Publish.Start`.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(15);
/// After unpublishing, how long to wait for the server to close its side.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// A write that makes no progress for this long means the path is gone.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(8);
/// With more than two acknowledgement windows unacknowledged and no
/// acknowledgement for this long, the server is considered gone.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// Shortest and longest wait between reconnection attempts.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// See [`BACKOFF_MIN`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After losing a live stream, how long `NetStream.Publish.BadName` ("already
/// publishing") is taken for our own dead session that the server has not
/// noticed yet, and retried: nginx-rtmp keeps a silent publisher until its
/// `timeout` (60 s by default) or until the stale bytes reach it.
pub const STALE_SESSION_WINDOW: Duration = Duration::from_secs(90);
/// Most unsent bytes the kernel holds for us (`TCP_NOTSENT_LOWAT`). Beyond
/// it writes wait, so a backlog builds in our queue, where it is measured
/// and dropped at keyframes, not invisibly in a socket buffer of megabytes.
pub const SOCKET_UNSENT_MAX: u32 = 32 * 1024;
/// Read buffer size; the session reassembles messages itself.
const READ_CHUNK: usize = 64 * 1024;
/// How often congestion and liveness are sampled.
const TICK: Duration = Duration::from_millis(500);

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

/// Where to publish, and how.
#[derive(Clone, Debug)]
pub struct Destination {
    /// The URL (the key in it never prints).
    pub url: RtmpUrl,
    /// A PEM file of extra CA certificates to trust for `rtmps://`.
    pub ca_file: Option<PathBuf>,
    /// Reconnect after losing the network while live (the CLI and UI always do).
    pub reconnect: bool,
    /// The video bitrate the broadcast aims for, kbit/s (congestion control's ceiling).
    pub video_kbps: u32,
    /// The audio bitrate, kbit/s: congestion control leaves room for it.
    pub audio_kbps: u32,
    /// A stable name for this destination (`PROFILE/DESTINATION`), which
    /// tells apart two keys on the same ingest; `None`: its position.
    pub id: Option<String>,
}

impl Destination {
    /// Publishing to `url` with defaults: reconnecting, no private CA; the
    /// bitrates (0 = the broadcast's own) bound congestion control.
    pub fn new(url: RtmpUrl, video_kbps: u32, audio_kbps: u32) -> Self {
        Destination { url, ca_file: None, reconnect: true, video_kbps, audio_kbps, id: None }
    }
}

fn media_kind(tag: &FlvTag) -> MediaKind {
    match tag.tag_type {
        TagType::Audio => MediaKind::Audio,
        TagType::Video => MediaKind::Video,
        TagType::Script => MediaKind::Data,
    }
}

trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

async fn resolve(url: &RtmpUrl) -> Result<Vec<SocketAddr>, PublishError> {
    let host = url.host.clone();
    match timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((url.host.as_str(), url.port))).await {
        Err(_) => Err(PublishError::Timeout("resolving the host")),
        Ok(Err(e)) => Err(PublishError::Dns { host, reason: e.to_string() }),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() { Err(PublishError::Dns { host, reason: "no addresses".into() }) } else { Ok(addrs) }
        }
    }
}

async fn connect_tcp(addrs: &[SocketAddr]) -> Result<TcpStream, PublishError> {
    let mut last = PublishError::Connect { addr: "-".into(), reason: "no address to try".into() };
    for addr in addrs {
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if let Err(e) = socket2::SockRef::from(&s).set_tcp_notsent_lowat(SOCKET_UNSENT_MAX) {
                    tracing::debug!("TCP_NOTSENT_LOWAT not available: {e}");
                }
                return Ok(s);
            }
            Ok(Err(e)) => last = PublishError::Connect { addr: addr.to_string(), reason: e.to_string() },
            Err(_) => last = PublishError::Connect { addr: addr.to_string(), reason: "timed out".into() },
        }
    }
    Err(last)
}

/// The TLS client configuration for a destination: platform roots, Mozilla's
/// roots, and the private CA file if one is given.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PublishError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| PublishError::Config(format!("cannot read CA file {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| PublishError::Config(format!("CA file {} is not PEM certificates: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(PublishError::Config(format!("CA file {} holds no certificate", path.display())));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| PublishError::Config(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PublishError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Describes a TLS failure in the user's terms.
fn tls_error(host: &str, e: &std::io::Error) -> PublishError {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let reason = match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            format!("its certificate is not trusted ({c:?}); for a private CA pass its certificate with --ca-file")
        }
        Some(other) => other.to_string(),
        None => e.to_string(),
    };
    PublishError::Tls { host: host.to_string(), reason }
}

/// A connection, and a second handle on its socket to reset it with.
struct Connection {
    transport: Box<dyn Transport>,
    abort: Option<socket2::Socket>,
}

impl Connection {
    /// Closes a connection given up on with a reset rather than a FIN: the
    /// server learns at once (as soon as the path carries anything) that the
    /// session is dead, instead of after the stale bytes queued for it, so
    /// it frees the stream name for our next session.
    fn reset(abort: Option<socket2::Socket>) {
        if let Some(s) = abort {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

async fn connect(dest: &Destination, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Connection, PublishError> {
    let addrs = resolve(&dest.url).await?;
    let tcp = connect_tcp(&addrs).await?;
    let abort = socket2::SockRef::from(&tcp).try_clone().ok();
    let transport = connect_transport(dest, tcp, tls).await?;
    Ok(Connection { transport, abort })
}

async fn connect_transport(dest: &Destination, tcp: TcpStream, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Box<dyn Transport>, PublishError> {
    let Some(tls) = tls else { return Ok(Box::new(tcp)) };
    let host = dest.url.host.clone();
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|e| PublishError::Config(format!("'{host}' is not a valid TLS server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    match timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err(PublishError::Timeout("the TLS handshake")),
        Ok(Err(e)) => {
            // A reset during the handshake is the network; anything TLS said is final.
            if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                Err(tls_error(&host, &e))
            } else {
                Err(PublishError::Io(format!("TLS handshake with {host}: {e}")))
            }
        }
        Ok(Ok(stream)) => Ok(Box::new(stream)),
    }
}

/// Congestion control of one destination: a video bitrate limit that
/// follows its queue. Sustained backlog (over [`Congestion::HIGH_MS`] for a
/// second), or video dropped from the queue at all, cuts the limit, at most
/// every two seconds, to 70 % of what it was
/// or to what the path measurably carried (85 % of the drain rate, less the
/// audio), whichever is lower, down to [`Congestion::MIN_KBPS`]; a clear
/// queue (under [`Congestion::LOW_MS`] for four seconds) raises it by 25 %,
/// up to the target. Pure: time and measurements are arguments.
#[derive(Debug, Clone)]
pub struct Congestion {
    target: u32,
    audio_kbps: u32,
    limit: u32,
    high_since: Option<Instant>,
    low_since: Option<Instant>,
    last_change: Option<Instant>,
}

impl Congestion {
    /// Queue depth that counts as backlog, ms of media.
    pub const HIGH_MS: u32 = 1000;
    /// Queue depth that counts as clear.
    pub const LOW_MS: u32 = 250;
    /// Lowest video bitrate it asks for.
    pub const MIN_KBPS: u32 = 300;

    /// Starts at the broadcast's target video bitrate.
    pub fn new(target_kbps: u32, audio_kbps: u32) -> Self {
        Congestion { target: target_kbps, audio_kbps, limit: target_kbps, high_since: None, low_since: None, last_change: None }
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Feeds a sample: the queue's depth, whether video was dropped since
    /// the last sample, and, when known, the rate the queue drained at lately
    /// (kbit/s of media). Returns the new limit when it changed.
    pub fn sample(&mut self, queue_ms: u32, dropped: bool, drained_kbps: Option<u32>, now: Instant) -> Option<u32> {
        let since = |t: &Option<Instant>| t.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let since_change = self.last_change.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if queue_ms > Self::HIGH_MS || dropped {
            self.low_since = None;
            self.high_since.get_or_insert(now);
            // Drops are proof enough; a deep queue must last a second.
            let persistent = dropped || since(&self.high_since) >= Duration::from_secs(1);
            if persistent && since_change >= Duration::from_secs(2) && self.limit > Self::MIN_KBPS {
                let mut next = self.limit * 7 / 10;
                // A path that still carries something tells its capacity; one
                // that carries nothing (a stall) says nothing about it.
                if let Some(drained) = drained_kbps.filter(|&d| d > self.audio_kbps + Self::MIN_KBPS) {
                    next = next.min((drained * 85 / 100).saturating_sub(self.audio_kbps));
                }
                self.limit = next.max(Self::MIN_KBPS);
                self.last_change = Some(now);
                return Some(self.limit);
            }
        } else if queue_ms < Self::LOW_MS {
            self.high_since = None;
            self.low_since.get_or_insert(now);
            if since(&self.low_since) >= Duration::from_secs(4) && since_change >= Duration::from_secs(4) && self.limit < self.target {
                self.limit = (self.limit * 5 / 4).min(self.target);
                self.last_change = Some(now);
                return Some(self.limit);
            }
        } else {
            self.high_since = None;
            self.low_since = None;
        }
        None
    }
}

/// The drain rate of a queue over the last couple of seconds.
#[derive(Default)]
struct DrainMeter {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl DrainMeter {
    const WINDOW: Duration = Duration::from_secs(2);

    /// Notes the total bytes delivered so far; returns kbit/s over the window once it spans one.
    fn sample(&mut self, now: Instant, total_bytes: u64) -> Option<u32> {
        self.samples.push_back((now, total_bytes));
        while self.samples.len() > 2 && self.samples.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= Self::WINDOW) {
            self.samples.pop_front();
        }
        let (t0, b0) = *self.samples.front()?;
        let span = now.duration_since(t0);
        (span >= Self::WINDOW).then(|| ((total_bytes - b0) as f64 * 8.0 / 1000.0 / span.as_secs_f64()) as u32)
    }
}

/// The delay before reconnection attempt, after an outage of `outage` so
/// far: 10 % of it, within [`BACKOFF_MIN`]..=[`BACKOFF_MAX`], jittered ±20 %.
/// Each wait grows the outage, so successive delays grow geometrically
/// (×1.1) from 1 s towards 30 s; a 20-second outage still sees an attempt
/// every ~2 s, an hour-long one every 30 s.
pub fn backoff(outage: Duration, jitter: f64) -> Duration {
    let base = outage.mul_f64(0.1).clamp(BACKOFF_MIN, BACKOFF_MAX);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// Metadata and sequence headers last sent, replayed at the start of every
/// new session so players can decode what follows.
#[derive(Default)]
struct ConfigCache {
    metadata: Option<FlvTag>,
    video: Option<FlvTag>,
    audio: Option<FlvTag>,
}

impl ConfigCache {
    fn note(&mut self, tag: &FlvTag) {
        match tag.tag_type {
            TagType::Script => self.metadata = Some(tag.clone()),
            TagType::Video if tag.data.get(1) == Some(&0) => self.video = Some(tag.clone()),
            TagType::Audio if tag.data.get(1) == Some(&0) => self.audio = Some(tag.clone()),
            _ => {}
        }
    }
}

/// Publishes everything the queue delivers to the destination until the
/// queue ends (clean unpublish) or a final error; reconnects across losses.
pub async fn publish(dest: Destination, queue: Arc<OutputQueue>, status: Arc<OutputStatus>) -> Result<(), PublishError> {
    let tls = match dest.url.scheme {
        Scheme::Rtmps => Some(tls_config(dest.ca_file.as_deref())?),
        Scheme::Rtmp => None,
    };
    let mut cache = ConfigCache::default();
    let mut congestion = Congestion::new(dest.video_kbps, dest.audio_kbps);
    let mut ever_live = false;
    let mut outage: Option<Instant> = None;
    let mut attempt = 0u32;
    status.set_state(OutputState::Connecting);
    loop {
        tracing::info!(url = %dest.url, attempt, "connecting");
        let mut went_live = false;
        let result = async {
            let Connection { transport, abort } = connect(&dest, tls.as_ref()).await?;
            let result = run_session(transport, &dest, &queue, &status, &mut cache, &mut congestion, ever_live, &mut went_live).await;
            if result.is_err() {
                Connection::reset(abort);
            }
            result
        }
        .await;
        if went_live {
            if outage.take().is_some() {
                status.add_reconnect();
                tracing::info!(url = %dest.url, "reconnected");
            }
            ever_live = true;
            attempt = 0;
        }
        let err = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let started = *outage.get_or_insert_with(Instant::now);
        // After being live, "already publishing" in answer to a new
        // session's publish is most likely our own dead session, still held
        // by the server: retry for a while. The same code arriving while
        // live means another publisher took the stream over: final.
        let stale_session = ever_live
            && !went_live
            && matches!(&err, PublishError::Rejected { code, .. } if code == "NetStream.Publish.BadName")
            && started.elapsed() < STALE_SESSION_WINDOW;
        if (err.is_final() && !stale_session) || !ever_live || !dest.reconnect {
            return Err(err);
        }
        attempt += 1;
        let delay = backoff(started.elapsed(), fastrand::f64());
        let next_try = Instant::now() + delay;
        tracing::warn!(url = %dest.url, error = %err, attempt, "connection lost; reconnecting in {:.1}s", delay.as_secs_f64());
        status.set_state(OutputState::Reconnecting { attempt, next_try });
        // Wait, unless the broadcast ends meanwhile.
        while Instant::now() < next_try {
            if queue.producer_finished() {
                tracing::info!(url = %dest.url, "broadcast ended while reconnecting");
                return Ok(());
            }
            tokio::time::sleep(next_try.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))).await;
        }
    }
}

/// Runs one connection: setup, then media until the queue ends or an error.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    transport: Box<dyn Transport>,
    dest: &Destination,
    queue: &OutputQueue,
    status: &OutputStatus,
    cache: &mut ConfigCache,
    congestion: &mut Congestion,
    resuming: bool,
    went_live: &mut bool,
) -> Result<(), PublishError> {
    let (mut rd, mut wr) = tokio::io::split(transport);
    let mut session = ClientSession::new(ClientConfig::from_url(&dest.url), fastrand::u64(..), 0);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut window: Option<u32> = None;

    // Handshake, connect, createStream, publish: until Publish.Start.
    let setup = async {
        flush(&mut session, &mut wr).await?;
        loop {
            let n = rd.read_buf(&mut buf).await.map_err(|e| PublishError::Io(e.to_string()))?;
            if n == 0 {
                return Err(if session.state() == ClientState::Publishing {
                    PublishError::PublishRefused
                } else {
                    PublishError::ClosedDuringSetup("setting up the stream")
                });
            }
            // The session keeps what it cannot parse yet; `buf` must never be fed twice.
            let events = session.handle_input(&buf).map_err(|e| PublishError::Protocol(e.to_string()))?;
            buf.clear();
            let started = check_events(events, &mut window)?;
            flush(&mut session, &mut wr).await?;
            if started {
                return Ok(());
            }
        }
    };
    match timeout(PUBLISH_TIMEOUT, setup).await {
        Err(_) => return Err(PublishError::Timeout("waiting for the server to accept the stream")),
        Ok(r) => r?,
    }
    *went_live = true;
    if resuming {
        // What queued during the outage is stale: viewers get the present,
        // from a keyframe made for this session.
        queue.restart_at_next_keyframe();
        status.request_keyframe();
    }
    status.set_state(OutputState::Live);
    tracing::info!(url = %dest.url, "live");

    // A new session starts with what a decoder needs.
    for tag in [&cache.metadata, &cache.video, &cache.audio].into_iter().flatten().cloned().collect::<Vec<_>>() {
        send_tag(&mut session, &tag)?;
    }
    flush_timed(&mut session, &mut wr).await?;

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ack = (Instant::now(), 0u64);
    let mut drain = DrainMeter::default();
    let mut backlog_drops = queue.counters().backlog_drops.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        tokio::select! {
            tag = queue.pop() => {
                let Some(tag) = tag else { break };
                cache.note(&tag);
                send_tag(&mut session, &tag)?;
                flush_timed(&mut session, &mut wr).await?;
                status.add_bytes(tag.data.len() as u64);
            }
            read = rd.read_buf(&mut buf) => {
                let n = read.map_err(|e| PublishError::Io(e.to_string()))?;
                if n == 0 {
                    return Err(PublishError::Closed);
                }
                let events = session.handle_input(&buf).map_err(|e| PublishError::Protocol(e.to_string()))?;
                buf.clear();
                check_events(events, &mut window)?;
                flush_timed(&mut session, &mut wr).await?;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let (sent, acked) = (session.bytes_sent(), session.peer_acknowledged());
                status.set_wire(sent, acked);
                if acked != last_ack.1 {
                    last_ack = (now, acked);
                }
                if let Some(w) = window
                    && sent.saturating_sub(acked) > 2 * u64::from(w)
                    && now.duration_since(last_ack.0) > ACK_TIMEOUT
                {
                    return Err(PublishError::Stalled(format!("no acknowledgement for {}s", ACK_TIMEOUT.as_secs())));
                }
                let drained = drain.sample(now, status.bytes_out());
                let queue_ms = queue.depth_ms();
                let drops_now = queue.counters().backlog_drops.load(std::sync::atomic::Ordering::Relaxed);
                let dropped = drops_now > backlog_drops;
                backlog_drops = drops_now;
                if let Some(kbps) = congestion.sample(queue_ms, dropped, drained, now) {
                    tracing::info!(url = %dest.url, kbps, queue_ms, drained_kbps = drained.unwrap_or(0), "congestion control: video bitrate limit now {kbps} kbit/s");
                }
                let limit = congestion.limit();
                status.set_bitrate_limit(if limit >= dest.video_kbps { 0 } else { limit });
            }
        }
    }

    // Clean end: FCUnpublish + deleteStream, then close our side and give the
    // server a moment to finish (ffmpeg -listen finalises its file on EOF).
    session.unpublish();
    flush(&mut session, &mut wr).await?;
    let _ = wr.shutdown().await;
    let _ = timeout(CLOSE_LINGER, async {
        loop {
            buf.clear();
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    tracing::info!(url = %dest.url, "unpublished");
    Ok(())
}

fn send_tag(session: &mut ClientSession, tag: &FlvTag) -> Result<(), PublishError> {
    let kind = media_kind(tag);
    let sent = if kind == MediaKind::Data {
        // RTMP publishers wrap onMetaData in @setDataFrame (FMLE, ffmpeg, OBS).
        session.send_media(kind, tag.timestamp_ms, &flv::set_data_frame(&tag.data))
    } else {
        session.send_media(kind, tag.timestamp_ms, &tag.data)
    };
    sent.map_err(|e| PublishError::Protocol(e.to_string()))
}

async fn flush(session: &mut ClientSession, wr: &mut WriteHalf<Box<dyn Transport>>) -> Result<(), PublishError> {
    let out = session.take_outbound();
    if !out.is_empty() {
        wr.write_all(&out).await.map_err(|e| PublishError::Io(e.to_string()))?;
        wr.flush().await.map_err(|e| PublishError::Io(e.to_string()))?;
    }
    Ok(())
}

/// [`flush`], giving up when the write makes no progress for [`WRITE_STALL_TIMEOUT`].
async fn flush_timed(session: &mut ClientSession, wr: &mut WriteHalf<Box<dyn Transport>>) -> Result<(), PublishError> {
    match timeout(WRITE_STALL_TIMEOUT, flush(session, wr)).await {
        Err(_) => Err(PublishError::Stalled(format!("no write progress for {}s", WRITE_STALL_TIMEOUT.as_secs()))),
        Ok(r) => r,
    }
}

/// Reacts to session events; `Ok(true)` once publishing started.
fn check_events(events: Vec<ClientEvent>, window: &mut Option<u32>) -> Result<bool, PublishError> {
    let mut started = false;
    for ev in events {
        match ev {
            ClientEvent::Rejected { code, description } => return Err(PublishError::Rejected { code, description }),
            ClientEvent::PublishStarted { .. } => started = true,
            ClientEvent::PeerWindowAck(w) => *window = (w > 0).then_some(w),
            other => tracing::debug!(event = ?other, "rtmp"),
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_one_to_thirty_seconds() {
        assert_eq!(backoff(Duration::ZERO, 0.5), BACKOFF_MIN);
        assert_eq!(backoff(Duration::from_secs(20), 0.5), Duration::from_secs(2));
        assert_eq!(backoff(Duration::from_secs(3600), 0.5), BACKOFF_MAX);
        assert!(backoff(Duration::from_secs(20), 1.0) <= Duration::from_millis(2400));
        assert!(backoff(Duration::ZERO, 0.0) >= Duration::from_millis(800));
        // Simulated: an outage of 20 s sees an attempt at most ~2.4 s after it ends.
        let mut t = Duration::ZERO;
        let mut attempts = Vec::new();
        while t < Duration::from_secs(30) {
            t += backoff(t, 1.0);
            attempts.push(t);
        }
        let after = attempts.iter().find(|a| **a >= Duration::from_secs(20)).copied().unwrap();
        assert!(after <= Duration::from_millis(22_500), "{after:?}");
    }

    #[test]
    fn congestion_steps_down_then_back_up() {
        let t0 = Instant::now();
        let mut c = Congestion::new(2500, 128);
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        assert_eq!(c.sample(3000, false, None, at(0.0)), None);
        assert_eq!(c.sample(3000, false, None, at(0.5)), None);
        assert_eq!(c.sample(3000, false, None, at(1.0)), Some(1750));
        assert_eq!(c.sample(3000, false, None, at(1.5)), None, "no faster than every 2 s");
        // A stalled path (nothing drained) steps geometrically.
        assert_eq!(c.sample(3000, false, Some(0), at(3.0)), Some(1225));
        for i in 0..40 {
            c.sample(3000, false, None, at(3.5 + f64::from(i) * 0.5));
        }
        assert_eq!(c.limit(), Congestion::MIN_KBPS);
        // Clear for 4 s: back up by 25 %.
        assert_eq!(c.sample(100, false, None, at(30.0)), None);
        assert_eq!(c.sample(100, false, None, at(34.0)), Some(375));
        assert_eq!(c.sample(100, false, None, at(38.0)), Some(468));
        // In between: hold.
        assert_eq!(c.sample(600, false, None, at(50.0)), None);
        assert_eq!(c.limit(), 468);
    }

    #[test]
    fn congestion_jumps_to_what_the_path_carries() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut c = Congestion::new(2500, 128);
        c.sample(3000, false, Some(1000), at(0.0));
        // 1 Mbit/s drained: 850 - 128 audio, rather than 1750.
        assert_eq!(c.sample(3000, false, Some(1000), at(1.0)), Some(722));
    }

    #[test]
    fn dropped_video_steps_down_at_once() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut c = Congestion::new(2500, 128);
        // The queue was trimmed: shallow now, but the path could not keep up.
        assert_eq!(c.sample(400, true, Some(1000), at(0.0)), Some(722));
        assert_eq!(c.sample(400, true, Some(1000), at(1.0)), None, "no faster than every 2 s");
        assert_eq!(c.sample(400, true, Some(1000), at(2.0)), Some(505));
    }

    #[test]
    fn drain_meter_measures_over_two_seconds() {
        let t0 = Instant::now();
        let mut m = DrainMeter::default();
        assert_eq!(m.sample(t0, 0), None);
        assert_eq!(m.sample(t0 + Duration::from_secs(1), 125_000), None);
        assert_eq!(m.sample(t0 + Duration::from_secs(2), 250_000), Some(1000));
        assert_eq!(m.sample(t0 + Duration::from_secs(3), 250_000), Some(500));
    }

    #[test]
    fn final_and_retryable_errors() {
        assert!(PublishError::PublishRefused.is_final());
        assert!(PublishError::Rejected { code: "x".into(), description: String::new() }.is_final());
        assert!(PublishError::Tls { host: "h".into(), reason: "r".into() }.is_final());
        assert!(!PublishError::Closed.is_final());
        assert!(!PublishError::Stalled("x".into()).is_final());
        assert!(!PublishError::Connect { addr: "a".into(), reason: "refused".into() }.is_final());
        assert!(!PublishError::Io("reset".into()).is_final());
    }
}
