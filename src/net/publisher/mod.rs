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

mod congestion;
pub(crate) mod error;
mod resume;

pub use congestion::{BACKOFF_MAX, BACKOFF_MIN, Congestion, backoff};
pub use error::{DestinationConfigError, PublishError, Stall};
pub use crate::net::transport::{TCP_CONNECT_TIMEOUT, RESOLVE_TIMEOUT, SOCKET_UNSENT_MAX};

use super::client_setup::{self, SetupError};
use super::output_queue::OutputQueue;
use super::status::{OutputState, OutputStatus};
use super::transport::{Connection, Transport, connect, tls_config};
use congestion::DrainMeter;
use resume::ConfigCache;
use crate::flv::{self, FlvTag, TagType};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, ClientState, ClientTimeouts, MediaKind, RtmpUrl, Scheme, SessionError, Timer};
use bytes::BytesMut;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::time::timeout;

/// Longest wait from connected to `NetStream.Publish.Start`.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(15);
/// After unpublishing, how long to wait for the server to close its side.
pub const UNPUBLISH_CLOSE_LINGER: Duration = Duration::from_secs(2);
/// A write that makes no progress for this long means the path is gone.
pub const PUBLISH_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(8);
/// With more than two acknowledgement windows unacknowledged and no
/// acknowledgement for this long, the server is considered gone.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// After losing a live stream, how long `NetStream.Publish.BadName` ("already
/// publishing") is taken for our own dead session that the server has not
/// noticed yet, and retried: nginx-rtmp keeps a silent publisher until its
/// `timeout` (60 s by default) or until the stale bytes reach it.
pub const STALE_SESSION_WINDOW: Duration = Duration::from_secs(90);
/// Read buffer size; the session reassembles messages itself.
const READ_CHUNK: usize = 64 * 1024;
/// How often congestion and liveness are sampled.
const TICK: Duration = Duration::from_millis(500);

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
    /// Its own video settings (a profile's per-destination override, or
    /// its service's limits); `None`: the broadcast's. The bitrate here is
    /// congestion control's ceiling when set.
    pub video: Option<crate::media::rendition::RenditionSpec>,
}

impl Destination {
    /// Publishing to `url` with defaults: reconnecting, no private CA; the
    /// bitrates (0 = the broadcast's own) bound congestion control.
    pub fn new(url: RtmpUrl, video_kbps: u32, audio_kbps: u32) -> Self {
        Destination { url, ca_file: None, reconnect: true, video_kbps, audio_kbps, id: None, video: None }
    }
}

fn media_kind(tag: &FlvTag) -> MediaKind {
    match tag.tag_type {
        TagType::Audio => MediaKind::Audio,
        TagType::Video => MediaKind::Video,
        TagType::Script => MediaKind::Data,
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
            let Connection { transport, abort } = connect(&dest.url, tls.as_ref()).await?;
            let result = run_session(transport, &dest, &queue, &status, &mut cache, &mut congestion, ever_live, &mut went_live).await;
            if result.is_err() {
                Connection::reset(abort);
            }
            result
        }
        .await;
        if went_live {
            // Counted (and logged) by the session the moment it was live
            // again, not here when it ends.
            outage = None;
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
        tracing::warn!(url = %dest.url, error = %crate::error_chain(&err), attempt, "connection lost; reconnecting in {:.1}s", delay.as_secs_f64());
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
// What the reconnect loop keeps across sessions beside this session's own: a struct would only rename the list.
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
    let mut transport = transport;
    let mut config = ClientConfig::from_url(&dest.url);
    config.timeouts = ClientTimeouts { handshake: PUBLISH_TIMEOUT, setup: PUBLISH_TIMEOUT, acknowledgement: Some(ACK_TIMEOUT) };
    let mut session = ClientSession::new(config, fastrand::u64(..), 0);
    // The session's deadlines (the stream started within PUBLISH_TIMEOUT,
    // acknowledgements while live) run from now; the loops below only
    // sleep until the next one.
    session.arm_timers(Instant::now());

    // Handshake, connect, createStream, publish: until Publish.Start.
    let events = client_setup::drive_until(&mut session, &mut transport, client_setup::publish_started).await.map_err(|e| match e {
        SetupError::Io(e) => PublishError::Io(e),
        SetupError::Closed { state: ClientState::Publishing } => PublishError::PublishRefused,
        SetupError::Closed { .. } => PublishError::ClosedDuringSetup("setting up the stream"),
        SetupError::Session(e) => session_error(e),
    })?;
    check_events(events)?;
    let (mut rd, mut wr) = tokio::io::split(transport);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    *went_live = true;
    if resuming {
        // What queued during the outage is stale: viewers get the present,
        // from a keyframe made for this session.
        queue.restart_at_next_keyframe();
        status.request_keyframe();
        // Every session after the first live one follows a loss.
        status.add_reconnect();
    }
    status.set_state(OutputState::Live);
    tracing::info!(url = %dest.url, "{}", if resuming { "reconnected; live" } else { "live" });

    // A new session starts with what a decoder needs.
    for tag in [&cache.metadata, &cache.video, &cache.audio].into_iter().flatten().cloned().collect::<Vec<_>>() {
        send_tag(&mut session, &tag)?;
    }
    flush_timed(&mut session, &mut wr).await?;

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                let n = read.map_err(PublishError::Io)?;
                if n == 0 {
                    return Err(PublishError::Closed);
                }
                let events = session.handle_input_at(Instant::now(), &buf).map_err(session_error)?;
                buf.clear();
                check_events(events)?;
                flush_timed(&mut session, &mut wr).await?;
            }
            _ = client_setup::sleep_until(session.poll_timeout()) => {
                session.handle_timeout(Instant::now()).map_err(session_error)?;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                status.set_wire(session.bytes_sent(), session.peer_acknowledged());
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
    let _ = timeout(UNPUBLISH_CLOSE_LINGER, async {
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
        session.send_media(kind, tag.timestamp_ms, flv::set_data_frame(&tag.data))
    } else {
        session.send_media(kind, tag.timestamp_ms, tag.data.clone())
    };
    sent.map_err(PublishError::Protocol)
}

async fn flush(session: &mut ClientSession, wr: &mut WriteHalf<Box<dyn Transport>>) -> Result<(), PublishError> {
    client_setup::flush(session, wr).await.map_err(PublishError::Io)
}

/// [`flush`], giving up when the write makes no progress for [`PUBLISH_WRITE_STALL_TIMEOUT`].
async fn flush_timed(session: &mut ClientSession, wr: &mut WriteHalf<Box<dyn Transport>>) -> Result<(), PublishError> {
    match timeout(PUBLISH_WRITE_STALL_TIMEOUT, flush(session, wr)).await {
        Err(_) => Err(PublishError::Stalled(Stall::NoWriteProgress(PUBLISH_WRITE_STALL_TIMEOUT))),
        Ok(r) => r,
    }
}

/// Reacts to session events; `Ok(true)` once publishing started.
fn check_events(events: Vec<ClientEvent>) -> Result<bool, PublishError> {
    let mut started = false;
    for ev in events {
        match ev {
            ClientEvent::Rejected { code, description } => return Err(PublishError::Rejected { code, description }),
            ClientEvent::PublishStarted { .. } => started = true,
            other => tracing::debug!(event = ?other, "rtmp"),
        }
    }
    Ok(started)
}


/// A session error as a publisher error; its deadlines in the words the
/// publisher always used.
fn session_error(e: SessionError) -> PublishError {
    match e {
        SessionError::TimedOut { timer: Timer::Acknowledgement, after } => {
            PublishError::Stalled(Stall::NoAcknowledgement(after))
        }
        SessionError::TimedOut { .. } => PublishError::Timeout("waiting for the server to accept the stream"),
        other => PublishError::Protocol(other),
    }
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
        assert!(PublishError::Tls { host: "h".into(), untrusted: true, source: rustls::Error::DecryptError }.is_final());
        assert!(!PublishError::Closed.is_final());
        assert!(!PublishError::Stalled(Stall::NoAcknowledgement(Duration::from_secs(5))).is_final());
        let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!PublishError::Connect { addr: "a".into(), source: refused() }.is_final());
        assert!(!PublishError::Io(refused()).is_final());
        assert!(PublishError::Config(error::DestinationConfigError::ServerName { host: "h".into() }).is_final());
        // The cause is kept and shown.
        let e = PublishError::Connect { addr: "127.0.0.1:1".into(), source: refused() };
        assert_eq!(crate::error_chain(&e), "could not connect to 127.0.0.1:1: connection refused");
    }
}
