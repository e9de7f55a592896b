//! `tally serve` behaviour a streamer relies on, each with real clients and
//! at least one outside peer (ffmpeg or ffprobe) beside Tally's own, so a
//! misunderstanding shared by Tally's client and server cannot pass: late
//! joiners start from the GOP cache, takeover and `--no-takeover`, the
//! publish key, players that wait across unpublish/republish, a slow player
//! that is skipped and then dropped without slowing anyone, hostile clients
//! that lose only their own connection, and the connection limit.
//!
//! No assertion here is on a wall-clock figure: each test waits for events
//! with generous timeouts and judges what arrived, in what order. How fast
//! things happen (time to first picture, relay latency) is measured by the
//! benchmarks and written in docs/PERFORMANCE.md.

use crate::common;

use common::http_flv::FlvReader;
use common::rtmp_client::*;
use common::*;
use serde_json::Value;
use std::time::Duration;
use tally::rtmp::MediaKind;
use tokio::io::AsyncWriteExt;

/// Keyframe interval of the late-joiner streams: long, so that a joiner
/// that arrives a second into a GOP is still in the same GOP however slow
/// the machine is to start it.
const LONG_GOP_SECS: &str = "10";

/// Waits until `reference` (a viewer already watching) is between 1 s and
/// `until_ms` into a GOP; returns (timestamp of that GOP's keyframe, newest
/// timestamp), ms.
fn mid_gop(reference: &Watcher, from_ms: u32, until_ms: u32) -> (u32, u32) {
    let mut found = None;
    let ok = reference.wait_for(Duration::from_secs(30), |seen| {
        let video: Vec<&Seen> = seen.iter().filter(|s| s.kind == MediaKind::Video && !s.config).collect();
        let newest = video.last().map(|s| s.ts);
        let key = video.iter().rev().find(|s| s.keyframe).map(|s| s.ts);
        found = key.zip(newest).filter(|(k, n)| (from_ms..until_ms).contains(&(n - k)));
        found.is_some()
    });
    assert!(ok, "the reference viewer never got a second into a GOP");
    found.unwrap_or_default()
}

/// The reference viewer's video timestamps from `from` to `to`, inclusive.
fn reference_frames(reference: &Watcher, from: u32, to: u32) -> Vec<u32> {
    reference.video().iter().map(|s| s.ts).filter(|t| (from..=to).contains(t)).collect()
}

#[test]
fn a_late_joiner_starts_from_the_cached_gop_where_nginx_makes_it_wait() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("late");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--keyint", LONG_GOP_SECS, "--duration", "90"]);
    server.wait_live("late", &publisher, Duration::from_secs(20));
    let reference = Watcher::start(&url);
    let rt = runtime();

    // 1. Tally's player joins a second or more into a GOP: its first frame
    // is that GOP's keyframe, and it gets every frame since, published
    // before it joined; the first of them decodes to a picture.
    for round in 0..2 {
        // Deep into the GOP: the cached start spans more than a player's
        // 3 s backlog bound, and must still not count as falling behind.
        let (key, edge) = mid_gop(&reference, 4000, 7000);
        let rec = rt.block_on(async {
            let mut l = Listener::connect(&url).await.expect("connect").keep_video_payloads(8);
            l.listen_until(Duration::from_secs(20), |r| r.video().last().is_some_and(|s| s.ts >= edge)).await.expect("play");
            l.rec
        });
        let video = rec.video();
        let first = video.first().unwrap_or_else(|| panic!("round {round}: no video"));
        assert!(first.keyframe && first.ts == key, "round {round}: first frame {first:?}, expected the keyframe at {key} ms");
        let got: Vec<u32> = video.iter().map(|s| s.ts).filter(|t| *t <= edge).collect();
        assert_eq!(got, reference_frames(&reference, key, edge), "round {round}: the joiner's frames up to the live edge");
        let start: Vec<(MediaKind, bool)> = rec.media().iter().take_while(|s| s.config).map(|s| (s.kind, s.config)).collect();
        for want in [MediaKind::Data, MediaKind::Video, MediaKind::Audio] {
            assert!(start.contains(&(want, true)), "round {round}: no {want:?} header before the first frame: {start:?}");
        }
        assert_eq!(first_picture(&rec.video_payloads), Some((1280, 720)), "round {round}: the first frame does not decode");
    }

    // 2. ffprobe, an outside player, joins the same way: its first video
    // packet is the GOP's keyframe with the cached frames behind it.
    // (Early in the GOP, so that the 600 packets it reads reach the live edge.)
    assert!(wait_until(Duration::from_secs(20), || server.stream("late").is_some_and(|s| s["players"] == 1)), "the players above never left");
    let (key, _) = mid_gop(&reference, 1000, 2500);
    let probe_proc = ffprobe_live(&url, 600);
    assert!(wait_until(Duration::from_secs(20), || server.stream("late").is_some_and(|s| s["players"] == 2)), "ffprobe never joined");
    let counted_at = std::time::Instant::now();
    let joined_edge = reference.video().last().map_or(0, |s| s.ts);
    // ffprobe joined between its start and being counted: normally within
    // the GOP of `key`; on a loaded machine it may start so late that a
    // newer GOP was cached by then. Its first packet is the keyframe of a
    // GOP the reference viewer had seen start by the time ffprobe was
    // counted (allowing the viewer a second of its own lag) — never one
    // published later, as a server without a GOP cache would give it.
    let out = probe_proc.wait_output(Duration::from_secs(60));
    assert!(out.status.success(), "{}", probe_proc.describe());
    let lag = Duration::from_secs(1);
    let cached_keys: Vec<u32> = reference
        .video()
        .iter()
        .filter(|s| s.keyframe && !s.config && s.ts >= key && s.at <= counted_at + lag)
        .map(|s| s.ts)
        .collect();
    let (video, _) = parse_live_packets(&String::from_utf8_lossy(&out.stdout));
    let first = video.first().unwrap_or_else(|| panic!("ffprobe read no video\n{}", probe_proc.describe()));
    let ms = |t: f64| (t * 1000.0).round() as u32;
    assert!(
        first.key && cached_keys.contains(&ms(first.pts)),
        "ffprobe's first video packet: {first:?}, expected the keyframe of a GOP cached when it joined: {cached_keys:?}"
    );
    let key = ms(first.pts);
    let cached: Vec<u32> = video.iter().map(|p| ms(p.pts)).filter(|t| *t <= joined_edge).collect();
    assert_eq!(cached, reference_frames(&reference, key, joined_edge), "ffprobe's frames up to the live edge at its join");

    // 3. The same check against nginx-rtmp (no GOP cache) fails as it
    // should: its joiner gets nothing published before it joined.
    let nginx = Nginx::start();
    let nurl = nginx.url("late");
    let relay = spawn_tally(&[
        "stream", &nurl, "--video", "test", "--audio", "sine", "--size", "640x360", "--keyint", LONG_GOP_SECS, "--duration", "60",
    ]);
    nginx.wait_publishing("late", &relay, Duration::from_secs(15));
    let nginx_reference = Watcher::start(&nurl);
    let (_, edge) = mid_gop(&nginx_reference, 1000, 7000);
    let rec = rt.block_on(record_until(&nurl, Duration::from_secs(30), |r| r.video_frames() > 0)).expect("nginx player");
    let first = rec.video().first().map(|s| (*s).clone()).unwrap_or_else(|| panic!("nginx sent no video\n{}", nginx.diagnostics()));
    assert!(first.keyframe && first.ts > edge, "nginx-rtmp's joiner started at {first:?}, the live edge was {edge} ms");
    eprintln!("nginx-rtmp's late joiner waited for the keyframe at {} ms (joined at {edge} ms)", first.ts);
}

/// The media between the `nth` status ending with `suffix` and the next
/// ending with `until`.
fn media_after<'a>(rec: &'a Recording, suffix: &str, nth: usize, until: &str) -> Vec<&'a Seen> {
    media_of(rec.between(suffix, nth, until))
}

/// One publisher's stretch of a player's recording: its AVC profile comes
/// first, its video starts on a keyframe and runs unbroken at 30 fps for at
/// least `min_secs`.
fn assert_one_publisher(media: &[&Seen], profile: u8, min_secs: f64, what: &str) {
    let header = media.iter().find(|s| s.kind == MediaKind::Video && s.config);
    assert_eq!(header.and_then(|h| h.avc_profile), Some(profile), "{what}: AVC sequence header {header:?}");
    let video: Vec<&&Seen> = media.iter().filter(|s| s.kind == MediaKind::Video && !s.config).collect();
    assert!(video.first().is_some_and(|v| v.keyframe), "{what}: video does not start on a keyframe: {:?}", video.first());
    for w in video.windows(2) {
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!((1..=50).contains(&step), "{what}: video timestamp {} ms -> {} ms", w[0].ts, w[1].ts);
    }
    let span = video.last().map_or(0, |l| l.ts - video[0].ts);
    assert!(f64::from(span) / 1000.0 >= min_secs, "{what}: {} frames over only {span} ms", video.len());
}

#[test]
fn a_new_publisher_takes_over_and_players_keep_playing() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("show");
    let first = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "30"]);
    server.wait_live("show", &first, Duration::from_secs(20));
    let first_peer = server.stream("show").expect("listed")["publisher"].clone();

    let rt = runtime();
    // The player watches the first publisher for a second and a half...
    let mut player = rt.block_on(async {
        let mut l = Listener::connect(&url).await.expect("player");
        l.listen_until(Duration::from_secs(20), |r| r.video_frames() >= 45).await.expect("play");
        l
    });
    // ...and goes on until the second publisher has come and gone.
    let player = rt.spawn(async move {
        player.listen_until(Duration::from_secs(60), |r| r.count_status("UnpublishNotify") >= 2).await.map(|_| player.rec)
    });
    // The second publisher is ffmpeg (x264 High profile), so its frames
    // cannot be mistaken for the first's (openh264, Constrained Baseline).
    let second = ffmpeg_publish_live(&url, "320x180", 5);
    let out = first.wait_output(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the replaced publisher must stop with an error:\n{err}");
    assert!(err.contains("NetStream.Publish.BadName") && err.contains("took this stream over"), "{err}");
    assert!(wait_until(Duration::from_secs(10), || server.stream("show").is_some_and(|s| s["publisher"] != first_peer && s["live"] == true)));
    second.wait_success(Duration::from_secs(30));
    let rec = rt.block_on(player).expect("player task").expect("player");
    eprintln!("player saw statuses {:?} and {} video frames", rec.statuses(), rec.video_frames());

    // One connection throughout: the first publisher's stream, the
    // takeover announced, then the second publisher's whole stream.
    let notices: Vec<String> = rec.statuses().into_iter().filter(|s| s.contains("ublishNotify")).collect();
    assert_eq!(notices, ["NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify"]);
    let takeover = rec.heard.iter().position(|h| matches!(h, Heard::Status { code, .. } if code.ends_with("UnpublishNotify"))).unwrap_or(0);
    assert_one_publisher(&media_of(&rec.heard[..takeover]), TALLY_AVC_PROFILE, 1.0, "before the takeover");
    assert_one_publisher(&media_after(&rec, "PublishNotify", 0, "UnpublishNotify"), X264_AVC_PROFILE, 4.0, "after the takeover");
}

#[test]
fn no_takeover_refuses_the_second_publisher() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&["--no-takeover"]);
    let url = server.url("solo");
    let first = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "10"]);
    server.wait_live("solo", &first, Duration::from_secs(20));
    let first_peer = server.stream("solo").expect("listed")["publisher"].clone();
    let second = run_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "2"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("NetStream.Publish.BadName") && err.contains("already being published"), "{err}");
    // ffmpeg is told the same, in its own words.
    let ff = ffmpeg_publish_live(&url, "320x180", 2);
    let out = ff.wait_output(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already being published"), "ffmpeg: {}\n{err}", out.status);
    assert_eq!(server.stream("solo").expect("listed")["publisher"], first_peer, "the first publisher kept the stream");
    first.wait_success(Duration::from_secs(30));
}

#[test]
fn the_publish_key_is_required_as_query_or_suffix() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&["--publish-key", "s3cret-key"]);
    let bare = run_tally(&["stream", &server.url("cam"), "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "1"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&bare.stderr);
    assert_eq!(bare.status.code(), Some(1), "{err}");
    assert!(err.contains("NetStream.Publish.Denied") && err.contains("publish key"), "{err}");
    let wrong = ffmpeg_publish_live(&server.url("cam?key=guess"), "320x180", 1).wait_output(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && err.contains("publish key"), "ffmpeg with a wrong key: {}\n{err}", wrong.status);
    // Tally with the key as a query, ffmpeg with it as a suffix.
    for (name, use_ffmpeg) in [("cam?key=s3cret-key", false), ("cam-s3cret-key", true)] {
        let url = server.url(name);
        let publisher = if use_ffmpeg {
            ffmpeg_publish_live(&url, "320x180", 3)
        } else {
            spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "3"])
        };
        // Players need no key; the stream is listed under its plain name.
        server.wait_live("cam", &publisher, Duration::from_secs(20));
        let rt = runtime();
        let rec = rt.block_on(record_until(&server.url("cam"), Duration::from_secs(10), |r| r.video_frames() >= 10)).expect("player");
        assert!(rec.video_frames() >= 10, "{name}: {rec:?}");
        publisher.wait_success(Duration::from_secs(30));
        // The key appears nowhere in the server's log.
        assert!(!server.proc().stderr_text().contains("s3cret-key"), "the publish key leaked into the log");
    }
}

#[test]
fn players_wait_across_unpublish_and_republish() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("again");
    let rt = runtime();
    // The player is there first, before any publisher.
    let player = rt.spawn({
        let url = url.clone();
        async move { record_until(&url, Duration::from_secs(60), |r| r.count_status("UnpublishNotify") >= 2).await }
    });
    assert!(wait_until(Duration::from_secs(10), || server.stream("again").is_some_and(|s| s["players"] == 1)));
    // ffmpeg first, then Tally: the player waits through both changes.
    for round in 0..2 {
        let publisher = if round == 0 {
            ffmpeg_publish_live(&url, "320x180", 3)
        } else {
            spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "3"])
        };
        publisher.wait_success(Duration::from_secs(30));
        // Not live any more (or gone, once the player has left too).
        assert!(wait_until(Duration::from_secs(10), || server.stream("again").is_none_or(|s| s["live"] == false)), "round {round}");
    }
    let rec = rt.block_on(player).expect("task").expect("player");
    eprintln!("statuses: {:?}; {} video messages", rec.statuses(), rec.video_frames());
    let notices: Vec<String> = rec.statuses().into_iter().filter(|s| s.contains("ublishNotify")).collect();
    assert_eq!(
        notices,
        ["NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify"]
    );
    assert_one_publisher(&media_after(&rec, "PublishNotify", 0, "UnpublishNotify"), X264_AVC_PROFILE, 2.5, "ffmpeg's stream");
    assert_one_publisher(&media_after(&rec, "PublishNotify", 1, "UnpublishNotify"), TALLY_AVC_PROFILE, 2.5, "Tally's stream");
}

#[test]
fn players_wait_when_a_publisher_drops_its_connection_and_get_the_next_one() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("dropped");
    let rt = runtime();
    let mut player = rt.block_on(Listener::connect(&url)).expect("player");
    let peer = player.local_addr();
    assert!(wait_until(Duration::from_secs(10), || listed_player(&server, "dropped", &peer).is_some()), "the player was not listed");
    // ffmpeg publishes, and is killed (SIGKILL) two seconds into its
    // stream: its socket closes with no deleteStream, no FCUnpublish.
    let first = ffmpeg_publish_live(&url, "320x180", 60);
    server.wait_live("dropped", &first, Duration::from_secs(20));
    let heard = rt.block_on(player.listen_until(Duration::from_secs(30), |r| r.video_frames() >= 60)).expect("play");
    assert!(matches!(heard, Ended::Done), "the player got {} frames of the first publisher: {heard:?}", player.rec.video_frames());
    first.signal("KILL");
    assert!(first.wait_timeout(Duration::from_secs(10)).is_some(), "ffmpeg outlived SIGKILL");
    // The server sees the stream end; its player stays, listed.
    let mut info = Value::Null;
    let ended = wait_until(Duration::from_secs(10), || {
        info = server.stream("dropped").unwrap_or_default();
        info["live"] != true
    });
    assert!(ended, "the stream stayed live after its publisher's connection dropped: {info}");
    assert!(info["players"] == 1 && listed_player(&server, "dropped", &peer).is_some(), "the player is gone once the publisher dropped: {info}");
    // A new publisher (Tally) arrives; the same connection plays it.
    let player = rt.spawn(async move {
        let r = player.listen_until(Duration::from_secs(60), |r| r.count_status("UnpublishNotify") >= 2).await;
        r.map(|e| (e, player.rec))
    });
    let second = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "3"]);
    second.wait_success(Duration::from_secs(30));
    let (end, rec) = rt.block_on(player).expect("task").expect("player");
    eprintln!("statuses: {:?}; {} video messages; ended {end:?}", rec.statuses(), rec.video_frames());
    assert!(matches!(end, Ended::Done), "the player did not see the second publisher out ({end:?}): {:?}", rec.statuses());
    let notices: Vec<String> = rec.statuses().into_iter().filter(|s| s.contains("ublishNotify")).collect();
    assert_eq!(
        notices,
        ["NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify"]
    );
    // In order: all of ffmpeg's stream, then all of Tally's, each whole.
    assert_one_publisher(&media_after(&rec, "PublishNotify", 0, "UnpublishNotify"), X264_AVC_PROFILE, 1.5, "the dropped ffmpeg's stream");
    assert_one_publisher(&media_after(&rec, "PublishNotify", 1, "UnpublishNotify"), TALLY_AVC_PROFILE, 2.5, "Tally's stream after it");
}

/// 2^24 ms: where an RTMP timestamp stops fitting the 24-bit header field
/// and goes as an extended timestamp (about 4 h 40 min into a stream).
const TS_24_BITS: u32 = 1 << 24;

/// A publisher (ffmpeg, or Tally with its hidden `--start-offset-ms`)
/// whose timestamps start 3.5 s short of 2^24 ms — compressed time: the
/// crossing comes 3.5 s in, not 4 h 40 min — and ffmpeg playing through the
/// server: its copy, timestamps kept (`-copyts`), spans 2^24 ms with video
/// and audio strictly rising in small steps.
fn a_stream_crosses_2_pow_24_ms_to_ffmpeg(use_tally: bool, stream: &str) {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url(stream);
    let dir = TestDir::new("ts-wrap");
    let start_ms = TS_24_BITS - 3500;
    let publisher = if use_tally {
        let offset = start_ms.to_string();
        spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "9", "--start-offset-ms", &offset])
    } else {
        Proc::spawn(
            "ffmpeg publisher",
            std::process::Command::new(require("ffmpeg"))
                .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
                .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
                .args(["-t", "9", "-output_ts_offset", &format!("{:.3}", f64::from(start_ms) / 1000.0)])
                .args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-b:v", "800k"])
                .args(["-c:a", "aac", "-ac", "2", "-b:a", "128k", "-f", "flv", &url]),
        )
    };
    server.wait_live(stream, &publisher, Duration::from_secs(20));
    // ffmpeg plays 150 frames (5 s) and keeps the timestamps it is given.
    let out = dir.join("player.flv");
    let player = Proc::spawn(
        "ffmpeg player",
        std::process::Command::new(require("ffmpeg"))
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "10000000", "-i", &url])
            .args(["-frames:v", "150", "-map", "0", "-c", "copy", "-copyts", "-f", "flv"])
            .arg(&out),
    );
    player.wait_success(Duration::from_secs(40));
    publisher.wait_success(Duration::from_secs(30));
    let info = probe(&out);
    let crossing = f64::from(TS_24_BITS) / 1000.0;
    for (what, pts) in [("video", info.video_pts()), ("audio", info.audio_pts())] {
        let (first, last) = (pts.first().copied().unwrap_or(0.0), pts.last().copied().unwrap_or(0.0));
        eprintln!("{what}: {} packets, {first:.3} s .. {last:.3} s", pts.len());
        assert!(first < crossing - 0.2 && last > crossing + 1.0, "{what} does not span 2^24 ms ({crossing} s): {first} .. {last}");
        for w in pts.windows(2) {
            let step = w[1] - w[0];
            assert!(step > 0.0 && step <= 0.1, "{what} went {} s -> {} s", w[0], w[1]);
        }
    }
    assert!(info.video_pts().len() >= 140, "video: {} packets", info.video_pts().len());
}

#[test]
fn an_ffmpeg_stream_crosses_2_pow_24_ms_through_the_server_to_ffmpeg() {
    a_stream_crosses_2_pow_24_ms_to_ffmpeg(false, "wrap-ffmpeg");
}

#[test]
fn a_tally_stream_crosses_2_pow_24_ms_through_the_server_to_ffmpeg() {
    a_stream_crosses_2_pow_24_ms_to_ffmpeg(true, "wrap-tally");
}

#[test]
fn every_chunk_header_type_crosses_2_pow_24_ms_through_the_server() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("chunks");
    let rt = runtime();
    // The player is there first; the publisher then sends 120 frames
    // (4 s of media, in real time), headers of type 0, 1, 2 and 3 in
    // turn, starting a second short of 2^24 ms.
    let player = rt.spawn({
        let url = url.clone();
        async move { record_until(&url, Duration::from_secs(30), |r| r.count_status("UnpublishNotify") >= 1).await }
    });
    assert!(wait_until(Duration::from_secs(10), || server.stream("chunks").is_some_and(|s| s["players"] == 1)), "no player");
    let sent = rt.block_on(publish_with_every_chunk_type(&url, TS_24_BITS - 1000, 120)).expect("publisher");
    let rec = rt.block_on(player).expect("task").expect("player");
    let got: Vec<u32> = rec.media().iter().filter(|s| s.kind == MediaKind::Video).map(|s| s.ts).collect();
    eprintln!("sent {} video messages, {} .. {}; the player got {}", sent.len(), sent[0], sent[sent.len() - 1], got.len());
    assert!(sent[0] < TS_24_BITS && sent[sent.len() - 1] > TS_24_BITS + 2000, "the publisher did not cross 2^24 ms: {sent:?}");
    // Every message, with the timestamp it was sent with: strictly rising
    // through 2^24 ms, in steps of 33 or 34 ms.
    for w in got.windows(2) {
        assert!((33..=34).contains(&w[1].wrapping_sub(w[0])), "the player's video went {} ms -> {} ms", w[0], w[1]);
    }
    assert_eq!(got, sent, "the player's video timestamps differ from those sent");
}

/// This player's entry in the stream's `player_list`, if it is listed.
fn listed_player(server: &TallyServer, stream: &str, peer: &str) -> Option<Value> {
    server.stream(stream)?["player_list"].as_array()?.iter().find(|p| p["peer"] == peer).cloned()
}

/// Where a player's video jumps ahead by more than a second of media and
/// resumes on a keyframe: (last timestamp before, keyframe timestamp).
fn skip_to_keyframe(rec: &Recording) -> Option<(u32, u32)> {
    rec.video().windows(2).find(|w| w[1].ts > w[0].ts + 1000 && w[1].keyframe).map(|w| (w[0].ts, w[1].ts))
}

/// Polls `condition` inside a runtime every [`POLL_INTERVAL`] up to `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    condition()
}

/// Largest pause between two video frames at a player that keeps up, while
/// another is stalled. The publisher sends a frame every 17 ms; a server
/// that waited on the stalled socket would pause everyone for as long as
/// that player's buffers and queue take to give up (many seconds).
const MAX_PAUSE_FOR_OTHERS: Duration = Duration::from_secs(1);

/// How a viewer reaches the server in the slow-viewer tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Rtmp,
    HttpFlv,
}

/// A viewer of either protocol that reads only when told to (a few per
/// test: the RTMP one's size does not matter).
#[allow(clippy::large_enum_variant)]
enum Viewer {
    Rtmp(Listener),
    Http(FlvReader),
}

impl Viewer {
    async fn connect(server: &TallyServer, stream: &str, protocol: Protocol) -> Viewer {
        match protocol {
            Protocol::Rtmp => {
                let mut l = Listener::connect(&server.url(stream)).await.expect("RTMP viewer");
                let started = l.listen_until(Duration::from_secs(10), |r| r.count_status("Play.Start") > 0).await.expect("plays");
                assert_eq!(started, Ended::Done, "play never started: {:?}", l.rec.statuses());
                Viewer::Rtmp(l)
            }
            Protocol::HttpFlv => Viewer::Http(FlvReader::connect(server.http_port, &format!("/live/{stream}.flv")).await.expect("HTTP-FLV viewer")),
        }
    }

    async fn read_until(&mut self, limit: Duration, stop: impl FnMut(&Recording) -> bool) -> Result<Ended, String> {
        match self {
            Viewer::Rtmp(l) => l.listen_until(limit, stop).await,
            Viewer::Http(r) => r.read_until(limit, stop).await,
        }
    }

    fn local_addr(&self) -> String {
        match self {
            Viewer::Rtmp(l) => l.local_addr(),
            Viewer::Http(r) => r.local_addr(),
        }
    }

    fn rec(self) -> Recording {
        match self {
            Viewer::Rtmp(l) => l.rec,
            Viewer::Http(r) => r.rec,
        }
    }
}

/// Both ways a viewer can watch.
const PROTOCOLS: [Protocol; 2] = [Protocol::Rtmp, Protocol::HttpFlv];

/// A viewer that stops reading is skipped to a keyframe, then disconnected,
/// over RTMP and over HTTP-FLV alike, side by side in one run; viewers of
/// both protocols that keep up — ours, timing every frame, and ffmpeg —
/// get every frame without waiting on them.
#[test]
fn a_slow_player_is_skipped_then_dropped_and_slows_no_one() {
    let _serial = realtime_lock();
    let dir = TestDir::new("slow-player");
    // 40 s of noisy 640x360 at ~12 Mbit/s, a keyframe every second, sent
    // by ffmpeg at twice real time (~3 MB/s): a stalled viewer's socket
    // buffers fill within seconds, then its queue.
    let clip = dir.join("heavy.flv");
    let frames = make_clip(&clip, &ClipSpec { size: "640x360", secs: 40, kbps: 12_000, gop: 30, noise: true });
    let server = TallyServer::start(&[]);
    let url = server.url("fast");
    let rt = runtime();
    let ff_outs = PROTOCOLS.map(|p| dir.join(&format!("ffmpeg-{p:?}.flv")));
    let (slow, good) = rt.block_on(async {
        // The slow viewers: they read only when told to.
        let mut slow = Vec::new();
        for protocol in PROTOCOLS {
            let viewer = Viewer::connect(&server, "fast", protocol).await;
            slow.push((protocol, viewer.local_addr(), viewer));
        }
        // Viewers that keep up: ours, timing every frame, and ffmpeg's. The
        // HTTP-FLV body only pauses when the publisher leaves: ours reads
        // until it has every frame, ffmpeg until nothing came for 3 s.
        let good: Vec<_> = PROTOCOLS
            .map(|protocol| {
                let (url, port) = (url.clone(), server.http_port);
                tokio::spawn(async move {
                    match protocol {
                        Protocol::Rtmp => record_until(&url, Duration::from_secs(120), |r| r.count_status("UnpublishNotify") >= 1).await,
                        Protocol::HttpFlv => {
                            let mut r = FlvReader::connect(port, "/live/fast.flv").await?;
                            r.read_until(Duration::from_secs(120), |rec| rec.video_frames() >= frames).await?;
                            Ok(r.rec)
                        }
                    }
                })
            })
            .into();
        let ff = [ffmpeg_read(&url, 60.0, &ff_outs[0]), common::media::ffmpeg_read_until_end(&server.http_url("fast"), 3, &ff_outs[1])];
        let joined = eventually(Duration::from_secs(20), || server.stream("fast").is_some_and(|s| s["players"] == 6)).await;
        assert!(joined, "viewers never joined: {:?}", server.stream("fast"));
        let publisher = ffmpeg_publish_clip(&clip, &url, 2.0);

        for (protocol, addr, _) in &slow {
            let listed = listed_player(&server, "fast", addr).unwrap_or_default();
            let want = if *protocol == Protocol::Rtmp { "rtmp" } else { "http-flv" };
            assert_eq!(listed["protocol"], want, "{protocol:?}: listed as {listed}");
        }
        // 1. Stalled until the server has skipped them.
        let skipped = eventually(Duration::from_secs(60), || {
            slow.iter().all(|(_, addr, _)| listed_player(&server, "fast", addr).is_some_and(|p| p["skips"].as_u64() >= Some(1)))
        })
        .await;
        assert!(skipped, "a stalled viewer was never skipped: {:?}\n{}", server.stream("fast"), publisher.describe());
        // 2. Reading again, each sees the skip: after what was already in
        // its socket, a keyframe more than a second of media ahead.
        for (protocol, _, viewer) in &mut slow {
            let seen = viewer.read_until(Duration::from_secs(30), |r| skip_to_keyframe(r).is_some()).await.expect("slow viewer reads");
            assert_eq!(seen, Ended::Done, "the slow {protocol:?} viewer never saw a skip to a keyframe");
        }
        // 3. Stalled again until the server gives up on them.
        let dropped = eventually(Duration::from_secs(60), || slow.iter().all(|(_, addr, _)| listed_player(&server, "fast", addr).is_none())).await;
        assert!(dropped, "a slow viewer was never dropped: {:?}", server.stream("fast"));
        // 4. Reading to the end: (over RTMP the server's reason, then) the close.
        for (protocol, _, viewer) in &mut slow {
            let end = viewer.read_until(Duration::from_secs(60), |_| false).await.unwrap_or_else(|e| {
                panic!("the slow {protocol:?} viewer, reading to the end: {e}\n{}", tail(&server.proc().stderr_text(), 12))
            });
            assert_eq!(end, Ended::Closed, "the server kept the dropped {protocol:?} viewer's connection open");
        }
        publisher.wait_success(Duration::from_secs(120));
        for f in &ff {
            let status = f.wait_timeout(Duration::from_secs(60));
            assert!(status.is_some_and(|s| s.success()), "{}", f.describe());
        }
        let mut good_recs = Vec::new();
        for g in good {
            good_recs.push(g.await.expect("task").expect("good viewer"));
        }
        (slow.into_iter().map(|(p, addr, v)| (p, addr, v.rec())).collect::<Vec<_>>(), good_recs)
    });

    let log = server.proc().stderr_text();
    for (protocol, addr, rec) in &slow {
        // Skipped to a keyframe first, then dropped with a reason: told
        // over RTMP, logged for both.
        let (before, after) = skip_to_keyframe(rec).unwrap_or_default();
        eprintln!("the slow {protocol:?} viewer jumped from {before} ms to the keyframe at {after} ms; statuses {:?}", rec.statuses());
        if *protocol == Protocol::Rtmp {
            let failed = rec.heard.iter().position(|h| matches!(h, Heard::Status { rejected: true, description, .. } if description.contains("too slow")));
            let skip_at = rec.heard.iter().position(|h| matches!(h, Heard::Media(s) if s.ts == after && s.keyframe));
            assert!(failed.is_some() && skip_at < failed, "expected the skip before a 'too slow' error: {:?}", rec.statuses());
        }
        assert!(
            log.lines().any(|l| l.contains("too slow") && l.contains(addr.as_str())),
            "no reason logged for dropping the slow {protocol:?} viewer {addr}:\n{}",
            tail(&log, 20)
        );
    }
    // The others got every frame, and never waited on the slow ones.
    for (protocol, rec) in PROTOCOLS.iter().zip(&good) {
        assert_eq!(rec.video_frames(), frames, "our {protocol:?} viewer lost frames");
        let gap = largest_arrival_gap(&rec.video());
        eprintln!("the good {protocol:?} viewer's largest pause between frames: {gap:?}");
        assert!(gap < MAX_PAUSE_FOR_OTHERS, "the good {protocol:?} viewer waited {gap:?} between two frames while the slow ones stalled");
    }
    for (protocol, out) in PROTOCOLS.iter().zip(&ff_outs) {
        assert_eq!(probe(out).video_packets.len(), frames, "ffmpeg's {protocol:?} viewer lost frames");
    }
}

#[test]
fn hostile_clients_lose_only_their_own_connection() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("steady");
    let dir = TestDir::new("hostile");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "20"]);
    server.wait_live("steady", &publisher, Duration::from_secs(20));
    // ffmpeg watches throughout, beside Tally's own player.
    let ff_out = dir.join("ffmpeg.flv");
    let ff = ffmpeg_read(&url, 14.0, &ff_out);
    let rt = runtime();
    rt.block_on(async {
        let good = tokio::spawn({
            let url = url.clone();
            async move { record_until(&url, Duration::from_secs(14), |_| false).await }
        });
        let port = server.rtmp_port;
        // 1. Garbage after the handshake: an invalid chunk header.
        let mut garbage = raw_handshake(port).await;
        garbage.write_all(&[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0, 0, 0, 0xFF, 0xFF]).await.ok();
        garbage.write_all(&[0xC5; 4096]).await.ok();
        // 2. A message declaring 16 MiB - 1 (over the 8 MiB cap).
        let mut huge = raw_handshake(port).await;
        huge.write_all(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x14, 0, 0, 0, 0]).await.ok();
        // 3. Too many chunk streams at once.
        let mut many = raw_handshake(port).await;
        // Each chunk stream starts a 1000-byte message with one full
        // 128-byte chunk and never finishes it.
        for id in 64u16..300 {
            let b = (id - 64).to_le_bytes();
            let mut chunk = vec![0x01, b[0], b[1], 0, 0, 0, 0, 0x03, 0xE8, 0x09, 1, 0, 0, 0];
            chunk.extend_from_slice(&[0x17; 128]);
            many.write_all(&chunk).await.ok();
        }
        // 4. A handshake that never finishes (one byte, then silence).
        let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        stalled.write_all(&[3]).await.ok();
        for (what, conn, limit) in [
            ("garbage", &mut garbage, Duration::from_secs(20)),
            ("huge message", &mut huge, Duration::from_secs(20)),
            ("too many chunk streams", &mut many, Duration::from_secs(20)),
            ("unfinished handshake", &mut stalled, Duration::from_secs(40)),
        ] {
            assert!(closed_within(conn, limit).await, "{what}: the server kept the connection open");
        }
        let rec = good.await.expect("task").expect("good player");
        eprintln!("the well-behaved player received {} video messages meanwhile", rec.video_frames());
        // 14 s of 30 fps, unbroken (the GOP cache adds up to 2 s at the start).
        assert_one_publisher(&rec.media(), TALLY_AVC_PROFILE, 13.0, "Tally's player");
    });
    ff.wait_success(Duration::from_secs(60));
    let info = probe(&ff_out);
    assert_video_continuous(&info.video_pts(), 30.0, 13.0);
    let log = server.proc().stderr_text();
    for reason in ["chunk stream", "exceeds the limit", "more than", "handshake not completed"] {
        assert!(log.contains(reason), "no '{reason}' in the server log:\n{}", tail(&log, 30));
    }
    assert!(!publisher.has_exited() || publisher.try_status().is_some_and(|s| s.success()));
}

#[test]
fn over_the_connection_limit_a_client_is_told_the_server_is_full() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&["--max-connections", "2"]);
    let url = server.url("full");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "15"]);
    server.wait_live("full", &publisher, Duration::from_secs(20));
    let rt = runtime();
    // (The API would be a third connection too: not asked here.)
    let _player = rt.block_on(play_started(&url));
    // ffmpeg, the third connection, is refused with the reason.
    let ff = ffmpeg_read(&url, 2.0, &std::env::temp_dir().join("tally-never-written.flv"));
    let out = ff.wait_output(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Server full"), "ffmpeg was not told the server is full: {}\n{err}", out.status);
    // So is Tally's player, with the status code.
    let third = rt.block_on(record_until(&url, Duration::from_secs(10), |r| !r.statuses().is_empty())).expect("third connection");
    assert!(
        third.statuses().iter().any(|s| s == "rejected: NetConnection.Connect.Rejected"),
        "the third connection was not told why: {:?}",
        third.statuses()
    );
    publisher.wait_success(Duration::from_secs(30));
}

#[test]
fn over_the_per_address_limit_a_client_is_told_so_and_others_are_unaffected() {
    let _serial = realtime_lock();
    // Loopback is exempt by default; --limit-loopback applies the cap here.
    let server = TallyServer::start(&["--max-per-address", "2", "--limit-loopback"]);
    let url = server.url("peraddr");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "15"]);
    server.wait_live("peraddr", &publisher, Duration::from_secs(20));
    let rt = runtime();
    let _player = rt.block_on(play_started(&url));
    // The third connection from 127.0.0.1: ffmpeg is refused with the reason.
    let ff = ffmpeg_read(&url, 2.0, &std::env::temp_dir().join("tally-never-written.flv"));
    let out = ff.wait_output(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Too many connections from your address"),
        "ffmpeg was not told why: {}\n{err}",
        out.status
    );
    let log = server.proc().stderr_text();
    assert!(
        log.lines().any(|l| l.contains("refusing connection") && l.contains("127.0.0.1:") && l.contains("Too many connections from your address")),
        "no log line naming the peer and the reason:\n{}",
        tail(&log, 20)
    );
    // The publisher was not disturbed.
    publisher.wait_success(Duration::from_secs(30));
}

#[test]
fn loopback_clients_are_not_limited_per_address_by_default() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&["--max-per-address", "1"]);
    let url = server.url("local");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "15"]);
    server.wait_live("local", &publisher, Duration::from_secs(20));
    // A second and a third local connection are served.
    let out = std::env::temp_dir().join(format!("tally-local-{}.flv", std::process::id()));
    let ff = ffmpeg_read(&url, 2.0, &out);
    ff.wait_success(Duration::from_secs(30));
    let rt = runtime();
    let third = rt.block_on(record_until(&url, Duration::from_secs(10), |r| !r.statuses().is_empty())).expect("third connection");
    assert!(!third.statuses().iter().any(|s| s.starts_with("rejected")), "{:?}", third.statuses());
    let _ = std::fs::remove_file(&out);
    publisher.wait_success(Duration::from_secs(30));
}
