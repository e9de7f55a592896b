//! The window's log file: what the console would show, for a person who
//! opened Tally from a menu and has no terminal. One file per run in
//! [`log_dir`] (`tally.log`, the run before as `tally.log.1`), written by a
//! thread of its own so that no caller — the UI thread above all — ever
//! waits on the disk. Bounded both ways: lines wait in a bounded queue
//! ([`QUEUE_LINES`]; beyond it they are dropped and counted, never
//! blocking), and a run writes at most [`MAX_FILE_BYTES`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::Arc;
use std::time::Duration;

/// Lines that may wait for the writer: a burst of a few seconds at trace level.
pub const QUEUE_LINES: usize = 4096;
/// Most a run writes: hours at info level; at trace level the file stops
/// growing there (and says so) rather than filling the disk.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// The file's name in [`log_dir`].
pub const FILE_NAME: &str = "tally.log";

/// Where the log file lives: `$XDG_STATE_HOME/tally` (usually
/// `~/.local/state/tally`) on Linux; the local data directory's `logs`
/// elsewhere (macOS `~/Library/Application Support/tally/logs`, Windows
/// `%LOCALAPPDATA%\tally\data\logs`).
pub fn log_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tally")?;
    Some(dirs.state_dir().map(Path::to_path_buf).unwrap_or_else(|| dirs.data_local_dir().join("logs")))
}

enum Message {
    Line(Vec<u8>),
    /// Write everything before this, then answer.
    Flush(SyncSender<()>),
}

/// The sink: a `tracing_subscriber` writer (`MakeWriter`) for a fmt layer.
#[derive(Clone)]
pub struct LogFile {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Flushes the file when dropped (at the end of `main`), waiting at most a
/// second: lines logged just before exit reach the disk.
pub struct FlushOnDrop(LogFile);

impl LogFile {
    /// Opens `dir/tally.log` for this run (the previous run's moved to
    /// `tally.log.1`) and starts its writer thread.
    pub fn open(dir: &Path) -> std::io::Result<(LogFile, FlushOnDrop)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        if path.exists() {
            std::fs::rename(&path, dir.join(format!("{FILE_NAME}.1")))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // Readable by its owner only, like the keys file: keys are redacted
        // in it, but server names, device names and paths are not.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new().name("tally-log".into()).spawn(move || write_lines(file, rx, counted, MAX_FILE_BYTES))?;
        let sink = LogFile { tx, dropped };
        Ok((sink.clone(), FlushOnDrop(sink)))
    }

    /// Writes out what is queued; false if that took longer than `within`
    /// (a disk that hangs never holds up the caller longer).
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        let (ack, done) = sync_channel(1);
        let mut flush = Message::Flush(ack);
        loop {
            match self.tx.try_send(flush) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    flush = back;
                    // The queue is full: the writer is behind. Retry until
                    // the deadline rather than block on it.
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())).is_ok()
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush(Duration::from_secs(1));
    }
}

/// The writer thread: lines to the file until the cap, then one line saying
/// so; lines the queue had no room for are counted in the file.
fn write_lines(file: File, rx: Receiver<Message>, dropped: Arc<AtomicU64>, cap: u64) {
    // Unbuffered: a line is one write, so a crash loses at most the lines
    // still queued.
    let mut out = file;
    let mut written = 0u64;
    let mut full = false;
    let mut reported = 0u64;
    while let Ok(msg) = rx.recv() {
        match msg {
            Message::Line(line) => {
                let lost = dropped.load(Ordering::Relaxed);
                if lost > reported && !full {
                    let note = format!("({} log lines were dropped here: the writer could not keep up)\n", lost - reported);
                    written += note.len() as u64;
                    let _ = out.write_all(note.as_bytes());
                    reported = lost;
                }
                if full {
                    continue;
                }
                if written + line.len() as u64 > cap {
                    full = true;
                    let _ = writeln!(out, "(the log file reached {} MiB: nothing more is written this run)", cap / (1024 * 1024));
                    continue;
                }
                written += line.len() as u64;
                // A full disk is not the log's business to report: the
                // recording says so; here the line is lost, nothing else.
                let _ = out.write_all(&line);
            }
            Message::Flush(ack) => {
                let _ = out.sync_data();
                let _ = ack.try_send(());
            }
        }
    }
}

/// One event being formatted; sent as one line when the formatter is done.
pub struct LineWriter<'a> {
    buf: Vec<u8>,
    sink: &'a LogFile,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.sink.tx.try_send(Message::Line(std::mem::take(&mut self.buf))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { buf: Vec::with_capacity(256), sink: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tally-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn line(sink: &LogFile, text: &str) {
        use tracing_subscriber::fmt::MakeWriter as _;
        let mut w = sink.make_writer();
        let _ = w.write_all(text.as_bytes());
    }

    #[test]
    fn lines_reach_the_file_and_the_previous_run_is_kept() {
        let dir = temp_dir("rotate");
        let (sink, guard) = LogFile::open(&dir).expect("open");
        line(&sink, "first run\n");
        drop(guard);
        let (sink, guard) = LogFile::open(&dir).expect("open again");
        line(&sink, "second run\n");
        drop(guard);
        assert_eq!(std::fs::read_to_string(dir.join("tally.log")).expect("log"), "second run\n");
        assert_eq!(std::fs::read_to_string(dir.join("tally.log.1")).expect("previous log"), "first run\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_stops_at_its_cap_and_says_so() {
        let dir = temp_dir("cap");
        std::fs::create_dir_all(&dir).expect("dir");
        let (tx, rx) = sync_channel(16);
        let file = File::create(dir.join("capped.log")).expect("file");
        let writer = std::thread::spawn(move || write_lines(file, rx, Arc::new(AtomicU64::new(0)), 100));
        for i in 0..20 {
            tx.send(Message::Line(format!("line {i:02} of ten bytes\n").into_bytes())).expect("send");
        }
        drop(tx);
        writer.join().expect("writer");
        let text = std::fs::read_to_string(dir.join("capped.log")).expect("log");
        assert!(text.starts_with("line 00"), "{text}");
        assert!(text.contains("nothing more is written"), "{text}");
        assert!(!text.contains("line 19"), "{text}");
        assert!(text.len() < 200, "{} bytes", text.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_lines_without_waiting_and_counts_them() {
        // No writer thread: the queue fills and the rest are dropped at once.
        let (tx, _rx) = sync_channel(2);
        let sink = LogFile { tx, dropped: Arc::new(AtomicU64::new(0)) };
        for _ in 0..5 {
            line(&sink, "x\n");
        }
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 3);
        // And a flush at exit gives up at its deadline instead of waiting
        // for a writer that never comes (a blocking send would never return).
        let (returned, gave_up) = sync_channel(1);
        std::thread::spawn(move || {
            let _ = returned.send(sink.flush(Duration::from_millis(100)));
        });
        assert_eq!(gave_up.recv_timeout(Duration::from_secs(30)), Ok(false), "flush blocked on a full queue");
    }
}
