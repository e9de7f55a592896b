//! `tally check` against real peers: nginx-rtmp (pass; a wrong application;
//! nothing listening), RTMPS through stunnel with a private CA (with and
//! without `--ca-file`), and a publish test through a proxy limited to
//! 1 Mbit/s that must report no more than that. And Tally's player over RTMPS,
//! through the same transport.

use crate::common;

use common::proxy::FaultProxy;
use common::tls::{Stunnel, TestCa};
use common::*;
use serde_json::Value;
use std::time::Duration;

const KEY: &str = "check-SECRETKEY";

fn check(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = run_tally(&[&["check", "--json"], args].concat(), Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("SECRETKEY") && !stderr.contains("SECRETKEY"), "the key leaked:\n{stdout}\n{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (out.status.code(), lines, stderr)
}

fn assert_steps(report: &Value, steps: &[&str]) {
    for s in steps {
        assert!(report[format!("{s}_ms")].as_f64().is_some_and(|ms| ms >= 0.0), "no {s}_ms in {report}");
    }
}

#[test]
fn nginx_passes_a_wrong_app_fails_at_connect_and_a_closed_port_at_tcp() {
    let nginx = Nginx::start();
    let good = format!("rtmp://127.0.0.1:{}/live/{KEY}", nginx.port());
    let (code, reports, stderr) = check(&[&good]);
    assert_eq!(code, Some(0), "{reports:?}\n{stderr}");
    assert_eq!(reports.len(), 1);
    assert_eq!((&reports[0]["ok"], &reports[0]["failed_step"]), (&Value::Bool(true), &Value::Null), "{}", reports[0]);
    assert_steps(&reports[0], &["resolve", "tcp", "handshake", "connect"]);
    assert!(reports[0]["tls_ms"].is_null(), "no TLS on rtmp://: {}", reports[0]);
    assert_eq!(nginx.log_count("publish: name="), 0, "the check published:\n{}", nginx.diagnostics());

    // Several at once: the wrong application, and a port nobody listens on.
    let wrong_app = format!("rtmp://127.0.0.1:{}/nosuchapp/{KEY}", nginx.port());
    let closed = format!("rtmp://127.0.0.1:{}/live/{KEY}", free_port());
    let (code, reports, stderr) = check(&[&good, &wrong_app, &closed]);
    assert_eq!(code, Some(1), "a failing destination fails the run\n{stderr}");
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(reports[0]["ok"], true);
    assert_eq!((&reports[1]["ok"], reports[1]["failed_step"].as_str()), (&Value::Bool(false), Some("connect")), "{}", reports[1]);
    assert_steps(&reports[1], &["resolve", "tcp", "handshake"]);
    // nginx-rtmp closes the connection on an unknown application: the
    // error says which one to look at.
    assert!(reports[1]["error"].as_str().is_some_and(|e| e.contains("is 'nosuchapp' the right application?")), "{}", reports[1]);
    assert_eq!((&reports[2]["ok"], reports[2]["failed_step"].as_str()), (&Value::Bool(false), Some("tcp")), "{}", reports[2]);
    assert!(reports[2]["error"].as_str().is_some_and(|e| e.contains("refused")), "{}", reports[2]);

    // The words a person reads.
    let out = run_tally(&["check", &closed], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("FAIL rtmp://127.0.0.1") && text.contains("failed at tcp"), "{text}");
}

#[test]
fn rtmps_passes_with_the_private_ca_and_fails_at_tls_without_it() {
    let nginx = Nginx::start();
    let ca = TestCa::new();
    let tls = Stunnel::start(&ca, nginx.port());
    let url = tls.url("live", KEY);
    let ca_pem = ca.ca_pem();
    let (code, reports, stderr) = check(&[&url, "--ca-file", ca_pem.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{reports:?}\n{stderr}\n{}", tls.log());
    assert_steps(&reports[0], &["resolve", "tcp", "tls", "handshake", "connect"]);
    let (code, reports, _) = check(&[&url]);
    assert_eq!(code, Some(1));
    assert_eq!(reports[0]["failed_step"], "tls", "{}", reports[0]);
    assert!(reports[0]["error"].as_str().is_some_and(|e| e.contains("--ca-file")), "{}", reports[0]);
}

#[test]
fn a_publish_test_through_a_one_megabit_path_reports_no_more_than_one_megabit() {
    // nginx acknowledges every 5 MB by default: more than the test sends.
    let nginx = NginxConfig::new().server_directive("ack_window 250000;").start();
    let proxy = FaultProxy::start(nginx.port());
    proxy.limit_rate(1_000_000);
    let url = proxy.url("live", KEY);
    let (code, reports, stderr) = check(&[&url, "--publish-test", "16", "--video-bitrate", "2500", "--size", "640x360"]);
    assert_eq!(code, Some(0), "{reports:?}\n{stderr}");
    assert!(stderr.contains("GOES LIVE"), "a test that goes on air says so first:\n{stderr}");
    let kbps = reports[0]["upload_kbps"].as_f64().unwrap_or_else(|| panic!("no upload_kbps: {}", reports[0]));
    eprintln!("publish test through 1 Mbit/s: {kbps} kbit/s");
    // What physics allows: no more than the path carries (+10 % for the
    // proxy's pacing granularity over the measured half). How close to it a
    // loaded machine gets is a figure, measured by `cargo bench --bench recovery -- upload`
    // (docs/PERFORMANCE.md), not asserted here.
    assert!(kbps > 0.0 && kbps <= 1100.0, "a 1 Mbit/s path measured {kbps} kbit/s");
    assert!(reports[0]["acknowledged_bytes"].as_u64().is_some_and(|b| b > 0), "nginx acknowledged nothing: {}", reports[0]);
    assert_steps(&reports[0], &["connect", "publish"]);
    assert!(wait_until(Duration::from_secs(10), || nginx.log_count("publish: name='check-") >= 1), "{}", nginx.diagnostics());
}

#[test]
fn tallys_player_plays_over_rtmps_with_the_private_ca() {
    use tally::net::rtmp_player::RtmpPlayer;
    use tally::rtmp::{ClientEvent, MediaKind, RtmpUrl};
    let nginx = Nginx::start();
    let ca = TestCa::new();
    let tls = Stunnel::start(&ca, nginx.port());
    let publisher = spawn_tally(&["stream", &nginx.url("secure"), "--video", "test", "--audio", "sine", "--size", "320x180", "--duration", "600"]);
    nginx.wait_publishing("secure", &publisher, Duration::from_secs(30));
    let url = RtmpUrl::parse(&tls.url("live", "secure")).unwrap();
    let ca_pem = ca.ca_pem();
    let rt = common::rtmp_client::runtime();
    let (frames, untrusted) = rt.block_on(async {
        let untrusted = RtmpPlayer::connect(&url).await.err().map(|e| tally::error_chain(&e));
        let mut player = RtmpPlayer::connect_with(&url, Some(&ca_pem)).await.expect("connect over TLS");
        let mut frames = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while frames < 30 {
            match tokio::time::timeout_at(deadline, player.next_event()).await {
                Ok(Ok(Some(ClientEvent::Media { kind: MediaKind::Video, .. }))) => frames += 1,
                Ok(Ok(Some(_))) => {}
                other => panic!("stopped after {frames} frames: {other:?}"),
            }
        }
        (frames, untrusted)
    });
    assert_eq!(frames, 30);
    assert!(untrusted.is_some_and(|e| e.contains("--ca-file")), "without the CA the certificate is refused");
}
