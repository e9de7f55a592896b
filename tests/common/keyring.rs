//! A private D-Bus session with GNOME Keyring's Secret Service, for the
//! tests of where stream keys go (the CLI's and the window's).

use super::{Proc, require, wait_until};
use std::path::Path;
use std::time::Duration;

/// A private D-Bus session bus with GNOME Keyring's Secret Service on it.
/// Locked: no login keyring, so every collection is locked and nothing can
/// answer an unlock prompt, as on a desktop whose keyring was never
/// unlocked. Unlocked: a login keyring made and unlocked with a password
/// on stdin (`--unlock`), as after a desktop login.
pub struct PrivateKeyring {
    /// The bus's address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    /// The `XDG_RUNTIME_DIR` the keyring runs with.
    pub runtime: std::path::PathBuf,
    _bus: Proc,
    _keyring: Proc,
}

impl PrivateKeyring {
    pub fn locked(home: &Path) -> PrivateKeyring {
        Self::start(home, false)
    }

    pub fn unlocked(home: &Path) -> PrivateKeyring {
        Self::start(home, true)
    }

    fn start(home: &Path, unlocked: bool) -> PrivateKeyring {
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let bus = Proc::spawn(
            "dbus-daemon",
            std::process::Command::new(require("dbus-daemon"))
                .args(["--session", "--nofork", "--nopidfile", "--print-address=2"])
                .env("HOME", home),
        );
        assert!(bus.wait_for_stderr("unix:", Duration::from_secs(20)), "no session bus\n{}", bus.describe());
        let address = bus.stderr_text().lines().find(|l| l.starts_with("unix:")).unwrap_or_default().trim().to_string();
        let mut daemon = std::process::Command::new(require("gnome-keyring-daemon"));
        daemon
            .args(["--foreground", "--components=secrets"])
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &address);
        if unlocked {
            daemon.arg("--unlock");
        }
        // --unlock reads the login keyring's password from stdin, to its end.
        let keyring = Proc::spawn_with_input("gnome-keyring-daemon", &mut daemon, unlocked.then_some("test-login-password"));
        let dbus_send = require("dbus-send");
        let owned = wait_until(Duration::from_secs(20), || {
            std::process::Command::new(&dbus_send)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
                .args(["org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        });
        assert!(owned, "the Secret Service never appeared on the bus\n{}", keyring.describe());
        PrivateKeyring { address, runtime, _bus: bus, _keyring: keyring }
    }

    /// What `secret-tool search --all service tally` reads back: every key
    /// Tally stored in this keyring.
    pub fn tally_secrets(&self) -> String {
        let out = std::process::Command::new(require("secret-tool"))
            .args(["search", "--all", "service", "tally"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .output()
            .unwrap_or_else(|e| panic!("cannot run secret-tool: {e}"));
        // Attributes on stderr, secrets on stdout; nothing found is exit 1.
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

