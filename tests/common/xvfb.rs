//! A private X server for the tests that capture or show windows, and the X
//! clients they show on it.
//!
//! [`Xvfb::start`] lets Xvfb pick a free display itself (`-displayfd`: no
//! race with other servers starting at the same time), waits until
//! `xwininfo -root` answers, and stops the server on drop.
//! The server runs with `-noreset`: without it Xvfb starts afresh each time
//! its last client disconnects, which undoes anything an `xrandr` or
//! `xdotool` call set up between two clients.

use super::{Proc, require, wait_until};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// How long the server, a client's window or an `xrandr` change may take.
pub const X_TIMEOUT: Duration = Duration::from_secs(15);

/// A running Xvfb.
pub struct Xvfb {
    server: Proc,
    display: String,
}

/// Where a window is, as `xwininfo` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowInfo {
    /// Window id.
    pub id: u32,
    /// Root coordinates of the window's contents (inside its border).
    pub x: i32,
    /// See `x`.
    pub y: i32,
    /// Width of the contents.
    pub width: u32,
    /// Height of the contents.
    pub height: u32,
    /// Mapped and visible (`IsViewable`).
    pub viewable: bool,
}

impl Xvfb {
    /// Starts `Xvfb -screen 0 SCREEN` (e.g. `1280x720x24`) with `extra`
    /// arguments (`-extension MIT-SHM` turns an extension off).
    pub fn start_with(screen: &str, extra: &[&str]) -> Xvfb {
        let bin = require("Xvfb");
        require("xwininfo");
        let mut cmd = Command::new(bin);
        cmd.args(["-displayfd", "1", "-screen", "0", screen, "-nolisten", "tcp", "-noreset"]).args(extra);
        let server = Proc::spawn("Xvfb", &mut cmd);
        let mut number = None;
        wait_until(X_TIMEOUT, || {
            let out = server.stdout_text();
            number = out.strip_suffix('\n').and_then(|n| n.trim().parse::<u32>().ok());
            number.is_some() || server.has_exited()
        });
        let Some(number) = number else {
            panic!("Xvfb named no display within {X_TIMEOUT:?}\n{}", server.describe());
        };
        let xvfb = Xvfb { server, display: format!(":{number}") };
        let answered = wait_until(X_TIMEOUT, || xvfb.command("xwininfo").arg("-root").output().is_ok_and(|o| o.status.success()));
        assert!(answered, "Xvfb {} does not answer xwininfo -root\n{}", xvfb.display, xvfb.server.describe());
        xvfb
    }

    /// [`Xvfb::start_with`] and nothing extra.
    pub fn start(screen: &str) -> Xvfb {
        Xvfb::start_with(screen, &[])
    }

    /// The display name, `:N`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `program` (found with [`require`]) with `DISPLAY` set to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(require(program));
        cmd.env("DISPLAY", &self.display);
        cmd
    }

    /// Runs an X client to completion and returns its output; panics when it
    /// fails.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} on {} failed ({}): {}",
            self.display,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The window titled exactly `title` (`xwininfo -name`), if any.
    pub fn window(&self, title: &str) -> Option<WindowInfo> {
        let out = self.command("xwininfo").args(["-name", title]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        parse_xwininfo(&String::from_utf8_lossy(&out.stdout))
    }

    /// Waits until the window titled `title` is mapped and viewable.
    pub fn wait_viewable(&self, title: &str, client: &Proc) -> WindowInfo {
        let mut info = None;
        wait_until(X_TIMEOUT, || {
            info = self.window(title).filter(|w| w.viewable);
            info.is_some() || client.has_exited()
        });
        info.unwrap_or_else(|| panic!("no viewable window '{title}' on {} within {X_TIMEOUT:?}\n{}", self.display, client.describe()))
    }

    /// Shows `image` in a window titled `title` with its top-left corner at
    /// `at` (ImageMagick's `display`); returns the client once its window is
    /// viewable. Killing the client closes the window.
    pub fn show_image(&self, image: &Path, title: &str, at: (i32, i32)) -> (Proc, WindowInfo) {
        require("display");
        let mut cmd = self.command("display");
        cmd.args(["-title", title, "-geometry", &format!("+{}+{}", at.0, at.1)]).arg(image);
        let client = Proc::spawn(&format!("display {title}"), &mut cmd);
        let info = self.wait_viewable(title, &client);
        (client, info)
    }
}

impl Drop for Xvfb {
    /// SIGTERM first, so the server removes its socket and lock file (a
    /// SIGKILL, [`Proc`]'s drop, leaves them in /tmp for the next one to
    /// find stale).
    fn drop(&mut self) {
        self.server.signal("TERM");
        if self.server.wait_timeout(Duration::from_secs(5)).is_none() {
            self.server.kill();
        }
    }
}

/// The fields of `xwininfo`'s report that locate a window.
fn parse_xwininfo(text: &str) -> Option<WindowInfo> {
    let field = |name: &str| -> Option<i64> {
        text.lines().find_map(|l| l.trim().strip_prefix(name)).and_then(|v| v.trim().parse().ok())
    };
    let id = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("xwininfo: Window id:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|hex| u32::from_str_radix(hex.trim_start_matches("0x"), 16).ok())?;
    // "Absolute upper-left" is the outer corner, border included.
    let border = field("Border width:")?;
    Some(WindowInfo {
        id,
        x: (field("Absolute upper-left X:")? + border) as i32,
        y: (field("Absolute upper-left Y:")? + border) as i32,
        width: field("Width:")? as u32,
        height: field("Height:")? as u32,
        viewable: text.contains("Map State: IsViewable"),
    })
}

#[test]
fn xwininfo_reports_are_parsed() {
    let text = "\nxwininfo: Window id: 0x2003e4 \"tallybars\"\n\n  Absolute upper-left X:  100\n  Absolute upper-left Y:  50\n  \
                Relative upper-left X:  100\n  Width: 640\n  Height: 360\n  Border width: 2\n  Map State: IsViewable\n";
    let info = parse_xwininfo(text).unwrap();
    assert_eq!(info, WindowInfo { id: 0x2003e4, x: 102, y: 52, width: 640, height: 360, viewable: true });
}
