//! The pre-flight check of one destination, without publishing: resolve,
//! TCP connect, TLS with certificate verification (`rtmps://`), the RTMP
//! handshake and `connect` (the server accepted the application), each
//! step timed, stopping at the first that fails.
//!
//! The network probe (`probe`); the check as a whole is the engine's
//! `engine::preflight`, and `tally check` is `cli/check.rs` (this was
//! `net::check`, one of three `check.rs`).

use super::publisher::PublishError;
use super::transport::{self, TCP_CONNECT_TIMEOUT};
use super::client_setup::{self, SetupError};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, ClientTimeouts, RtmpUrl, Scheme, SessionError};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// How long the handshake and `connect` may take together.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStep {
    /// DNS.
    Resolve,
    /// TCP connect.
    Tcp,
    /// TLS handshake and certificate verification (`rtmps://` only).
    Tls,
    /// RTMP handshake (C0–C2 / S0–S2).
    Handshake,
    /// RTMP `connect`: the server accepted the application.
    Connect,
    /// `--publish-test`: publishing for a while.
    Publish,
}

impl CheckStep {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            CheckStep::Resolve => "resolve",
            CheckStep::Tcp => "tcp",
            CheckStep::Tls => "tls",
            CheckStep::Handshake => "handshake",
            CheckStep::Connect => "connect",
            CheckStep::Publish => "publish",
        }
    }
}

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CheckReport {
    /// The destination, key redacted.
    pub url: String,
    /// Every step passed.
    pub ok: bool,
    /// The step that failed, if one did.
    pub failed_step: Option<CheckStep>,
    /// Why (never the key).
    pub error: Option<String>,
    /// Each step that ran, with its milliseconds.
    pub steps: Vec<(CheckStep, f64)>,
    /// With a publish test: the sustained upload rate, kbit/s.
    pub upload_kbps: Option<f64>,
    /// With a publish test: bytes the server acknowledged.
    pub acknowledged_bytes: Option<u64>,
}

impl CheckReport {
    fn step(&mut self, step: CheckStep, started: Instant) {
        self.steps.push((step, started.elapsed().as_secs_f64() * 1000.0));
    }

    fn fail(self, step: CheckStep, started: Instant, e: &dyn std::error::Error) -> Self {
        self.fail_because(step, started, crate::error_chain(e))
    }

    fn fail_because(mut self, step: CheckStep, started: Instant, why: String) -> Self {
        self.step(step, started);
        self.ok = false;
        self.failed_step = Some(step);
        self.error = Some(why);
        self
    }

    /// Marks the publish test's outcome.
    pub fn with_publish(mut self, ms: f64, result: Result<(f64, u64), String>) -> Self {
        self.steps.push((CheckStep::Publish, ms));
        match result {
            Ok((kbps, acked)) => {
                self.upload_kbps = Some(kbps);
                self.acknowledged_bytes = Some(acked);
            }
            Err(e) => {
                self.ok = false;
                self.failed_step = Some(CheckStep::Publish);
                self.error = Some(e);
            }
        }
        self
    }

    /// One line for a person.
    pub fn line(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(|(s, ms)| format!("{} {ms:.0} ms", s.name())).collect();
        let mut line = format!("{} {}: {}", if self.ok { "PASS" } else { "FAIL" }, self.url, steps.join(", "));
        if let Some(kbps) = self.upload_kbps {
            line.push_str(&format!("; upload {kbps:.0} kbit/s"));
        }
        if let (Some(step), Some(e)) = (self.failed_step, &self.error) {
            line.push_str(&format!("\n  failed at {}: {e}", step.name()));
        }
        line
    }

    /// One JSON object: `url`, `ok`, `failed_step`, `error`, `<step>_ms`
    /// for each step that ran, `upload_kbps` with a publish test.
    pub fn json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "url": self.url,
            "ok": self.ok,
            "failed_step": self.failed_step.map(CheckStep::name),
            "error": self.error,
        });
        if let Some(obj) = doc.as_object_mut() {
            for (step, ms) in &self.steps {
                obj.insert(format!("{}_ms", step.name()), serde_json::json!((ms * 10.0).round() / 10.0));
            }
            if let Some(k) = self.upload_kbps {
                obj.insert("upload_kbps".into(), serde_json::json!(k.round()));
            }
            if let Some(a) = self.acknowledged_bytes {
                obj.insert("acknowledged_bytes".into(), serde_json::json!(a));
            }
        }
        doc
    }
}

/// Checks `url` up to and including `connect`; publishes nothing.
pub async fn probe(url: &RtmpUrl, ca_file: Option<&Path>) -> CheckReport {
    let mut report = CheckReport { url: url.to_string(), ok: true, ..CheckReport::default() };
    let t = Instant::now();
    let addrs = match transport::resolve(url).await {
        Ok(a) => a,
        Err(e) => return report.fail(CheckStep::Resolve, t, &e),
    };
    report.step(CheckStep::Resolve, t);
    let t = Instant::now();
    let tcp = match transport::connect_tcp(&addrs).await {
        Ok(s) => s,
        Err(e) => return report.fail(CheckStep::Tcp, t, &e),
    };
    report.step(CheckStep::Tcp, t);
    let t = Instant::now();
    let tls = match url.scheme {
        Scheme::Rtmps => match transport::tls_config(ca_file) {
            Ok(c) => Some(c),
            Err(e) => return report.fail(CheckStep::Tls, t, &e),
        },
        Scheme::Rtmp => None,
    };
    let mut stream = match transport::connect_transport(url, tcp, tls.as_ref()).await {
        Ok(s) => s,
        Err(e) => return report.fail(CheckStep::Tls, t, &e),
    };
    if tls.is_some() {
        report.step(CheckStep::Tls, t);
    }
    // Handshake, then connect; nothing after it is written (no publish).
    let mut config = ClientConfig::from_url(url);
    let limit = SESSION_TIMEOUT.max(TCP_CONNECT_TIMEOUT);
    config.timeouts = ClientTimeouts { handshake: limit, setup: limit, acknowledgement: None };
    let mut session = ClientSession::new(config, fastrand::u64(..), 0);
    let started = Instant::now();
    session.arm_timers(started);
    let mut handshake_done = None;
    let driven = client_setup::drive_until(&mut session, &mut stream, |e| {
        if matches!(e, ClientEvent::HandshakeDone) {
            handshake_done.get_or_insert_with(Instant::now);
        }
        matches!(e, ClientEvent::Connected | ClientEvent::Rejected { .. })
    })
    .await;
    let (step, t) = match handshake_done {
        Some(at) => {
            report.steps.push((CheckStep::Handshake, at.duration_since(started).as_secs_f64() * 1000.0));
            (CheckStep::Connect, at)
        }
        None => (CheckStep::Handshake, started),
    };
    let events = match driven {
        Ok(events) => events,
        Err(SetupError::Closed { .. }) => {
            let why = match step {
                CheckStep::Handshake => "the server closed the connection during the RTMP handshake".to_string(),
                _ => format!("the server closed the connection in answer to connect (is '{}' the right application?)", url.app),
            };
            return report.fail_because(step, t, why);
        }
        Err(SetupError::Session(SessionError::TimedOut { .. })) => {
            return report.fail(step, t, &PublishError::Timeout(if step == CheckStep::Handshake { "the RTMP handshake" } else { "connect" }));
        }
        Err(SetupError::Session(e)) => return report.fail(step, t, &PublishError::Protocol(e)),
        Err(SetupError::Io(e)) => return report.fail(step, t, &PublishError::Io(e)),
    };
    match events.into_iter().find(|e| matches!(e, ClientEvent::Connected | ClientEvent::Rejected { .. })) {
        Some(ClientEvent::Rejected { code, description }) => report.fail(step, t, &PublishError::Rejected { code, description }),
        _ => {
            report.step(CheckStep::Connect, t);
            let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
            report
        }
    }
}
