//! Starting, watching and collecting the outputs of a broadcast.

use super::PipelineError;
use crate::flv::FlvWriter;
use crate::net::publisher::{self, Destination};
use crate::net::queue::{OutputQueue, QueueLimits};
use crate::net::{FailureKind, OutputState, OutputStatus};
use crate::rtmp::RtmpUrl;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One place the broadcast goes.
#[derive(Clone, Debug)]
pub enum OutputSpec {
    /// Publish to an RTMP/RTMPS server.
    Publish(Destination),
    /// Write an FLV file.
    Record(PathBuf),
}

impl OutputSpec {
    /// Publishing to `url` with defaults (reconnecting, platform CAs).
    pub fn publish(url: RtmpUrl) -> Self {
        OutputSpec::Publish(Destination::new(url, 0, 0))
    }
}

impl OutputSpec {
    /// A stable id within the broadcast: the destination's own, else its position.
    pub fn id(&self, index: usize) -> String {
        match self {
            OutputSpec::Publish(Destination { id: Some(id), .. }) => id.clone(),
            OutputSpec::Publish(_) => format!("destination-{}", index + 1),
            OutputSpec::Record(_) => format!("recording-{}", index + 1),
        }
    }

    /// A display name that never contains a stream key.
    pub fn name(&self) -> String {
        match self {
            OutputSpec::Publish(dest) => dest.url.to_string(),
            OutputSpec::Record(path) => path.display().to_string(),
        }
    }
}

/// Which kind of output a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// RTMP destination.
    Publish,
    /// FLV file.
    Record,
}

/// How one output ended.
#[derive(Debug, Clone)]
pub struct OutputReport {
    /// Stable id within the broadcast (see [`OutputSpec::id`]).
    pub id: String,
    /// Display name (key redacted).
    pub name: String,
    /// Kind.
    pub kind: OutputKind,
    /// `None` when it ended cleanly; otherwise the reason, final.
    pub error: Option<String>,
    /// Payload bytes delivered.
    pub bytes_out: u64,
}

/// An output's state as it changes, for a face that shows it at once
/// rather than at the next 1 Hz snapshot.
#[derive(Clone, Debug)]
pub struct OutputWatch {
    /// Stable id within the broadcast.
    pub id: String,
    /// Display name (key redacted).
    pub name: String,
    /// Destination or recording.
    pub kind: OutputKind,
    /// Wakes on every change.
    pub state: tokio::sync::watch::Receiver<OutputState>,
}

/// What the stats sampler and the UI see of an output.
#[derive(Clone)]
pub(crate) struct OutputView {
    pub id: String,
    pub name: String,
    pub queue: Arc<OutputQueue>,
    pub status: Arc<OutputStatus>,
}

impl OutputView {
    pub fn finished(&self) -> bool {
        self.status.finished()
    }
    pub fn bytes_out(&self) -> u64 {
        self.status.bytes_out()
    }
}

enum Handle {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

pub(crate) struct RunningOutputs {
    views: Vec<OutputView>,
    kinds: Vec<OutputKind>,
    handles: Vec<Handle>,
}

impl RunningOutputs {
    pub fn fanout(&self) -> Vec<Arc<OutputQueue>> {
        self.views.iter().map(|v| v.queue.clone()).collect()
    }

    pub fn views(&self) -> Vec<OutputView> {
        self.views.clone()
    }

    pub fn watches(&self) -> Vec<OutputWatch> {
        self.views
            .iter()
            .zip(&self.kinds)
            .map(|(v, kind)| OutputWatch { id: v.id.clone(), name: v.name.clone(), kind: *kind, state: v.status.subscribe() })
            .collect()
    }

    /// Statuses of the network destinations (whose congestion control bounds the bitrate).
    pub fn destination_statuses(&self) -> Vec<Arc<OutputStatus>> {
        self.views.iter().zip(&self.kinds).filter(|(_, k)| **k == OutputKind::Publish).map(|(v, _)| v.status.clone()).collect()
    }

    pub fn all_finished(&self) -> bool {
        self.views.iter().all(|v| v.status.finished())
    }

    pub fn all_failed(&self) -> bool {
        self.views.iter().all(|v| v.status.failed())
    }

    pub async fn wait(&mut self) -> Vec<OutputReport> {
        for h in self.handles.drain(..) {
            match h {
                Handle::Task(t) => {
                    let _ = t.await;
                }
                Handle::Thread(t) => {
                    let _ = tokio::task::spawn_blocking(move || t.join()).await;
                }
            }
        }
        self.views
            .iter()
            .zip(&self.kinds)
            .map(|(v, kind)| {
                let error = match v.status.state() {
                    OutputState::Failed { message, .. } => Some(message),
                    OutputState::Stopped => None,
                    other => Some(format!("ended while {other}")),
                };
                OutputReport { id: v.id.clone(), name: v.name.clone(), kind: *kind, error, bytes_out: v.status.bytes_out() }
            })
            .collect()
    }
}

/// When an output fails and none is left, the sources stop: encoding for
/// nobody helps no one.
fn on_output_end(views: &[OutputView], stop: &AtomicBool) {
    if views.iter().all(|v| v.status.failed()) {
        stop.store(true, Ordering::SeqCst);
    }
}

pub(super) fn start_outputs(
    specs: Vec<OutputSpec>,
    (video_kbps, audio_kbps): (u32, u32),
    stop: &Arc<AtomicBool>,
    runtime: &tokio::runtime::Handle,
) -> Result<RunningOutputs, PipelineError> {
    let mut views = Vec::new();
    let mut kinds = Vec::new();
    let mut pending = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let limits = match spec {
            OutputSpec::Publish(_) => QueueLimits::PUBLISHER,
            OutputSpec::Record(_) => QueueLimits::RECORDER,
        };
        views.push(OutputView {
            id: spec.id(index),
            name: spec.name(),
            queue: Arc::new(OutputQueue::new(limits)),
            status: Arc::new(OutputStatus::default()),
        });
        kinds.push(match spec {
            OutputSpec::Publish(_) => OutputKind::Publish,
            OutputSpec::Record(_) => OutputKind::Record,
        });
        // Files are opened now so a bad path is an immediate, clear error.
        if let OutputSpec::Record(path) = spec {
            let file = File::create(path).map_err(|e| PipelineError::Output { name: spec.name(), reason: e.to_string() })?;
            pending.push(Some(file));
        } else {
            pending.push(None);
        }
    }
    let mut handles = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let view = views[i].clone();
        let all = views.clone();
        let stop = stop.clone();
        match spec {
            OutputSpec::Publish(mut dest) => {
                if dest.video_kbps == 0 {
                    dest.video_kbps = video_kbps;
                }
                if dest.audio_kbps == 0 {
                    dest.audio_kbps = audio_kbps;
                }
                let task = runtime.spawn(async move {
                    let result = publisher::publish(dest, view.queue.clone(), view.status.clone()).await;
                    view.queue.close_consumer();
                    match result {
                        Ok(()) => view.status.set_state(OutputState::Stopped),
                        Err(e) => {
                            tracing::error!(output = %view.name, "{e}");
                            view.status.set_state(e.as_state());
                        }
                    }
                    on_output_end(&all, &stop);
                });
                handles.push(Handle::Task(task));
            }
            OutputSpec::Record(_) => {
                let Some(file) = pending[i].take() else {
                    return Err(PipelineError::Internal("recorder file missing".into()));
                };
                let thread = std::thread::Builder::new()
                    .name("tally-record".into())
                    .spawn(move || {
                        let result = record(file, &view);
                        view.queue.close_consumer();
                        match result {
                            Ok(()) => view.status.set_state(OutputState::Stopped),
                            Err(e) => {
                                tracing::error!(output = %view.name, "{e}");
                                view.status.set_state(OutputState::failed(FailureKind::File, true, e));
                            }
                        }
                        on_output_end(&all, &stop);
                    })
                    .map_err(|e| PipelineError::Internal(format!("spawn recorder: {e}")))?;
                handles.push(Handle::Thread(thread));
            }
        }
    }
    Ok(RunningOutputs { views, kinds, handles })
}

fn record(file: File, view: &OutputView) -> Result<(), String> {
    let mut writer = FlvWriter::new(BufWriter::with_capacity(256 * 1024, file), true, true).map_err(|e| e.to_string())?;
    view.status.set_state(OutputState::Live);
    while let Some(tag) = view.queue.pop_blocking() {
        writer.write_tag(&tag).map_err(|e| format!("write: {e}"))?;
        view.status.add_bytes(tag.data.len() as u64);
    }
    writer.finish().map_err(|e| format!("finish: {e}"))?;
    Ok(())
}
