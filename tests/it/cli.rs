//! The CLI contract: bad arguments get one line naming the argument and a
//! non-zero exit; nothing panics; `--version` works; bad destinations fail
//! with a final, clear error.

use std::process::{Command, Output};

fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally")).args(args).output().expect("run tally")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_prints_the_version() {
    let o = tally(&["--version"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn bad_arguments_get_one_line_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["record", "x.flv", "--size", "abc"], "--size"),
        (&["record", "x.flv", "--size", "1281x720"], "--size"),
        (&["record", "x.flv", "--fps", "0"], "--fps"),
        (&["record", "x.flv", "--fps", "many"], "--fps"),
        (&["record", "x.flv", "--video-bitrate", "-5"], "--video-bitrate"),
        (&["record", "x.flv", "--keyint", "0"], "--keyint"),
        (&["record", "x.flv", "--duration", "-1"], "--duration"),
        (&["record", "x.flv", "--video", "webcam"], "--video"),
        (&["record", "x.flv", "--audio", "trumpet"], "--audio"),
        (&["record", "x.flv", "--no-such-flag"], "--no-such-flag"),
        (&["stream"], "URL"),
        (&["stream", "http://example.invalid/app/key"], "URL"),
        (&["stream", "rtmp://"], "URL"),
    ];
    for (args, name) in cases {
        let o = tally(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?} should print one line: {err}");
        assert!(err.contains(name), "{args:?}: error should name {name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_bad_url_error_never_echoes_the_key() {
    let o = tally(&["stream", "ftp://host/app/SECRET-KEY-123"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("SECRET-KEY-123"), "{}", stderr(&o));
}

#[test]
fn connection_refused_is_a_final_clear_error() {
    // A port that nobody listens on: bind, read the number, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/SECRET-KEY-456");
    let o = tally(&["stream", &url, "--duration", "5", "--size", "320x240"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("could not connect") && err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("SECRET-KEY-456"), "key leaked: {err}");
}

#[test]
fn dns_failure_is_a_final_clear_error() {
    // Run inside a fresh network namespace (only a downed loopback), so the
    // lookup fails locally and no query leaves the machine.
    let o = Command::new("unshare")
        .args(["--net", env!("CARGO_BIN_EXE_tally"), "stream", "rtmp://no-such-host.invalid/live/SECRET-KEY-789"])
        .args(["--duration", "5", "--size", "320x240"])
        .output()
        .expect("unshare (util-linux) runs");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("could not resolve host 'no-such-host.invalid'"), "{err}");
    assert!(!err.contains("SECRET-KEY-789"), "key leaked: {err}");
}

#[test]
fn unwritable_record_path_is_a_clear_error() {
    let o = tally(&["record", "/nonexistent-dir/out.flv", "--duration", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent-dir/out.flv"), "{err}");
}

#[test]
fn without_a_display_the_app_says_so_in_one_line_and_exits_1() {
    let o = Command::new(env!("CARGO_BIN_EXE_tally"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run tally");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("no display") && err.contains("tally stream") && err.contains("tally serve"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
