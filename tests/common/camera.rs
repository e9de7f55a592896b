//! A camera that is a V4L2 device, for driving nokhwa's real V4L2 code (and
//! ffmpeg's) on machines without a camera or kernel modules.
//!
//! Two parts, both real components rather than a stand-in at Tally's own
//! seam:
//! - **The device node.** nokhwa (v4l-rs) finds cameras by listing `/dev`
//!   for `video*` entries, and names them from `/sys/class/video4linux`.
//!   The command runs in a mount namespace of its own (`unshare --mount`)
//!   whose `/dev` is an overlay of the real one with a `video0` entry
//!   added: nothing outside the test sees it. Unplugging the camera is
//!   removing that entry (through `/proc/PID/root`), plugging it back is
//!   creating it again — what enumeration sees, and what the device below
//!   checks before every call.
//! - **The driver.** `tests/fake_v4l2/fake_v4l2.c`, a preload library
//!   answering the V4L2 ioctls for that path (formats, sizes, intervals,
//!   formats set, buffers mmapped, queued and dequeued on the device's own
//!   frame clock, ENODEV once unplugged), playing clips made here from
//!   Tally's test pattern as YUYV and as MJPEG. Why not PipeWire's V4L2
//!   layer: see that file's header (Debian 12's pw-v4l2 lacks
//!   `ENUM_FRAMEINTERVALS`, so nokhwa finds no mode, and v4l-rs issues its
//!   ioctls as `syscall(SYS_ioctl)`, past pw-v4l2's `ioctl()` hook).
//!
//! The clips loop every [`CLIP_FRAMES`] frames; each frame carries its
//! number (`TestPattern::read_mark`), so a decoded stream tells which
//! camera frames reached it, in which order, and the bars tell whether
//! the colours survived the conversion.

use super::{Proc, TestDir, require};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tally::capture::TestPattern;

/// Frames in every clip (two seconds at 30 fps); the camera loops them, so
/// frame numbers read back count modulo this.
pub const CLIP_FRAMES: u64 = 60;
/// What the fake camera calls itself (VIDIOC_QUERYCAP's card).
pub const CAMERA_NAME: &str = "Tally Test Camera";
/// The device node the camera appears as.
pub const DEVICE: &str = "/dev/video0";

/// A pixel format the fake camera can deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraFormat {
    /// Packed 4:2:2, straight from the pattern's I420.
    Yuyv,
    /// Every frame a JPEG (ffmpeg's encoder, full-range BT.601 as JFIF says).
    Mjpeg,
}

impl CameraFormat {
    /// The V4L2 FourCC.
    pub fn fourcc(self) -> &'static str {
        match self {
            CameraFormat::Yuyv => "YUYV",
            CameraFormat::Mjpeg => "MJPG",
        }
    }

    /// How `tally devices` names it.
    pub fn tally_name(self) -> &'static str {
        match self {
            CameraFormat::Yuyv => "YUYV",
            CameraFormat::Mjpeg => "MJPEG",
        }
    }
}

/// One mode the camera offers.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// Its format.
    pub format: CameraFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// The preload library, built once per test binary from its C source.
pub fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let cc = require("cc");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_v4l2/fake_v4l2.c");
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake_v4l2");
        std::fs::create_dir_all(&out_dir).expect("create the fake camera's build directory");
        // Per process: two test binaries may build it at once.
        let lib = out_dir.join(format!("libfakev4l2-{}.so", std::process::id()));
        let out = Command::new(cc)
            .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&source)
            .args(["-ldl", "-lpthread"])
            .output()
            .expect("run cc");
        assert!(out.status.success(), "building {} failed:\n{}", source.display(), String::from_utf8_lossy(&out.stderr));
        lib
    })
    .clone()
}

/// A camera device offering `modes`, each playing its own clip.
pub struct FakeCamera {
    dir: TestDir,
    spec: String,
}

impl FakeCamera {
    /// Makes a clip for each mode (the test pattern at that size and rate,
    /// [`CLIP_FRAMES`] long) and the device that offers them.
    pub fn new(label: &str, modes: &[Mode]) -> FakeCamera {
        require("unshare");
        require("mount");
        let dir = TestDir::new(label);
        let mut spec = Vec::new();
        for (i, m) in modes.iter().enumerate() {
            let clip = dir.join(&format!("mode{i}-{}x{}.{}", m.width, m.height, m.format.fourcc().to_lowercase()));
            make_clip(&dir, m, &clip);
            spec.push(format!("{}:{}x{}:{}:{}", m.format.fourcc(), m.width, m.height, m.fps, clip.display()));
        }
        FakeCamera { dir, spec: spec.join(",") }
    }

    /// The test directory the clips live in (for the caller's own files too).
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    /// `program args…` run where the camera is plugged in: a private mount
    /// namespace whose `/dev` lists `video0`, with the driver preloaded into
    /// `program` only (the shell that sets it up must not see it).
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let upper = self.dir.join(&format!("dev-upper-{}", fresh()));
        let work = self.dir.join(&format!("dev-work-{}", fresh()));
        std::fs::create_dir_all(&upper).expect("overlay upper dir");
        std::fs::create_dir_all(&work).expect("overlay work dir");
        let script = format!(
            "mount --make-rprivate / && \
             mount -t overlay tally-test-dev -o lowerdir=/dev,upperdir={},workdir={} /dev && \
             : > {DEVICE} && export LD_PRELOAD=\"$0\" && exec \"$@\"",
            upper.display(),
            work.display()
        );
        let mut cmd = Command::new(require("unshare"));
        cmd.args(["--mount", "--fork", "--kill-child", "sh", "-c", &script])
            .arg(library())
            .arg(program)
            .args(args)
            .env("FAKE_V4L2_DEVICE", DEVICE)
            .env("FAKE_V4L2_CARD", CAMERA_NAME)
            .env("FAKE_V4L2_MODES", &self.spec)
            .env_remove("LD_PRELOAD");
        cmd
    }

    /// Unplugs the camera under `proc` (started with [`FakeCamera::command`]):
    /// its device node disappears, as a USB camera's does.
    pub fn unplug(&self, proc: &Proc) {
        let node = node_of(proc);
        std::fs::remove_file(&node).unwrap_or_else(|e| panic!("unplug: remove {}: {e}", node.display()));
    }

    /// Plugs it back in.
    pub fn plug(&self, proc: &Proc) {
        let node = node_of(proc);
        std::fs::write(&node, b"").unwrap_or_else(|e| panic!("plug: create {}: {e}", node.display()));
    }
}

fn fresh() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The device node as the process inside the namespace sees it: the
/// namespace is `unshare`'s child's (`--fork`), reached through its
/// `/proc/PID/root`.
fn node_of(proc: &Proc) -> PathBuf {
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", proc.pid())).unwrap_or_default();
    let child = children.split_whitespace().next().unwrap_or_else(|| panic!("{} has no child inside its namespace", proc.name()));
    PathBuf::from(format!("/proc/{child}/root{DEVICE}"))
}

/// Writes the clip of `mode` into `path`: test pattern frames 0..CLIP_FRAMES
/// as raw YUYV, or as JPEGs back to back.
fn make_clip(dir: &TestDir, mode: &Mode, path: &Path) {
    let pattern = TestPattern::new(mode.width, mode.height, mode.fps).expect("test pattern size");
    let (w, h) = (mode.width as usize, mode.height as usize);
    match mode.format {
        CameraFormat::Yuyv => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the YUYV clip"));
            let mut line = vec![0u8; w * 2];
            for i in 0..CLIP_FRAMES {
                let f = pattern.frame(i);
                for y in 0..h {
                    let (luma, u, v) = (&f.y[y * w..][..w], &f.u[(y / 2) * (w / 2)..][..w / 2], &f.v[(y / 2) * (w / 2)..][..w / 2]);
                    for x in 0..w / 2 {
                        line[4 * x] = luma[2 * x];
                        line[4 * x + 1] = u[x];
                        line[4 * x + 2] = luma[2 * x + 1];
                        line[4 * x + 3] = v[x];
                    }
                    out.write_all(&line).expect("write the YUYV clip");
                }
            }
            out.flush().expect("write the YUYV clip");
        }
        CameraFormat::Mjpeg => {
            // The pattern is BT.709 limited range; a JPEG is read as JFIF
            // (BT.601, full range), so ffmpeg converts the matrix and range
            // before encoding: the JPEG shows the pattern's true colours.
            let y4m = dir.join(&format!("clip-{}x{}.y4m", mode.width, mode.height));
            {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&y4m).expect("create the Y4M clip"));
                writeln!(out, "YUV4MPEG2 W{} H{} F{}:1 Ip A1:1 C420jpeg", mode.width, mode.height, mode.fps).expect("write Y4M");
                for i in 0..CLIP_FRAMES {
                    let f = pattern.frame(i);
                    out.write_all(b"FRAME\n").expect("write Y4M");
                    out.write_all(&f.y).expect("write Y4M");
                    out.write_all(&f.u).expect("write Y4M");
                    out.write_all(&f.v).expect("write Y4M");
                }
                out.flush().expect("write Y4M");
            }
            let convert = "scale=in_color_matrix=bt709:in_range=tv:out_color_matrix=bt601:out_range=pc,format=yuvj420p";
            super::media::ffmpeg_make(&[
                "-f", "yuv4mpegpipe", "-i", &y4m.to_string_lossy(), "-vf", convert, "-c:v", "mjpeg", "-q:v", "2", "-f", "mjpeg",
                &path.to_string_lossy(),
            ]);
            let _ = std::fs::remove_file(&y4m);
        }
    }
}
