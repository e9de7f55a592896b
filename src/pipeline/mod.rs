//! The running broadcast: capture -> encode -> FLV tags -> every output.
//!
//! Threads: one per source (capture, pacing; the audio one also encodes
//! AAC), one per rendition — an encoder for each distinct set of video
//! settings among the outputs, which also interleaves audio and video by
//! timestamp and fans the tags out into one bounded [`OutputQueue`](crate::net::output_queue::OutputQueue) per
//! output on it (`renditions`, `muxer`, `lane`) — one thread per file recorder,
//! and one tokio task per RTMP destination. Nothing here blocks on an
//! output: a failing or slow destination only loses its own frames (see
//! `net::output_queue`), and a congested one gets an encode of its own.

mod counters;
mod lane;
mod muxer;
mod outputs;
mod renditions;
mod session;
mod settings;
mod sources;
mod stats;

pub use outputs::{OutputChangeError, OutputControl, OutputFailure, OutputKind, OutputReport, OutputSpec, OutputWatch};
pub use settings::{AudioSourceSpec, BroadcastSettings, VideoSourceSpec, AUDIO_CHANNELS, AUDIO_RATE};
pub use session::{
    AudioLevels, CaptureSession, LEVEL_SLICE_FRAMES, PreviewFrame, PreviewRequest, SessionFeeds, SessionFormat, SourceHealth, preview_picture,
};
pub use renditions::{DEFAULT_BUDGET_SHARE, REJOIN_AFTER, base_spec, default_budget_percent};
pub use stats::{OutputStats, RenditionStats, SourceStats, Stats};

use crate::capture::CaptureError;
use crate::encode::{AacEncoder, AacSettings, EncodeError};
use crate::media::MediaClock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// Why a broadcast (or a capture session, or an output added while live)
/// could not start. Each keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// An encoder refused the settings or failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A source could not be opened.
    #[error("capture")]
    Capture(#[from] CaptureError),
    /// A recording file could not be created.
    #[error("output {name}")]
    Output {
        /// The output, with any stream key redacted.
        name: String,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// A broadcast needs somewhere to go.
    #[error("no outputs given")]
    NoOutputs,
    /// A broadcast attached to a capture session must take its format.
    #[error(
        "the capture session runs {}x{} at {} fps in real time; this broadcast wants {}x{} at {}{}",
        session.width, session.height, session.fps, wanted.width, wanted.height, wanted.fps,
        if *fast { " as fast as possible" } else { "" }
    )]
    FormatMismatch {
        /// The session's.
        session: SessionFormat,
        /// The broadcast's.
        wanted: SessionFormat,
        /// The broadcast wanted no wall clock.
        fast: bool,
    },
    /// A capture session has nothing to capture.
    #[error("a capture session needs a video and an audio source")]
    NoSources,
    /// A worker thread could not be spawned.
    #[error("starting the {what} thread")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a stage of a running broadcast (a source, an encoder, the muxer)
/// ended it early.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The video source failed.
    #[error("video source")]
    VideoSource(#[source] CaptureError),
    /// The audio source failed.
    #[error("audio source")]
    AudioSource(#[source] CaptureError),
    /// The video encoder failed.
    #[error("video encoder")]
    VideoEncoder(#[source] EncodeError),
    /// The audio encoder failed.
    #[error("audio encoder")]
    AudioEncoder(#[source] EncodeError),
    /// openh264 coded a first frame without SPS/PPS: players could not decode anything.
    #[error("the first video frame arrived without SPS/PPS")]
    NoParameterSets,
    /// The AVC sequence header could not be made from the encoder's SPS/PPS.
    #[error("video sequence header")]
    SequenceHeader(#[source] crate::flv::FlvError),
    /// A stage's thread panicked (a bug; the others were stopped).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// Its result was lost (the runtime shut down while joining).
    #[error("joining the pipeline threads")]
    Join(#[source] tokio::task::JoinError),
}

/// How a broadcast ended.
#[derive(Debug)]
pub struct BroadcastSummary {
    /// One report per output, in the order given.
    pub outputs: Vec<OutputReport>,
    /// Final counters.
    pub stats: Stats,
    /// Errors of the capture/encode stages, if any ended the broadcast early.
    pub pipeline_errors: Vec<StageError>,
}

impl BroadcastSummary {
    /// True when every stage and every output ended cleanly.
    pub fn all_ok(&self) -> bool {
        self.pipeline_errors.is_empty() && self.outputs.iter().all(|o| o.error.is_none())
    }
}

/// A broadcast in progress. Dropping it stops it.
pub struct Broadcast {
    stop: Arc<AtomicBool>,
    workers: Vec<(&'static str, JoinHandle<Result<(), StageError>>)>,
    outputs: Arc<outputs::OutputSet>,
    renditions: Arc<renditions::Renditions>,
    stats_rx: watch::Receiver<Stats>,
    stats_task: Option<JoinHandle<()>>,
    /// When media time 0 was (timestamps are ms from here, plus the start offset).
    origin: std::time::Instant,
}

impl Broadcast {
    /// Opens sources, encoders and outputs and starts streaming.
    ///
    /// Network outputs run on `runtime`; everything CPU-bound runs on its own thread.
    pub fn start(
        settings: BroadcastSettings,
        outputs: Vec<OutputSpec>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Broadcast, PipelineError> {
        Self::start_with(settings, outputs, runtime, None)
    }

    /// Starts streaming what a capture session captures (its sources, not
    /// `settings`' own; its frame size must be the settings'). The session
    /// keeps running after the broadcast ends.
    pub fn start_on(
        session: &CaptureSession,
        settings: BroadcastSettings,
        outputs: Vec<OutputSpec>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Broadcast, PipelineError> {
        let f = session.format();
        let wanted = SessionFormat { width: settings.width, height: settings.height, fps: settings.fps };
        if (f.width, f.height, f.fps) != (wanted.width, wanted.height, wanted.fps) || settings.fast {
            return Err(PipelineError::FormatMismatch { session: f, wanted, fast: settings.fast });
        }
        Self::start_with(settings, outputs, runtime, Some(session))
    }

    fn start_with(
        settings: BroadcastSettings,
        outputs: Vec<OutputSpec>,
        runtime: &tokio::runtime::Handle,
        session: Option<&CaptureSession>,
    ) -> Result<Broadcast, PipelineError> {
        if outputs.is_empty() {
            return Err(PipelineError::NoOutputs);
        }
        let audio_enc = AacEncoder::new(&AacSettings {
            sample_rate: AUDIO_RATE,
            channels: AUDIO_CHANNELS,
            bitrate_kbps: settings.audio_kbps,
        })?;
        let mut origin = None;
        let (video_input, audio_input, source_views) = match session {
            None => {
                let video_src = sources::open_video(&settings)?;
                let audio_src = sources::open_audio(&settings)?;
                let views = stats::SourceViews { video: video_src.status.clone(), audio: audio_src.status.clone() };
                (sources::VideoInput::Own(video_src.source), sources::AudioInput::Own(audio_src.source), views)
            }
            Some(session) => {
                let a = session.attach()?;
                origin = Some(a.origin);
                let views = stats::SourceViews { video: a.video_status, audio: a.audio_status };
                (
                    sources::VideoInput::Attached { rx: a.video, origin_us: a.origin_us },
                    sources::AudioInput::Attached { rx: a.audio, origin_us: a.origin_us },
                    views,
                )
            }
        };
        let end = Arc::new(sources::MediaEnd::new(settings.duration.map(|d| d.as_micros() as u64)));

        let audio_config = audio_enc.config().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let running = outputs::OutputSet::start(outputs, (settings.video_kbps, settings.audio_kbps), &stop, runtime)?;
        let counters = Arc::new(counters::PipelineCounters::default());
        let renditions = match renditions::Renditions::start(running.clone(), &settings, audio_config, stop.clone(), counters.clone()) {
            Ok(r) => r,
            Err(e) => {
                // Nothing will feed the outputs: let them end now.
                stop.store(true, Ordering::SeqCst);
                running.finish_all();
                return Err(e);
            }
        };
        let clock = MediaClock::start();
        let origin = origin.unwrap_or_else(|| clock.origin());

        let mut workers = Vec::new();
        let spawn = |name: &'static str, f: Box<dyn FnOnce() -> Result<(), StageError> + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|h| (name, h))
                .map_err(|source| PipelineError::Spawn { what: name, source })
        };
        let started = (|| {
            let (stop1, settings1, counters1, end1, r) = (stop.clone(), settings.clone(), counters.clone(), end.clone(), renditions.clone());
            workers.push(spawn(
                "tally-video",
                Box::new(move || sources::run_video(video_input, &settings1, clock, &stop1, &end1, &counters1, r)),
            )?);
            let (stop, settings, counters, end, r) = (stop.clone(), settings.clone(), counters.clone(), end.clone(), renditions.clone());
            workers.push(spawn(
                "tally-audio",
                Box::new(move || sources::run_audio(audio_input, audio_enc, &settings, clock, &stop, &end, &counters, r)),
            )?);
            Ok::<(), PipelineError>(())
        })();
        if let Err(e) = started {
            stop.store(true, Ordering::SeqCst);
            renditions.close_video();
            renditions.close_audio();
            return Err(e);
        }

        let initial = Stats::default();
        let (stats_tx, stats_rx) = watch::channel(initial);
        let stats_task = {
            let (stop, counters, views, r) = (stop.clone(), counters.clone(), running.clone(), renditions.clone());
            std::thread::Builder::new()
                .name("tally-stats".into())
                .spawn(move || stats::run_sampler(&stop, &counters, &source_views, &views, &r, &stats_tx))
                .map_err(|source| PipelineError::Spawn { what: "tally-stats", source })?
        };

        let offset = Duration::from_millis(u64::from(settings.start_offset_ms));
        let origin = origin.checked_sub(offset).unwrap_or(origin);
        Ok(Broadcast { stop, workers, outputs: running, renditions, stats_rx, stats_task: Some(stats_task), origin })
    }

    /// The wall-clock moment of timestamp 0: a tag stamped `t` ms was
    /// captured at `media_origin() + t` (a viewer's latency is measured from it).
    pub fn media_origin(&self) -> std::time::Instant {
        self.origin
    }

    /// A handle that can stop the broadcast from another task (Ctrl-C, the UI).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Changes the outputs while live: add a destination or a recording,
    /// retry a failed one, remove one.
    pub fn outputs(&self) -> OutputControl {
        OutputControl(self.outputs.clone())
    }

    /// Each output's state as it changes.
    pub fn output_states(&self) -> Vec<OutputWatch> {
        self.outputs.watches()
    }

    /// A receiver of once-a-second snapshots (the UI and `--stats` read these).
    pub fn stats(&self) -> watch::Receiver<Stats> {
        self.stats_rx.clone()
    }

    /// Asks every source to stop; outputs drain what was encoded and end cleanly.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// True once every output has ended (done, failed or stopped).
    pub fn outputs_finished(&self) -> bool {
        self.outputs.all_finished()
    }

    /// True when no output is left that could still deliver anything.
    pub fn all_outputs_failed(&self) -> bool {
        self.outputs.all_failed()
    }

    /// Waits for the end of the broadcast (sources ended or [`stop`](Self::stop) called)
    /// and for every output to finish, then reports.
    pub async fn wait(mut self) -> BroadcastSummary {
        let workers = std::mem::take(&mut self.workers);
        let renditions = self.renditions.clone();
        let pipeline_errors = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            for (name, w) in workers {
                match w.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push(StageError::Panicked(name)),
                }
            }
            // Renditions end once both sources have: every one ever started.
            loop {
                let lanes = renditions.take_handles();
                if lanes.is_empty() {
                    break;
                }
                for (_, lane) in lanes {
                    match lane.join() {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => errors.push(e),
                        Err(_) => errors.push(StageError::Panicked("rendition")),
                    }
                }
            }
            errors
        })
        .await
        .unwrap_or_else(|e| vec![StageError::Join(e)]);
        let outputs = self.outputs.wait().await;
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.stats_task.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let stats = self.stats_rx.borrow().clone();
        BroadcastSummary { outputs, stats, pipeline_errors }
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Stops a broadcast from anywhere; cheap to clone.
#[derive(Clone, Debug)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// Asks the sources to stop; the outputs then drain and end cleanly.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How long the muxer and stats loops wait before re-checking the stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(100);
