//! A microphone without hardware, reached through cpal's real ALSA path.
//!
//! ALSA's `type file` PCM (infile over a `null` slave) captures a file's
//! samples, but the `null` slave has no clock: it hands out a whole file in
//! milliseconds, which no real microphone does and which the drift
//! correction rightly treats as a broken device. So the fake microphone is
//! a private PulseAudio server (its own socket, its own HOME) with a null
//! sink, which runs on the system clock like a sound card; `pacat` plays the
//! test signal into it, and an ALSA PCM of `type pulse` on the sink's
//! monitor — declared in `$HOME/.asoundrc` with a hint, so `arecord -L` and
//! cpal list it — is the microphone Tally opens. Tally runs with `HOME`
//! pointing at that directory.

use super::{Proc, TestDir, media, require, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The ALSA PCM name of the fake microphone (`--audio mic:tallymic`).
pub const FAKE_MIC_PCM: &str = "tallymic";
/// Its description, as `tally devices` shows it.
pub const FAKE_MIC_DESCRIPTION: &str = "Tally test microphone";

/// A private PulseAudio server playing a tone into the fake microphone.
pub struct FakeMic {
    dir: TestDir,
    _server: Proc,
    player: Proc,
}

impl FakeMic {
    /// Starts the server and plays `seconds` of a `hz` sine at `dbfs` (peak) into the microphone.
    pub fn start(hz: f64, dbfs: f64, seconds: f64) -> FakeMic {
        let pulseaudio = require("pulseaudio");
        let pacat = require("pacat");
        let dir = TestDir::new("fakemic");
        let socket = dir.join("pulse.sock");
        let runtime = dir.join("run");
        std::fs::create_dir_all(&runtime).expect("create runtime dir");
        let config = dir.join("server.pa");
        std::fs::write(
            &config,
            format!(
                "load-module module-null-sink sink_name=tallytest rate=48000 channels=2 format=s16le\n\
                 load-module module-native-protocol-unix socket={} auth-anonymous=1\n",
                socket.display()
            ),
        )
        .expect("write pulseaudio config");
        let server = Proc::spawn(
            "pulseaudio",
            Command::new(pulseaudio)
                .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes"])
                .args(["--log-target=stderr", "-F"])
                .arg(&config)
                .env("HOME", dir.path())
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("XDG_CONFIG_HOME", dir.join("config")),
        );
        if !wait_until(Duration::from_secs(10), || socket.exists() || server.has_exited()) || !socket.exists() {
            panic!("pulseaudio did not open {}\n{}", socket.display(), server.describe());
        }
        std::fs::write(
            dir.join(".asoundrc"),
            format!(
                "pcm.{FAKE_MIC_PCM} {{\n  type pulse\n  server \"unix:{}\"\n  device \"tallytest.monitor\"\n  \
                 hint {{ show on description \"{FAKE_MIC_DESCRIPTION}\" }}\n}}\n",
                socket.display()
            ),
        )
        .expect("write .asoundrc");
        let tone = dir.join("tone.raw");
        media::write_tone_raw(&tone, hz, dbfs, seconds);
        let player = Proc::spawn(
            "pacat",
            Command::new(pacat)
                .arg(format!("--server=unix:{}", socket.display()))
                .args(["-d", "tallytest", "--rate=48000", "--channels=2", "--format=s16le", "--raw"])
                .arg(&tone)
                .env("HOME", dir.path())
                .env("XDG_RUNTIME_DIR", &runtime),
        );
        FakeMic { dir, _server: server, player }
    }

    /// The HOME under which ALSA finds the microphone.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// A directory for the test's other files.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The tone player (still running while the tone plays).
    pub fn player(&self) -> &Proc {
        &self.player
    }
}
