//! Fan-out: one 2.5 Mbit/s publisher, N players, `tally serve` and
//! nginx-rtmp side by side in the same run.
//!
//! A load generator of our own (Tally's RTMP client) publishes a real
//! 2.5 Mbit/s H.264 + AAC recording (made once by ffmpeg, CBR), paced in
//! real time and looped, noting when each video frame was sent; N player
//! connections count bytes and look each received frame up to measure
//! publisher-send → player-receive latency. The server process's CPU time
//! (utime + stime) and peak RSS come from /proc. A few ffmpeg players run
//! alongside as a sanity check that what is delivered plays.
//!
//! The load generator shares the machine's two cores with the server, so
//! its own CPU time is reported beside the server's, and so is how many
//! players were actually receiving during the measurement. The two servers
//! take turns going first, and each configuration is measured `SAMPLES`
//! times (default 3): the table gives the median and the range.
//!
//! `cargo bench --bench fanout` runs 50, 200 and 500 players for 10 s each
//! against both servers and prints a Markdown table for docs/PERFORMANCE.md.
//! Under `cargo test` (no `--bench` argument) it runs a 5-player smoke
//! version against `tally serve` only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use tally::flv::{FlvReader, FlvTag, TagType};
use common::{NginxConfig, Proc, TallyServer, require};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tally::net::rtmp_player::RtmpPlayer;
use tally::net::client_setup;
use tally::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Seconds of media in the recording that is looped.
const CLIP_SECS: u32 = 10;

struct Totals {
    bytes: AtomicU64,
    /// Players that received data while measuring.
    live_players: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u32>>,
    /// When each video frame (by RTMP timestamp) was handed to the socket.
    sent: std::sync::Mutex<HashMap<u32, Instant>>,
}

/// Makes the 2.5 Mbit/s CBR clip with ffmpeg (libx264 + aac) once per run.
fn make_clip(dir: &std::path::Path) -> Vec<FlvTag> {
    let path = dir.join("clip.flv");
    let status = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &CLIP_SECS.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-b:v", "2372k", "-minrate", "2372k", "-maxrate", "2372k"])
        .args(["-bufsize", "2372k", "-x264-params", "nal-hrd=cbr:force-cfr=1", "-g", "60", "-bf", "0"])
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv"])
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make the clip");
    let bytes = std::fs::read(&path).expect("read clip");
    FlvReader::read_all(bytes).expect("parse clip")
}

/// Publishes the clip in real time, looped with continuous timestamps, until `stop`.
async fn publish(url: RtmpUrl, clip: Arc<Vec<FlvTag>>, totals: Arc<Totals>, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<(), String> {
    let mut tcp = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut s = ClientSession::new(ClientConfig::from_url(&url), 1, 0);
    let events = client_setup::drive_until(&mut s, &mut tcp, client_setup::publish_started).await.map_err(|e| tally::error_chain(&e))?;
    if let Some(ClientEvent::Rejected { code, .. }) = events.iter().find(|e| matches!(e, ClientEvent::Rejected { .. })) {
        return Err(format!("publish rejected: {code}"));
    }
    let kind = |t: &FlvTag| match t.tag_type {
        TagType::Audio => MediaKind::Audio,
        TagType::Video => MediaKind::Video,
        TagType::Script => MediaKind::Data,
    };
    let config = |t: &FlvTag| t.tag_type == TagType::Script || t.data.get(1) == Some(&0);
    // Metadata and sequence headers once, then the media on a loop.
    for t in clip.iter().filter(|t| config(t)) {
        let body = if t.tag_type == TagType::Script { tally::flv::set_data_frame(&t.data) } else { t.data.clone() };
        s.send_media(kind(t), 0, body.clone()).map_err(|e| e.to_string())?;
    }
    let media: Vec<&FlvTag> = clip.iter().filter(|t| !config(t)).collect();
    let origin = tokio::time::Instant::now();
    let mut scratch = [0u8; 4096];
    for round in 0u32.. {
        for t in &media {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let ts = t.timestamp_ms + round * CLIP_SECS * 1000;
            tokio::time::sleep_until(origin + Duration::from_millis(u64::from(ts))).await;
            s.send_media(kind(t), ts, t.data.clone()).map_err(|e| e.to_string())?;
            tcp.write_all(&s.take_outbound()).await.map_err(|e| e.to_string())?;
            if t.tag_type == TagType::Video {
                let mut sent = totals.sent.lock().unwrap_or_else(|e| e.into_inner());
                sent.insert(ts, Instant::now());
                sent.retain(|&k, _| ts.wrapping_sub(k) < 10_000);
            }
            // Acknowledgements and pings from the server.
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, tcp.read(&mut scratch)).await {
                if n == 0 {
                    return Err("server closed".into());
                }
                s.handle_input(&scratch[..n]).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// How the players read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readers {
    /// Everything the socket has, the moment it arrives.
    Fast,
    /// At most [`SLOW_READ`] bytes per wake-up, yielding before each read:
    /// viewers behind slow or bursty links, whose sockets are often full.
    Slow,
}

/// Bytes a slow reader takes per wake-up.
const SLOW_READ: usize = 4096;

impl Readers {
    fn name(self) -> &'static str {
        match self {
            Readers::Fast => "fast",
            Readers::Slow => "slow",
        }
    }
}

/// Plays until aborted; counts bytes and video latency while `measuring`.
async fn play(url: RtmpUrl, readers: Readers, totals: Arc<Totals>, measuring: Arc<std::sync::atomic::AtomicBool>) -> Result<(), String> {
    let mut p = RtmpPlayer::connect(&url).await.map_err(|e| tally::error_chain(&e))?;
    if readers == Readers::Slow {
        p.set_read_limit(Some(SLOW_READ));
    }
    let mut last_bytes = 0;
    let mut lat = Vec::new();
    let mut counted = false;
    loop {
        let ev = match p.next_event().await {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        let now = Instant::now();
        let m = measuring.load(Ordering::Relaxed);
        if m
            && let ClientEvent::Media { kind: MediaKind::Video, timestamp, payload } = &ev
            && payload.get(1) == Some(&1)
            && let Some(sent) = totals.sent.lock().unwrap_or_else(|e| e.into_inner()).get(timestamp).copied()
        {
            lat.push(now.saturating_duration_since(sent).as_micros() as u32);
        }
        let b = p.bytes_in();
        if m {
            totals.bytes.fetch_add(b - last_bytes, Ordering::Relaxed);
            if !counted && b > last_bytes {
                counted = true;
                totals.live_players.fetch_add(1, Ordering::Relaxed);
            }
        }
        last_bytes = b;
        if lat.len() >= 16 {
            totals.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).extend(lat.drain(..));
        }
    }
    totals.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).extend(lat.drain(..));
    Ok(())
}

/// A process and its children (nginx's master and workers).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(dir) = std::fs::read_dir("/proc") else { return pids };
    for entry in dir.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let ppid = stat.rsplit_once(") ").and_then(|x| x.1.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// CPU seconds of a process and its children.
fn tree_cpu_secs(pid: u32) -> f64 {
    process_tree(pid).into_iter().map(cpu_secs).sum()
}

/// Peak resident set of a process and its children, MiB.
fn tree_peak_rss_mib(pid: u32) -> f64 {
    process_tree(pid).into_iter().map(peak_rss_mib).sum()
}

/// CPU seconds (utime + stime) of a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let hz = 100.0; // USER_HZ on Linux
    ticks / hz
}

/// Peak resident set of a process, MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Result_ {
    players: usize,
    readers: Readers,
    threads: usize,
    /// Players that received data during the measurement.
    live: u64,
    gbit: f64,
    cpu: f64,
    /// The load generator's (this process's) CPU seconds meanwhile.
    generator_cpu: f64,
    rss: f64,
    p50_us: u32,
    p99_us: u32,
    errors: usize,
}

fn run(clip: &Arc<Vec<FlvTag>>, server_pid: u32, url_text: &str, shape: Shape, warmup: Duration, measure: Duration, ffmpeg_players: usize) -> Result_ {
    let Shape { players, readers, threads } = shape;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let url = RtmpUrl::parse(url_text).expect("url");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let totals = Arc::new(Totals {
        bytes: AtomicU64::new(0),
        live_players: AtomicU64::new(0),
        latencies_us: std::sync::Mutex::new(Vec::new()),
        sent: std::sync::Mutex::new(HashMap::new()),
    });
    let publisher = rt.spawn(publish(url.clone(), clip.clone(), totals.clone(), stop.clone()));
    // Players may join before the publisher is up: both servers hold them.
    let tasks: Vec<_> = (0..players).map(|_| rt.spawn(play(url.clone(), readers, totals.clone(), measuring.clone()))).collect();
    let ff: Vec<Proc> = (0..ffmpeg_players)
        .map(|_| {
            Proc::spawn(
                "ffmpeg player",
                Command::new(require("ffmpeg")).args(["-hide_banner", "-nostdin", "-v", "error", "-i", url_text, "-t", "5", "-c", "copy", "-f", "null", "-"]),
            )
        })
        .collect();
    rt.block_on(async { tokio::time::sleep(warmup).await });
    let cpu0 = tree_cpu_secs(server_pid);
    let gen0 = cpu_secs(std::process::id());
    measuring.store(true, Ordering::Relaxed);
    rt.block_on(async { tokio::time::sleep(measure).await });
    measuring.store(false, Ordering::Relaxed);
    let cpu = tree_cpu_secs(server_pid) - cpu0;
    let generator_cpu = cpu_secs(std::process::id()) - gen0;
    let rss = tree_peak_rss_mib(server_pid);
    stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    let mut errors = 0;
    rt.block_on(async {
        if let Ok(Err(e)) = publisher.await {
            eprintln!("publisher error: {e}");
            errors += 1;
        }
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                eprintln!("player error: {e}");
                errors += 1;
            }
        }
    });
    for p in &ff {
        if !p.wait_timeout(Duration::from_secs(30)).is_some_and(|s| s.success()) {
            eprintln!("ffmpeg player failed: {}", p.describe());
            errors += 1;
        }
    }
    let bits = totals.bytes.load(Ordering::Relaxed) as f64 * 8.0;
    let mut lat = std::mem::take(&mut *totals.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    let live = totals.live_players.load(Ordering::Relaxed);
    Result_ { players, readers, threads, live, gbit: bits / 1e9, cpu, generator_cpu, rss, p50_us: pct(0.5), p99_us: pct(0.99), errors }
}

fn row(server: &str, r: &Result_, secs: f64) -> String {
    format!(
        "| {server} | {} | {} | {} ({} live) | {:.2} | {:.2} s | {:.2} s | {:.2} s | {:.1} MiB | {:.2} ms | {:.2} ms |{}",
        r.readers.name(),
        r.threads,
        r.players,
        r.live,
        r.gbit / secs,
        r.cpu,
        r.cpu / r.gbit.max(1e-9),
        r.generator_cpu,
        r.rss,
        f64::from(r.p50_us) / 1000.0,
        f64::from(r.p99_us) / 1000.0,
        if r.errors > 0 { format!(" {} errors", r.errors) } else { String::new() }
    )
}

/// Median and range of `f` over the samples, formatted with `unit`.
fn spread(samples: &[Result_], unit: &str, f: impl Fn(&Result_) -> f64) -> String {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    format!("{median:.2}{unit} ({:.2}–{:.2})", v[0], v[v.len() - 1])
}

/// One row per server and size: medians over the samples, ranges in brackets.
fn summary_row(server: &str, samples: &[Result_], secs: f64) -> String {
    let live_min = samples.iter().map(|r| r.live).min().unwrap_or(0);
    let errors: usize = samples.iter().map(|r| r.errors).sum();
    format!(
        "| {server} | {} | {} | {} (≥ {live_min} live) | {} | {} | {} | {} | {} | {} | {} |{}",
        samples[0].readers.name(),
        samples[0].threads,
        samples[0].players,
        spread(samples, " Gbit/s", |r| r.gbit / secs),
        spread(samples, " s", |r| r.cpu),
        spread(samples, " s", |r| r.cpu / r.gbit.max(1e-9)),
        spread(samples, " s", |r| r.generator_cpu),
        spread(samples, " MiB", |r| r.rss),
        spread(samples, " ms", |r| f64::from(r.p50_us) / 1000.0),
        spread(samples, " ms", |r| f64::from(r.p99_us) / 1000.0),
        if errors > 0 { format!(" {errors} errors") } else { String::new() }
    )
}

/// One configuration of the benchmark.
#[derive(Clone, Copy, Debug)]
struct Shape {
    players: usize,
    readers: Readers,
    /// Server threads: `tally serve --threads N`, nginx `worker_processes N`.
    threads: usize,
}

/// A comma-separated list from the environment, or the default.
fn list<T: std::str::FromStr + Clone>(var: &str, default: &[T]) -> Vec<T> {
    match std::env::var(var) {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn main() {
    // Load only, against a server already running (for profiling it):
    // FANOUT_URL=rtmp://... FANOUT_PID=... FANOUT_PLAYERS=200 FANOUT_READERS=slow
    let slow_env = std::env::var("FANOUT_READERS").is_ok_and(|r| r.trim() == "slow");
    if let (Ok(url), Ok(pid)) = (std::env::var("FANOUT_URL"), std::env::var("FANOUT_PID")) {
        let players = std::env::var("FANOUT_PLAYERS").ok().and_then(|p| p.parse().ok()).unwrap_or(200);
        let dir = common::TestDir::new("fanout");
        let clip = Arc::new(make_clip(dir.path()));
        let readers = if slow_env { Readers::Slow } else { Readers::Fast };
        let shape = Shape { players, readers, threads: 0 };
        let r = run(&clip, pid.parse().unwrap_or(0), &url, shape, Duration::from_secs(3), Duration::from_secs(10), 0);
        println!("{}", row("external", &r, 10.0));
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        // Smoke run under `cargo test`: the generator and the server work
        // together, with readers of both kinds.
        let dir = common::TestDir::new("fanout");
        let clip = Arc::new(make_clip(dir.path()));
        for readers in [Readers::Fast, Readers::Slow] {
            let server = TallyServer::start(&[]);
            let shape = Shape { players: 5, readers, threads: 1 };
            let r = run(&clip, server.proc().pid(), &server.url("bench"), shape, Duration::from_secs(1), Duration::from_secs(2), 1);
            assert!(r.gbit > 0.0 && r.errors == 0 && r.p50_us > 0, "smoke run ({readers:?}) delivered nothing: {:.4} Gbit, {} errors, p50 {} us", r.gbit, r.errors, r.p50_us);
            println!("fanout smoke ({readers:?} readers): 5 players, {:.3} Gbit in 2 s, p50 {} us", r.gbit, r.p50_us);
        }
        return;
    }
    let (warmup, measure) = (Duration::from_secs(3), Duration::from_secs(10));
    let samples: usize = std::env::var("SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let sizes: Vec<usize> = list("FANOUT_SIZES", &[50, 200, 500]);
    let thread_counts: Vec<usize> = list("FANOUT_THREADS", &[1, 2]);
    let readers: Vec<Readers> = match std::env::var("FANOUT_READERS").as_deref() {
        Ok("fast") => vec![Readers::Fast],
        Ok("slow") => vec![Readers::Slow],
        _ => vec![Readers::Fast, Readers::Slow],
    };
    let dir = common::TestDir::new("fanout");
    let clip = Arc::new(make_clip(dir.path()));
    let mut lines = Vec::new();
    let mut turn = 0usize;
    for &threads in &thread_counts {
        for &reading in &readers {
            for &players in &sizes {
                let shape = Shape { players, readers: reading, threads };
                let mut ours = Vec::new();
                let mut theirs = Vec::new();
                for _ in 0..samples {
                    // The servers take turns going first.
                    for k in 0..2 {
                        let ffmpeg_players = if players == 50 { 3 } else { 0 };
                        if (k + turn).is_multiple_of(2) {
                            let t = threads.to_string();
                            let server = TallyServer::start(&["--max-connections", "2000", "--threads", &t]);
                            let r = run(&clip, server.proc().pid(), &server.url("bench"), shape, warmup, measure, ffmpeg_players);
                            eprintln!("{}", row("tally serve", &r, measure.as_secs_f64()));
                            ours.push(r);
                        } else {
                            let nginx = NginxConfig::new().workers(threads).start();
                            let r = run(&clip, nginx.proc().pid(), &nginx.url("bench"), shape, warmup, measure, ffmpeg_players);
                            eprintln!("{}", row("nginx-rtmp", &r, measure.as_secs_f64()));
                            theirs.push(r);
                        }
                    }
                    turn += 1;
                }
                lines.push(summary_row("tally serve", &ours, measure.as_secs_f64()));
                lines.push(summary_row("nginx-rtmp", &theirs, measure.as_secs_f64()));
            }
        }
    }
    println!("| server | readers | threads | players | delivered | server CPU (10 s) | server CPU per delivered Gbit | load generator CPU | server peak RSS | relay latency p50 | p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
}
