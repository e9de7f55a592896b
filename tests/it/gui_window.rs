//! `tally` with no arguments opens a real window (under Xvfb here) that
//! keeps running and draws: a screenshot of the screen is not blank, and
//! the app is still alive after it was taken — with the default renderer
//! (glow) and, in builds that have it (`tally::ui::HAS_WGPU`: Windows,
//! macOS, `--features wgpu`), with `--renderer wgpu`; in builds without
//! it, asking for wgpu or losing OpenGL is said clearly.

use crate::common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// A drawn window (test pattern, text, buttons) has thousands of colours; an
/// empty X screen has one, a window that never painted one or two.
const MIN_COLOURS: u64 = 64;

#[test]
fn the_app_opens_a_window_titled_tally_and_draws_it() {
    opens_and_draws("", &[], "glow");
}

#[test]
fn with_the_wgpu_renderer_too_where_the_build_has_it() {
    if tally::ui::HAS_WGPU {
        opens_and_draws("", &["--renderer", "wgpu"], "wgpu");
    } else {
        // Refused as a bad argument (exit 2), before any window, saying how
        // to get a build that has it.
        let out = Command::new(tally_bin()).args(["--renderer", "wgpu"]).env("DISPLAY", ":99").output().expect("run tally");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("draws with OpenGL only") && stderr.contains("--features wgpu"), "{stderr}");
    }
}

/// Mesa told to offer OpenGL 1.1 only: glow cannot make its context. With
/// wgpu in the build the app opens the window with it instead, saying so;
/// without, it exits saying what failed and what to do.
#[test]
fn where_opengl_fails_the_window_opens_with_wgpu_or_says_why_not() {
    const NO_GL: &str = "MESA_GL_VERSION_OVERRIDE=1.1 MESA_GLES_VERSION_OVERRIDE=1.0";
    if tally::ui::HAS_WGPU {
        let stderr = opens_and_draws(NO_GL, &[], "wgpu");
        assert!(stderr.contains("the OpenGL renderer could not open the window"), "{stderr}");
    } else {
        let (_proc, stdout, stderr) = run_under_xvfb(NO_GL, &[], "no-gl");
        assert!(stdout.contains("APP-EXITED") && stdout.contains("EXIT=1"), "the app did not exit 1:\n{stdout}\n{stderr}");
        assert!(stderr.contains("could not open the window with OpenGL") && stderr.contains("--features wgpu"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Runs the app under Xvfb with `env` and `args`; asserts it opened with
/// renderer `name`, drew and stayed up; its stderr.
fn opens_and_draws(env: &str, args: &[&str], name: &str) -> String {
    let (proc, stdout, stderr) = run_under_xvfb(env, args, name);
    assert!(stdout.contains("WINDOW-FOUND"), "no Tally window appeared:\n{}", proc.describe());
    let colours: u64 = stdout.lines().find_map(|l| l.strip_prefix("COLOURS=")).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    assert!(colours >= MIN_COLOURS, "the window never drew: its screenshot has {colours} colours\n{}", proc.describe());
    assert!(stdout.contains("APP-ALIVE"), "the app had exited by the time it was screenshotted:\n{}", proc.describe());
    assert!(!stderr.contains("panicked"), "{}", proc.describe());
    let said = stderr.lines().rev().find(|l| l.contains("opening the window")).unwrap_or_default().to_lowercase();
    assert!(said.contains(&format!("(renderer: {name})")), "the window was not opened with {name}:\n{}", proc.describe());
    stderr
}

/// Runs the app under Xvfb with `env` and `args`: the process, its
/// stdout (the script's WINDOW-FOUND, COLOURS=, APP-ALIVE, or APP-EXITED
/// and EXIT=) and stderr.
fn run_under_xvfb(env: &str, args: &[&str], name: &str) -> (Proc, String, String) {
    let xvfb = require("xvfb-run");
    require("xwininfo");
    let import = require("import");
    let identify = require("identify");
    let dir = TestDir::new(&format!("gui-{name}"));
    let shot = dir.join("window.png");
    // xvfb-run starts a private X server. The script waits until that
    // server answers (on a loaded machine the app could otherwise find no
    // X server: seen once in a full run), starts the app, waits for its
    // window (or its exit, with the status), then screenshots the screen
    // until it shows more than a blank (or gives up), checks the app is
    // still running, and stops it.
    let script = format!(
        "for i in $(seq 1 100); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done; \
         RUST_LOG=info {env} {bin} {args} & app=$!; found=; \
         for i in $(seq 1 150); do \
           if xwininfo -root -tree | grep -q '\"Tally\"'; then echo WINDOW-FOUND; found=1; break; fi; \
           if ! kill -0 $app 2>/dev/null; then echo APP-EXITED; break; fi; \
           sleep 0.2; \
         done; \
         if [ -z \"$found\" ]; then wait $app; echo EXIT=$?; exit 0; fi; \
         for i in $(seq 1 100); do \
           {import} -window root {shot} 2>/dev/null; \
           colours=$({identify} -format '%k' {shot} 2>/dev/null || echo 0); \
           if [ \"$colours\" -ge {MIN_COLOURS} ]; then break; fi; \
           sleep 0.2; \
         done; \
         echo COLOURS=$colours; \
         if kill -0 $app 2>/dev/null; then echo APP-ALIVE; fi; \
         kill $app; wait $app; echo APP-STOPPED",
        bin = tally_bin().display(),
        args = args.join(" "),
        import = import.display(),
        identify = identify.display(),
        shot = shot.display(),
    );
    let proc = Proc::spawn(
        "xvfb-run",
        Command::new(xvfb)
            .args(["-a", "-s", "-screen 0 1280x800x24", "bash", "-c", &script])
            .env("XDG_RUNTIME_DIR", dir.path()),
    );
    let out = proc.wait_output(Duration::from_secs(120));
    eprintln!("screenshot {}", shot.display());
    (proc, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}
