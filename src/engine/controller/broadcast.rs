//! The broadcast's part: going live in explicit steps — plan, ensure the
//! sources, start the pipeline, live — each step a task whose result comes
//! back as an [`Event`]; stopping; the pre-flight check; changing the
//! outputs of the live broadcast. One broadcast at a time.
//!
//! A Stop while a go-live is still in its steps ends that attempt at once
//! (the state says Ended, nothing went out); its late result is ignored, or
//! — a pipeline that started after all — stopped on arrival.

use super::server::RunningServer;
use super::sources::Capture;
use super::{Event as ControllerEvent, Outbox, Profiles};
use crate::config::{EncodeOverrides, ProfileStore};
use crate::engine::preflight;
use crate::engine::command::BroadcastCommand;
use crate::engine::errors::{GoLiveError, OutputsError};
use crate::engine::log::LogRing;
use crate::engine::plan::{BroadcastPlan, GoLiveRequest, RunOptions};
use crate::engine::state::{BroadcastState, CheckState, OutputSnapshot};
use crate::pipeline::{Broadcast, BroadcastSummary, OutputControl, OutputSpec, OutputWatch, Stats, Stopper};
use crate::session::CaptureSession;
use crate::rtmp::RtmpUrl;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinError;

/// What the broadcast's tasks report; `attempt` names the go-live it belongs to.
pub(in crate::engine) enum Event {
    /// Step 1 done: the plan (profiles, keys, a Y4M header read).
    Planned { attempt: u64, result: Result<BroadcastPlan, GoLiveError> },
    /// Step 3 done: the pipeline started or not (and the session opened
    /// for it, when no open one fitted the plan).
    Started { attempt: u64, result: Result<(Broadcast, Option<Arc<CaptureSession>>), GoLiveError> },
    /// The live broadcast is over.
    Ended { attempt: u64, summary: BroadcastSummary },
    /// A check's destinations were planned.
    CheckPlanned { result: Result<BroadcastPlan, GoLiveError>, publish_test: Option<Duration> },
    /// Outputs were added to the live broadcast (or not, each with why).
    OutputsAdded { attempt: u64, results: Vec<Result<OutputWatch, OutputsError>> },
    /// A failed output was started again (or not).
    OutputRetried { attempt: u64, result: Result<OutputWatch, OutputsError> },
}

/// The live broadcast, as the controller holds it.
struct LiveBroadcast {
    stopper: Stopper,
    outputs: OutputControl,
    attempt: u64,
}

/// A rehearsal's own part of a go-live: the stream on the local server.
struct Rehearsal {
    stream: String,
    encode: EncodeOverrides,
    run: RunOptions,
}

/// Where a go-live is in its steps.
enum Step {
    /// A rehearsal waits for the local server to start.
    AwaitingServer(Box<Rehearsal>),
    /// Step 1: planning (profiles and keys, a Y4M header).
    Planning,
    /// Steps 2 and 3: the sources (a session attached to, or the broadcast's own) and the pipeline start.
    Starting,
}

/// A go-live under way.
struct GoingLive {
    attempt: u64,
    step: Step,
    /// The profile it goes live with: noted as the last used once live.
    profile: Option<String>,
    /// A rehearsal's stream: the viewer preview measures its latency against it.
    rehearsal_stream: Option<String>,
}

/// The broadcast's slice of state.
#[derive(Default)]
pub(super) struct OnAir {
    /// Go-lives begun so far (numbers each one).
    attempts: u64,
    going_live: Option<GoingLive>,
    live: Option<LiveBroadcast>,
}

impl OnAir {
    /// A broadcast is in its go-live steps or live.
    pub fn is_busy(&self) -> bool {
        self.going_live.is_some() || self.live.is_some()
    }

    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// A rehearsal waits for the local server.
    pub fn awaits_server(&self) -> bool {
        matches!(self.going_live, Some(GoingLive { step: Step::AwaitingServer(_), .. }))
    }

    pub fn command(&mut self, cmd: BroadcastCommand, out: &Outbox, capture: &Capture, server: &mut super::LocalServer, profiles: &Profiles) {
        match cmd {
            BroadcastCommand::GoLive(request) => {
                let Some(attempt) = self.begin(out, request.profile.clone(), None) else { return };
                let dir = profiles.dir_finder();
                out.in_order(
                    move || plan(dir, &request),
                    move |done| ControllerEvent::Broadcast(Event::Planned { attempt, result: flatten(done) }),
                );
            }
            BroadcastCommand::GoLivePlan(plan) => {
                if self.begin(out, None, None).is_some() {
                    self.start(plan, out, capture);
                }
            }
            BroadcastCommand::Rehearse { stream, mut encode, run } => {
                // A rehearsal shows what the capture session captures, at its size.
                if let Some(s) = capture.session() {
                    let f = s.format();
                    encode.size = encode.size.or(Some(crate::media::FrameSize::new(f.width, f.height)));
                    encode.fps = encode.fps.or(Some(f.fps));
                }
                if self.begin(out, None, Some(stream.clone())).is_none() {
                    return;
                }
                let rehearsal = Rehearsal { stream, encode, run };
                if let Some(running) = server.running() {
                    return self.plan_rehearsal(rehearsal, running, out);
                }
                match server.ensure_started(out) {
                    true => {
                        if let Some(g) = self.going_live.as_mut() {
                            g.step = Step::AwaitingServer(Box::new(rehearsal));
                        }
                    }
                    false => self.fail(&GoLiveError::NoServer, out),
                }
            }
            BroadcastCommand::Stop => self.stop(out),
            BroadcastCommand::Check { request, publish_test } => {
                let dir = profiles.dir_finder();
                out.in_order(
                    move || plan(dir, &request),
                    move |done| ControllerEvent::Broadcast(Event::CheckPlanned { result: flatten(done), publish_test }),
                );
            }
            BroadcastCommand::CheckPlan { plan, publish_test } => start_check(plan, publish_test, out),
            BroadcastCommand::AddOutputs { request, destination } => {
                let Some(live) = &self.live else { return out.refuse(&OutputsError::NotLive) };
                let (control, attempt, dir) = (live.outputs.clone(), live.attempt, profiles.dir_finder());
                out.in_order(
                    move || add_outputs(dir, request, destination, &control),
                    move |done| {
                        let results = done.unwrap_or_else(|e| vec![Err(OutputsError::Task(e))]);
                        ControllerEvent::Broadcast(Event::OutputsAdded { attempt, results })
                    },
                );
            }
            BroadcastCommand::RetryOutput(id) => {
                let Some(live) = &self.live else { return out.refuse(&OutputsError::NotLive) };
                let (control, attempt) = (live.outputs.clone(), live.attempt);
                // A recording's file is created again: off the runtime.
                out.blocking(
                    move || control.retry(&id).map_err(OutputsError::Retry),
                    move |done| {
                        let result = done.unwrap_or_else(|e| Err(OutputsError::Task(e)));
                        ControllerEvent::Broadcast(Event::OutputRetried { attempt, result })
                    },
                );
            }
            BroadcastCommand::RemoveOutput(id) => {
                let Some(live) = &self.live else { return out.refuse(&OutputsError::NotLive) };
                match live.outputs.remove(&id) {
                    Ok(()) => out.set(|s| s.outputs.retain(|o| o.id != id)),
                    Err(e) => out.refuse(&OutputsError::Remove(e)),
                }
            }
        }
    }

    /// Begins a go-live: its number, or `None` (refused) while another is under way or live.
    fn begin(&mut self, out: &Outbox, profile: Option<String>, rehearsal_stream: Option<String>) -> Option<u64> {
        if self.is_busy() {
            out.refuse_text("already live: stop the broadcast first".into());
            return None;
        }
        self.attempts += 1;
        let attempt = self.attempts;
        self.going_live = Some(GoingLive { attempt, step: Step::Planning, profile, rehearsal_stream });
        out.set(|s| s.broadcast = BroadcastState::Starting);
        Some(attempt)
    }

    /// The go-live under way, if it is `attempt`.
    fn current(&self, attempt: u64) -> bool {
        self.going_live.as_ref().is_some_and(|g| g.attempt == attempt)
    }

    /// A rehearsal's step 1: its destination on the local server, its settings.
    fn plan_rehearsal(&mut self, rehearsal: Rehearsal, running: &RunningServer, out: &Outbox) {
        let Some(attempt) = self.going_live.as_mut().map(|g| {
            g.step = Step::Planning;
            g.attempt
        }) else {
            return;
        };
        let Rehearsal { stream, encode, run } = rehearsal;
        let key = running.publish_key.as_ref().map(|k| format!("?key={}", k.expose())).unwrap_or_default();
        let url = match RtmpUrl::parse(&format!("rtmp://{}/live/{stream}{key}", running.handle.rtmp_addr())) {
            Ok(u) => u,
            Err(e) => return self.fail(&GoLiveError::RehearsalUrl(e), out),
        };
        // A Y4M source's header is read here: off the runtime.
        out.blocking(
            move || {
                let settings = crate::engine::plan::settings(&encode, &run).map_err(GoLiveError::Plan)?;
                let mut dest = crate::net::publisher::Destination::new(url, 0, 0);
                dest.id = Some(format!("rehearsal/{stream}"));
                Ok(BroadcastPlan { settings, outputs: vec![OutputSpec::Publish(dest)], warnings: Vec::new() })
            },
            move |done| ControllerEvent::Broadcast(Event::Planned { attempt, result: flatten(done) }),
        );
    }

    /// The local server a rehearsal waited for has started (or not).
    pub fn server_ready(&mut self, server: Result<&RunningServer, GoLiveError>, out: &Outbox) {
        let Some(g) = self.going_live.as_mut() else { return };
        let Step::AwaitingServer(_) = g.step else { return };
        let Step::AwaitingServer(rehearsal) = std::mem::replace(&mut g.step, Step::Planning) else { return };
        match server {
            Ok(running) => self.plan_rehearsal(*rehearsal, running, out),
            Err(e) => self.fail(&e, out),
        }
    }

    /// Steps 2 and 3: the sources the broadcast goes out from, then the pipeline, off the runtime.
    fn start(&mut self, plan: BroadcastPlan, out: &Outbox, capture: &Capture) {
        let Some(g) = self.going_live.as_mut() else { return };
        g.step = Step::Starting;
        let attempt = g.attempt;
        let warnings = plan.warnings.clone();
        out.set(|s| s.warnings = warnings);
        for output in &plan.outputs {
            if let OutputSpec::Publish(d) = output {
                LogRing::global().remember_secret(&d.url.stream_key);
            }
        }
        let session = session_to_attach(&plan, capture.session());
        let runtime = tokio::runtime::Handle::current();
        let (feeds, (hidden, muted)) = (capture.feeds(), capture.hidden_muted());
        out.blocking(
            move || {
                // No open session fits: one of the plan's own sources, opened
                // here (a camera takes a moment, a file's header is read).
                let (session, opened) = match session {
                    Some(s) => (s, None),
                    None => {
                        let s = CaptureSession::open(plan.settings.session_spec(), Arc::new(feeds)).map_err(GoLiveError::Sources)?;
                        s.set_hidden(hidden);
                        s.set_muted(muted);
                        let s = Arc::new(s);
                        (s.clone(), Some(s))
                    }
                };
                let broadcast = Broadcast::start(session, plan.settings, plan.outputs, &runtime).map_err(GoLiveError::Start)?;
                Ok((broadcast, opened))
            },
            move |done| ControllerEvent::Broadcast(Event::Started { attempt, result: flatten(done) }),
        );
    }

    /// Step 4: live. Its rows, its stats, its end.
    fn go_live(&mut self, broadcast: Broadcast, going: GoingLive, out: &Outbox, profiles: &Profiles) {
        let attempt = going.attempt;
        self.live = Some(LiveBroadcast { stopper: broadcast.stopper(), outputs: broadcast.outputs(), attempt });
        let now = Instant::now();
        out.set(|s| {
            s.broadcast = BroadcastState::Running { since: now };
            s.outputs.clear();
        });
        for watch in broadcast.output_states() {
            follow_output(watch, out);
        }
        if let Some(stream) = going.rehearsal_stream {
            // The viewer preview measures its latency against this stream.
            out.origin.send_replace(Some((stream, broadcast.media_origin())));
        }
        if let Some(name) = going.profile {
            profiles.remember_last_used(name, out);
        }
        let mut rx = broadcast.stats();
        let stats = out.stats.clone();
        out.task(async move {
            // Ends when the broadcast's sampler ends, after its last snapshot.
            let forward = tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    stats.send_replace(rx.borrow_and_update().clone());
                }
            });
            let summary = broadcast.wait().await;
            let _ = forward.await;
            ControllerEvent::Broadcast(Event::Ended { attempt, summary })
        });
    }

    fn stop(&mut self, out: &Outbox) {
        if let Some(live) = &self.live {
            live.stopper.stop();
            out.set(|s| s.broadcast = BroadcastState::Stopping);
        } else if let Some(g) = self.going_live.take() {
            // Nothing went out yet: over now; what the steps still do is undone on arrival.
            tracing::info!("broadcast stopped before it went live (attempt {})", g.attempt);
            let summary = BroadcastSummary { outputs: Vec::new(), stats: Stats::default(), pipeline_errors: Vec::new() };
            out.set(|s| s.broadcast = BroadcastState::Ended(Arc::new(summary)));
        }
    }

    /// At shutdown: a go-live under way is dropped, a live broadcast told to
    /// stop; true when one is live (its end is still to come).
    pub fn stop_for_shutdown(&mut self, out: &Outbox) -> bool {
        self.going_live = None;
        self.stop(out);
        self.live.is_some()
    }

    fn fail(&mut self, e: &GoLiveError, out: &Outbox) {
        self.going_live = None;
        let message = crate::error_chain(e);
        tracing::error!("{message}");
        out.set(|s| s.broadcast = BroadcastState::Failed { message });
    }

    pub fn event(&mut self, event: Event, out: &Outbox, capture: &mut Capture, profiles: &Profiles) {
        match event {
            Event::Planned { attempt, result } if self.current(attempt) => match result {
                Ok(plan) => self.start(plan, out, capture),
                Err(e) => self.fail(&e, out),
            },
            Event::Planned { attempt, .. } => tracing::debug!("plan of a stopped go-live (attempt {attempt}) dropped"),
            Event::Started { attempt, result } => match (result, self.going_live.take()) {
                (Ok((broadcast, opened)), Some(going)) if going.attempt == attempt => {
                    if let Some(session) = opened {
                        capture.adopt(session, out);
                    }
                    self.go_live(broadcast, going, out, profiles)
                }
                (Err(e), Some(going)) if going.attempt == attempt => self.fail(&e, out),
                (result, going) => {
                    self.going_live = going;
                    if let Ok((late, _)) = result {
                        tracing::info!("a broadcast stopped while it was starting has started (attempt {attempt}): ending it");
                        tokio::spawn(async move {
                            late.stop();
                            let _ = late.wait().await;
                        });
                    }
                }
            },
            Event::Ended { attempt, summary } => {
                if self.live.as_ref().is_some_and(|l| l.attempt == attempt) {
                    self.live = None;
                    out.origin.send_replace(None);
                    out.set(|s| s.broadcast = BroadcastState::Ended(Arc::new(summary)));
                }
            }
            Event::CheckPlanned { result, publish_test } => match result {
                Ok(plan) => start_check(plan, publish_test, out),
                Err(e) => out.set(|s| s.check = CheckState::Failed { message: crate::error_chain(&e) }),
            },
            Event::OutputsAdded { attempt, results } => {
                for result in results {
                    self.output_changed(attempt, result, out);
                }
            }
            Event::OutputRetried { attempt, result } => self.output_changed(attempt, result, out),
        }
    }

    fn output_changed(&self, attempt: u64, result: Result<OutputWatch, OutputsError>, out: &Outbox) {
        match result {
            Ok(watch) if self.live.as_ref().is_some_and(|l| l.attempt == attempt) => follow_output(watch, out),
            Ok(_) => {}
            Err(e) => out.refuse(&e),
        }
    }
}

/// Step 2, ensuring the sources — the one place that decides it: the
/// broadcast goes out from the running capture session when its frame
/// format is the plan's and the plan is paced (not `--fast`); otherwise a
/// session of the plan's own sources is opened for it (from their first
/// frame; unpaced with `--fast`).
fn session_to_attach(plan: &BroadcastPlan, session: Option<&Arc<CaptureSession>>) -> Option<Arc<CaptureSession>> {
    let s = plan.settings.clone();
    session
        .filter(|session| {
            let f = session.format();
            (f.width, f.height, f.fps) == (s.width, s.height, s.fps) && !s.fast
        })
        .cloned()
}

/// A request planned (blocking: profiles are files, keys the keyring).
fn plan(dir: impl FnOnce() -> Result<std::path::PathBuf, crate::config::ConfigError>, request: &GoLiveRequest) -> Result<BroadcastPlan, GoLiveError> {
    let dir = dir().map_err(GoLiveError::ConfigDir)?;
    BroadcastPlan::go_live(request, &ProfileStore::open(&dir)).map_err(GoLiveError::Plan)
}

fn flatten<T>(done: Result<Result<T, GoLiveError>, JoinError>) -> Result<T, GoLiveError> {
    done.unwrap_or_else(|e| Err(GoLiveError::Task(e)))
}

/// Plans the added destinations and adds each (blocking: keys, a recording's file).
fn add_outputs(
    dir: impl FnOnce() -> Result<std::path::PathBuf, crate::config::ConfigError>,
    request: GoLiveRequest,
    destination: Option<String>,
    control: &OutputControl,
) -> Vec<Result<OutputWatch, OutputsError>> {
    let record = request.record.is_some();
    let wanted = destination.as_ref().zip(request.profile.as_ref()).map(|(d, p)| format!("{p}/{d}"));
    let plan = match plan(dir, &request) {
        Ok(plan) => plan,
        Err(e) => return vec![Err(OutputsError::Plan(e))],
    };
    let specs: Vec<OutputSpec> = plan
        .outputs
        .into_iter()
        .filter(|o| match o {
            OutputSpec::Record(_) => record,
            OutputSpec::Publish(d) => match (&wanted, &d.id) {
                (Some(w), Some(id)) => w == id,
                (Some(_), None) | (None, _) => true,
            },
        })
        .collect();
    if let (Some(w), true) = (wanted, specs.is_empty()) {
        return vec![Err(OutputsError::NoSuchDestination(w))];
    }
    specs
        .into_iter()
        .map(|spec| {
            if let OutputSpec::Publish(d) = &spec {
                LogRing::global().remember_secret(&d.url.stream_key);
            }
            control.add(spec).map_err(OutputsError::Add)
        })
        .collect()
}

/// Checks each destination in a task of its own: the controller keeps taking commands meanwhile.
fn start_check(plan: BroadcastPlan, publish_test: Option<Duration>, out: &Outbox) {
    for output in &plan.outputs {
        if let OutputSpec::Publish(d) = output {
            LogRing::global().remember_secret(&d.url.stream_key);
        }
    }
    let targets = preflight::destinations(&plan, publish_test);
    let notices: Vec<String> = targets.iter().filter_map(|(_, n)| n.clone()).collect();
    let total = targets.len();
    out.set(|s| s.check = CheckState::Running { done: Vec::new(), total, notices });
    let state = out.state.clone();
    tokio::spawn(async move {
        let mut done = Vec::new();
        for (dest, _) in targets {
            let report = preflight::run(dest, &plan, publish_test).await;
            done.push(report);
            let so_far = done.clone();
            state.send_modify(|s| {
                if let CheckState::Running { done, .. } = &mut s.check {
                    *done = so_far;
                }
            });
        }
        state.send_modify(|s| s.check = CheckState::Done(done));
    });
}

/// Lists an output (or its new start, for a retry) and keeps its row
/// up to date as its state changes.
fn follow_output(mut watch: OutputWatch, out: &Outbox) {
    let now = Instant::now();
    let snapshot = OutputSnapshot { id: watch.id.clone(), name: watch.name.clone(), kind: watch.kind, state: watch.state.borrow().clone(), since: now };
    out.set(|s| match s.outputs.iter_mut().find(|o| o.id == snapshot.id) {
        Some(o) => *o = snapshot,
        None => s.outputs.push(snapshot),
    });
    let state = out.state.clone();
    tokio::spawn(async move {
        while watch.state.changed().await.is_ok() {
            let new = watch.state.borrow_and_update().clone();
            state.send_modify(|s| {
                if let Some(o) = s.outputs.iter_mut().find(|o| o.id == watch.id) {
                    o.state = new;
                    o.since = Instant::now();
                }
            });
        }
    });
}
