//! `tally check`: the pre-flight check of a profile's destinations and/or
//! URLs, on the engine.

use super::media::EncodeArgs;
use anyhow::Context;
use clap::Args;
use std::time::Duration;
use tally::config::{self, ProfileStore};
use tally::engine::{BroadcastCommand, BroadcastPlan, CheckState, Engine, EngineOptions, GoLiveRequest, check};

/// `tally check`'s options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Destination URLs (the last path segment is the stream key).
    #[arg(value_name = "URL")]
    urls: Vec<super::SecretArg>,
    /// Check a saved profile's destinations (with their keys).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Trust this PEM file of CA certificates for rtmps:// (besides the system's).
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// Then publish the test pattern at the profile's bitrate for SECS seconds
    /// and report the sustained upload rate. Twitch: in its bandwidth-test
    /// mode (nothing goes on air); anywhere else the test GOES LIVE.
    #[arg(long = "publish-test", value_name = "SECS", value_parser = parse_secs)]
    publish_test: Option<Duration>,
    /// One JSON object per destination per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    encode: EncodeArgs,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: u64 = s.parse().map_err(|_| format!("'{s}' is not a whole number of seconds"))?;
    if !(2..=600).contains(&v) {
        return Err(format!("{v} is outside 2..=600 seconds"));
    }
    Ok(Duration::from_secs(v))
}

/// Runs the check; `Ok(true)` when every destination passed.
pub fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let urls = super::destination_urls(&args.urls, args.profile.as_deref())?;
    let request = GoLiveRequest { profile: args.profile, urls, ca_file: args.ca_file, encode: args.encode.overrides(), ..Default::default() };
    let plan = BroadcastPlan::go_live(&request, &ProfileStore::open(&config::config_dir()?))?;
    // Said plainly before anything is published.
    for (_, notice) in check::destinations(&plan, args.publish_test) {
        if let Some(n) = notice {
            eprintln!("note: {n}");
        }
    }
    let engine = Engine::start(EngineOptions::default()).context("starting the network runtime")?;
    engine.send(BroadcastCommand::CheckPlan { plan, publish_test: args.publish_test })?;
    let mut state = engine.state();
    let json = args.json;
    let reports = engine.runtime().block_on(async move {
        let mut printed = 0;
        loop {
            let check = state.borrow_and_update().check.clone();
            let (done, finished) = match check {
                CheckState::Running { done, .. } => (done, false),
                CheckState::Done(done) => (done, true),
                CheckState::Failed { message } => anyhow::bail!("{message}"),
                CheckState::Idle => (Vec::new(), false),
            };
            for r in &done[printed..] {
                if json {
                    say!("{}", r.json());
                } else {
                    say!("{}", r.line());
                }
            }
            printed = done.len();
            if finished {
                return Ok(done);
            }
            if state.changed().await.is_err() {
                anyhow::bail!("the engine stopped during the check");
            }
        }
    });
    engine.shutdown();
    let reports = reports?;
    Ok(!reports.is_empty() && reports.iter().all(|r| r.ok))
}
