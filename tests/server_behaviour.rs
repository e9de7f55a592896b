//! `tally serve` behaviour a streamer relies on, each with real clients:
//! late joiners start at once (GOP cache), takeover and `--no-takeover`,
//! the publish key, players that wait across unpublish/republish, a slow
//! player that is skipped and then dropped without slowing anyone, hostile
//! clients that lose only their own connection, and the connection limit.

mod common;

use common::rtmp_client::*;
use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The bar for a late joiner: first picture within 300 ms.
const FIRST_PICTURE_LIMIT: Duration = Duration::from_millis(300);

#[test]
fn a_late_joiner_decodes_its_first_picture_within_300_ms() {
    let _serial = realtime_lock();
    require("nginx");
    let server = TallyServer::start(&[]);
    let url = server.url("late");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--duration", "30"]);
    server.wait_live("late", &publisher, Duration::from_secs(20));
    // The same stream through nginx-rtmp (no GOP cache), for comparison.
    let nginx = Nginx::start();
    let nurl = nginx.url("late");
    let relay = spawn_tally(&["stream", &nurl, "--video", "test", "--audio", "sine", "--duration", "30"]);
    nginx.wait_publishing("late", &relay, Duration::from_secs(15));

    let rt = runtime();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // Joins land at different points of the 2 s GOP.
    for _ in 0..6 {
        let (t, size) = rt.block_on(time_to_first_picture(&url, Duration::from_secs(10))).expect("picture from tally serve");
        assert_eq!(size, (1280, 720));
        ours.push(t);
        let (t, _) = rt.block_on(time_to_first_picture(&nurl, Duration::from_secs(10))).expect("picture from nginx");
        theirs.push(t);
    }
    let ms = |v: &[Duration]| v.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0)).collect::<Vec<_>>().join(", ");
    eprintln!("time to first picture, ms — tally serve: [{}]; nginx-rtmp: [{}]", ms(&ours), ms(&theirs));
    for t in &ours {
        assert!(*t <= FIRST_PICTURE_LIMIT, "a late joiner waited {t:?} for its first picture (limit {FIRST_PICTURE_LIMIT:?})");
    }
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
    let player = rt.spawn({
        let url = url.clone();
        async move { record_until(&url, Duration::from_secs(12), |r| r.statuses.iter().filter(|s| s.ends_with("PublishNotify")).count() >= 1 && r.video_frames() > 60).await }
    });
    // The player is in before the takeover.
    assert!(wait_until(Duration::from_secs(10), || server.stream("show").is_some_and(|s| s["players"] == 1)));
    let second = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "4"]);
    let out = first.wait_output(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the replaced publisher must stop with an error:\n{err}");
    assert!(err.contains("NetStream.Publish.BadName") && err.contains("took this stream over"), "{err}");
    assert!(wait_until(Duration::from_secs(10), || server.stream("show").is_some_and(|s| s["publisher"] != first_peer && s["live"] == true)));
    let rec = rt.block_on(player).expect("player task").expect("player");
    eprintln!("player saw statuses {:?} and {} video frames", rec.statuses, rec.video_frames());
    assert!(rec.statuses.iter().any(|s| s.ends_with("UnpublishNotify")), "{:?}", rec.statuses);
    assert!(rec.statuses.iter().any(|s| s.ends_with("PublishNotify")), "{:?}", rec.statuses);
    assert!(rec.video_frames() > 60, "the player stopped getting video: {}", rec.video_frames());
    second.wait_success(Duration::from_secs(30));
}

#[test]
fn no_takeover_refuses_the_second_publisher() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&["--no-takeover"]);
    let url = server.url("solo");
    let first = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "8"]);
    server.wait_live("solo", &first, Duration::from_secs(20));
    let second = run_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "2"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("NetStream.Publish.BadName") && err.contains("already being published"), "{err}");
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
    let wrong = run_tally(&["stream", &server.url("cam?key=guess"), "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "1"], Duration::from_secs(30));
    assert_eq!(wrong.status.code(), Some(1), "{}", String::from_utf8_lossy(&wrong.stderr));
    for name in ["cam?key=s3cret-key", "cam-s3cret-key"] {
        let url = server.url(name);
        let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "3"]);
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
        async move {
            record_until(&url, Duration::from_secs(40), |r| {
                r.statuses.iter().filter(|s| s.ends_with(".PublishNotify")).count() >= 2 && r.video_frames() >= 2 * 60
            })
            .await
        }
    });
    assert!(wait_until(Duration::from_secs(10), || server.stream("again").is_some_and(|s| s["players"] == 1)));
    for round in 0..2 {
        let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "3"]);
        publisher.wait_success(Duration::from_secs(30));
        // Not live any more (or gone, once the player has left too).
        assert!(wait_until(Duration::from_secs(10), || server.stream("again").is_none_or(|s| s["live"] == false)), "round {round}");
    }
    let rec = rt.block_on(player).expect("task").expect("player");
    eprintln!("statuses: {:?}; {} video messages", rec.statuses, rec.video_frames());
    let notices: Vec<&str> = rec.statuses.iter().map(String::as_str).filter(|s| s.contains("ublishNotify")).collect();
    assert_eq!(
        notices,
        ["NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify"][..notices.len().min(4)]
    );
    assert!(notices.len() >= 3, "{notices:?}");
    assert!(rec.video_frames() >= 2 * 60, "video from both publishers: {}", rec.video_frames());
}

#[test]
fn a_slow_player_is_skipped_then_dropped_and_slows_no_one() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("fast");
    let rt = runtime();
    let (sent, received, slow_closed, publish_time) = rt.block_on(async {
        // A player that reads nothing once its play has started.
        let slow = play_started(&url).await;
        // A player that keeps up.
        let good = tokio::spawn({
            let url = url.clone();
            async move { record_until(&url, Duration::from_secs(60), |r| r.statuses.iter().any(|s| s.ends_with("UnpublishNotify"))).await }
        });
        wait_players(&server, "fast", 2).await;
        // 30 s of 100 KB frames (24 Mbit/s) at 3x real time: the stalled
        // player's socket buffers fill within a second, then its queue.
        let (sent, took) = fake_publish(&url, 30, 100_000, 3.0).await.expect("publish");
        let rec = good.await.expect("task").expect("good player");
        let mut slow_stream = slow.into_inner();
        let closed = closed_within(&mut slow_stream, Duration::from_secs(30)).await;
        (sent, rec.video_frames(), closed, took)
    });
    eprintln!("sent {sent} frames in {publish_time:?}; the good player received {received}; slow player closed: {slow_closed}");
    // +1: the sequence header.
    assert_eq!(received, sent + 1, "the player that keeps up lost frames");
    assert!(slow_closed, "the server never dropped the player that stopped reading");
    let log = server.proc().stderr_text();
    assert!(log.contains("too slow"), "no reason logged for dropping the slow player:\n{}", tail(&log, 20));
}

async fn wait_players(server: &TallyServer, name: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if server.stream(name).is_some_and(|s| s["players"].as_u64() == Some(n)) {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{name} never had {n} players: {:?}", server.stream(name));
}

#[test]
fn hostile_clients_lose_only_their_own_connection() {
    let _serial = realtime_lock();
    let server = TallyServer::start(&[]);
    let url = server.url("steady");
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "20"]);
    server.wait_live("steady", &publisher, Duration::from_secs(20));
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
            ("garbage", &mut garbage, Duration::from_secs(5)),
            ("huge message", &mut huge, Duration::from_secs(5)),
            ("too many chunk streams", &mut many, Duration::from_secs(5)),
            ("unfinished handshake", &mut stalled, Duration::from_secs(15)),
        ] {
            assert!(closed_within(conn, limit).await, "{what}: the server kept the connection open");
        }
        let rec = good.await.expect("task").expect("good player");
        eprintln!("the well-behaved player received {} video messages meanwhile", rec.video_frames());
        // ~14 s of 30 fps (the GOP cache adds up to 2 s at the start).
        assert!(rec.video_frames() >= 13 * 30, "the good player was disturbed: {} video messages", rec.video_frames());
    });
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
    let publisher = spawn_tally(&["stream", &url, "--video", "test", "--audio", "silence", "--size", "320x180", "--duration", "10"]);
    server.wait_live("full", &publisher, Duration::from_secs(20));
    let rt = runtime();
    rt.block_on(async {
        let _player = play_started(&url).await;
        let third = record_until(&url, Duration::from_secs(10), |r| !r.statuses.is_empty()).await.expect("third connection");
        assert!(
            third.statuses.iter().any(|s| s == "rejected: NetConnection.Connect.Rejected"),
            "the third connection was not told why: {:?}",
            third.statuses
        );
    });
    publisher.wait_success(Duration::from_secs(30));
}
