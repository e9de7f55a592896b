//! RTMPS for tests: a private certificate authority made with openssl, and
//! stunnel terminating TLS in front of an RTMP server.

use super::{Proc, READY_TIMEOUT, TestDir, free_port, is_listening, require, wait_until};
use std::path::PathBuf;
use std::process::Command;

/// A CA and a server certificate it signed for `localhost` / 127.0.0.1.
pub struct TestCa {
    dir: TestDir,
}

fn openssl(args: &[&str], dir: &TestDir) {
    let out = Command::new(require("openssl")).args(args).current_dir(dir.path()).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    /// Generates the CA (P-256 keys: fast to make, and rustls verifies them).
    pub fn new() -> TestCa {
        let dir = TestDir::new("ca");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tally Test CA"]);
        openssl(&ca, &dir);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
        openssl(&csr, &dir);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(
            &[
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
                "-extfile", "ext.cnf",
            ],
            &dir,
        );
        TestCa { dir }
    }

    /// The CA certificate (what `--ca-file` takes).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's certificate and key.
    pub fn server_pem(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("server.pem"), self.dir.join("server.key"))
    }
}

/// stunnel accepting TLS on a free loopback port and forwarding plain TCP to `upstream_port`.
pub struct Stunnel {
    port: u16,
    proc: Proc,
    _dir: TestDir,
}

impl Stunnel {
    /// Starts stunnel with the CA's server certificate; waits until it listens.
    pub fn start(ca: &TestCa, upstream_port: u16) -> Stunnel {
        let dir = TestDir::new("stunnel");
        let port = free_port();
        let (cert, key) = ca.server_pem();
        let conf = format!(
            "foreground = yes\npid =\noutput = {}\ndebug = 5\n[rtmps]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{upstream_port}\ncert = {}\nkey = {}\n",
            dir.join("stunnel.log").display(),
            cert.display(),
            key.display()
        );
        let conf_path = dir.join("stunnel.conf");
        std::fs::write(&conf_path, conf).expect("write stunnel.conf");
        let proc = Proc::spawn("stunnel", Command::new(require("stunnel4")).arg(&conf_path));
        if !(wait_until(READY_TIMEOUT, || is_listening(port) || proc.has_exited()) && is_listening(port)) {
            panic!("stunnel did not listen on {port}\n{}\n{}", proc.describe(), std::fs::read_to_string(dir.join("stunnel.log")).unwrap_or_default());
        }
        Stunnel { port, proc, _dir: dir }
    }

    /// `rtmps://localhost:PORT/APP/STREAM`.
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmps://localhost:{}/{app}/{stream}", self.port)
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The log (handshake failures show here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.join("stunnel.log")).unwrap_or_default()
    }

    /// The process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}
