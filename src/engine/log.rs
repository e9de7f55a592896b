//! The recent log for a face: a tracing layer that keeps the newest
//! [`LOG_CAPACITY`] events, keys redacted, readable as snapshots. The
//! console output is a separate layer and stays as it is.
//!
//! Redaction here is a second line: Tally's own types already print keys
//! as `<redacted>`; this layer also replaces the text of every key the
//! engine is using (registered with [`LogRing::remember_secret`]), so a key
//! that reached a message some other way (a peer's error text echoing a
//! URL) still never shows.

use crate::rtmp::{REDACTED, StreamKey};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Events kept: about the last few minutes of a busy broadcast's info log.
pub const LOG_CAPACITY: usize = 1000;
/// Longest message kept; longer ones are cut (a peer could send a huge error text).
pub const MAX_LOG_MESSAGE_LEN: usize = 2048;
/// Shortest key that is searched for in messages: shorter "keys" would
/// redact ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// One event as a face lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// When it happened.
    pub at: SystemTime,
    /// ERROR, WARN, INFO, DEBUG or TRACE.
    pub level: tracing::Level,
    /// The module it came from.
    pub target: String,
    /// The message and its fields (`key=value`), keys redacted.
    pub message: String,
}

/// The bounded store the layer writes and faces read.
#[derive(Debug, Default)]
pub struct LogRing {
    events: Mutex<VecDeque<LogEvent>>,
    secrets: Mutex<Vec<String>>,
    /// Events pushed so far, so a face can tell new ones from old.
    written: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogRing {
    /// The process's ring: the one [`layer`] writes.
    pub fn global() -> &'static LogRing {
        static RING: OnceLock<LogRing> = OnceLock::new();
        RING.get_or_init(LogRing::default)
    }

    /// The newest events, oldest first.
    pub fn snapshot(&self) -> Vec<LogEvent> {
        lock(&self.events).iter().cloned().collect()
    }

    /// How many events were ever written (a face redraws when it grows).
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Redacts `key` from every event from now on.
    pub fn remember_secret(&self, key: &StreamKey) {
        let k = key.expose();
        if k.len() >= MIN_SECRET_LEN {
            let mut s = lock(&self.secrets);
            if !s.iter().any(|x| x == k) {
                s.push(k.to_string());
            }
        }
    }

    fn push(&self, mut event: LogEvent) {
        for secret in lock(&self.secrets).iter() {
            if event.message.contains(secret.as_str()) {
                event.message = event.message.replace(secret.as_str(), REDACTED);
            }
        }
        let mut events = lock(&self.events);
        if events.len() == LOG_CAPACITY {
            events.pop_front();
        }
        events.push_back(event);
        self.written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The layer to add to the process's subscriber.
pub fn layer() -> RingLayer {
    RingLayer { ring: LogRing::global() }
}

/// Writes events into a [`LogRing`].
#[derive(Debug)]
pub struct RingLayer {
    ring: &'static LogRing,
}

impl RingLayer {
    /// A layer writing into `ring` (tests use a ring of their own).
    pub fn into_ring(ring: &'static LogRing) -> Self {
        RingLayer { ring }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut message = Message(String::new());
        event.record(&mut message);
        let mut text = message.0.trim_start().to_string();
        if text.len() > MAX_LOG_MESSAGE_LEN {
            let mut cut = MAX_LOG_MESSAGE_LEN;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        self.ring.push(LogEvent { at: SystemTime::now(), level: *meta.level(), target: meta.target().to_string(), message: text });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_the_newest_events_with_keys_redacted() {
        static RING: OnceLock<LogRing> = OnceLock::new();
        let ring = RING.get_or_init(LogRing::default);
        ring.remember_secret(&StreamKey::new("live_123_secret"));
        let subscriber = tracing_subscriber::registry().with(RingLayer::into_ring(ring));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "1.2.3.4", "server said: bad key live_123_secret");
            for i in 0..LOG_CAPACITY + 10 {
                tracing::info!(n = i, "event");
            }
            tracing::error!("{}", "x".repeat(MAX_LOG_MESSAGE_LEN * 2));
        });
        let events = ring.snapshot();
        assert_eq!(events.len(), LOG_CAPACITY, "bounded");
        assert_eq!(ring.written(), LOG_CAPACITY as u64 + 12);
        assert_eq!(events[0].message, "event n=11", "the oldest were dropped");
        let last = events.last().unwrap();
        assert_eq!(last.level, tracing::Level::ERROR);
        assert!(last.message.chars().count() <= MAX_LOG_MESSAGE_LEN + 1);

        let early = LogRing::default();
        early.remember_secret(&StreamKey::new("live_123_secret"));
        early.push(LogEvent { at: SystemTime::now(), level: tracing::Level::WARN, target: "t".into(), message: "key live_123_secret here".into() });
        assert_eq!(early.snapshot()[0].message, "key <redacted> here");
    }
}
