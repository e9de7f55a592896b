//! A late joiner's wait for its first picture: `tally serve` (GOP cache)
//! and nginx-rtmp (none) side by side in the same run, each fed the same
//! kind of stream by `tally stream` (1280x720 test pattern, keyframe every
//! 2 s). Each join is timed from the player's TCP connect to its first
//! decoded picture (openh264), joins spread over the GOP.
//!
//! `cargo bench --bench late_join` prints a Markdown table for
//! docs/PERFORMANCE.md (`JOINS=N` joins per server, default 12). Under
//! `cargo test` it runs one join against `tally serve` and checks that a
//! picture arrived — `tests/it/server_behaviour.rs` judges what arrives; this
//! only measures how fast.

#[path = "../tests/common/mod.rs"]
mod common;

use common::rtmp_client::{runtime, time_to_first_picture};
use common::{Nginx, TallyServer, spawn_tally};
use std::time::Duration;

fn stats(ms: &mut [f64]) -> String {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    format!("{:.0} | {:.0} | {:.0} | {:.0}", ms[0], pct(0.5), pct(0.9), ms[ms.len() - 1])
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let joins: usize = if full { std::env::var("JOINS").ok().and_then(|j| j.parse().ok()).unwrap_or(12) } else { 1 };
    let rt = runtime();
    let server = TallyServer::start(&[]);
    let url = server.url("late");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--duration", "600"]);
    server.wait_live("late", &publisher, Duration::from_secs(20));
    let mut targets = vec![("tally serve", url)];
    let nginx = full.then(Nginx::start);
    let _relay = nginx.as_ref().map(|n| {
        let nurl = n.url("late");
        let relay = spawn_tally(&["stream", &nurl, "--video", "test", "--audio", "sine", "--duration", "600"]);
        n.wait_publishing("late", &relay, Duration::from_secs(20));
        targets.push(("nginx-rtmp", nurl));
        relay
    });
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for i in 0..joins {
        // Spread the joins over the 2 s GOP: 0, 170, 340 ... ms after the
        // previous picture arrived, alternating which server goes first.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis((i as u64 * 170) % 2000)).await });
        for k in 0..targets.len() {
            let k = (k + i) % targets.len();
            let (name, url) = &targets[k];
            let (took, size) = rt.block_on(time_to_first_picture(url, Duration::from_secs(15))).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(size, (1280, 720), "{name}: picture size");
            results[k].push(took.as_secs_f64() * 1000.0);
        }
    }
    if !full {
        println!("late_join smoke: a picture after {:.0} ms from tally serve", results[0][0]);
        return;
    }
    println!("| server | joins | first picture, min | median | p90 | max (ms) |");
    println!("|---|---|---|---|---|---|");
    for (k, (name, _)) in targets.iter().enumerate() {
        println!("| {name} | {joins} | {} |", stats(&mut results[k]));
    }
}
