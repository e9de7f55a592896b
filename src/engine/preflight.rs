//! The pre-flight check as the engine runs it: each destination of a plan
//! checked up to `connect` (`net::probe`), then, when asked, published to
//! for a while with the (noisy) test pattern at the plan's bitrate, measuring the
//! sustained upload rate and the server's acknowledgements.
//!
//! Was `engine::check`, beside `net::check` (now `net::probe`) and
//! `cli/check.rs` (`tally check`, which runs this through the engine).

use super::plan::BroadcastPlan;
use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::net::probe::{CheckReport, probe};
use crate::net::publisher::Destination;
use crate::pipeline::{Broadcast, OutputSpec};
use crate::session::{CaptureSession, Unwatched};
use crate::rtmp::StreamKey;
use std::time::{Duration, Instant};

/// Twitch's bandwidth-test mode: a stream key with this suffix is received
/// and measured but never goes on air (Twitch Inspector documents it).
pub const TWITCH_BANDWIDTH_TEST: &str = "?bandwidthtest=true";

/// The destinations a plan checks, each with the key a publish test uses
/// and, when that test would go on air, a sentence saying so.
pub fn destinations(plan: &BroadcastPlan, publish_test: Option<Duration>) -> Vec<(Destination, Option<String>)> {
    let mut out = Vec::new();
    for output in &plan.outputs {
        let OutputSpec::Publish(d) = output else { continue };
        let mut dest = d.clone();
        let mut notice = None;
        if let Some(secs) = publish_test {
            let service = crate::config::detect(&format!("rtmp://{}/{}", d.url.host, d.url.app));
            if service.as_ref().is_some_and(|s| s.id == "twitch") {
                dest.url.stream_key = StreamKey::new(format!("{}{TWITCH_BANDWIDTH_TEST}", d.url.stream_key.expose()));
            } else {
                let name = service.map_or_else(|| d.url.host.clone(), |s| s.name);
                notice = Some(format!(
                    "the publish test to {} GOES LIVE on {name} for {} s (a test pattern): viewers of that stream will see it",
                    d.url,
                    secs.as_secs()
                ));
            }
        }
        out.push((dest, notice));
    }
    out
}

/// Checks one destination; with `publish_test`, publishes to it for that long.
pub async fn run(dest: Destination, plan: &BroadcastPlan, publish_test: Option<Duration>) -> CheckReport {
    let report = probe(&dest.url, dest.ca_file.as_deref()).await;
    let Some(secs) = publish_test.filter(|_| report.ok) else { return report };
    let started = Instant::now();
    let mut settings = plan.settings.clone();
    // The pattern under noise: it needs the whole bitrate, as a camera does.
    settings.video = VideoSourceSpec::Noise;
    settings.audio = AudioSourceSpec::Sine;
    settings.duration = Some(secs);
    settings.fast = false;
    let runtime = tokio::runtime::Handle::current();
    let outputs = vec![OutputSpec::Publish(dest)];
    // Its own capture session (nobody previews it), opened off the runtime.
    let opening = tokio::task::spawn_blocking(move || {
        let session = CaptureSession::open(settings.session_spec(), std::sync::Arc::new(Unwatched)).map_err(|e| crate::error_chain(&e))?;
        Broadcast::start(std::sync::Arc::new(session), settings, outputs, &runtime).map_err(|e| crate::error_chain(&e))
    });
    let broadcast = match opening.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return report.with_publish(0.0, Err(e)),
        Err(e) => return report.with_publish(0.0, Err(crate::error_chain(&e))),
    };
    // Sustained: the average over the second half of the test (the first
    // seconds fill the path's buffers and run congestion control in),
    // from the bytes delivered, so one-second bursts average out.
    let mut rx = broadcast.stats();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut acked = 0;
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            if let Some(o) = s.outputs.first() {
                if o.phase == crate::net::OutputState::Live {
                    samples.push((Instant::now(), o.bytes_out));
                }
                acked = acked.max(o.acked_bytes);
            }
        }
        (samples, acked)
    });
    let summary = broadcast.wait().await;
    let (samples, acked) = sampler.await.unwrap_or_default();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(e) = summary.outputs.first().and_then(|o| o.error.clone()) {
        return report.with_publish(ms, Err(e.message));
    }
    let mid = samples.len() / 2;
    match (samples.get(mid), samples.last()) {
        (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
            let kbps = (b1 - b0) as f64 * 8.0 / 1000.0 / t1.duration_since(*t0).as_secs_f64();
            report.with_publish(ms, Ok((kbps, acked)))
        }
        _ => report.with_publish(ms, Err(format!("no rate measured: the test was live for {} s only", samples.len()))),
    }
}
