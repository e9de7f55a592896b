//! The engine as the app drives it: commands in, snapshots out, against
//! real peers (Tally's in-process server, nginx-rtmp, ffmpeg as the
//! viewer). Every wait is for a state with a generous timeout; nothing
//! here asserts how fast.
//!
//! The tests take one lock: each checks that the engine's threads are gone
//! after shutdown, which only means something when no other engine runs.

#[path = "common/mod.rs"]
mod common;
#[path = "engine/scenes.rs"]
mod scenes;

use common::players::received_from_file;
use common::proxy::{FaultProxy, PathState};
use common::*;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tally::capture::{AudioSourceSpec, VideoSourceSpec};
use tally::config::{DestinationDraft, EncodeOverrides, Profile, ProfileStore};
use tally::engine::{BroadcastCommand, BroadcastState, Engine, EngineOptions, EngineState, GoLiveRequest, LogRing, PreviewRequest, ProfilesCommand, ProfilesState, RunOptions, ServerCommand, ServerState, SessionFormat, SourcesCommand, SourcesState, ViewerCommand};
use tally::media::FrameSize;
use tally::net::server::ServerConfig;
use tally::net::{FailureKind, OutputState};
use tally::rtmp::{RtmpUrl, StreamKey};

const W: u32 = 640;
const H: u32 = 360;
/// Generous: each of these happens in well under a second normally.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

fn engine_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // The recent log, as the app installs it (main.rs does the same).
    static LOG: std::sync::Once = std::sync::Once::new();
    LOG.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let _ = tracing_subscriber::registry().with(tracing_subscriber::EnvFilter::new("trace")).with(tally::engine::log::layer()).try_init();
    });
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn small_test_source() -> EncodeOverrides {
    EncodeOverrides {
        video: Some(VideoSourceSpec::TestPattern),
        audio: Some(AudioSourceSpec::Sine),
        size: Some(FrameSize::new(W, H)),
        video_kbps: Some(800),
        ..Default::default()
    }
}

fn loopback_server() -> ServerConfig {
    ServerConfig {
        rtmp_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    }
}

/// Waits for a state the predicate accepts; the state, or a panic naming the last one.
fn wait_state(engine: &Engine, what: &str, mut pred: impl FnMut(&EngineState) -> bool) -> EngineState {
    let mut rx = engine.state();
    let got = engine.runtime().block_on(async { tokio::time::timeout(STATE_TIMEOUT, rx.wait_for(|s| pred(s))).await.map(|r| r.map(|s| s.clone())) });
    match got {
        Ok(Ok(state)) => state,
        _ => panic!("{what}: not reached; last state: {:?}", *engine.state().borrow()),
    }
}

fn output_state(s: &EngineState) -> Option<&OutputState> {
    s.outputs.first().map(|o| &o.state)
}

/// Threads this process has whose name starts with `tally-`.
/// Tally's threads once the engine is shut down: its threads are joined,
/// but the kernel may list a joined thread in /proc/self/task for a moment
/// after it has exited, so this waits (up to 2 s) for the list to empty.
fn threads_left_after_shutdown() -> Vec<String> {
    wait_until(Duration::from_secs(2), || tally_threads().is_empty());
    tally_threads()
}

fn tally_threads() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(comm) = std::fs::read_to_string(t.path().join("comm"))
                && comm.starts_with("tally-")
            {
                names.push(comm.trim().to_string());
            }
        }
    }
    names
}

fn running_server(engine: &Engine) -> (SocketAddr, Option<SocketAddr>) {
    match wait_state(engine, "server running", |s| matches!(s.server, ServerState::Running { .. } | ServerState::Failed { .. })).server {
        ServerState::Running { rtmp, http } => (rtmp, http),
        other => panic!("the server did not start: {other:?}"),
    }
}

/// ffmpeg reads `secs` of `url` into a file; what it got.
fn watch_with_ffmpeg(url: &str, secs: f64, dir: &TestDir, name: &str) -> common::players::Received {
    let out = dir.join(name);
    let reader = ffmpeg_read(url, secs, &out);
    reader.wait_success(Duration::from_secs(60));
    received_from_file("ffmpeg", &out)
}

#[test]
fn a_profile_goes_live_to_the_in_process_server_connecting_then_live_then_stopped() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-profile");
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    engine.send(ServerCommand::Start(loopback_server())).unwrap();
    let (rtmp, _) = running_server(&engine);

    // The destination sits behind a proxy held stalled, so "connecting" lasts
    // until the test opens the path.
    let proxy = FaultProxy::start(rtmp.port());
    proxy.set_state(PathState::Stalled);
    let store = ProfileStore::open(dir.path());
    let name = format!("engine-{}", std::process::id());
    let mut profile = Profile::named(&name);
    let draft = DestinationDraft { url: Some(format!("rtmp://127.0.0.1:{}/live", proxy.port())), name: Some("local".into()), ..Default::default() };
    profile.destinations.push(draft.build().unwrap());
    store.save(profile, &[("local".into(), StreamKey::new("show-from-profile"))], false, false).unwrap();

    let request = GoLiveRequest { profile: Some(name.clone()), encode: small_test_source(), ..Default::default() };
    engine.send(BroadcastCommand::GoLive(request)).unwrap();
    let connecting = wait_state(&engine, "connecting", |s| matches!(s.broadcast, BroadcastState::Running { .. }) && !s.outputs.is_empty());
    assert_eq!(output_state(&connecting), Some(&OutputState::Connecting), "{connecting:?}");
    assert_eq!(connecting.outputs[0].id, format!("{name}/local"), "the destination's id is stable: profile/destination");
    assert!(!connecting.outputs[0].name.contains("show-from-profile"), "the key shows nowhere: {:?}", connecting.outputs[0].name);
    proxy.set_state(PathState::Open);
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));

    // What a viewer of the local server gets: the profile's stream, H.264 + AAC.
    let got = watch_with_ffmpeg(&format!("rtmp://{rtmp}/live/show-from-profile"), 3.0, &dir, "viewer.flv");
    got.assert_ok(W, H, 30.0, 2.0);
    // The stats name the same destination, counting what went out.
    let stats = engine.stats().borrow().clone();
    assert_eq!(stats.outputs.first().map(|o| o.id.as_str()), Some(format!("{name}/local").as_str()), "{stats:?}");
    assert!(stats.outputs[0].bytes_out > 0, "{stats:?}");

    engine.send(BroadcastCommand::Stop).unwrap();
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    let BroadcastState::Ended(summary) = &ended.broadcast else { panic!("{ended:?}") };
    assert!(summary.all_ok(), "{summary:?}");
    assert_eq!(output_state(&ended), Some(&OutputState::Stopped), "{ended:?}");
    engine.shutdown();
    // Joined, not merely told to end: none is left the moment shutdown returns.
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown");
    store.remove(&name).ok();
}

#[test]
fn a_bad_key_fails_once_and_finally() {
    let _lock = engine_lock();
    let nginx = NginxConfig::new().on_publish_allow(&["good-stream"]).start();
    let engine = Engine::start(EngineOptions::default()).unwrap();
    let request = GoLiveRequest {
        urls: vec![RtmpUrl::parse(&nginx.url("wrong-SECRETKEY")).unwrap()],
        encode: small_test_source(),
        ..Default::default()
    };
    engine.send(BroadcastCommand::GoLive(request)).unwrap();
    let failed = wait_state(&engine, "failed", |s| matches!(output_state(s), Some(OutputState::Failed { .. })));
    match output_state(&failed) {
        Some(OutputState::Failed { kind, is_final, message }) => {
            assert_eq!((*kind, *is_final), (FailureKind::Rejected, true), "{message}");
            assert!(message.contains("in answer to publish") && !message.contains("SECRETKEY"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Its only output failed, so the broadcast ends by itself, without a retry.
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if !s.all_ok()), "{ended:?}");
    assert_eq!(nginx.log_count("publish: name='wrong-"), 1, "exactly one attempt:\n{}", nginx.diagnostics());
    engine.shutdown();
    // The app's log view has the reason, at trace level too, and never the key.
    let log = LogRing::global().snapshot();
    assert!(log.iter().any(|e| e.level == tracing::Level::ERROR && e.message.contains("in answer to publish")), "{log:?}");
    assert!(log.iter().any(|e| e.level == tracing::Level::TRACE), "trace events were kept too");
    let leaked: Vec<&str> = log.iter().map(|e| e.message.as_str()).filter(|m| m.contains("SECRETKEY")).collect();
    assert!(leaked.is_empty(), "the key in the recent log: {leaked:?}");
}

#[test]
fn a_lost_server_shows_reconnecting_with_its_attempt_then_live_again() {
    let _lock = engine_lock();
    let mut nginx = Nginx::start();
    let engine = Engine::start(EngineOptions::default()).unwrap();
    let request = GoLiveRequest { urls: vec![RtmpUrl::parse(&nginx.url("comeback")).unwrap()], encode: small_test_source(), ..Default::default() };
    engine.send(BroadcastCommand::GoLive(request)).unwrap();
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    nginx.kill();
    let lost = wait_state(&engine, "reconnecting", |s| matches!(output_state(s), Some(OutputState::Reconnecting { .. })));
    let Some(OutputState::Reconnecting { attempt, next_try }) = output_state(&lost) else { panic!("{lost:?}") };
    assert!(*attempt >= 1, "{lost:?}");
    assert!(*next_try > lost.outputs[0].since, "the next try is ahead of the loss: {lost:?}");
    nginx.restart();
    wait_state(&engine, "live again", |s| output_state(s) == Some(&OutputState::Live));
    assert!(wait_until(STATE_TIMEOUT, || nginx.has_publisher("comeback")), "{}", nginx.diagnostics());
    engine.send(BroadcastCommand::Stop).unwrap();
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if s.all_ok()), "{ended:?}");
    engine.shutdown();
}

#[test]
fn rehearse_starts_the_local_server_and_a_viewer_sees_the_stream() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-rehearse");
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    engine
        .send(BroadcastCommand::Rehearse { stream: "rehearsal".into(), encode: small_test_source(), run: RunOptions::default() })
        .unwrap();
    let (rtmp, http) = running_server(&engine);
    assert!(http.is_some());
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    let got = watch_with_ffmpeg(&format!("rtmp://{rtmp}/live/rehearsal"), 3.0, &dir, "rehearsal.flv");
    got.assert_ok(W, H, 30.0, 2.0);
    engine.send(BroadcastCommand::Stop).unwrap();
    wait_state(&engine, "ended", |s| s.broadcast.is_over());
    engine.send(ServerCommand::Stop).unwrap();
    wait_state(&engine, "server off", |s| matches!(s.server, ServerState::Off));
    engine.shutdown();
}

#[test]
fn what_cannot_start_comes_back_as_state() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-fail");
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    engine.send(BroadcastCommand::GoLive(GoLiveRequest { profile: Some("no-such-profile".into()), ..Default::default() })).unwrap();
    let failed = wait_state(&engine, "failed", |s| s.broadcast.is_over());
    assert!(matches!(&failed.broadcast, BroadcastState::Failed { message } if message.contains("no profile 'no-such-profile'")), "{failed:?}");
    let missing = dir.join("missing.y4m");
    let encode = EncodeOverrides { video: Some(VideoSourceSpec::Y4m(missing)), ..small_test_source() };
    let url = RtmpUrl::parse("rtmp://127.0.0.1:9/live/x").unwrap();
    engine.send(BroadcastCommand::GoLive(GoLiveRequest { urls: vec![url], encode, ..Default::default() })).unwrap();
    let failed = wait_state(&engine, "failed", |s| matches!(&s.broadcast, BroadcastState::Failed { message } if message.contains("missing.y4m")));
    assert!(failed.outputs.is_empty(), "nothing was started: {failed:?}");
    // Taken while the first server holds the port: a clear failure, not a hang.
    engine.send(ServerCommand::Start(loopback_server())).unwrap();
    let (rtmp, _) = running_server(&engine);
    engine.send(ServerCommand::Stop).unwrap();
    wait_state(&engine, "server off", |s| matches!(s.server, ServerState::Off));
    let holder = std::net::TcpListener::bind(rtmp).unwrap();
    engine.send(ServerCommand::Start(ServerConfig { rtmp_listen: rtmp, http_listen: None, ..ServerConfig::default() })).unwrap();
    let failed = wait_state(&engine, "bind failed", |s| matches!(s.server, ServerState::Failed { .. }));
    assert!(matches!(&failed.server, ServerState::Failed { message } if message.contains(&rtmp.to_string())), "{failed:?}");
    drop(holder);
    engine.shutdown();
}

fn session_format() -> SessionFormat {
    SessionFormat { width: W, height: H, fps: 30 }
}

/// A Y4M clip of ffmpeg's testsrc2 at the session's size (not Tally's pattern).
fn other_clip(dir: &TestDir) -> std::path::PathBuf {
    y4m_clip(dir, "other.y4m", &format!("testsrc2=size={W}x{H}:rate=30"), 2)
}

#[test]
fn sources_opened_idle_give_the_preview_and_the_meters_before_going_live() {
    let _lock = engine_lock();
    let engine = Engine::start(EngineOptions::default()).unwrap();
    engine.send(SourcesCommand::SetPreview(Some(PreviewRequest { width: 320, height: 320, max_fps: 10 }))).unwrap();
    engine
        .send(SourcesCommand::Open { video: VideoSourceSpec::TestPattern, audio: AudioSourceSpec::Sine, format: session_format(), looping: false })
        .unwrap();
    let open = wait_state(&engine, "sources open", |s| matches!(s.sources, SourcesState::Open { .. } | SourcesState::Failed { .. }));
    assert!(matches!(&open.sources, SourcesState::Open { video, .. } if video == "test pattern"), "{:?}", open.sources);

    // Preview pictures: fitted into 320x320 with the aspect kept, drawn (the
    // pattern's bars, not a blank), and never more than asked: 10 a second
    // of the source's own time.
    let mut preview = engine.preview();
    let mut pictures = Vec::new();
    engine.runtime().block_on(async {
        tokio::time::timeout(STATE_TIMEOUT, async {
            while pictures.len() < 12 {
                if preview.changed().await.is_err() {
                    break;
                }
                if let Some(p) = preview.borrow_and_update().clone() {
                    pictures.push(p);
                }
            }
        })
        .await
        .ok();
    });
    assert!(pictures.len() >= 12, "only {} preview pictures", pictures.len());
    let first = &pictures[0];
    assert_eq!((first.width, first.height, first.rgba.len()), (320, 180, 320 * 180 * 4));
    assert!(pictures.iter().all(|p| (p.width, p.height) == (320, 180)));
    // (The pattern flashes white on each second: one picture may be plain.)
    let colours = pictures.iter().map(|p| p.rgba.chunks(4).collect::<std::collections::HashSet<&[u8]>>().len()).max().unwrap_or(0);
    assert!(colours > 8, "the preview is blank: {colours} colours");
    let (a, b) = (&pictures[1], pictures.last().unwrap());
    let rate = (b.serial - a.serial) as f64 / ((b.pts_us - a.pts_us) as f64 / 1e6);
    assert!(rate <= 10.5, "{rate:.1} preview pictures per second of video, asked for 10");

    // Meters from the capture path: 30+ updates per second of audio, the
    // tone's level per channel.
    let mut levels = engine.levels();
    let start = engine.runtime().block_on(async { levels.wait_for(|l| l.serial > 0).await.map(|l| l.clone()) }).unwrap();
    let later = engine
        .runtime()
        .block_on(async { levels.wait_for(|l| l.media_us >= start.media_us + 2_000_000).await.map(|l| l.clone()) })
        .unwrap();
    let per_sec = (later.serial - start.serial) as f64 / ((later.media_us - start.media_us) as f64 / 1e6);
    assert!(per_sec >= 30.0, "{per_sec:.1} meter updates per second of audio");
    assert_eq!(later.peak_dbfs.len(), 2, "{later:?}");
    assert!(later.peak_dbfs.iter().all(|&p| p > -40.0 && p < 0.0) && !later.clipping, "the tone's level: {later:?}");

    // Nothing went out: this was all before going live.
    let state = engine.state().borrow().clone();
    assert!(matches!(state.broadcast, BroadcastState::Idle) && state.outputs.is_empty(), "{state:?}");
    // Switching the audio to silence shows at once in the meters.
    engine.send(SourcesCommand::SwitchAudio(AudioSourceSpec::Silence)).unwrap();
    let silent = engine.runtime().block_on(async {
        tokio::time::timeout(STATE_TIMEOUT, levels.wait_for(|l| l.peak_dbfs.iter().all(|&p| p <= -120.0))).await.map(|r| r.map(|l| l.clone()))
    });
    assert!(matches!(silent, Ok(Ok(_))), "the meters never went silent: {:?}", *levels.borrow());
    engine.send(SourcesCommand::Close).unwrap();
    wait_state(&engine, "closed", |s| matches!(s.sources, SourcesState::Closed));
    engine.shutdown();
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown");
}

#[test]
fn switching_the_video_while_live_keeps_the_timestamps_and_starts_a_keyframe() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-switch");
    let clip = other_clip(&dir);
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    engine
        .send(SourcesCommand::Open { video: VideoSourceSpec::TestPattern, audio: AudioSourceSpec::Sine, format: session_format(), looping: true })
        .unwrap();
    wait_state(&engine, "sources open", |s| matches!(s.sources, SourcesState::Open { .. }));
    // Keyframes every 20 s: inside the player's window, a keyframe after its
    // first one can only be the switch's.
    let encode = EncodeOverrides { keyint_secs: Some(20.0), video_kbps: Some(800), ..Default::default() };
    engine.send(BroadcastCommand::Rehearse { stream: "switch".into(), encode, run: RunOptions::default() }).unwrap();
    let (rtmp, _) = running_server(&engine);
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    let out = dir.join("player.flv");
    let player = ffmpeg_read(&format!("rtmp://{rtmp}/live/switch"), 6.0, &out);
    // Switch once the player has a couple of seconds.
    let mut stats = engine.stats();
    let at = engine.runtime().block_on(async { stats.wait_for(|s| s.media_secs >= 3.0).await.map(|s| s.media_secs) }).unwrap();
    engine.send(SourcesCommand::SwitchVideo(VideoSourceSpec::Y4m(clip.clone()))).unwrap();
    let switched = wait_state(&engine, "switched", |s| matches!(&s.sources, SourcesState::Open { video, .. } if video.contains("other.y4m")));
    assert!(matches!(switched.broadcast, BroadcastState::Running { .. }), "the broadcast stayed up: {switched:?}");
    player.wait_success(Duration::from_secs(60));
    engine.send(BroadcastCommand::Stop).unwrap();
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if s.all_ok()), "{ended:?}");

    let info = probe(&out);
    let video = &info.video_packets;
    assert!(video.len() > 120, "the player got {} frames", video.len());
    for w in video.windows(2) {
        let step = w[1].pts - w[0].pts;
        // A frame's duration apart (rate control may skip a few): never back,
        // never bunched, never a gap.
        assert!(step > 0.5 / 30.0 && step < 4.5 / 30.0, "video timestamps step {:.3} -> {:.3}", w[0].pts, w[1].pts);
    }
    let audio = info.audio_pts();
    for w in audio.windows(2) {
        assert!(w[1] > w[0] && w[1] - w[0] < 0.05, "audio timestamps jump {:.3} -> {:.3}", w[0], w[1]);
    }
    let keys: Vec<f64> = video.iter().filter(|p| p.key).map(|p| p.pts).collect();
    assert!(video[0].key, "the player starts on a keyframe");
    let switch_keys: Vec<f64> = keys.iter().copied().filter(|&t| t > video[0].pts).collect();
    assert_eq!(switch_keys.len(), 1, "one keyframe at the switch (asked at {at:.1} s), keyframes: {keys:?}");
    assert!(switch_keys[0] >= at - 0.5, "the switch keyframe at {:.2} s, asked at {at:.1} s", switch_keys[0]);
    engine.shutdown();
}

/// The output with this id, or whose (redacted) URL names this port.
fn output<'a>(s: &'a EngineState, id_or_port: &str) -> Option<&'a tally::engine::OutputSnapshot> {
    s.outputs.iter().find(|o| o.id == id_or_port || o.name.contains(&format!(":{id_or_port}/")))
}

#[test]
fn a_destination_added_removed_and_retried_while_live_leaves_the_others_alone() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-outputs");
    let nginx = Nginx::start();
    let nginx_port = nginx.port().to_string();
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    // Keyframes every 20 s: a keyframe an added destination starts on can only be the one it asked for.
    let encode = EncodeOverrides { keyint_secs: Some(20.0), ..small_test_source() };
    engine.send(BroadcastCommand::Rehearse { stream: "first".into(), encode, run: RunOptions::default() }).unwrap();
    let (rtmp, _) = running_server(&engine);
    wait_state(&engine, "first live", |s| output_state(s) == Some(&OutputState::Live));
    let first_id = engine.state().borrow().outputs[0].id.clone();

    // Adding while live: a viewer of the new destination (waiting on nginx-rtmp,
    // which has no GOP cache) gets headers and a keyframe first, then a stream that decodes.
    let out = dir.join("added.flv");
    let viewer = ffmpeg_read(&nginx.url("added"), 3.0, &out);
    nginx.wait_players("added", 1, STATE_TIMEOUT);
    let mut stats = engine.stats();
    engine.runtime().block_on(async { stats.wait_for(|s| s.media_secs >= 2.0).await.map(|_| ()) }).unwrap();
    let request = GoLiveRequest { urls: vec![RtmpUrl::parse(&nginx.url("added")).unwrap()], ..Default::default() };
    engine.send(BroadcastCommand::AddOutputs { request, destination: None }).unwrap();
    let both = wait_state(&engine, "added live", |s| output(s, &nginx_port).is_some_and(|o| o.state == OutputState::Live));
    assert_eq!(both.outputs.len(), 2, "{both:?}");
    assert_eq!(output(&both, &first_id).map(|o| &o.state), Some(&OutputState::Live), "the first stayed live: {both:?}");
    viewer.wait_success(Duration::from_secs(60));
    let got = received_from_file("ffmpeg", &out);
    got.assert_ok(W, H, 30.0, 2.0);
    let info = probe(&out);
    assert!(info.video_packets.first().is_some_and(|p| p.key), "the added destination starts on a keyframe");
    let keys = info.video_packets.iter().filter(|p| p.key).count();
    assert_eq!(keys, 1, "one keyframe (the one it asked for) in 3 s of a 20 s GOP");
    for w in info.video_packets.windows(2) {
        assert!(w[1].dts > w[0].dts, "video timestamps move on: {} -> {}", w[0].dts, w[1].dts);
    }

    // Removing it: it unpublishes cleanly, the first carries on.
    let added_id = output(&both, &nginx_port).map(|o| o.id.clone()).unwrap();
    let disconnects = nginx.log_count("disconnect");
    engine.send(BroadcastCommand::RemoveOutput(added_id.clone())).unwrap();
    wait_state(&engine, "removed", |s| output(s, &added_id).is_none());
    // Its viewer is gone already: the next disconnect nginx logs is the removed publisher's.
    assert!(wait_until(STATE_TIMEOUT, || nginx.log_count("disconnect") > disconnects), "{}", nginx.diagnostics());
    let before = engine.stats().borrow().outputs.iter().find(|o| o.id == first_id).map(|o| o.bytes_out).unwrap_or(0);
    let mut stats = engine.stats();
    engine
        .runtime()
        .block_on(async { stats.wait_for(|s| s.outputs.iter().any(|o| o.id == first_id && o.bytes_out > before + 10_000)).await.map(|_| ()) })
        .unwrap();
    assert_eq!(engine.stats().borrow().outputs.len(), 1, "the stats list the outputs left");

    // The last output is not removed: ending the stream does that.
    engine.send(BroadcastCommand::RemoveOutput(first_id.clone())).unwrap();
    let refused = wait_state(&engine, "refused", |s| s.refused.is_some());
    assert!(refused.refused.as_ref().is_some_and(|r| r.message.contains("only output")), "{refused:?}");
    assert!(matches!(refused.broadcast, BroadcastState::Running { .. }), "{refused:?}");

    // A destination that fails (its port refuses) is retried once the path is back.
    let proxy = FaultProxy::start(nginx.port());
    proxy.set_state(PathState::Refusing);
    let proxy_port = proxy.port().to_string();
    let request = GoLiveRequest { urls: vec![RtmpUrl::parse(&proxy.url("live", "retried")).unwrap()], ..Default::default() };
    engine.send(BroadcastCommand::AddOutputs { request, destination: None }).unwrap();
    let failed = wait_state(&engine, "failed", |s| output(s, &proxy_port).is_some_and(|o| matches!(o.state, OutputState::Failed { .. })));
    assert!(matches!(failed.broadcast, BroadcastState::Running { .. }), "one failed destination of two ends nothing: {failed:?}");
    let retried_id = output(&failed, &proxy_port).map(|o| o.id.clone()).unwrap();
    engine.send(BroadcastCommand::RetryOutput(first_id.clone())).unwrap();
    let refused = wait_state(&engine, "retry refused", |s| s.refused.as_ref().is_some_and(|r| r.message.contains("retry")));
    assert!(refused.refused.as_ref().is_some_and(|r| r.message.contains("has not failed")), "{refused:?}");
    proxy.open_and_wait();
    engine.send(BroadcastCommand::RetryOutput(retried_id.clone())).unwrap();
    wait_state(&engine, "retried live", |s| output(s, &retried_id).is_some_and(|o| o.state == OutputState::Live));
    assert!(wait_until(STATE_TIMEOUT, || nginx.has_publisher("retried")), "{}", nginx.diagnostics());

    engine.send(BroadcastCommand::Stop).unwrap();
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    let BroadcastState::Ended(summary) = &ended.broadcast else { panic!("{ended:?}") };
    let ids: Vec<&str> = summary.outputs.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "the summary reports every output the broadcast had: {ids:?}");
    // Each ended cleanly: the removed one sent what it held and unpublished, the retried one on its retry.
    assert!(summary.outputs.iter().all(|o| o.error.is_none()), "{summary:?}");
    // Adding after the end is refused, as state.
    let request = GoLiveRequest { urls: vec![RtmpUrl::parse(&nginx.url("late")).unwrap()], ..Default::default() };
    engine.send(BroadcastCommand::AddOutputs { request, destination: None }).unwrap();
    wait_state(&engine, "late add refused", |s| s.refused.as_ref().is_some_and(|r| r.message.contains("not live")));
    let _ = rtmp;
    engine.shutdown();
}

/// `ffmpeg` decodes `file` from `from` seconds for `secs`: mono 16 kHz samples.
fn decoded_audio(file: &std::path::Path, from: f64, secs: f64) -> Vec<i16> {
    let out = std::process::Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-loglevel", "error", "-ss", &format!("{from}"), "-t", &format!("{secs}"), "-i"])
        .arg(file)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// `ffmpeg` decodes one picture of `file` at `at` seconds, 32x18 grey.
fn decoded_picture(file: &std::path::Path, at: f64) -> Vec<u8> {
    let out = std::process::Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-loglevel", "error", "-ss", &format!("{at}"), "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-an", "-vf", "scale=32:18,format=gray", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Waits until the preview shows a slate (most of the picture its dark grey).
fn wait_preview_slate(engine: &Engine) {
    let mut preview = engine.preview();
    let slate = engine.runtime().block_on(async {
        tokio::time::timeout(STATE_TIMEOUT, preview.wait_for(|p| p.as_ref().is_some_and(|p| {
            let grey = p.rgba.chunks_exact(4).filter(|px| px[0] == px[1] && px[1] == px[2] && px[0] < 60).count();
            grey * 2 > p.rgba.len() / 4
        })))
        .await
        .map(|p| p.map(|_| ()).is_ok())
    });
    assert_eq!(slate, Ok(true), "the preview did not show the slate");
}

/// Share of a grey picture at the slate's background (luma 40 in limited
/// range, which ffmpeg's grey output stretches to about 28).
fn slate_share(picture: &[u8]) -> f64 {
    picture.iter().filter(|&&y| (20..=48).contains(&y)).count() as f64 / picture.len().max(1) as f64
}

#[test]
fn mute_and_hide_send_silence_and_the_slate_and_show_them_before_the_stream_ends() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-mute");
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    engine.send(SourcesCommand::SetPreview(Some(PreviewRequest { width: 320, height: 180, max_fps: 30 }))).unwrap();
    engine
        .send(SourcesCommand::Open { video: VideoSourceSpec::TestPattern, audio: AudioSourceSpec::Sine, format: session_format(), looping: true })
        .unwrap();
    wait_state(&engine, "sources open", |s| matches!(s.sources, SourcesState::Open { .. }));
    engine.send(BroadcastCommand::Rehearse { stream: "mute".into(), encode: EncodeOverrides::default(), run: RunOptions::default() }).unwrap();
    let (rtmp, _) = running_server(&engine);
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    let out = dir.join("player.flv");
    let player = ffmpeg_read(&format!("rtmp://{rtmp}/live/mute"), 6.0, &out);
    let mut stats = engine.stats();
    let at = engine.runtime().block_on(async { stats.wait_for(|s| s.media_secs >= 2.5).await.map(|s| s.media_secs) }).unwrap();
    engine.send(SourcesCommand::SetMute(true)).unwrap();
    engine.send(SourcesCommand::SetHideCamera(true)).unwrap();
    let muted = wait_state(&engine, "muted", |s| matches!(s.sources, SourcesState::Open { muted: true, hidden: true, .. }));
    assert!(matches!(muted.broadcast, BroadcastState::Running { .. }), "the stream stays up: {muted:?}");
    // The meters show the silence at once, from the capture path.
    let mut levels = engine.levels();
    engine
        .runtime()
        .block_on(async {
            tokio::time::timeout(STATE_TIMEOUT, levels.wait_for(|l| !l.peak_dbfs.is_empty() && l.peak_dbfs.iter().all(|&p| p <= -90.0))).await.map(|_| ())
        })
        .expect("the meters show silence");
    // The preview shows the slate, as the stream does.
    wait_preview_slate(&engine);
    player.wait_success(Duration::from_secs(60));
    engine.send(BroadcastCommand::Stop).unwrap();
    wait_state(&engine, "ended", |s| s.broadcast.is_over());
    engine.shutdown();

    // What the server relayed: the sine, then silence; the pattern, then the slate.
    let first = probe(&out).video_packets.first().map(|p| p.pts).unwrap_or(0.0);
    let before = decoded_audio(&out, 0.5, 1.0);
    let after = decoded_audio(&out, 5.0, 0.8);
    let peak = |s: &[i16]| s.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    assert!(peak(&before) > 3000, "the tone before muting: peak {}", peak(&before));
    assert!(!after.is_empty() && peak(&after) < 100, "silence after muting (at {at:.1} s of media): peak {}", peak(&after));
    let shown = decoded_picture(&out, 0.5);
    let hidden = decoded_picture(&out, 5.5);
    assert!(slate_share(&shown) < 0.3, "the pattern before hiding: {:.2} at the slate's grey", slate_share(&shown));
    assert!(slate_share(&hidden) > 0.6, "the slate after hiding: {:.2} at its grey (first video at {first:.2} s)", slate_share(&hidden));
}

#[test]
fn profiles_are_saved_renamed_and_deleted_by_the_engine_keys_in_the_secret_store_only() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-profiles");
    let nginx = Nginx::start();
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    let draft = DestinationDraft { url: Some(format!("rtmp://127.0.0.1:{}/live", nginx.port())), name: Some("ingest".into()), ..Default::default() };
    let mut profile = Profile::named("show");
    profile.destinations.push(draft.build().unwrap());
    profile.video.size = FrameSize::new(W, H);
    let keys = vec![("ingest".to_string(), StreamKey::new("edited-KEY-1234"))];
    engine.send(ProfilesCommand::Save { profile: profile.clone(), from: None, keep_from: false, keys }).unwrap();
    let saved = wait_state(&engine, "saved", |s| matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if profiles.iter().any(|p| p.name == "show")));
    assert!(saved.refused.is_none(), "{saved:?}");
    let toml = std::fs::read_to_string(ProfileStore::open(dir.path()).path()).unwrap();
    assert!(toml.contains("show") && !toml.contains("edited-KEY-1234"), "the key stays out of the profile file:\n{toml}");

    // Renamed: the key moves with it, and the renamed profile goes live with it.
    profile.name = "renamed".into();
    engine.send(ProfilesCommand::Save { profile, from: Some("show".into()), keep_from: false, keys: Vec::new() }).unwrap();
    let renamed = wait_state(&engine, "renamed", |s| {
        matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if profiles.iter().any(|p| p.name == "renamed") && !profiles.iter().any(|p| p.name == "show"))
    });
    assert!(renamed.refused.is_none(), "{renamed:?}");
    let request = GoLiveRequest { profile: Some("renamed".into()), encode: small_test_source(), ..Default::default() };
    engine.send(BroadcastCommand::GoLive(request)).unwrap();
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    assert!(wait_until(STATE_TIMEOUT, || nginx.has_publisher("edited-KEY-1234")), "{}", nginx.diagnostics());
    let used = wait_state(&engine, "last used", |s| matches!(&s.profiles, ProfilesState::Loaded { last_used: Some(l), .. } if l == "renamed"));
    assert!(matches!(used.broadcast, BroadcastState::Running { .. }));
    engine.send(BroadcastCommand::Stop).unwrap();
    wait_state(&engine, "ended", |s| s.broadcast.is_over());

    // Deleted: the profile and its key.
    engine.send(ProfilesCommand::Delete("renamed".into())).unwrap();
    wait_state(&engine, "deleted", |s| matches!(&s.profiles, ProfilesState::Loaded { profiles, .. } if profiles.is_empty()));
    engine.shutdown();
    let store = ProfileStore::open(dir.path());
    assert!(store.secrets().get("renamed/ingest").unwrap().is_none(), "the key went with the profile");
    assert!(store.secrets().get("show/ingest").unwrap().is_none(), "the rename left no key behind");
}

#[test]
fn the_viewer_preview_decodes_the_rehearsal_and_its_thread_is_joined_at_shutdown() {
    let _lock = engine_lock();
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    engine.send(BroadcastCommand::Rehearse { stream: "watched".into(), encode: small_test_source(), run: RunOptions::default() }).unwrap();
    running_server(&engine);
    let preview = PreviewRequest { width: 320, height: 180, max_fps: 30 };
    engine.send(ViewerCommand::Watch(tally::engine::WatchRequest { stream: "watched".into(), preview })).unwrap();
    wait_state(&engine, "viewer playing", |s| matches!(s.viewer, tally::engine::ViewerState::Playing { .. }));
    let mut frames = engine.viewer();
    let got = engine.runtime().block_on(async {
        tokio::time::timeout(STATE_TIMEOUT, frames.wait_for(|f| f.as_ref().is_some_and(|f| f.decoded >= 20 && f.latency.is_some())))
            .await
            .map(|f| f.map(|f| f.as_ref().map(|f| (f.picture.width, f.picture.height))))
    });
    assert_eq!(got.ok().and_then(|r| r.ok()).flatten(), Some((320, 180)), "pictures of the rehearsal, at the asked size, with a latency");
    engine.shutdown();
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown (the viewer's included)");
}

/// `other_clip` with its frame `at` broken (its FRAME line overwritten): a
/// file source that fails after `at` frames, as a camera that dies does.
fn clip_that_breaks(dir: &TestDir, at: usize) -> std::path::PathBuf {
    let path = other_clip(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame = b"FRAME\n".len() + (W * H * 3 / 2) as usize;
    let broken = header + at * frame;
    assert_eq!(&bytes[broken..broken + 5], b"FRAME");
    bytes[broken..broken + 5].copy_from_slice(b"XXXXX");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_video_source_that_fails_while_live_is_replaced_by_a_slate_saying_so_and_the_stream_stays_up() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-source-fails");
    let clip = clip_that_breaks(&dir, 45);
    let engine = Engine::start(EngineOptions { server: loopback_server(), ..EngineOptions::default() }).unwrap();
    engine.send(SourcesCommand::SetPreview(Some(PreviewRequest { width: 320, height: 180, max_fps: 30 }))).unwrap();
    engine.send(SourcesCommand::Open { video: VideoSourceSpec::Y4m(clip), audio: AudioSourceSpec::Sine, format: session_format(), looping: false }).unwrap();
    wait_state(&engine, "sources open", |s| matches!(s.sources, SourcesState::Open { .. }));
    engine.send(BroadcastCommand::Rehearse { stream: "fails".into(), encode: EncodeOverrides::default(), run: RunOptions::default() }).unwrap();
    let (rtmp, _) = running_server(&engine);
    wait_state(&engine, "live", |s| output_state(s) == Some(&OutputState::Live));
    let out = dir.join("player.flv");
    let player = ffmpeg_read(&format!("rtmp://{rtmp}/live/fails"), 5.0, &out);
    // The failure is reported with its reason...
    let mut health = engine.health();
    let why = engine
        .runtime()
        .block_on(async { tokio::time::timeout(STATE_TIMEOUT, health.wait_for(|h| h.video != tally::capture::SourceState::Live)).await.map(|h| h.map(|h| h.video.to_string())) })
        .expect("the failure reported")
        .expect("the health feed");
    assert!(why.contains("failed") && why.contains("FRAME"), "the reason names the failure: {why}");
    // ...the preview shows the slate...
    wait_preview_slate(&engine);
    // ...and the stream goes on, with the slate in it, until it is ended.
    player.wait_success(Duration::from_secs(60));
    let state = engine.state().borrow().clone();
    assert!(matches!(state.broadcast, BroadcastState::Running { .. }), "the stream stays up: {state:?}");
    engine.send(BroadcastCommand::Stop).unwrap();
    let ended = wait_state(&engine, "ended", |s| s.broadcast.is_over());
    assert!(matches!(&ended.broadcast, BroadcastState::Ended(s) if s.all_ok()), "{ended:?}");
    engine.shutdown();
    let received = received_from_file("ffmpeg", &out);
    assert!(received.span >= 4.0, "video kept coming after the failure: {received:?}");
    let last = decoded_picture(&out, received.span - 0.5);
    assert!(slate_share(&last) > 0.6, "the slate at the end: {:.2} at its grey", slate_share(&last));
}

/// A FIFO at `path`: a Y4M source on it blocks opening (reading its
/// header) until the test opens the writing end — a camera that takes as
/// long to open as the test wants, without a sleep.
fn fifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Opens the FIFO's writing end (blocking until a reader has it open),
/// writes a Y4M header and frames until the reader closes its end, and
/// sends how many frames went in (an error if the writing failed otherwise).
fn feed_until_closed(path: std::path::PathBuf, done: std::sync::mpsc::Sender<Result<usize, String>>) {
    std::thread::spawn(move || {
        use std::io::Write as _;
        let result = (|| {
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| e.to_string())?;
            let frame = vec![128u8; (W * H * 3 / 2) as usize];
            let header = format!("YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n");
            let mut frames = 0;
            let mut written = w.write_all(header.as_bytes());
            while written.is_ok() {
                written = w.write_all(b"FRAME\n").and_then(|()| w.write_all(&frame));
                frames += usize::from(written.is_ok());
            }
            match written {
                // The reader closed its end: what the test waits for.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(frames),
                Err(e) => Err(e.to_string()),
                Ok(()) => Ok(frames),
            }
        })();
        let _ = done.send(result);
    });
}

/// On a failing test: opens each FIFO's writing end (in a thread of its own,
/// as soon as a reader opens it) and closes it at once, so a source still
/// blocked opening it sees an empty file and gives up, and the test ends
/// instead of hanging in the engine's shutdown.
struct UnblockOnDrop(Vec<std::path::PathBuf>);

impl Drop for UnblockOnDrop {
    fn drop(&mut self) {
        for path in self.0.drain(..) {
            std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(path)));
        }
    }
}

#[test]
fn stop_and_a_profile_load_are_answered_while_sources_are_still_opening() {
    let _lock = engine_lock();
    let dir = TestDir::new("engine-slow-open");
    let (session_camera, broadcast_camera) = (dir.join("session-camera.y4m"), dir.join("broadcast-camera.y4m"));
    fifo(&session_camera);
    fifo(&broadcast_camera);
    let engine = Engine::start(EngineOptions { config_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).unwrap();
    let mut unblock = UnblockOnDrop(vec![session_camera.clone(), broadcast_camera.clone()]);

    // Both ways a source opens: the capture session, and a broadcast's own
    // sources (its plan has the size and rate: nothing is probed here).
    let slow = |path: &std::path::Path| VideoSourceSpec::Y4m(path.to_path_buf());
    engine.send(SourcesCommand::Open { video: slow(&session_camera), audio: AudioSourceSpec::Sine, format: session_format(), looping: false }).unwrap();
    let encode = EncodeOverrides { video: Some(slow(&broadcast_camera)), fps: Some(30), ..small_test_source() };
    let plan = tally::engine::BroadcastPlan::record(dir.join("never.flv"), &encode, &RunOptions::default()).unwrap();
    engine.send(BroadcastCommand::GoLivePlan(plan)).unwrap();
    wait_state(&engine, "starting and opening", |s| matches!(s.broadcast, BroadcastState::Starting) && matches!(s.sources, SourcesState::Opening));

    // While both opens block: Stop, a profile load, Close — all answered.
    engine.send(BroadcastCommand::Stop).unwrap();
    engine.send(ProfilesCommand::Load).unwrap();
    engine.send(SourcesCommand::Close).unwrap();
    let answered = wait_state(&engine, "stopped, profiles loaded, sources closed, the opens still blocked", |s| {
        matches!(s.profiles, ProfilesState::Loaded { .. }) && s.broadcast.is_over() && matches!(s.sources, SourcesState::Closed)
    });
    // No writer has opened either FIFO yet: neither open can have finished.
    assert!(matches!(&answered.broadcast, BroadcastState::Ended(summary) if summary.outputs.is_empty()), "{answered:?}");
    assert!(answered.outputs.is_empty(), "nothing went out: {answered:?}");

    // Now the opens finish; what they opened is closed at once (each
    // reader closes its end: the writers see a broken pipe) and nothing goes live.
    let (done_tx, done) = std::sync::mpsc::channel();
    unblock.0.clear();
    feed_until_closed(session_camera, done_tx.clone());
    feed_until_closed(broadcast_camera, done_tx);
    for _ in 0..2 {
        match done.recv_timeout(STATE_TIMEOUT) {
            Ok(Ok(_frames)) => {}
            Ok(Err(e)) => panic!("feeding a FIFO: {e}"),
            Err(_) => panic!("a late source was not closed; state: {:?}", *engine.state().borrow()),
        }
    }
    let after = engine.state().borrow().clone();
    assert!(matches!(&after.broadcast, BroadcastState::Ended(summary) if summary.outputs.is_empty()), "not live: {after:?}");
    assert!(after.outputs.is_empty() && matches!(after.sources, SourcesState::Closed), "{after:?}");
    engine.shutdown();
    assert_eq!(threads_left_after_shutdown(), Vec::<String>::new(), "threads left after shutdown");
}
