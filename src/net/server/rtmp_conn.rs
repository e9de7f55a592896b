//! One RTMP connection: a tokio task driving an `rtmp::ServerSession`.
//!
//! The task owns the socket, the session and the connection's role. It
//! reads and answers the client, hands a publisher's messages to its
//! [`StreamHub`], and writes a player's queue to the socket — session
//! output (statuses, acks, pings) and shared media in the order they were
//! produced. Whatever ends the connection, the role is undone (the stream
//! name freed, the player removed).
//!
//! A player's media usually never passes through its task: while nothing
//! waits ahead of a message, the publisher's fan-out writes it straight into
//! the player's socket ([`DirectSink`]). The task is woken only for what the
//! socket did not take, for notices and for the client's input; it waits on
//! its queue and its socket with one hand-written poll — no per-message
//! wake-up channels, no re-registered futures — and writes its backlog with
//! vectored writes.

use super::hub::{Kick, StreamHub, key_matches, split_key};
use super::hub_message::HubMessage;
use super::player_queue::{DirectSink, Drained, PlayerItem, PlayerLimits, PlayerProtocol, PlayerQueue, lock_out};
use super::{
    Admission, REFUSED_CLOSE_LINGER, SERVER_CHUNK_SIZE, Shared,
    CLIENT_WRITE_STALL_TIMEOUT,
};
use crate::rtmp::{MediaKind, ServerEvent, ServerSession, SessionError, Timer};
use super::outbox::Outbox;
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout};

/// Bytes read per socket read.
const READ_CHUNK: usize = 64 * 1024;
/// Queue items taken per batch (written with one vectored write when the socket has room).
const WRITE_BATCH: usize = 64;

/// Why a connection ended (logged; never sent anywhere).
#[derive(Debug, thiserror::Error)]
enum ConnEnd {
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    #[error("no connect within {0:?} of the handshake")]
    NoConnect(std::time::Duration),
    #[error("idle for {0:?}")]
    Idle(std::time::Duration),
    #[error("publisher sent no media for {0:?}")]
    NoMedia(std::time::Duration),
    #[error("protocol error: {0}")]
    Protocol(#[from] SessionError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("player stopped reading for {0:?}")]
    WriteStall(std::time::Duration),
    #[error("{0}")]
    Refused(String),
}

impl ConnEnd {
    /// A session error, with its deadlines named as the log always did.
    fn from_session(e: SessionError) -> ConnEnd {
        match e {
            SessionError::TimedOut { timer: Timer::Handshake, after } => ConnEnd::HandshakeTimeout(after),
            SessionError::TimedOut { timer: Timer::Connect, after } => ConnEnd::NoConnect(after),
            SessionError::TimedOut { timer: Timer::NoMedia, after } => ConnEnd::NoMedia(after),
            SessionError::TimedOut { timer: _, after } => ConnEnd::Idle(after),
            other => ConnEnd::Protocol(other),
        }
    }
}

enum Role {
    None,
    Publishing { hub: Arc<StreamHub>, id: u64, stream_id: u32, kick: Arc<Kick> },
    Playing { hub: Arc<StreamHub>, queue: Arc<PlayerQueue>, stream_id: u32, paused: bool },
}

struct Conn {
    shared: Arc<Shared>,
    peer: String,
    session: ServerSession,
    /// Shared with a player's queue, which may write media through.
    socket: Arc<TcpStream>,
    role: Role,
    buf: BytesMut,
    /// What is still to be written, in order (shared with a player's queue,
    /// see [`DirectSink`]).
    out: Arc<Mutex<Outbox>>,
}

/// What woke a player's loop.
enum PlayerWake {
    Queue(Drained),
    Readable(std::io::Result<()>),
    /// Writing failed.
    Failed(std::io::Error),
    /// The socket took nothing for [`CLIENT_WRITE_STALL_TIMEOUT`].
    Stalled,
}

pub(super) async fn serve(socket: TcpStream, peer: SocketAddr, id: u64, admission: Admission, shared: Arc<Shared>) {
    let peer = peer.to_string();
    let mut session_config = shared.session;
    if let Admission::Refused(why, _) = &admission {
        session_config.refuse_connect = Some(why.reason());
    }
    let session = ServerSession::new(session_config, fastrand::u64(..), 0);
    let mut conn = Conn {
        shared,
        peer,
        session,
        socket: Arc::new(socket),
        role: Role::None,
        buf: BytesMut::with_capacity(READ_CHUNK),
        out: Arc::default(),
    };
    let result = conn.run().await;
    conn.leave_role();
    if let Err(ConnEnd::Refused(_) | ConnEnd::Protocol(_)) = &result {
        conn.close_gracefully().await;
    }
    match result {
        Ok(()) => tracing::debug!(conn = id, peer = %conn.peer, "connection closed"),
        Err(e) => tracing::info!(conn = id, peer = %conn.peer, "connection ended: {e}"),
    }
    drop(admission);
}

impl Conn {
    /// Ends a connection we refused so that the client reads our last
    /// words: closing a socket with unread input (a player's
    /// acknowledgements, a publisher's first media) makes the kernel reset
    /// it and throw away what we had not yet delivered — the onStatus
    /// saying why. So: FIN after our queued bytes, then discard what the
    /// client still sends until it closes too, for at most [`REFUSED_CLOSE_LINGER`].
    async fn close_gracefully(&mut self) {
        // A session that failed on the client's input has queued its reply
        // (an `_error` or `onStatus` naming what was wrong).
        if !matches!(timeout(REFUSED_CLOSE_LINGER, self.flush()).await, Ok(Ok(()))) {
            return;
        }
        if socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let socket = &self.socket;
        let drain = async {
            while socket.readable().await.is_ok() {
                match socket.try_read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        };
        let _ = timeout(REFUSED_CLOSE_LINGER, drain).await;
    }

    /// Queues the session's output behind whatever is waiting and writes
    /// it all.
    async fn flush(&mut self) -> Result<(), ConnEnd> {
        self.push_outbound();
        self.write_out().await
    }

    /// Moves the session's output into the outbox, behind what waits there.
    fn push_outbound(&mut self) {
        let bytes = self.session.take_outbound();
        if !bytes.is_empty() {
            lock_out(&self.out).push(bytes);
        }
    }

    /// Writes everything waiting; a socket that takes nothing for
    /// [`CLIENT_WRITE_STALL_TIMEOUT`] ends the connection.
    async fn write_out(&mut self) -> Result<(), ConnEnd> {
        if lock_out(&self.out).is_empty() {
            return Ok(());
        }
        let (socket, out) = (&self.socket, &self.out);
        match timeout(CLIENT_WRITE_STALL_TIMEOUT, std::future::poll_fn(|cx| lock_out(out).poll_write(socket, cx))).await {
            Err(_) => Err(ConnEnd::WriteStall(CLIENT_WRITE_STALL_TIMEOUT)),
            Ok(r) => Ok(r?),
        }
    }

    /// Reads what the socket has into `buf` and feeds it to the session.
    /// `Ok(false)` when the client closed the connection.
    async fn read_input(&mut self) -> Result<bool, ConnEnd> {
        self.buf.clear();
        match self.socket.try_read_buf(&mut self.buf) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e.into()),
        }
        let input = std::mem::take(&mut self.buf);
        let events = self.session.handle_input_at(Instant::now(), &input);
        self.buf = input;
        for ev in events? {
            self.on_event(ev).await?;
        }
        Ok(true)
    }

    async fn run(&mut self) -> Result<(), ConnEnd> {
        // The session's deadlines (handshake, idle, an idle publisher) run
        // from now; this loop only sleeps until the next one.
        self.session.arm_timers(Instant::now());
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            self.flush().await?;
            if *shutdown.borrow() {
                return Ok(());
            }
            if matches!(self.role, Role::Playing { .. }) {
                if !self.play().await? {
                    return Ok(());
                }
                continue;
            }
            let deadline = self.session.poll_timeout();
            let kick = match &self.role {
                Role::Publishing { kick, .. } => Some(kick.clone()),
                _ => None,
            };
            tokio::select! {
                r = self.socket.readable() => {
                    r?;
                    if !self.read_input().await? {
                        return Ok(());
                    }
                }
                _ = async { match &kick { Some(k) => k.wait().await, None => std::future::pending().await } } => {
                    if let Role::Publishing { stream_id, .. } = self.role {
                        self.session.end_publish(stream_id, "NetStream.Publish.BadName", "Another publisher took this stream over")?;
                        self.flush().await?;
                    }
                    self.role = Role::None; // the hub already moved on
                    return Err(ConnEnd::Refused("taken over by another publisher".into()));
                }
                _ = async { match deadline { Some(at) => sleep_until(at.into()).await, None => std::future::pending().await } } => {
                    self.session.handle_timeout(Instant::now()).map_err(ConnEnd::from_session)?;
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// The player's loop: queue items out, client input in, until the role
    /// changes (`Ok(true)`) or the connection should end (`Ok(false)`).
    ///
    /// One poll waits for all of it. While the outbox has bytes the socket
    /// would not take, the task is parked on the socket alone: the queue is
    /// not looked at (pushes do not wake it, and media piling up there is
    /// what the queue's skipping judges), and the stall deadline is one
    /// timer per connection, moved only when it fires.
    async fn play(&mut self) -> Result<bool, ConnEnd> {
        let mut items = Vec::with_capacity(WRITE_BATCH);
        let stall = tokio::time::sleep(CLIENT_WRITE_STALL_TIMEOUT);
        tokio::pin!(stall);
        loop {
            let (queue, stream_id, paused) = match &self.role {
                Role::Playing { queue, stream_id, paused, .. } => (queue.clone(), *stream_id, *paused),
                _ => return Ok(true),
            };
            items.clear();
            let (socket, out) = (&self.socket, &self.out);
            let wake = std::future::poll_fn(|cx| {
                let (written, blocked_since) = {
                    let mut out = lock_out(out);
                    (out.poll_write(socket, cx), out.blocked_since())
                };
                match written {
                    Poll::Ready(Err(e)) => return Poll::Ready(PlayerWake::Failed(e)),
                    Poll::Ready(Ok(())) => {
                        if !paused && let Poll::Ready(d) = queue.poll_drain(cx, &mut items, WRITE_BATCH) {
                            return Poll::Ready(PlayerWake::Queue(d));
                        }
                    }
                    Poll::Pending => {
                        if let Some(since) = blocked_since {
                            let until = tokio::time::Instant::from_std(since + CLIENT_WRITE_STALL_TIMEOUT);
                            if stall.as_mut().poll(cx).is_ready() {
                                if tokio::time::Instant::now() >= until {
                                    return Poll::Ready(PlayerWake::Stalled);
                                }
                                stall.as_mut().reset(until);
                                let _ = stall.as_mut().poll(cx);
                            }
                        }
                    }
                }
                socket.poll_read_ready(cx).map(PlayerWake::Readable)
            })
            .await;
            match wake {
                PlayerWake::Queue(Drained::Items) => {
                    let rendered = self.render(&items, stream_id);
                    queue.rendered();
                    rendered?;
                }
                PlayerWake::Queue(Drained::Closed(Some(reason))) => {
                    self.session.send_status(stream_id, "error", "NetStream.Play.Failed", &reason)?;
                    self.flush().await?;
                    return Err(ConnEnd::Refused(reason));
                }
                // Closed without a reason: the server is stopping.
                PlayerWake::Queue(Drained::Closed(None)) => return Ok(false),
                PlayerWake::Readable(r) => {
                    r?;
                    if !self.read_input().await? {
                        return Ok(false);
                    }
                    // Acknowledgements, pongs: behind the media already waiting.
                    self.push_outbound();
                }
                PlayerWake::Failed(e) => return Err(e.into()),
                PlayerWake::Stalled => return Err(ConnEnd::WriteStall(CLIENT_WRITE_STALL_TIMEOUT)),
            }
        }
    }

    /// Turns queue items into bytes in the outbox, in order.
    fn render(&mut self, items: &[PlayerItem], stream_id: u32) -> Result<(), ConnEnd> {
        let chunk_size = self.session.out_chunk_size();
        for item in items {
            match item {
                PlayerItem::Media(m) => {
                    if let Some(b) = m.rtmp_bytes(stream_id, chunk_size, SERVER_CHUNK_SIZE) {
                        lock_out(&self.out).push(b);
                    }
                }
                PlayerItem::Published => {
                    self.session.notify_publish(stream_id)?;
                    self.push_outbound();
                }
                PlayerItem::Unpublished => {
                    self.session.notify_unpublish(stream_id)?;
                    self.push_outbound();
                }
            }
        }
        Ok(())
    }

    /// A queue for this connection's player on `stream_id`, which the
    /// fan-out may write through.
    fn player_queue(&self, stream_id: u32) -> Arc<PlayerQueue> {
        let sink = DirectSink {
            socket: self.socket.clone(),
            out: self.out.clone(),
            stream_id,
            chunk_size: self.session.out_chunk_size(),
        };
        Arc::new(PlayerQueue::new(PlayerLimits::PLAYER, &self.peer, PlayerProtocol::Rtmp).with_direct(sink))
    }

    async fn on_event(&mut self, ev: ServerEvent) -> Result<(), ConnEnd> {
        match ev {
            ServerEvent::PublishRequested { stream_id, app, key, publish_type } => {
                self.on_publish(stream_id, &app, key.expose(), &publish_type).await?;
            }
            ServerEvent::PlayRequested { stream_id, app, name } => self.on_play(stream_id, &app, &name).await?,
            ServerEvent::MediaReceived { kind, timestamp, payload, .. } => self.on_media(kind, timestamp, payload),
            ServerEvent::Metadata { timestamp, payload, .. } => self.on_media(MediaKind::Data, timestamp, payload),
            ServerEvent::Unpublished { .. } => {
                if let Role::Publishing { hub, .. } = &self.role {
                    tracing::info!(peer = %self.peer, app = %hub.app, stream = %hub.name, "unpublished");
                }
                self.leave_role();
            }
            ServerEvent::PlayStopped { .. } => self.leave_role(),
            ServerEvent::Paused { stream_id, paused } => self.on_pause(stream_id, paused),
            ServerEvent::Connected { app, .. } => tracing::debug!(peer = %self.peer, %app, "connected"),
            _ => {}
        }
        Ok(())
    }

    async fn on_publish(&mut self, stream_id: u32, app: &str, raw_name: &str, publish_type: &str) -> Result<(), ConnEnd> {
        let expected = self.shared.config.publish_key.as_ref().map(|k| k.expose().to_string());
        let (name, given) = split_key(raw_name, expected.as_deref());
        let refusal = if !matches!(self.role, Role::None) {
            Some(("NetStream.Publish.BadName", "This connection already publishes or plays".to_string()))
        } else if name.is_empty() {
            Some(("NetStream.Publish.BadName", "Empty stream name".to_string()))
        } else if let Some(want) = &expected
            && !given.is_some_and(|g| key_matches(g, want))
        {
            Some((
                "NetStream.Publish.Denied",
                "Publishing needs this server's publish key: add ?key=KEY to the stream name, or end it with -KEY".to_string(),
            ))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            tracing::warn!(peer = %self.peer, %app, stream = %name, code, "publish refused: {why}");
            self.session.reject_publish(stream_id, code, &why)?;
            self.flush().await?;
            return Err(ConnEnd::Refused(why));
        }
        let hub = self.shared.registry.hub(app, name);
        let id = self.shared.registry.next_id();
        match hub.start_publishing(id, &self.peer, self.shared.config.takeover) {
            Ok(kick) => {
                self.session.accept_publish(stream_id)?;
                self.flush().await?;
                tracing::info!(peer = %self.peer, %app, stream = %name, kind = publish_type, "publishing");
                self.role = Role::Publishing { hub, id, stream_id, kick };
                Ok(())
            }
            Err(r) => {
                tracing::warn!(peer = %self.peer, %app, stream = %name, code = r.code, "publish refused: {}", r.description);
                self.session.reject_publish(stream_id, r.code, &r.description)?;
                self.flush().await?;
                self.shared.registry.release(&hub);
                Err(ConnEnd::Refused(r.description))
            }
        }
    }

    async fn on_play(&mut self, stream_id: u32, app: &str, raw_name: &str) -> Result<(), ConnEnd> {
        let (name, _) = split_key(raw_name, None);
        if !matches!(self.role, Role::None) || name.is_empty() {
            self.session.reject_play(stream_id, "NetStream.Play.Failed", "Cannot play on this connection")?;
            self.flush().await?;
            return Ok(());
        }
        self.session.accept_play(stream_id)?;
        // Play.Start goes out before any media.
        self.flush().await?;
        let hub = self.shared.registry.hub(app, name);
        let queue = self.player_queue(stream_id);
        hub.add_player(queue.clone());
        tracing::info!(peer = %self.peer, %app, stream = %name, live = hub.is_live(), "playing");
        self.role = Role::Playing { hub, queue, stream_id, paused: false };
        Ok(())
    }

    fn on_media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) {
        if let Role::Publishing { hub, id, .. } = &self.role {
            hub.publish(*id, HubMessage::new(kind, timestamp, payload));
        }
    }

    fn on_pause(&mut self, stream_id: u32, pause: bool) {
        let resume = matches!(&self.role, Role::Playing { paused: true, .. }) && !pause;
        // The answer to the pause goes out before any media of a resumed
        // stream can be written through.
        self.push_outbound();
        let fresh = resume.then(|| match &self.role {
            Role::Playing { stream_id, .. } => self.player_queue(*stream_id),
            _ => self.player_queue(stream_id),
        });
        if let Role::Playing { hub, queue, paused, .. } = &mut self.role {
            if pause && !*paused {
                queue.close();
                hub.remove_player(queue);
            } else if let Some(fresh) = fresh {
                // Resume live from the cached start, like a new player.
                hub.add_player(fresh.clone());
                *queue = fresh;
            }
            *paused = pause;
        }
        tracing::debug!(peer = %self.peer, stream_id, pause, "pause");
    }

    /// Undoes the role: frees the stream name or removes the player.
    fn leave_role(&mut self) {
        match std::mem::replace(&mut self.role, Role::None) {
            Role::Publishing { hub, id, .. } => {
                hub.stop_publishing(id);
                self.shared.registry.release(&hub);
            }
            Role::Playing { hub, queue, .. } => {
                queue.close();
                hub.remove_player(&queue);
                self.shared.registry.release(&hub);
            }
            Role::None => {}
        }
    }
}
