//! The sessions' own deadlines (quinn-proto's model): the driver arms them
//! with the time the connection began, passes the time with each input
//! (`handle_input_at`), sleeps until `poll_timeout()` and then calls
//! `handle_timeout(now)`, which fails the session if a deadline has
//! passed. No clock is read here: time is always an argument, so every
//! deadline is tested in memory (`rtmp/pair.rs`).

use std::time::{Duration, Instant};

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The handshake did not complete.
    Handshake,
    /// The handshake completed but no `connect` followed (server side).
    Connect,
    /// Connected, but publishing (or playing) never started: the server
    /// did not answer `publish` / `play`.
    Setup,
    /// The peer stopped acknowledging: more than two windows unacknowledged
    /// for the whole acknowledgement timeout.
    Acknowledgement,
    /// Nothing came from the peer for too long.
    Idle,
    /// A publisher sent no media for too long (server side).
    NoMedia,
}

impl std::fmt::Display for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Timer::Handshake => "the handshake did not complete",
            Timer::Connect => "no connect after the handshake",
            Timer::Setup => "the stream was not started",
            Timer::Acknowledgement => "no acknowledgement",
            Timer::Idle => "nothing received",
            Timer::NoMedia => "no media from the publisher",
        })
    }
}

/// A client session's deadlines; `None` turns one off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// C0/C1 sent → S2 received.
    pub handshake: Duration,
    /// Armed → `NetStream.Publish.Start` / `Play.Start`.
    pub setup: Duration,
    /// While live, with more than two of the server's windows unacknowledged.
    pub acknowledgement: Option<Duration>,
}

impl Default for ClientTimeouts {
    /// 10 s handshake, 15 s to go live (an ingest that checks a key may
    /// take a few seconds), 20 s without acknowledgements.
    fn default() -> Self {
        ClientTimeouts {
            handshake: Duration::from_secs(10),
            setup: Duration::from_secs(15),
            acknowledgement: Some(Duration::from_secs(20)),
        }
    }
}

/// A server session's deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// Accepted → C2 received.
    pub handshake: Duration,
    /// C2 received → `connect` received. Counted from the handshake, not
    /// from the last input: bytes that are not a `connect` do not extend it.
    pub connect: Duration,
    /// No input at all, on a connection that neither publishes nor plays.
    pub idle: Duration,
    /// A publisher sending no media.
    pub publisher_idle: Duration,
}

impl Default for ServerTimeouts {
    /// nginx-rtmp's `timeout` is 60 s; Tally is stricter with connections
    /// that do nothing: 10 s to shake hands, 10 s more to `connect`, 30 s
    /// idle.
    fn default() -> Self {
        ServerTimeouts {
            handshake: Duration::from_secs(10),
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            publisher_idle: Duration::from_secs(30),
        }
    }
}

/// The times a session keeps for its deadlines.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    /// When the driver armed the timers (the connection began); `None`: no deadlines.
    pub armed: Option<Instant>,
    /// The last input.
    pub last_input: Option<Instant>,
    /// The last media (server) or acknowledgement change (client).
    pub last_progress: Option<Instant>,
    /// When the handshake completed.
    pub handshake_done: Option<Instant>,
}

impl Clock {
    pub fn arm(&mut self, now: Instant) {
        self.armed = Some(now);
        self.last_input = Some(now);
        self.last_progress = Some(now);
        self.handshake_done = None;
    }
}

/// The earliest of `deadline` if it has passed by `now`: the timer that fired.
pub(crate) fn expired(deadline: Option<(Instant, Timer, Duration)>, now: Instant) -> Option<(Timer, Duration)> {
    deadline.filter(|(at, _, _)| *at <= now).map(|(_, t, d)| (t, d))
}
