//! The RTMP publisher: a tokio task driving one `rtmp::ClientSession` over
//! TCP, fed by the output's [`OutputQueue`].
//!
//! Errors are final and say what went wrong in the user's terms: the host
//! that did not resolve, the address that refused, the server's own code and
//! description for a rejection. The stream key never appears in them.

use super::queue::OutputQueue;
use super::status::{OutputState, OutputStatus};
use crate::flv::{self, FlvTag, TagType};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpUrl, Scheme};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::timeout;

/// Longest wait for DNS.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait from TCP connected to `NetStream.Publish.Start`.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(15);
/// After unpublishing, how long to wait for the server to close its side.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Read buffer size; the session reassembles messages itself.
const READ_CHUNK: usize = 64 * 1024;

/// Why publishing failed. Every variant is final for this attempt.
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
    /// The server refused: `_error`, or `onStatus` with level "error".
    #[error("server rejected the stream: {code}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Rejected {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// Server's description.
        description: String,
    },
    /// The server closed the connection before publishing was confirmed —
    /// how nginx-rtmp's `on_publish` denial and several platforms answer a bad key.
    #[error("server closed the connection while {stage} (stream key rejected, or the application does not exist?)")]
    ClosedDuringSetup {
        /// What we were waiting for.
        stage: &'static str,
    },
    /// The server closed the connection while live.
    #[error("server closed the connection")]
    Closed,
    /// A step took too long.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// This URL scheme is not supported by this build.
    #[error("{0}")]
    Unsupported(String),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A socket error.
    #[error("network error: {0}")]
    Io(String),
}

fn media_kind(tag: &FlvTag) -> MediaKind {
    match tag.tag_type {
        TagType::Audio => MediaKind::Audio,
        TagType::Video => MediaKind::Video,
        TagType::Script => MediaKind::Data,
    }
}

async fn resolve(url: &RtmpUrl) -> Result<Vec<SocketAddr>, PublishError> {
    let host = url.host.clone();
    let result = timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((url.host.as_str(), url.port))).await;
    match result {
        Err(_) => Err(PublishError::Timeout("resolving the host")),
        Ok(Err(e)) => Err(PublishError::Dns { host, reason: e.to_string() }),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(PublishError::Dns { host, reason: "no addresses".into() })
            } else {
                Ok(addrs)
            }
        }
    }
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, PublishError> {
    let mut last = PublishError::Connect { addr: "-".into(), reason: "no address to try".into() };
    for addr in addrs {
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = PublishError::Connect { addr: addr.to_string(), reason: e.to_string() },
            Err(_) => last = PublishError::Connect { addr: addr.to_string(), reason: "timed out".into() },
        }
    }
    Err(last)
}

async fn flush(session: &mut ClientSession, wr: &mut OwnedWriteHalf) -> Result<u64, PublishError> {
    let out = session.take_outbound();
    if out.is_empty() {
        return Ok(0);
    }
    wr.write_all(&out).await.map_err(|e| PublishError::Io(e.to_string()))?;
    Ok(out.len() as u64)
}

fn check_events(events: Vec<ClientEvent>, published: &mut bool) -> Result<(), PublishError> {
    for ev in events {
        match ev {
            ClientEvent::Rejected { code, description } => return Err(PublishError::Rejected { code, description }),
            ClientEvent::PublishStarted { .. } => *published = true,
            other => tracing::debug!(event = ?other, "rtmp"),
        }
    }
    Ok(())
}

/// Publishes everything the queue delivers to `url`, until the queue ends
/// (clean unpublish) or something fails (final error).
pub async fn publish(url: RtmpUrl, queue: Arc<OutputQueue>, status: Arc<OutputStatus>) -> Result<(), PublishError> {
    if url.scheme == Scheme::Rtmps {
        return Err(PublishError::Unsupported(format!("{url}: rtmps:// needs TLS, which this build does not have yet")));
    }
    status.set_state(OutputState::Connecting);
    tracing::info!(url = %url, "connecting");
    let addrs = resolve(&url).await?;
    let stream = connect(&addrs).await?;
    let (mut rd, mut wr) = stream.into_split();

    let epoch_ms = 0;
    let mut session = ClientSession::new(ClientConfig::from_url(&url), fastrand::u64(..), epoch_ms);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);

    // Handshake, connect, createStream, publish: until Publish.Start.
    let mut published = false;
    let setup = async {
        flush(&mut session, &mut wr).await?;
        while !published {
            buf.clear();
            let n = rd.read_buf(&mut buf).await.map_err(|e| PublishError::Io(e.to_string()))?;
            if n == 0 {
                return Err(PublishError::ClosedDuringSetup { stage: "waiting for NetStream.Publish.Start" });
            }
            let events = session.handle_input(&buf).map_err(|e| PublishError::Protocol(e.to_string()))?;
            check_events(events, &mut published)?;
            flush(&mut session, &mut wr).await?;
        }
        Ok::<(), PublishError>(())
    };
    match timeout(PUBLISH_TIMEOUT, setup).await {
        Err(_) => return Err(PublishError::Timeout("waiting for the server to accept the stream")),
        Ok(r) => r?,
    }
    status.set_state(OutputState::Live);
    tracing::info!(url = %url, "live");

    loop {
        tokio::select! {
            tag = queue.pop() => {
                let Some(tag) = tag else { break };
                let kind = media_kind(&tag);
                let sent = if kind == MediaKind::Data {
                    // RTMP publishers wrap onMetaData in @setDataFrame (FMLE, ffmpeg, OBS).
                    let body = flv::set_data_frame(&tag.data);
                    session.send_media(kind, tag.timestamp_ms, &body)
                } else {
                    session.send_media(kind, tag.timestamp_ms, &tag.data)
                };
                sent.map_err(|e| PublishError::Protocol(e.to_string()))?;
                flush(&mut session, &mut wr).await?;
                status.add_bytes(tag.data.len() as u64);
            }
            read = rd.read_buf(&mut buf) => {
                let n = read.map_err(|e| PublishError::Io(e.to_string()))?;
                if n == 0 {
                    return Err(PublishError::Closed);
                }
                let events = session.handle_input(&buf).map_err(|e| PublishError::Protocol(e.to_string()))?;
                buf.clear();
                check_events(events, &mut published)?;
                flush(&mut session, &mut wr).await?;
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
    tracing::info!(url = %url, "unpublished");
    Ok(())
}
