//! The running broadcast: a capture session's pictures and audio -> encode
//! -> FLV tags -> every output.
//!
//! Threads: two that take what the capture session hands the broadcast
//! (`intake`: pictures to every rendition; audio encoded to AAC once), one per rendition — an encoder for each distinct set of video
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
mod intake;
mod renditions;
mod settings;
mod stats;

pub use outputs::{OutputChangeError, OutputControl, OutputFailure, OutputKind, OutputReport, OutputSpec, OutputWatch};
pub use settings::BroadcastSettings;
pub use renditions::{DEFAULT_BUDGET_SHARE, REJOIN_AFTER, base_spec, default_budget_percent};
pub use stats::{OutputStats, RenditionStats, SourceStats, Stats};

use crate::encode::{AacEncoder, AacSettings, EncodeError};
use crate::session::{AUDIO_CHANNELS, AUDIO_RATE, CaptureSession};
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
    /// The capture session it goes out from (kept while the broadcast runs).
    session: Option<Arc<CaptureSession>>,
}

impl Broadcast {
    /// Starts streaming what `session` captures: encoders and outputs are
    /// made, and the broadcast attaches to the session (its media time 0 is
    /// now, or the sources' first frame for a session that runs from it).
    /// The broadcast's picture is the session's (`settings`' size and rate
    /// are the session's; each rendition scales to its own). The session
    /// keeps running after the broadcast ends unless nothing else holds it.
    ///
    /// Network outputs run on `runtime`; everything CPU-bound runs on its own thread.
    pub fn start(
        session: Arc<CaptureSession>,
        mut settings: BroadcastSettings,
        outputs: Vec<OutputSpec>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Broadcast, PipelineError> {
        if outputs.is_empty() {
            return Err(PipelineError::NoOutputs);
        }
        let format = session.format();
        (settings.width, settings.height, settings.fps) = (format.width, format.height, format.fps);
        let audio_enc = AacEncoder::new(&AacSettings {
            sample_rate: AUDIO_RATE,
            channels: AUDIO_CHANNELS,
            bitrate_kbps: settings.audio_kbps,
        })?;
        let end = Arc::new(intake::MediaEnd::new(settings.duration.map(|d| d.as_micros() as u64)));

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
        let attached = session.attach();
        let source_views = stats::SourceViews { video: attached.video_status.clone(), audio: attached.audio_status.clone() };

        let mut workers = Vec::new();
        let spawn = |name: &'static str, f: Box<dyn FnOnce() -> Result<(), StageError> + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|h| (name, h))
                .map_err(|source| PipelineError::Spawn { what: name, source })
        };
        let frame_us = 1_000_000 / u64::from(settings.fps.max(1));
        let (pictures, blocks, fast) = (attached.video, attached.audio, settings.fast);
        let started = (|| {
            let (stop1, counters1, end1, r) = (stop.clone(), counters.clone(), end.clone(), renditions.clone());
            workers.push(spawn(
                "tally-video",
                Box::new(move || intake::run_video(pictures, frame_us, fast, &stop1, &end1, &counters1, r)),
            )?);
            let (stop, counters, end, r) = (stop.clone(), counters.clone(), end.clone(), renditions.clone());
            workers.push(spawn("tally-audio", Box::new(move || intake::run_audio(blocks, audio_enc, &stop, &end, &counters, r)))?);
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
        let origin = attached.origin.checked_sub(offset).unwrap_or(attached.origin);
        Ok(Broadcast {
            stop,
            workers,
            outputs: running,
            renditions,
            stats_rx,
            stats_task: Some(stats_task),
            origin,
            session: Some(session),
        })
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
        // A session nothing else holds (one opened for this broadcast) ends
        // here; joining its threads may wait for a camera read.
        if let Some(session) = self.session.take() {
            let _ = tokio::task::spawn_blocking(move || drop(session)).await;
        }
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
