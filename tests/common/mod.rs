//! Shared harness for Tally's integration tests: private nginx-rtmp instances,
//! ffmpeg as an RTMP listener and as a player, ffprobe parsed into plain
//! structs, timeline assertions, and child processes that die with the test.
//!
//! Rules this module keeps, so a failure points at Tally and not at the test:
//! - No sleep stands in for synchronisation. Every wait is for an observable
//!   event (a port in LISTEN, a line in nginx's log, a process exit), polled
//!   every [`POLL_INTERVAL`] until a deadline, and a missed deadline panics
//!   with the logs of every process involved.
//! - Every child process is owned by a [`Proc`], which kills it on drop, so a
//!   panicking test leaves no nginx or ffmpeg behind; while unwinding it also
//!   prints the process's stderr, and [`Nginx`] prints its error log.
//! - Tools that are missing fail the test with the Debian package to install
//!   ([`require`]); integration tests never skip silently.
//!
//! Dev-dependency: `serde_json` (ffprobe's JSON output).

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

pub mod camera;
pub mod flv_judge;
pub mod frames;
pub mod http_flv;
pub mod keyring;
pub mod live;
pub mod media;
pub mod players;
pub mod proxy;
pub mod tls;
pub mod pulse;
pub mod rtmp_client;
pub mod xvfb;

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How often a condition is re-checked while waiting for it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a freshly started server (nginx, `ffmpeg -listen`) may take to
/// accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of a process's stderr shown in a failure message.
const LOG_TAIL_LINES: usize = 40;

/// Where Debian's libnginx-mod-rtmp puts the module; `dpkg -L` is the fallback.
const RTMP_MODULE_DEFAULT: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Set this variable to keep every test directory (nginx config and logs,
/// recorded FLV files) for a post-mortem.
pub const KEEP_DIRS_ENV: &str = "TALLY_KEEP_TEST_DIRS";

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it,
/// release it). Another process may take it before the caller binds it; the
/// servers started here retry with a new port when that happens.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

/// Polls `condition` every [`POLL_INTERVAL`] until it holds (true) or
/// `timeout` has passed (false). The condition is always checked at least
/// once, and once more at the deadline.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Serialises the tests that encode or pace media in real time. The machines
/// that run the suite have two cores: two 1080p encoders plus their ffmpeg
/// readers at once would starve each other and show up as dropped frames,
/// which is a property of the test machine, not of Tally. Hold the guard for
/// the whole test. (Test binaries already run one after another, so a
/// process-wide lock is enough.)
pub fn realtime_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that panicked while holding the lock says nothing about the next.
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Debian package that provides `tool`, for failure messages.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "nginx" => "nginx",
        "ffmpeg" | "ffprobe" => "ffmpeg",
        "ss" => "iproute2",
        "pulseaudio" => "pulseaudio",
        "pacat" => "pulseaudio-utils",
        "xvfb-run" => "xvfb",
        "xwininfo" | "xprop" => "x11-utils",
        "rtmpdump" => "rtmpdump",
        "gst-launch-1.0" => "gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad",
        "cvlc" => "vlc-bin vlc-plugin-base",
        "mpv" => "mpv",
        "runuser" | "unshare" => "util-linux",
        "mount" => "mount",
        "cc" => "gcc (build-essential)",
        "dbus-daemon" => "dbus-daemon",
        "dbus-send" => "dbus-bin",
        "gnome-keyring-daemon" => "gnome-keyring",
        "secret-tool" => "libsecret-tools",
        "dbus-run-session" => "dbus-daemon",
        "node" => "nodejs",
        "chromium" => "chromium",
        "dpkg" => "dpkg",
        "stunnel4" => "stunnel4",
        "openssl" => "openssl",
        "gnuplot" => "gnuplot-nox",
        "import" | "identify" | "display" => "imagemagick",
        "Xvfb" => "xvfb",
        "xdotool" => "xdotool",
        "xrandr" => "x11-xserver-utils",
        _ => "(unknown package)",
    }
}

/// Finds `tool` on PATH, or in /usr/sbin and /sbin (nginx lives there and a
/// non-root PATH often lacks them).
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Returns the path of an external tool the test needs (nginx, ffmpeg,
/// ffprobe). A missing tool fails the test — under `CI=true` and everywhere
/// else — naming the package to install: a skipped interop test would read as
/// a passed one.
pub fn require(tool: &str) -> PathBuf {
    match find_tool(tool) {
        Some(path) => path,
        None => {
            let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
            panic!(
                "required tool `{tool}` not found on PATH (nor in /usr/sbin, /sbin): \
                 install it with `apt-get install {}` (`make test-deps` installs every test \
                 dependency){}. Integration tests never skip.",
                package_of(tool),
                if ci { "; running under CI=true" } else { "" },
            )
        }
    }
}

/// Path of nginx's RTMP module: Debian's usual location, else the `.so` that
/// `dpkg -L libnginx-mod-rtmp` lists. Panics naming the package when absent.
pub fn rtmp_module_path() -> PathBuf {
    let default = PathBuf::from(RTMP_MODULE_DEFAULT);
    if default.is_file() {
        return default;
    }
    let listed = Command::new("dpkg")
        .args(["-L", "libnginx-mod-rtmp"])
        .output();
    if let Ok(out) = listed {
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text
            .lines()
            .map(str::trim)
            .find(|line| line.ends_with(".so") && line.contains("rtmp"))
            .map(PathBuf::from);
        if let Some(path) = found.filter(|p| p.is_file()) {
            return path;
        }
    }
    panic!(
        "nginx RTMP module not found (neither {RTMP_MODULE_DEFAULT} nor in `dpkg -L \
         libnginx-mod-rtmp`): install it with `apt-get install libnginx-mod-rtmp`"
    )
}

/// `text` without ANSI colour codes (tracing colours its output even into a pipe).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Last `lines` lines of `text`, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/// A private directory under `std::env::temp_dir()`, removed on drop (kept
/// when [`KEEP_DIRS_ENV`] is set).
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// Creates `tally-it-<label>-<pid>-<n>-<nanos>`; the name is never reused.
    pub fn new(label: &str) -> TestDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("tally-it-{label}-{}-{n}-{nanos}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match fs::create_dir(&path) {
                Ok(()) => return TestDir { path },
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create test directory {}: {e}", path.display()),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_DIRS_ENV).is_some() {
            eprintln!("keeping test directory {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

struct ProcState {
    child: Child,
    status: Option<ExitStatus>,
}

/// A child process that is killed when dropped (also while a test panics).
/// Its stdout and stderr are drained by two threads into buffers, so a chatty
/// child never blocks on a full pipe and its output can be shown on failure.
pub struct Proc {
    name: String,
    pid: u32,
    state: Mutex<ProcState>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    drains: Vec<JoinHandle<()>>,
}

fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

impl Proc {
    /// Spawns `cmd` (stdin null, stdout/stderr captured). `name` labels the
    /// process in failure messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        Proc::spawn_with_input(name, cmd, None)
    }

    /// [`Proc::spawn`], writing `input` to the child's stdin and closing it
    /// (a stream key for `--key-stdin`).
    pub fn spawn_with_input(name: &str, cmd: &mut Command, input: Option<&str>) -> Proc {
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        if let (Some(mut stdin), Some(text)) = (child.stdin.take(), input) {
            let text = text.to_owned();
            // A thread, so a child that never reads cannot block the test.
            thread::spawn(move || {
                use std::io::Write as _;
                let _ = stdin.write_all(text.as_bytes());
            });
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut drains = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            drains.push(drain(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            drains.push(drain(pipe, Arc::clone(&stderr)));
        }
        Proc {
            name: name.to_string(),
            pid: child.id(),
            state: Mutex::new(ProcState {
                child,
                status: None,
            }),
            stdout,
            stderr,
            drains,
        }
    }

    /// The label given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn state(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The exit status if the process has ended, without blocking.
    pub fn try_status(&self) -> Option<ExitStatus> {
        let mut st = self.state();
        if st.status.is_none()
            && let Ok(Some(status)) = st.child.try_wait()
        {
            st.status = Some(status);
        }
        st.status
    }

    /// True once the process has ended.
    pub fn has_exited(&self) -> bool {
        self.try_status().is_some()
    }

    /// Waits up to `timeout` for the process to end; `None` if it is still
    /// running (it is left running). After an exit, the captured output is
    /// complete.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let exited = wait_until(timeout, || self.has_exited());
        if exited {
            self.wait_drains();
        }
        self.try_status()
    }

    /// Waits up to `timeout` for an exit with status 0; otherwise kills the
    /// process and panics with its stderr.
    pub fn wait_success(&self, timeout: Duration) {
        match self.wait_timeout(timeout) {
            Some(status) if status.success() => {}
            Some(status) => panic!("{} exited with {status}\n{}", self.name, self.describe()),
            None => {
                self.kill();
                panic!(
                    "{} still running after {timeout:?}; killed\n{}",
                    self.name,
                    self.describe()
                )
            }
        }
    }

    /// Waits for the exit (up to `timeout`, else kills and panics) and
    /// returns status and captured output.
    pub fn wait_output(&self, timeout: Duration) -> Output {
        match self.wait_timeout(timeout) {
            Some(status) => Output {
                status,
                stdout: self.stdout_bytes(),
                stderr: self.stderr_bytes(),
            },
            None => {
                self.kill();
                panic!(
                    "{} still running after {timeout:?}; killed\n{}",
                    self.name,
                    self.describe()
                )
            }
        }
    }

    /// The drain threads end when the pipes close (the child exited); wait a
    /// bounded time so a grandchild holding a pipe cannot hang the test.
    fn wait_drains(&self) {
        wait_until(Duration::from_secs(2), || {
            self.drains.iter().all(JoinHandle::is_finished)
        });
    }

    /// Sends a signal by name (`INT`, `TERM`, ...) — e.g. Ctrl-C for a clean
    /// stop. Uses kill(1): the harness has no libc dependency.
    pub fn signal(&self, signal: &str) {
        if self.has_exited() {
            return;
        }
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "kill -{signal} {} ({}) failed: {status:?}",
            self.pid,
            self.name
        );
    }

    /// Kills the process (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&self) {
        let mut st = self.state();
        if st.status.is_none() {
            let _ = st.child.kill();
            st.status = st.child.wait().ok();
        }
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_bytes(&self) -> Vec<u8> {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// stdout so far, as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout_bytes()).into_owned()
    }

    /// stderr so far, as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr_bytes()).into_owned()
    }

    /// Waits until stderr contains `needle` (true), the process exits or
    /// `timeout` passes (false).
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let mut found = false;
        wait_until(timeout, || {
            found = self.stderr_text().contains(needle);
            found || self.has_exited()
        });
        found || self.stderr_text().contains(needle)
    }

    /// Name, pid, status and the tail of stderr (and of stdout if any).
    pub fn describe(&self) -> String {
        let status = match self.try_status() {
            Some(s) => s.to_string(),
            None => "running".to_string(),
        };
        let err = self.stderr_text();
        let err = if err.trim().is_empty() {
            "(empty)".to_string()
        } else {
            tail(&err, LOG_TAIL_LINES)
        };
        let mut text = format!(
            "--- {} (pid {}, {status}) stderr:\n{err}",
            self.name, self.pid
        );
        let out = self.stdout_text();
        if !out.trim().is_empty() {
            let _ = write!(
                text,
                "\n--- {} stdout:\n{}",
                self.name,
                tail(&out, LOG_TAIL_LINES)
            );
        }
        text
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            self.wait_drains();
            eprintln!("{}", self.describe());
        }
    }
}

// ---------------------------------------------------------------------------
// Tally itself
// ---------------------------------------------------------------------------

/// The `tally` binary cargo built for this test run.
pub fn tally_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tally"))
}

/// Starts `tally ARGS...` in the background.
pub fn spawn_tally(args: &[&str]) -> Proc {
    Proc::spawn("tally", Command::new(tally_bin()).args(args))
}

/// Starts `tally ARGS...` with extra environment variables (e.g. a HOME
/// holding a private `.asoundrc`).
pub fn spawn_tally_env(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> Proc {
    let mut cmd = Command::new(tally_bin());
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc::spawn("tally", &mut cmd)
}

/// Runs `tally ARGS...` to completion. Past `timeout` it is killed and the
/// test fails with its stderr.
pub fn run_tally(args: &[&str], timeout: Duration) -> Output {
    spawn_tally(args).wait_output(timeout)
}

/// A `tally` command whose configuration lives under `home`
/// (`home/.config/tally/`), with keys in the 0600 file rather than the
/// desktop's keyring, so tests never touch the user's real profiles or keys.
pub fn tally_in_home_cmd(args: &[&str], home: &Path) -> Command {
    let mut cmd = Command::new(tally_bin());
    cmd.args(args).env("HOME", home).env_remove("XDG_CONFIG_HOME").env("TALLY_SECRET_STORE", "file");
    cmd
}

/// Runs a short `tally` command (profiles) under `home`, feeding `input` on
/// stdin; returns its output. Past 60 s it is killed and the test fails.
pub fn tally_in_home(args: &[&str], home: &Path, input: Option<&str>) -> Output {
    let proc = Proc::spawn_with_input("tally", &mut tally_in_home_cmd(args, home), Some(input.unwrap_or("")));
    proc.wait_output(Duration::from_secs(60))
}

// ---------------------------------------------------------------------------
// nginx-rtmp
// ---------------------------------------------------------------------------

/// How a private nginx-rtmp is configured. [`NginxConfig::start`] writes the
/// config into a fresh directory and starts nginx on a free port.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    app: String,
    chunk_size: u32,
    /// Stream names the `on_publish` callback accepts; `None` = no callback.
    publish_allow: Option<Vec<String>>,
    application_directives: Vec<String>,
    server_directives: Vec<String>,
    /// Worker processes; more than one runs a master and `rtmp_auto_push`.
    workers: usize,
}

impl Default for NginxConfig {
    fn default() -> Self {
        NginxConfig {
            app: "live".to_string(),
            chunk_size: 4096,
            publish_allow: None,
            application_directives: Vec::new(),
            server_directives: Vec::new(),
            workers: 1,
        }
    }
}

impl NginxConfig {
    /// `application live { live on; }`, chunk_size 4096.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an `on_publish` HTTP callback (`notify_method get`) to an `http`
    /// server of the same nginx that answers 200 when the stream name is in
    /// `names` and 403 otherwise. On 403 nginx-rtmp closes the publisher's
    /// connection without an onStatus.
    pub fn on_publish_allow(mut self, names: &[&str]) -> Self {
        self.publish_allow = Some(names.iter().map(|n| n.to_string()).collect());
        self
    }

    /// An extra directive inside `application live { ... }`, e.g.
    /// `"wait_key on;"`.
    pub fn application_directive(mut self, directive: &str) -> Self {
        self.application_directives.push(directive.to_string());
        self
    }

    /// An extra directive inside the `rtmp { server { ... } }` block, e.g.
    /// `"ack_window 250000;"`.
    pub fn server_directive(mut self, directive: &str) -> Self {
        self.server_directives.push(directive.to_string());
        self
    }

    /// `workers` worker processes under a master, with `rtmp_auto_push on`
    /// so that a player on any worker sees a publisher on another (how
    /// nginx-rtmp uses more than one core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    fn render(&self, dir: &Path, rtmp_port: u16, http_port: u16, module: &Path) -> String {
        let d = dir.display();
        let mut conf = String::new();
        // The module first: `rtmp_auto_push` is one of its directives.
        let _ = writeln!(conf, "load_module {};", module.display());
        if self.workers > 1 {
            let _ = writeln!(
                conf,
                // Workers run as `user`; as root they would be `nobody`,
                // which cannot make its sockets in this private directory.
                "daemon off;\nmaster_process on;\nworker_processes {};\nrtmp_auto_push on;\nrtmp_socket_dir {d};{}",
                self.workers,
                if is_root() { "\nuser root;" } else { "" }
            );
        } else {
            let _ = writeln!(conf, "daemon off;\nmaster_process off;\nworker_processes 1;");
        }
        let _ = writeln!(conf, "pid {d}/nginx.pid;\nerror_log {d}/error.log info;");
        // Enough for the fan-out benchmark's 500 players.
        let _ = writeln!(conf, "events {{ worker_connections 4096; }}");
        let mut app = String::from("live on;\n");
        for directive in &self.application_directives {
            let _ = writeln!(app, "{directive}");
        }
        if let Some(names) = &self.publish_allow {
            let _ = writeln!(
                app,
                "notify_method get;\non_publish http://127.0.0.1:{http_port}/auth;"
            );
            let mut map = String::from("default 0;\n");
            for name in names {
                let _ = writeln!(map, "\"{name}\" 1;");
            }
            let _ = writeln!(
                conf,
                "http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/client_body;\n \
                 proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n \
                 scgi_temp_path {d}/scgi;\n map $arg_name $tally_publish_allowed {{\n{map} }}\n \
                 server {{\n  listen 127.0.0.1:{http_port};\n  location /auth {{\n   \
                 if ($tally_publish_allowed) {{ return 200; }}\n   return 403;\n  }}\n }}\n}}"
            );
        }
        let server: String = self.server_directives.iter().map(|d| format!("  {d}\n")).collect();
        let _ = writeln!(
            conf,
            "rtmp {{\n server {{\n  listen 127.0.0.1:{rtmp_port};\n  chunk_size {};\n{server}  \
             application {} {{\n{app}  }}\n }}\n}}",
            self.chunk_size, self.app
        );
        conf
    }

    /// Writes the config, starts nginx and waits until it accepts RTMP
    /// connections. A port taken between [`free_port`] and nginx's bind is
    /// retried with a new one.
    pub fn start(self) -> Nginx {
        let nginx = require("nginx");
        let module = rtmp_module_path();
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let dir = TestDir::new("nginx");
            let port = free_port();
            let http_port = if self.publish_allow.is_some() {
                free_port()
            } else {
                0
            };
            let conf_path = dir.join("nginx.conf");
            let conf = self.render(dir.path(), port, http_port, &module);
            fs::write(&conf_path, &conf)
                .unwrap_or_else(|e| panic!("write {}: {e}", conf_path.display()));
            // -e: nginx opens its compiled-in error log before reading the
            // config; point that at the private directory too.
            let proc = Proc::spawn(
                "nginx",
                Command::new(&nginx)
                    .arg("-p")
                    .arg(dir.path())
                    .arg("-c")
                    .arg(&conf_path)
                    .arg("-e")
                    .arg(dir.join("error.log")),
            );
            let server = Nginx {
                port,
                http_port,
                app: self.app.clone(),
                proc,
                dir,
            };
            match server.try_ready(READY_TIMEOUT) {
                Ok(()) => return server,
                Err(reason) => {
                    let log = server.error_log();
                    let in_use = log.contains("Address already in use")
                        || server.proc.stderr_text().contains("Address already in use");
                    if in_use && attempt < ATTEMPTS {
                        continue;
                    }
                    panic!(
                        "nginx did not start: {reason}\nconfig:\n{conf}\n{}\n--- error.log:\n{}",
                        server.proc.describe(),
                        tail(&log, LOG_TAIL_LINES)
                    );
                }
            }
        }
        unreachable!("the last attempt either returns or panics")
    }
}

/// A private nginx-rtmp on 127.0.0.1 (`daemon off; master_process off;`,
/// config, pid and logs in its own directory). Dropping it kills nginx and
/// removes the directory; if the test is panicking, the error log is printed.
pub struct Nginx {
    port: u16,
    http_port: u16,
    app: String,
    proc: Proc,
    dir: TestDir,
}

impl Nginx {
    /// nginx-rtmp with `application live { live on; }`, ready to accept.
    pub fn start() -> Nginx {
        NginxConfig::new().start()
    }

    /// The RTMP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `on_publish` HTTP server (0 when not configured).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// `rtmp://127.0.0.1:PORT/live/STREAM`.
    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{}/{stream}", self.port, self.app)
    }

    /// The private directory (config, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The nginx process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// Contents of nginx's error log (level `info`: it records connect,
    /// publish, play and disconnect of every RTMP client).
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn try_ready(&self, timeout: Duration) -> Result<(), String> {
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port));
        let mut exited = false;
        let ready = wait_until(timeout, || {
            if self.proc.has_exited() {
                exited = true;
                return true;
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if exited {
            self.proc.wait_timeout(Duration::from_secs(1));
            Err("nginx exited".to_string())
        } else if ready {
            Ok(())
        } else {
            Err(format!(
                "127.0.0.1:{} not accepting after {timeout:?}",
                self.port
            ))
        }
    }

    /// Polls a TCP connect until nginx accepts (10 s), else panics with its
    /// log. [`Nginx::start`] already did this; calling it again is harmless.
    pub fn wait_ready(&self) {
        if let Err(reason) = self.try_ready(READY_TIMEOUT) {
            panic!("{reason}\n{}", self.diagnostics());
        }
    }

    /// How many times `needle` occurs in the error log.
    pub fn log_count(&self, needle: &str) -> usize {
        self.error_log().matches(needle).count()
    }

    /// True once nginx has logged a `publish` for `stream`.
    pub fn has_publisher(&self, stream: &str) -> bool {
        self.log_count(&format!("publish: name='{stream}'")) > 0
    }

    /// Number of `play` requests nginx has logged for `stream`.
    pub fn player_count(&self, stream: &str) -> usize {
        self.log_count(&format!("play: name='{stream}'"))
    }

    /// Waits until nginx logs a publish of `stream`, giving up early when
    /// `publisher` exits. Panics with every log on timeout.
    pub fn wait_publishing(&self, stream: &str, publisher: &Proc, timeout: Duration) {
        let seen = wait_until(timeout, || {
            self.has_publisher(stream) || publisher.has_exited()
        });
        if !(seen && self.has_publisher(stream)) {
            panic!(
                "nginx saw no publish of '{stream}' (waited up to {timeout:?}, or until the publisher exited)\n{}\n{}",
                publisher.describe(),
                self.diagnostics()
            );
        }
    }

    /// Waits until nginx has logged `count` play requests for `stream`.
    pub fn wait_players(&self, stream: &str, count: usize, timeout: Duration) {
        if !wait_until(timeout, || self.player_count(stream) >= count) {
            panic!(
                "nginx saw {} play request(s) for '{stream}' within {timeout:?}, expected {count}\n{}",
                self.player_count(stream),
                self.diagnostics()
            );
        }
    }

    /// Kills nginx with SIGKILL, as a crash would, and waits until it is gone.
    pub fn kill(&self) {
        self.proc.kill();
        self.proc.wait_timeout(READY_TIMEOUT);
    }

    /// Starts nginx again on the same port with the same configuration
    /// (after [`Nginx::kill`]); waits until it accepts connections.
    pub fn restart(&mut self) {
        let conf_path = self.dir.join("nginx.conf");
        self.proc = Proc::spawn(
            "nginx",
            Command::new(require("nginx"))
                .arg("-p")
                .arg(self.dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(self.dir.join("error.log")),
        );
        self.wait_ready();
    }

    /// The process state and the tail of the error log.
    pub fn diagnostics(&self) -> String {
        format!(
            "{}\n--- nginx error.log:\n{}",
            self.proc.describe(),
            tail(&self.error_log(), LOG_TAIL_LINES)
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A master stops its workers on TERM; SIGKILL would orphan them.
        if !self.proc.has_exited() {
            let _ = Command::new("kill").arg("-TERM").arg(self.proc.pid().to_string()).status();
            self.proc.wait_timeout(Duration::from_secs(5));
        }
        self.proc.kill();
        if thread::panicking() {
            eprintln!(
                "--- nginx error.log ({}):\n{}",
                self.dir.path().display(),
                tail(&self.error_log(), LOG_TAIL_LINES)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// ffmpeg as the RTMP server
// ---------------------------------------------------------------------------

/// True when /proc/net/tcp (or tcp6) has a socket in LISTEN state on `port`.
/// Used instead of a probe connect: `ffmpeg -listen 1` accepts exactly one
/// connection, and a probe would consume it.
pub fn is_listening(port: u16) -> bool {
    const TCP_LISTEN: &str = "0A";
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let Ok(text) = fs::read_to_string(table) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            local_port == Some(port) && fields.get(3) == Some(&TCP_LISTEN)
        })
    })
}

/// `ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/x -c copy -y OUT.flv`:
/// an RTMP server that accepts one publisher, writes what it receives and
/// exits when the publisher leaves.
pub struct FfmpegListen {
    port: u16,
    proc: Proc,
}

impl FfmpegListen {
    /// Starts the listener and waits (10 s) until its port is in LISTEN state.
    pub fn start(port: u16, out_path: &Path) -> FfmpegListen {
        let ffmpeg = require("ffmpeg");
        let url = format!("rtmp://127.0.0.1:{port}/live/x");
        let proc = Proc::spawn(
            "ffmpeg -listen",
            Command::new(ffmpeg)
                .args([
                    "-hide_banner",
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-listen",
                    "1",
                    "-i",
                    &url,
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                    "-y",
                ])
                .arg(out_path),
        );
        let listening = wait_until(READY_TIMEOUT, || is_listening(port) || proc.has_exited());
        if !(listening && is_listening(port)) {
            panic!(
                "ffmpeg -listen not listening on 127.0.0.1:{port} within {READY_TIMEOUT:?}\n{}",
                proc.describe()
            );
        }
        FfmpegListen { port, proc }
    }

    /// The URL a publisher should use: `rtmp://127.0.0.1:PORT/live/x`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/x", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ffmpeg process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// Waits for ffmpeg to exit; panics (with its stderr) on timeout. Returns
    /// the status for the caller to judge.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        match self.proc.wait_timeout(timeout) {
            Some(status) => status,
            None => {
                self.proc.kill();
                panic!(
                    "ffmpeg -listen still running after {timeout:?}; killed\n{}",
                    self.proc.describe()
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ffmpeg as a publisher (an outside peer: x264 + ffmpeg's AAC and RTMP client)
// ---------------------------------------------------------------------------

/// What an ffmpeg-made clip looks like.
#[derive(Clone, Debug)]
pub struct ClipSpec {
    /// `WxH`.
    pub size: &'static str,
    /// Seconds of media (30 fps).
    pub secs: u32,
    /// x264 bitrate, kbit/s (CBR-ish: maxrate = bitrate).
    pub kbps: u32,
    /// Frames per GOP.
    pub gop: u32,
    /// Add noise so the encoder really needs the bitrate.
    pub noise: bool,
}

/// Encodes `spec` with ffmpeg (testsrc2 + a sine, libx264 High profile +
/// AAC) into an FLV at `path`; returns how many video frames it holds.
pub fn make_clip(path: &Path, spec: &ClipSpec) -> usize {
    let noise = if spec.noise { ",noise=alls=40:allf=t+u" } else { "" };
    let rate = format!("{}k", spec.kbps);
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={}:rate=30{noise}", spec.size)])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &spec.secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate])
        .args(["-g", &spec.gop.to_string(), "-keyint_min", &spec.gop.to_string(), "-sc_threshold", "0", "-bf", "0"])
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(out.status.success(), "ffmpeg could not make the clip: {}", String::from_utf8_lossy(&out.stderr));
    probe(path).video_packets.len()
}

/// `ffmpeg -readrate SPEED -i CLIP -c copy -f flv URL`: publishes a clip at
/// `speed` times real time (1.0 = as live).
pub fn ffmpeg_publish_clip(clip: &Path, url: &str, speed: f64) -> Proc {
    Proc::spawn(
        "ffmpeg publisher",
        Command::new(require("ffmpeg"))
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-readrate", &format!("{speed}"), "-i"])
            .arg(clip)
            .args(["-map", "0", "-c", "copy", "-f", "flv", url]),
    )
}

/// ffmpeg encoding live (`-re`) for `secs` and publishing to `url`:
/// testsrc2 at `size` and 30 fps, libx264 High profile (AVC profile 100,
/// unlike Tally's Constrained Baseline) with a keyframe every second, AAC.
pub fn ffmpeg_publish_live(url: &str, size: &str, secs: u32) -> Proc {
    Proc::spawn(
        "ffmpeg publisher",
        Command::new(require("ffmpeg"))
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=30"), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &secs.to_string(), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high"])
            .args(["-g", "30", "-b:v", "800k", "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-f", "flv", url]),
    )
}

/// AVC profile of openh264's streams (Tally): Constrained Baseline.
pub const TALLY_AVC_PROFILE: u8 = 66;
/// AVC profile of the ffmpeg publishers above: High.
pub const X264_AVC_PROFILE: u8 = 100;

// ---------------------------------------------------------------------------
// Players
// ---------------------------------------------------------------------------

/// A Y4M clip `secs` long of an ffmpeg lavfi source (`testsrc2=...`, a
/// filter chain), written into `dir` as `name`.
pub fn y4m_clip(dir: &TestDir, name: &str, lavfi: &str, secs: u32) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", lavfi])
        .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-y"])
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

/// `ffmpeg -rw_timeout 10000000 -i URL -t SECONDS -map 0 -c copy -f flv OUT`:
/// plays an RTMP stream and copies `seconds` of it (counted from the first
/// packet received) into an FLV file. ffmpeg's stream copy drops the video
/// before the first keyframe.
pub fn ffmpeg_read(url: &str, seconds: f64, out_path: &Path) -> Proc {
    let ffmpeg = require("ffmpeg");
    Proc::spawn(
        "ffmpeg reader",
        Command::new(ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-rw_timeout",
                "10000000",
                "-i",
                url,
            ])
            .args([
                "-t",
                &format!("{seconds}"),
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "flv",
                "-y",
            ])
            .arg(out_path),
    )
}

/// `ffprobe -read_intervals %+#PACKETS -show_entries packet=... URL`: plays an
/// RTMP stream and prints the first `packets` packets (all streams) with the
/// timestamps exactly as received — ffprobe does not rebase them, unlike
/// ffmpeg. Parse its stdout with [`parse_live_packets`].
pub fn ffprobe_live(url: &str, packets: usize) -> Proc {
    let ffprobe = require("ffprobe");
    Proc::spawn(
        "ffprobe live reader",
        Command::new(ffprobe).args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-read_intervals",
            &format!("%+#{packets}"),
            "-show_entries",
            "packet=codec_type,pts_time,dts_time,flags",
            "-of",
            "csv=p=0",
            url,
        ]),
    )
}

/// One demuxed packet, times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    /// Presentation time (falls back to dts when ffprobe prints N/A).
    pub pts: f64,
    /// Decoding time (falls back to pts when N/A).
    pub dts: f64,
    /// Packet duration, when the demuxer knows it.
    pub duration: Option<f64>,
    /// Keyframe flag (`K` in ffprobe's flags).
    pub key: bool,
}

/// Splits [`ffprobe_live`]'s CSV (`codec_type,pts_time,dts_time,flags`) into
/// (video, audio) packets, in arrival order.
pub fn parse_live_packets(csv: &str) -> (Vec<Packet>, Vec<Packet>) {
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for line in csv.lines() {
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let (pts, dts) = (f[1].parse::<f64>().ok(), f[2].parse::<f64>().ok());
        let Some((pts, dts)) = pts.or(dts).zip(dts.or(pts)) else {
            continue;
        };
        let packet = Packet {
            pts,
            dts,
            duration: None,
            key: f[3].contains('K'),
        };
        match f[0] {
            "video" => video.push(packet),
            "audio" => audio.push(packet),
            _ => {}
        }
    }
    (video, audio)
}

// ---------------------------------------------------------------------------
// ffprobe of a file
// ---------------------------------------------------------------------------

/// The video stream as ffprobe describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    /// e.g. `h264`.
    pub codec: String,
    /// e.g. `Constrained Baseline`, `High`.
    pub profile: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// e.g. `yuv420p`.
    pub pix_fmt: String,
    /// `avg_frame_rate` as a number (0 when ffprobe says 0/0).
    pub avg_frame_rate: f64,
    /// `r_frame_rate` as a number.
    pub r_frame_rate: f64,
}

/// The audio stream as ffprobe describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    /// e.g. `aac`.
    pub codec: String,
    /// e.g. `LC`.
    pub profile: String,
    /// Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u32,
}

/// What ffprobe says about a media file: the first video and audio streams
/// and every packet of each, in file (decoding) order.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    /// e.g. `flv`.
    pub format_name: String,
    /// Container duration, if known.
    pub duration: Option<f64>,
    /// First video stream.
    pub video: Option<VideoStream>,
    /// First audio stream.
    pub audio: Option<AudioStream>,
    /// Packets of the first video stream.
    pub video_packets: Vec<Packet>,
    /// Packets of the first audio stream.
    pub audio_packets: Vec<Packet>,
}

impl ProbeInfo {
    /// The video stream, or a panic saying there is none.
    pub fn video(&self) -> &VideoStream {
        self.video
            .as_ref()
            .unwrap_or_else(|| panic!("no video stream in the file: {self:?}"))
    }

    /// The audio stream, or a panic saying there is none.
    pub fn audio(&self) -> &AudioStream {
        self.audio
            .as_ref()
            .unwrap_or_else(|| panic!("no audio stream in the file: {self:?}"))
    }

    /// Video presentation times, file order.
    pub fn video_pts(&self) -> Vec<f64> {
        self.video_packets.iter().map(|p| p.pts).collect()
    }

    /// Video decoding times, file order.
    pub fn video_dts(&self) -> Vec<f64> {
        self.video_packets.iter().map(|p| p.dts).collect()
    }

    /// Audio presentation times, file order.
    pub fn audio_pts(&self) -> Vec<f64> {
        self.audio_packets.iter().map(|p| p.pts).collect()
    }

    /// Audio decoding times, file order.
    pub fn audio_dts(&self) -> Vec<f64> {
        self.audio_packets.iter().map(|p| p.dts).collect()
    }

    /// One line for logs: codecs, frame counts and time ranges.
    pub fn summary(&self) -> String {
        let range = |p: &[Packet]| match (p.first(), p.last()) {
            (Some(a), Some(b)) => format!("{} packets, pts {:.3}..{:.3} s", p.len(), a.pts, b.pts),
            _ => "no packets".to_string(),
        };
        format!(
            "{}: video {:?}: {}; audio {:?}: {}",
            self.format_name,
            self.video,
            range(&self.video_packets),
            self.audio,
            range(&self.audio_packets)
        )
    }

    /// From the first audio packet's start to the last one's end (AAC: 1024
    /// samples per packet when the demuxer gives no duration).
    pub fn audio_duration(&self) -> f64 {
        let (Some(first), Some(last)) = (self.audio_packets.first(), self.audio_packets.last())
        else {
            return 0.0;
        };
        let frame = self
            .audio
            .as_ref()
            .filter(|a| a.sample_rate > 0)
            .map(|a| 1024.0 / a.sample_rate as f64)
            .unwrap_or(0.0);
        let start = self
            .audio_packets
            .iter()
            .map(|p| p.pts)
            .fold(first.pts, f64::min);
        let end = self
            .audio_packets
            .iter()
            .map(|p| p.pts)
            .fold(last.pts, f64::max);
        end + last.duration.filter(|d| *d > 0.0).unwrap_or(frame) - start
    }

    /// From the first video frame's presentation to the last one's end, one
    /// frame being `1 / fps`.
    pub fn video_duration(&self, fps: f64) -> f64 {
        let pts = self.video_pts();
        if pts.is_empty() {
            return 0.0;
        }
        let start = pts.iter().copied().fold(f64::INFINITY, f64::min);
        let end = pts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        end + 1.0 / fps - start
    }
}

fn json_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn json_str(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// "30/1" -> 30.0; "0/0" -> 0.0.
fn parse_rate(text: &str) -> f64 {
    match text.split_once('/') {
        Some((n, d)) => match (n.parse::<f64>(), d.parse::<f64>()) {
            (Ok(n), Ok(d)) if d != 0.0 => n / d,
            _ => 0.0,
        },
        None => text.parse().unwrap_or(0.0),
    }
}

/// Runs ffprobe on a file (`-show_format -show_streams` plus every packet's
/// times and flags, as JSON) and parses the result. Panics with ffprobe's
/// stderr if it fails.
pub fn probe(path: &Path) -> ProbeInfo {
    let ffprobe = require("ffprobe");
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-show_format", "-show_streams"])
        .args([
            "-show_entries",
            "packet=stream_index,codec_type,pts_time,dts_time,duration_time,flags",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    assert!(
        out.status.success(),
        "ffprobe {} failed ({}): {}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ffprobe printed invalid JSON for {}: {e}", path.display()));
    parse_probe_json(&json)
}

/// Turns ffprobe's JSON (see [`probe`]) into a [`ProbeInfo`].
pub fn parse_probe_json(json: &Value) -> ProbeInfo {
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video_stream = streams.iter().find(|s| s["codec_type"] == "video");
    let audio_stream = streams.iter().find(|s| s["codec_type"] == "audio");
    let index_of = |s: Option<&Value>| s.and_then(|s| s["index"].as_u64());
    let (video_index, audio_index) = (index_of(video_stream), index_of(audio_stream));

    let video = video_stream.map(|s| VideoStream {
        codec: json_str(s, "codec_name"),
        profile: json_str(s, "profile"),
        width: json_f64(&s["width"]).unwrap_or(0.0) as u32,
        height: json_f64(&s["height"]).unwrap_or(0.0) as u32,
        pix_fmt: json_str(s, "pix_fmt"),
        avg_frame_rate: parse_rate(&json_str(s, "avg_frame_rate")),
        r_frame_rate: parse_rate(&json_str(s, "r_frame_rate")),
    });
    let audio = audio_stream.map(|s| AudioStream {
        codec: json_str(s, "codec_name"),
        profile: json_str(s, "profile"),
        sample_rate: json_f64(&s["sample_rate"]).unwrap_or(0.0) as u32,
        channels: json_f64(&s["channels"]).unwrap_or(0.0) as u32,
    });

    let mut video_packets = Vec::new();
    let mut audio_packets = Vec::new();
    for p in json["packets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (pts, dts) = (json_f64(&p["pts_time"]), json_f64(&p["dts_time"]));
        let Some((pts, dts)) = pts.or(dts).zip(dts.or(pts)) else {
            continue;
        };
        let packet = Packet {
            pts,
            dts,
            duration: json_f64(&p["duration_time"]),
            key: p["flags"].as_str().is_some_and(|f| f.contains('K')),
        };
        let index = p["stream_index"].as_u64();
        if index.is_some() && index == video_index {
            video_packets.push(packet);
        } else if index.is_some() && index == audio_index {
            audio_packets.push(packet);
        }
    }

    ProbeInfo {
        format_name: json_str(&json["format"], "format_name"),
        duration: json_f64(&json["format"]["duration"]),
        video,
        audio,
        video_packets,
        audio_packets,
    }
}

/// What `ffprobe -v error FILE` prints (stdout and stderr): empty for a
/// file ffprobe has nothing to complain about.
pub fn ffprobe_errors(path: &Path) -> String {
    let out = Command::new(require("ffprobe"))
        .args(["-v", "error"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let _ = write!(text, "\n(ffprobe exited with {})", out.status);
    }
    text
}

/// What `ffmpeg -v error -i FILE -f null -` prints: empty when every packet
/// decodes cleanly.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new(require("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let _ = write!(text, "\n(ffmpeg exited with {})", out.status);
    }
    text
}

// ---------------------------------------------------------------------------
// Timeline assertions
// ---------------------------------------------------------------------------

/// Panics unless `|actual - expected| <= tolerance`.
pub fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual:.4}, expected {expected:.4} ± {tolerance:.4}"
    );
}

/// Video presentation times (seconds) form an unbroken run at `fps`: sorted
/// into presentation order, no two frames share a time, no gap exceeds 1.5
/// frame durations, the rate measured over the whole span is within 2 % of
/// `fps`, and the span (first to last frame) is at least `min_span` seconds.
pub fn assert_video_continuous(pts: &[f64], fps: f64, min_span: f64) {
    assert!(fps > 0.0, "fps must be positive");
    assert!(
        pts.len() >= 2,
        "need at least two video frames, got {}",
        pts.len()
    );
    let mut sorted = pts.to_vec();
    sorted.sort_by(f64::total_cmp);
    let frame = 1.0 / fps;
    let gaps: Vec<(usize, f64)> = sorted
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, w[1] - w[0]))
        .collect();
    let (worst_at, worst) = gaps
        .iter()
        .copied()
        .fold((0, 0.0), |acc, g| if g.1 > acc.1 { g } else { acc });
    let (dup_at, smallest) =
        gaps.iter().copied().fold(
            (0, f64::INFINITY),
            |acc, g| if g.1 < acc.1 { g } else { acc },
        );
    let span = sorted[sorted.len() - 1] - sorted[0];
    let summary = format!(
        "{} frames from {:.3} s to {:.3} s (span {span:.3} s)",
        sorted.len(),
        sorted[0],
        sorted[sorted.len() - 1]
    );
    assert!(
        smallest > 0.0,
        "two video frames share pts {:.3} s (index {dup_at}); {summary}",
        sorted[dup_at]
    );
    assert!(
        worst <= 1.5 * frame,
        "video gap of {:.1} ms after pts {:.3} s (index {worst_at}), more than 1.5 frames ({:.1} ms) at {fps} fps; {summary}",
        worst * 1000.0,
        sorted[worst_at],
        1.5 * frame * 1000.0
    );
    assert!(
        span >= min_span,
        "video covers only {span:.3} s, expected at least {min_span:.3} s; {summary}"
    );
    let rate = (sorted.len() - 1) as f64 / span;
    assert!(
        (rate - fps).abs() <= 0.02 * fps,
        "measured video rate {rate:.3} fps is not within 2 % of {fps} fps; {summary}"
    );
}

/// Decoding times strictly increase and no step exceeds `max_step` seconds:
/// the timeline has neither a backwards jump nor a hole.
pub fn assert_monotonic_no_jump(dts: &[f64], max_step: f64, what: &str) {
    assert!(
        dts.len() >= 2,
        "{what}: need at least two packets, got {}",
        dts.len()
    );
    for (i, w) in dts.windows(2).enumerate() {
        let step = w[1] - w[0];
        assert!(
            step > 0.0 && step < max_step,
            "{what}: dts step {:.1} ms between packet {i} ({:.3} s) and {} ({:.3} s); expected 0 < step < {:.0} ms",
            step * 1000.0,
            w[0],
            i + 1,
            w[1],
            max_step * 1000.0
        );
    }
}

/// Audio packets follow each other without a hole: consecutive times
/// strictly increase and are never more than 1.5 AAC frames (1024 samples)
/// apart, and they span at least `min_span` seconds.
pub fn assert_audio_continuous(pts: &[f64], sample_rate: u32, min_span: f64) {
    assert!(
        pts.len() >= 2,
        "need at least two audio packets, got {}",
        pts.len()
    );
    let frame = 1024.0 / sample_rate as f64;
    for (i, w) in pts.windows(2).enumerate() {
        let step = w[1] - w[0];
        assert!(
            step > 0.0 && step <= 1.5 * frame,
            "audio step {:.1} ms between packet {i} ({:.3} s) and {} ({:.3} s); AAC frame is {:.1} ms",
            step * 1000.0,
            w[0],
            i + 1,
            w[1],
            frame * 1000.0
        );
    }
    let span = pts[pts.len() - 1] - pts[0];
    assert!(
        span >= min_span,
        "audio covers only {span:.3} s ({} packets), expected at least {min_span:.3} s",
        pts.len()
    );
}

// ---------------------------------------------------------------------------
// Tally's own server
// ---------------------------------------------------------------------------

/// `tally serve` on free loopback ports (RTMP and HTTP), killed on drop.
pub struct TallyServer {
    pub rtmp_port: u16,
    pub http_port: u16,
    proc: Proc,
}

impl TallyServer {
    /// Starts `tally serve` with `extra` arguments and waits until both ports accept.
    pub fn start(extra: &[&str]) -> TallyServer {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let (rtmp_port, http_port) = (free_port(), free_port());
            let listen = format!("127.0.0.1:{rtmp_port}");
            let http = format!("127.0.0.1:{http_port}");
            let mut args = vec!["serve", "--listen", &listen, "--http", &http];
            args.extend_from_slice(extra);
            let proc = spawn_tally(&args);
            let ready = wait_until(READY_TIMEOUT, || {
                proc.has_exited() || (is_listening(rtmp_port) && is_listening(http_port))
            });
            if ready && !proc.has_exited() {
                return TallyServer { rtmp_port, http_port, proc };
            }
            let err = proc.stderr_text();
            if err.contains("Address already in use") && attempt < ATTEMPTS {
                continue;
            }
            panic!("tally serve did not start\n{}", proc.describe());
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `rtmp://127.0.0.1:PORT/live/STREAM`.
    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    /// `http://127.0.0.1:PORT/live/STREAM.flv`.
    pub fn http_url(&self, stream: &str) -> String {
        format!("http://127.0.0.1:{}/live/{stream}.flv", self.http_port)
    }

    /// The server process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// `GET /api/streams`, parsed.
    pub fn streams(&self) -> Value {
        let body = http_get(self.http_port, "/api/streams");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/streams is not JSON ({e}): {body}"))
    }

    /// The stream's entry in `/api/streams`, if any.
    pub fn stream(&self, name: &str) -> Option<Value> {
        self.streams()["streams"].as_array()?.iter().find(|s| s["name"] == name).cloned()
    }

    /// Waits until `/api/streams` shows `name` live (or the publisher exits).
    pub fn wait_live(&self, name: &str, publisher: &Proc, timeout: Duration) {
        let live = wait_until(timeout, || {
            publisher.has_exited() || self.stream(name).is_some_and(|s| s["live"] == true)
        });
        if !live || publisher.has_exited() {
            panic!("stream '{name}' never went live on tally serve\n{}\n{}", publisher.describe(), self.proc.describe());
        }
    }
}

/// A plain HTTP/1.1 GET on loopback; returns the body (panics on failure).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_or_else(|e| panic!("connect :{port}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_string()
}

/// A tiny static HTTP server on a free loopback port, for test pages: each
/// request path maps to a file. Runs on a thread until dropped.
pub struct StaticFiles {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl StaticFiles {
    /// Serves `files` (request path, file on disk).
    pub fn serve(files: &[(&str, PathBuf)]) -> StaticFiles {
        use std::io::Write;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind static server");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let files: Vec<(String, PathBuf)> = files.iter().map(|(p, f)| (p.to_string(), f.clone())).collect();
        let stop2 = stop.clone();
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let (mut s, _) = match listener.accept() {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(POLL_INTERVAL);
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = [0u8; 4096];
                let n = s.read(&mut req).unwrap_or(0);
                let line = String::from_utf8_lossy(&req[..n]);
                let path = line.split_whitespace().nth(1).unwrap_or("").split('?').next().unwrap_or("").to_string();
                let found = files.iter().find(|(p, _)| *p == path).and_then(|(_, f)| fs::read(f).ok());
                let _ = match found {
                    Some(body) => {
                        let ctype = if path.ends_with(".js") { "text/javascript" } else { "text/html" };
                        write!(s, "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .and_then(|()| s.write_all(&body))
                    }
                    None => write!(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                };
            }
        });
        StaticFiles { port, stop }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// This process runs as root (its effective uid, from /proc).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)).map(|uid| uid == "0"))
        .unwrap_or(false)
}
