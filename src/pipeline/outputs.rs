//! Starting, watching and collecting the outputs of a broadcast — and
//! changing them while it runs: a destination added, a failed one retried,
//! one removed, the others untouched.

use super::PipelineError;
use crate::media::rendition::RenditionSpec;
use crate::flv::FlvWriter;
use crate::net::publisher::{self, Destination};
use crate::net::output_queue::{OutputQueue, QueueLimits};
use crate::net::{FailureKind, OutputState, OutputStatus};
use crate::rtmp::RtmpUrl;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// `None` when it ended cleanly; otherwise how it failed.
    pub error: Option<OutputFailure>,
    /// Payload bytes delivered.
    pub bytes_out: u64,
}

/// How an output failed: its last state's kind, finality and words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OutputFailure {
    /// What went wrong (resolve, connect, TLS, rejected...).
    pub kind: FailureKind,
    /// Retrying the same settings would fail the same way.
    pub is_final: bool,
    /// What to tell the person (never a key).
    pub message: String,
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

/// An output as the renditions see it: which queue, whose state, what video.
#[derive(Clone)]
pub(crate) struct Member {
    pub id: String,
    pub kind: OutputKind,
    pub queue: Arc<OutputQueue>,
    pub status: Arc<OutputStatus>,
    /// Its effective settings (the broadcast's unless its own).
    pub spec: RenditionSpec,
}

/// What the stats sampler and the UI see of an output.
#[derive(Clone)]
pub(crate) struct OutputView {
    pub id: String,
    pub name: String,
    pub queue: Arc<OutputQueue>,
    pub status: Arc<OutputStatus>,
    pub kind: OutputKind,
}

impl OutputView {
    pub fn bytes_out(&self) -> u64 {
        self.status.bytes_out()
    }
}


/// Why an output could not be added, retried or removed while live.
#[derive(Debug, thiserror::Error)]
pub enum OutputChangeError {
    /// No output has this id.
    #[error("no output '{0}' in this broadcast")]
    Unknown(String),
    /// An output with this id is already part of the broadcast.
    #[error("'{0}' is already part of this broadcast")]
    AlreadyThere(String),
    /// Only a failed output is retried (the others are connected or reconnect by themselves).
    #[error("'{id}' has not failed ({state}): nothing to retry")]
    NotFailed {
        /// The output.
        id: String,
        /// What it is doing.
        state: String,
    },
    /// The last output is not removed: ending the stream does that.
    #[error("'{0}' is the only output left: end the stream instead")]
    LastOutput(String),
    /// The broadcast is ending or over.
    #[error("the broadcast has ended")]
    Ended,
    /// The output could not be opened or started.
    #[error(transparent)]
    Open(#[from] PipelineError),
}

enum Handle {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

/// One output of the broadcast, current or past.
struct Entry {
    view: OutputView,
    kind: OutputKind,
    /// What it was started from, for a retry.
    spec: OutputSpec,
    /// Taken out of the broadcast by a person: no longer fed, listed or counted.
    removed: bool,
    /// Stops a destination's task at once (one that is not live has nothing to drain).
    abort: Option<tokio::task::AbortHandle>,
}

struct SetInner {
    entries: Vec<Entry>,
    handles: Vec<Handle>,
    /// The muxer has finished every queue: nothing joins any more.
    closed: bool,
}

/// The outputs of one broadcast, shared by the muxer (which feeds them),
/// the encoder (whose bitrate follows the destinations' congestion), the
/// stats sampler and whoever changes them while live. Every change bumps
/// `generation`, so the readers on the media path look at the list only
/// when it changed (one atomic load per tag otherwise).
pub(crate) struct OutputSet {
    inner: Mutex<SetInner>,
    generation: AtomicU64,
    /// Set when no output is left that could deliver: the sources stop.
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
    /// The broadcast's bitrates, the default of a destination's congestion control.
    kbps: (u32, u32),
}

impl OutputSet {
    /// Opens every output (all or none: a bad recording path fails the start) and starts them.
    pub fn start(
        specs: Vec<OutputSpec>,
        kbps: (u32, u32),
        stop: &Arc<AtomicBool>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<OutputSet>, PipelineError> {
        let set = Arc::new(OutputSet {
            inner: Mutex::new(SetInner { entries: Vec::new(), handles: Vec::new(), closed: false }),
            generation: AtomicU64::new(0),
            stop: stop.clone(),
            runtime: runtime.clone(),
            kbps,
        });
        // Files are opened first, so a bad path is an immediate, clear error
        // and nothing has connected anywhere yet.
        let mut opened = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let id = spec.id(index);
            let file = open_file(&spec)?;
            opened.push((id, spec, file));
        }
        for (id, spec, file) in opened {
            let mut g = set.lock();
            set.launch(&mut g, id, spec, file)?;
        }
        Ok(set)
    }

    fn lock(&self) -> MutexGuard<'_, SetInner> {
        // Plain data only: a panic elsewhere leaves nothing half-changed here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one output's consumer and lists it (replacing a removed or
    /// failed entry of the same id).
    fn launch(self: &Arc<Self>, g: &mut SetInner, id: String, spec: OutputSpec, file: Option<File>) -> Result<OutputWatch, PipelineError> {
        let (limits, kind) = match spec {
            OutputSpec::Publish(_) => (QueueLimits::PUBLISHER, OutputKind::Publish),
            OutputSpec::Record(_) => (QueueLimits::RECORDER, OutputKind::Record),
        };
        let view = OutputView {
            id: id.clone(),
            name: spec.name(),
            queue: Arc::new(OutputQueue::new(limits)),
            status: Arc::new(OutputStatus::default()),
            kind,
        };
        let weak = Arc::downgrade(self);
        let ended = move || {
            if let Some(set) = weak.upgrade() {
                set.on_output_end();
            }
        };
        let (handle, abort) = match (&spec, file) {
            (OutputSpec::Publish(dest), _) => {
                let mut dest = dest.clone();
                if dest.video_kbps == 0 {
                    // Congestion control's ceiling: its own rendition's bitrate, else the broadcast's.
                    dest.video_kbps = dest.video.map_or(self.kbps.0, |v| v.video_kbps);
                }
                if dest.audio_kbps == 0 {
                    dest.audio_kbps = self.kbps.1;
                }
                let view = view.clone();
                let task = self.runtime.spawn(async move {
                    let result = publisher::publish(dest, view.queue.clone(), view.status.clone()).await;
                    view.queue.close_consumer();
                    match result {
                        Ok(()) => view.status.set_state(OutputState::Stopped),
                        Err(e) => {
                            tracing::error!(output = %view.name, "{}", crate::error_chain(&e));
                            view.status.set_state(e.as_state());
                        }
                    }
                    ended();
                });
                let abort = task.abort_handle();
                (Handle::Task(task), Some(abort))
            }
            (OutputSpec::Record(_), Some(file)) => {
                let view = view.clone();
                let thread = std::thread::Builder::new()
                    .name("tally-record".into())
                    .spawn(move || {
                        let result = record(file, &view);
                        view.queue.close_consumer();
                        match result {
                            Ok(()) => view.status.set_state(OutputState::Stopped),
                            Err(e) => {
                                let message = crate::error_chain(&e);
                                tracing::error!(output = %view.name, "{message}");
                                view.status.set_state(OutputState::failed(FailureKind::File, true, message));
                            }
                        }
                        ended();
                    })
                    .map_err(|source| PipelineError::Spawn { what: "tally-record", source })?;
                (Handle::Thread(thread), None)
            }
            // `open_file` gives every recording its file.
            (OutputSpec::Record(path), None) => {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not opened");
                return Err(PipelineError::Output { name: path.display().to_string(), source });
            }
        };
        let watch = OutputWatch { id: id.clone(), name: view.name.clone(), kind, state: view.status.subscribe() };
        let entry = Entry { view, kind, spec, removed: false, abort };
        match g.entries.iter_mut().find(|e| e.view.id == id) {
            Some(old) => *old = entry,
            None => g.entries.push(entry),
        }
        g.handles.push(handle);
        // A joiner's media starts at a keyframe: ask for one now rather than
        // wait out the GOP (at the start the first frame is one anyway).
        if let Some(status) = g.entries.iter().find(|e| e.view.id == id).map(|e| e.view.status.clone()) {
            status.request_keyframe();
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(watch)
    }

    /// Adds an output to the running broadcast: it gets the metadata and
    /// sequence headers, then the media from the next keyframe (asked of
    /// the encoder at once). Opens a recording file: call off the runtime.
    pub fn add(self: &Arc<Self>, spec: OutputSpec) -> Result<OutputWatch, OutputChangeError> {
        let file = open_file(&spec)?;
        let mut g = self.lock();
        if g.closed || self.stop.load(Ordering::SeqCst) {
            return Err(OutputChangeError::Ended);
        }
        let id = spec.id(g.entries.len());
        if g.entries.iter().any(|e| e.view.id == id && !e.removed && !e.view.status.failed()) {
            return Err(OutputChangeError::AlreadyThere(id));
        }
        let watch = self.launch(&mut g, id, spec, file)?;
        Ok(watch)
    }

    /// Starts a failed output again, as it was first started.
    pub fn retry(self: &Arc<Self>, id: &str) -> Result<OutputWatch, OutputChangeError> {
        let spec = {
            let g = self.lock();
            let entry = g.entries.iter().find(|e| e.view.id == id && !e.removed).ok_or_else(|| OutputChangeError::Unknown(id.into()))?;
            if !entry.view.status.failed() {
                return Err(OutputChangeError::NotFailed { id: id.into(), state: entry.view.status.state().to_string() });
            }
            entry.spec.clone()
        };
        let file = open_file(&spec)?;
        let mut g = self.lock();
        if g.closed || self.stop.load(Ordering::SeqCst) {
            return Err(OutputChangeError::Ended);
        }
        Ok(self.launch(&mut g, id.to_string(), spec, file)?)
    }

    /// Takes an output out of the broadcast: a live one ends cleanly (what
    /// it holds is sent, then unpublished), one still connecting or
    /// waiting to reconnect is stopped at once.
    pub fn remove(&self, id: &str) -> Result<(), OutputChangeError> {
        let mut g = self.lock();
        if g.closed {
            return Err(OutputChangeError::Ended);
        }
        let listed = |e: &Entry| !e.removed;
        let index = g.entries.iter().position(|e| e.view.id == id && listed(e)).ok_or_else(|| OutputChangeError::Unknown(id.into()))?;
        let others_alive = g.entries.iter().enumerate().any(|(i, e)| i != index && listed(e) && !e.view.status.finished());
        let entry = &mut g.entries[index];
        if !others_alive && !entry.view.status.finished() {
            return Err(OutputChangeError::LastOutput(id.into()));
        }
        entry.removed = true;
        entry.view.queue.finish();
        if !matches!(entry.view.status.state(), OutputState::Live)
            && let Some(abort) = entry.abort.take()
        {
            abort.abort();
            entry.view.queue.close_consumer();
            entry.view.status.set_state(OutputState::Stopped);
        }
        tracing::info!(output = %entry.view.name, "removed from the broadcast");
        drop(g);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Changes since start; readers refresh their copy when it moves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The muxer's end: every queue is finished and nothing joins any more.
    pub fn finish_all(&self) {
        let mut g = self.lock();
        g.closed = true;
        for e in &g.entries {
            e.view.queue.finish();
        }
    }

    /// What the stats sampler and the UI see: every output not removed.
    pub fn views(&self) -> Vec<OutputView> {
        self.lock().entries.iter().filter(|e| !e.removed).map(|e| e.view.clone()).collect()
    }

    /// Each output's state as it changes.
    pub fn watches(&self) -> Vec<OutputWatch> {
        self.lock()
            .entries
            .iter()
            .filter(|e| !e.removed)
            .map(|e| OutputWatch { id: e.view.id.clone(), name: e.view.name.clone(), kind: e.kind, state: e.view.status.subscribe() })
            .collect()
    }

    /// Every output not removed, with its effective video settings (its
    /// own, else `base`), for the renditions.
    pub fn members(&self, base: &RenditionSpec) -> Vec<Member> {
        self.lock()
            .entries
            .iter()
            .filter(|e| !e.removed)
            .map(|e| Member {
                id: e.view.id.clone(),
                kind: e.kind,
                queue: e.view.queue.clone(),
                status: e.view.status.clone(),
                spec: match &e.spec {
                    OutputSpec::Publish(d) => d.video.unwrap_or(*base),
                    OutputSpec::Record(_) => *base,
                },
            })
            .collect()
    }

    /// True once every output has ended (done, failed, stopped or removed).
    pub fn all_finished(&self) -> bool {
        self.lock().entries.iter().all(|e| e.removed || e.view.status.finished())
    }

    /// True when no output is left that could still deliver anything.
    pub fn all_failed(&self) -> bool {
        self.lock().entries.iter().filter(|e| !e.removed).all(|e| e.view.status.failed())
    }

    /// When an output fails and none is left, the sources stop: encoding
    /// for nobody helps no one. A person can still retry until then.
    fn on_output_end(&self) {
        if self.all_failed() {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Waits for every output's task or thread (after the muxer finished
    /// their queues), then reports each, removed ones included.
    pub async fn wait(&self) -> Vec<OutputReport> {
        loop {
            let handles = std::mem::take(&mut self.lock().handles);
            if handles.is_empty() {
                break;
            }
            for h in handles {
                match h {
                    Handle::Task(t) => {
                        let _ = t.await;
                    }
                    Handle::Thread(t) => {
                        let _ = tokio::task::spawn_blocking(move || t.join()).await;
                    }
                }
            }
        }
        self.lock()
            .entries
            .iter()
            .map(|e| {
                let v = &e.view;
                let error = match v.status.state() {
                    OutputState::Failed { kind, is_final, message } => Some(OutputFailure { kind, is_final, message }),
                    OutputState::Stopped => None,
                    // Its task ended without saying how: Tally's own failure.
                    other => Some(OutputFailure { kind: FailureKind::Internal, is_final: false, message: format!("ended while {other}") }),
                };
                OutputReport { id: v.id.clone(), name: v.name.clone(), kind: e.kind, error, bytes_out: v.status.bytes_out() }
            })
            .collect()
    }
}

/// A recording's file, created now; `None` for a destination.
fn open_file(spec: &OutputSpec) -> Result<Option<File>, PipelineError> {
    match spec {
        OutputSpec::Record(path) => {
            File::create(path).map(Some).map_err(|source| PipelineError::Output { name: spec.name(), source })
        }
        OutputSpec::Publish(_) => Ok(None),
    }
}

/// Changes the outputs of a running broadcast (see [`Broadcast::outputs`](super::Broadcast::outputs)).
/// Each call opens at most a file and spawns a task: call it off a face's thread.
#[derive(Clone)]
pub struct OutputControl(pub(crate) Arc<OutputSet>);

impl std::fmt::Debug for OutputControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputControl").finish_non_exhaustive()
    }
}

impl OutputControl {
    /// Adds an output; it joins at the next keyframe. Its state from then on.
    pub fn add(&self, spec: OutputSpec) -> Result<OutputWatch, OutputChangeError> {
        self.0.add(spec)
    }

    /// Starts a failed output again.
    pub fn retry(&self, id: &str) -> Result<OutputWatch, OutputChangeError> {
        self.0.retry(id)
    }

    /// Takes an output out (refused for the last one).
    pub fn remove(&self, id: &str) -> Result<(), OutputChangeError> {
        self.0.remove(id)
    }
}

/// Why a recording ended early.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("writing the FLV header")]
    Header(#[source] crate::flv::FlvError),
    #[error("write")]
    Write(#[source] crate::flv::FlvError),
    #[error("finish")]
    Finish(#[source] crate::flv::FlvError),
    /// Said apart from other write errors: the one a streamer can act on
    /// (free space, record elsewhere) while the broadcast goes on.
    #[error("the disk is full: the recording stopped there (what was written plays)")]
    DiskFull(#[source] std::io::Error),
}

impl RecordError {
    /// A write or finish error, told apart when it is a full disk.
    fn of(e: crate::flv::FlvError, other: fn(crate::flv::FlvError) -> RecordError) -> RecordError {
        match e {
            crate::flv::FlvError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => RecordError::DiskFull(io),
            e => other(e),
        }
    }
}

fn record(file: File, view: &OutputView) -> Result<(), RecordError> {
    let mut writer =
        FlvWriter::new(BufWriter::with_capacity(256 * 1024, file), true, true).map_err(|e| RecordError::of(e, RecordError::Header))?;
    view.status.set_state(OutputState::Live);
    while let Some(tag) = view.queue.pop_blocking() {
        writer.write_tag(&tag).map_err(|e| RecordError::of(e, RecordError::Write))?;
        view.status.add_bytes(tag.data.len() as u64);
    }
    writer.finish().map_err(|e| RecordError::of(e, RecordError::Finish))?;
    Ok(())
}
