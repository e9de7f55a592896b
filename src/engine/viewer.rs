//! The viewer preview: what the local server actually relays to a player,
//! decoded and shown beside the outgoing picture, with its glass-to-glass
//! latency when the stream is the engine's own rehearsal.
//!
//! A tokio task plays the stream with `net::RtmpPlayer` (a real player of
//! the server, through its socket); a thread (`tally-viewer`) decodes every
//! video tag (dropping any would break the pictures that follow) and turns
//! a picture into RGBA no more often than asked. Between them a bounded
//! channel: a viewer that cannot keep up slows its own reading, and the
//! server treats it like any slow player.

use crate::decode::H264Decoder;
use crate::net::rtmp_player::RtmpPlayer;
use crate::session::{PreviewFrame, PreviewRequest, preview_picture};
use crate::rtmp::{ClientEvent, MediaKind, RtmpUrl};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Video tags waiting for the decoder thread.
const DECODE_QUEUE: usize = 8;
/// Latencies averaged into the figure shown: a second of frames.
const LATENCY_WINDOW: usize = 30;

/// A decoded picture of what the server relays.
#[derive(Clone, Debug)]
pub struct ViewerFrame {
    /// The picture, fitted into the asked size.
    pub picture: PreviewFrame,
    /// Capture to decoded picture, averaged over the last second; `None`
    /// when the stream is not the engine's own broadcast.
    pub latency: Option<Duration>,
    /// Pictures decoded so far.
    pub decoded: u64,
}

/// The viewer preview's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ViewerState {
    /// Not watching.
    #[default]
    Off,
    /// Connecting to the server, or waiting for the stream's first picture.
    Waiting {
        /// The URL watched (no key: the local server's streams have none to show).
        url: String,
    },
    /// Pictures arrive.
    Playing {
        /// The URL watched.
        url: String,
    },
    /// It ended: the server went away or refused.
    Failed {
        /// Why.
        message: String,
    },
}

/// Where media time 0 of the engine's broadcast was, and its stream on the
/// local server (a rehearsal), for the latency figure.
pub type MediaOrigin = Option<(String, Instant)>;

/// A running viewer; [`Viewer::stop`] ends it and joins its thread
/// (dropping it only stops the player; the thread then ends by itself).
pub struct Viewer {
    task: tokio::task::JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Viewer {
    /// Stops the player and waits for the decoder thread, which ends once
    /// the player's side of their channel is gone.
    pub async fn stop(mut self) {
        self.task.abort();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `url` (stream `stream` of the local server).
pub fn start(
    url: RtmpUrl,
    stream: String,
    request: PreviewRequest,
    origin: watch::Receiver<MediaOrigin>,
    frames: watch::Sender<Option<Arc<ViewerFrame>>>,
    state: watch::Sender<super::EngineState>,
) -> Viewer {
    let shown = url.to_string();
    state.send_modify(|s| s.viewer = ViewerState::Waiting { url: shown.clone() });
    let (tx, rx) = mpsc::channel::<(Bytes, u32)>(DECODE_QUEUE);
    let thread = {
        let (state, shown) = (state.clone(), shown.clone());
        std::thread::Builder::new().name("tally-viewer".into()).spawn(move || decode_loop(rx, request, &stream, &origin, &frames, &state, &shown))
    };
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            state.send_modify(|s| s.viewer = ViewerState::Failed { message: format!("starting the decoder: {e}") });
            None
        }
    };
    let task = tokio::spawn(async move {
        let why = match play(&url, &tx).await {
            Ok(()) => "the server closed the connection".to_string(),
            Err(e) => e,
        };
        tracing::info!(url = %shown, "viewer preview ended: {why}");
        state.send_modify(|s| s.viewer = ViewerState::Failed { message: why });
    });
    Viewer { task, thread }
}

async fn play(url: &RtmpUrl, tx: &mpsc::Sender<(Bytes, u32)>) -> Result<(), String> {
    let mut player = RtmpPlayer::connect(url).await.map_err(|e| crate::error_chain(&e))?;
    loop {
        match player.next_event().await {
            Ok(Some(ClientEvent::Media { kind: MediaKind::Video, timestamp, payload })) => {
                if tx.send((payload, timestamp)).await.is_err() {
                    return Err("the decoder stopped".into());
                }
            }
            Ok(Some(ClientEvent::Rejected { code, .. })) => return Err(format!("the server refused to play: {code}")),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(crate::error_chain(&e)),
        }
    }
}

fn decode_loop(
    mut rx: mpsc::Receiver<(Bytes, u32)>,
    request: PreviewRequest,
    stream: &str,
    origin: &watch::Receiver<MediaOrigin>,
    frames: &watch::Sender<Option<Arc<ViewerFrame>>>,
    state: &watch::Sender<super::EngineState>,
    shown: &str,
) {
    let mut decoder = match H264Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            state.send_modify(|s| s.viewer = ViewerState::Failed { message: format!("the decoder: {e}") });
            return;
        }
    };
    let min_gap = Duration::from_secs(1) / request.max_fps.max(1);
    let mut last_shown: Option<Instant> = None;
    let mut latencies = std::collections::VecDeque::with_capacity(LATENCY_WINDOW);
    let mut decoded = 0u64;
    while let Some((body, ts)) = rx.blocking_recv() {
        let frame = match decoder.decode_tag(&body, ts) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                // One bad tag is that tag's problem; the next keyframe heals the picture.
                tracing::debug!("viewer preview: {e}");
                continue;
            }
        };
        let now = Instant::now();
        decoded += 1;
        // Glass to glass: this picture's capture time is the broadcast's
        // media origin plus its timestamp.
        let latency = match &*origin.borrow() {
            Some((name, at)) if name == stream => Some(now.saturating_duration_since(*at + Duration::from_millis(u64::from(ts)))),
            _ => None,
        };
        if let Some(l) = latency {
            if latencies.len() == LATENCY_WINDOW {
                latencies.pop_front();
            }
            latencies.push_back(l);
        }
        if last_shown.is_some_and(|t| now.duration_since(t) < min_gap) {
            continue;
        }
        last_shown = Some(now);
        let mut picture = match preview_picture(&frame, request) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("viewer preview: {e}");
                continue;
            }
        };
        picture.serial = decoded;
        let average = (!latencies.is_empty() && latency.is_some()).then(|| latencies.iter().sum::<Duration>() / latencies.len() as u32);
        frames.send_replace(Some(Arc::new(ViewerFrame { picture, latency: average, decoded })));
        if decoded == 1 || !matches!(state.borrow().viewer, ViewerState::Playing { .. }) {
            state.send_modify(|s| s.viewer = ViewerState::Playing { url: shown.to_string() });
        }
    }
}
