//! `tally` with no arguments opens a real window (under Xvfb here) that keeps
//! running and draws the preview.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_app_opens_a_window_titled_tally() {
    let xvfb = require("xvfb-run");
    require("xwininfo");
    let dir = TestDir::new("gui");
    // xvfb-run starts a private X server; the script lists windows once the
    // app has mapped one, then stops the app.
    let script = format!(
        "{bin} & app=$!; for i in $(seq 1 100); do \
           if xwininfo -root -tree | grep -q '\"Tally\"'; then echo WINDOW-FOUND; break; fi; \
           if ! kill -0 $app 2>/dev/null; then echo APP-EXITED; break; fi; \
           sleep 0.2; \
         done; kill $app; wait $app; echo APP-STOPPED",
        bin = tally_bin().display()
    );
    let proc = Proc::spawn(
        "xvfb-run",
        Command::new(xvfb)
            .args(["-a", "-s", "-screen 0 1280x800x24", "bash", "-c", &script])
            .env("XDG_RUNTIME_DIR", dir.path()),
    );
    let out = proc.wait_output(Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WINDOW-FOUND"), "no Tally window appeared:\n{}", proc.describe());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", proc.describe());
}
