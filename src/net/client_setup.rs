//! Driving a client session from its first byte to the moment it can send
//! (publishing) or receive (playing): the one loop the publisher, the RTMP
//! player, the tests' publishers and the fan-out bench share.
//!
//! The session says what to write and understands what is read; this loop
//! does the I/O, feeds it the time with each input and fires its deadlines
//! (`rtmp::timers`), and stops at the first event the caller waits for.

use crate::rtmp::{ClientEvent, ClientSession, ClientState, SessionError};
use bytes::BytesMut;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Read buffer reserved per read during setup: the server's replies are small.
const SETUP_READ: usize = 16 * 1024;

/// Why a session's setup did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A socket error.
    #[error("network error")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before the awaited event; the
    /// session's state then says how far it got (a close in answer to
    /// `publish` is how nginx-rtmp and several platforms refuse a key).
    #[error("the server closed the connection during setup ({state:?})")]
    Closed {
        /// Where the session was.
        state: ClientState,
    },
    /// The session refused the server's bytes, or a deadline passed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// The events a client waits for before it sends media.
pub fn publish_started(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::PublishStarted { .. } | ClientEvent::Rejected { .. })
}

/// The events a player waits for before media can arrive.
pub fn play_started(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::PlayStarted { .. } | ClientEvent::Rejected { .. })
}

/// Writes what the session has to send.
pub async fn flush<S: AsyncWrite + Unpin>(session: &mut ClientSession, io: &mut S) -> std::io::Result<()> {
    let out = session.take_outbound();
    if !out.is_empty() {
        io.write_all(&out).await?;
        io.flush().await?;
    }
    Ok(())
}

/// Drives `session` over `io` until an event `done` accepts (see
/// [`publish_started`], [`play_started`]): writes, reads, answers. Returns
/// every event seen, in order; the caller judges a `Rejected` and sends
/// what the session queued in answer to the last input. Deadlines are the
/// session's own: arm its timers first to have any.
pub async fn drive_until<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut ClientSession,
    io: &mut S,
    mut done: impl FnMut(&ClientEvent) -> bool,
) -> Result<Vec<ClientEvent>, SetupError> {
    let mut seen = Vec::new();
    let mut buf = BytesMut::with_capacity(SETUP_READ);
    flush(session, io).await?;
    loop {
        let deadline = session.poll_timeout();
        buf.clear();
        buf.reserve(SETUP_READ);
        let n = tokio::select! {
            n = io.read_buf(&mut buf) => n?,
            _ = sleep_until(deadline) => {
                session.handle_timeout(Instant::now())?;
                continue;
            }
        };
        if n == 0 {
            return Err(SetupError::Closed { state: session.state() });
        }
        let events = session.handle_input_at(Instant::now(), &buf)?;
        let finished = events.iter().any(&mut done);
        seen.extend(events);
        if finished {
            // What the session queued in answer stays for the caller to send
            // (or not: a pre-flight check stops at `connect`).
            return Ok(seen);
        }
        flush(session, io).await?;
    }
}

/// Sleeps until `deadline` (for ever without one).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
