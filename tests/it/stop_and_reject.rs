//! Ending a live stream: Ctrl-C unpublishes cleanly and exits 0; a server
//! that refuses the stream gets a final error and a non-zero exit, once.

use crate::common;

use common::*;
use std::time::Duration;

#[test]
fn ctrl_c_unpublishes_cleanly_and_exits_zero() {
    let _serial = realtime_lock();
    let nginx = Nginx::start();
    let url = nginx.url("ctrlc-SECRET-KEY-1");
    let tally = spawn_tally(&["stream", &url, "--size", "640x360"]);
    nginx.wait_publishing("ctrlc-SECRET-KEY-1", &tally, Duration::from_secs(15));
    // Tally's own word that the destination is live: its "live url=" line
    // (the "connecting url=" line names the `live` application too, so the
    // word alone says nothing).
    assert!(tally.wait_for_stderr(" live url=rtmp://", Duration::from_secs(10)), "{}", tally.describe());
    tally.signal("INT");
    let status = tally.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|| panic!("tally did not stop: {}", tally.describe()));
    assert!(status.success(), "exit {status}: {}", tally.describe());
    let err = tally.stderr_text();
    assert!(err.contains("unpublished"), "{err}");
    assert!(!err.contains("SECRET-KEY-1"), "key leaked: {err}");
    // nginx saw the stream end (deleteStream) rather than a dropped connection.
    assert!(
        wait_until(Duration::from_secs(5), || nginx.log_count("deleteStream") > 0),
        "nginx never saw deleteStream:\n{}",
        nginx.diagnostics()
    );
}

#[test]
fn a_refused_publish_is_a_final_error_without_retries() {
    let _serial = realtime_lock();
    let nginx = NginxConfig::new().on_publish_allow(&["good"]).start();
    let url = nginx.url("bad-SECRET-KEY-2");
    let out = run_tally(&["stream", &url, "--size", "640x360", "--duration", "5"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // nginx-rtmp's on_publish denial closes the connection without onStatus:
    // reported once, as a rejection.
    assert_eq!(err.matches("closed the connection in answer to publish").count(), 1, "{err}");
    assert!(!err.contains("SECRET-KEY-2"), "key leaked: {err}");
    // One attempt: a rejection is final, not a reason to reconnect.
    assert_eq!(nginx.log_count("publish: name='bad-"), 1, "expected exactly one publish:\n{}", nginx.diagnostics());
}
