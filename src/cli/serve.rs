//! `tally serve`: the rehearsal server, until Ctrl-C.

use anyhow::Context;
use clap::Args;
use tally::engine::{Engine, EngineOptions, ServerCommand, ServerState};
use tally::net::server::ServerConfig;

/// `tally serve`'s options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// RTMP address to listen on (loopback by default; other addresses only when asked).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1935")]
    listen: std::net::SocketAddr,
    /// HTTP-FLV and /api/streams address, or "none".
    #[arg(long, value_name = "ADDR|none", default_value = "127.0.0.1:8080", value_parser = parse_http)]
    http: HttpListen,
    /// Require this key to publish (as ?key=KEY on the stream name, or a -KEY suffix).
    /// Prefer the TALLY_PUBLISH_KEY environment variable: arguments are visible to other users.
    #[arg(long = "publish-key", value_name = "KEY", env = "TALLY_PUBLISH_KEY", hide_env_values = true)]
    publish_key: Option<super::SecretArg>,
    /// Most RTMP + HTTP connections at once.
    #[arg(long = "max-connections", value_name = "N", default_value_t = tally::net::server::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_connections: u64,
    /// Most connections at once from one client address (refused beyond, with the reason).
    #[arg(long = "max-per-address", value_name = "N", default_value_t = tally::net::server::DEFAULT_MAX_PER_ADDRESS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_per_address: u64,
    /// Apply --max-per-address to loopback clients too (by default they are
    /// not limited: every local player shares 127.0.0.1).
    #[arg(long = "limit-loopback")]
    limit_loopback: bool,
    /// Refuse a second publisher for a live stream instead of letting it take over.
    #[arg(long = "no-takeover")]
    no_takeover: bool,
    /// Network threads. One serves well over a gigabit of fan-out with the
    /// lowest CPU per byte (no cross-thread wake-ups); more spread a very
    /// large audience over cores.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

/// `--http`: an address, or off.
#[derive(Clone, Debug)]
struct HttpListen(Option<std::net::SocketAddr>);

fn parse_http(s: &str) -> Result<HttpListen, String> {
    if s == "none" || s == "off" {
        return Ok(HttpListen(None));
    }
    s.parse().map(|a| HttpListen(Some(a))).map_err(|_| format!("'{s}' is not an address like 127.0.0.1:8080 (or none)"))
}

/// Runs the server on the engine until Ctrl-C.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        rtmp_listen: args.listen,
        http_listen: args.http.0,
        publish_key: args.publish_key.filter(|k| !k.0.is_empty()).map(|k| tally::rtmp::StreamKey::new(k.0)),
        max_connections: args.max_connections as usize,
        max_per_address: args.max_per_address as usize,
        limit_loopback: args.limit_loopback,
        takeover: !args.no_takeover,
    };
    let keyed = config.publish_key.is_some();
    let options = EngineOptions { net_threads: args.threads, server: config.clone(), ..EngineOptions::default() };
    let engine = Engine::start(options).context("starting the network runtime")?;
    engine.send(ServerCommand::Start(config))?;
    let mut state = engine.state();
    let result = engine.runtime().block_on(async move {
        let started = state.wait_for(|s| matches!(s.server, ServerState::Running { .. } | ServerState::Failed { .. })).await;
        let (rtmp, http) = match started.map(|s| s.server.clone()) {
            Ok(ServerState::Running { rtmp, http }) => (rtmp, http),
            Ok(ServerState::Failed { message }) => anyhow::bail!("{message}"),
            _ => anyhow::bail!("the engine stopped before the server started"),
        };
        let key_hint = if keyed { "?key=KEY" } else { "" };
        say!("Tally server ready.");
        say!("  publish: rtmp://{rtmp}/live/NAME{key_hint}   (e.g. tally stream rtmp://{rtmp}/live/test{key_hint})");
        say!("  watch:   ffplay rtmp://{rtmp}/live/NAME");
        if let Some(http) = http {
            say!("  watch:   ffplay http://{http}/live/NAME.flv   (browsers: mpegts.js / flv.js)");
            say!("  streams: http://{http}/api/streams");
        }
        say!("Ctrl-C stops.");
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        tracing::info!("stopping the server");
        Ok(())
    });
    // Shutting down stops the server: every connection closed, tasks joined.
    engine.shutdown();
    result
}
