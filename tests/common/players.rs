//! Real players, run headless against a stream: ffmpeg, rtmpdump,
//! GStreamer, VLC and mpv — each reduced to the same verdict: which codecs,
//! what size, how many video frames over what span of time.

use super::{Proc, TestDir, probe, require};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one player received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Player name.
    pub player: &'static str,
    /// Video codec ("h264").
    pub video_codec: String,
    /// Audio codec ("aac").
    pub audio_codec: String,
    /// Picture size.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Video frames.
    pub frames: usize,
    /// Seconds from the first to the last video frame.
    pub span: f64,
}

impl Received {
    /// Checks codecs, size, and that the frame count is within 5 % of what
    /// `fps` over the received span gives, over at least `min_span` seconds.
    pub fn assert_ok(&self, width: u32, height: u32, fps: f64, min_span: f64) {
        assert_eq!((self.video_codec.as_str(), self.audio_codec.as_str()), ("h264", "aac"), "{self:?}");
        assert_eq!((self.width, self.height), (width, height), "{self:?}");
        assert!(self.span >= min_span, "{}: only {:.2} s of video ({self:?})", self.player, self.span);
        let expected = self.span * fps + 1.0;
        let off = (self.frames as f64 - expected).abs() / expected;
        assert!(off <= 0.05, "{}: {} frames over {:.3} s, expected {expected:.0} ± 5 % ({self:?})", self.player, self.frames, self.span);
    }
}

/// Reads a media file a player wrote (FLV or TS) with ffprobe.
pub fn received_from_file(player: &'static str, path: &Path) -> Received {
    let info = probe(path);
    let pts = info.video_pts();
    let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &p| (a.min(p), b.max(p)));
    Received {
        player,
        video_codec: info.video.as_ref().map(|v| v.codec.clone()).unwrap_or_default(),
        audio_codec: info.audio.as_ref().map(|a| a.codec.clone()).unwrap_or_default(),
        width: info.video.as_ref().map_or(0, |v| v.width),
        height: info.video.as_ref().map_or(0, |v| v.height),
        frames: pts.len(),
        span: if pts.len() > 1 { hi - lo } else { 0.0 },
    }
}

/// `timeout SECS rtmpdump -r URL --live -o OUT` (rtmpdump runs until killed on a live stream).
pub fn rtmpdump(url: &str, secs: u32, out: &Path) -> Proc {
    let rtmpdump = require("rtmpdump");
    Proc::spawn(
        "rtmpdump",
        Command::new("timeout").arg(secs.to_string()).arg(rtmpdump).args(["-q", "-r", url, "--live", "-o"]).arg(out),
    )
}

/// GStreamer playing for `secs` seconds: librtmp's `rtmpsrc`, `flvdemux`,
/// and what it demuxed muxed again by `flvmux` into `out`, for ffprobe to
/// judge like the other players' files. SIGINT with `-e` asks for EOS;
/// `rtmpsrc` blocked in a read may never deliver it, so SIGKILL follows two
/// seconds later — the sink writes unbuffered, so the file holds every tag
/// muxed until then.
///
/// (An earlier version counted `fakesink silent=false` lines from `-v`:
/// gst-launch prints property notifications asynchronously, reading the
/// value when it gets round to it, so caps went missing or showed under the
/// wrong pad, and a busy sink's buffers were printed twice or not at all —
/// 167 or 193 "frames" for 177 sent.)
pub fn gstreamer(url: &str, secs: u32, out: &Path) -> Proc {
    let gst = require("gst-launch-1.0");
    let location = format!("location={url} live=1");
    let sink = format!("location={}", out.display());
    Proc::spawn(
        "gst-launch-1.0",
        Command::new("timeout")
            .args(["-s", "INT", "-k", "2", &secs.to_string()])
            .arg(gst)
            .args(["-e", "flvmux", "name=m", "streamable=true", "!", "filesink", "buffer-mode=unbuffered", &sink])
            .args(["rtmpsrc", &location, "!", "flvdemux", "name=d", "d.video", "!", "queue", "!", "m.video", "d.audio", "!", "queue", "!", "m.audio"]),
    )
}

/// VLC remuxing what it receives to MPEG-TS for `secs` seconds. VLC refuses
/// to run as root, so as root it runs as `nobody` (the output directory is
/// made writable for it).
pub fn vlc(url: &str, secs: u32, dir: &TestDir) -> (Proc, std::path::PathBuf) {
    let cvlc = require("cvlc");
    let out_dir = dir.join("vlc");
    std::fs::create_dir_all(&out_dir).expect("vlc dir");
    let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
    let _ = Command::new("chmod").arg("777").arg(&out_dir).status();
    let out = out_dir.join("vlc.ts");
    let sout = format!("#std{{access=file,mux=ts,dst={}}}", out.display());
    let run_time = secs.to_string();
    let vlc_args = [
        "--intf", "dummy", "--vout", "dummy", "--aout", "dummy", "--play-and-exit", "--no-one-instance", "--run-time", &run_time, "-vv",
        url, "--sout", &sout,
    ];
    let is_root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new(require("runuser"));
        c.args(["-u", "nobody", "--"]).arg(cvlc);
        c
    } else {
        Command::new(cvlc)
    };
    cmd.args(vlc_args).env("HOME", &out_dir);
    (Proc::spawn("vlc", &mut cmd), out)
}

/// mpv playing for `secs` seconds with null outputs, recording what it
/// demuxes; its log names the decoded size and audio format.
pub fn mpv(url: &str, secs: u32, out: &Path) -> Proc {
    let mpv = require("mpv");
    let record = format!("--stream-record={}", out.display());
    Proc::spawn(
        "mpv",
        Command::new(mpv)
            .args(["--no-config", "--vo=null", "--ao=null", "--msg-level=all=v", &format!("--length={secs}"), &record, url])
            .env("HOME", out.parent().unwrap_or(Path::new("/tmp"))),
    )
}

/// How a player is expected to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It stops by itself with this exit code (VLC's and mpv's run time: 0).
    Exits(i32),
    /// `timeout(1)` stops it on schedule and exits 124 (rtmpdump plays a
    /// live stream until stopped).
    StoppedByTimeout,
    /// `timeout` stops it on schedule, and may have to kill it after the
    /// grace period (`timeout -k`; `timeout` then dies of the same
    /// SIGKILL): GStreamer's `rtmpsrc` sometimes never finishes stopping a
    /// live stream — seen against nginx-rtmp as against Tally, with or
    /// without `-e`, still in "Setting pipeline to NULL" ten seconds after
    /// SIGINT — and sometimes stops at once (124).
    StoppedByTimeoutOrKilled,
}

/// Waits for a player, checks it ended exactly as `end` says (anything
/// else — a crash, an error exit, a kill where a clean stop was due —
/// fails with its output) and returns its combined output.
pub fn finish(p: &Proc, limit: Duration, end: End) -> String {
    use std::os::unix::process::ExitStatusExt;
    let out = p.wait_output(limit);
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let ended = match (out.status.code(), out.status.signal()) {
        (Some(124), _) if end == End::StoppedByTimeoutOrKilled => Some(end),
        (Some(124), _) => Some(End::StoppedByTimeout),
        (Some(code), _) => Some(End::Exits(code)),
        (None, Some(9)) if end == End::StoppedByTimeoutOrKilled => Some(end),
        _ => None,
    };
    assert_eq!(ended, Some(end), "{} ended with {}, expected {end:?}\n{}", p.name(), out.status, super::tail(&text, 30));
    text
}
