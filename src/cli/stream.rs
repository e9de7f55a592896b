//! `tally stream` and `tally record`: run a broadcast from the terminal.

use super::control;
use super::media::{MediaArgs, RunArgs};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tally::config::{self, ProfileStore};
use tally::engine::{BroadcastCommand, BroadcastPlan, BroadcastState, Command, Engine, EngineOptions, EngineState, GoLiveRequest};
use tally::net::OutputState;
use tally::pipeline::{OutputKind, OutputSpec, Stats};

/// A mistake in the arguments (exit status 2, like clap's own).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `tally stream`'s options.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Destination URLs, rtmp[s]://host[:port]/app[/instance]/KEY: the last
    /// path segment is the stream key. Added to the profile's destinations.
    #[arg(value_name = "URL")]
    urls: Vec<super::SecretArg>,
    /// Go live with a saved profile (tally profiles list): its destinations,
    /// keys and settings; options given here override its settings.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Also record to this FLV file (overwritten), continuous through network faults.
    #[arg(long, value_name = "FILE.flv")]
    record: Option<PathBuf>,
    /// Trust this PEM file of CA certificates for rtmps:// (besides the system's),
    /// for destinations that do not name their own.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    media: MediaArgs,
}

/// `tally stream`.
pub fn stream(args: StreamArgs) -> anyhow::Result<bool> {
    let urls = super::destination_urls(&args.urls, args.profile.as_deref())?;
    let request = GoLiveRequest {
        profile: args.profile,
        urls,
        record: args.record,
        ca_file: args.ca_file,
        encode: args.media.encode.overrides(),
        run: args.media.run.options()?,
    };
    let plan = BroadcastPlan::go_live(&request, &ProfileStore::open(&config::config_dir()?)).map_err(super::advice::plan_error)?;
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(OutputSpec::Record(file)) = plan.outputs.last() {
        tracing::info!(file = %file.display(), "recording locally as well");
    }
    run_broadcast(plan, &args.media.run)
}

/// `tally record FILE.flv`.
pub fn record(file: PathBuf, media: &MediaArgs) -> anyhow::Result<bool> {
    let plan = BroadcastPlan::record(file, &media.encode.overrides(), &media.run.options()?).map_err(super::advice::plan_error)?;
    run_broadcast(plan, &media.run)
}

/// Runs a broadcast on the engine until it ends (`--duration`, a file
/// source's end, all outputs failed), Ctrl-C or `stop`; a second Ctrl-C
/// quits at once.
///
/// The sources run in a capture session the engine opens for the plan, as
/// the app's do; unless stdin is /dev/null, commands typed on it while live
/// add, retry and remove destinations, mute, hide, switch sources, list and
/// stop (see [`super::control`]).
fn run_broadcast(plan: BroadcastPlan, run: &RunArgs) -> anyhow::Result<bool> {
    let engine = Engine::start(EngineOptions::default()).context("starting the network runtime")?;
    let interactive = control::stdin_may_have_commands();
    engine.send(BroadcastCommand::GoLivePlan(plan))?;
    if interactive {
        let reader = control::Control { commands: engine.command_sender(), state: engine.state(), stats: engine.stats() };
        if let Err(e) = control::spawn_reader(reader) {
            tracing::warn!("no live commands from stdin: {e}");
        }
    }
    let (print_stats, print_json) = (run.stats, run.stats_json);
    let mut state = engine.state();
    let mut stats = engine.stats();
    let stopper = engine.command_sender();
    let outcome = engine.runtime().block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Stopping: finishing the outputs cleanly (Ctrl-C again to quit at once)");
                let _ = stopper.try_send(Command::Broadcast(BroadcastCommand::Stop));
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        // Prints each snapshot until the broadcast is over; the engine hands
        // over the last one before it says so, so it is never lost.
        let print = |stats: &Stats| {
            if print_json {
                let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
                let mut doc = serde_json::to_value(stats).unwrap_or_default();
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("wall".into(), serde_json::json!(wall));
                }
                say!("{doc}");
            } else if print_stats {
                say!("{}", stats.line());
            }
        };
        let mut reporter = Reporter { outputs: interactive, ..Reporter::default() };
        loop {
            {
                let now = state.borrow_and_update();
                reporter.report(&now);
                if now.broadcast.is_over() {
                    let over = now.broadcast.clone();
                    drop(now);
                    if stats.has_changed().unwrap_or(false) {
                        print(&stats.borrow_and_update().clone());
                    }
                    return over;
                }
            }
            tokio::select! {
                changed = stats.changed() => {
                    if changed.is_ok() {
                        print(&stats.borrow_and_update().clone());
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        // The engine is gone without saying the broadcast was over.
                        return BroadcastState::default();
                    }
                }
            }
        }
    });
    engine.shutdown();
    let summary = match outcome {
        BroadcastState::Ended(summary) => summary,
        BroadcastState::Failed { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("the broadcast ended unexpectedly ({other:?})"),
    };
    for e in &summary.pipeline_errors {
        eprintln!("error: {}", tally::error_chain(e));
    }
    // Failures were reported when they happened; name them once more in
    // a multi-output run so the end of the log tells the whole story.
    let failed: Vec<&str> = summary.outputs.iter().filter(|o| o.error.is_some()).map(|o| o.name.as_str()).collect();
    for o in summary.outputs.iter().filter(|o| o.error.is_none()) {
        let what = if o.kind == OutputKind::Record { "recorded" } else { "finished" };
        tracing::info!(output = %o.name, bytes = o.bytes_out, "{what}");
    }
    if !failed.is_empty() && summary.outputs.len() > 1 {
        eprintln!("{} of {} outputs did not finish cleanly: {}", failed.len(), summary.outputs.len(), failed.join(", "));
    }
    Ok(summary.all_ok())
}

/// Tells the person, on stderr, what changed that they may act on: each
/// refusal of a command once, and (with live commands) each output's id as
/// it is added, goes live, fails or is removed — the ids `retry` and
/// `remove` take.
#[derive(Default)]
struct Reporter {
    /// Report outputs (only when commands can be typed: the log says the rest).
    outputs: bool,
    /// Each output's id and the state last seen.
    seen: Vec<(String, std::mem::Discriminant<OutputState>)>,
    /// When the refusal last printed was made.
    refused_at: Option<Instant>,
}

impl Reporter {
    fn report(&mut self, state: &EngineState) {
        if let Some(r) = &state.refused
            && self.refused_at != Some(r.at)
        {
            self.refused_at = Some(r.at);
            eprintln!("refused: {}", r.message);
        }
        if !self.outputs {
            return;
        }
        let mut seen = Vec::with_capacity(state.outputs.len());
        for o in &state.outputs {
            let phase = std::mem::discriminant(&o.state);
            let before = self.seen.iter().find(|(id, _)| *id == o.id).map(|(_, p)| *p);
            if before.is_none() {
                eprintln!("output {} added: {}", o.id, o.name);
            }
            if before != Some(phase) {
                match &o.state {
                    OutputState::Live => eprintln!("output {} is live: {}", o.id, o.name),
                    OutputState::Failed { .. } => eprintln!("output {} {} (type `retry {}` to start it again)", o.id, o.state, o.id),
                    _ => {}
                }
            }
            seen.push((o.id.clone(), phase));
        }
        for (id, _) in self.seen.iter().filter(|(id, _)| !state.outputs.iter().any(|o| o.id == *id)) {
            eprintln!("output {id} removed");
        }
        self.seen = seen;
    }
}
