//! YUV4MPEG2 (Y4M) files as a video source: what `ffmpeg ... -f yuv4mpegpipe`
//! and most video tools write, raw planar frames behind a one-line header.
//!
//! Format (as written by ffmpeg's `yuv4mpegpipe` muxer and mjpegtools):
//! `YUV4MPEG2 W<w> H<h> F<num>:<den> [I<p|t|b|m>] [A<n>:<d>] [C<colour>] [X...]\n`,
//! then per frame `FRAME[ params]\n` and the planes. Accepted colour spaces
//! are the 8-bit 4:2:0 ones (`420jpeg`, `420mpeg2`, `420paldv`, `420`, the
//! default when `C` is absent) and `mono`; anything else is refused with the
//! colour space named. Frames are scaled (aspect kept) to the broadcast size.
//!
//! Hostile files: the header and frame lines are capped at
//! [`MAX_HEADER_LINE`] bytes, the frame size at [`MAX_SOURCE_DIMENSION`], and a
//! file that ends inside a frame ends the source with a warning instead of
//! sending half a picture.

use super::convert::{FrameConverter, MAX_SOURCE_DIMENSION, PixelFormat, RawFrame};
use super::{CaptureError, FrameRate, VideoFormat, VideoSource};
use crate::media::VideoFrame;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Longest header or FRAME line accepted (real ones are under 100 bytes).
pub const MAX_HEADER_LINE: usize = 1024;

/// Highest frame rate a Y4M header may declare.
const MAX_Y4M_FPS: f64 = 240.0;

/// What a Y4M header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Luma width.
    pub width: u32,
    /// Luma height.
    pub height: u32,
    /// Frame rate.
    pub rate: FrameRate,
    /// Plane layout of each frame.
    pub format: PixelFormat,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> CaptureError {
    CaptureError::Format(format!("{}: {msg}", path.display()))
}

/// Reads one `\n`-terminated line of at most [`MAX_HEADER_LINE`] bytes.
/// `Ok(None)` at a clean end of file.
fn read_line(r: &mut impl BufRead, path: &Path) -> Result<Option<Vec<u8>>, CaptureError> {
    let mut line = Vec::new();
    let n = r.by_ref().take(MAX_HEADER_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_HEADER_LINE {
            bad(path, format!("header line longer than {MAX_HEADER_LINE} bytes"))
        } else {
            bad(path, "file ends inside a header line")
        });
    }
    line.pop();
    Ok(Some(line))
}

/// Parses the stream header line (without its newline).
pub fn parse_header(line: &[u8], path: &Path) -> Result<Y4mHeader, CaptureError> {
    let text = std::str::from_utf8(line).map_err(|_| bad(path, "header is not text"))?;
    let mut fields = text.split(' ');
    if fields.next() != Some("YUV4MPEG2") {
        return Err(bad(path, "not a YUV4MPEG2 file (no 'YUV4MPEG2' signature)"));
    }
    let (mut width, mut height, mut rate, mut format) = (None, None, None, PixelFormat::I420);
    for field in fields.filter(|f| !f.is_empty()) {
        let (tag, value) = field.split_at(1);
        match tag {
            "W" => width = value.parse::<u32>().ok(),
            "H" => height = value.parse::<u32>().ok(),
            "F" => {
                let (n, d) = value.split_once(':').ok_or_else(|| bad(path, format!("bad frame rate '{value}'")))?;
                let (num, den) = (n.parse::<u32>(), d.parse::<u32>());
                match (num, den) {
                    (Ok(num), Ok(den)) if num > 0 && den > 0 && f64::from(num) / f64::from(den) <= MAX_Y4M_FPS => {
                        rate = Some(FrameRate { num, den })
                    }
                    _ => return Err(bad(path, format!("frame rate '{value}' is not between 0 and {MAX_Y4M_FPS} fps"))),
                }
            }
            "C" => {
                format = match value {
                    "420jpeg" | "420mpeg2" | "420paldv" | "420" => PixelFormat::I420,
                    "mono" => PixelFormat::Gray,
                    other => {
                        return Err(bad(
                            path,
                            format!("colour space '{other}' is not supported (8-bit 4:2:0 or mono; convert with ffmpeg -pix_fmt yuv420p)"),
                        ));
                    }
                }
            }
            // Interlacing, pixel aspect and extensions do not change the plane layout.
            "I" | "A" | "X" => {}
            _ => return Err(bad(path, format!("unknown header field '{field}'"))),
        }
    }
    let width = width.ok_or_else(|| bad(path, "header has no valid width (W)"))?;
    let height = height.ok_or_else(|| bad(path, "header has no valid height (H)"))?;
    if width < 2 || height < 2 || width > MAX_SOURCE_DIMENSION || height > MAX_SOURCE_DIMENSION {
        return Err(bad(path, format!("frame size {width}x{height} is outside 2..={MAX_SOURCE_DIMENSION}")));
    }
    let rate = rate.ok_or_else(|| bad(path, "header has no frame rate (F)"))?;
    Ok(Y4mHeader { width, height, rate, format })
}

/// A Y4M file as a (non-live) video source; the pipeline paces it.
pub struct Y4mSource {
    path: PathBuf,
    reader: BufReader<File>,
    header: Y4mHeader,
    /// File offset of the first `FRAME` line, where a loop restarts.
    first_frame_at: u64,
    frame_len: usize,
    buf: Vec<u8>,
    converter: FrameConverter,
    out: VideoFormat,
    looping: bool,
    /// Frames delivered (across loops): the pts comes from this count.
    delivered: u64,
    /// Frames in one pass of the file, once known (for logging loops).
    frames_per_pass: Option<u64>,
    frames_this_pass: u64,
}

impl std::fmt::Debug for Y4mSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource").field("path", &self.path).field("header", &self.header).finish_non_exhaustive()
    }
}

impl Y4mSource {
    /// Reads the header of `path` (without the frames).
    pub fn probe(path: &Path) -> Result<Y4mHeader, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError::Format(format!("{}: {e}", path.display())))?;
        let mut r = BufReader::new(file);
        let line = read_line(&mut r, path)?.ok_or_else(|| bad(path, "file is empty"))?;
        parse_header(&line, path)
    }

    /// Opens `path`; frames come out at `width`x`height` (aspect kept), and
    /// the file restarts at its end when `looping`.
    pub fn open(path: &Path, width: u32, height: u32, looping: bool) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError::Format(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let line = read_line(&mut reader, path)?.ok_or_else(|| bad(path, "file is empty"))?;
        let header = parse_header(&line, path)?;
        let first_frame_at = line.len() as u64 + 1;
        let frame_len = header
            .format
            .frame_len(header.width, header.height)
            .ok_or_else(|| bad(path, "frame size overflows"))?;
        Ok(Y4mSource {
            path: path.to_path_buf(),
            reader,
            header,
            first_frame_at,
            frame_len,
            buf: vec![0; frame_len],
            converter: FrameConverter::new(width, height)?,
            out: VideoFormat { width, height, frame_rate: header.rate },
            looping,
            delivered: 0,
            frames_per_pass: None,
            frames_this_pass: 0,
        })
    }

    /// The file's header.
    pub fn header(&self) -> Y4mHeader {
        self.header
    }

    /// Reads the next frame's planes into `buf`; `Ok(false)` at end of file.
    fn read_frame(&mut self) -> Result<bool, CaptureError> {
        let Some(line) = read_line(&mut self.reader, &self.path)? else { return Ok(false) };
        if !line.starts_with(b"FRAME") || line.get(5).is_some_and(|&c| c != b' ') {
            return Err(bad(&self.path, format!("expected a FRAME line after frame {}", self.frames_this_pass)));
        }
        match self.reader.read_exact(&mut self.buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::warn!(file = %self.path.display(), frame = self.frames_this_pass, "Y4M file ends inside a frame; stopping there");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn rewind(&mut self) -> Result<(), CaptureError> {
        self.reader.seek(SeekFrom::Start(self.first_frame_at))?;
        Ok(())
    }
}

impl VideoSource for Y4mSource {
    fn format(&self) -> VideoFormat {
        self.out
    }

    fn is_live(&self) -> bool {
        false
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError> {
        if !self.read_frame()? {
            if !self.looping || self.frames_this_pass == 0 {
                return Ok(None);
            }
            self.frames_per_pass.get_or_insert(self.frames_this_pass);
            tracing::debug!(file = %self.path.display(), frames = self.frames_this_pass, "looping");
            self.frames_this_pass = 0;
            self.rewind()?;
            if !self.read_frame()? {
                return Ok(None);
            }
        }
        let pts = self.header.rate.pts_us_of_frame(self.delivered);
        let raw = RawFrame { format: self.header.format, width: self.header.width, height: self.header.height, data: &self.buf };
        let frame = self.converter.convert(&raw, pts)?;
        debug_assert_eq!(self.buf.len(), self.frame_len);
        self.delivered += 1;
        self.frames_this_pass += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_y4m(dir: &Path, name: &str, header: &str, frames: &[Vec<u8>]) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        writeln!(f, "{header}").unwrap();
        for fr in frames {
            f.write_all(b"FRAME\n").unwrap();
            f.write_all(fr).unwrap();
        }
        path
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tally-y4m-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn headers() {
        let p = Path::new("x.y4m");
        let h = parse_header(b"YUV4MPEG2 W640 H360 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG", p).unwrap();
        assert_eq!((h.width, h.height, h.rate, h.format), (640, 360, FrameRate { num: 30000, den: 1001 }, PixelFormat::I420));
        assert_eq!(parse_header(b"YUV4MPEG2 W4 H2 F25:1 Cmono", p).unwrap().format, PixelFormat::Gray);
        for (line, why) in [
            (&b"YUV4MPEG W4 H2 F25:1"[..], "signature"),
            (b"YUV4MPEG2 W4 H2 F25:1 C444", "444"),
            (b"YUV4MPEG2 W4 H2", "frame rate"),
            (b"YUV4MPEG2 W4 H2 F0:1", "frame rate"),
            (b"YUV4MPEG2 W99999 H2 F1:1", "outside"),
            (b"YUV4MPEG2 H2 F1:1", "width"),
            (b"YUV4MPEG2 W4 H2 F1:1 Q9", "unknown"),
        ] {
            let e = parse_header(line, p).unwrap_err().to_string();
            assert!(e.contains(why), "{e} should mention {why}");
        }
    }

    #[test]
    fn reads_frames_in_order_then_loops_with_continuous_pts() {
        let d = tmp();
        let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i * 50 + 20; 4 * 2 + (2 * 2)]).collect();
        let path = write_y4m(&d, "a.y4m", "YUV4MPEG2 W4 H2 F10:1 C420", &frames);
        let mut s = Y4mSource::open(&path, 4, 2, false).unwrap();
        let ys: Vec<u8> = std::iter::from_fn(|| s.next_frame().unwrap()).map(|f| f.y[0]).collect();
        assert_eq!(ys, vec![20, 70, 120]);
        let mut s = Y4mSource::open(&path, 4, 2, true).unwrap();
        let got: Vec<(u8, u64)> = (0..7).map(|_| s.next_frame().unwrap().unwrap()).map(|f| (f.y[0], f.pts_us)).collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![20, 70, 120, 20, 70, 120, 20]);
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), (0..7).map(|i| i * 100_000).collect::<Vec<_>>());
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn truncated_and_malformed_files_end_cleanly() {
        let d = tmp();
        let path = d.join("t.y4m");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"YUV4MPEG2 W4 H2 F10:1\nFRAME\n").unwrap();
        f.write_all(&[1; 12]).unwrap();
        f.write_all(b"FRAME\n").unwrap();
        f.write_all(&[2; 5]).unwrap(); // cut inside the second frame
        drop(f);
        let mut s = Y4mSource::open(&path, 4, 2, true).unwrap();
        assert!(s.next_frame().unwrap().is_some());
        // Looping restarts at the first frame instead of sending half a picture.
        assert_eq!(s.next_frame().unwrap().unwrap().y[0], 1);

        let bad_path = write_y4m(&d, "b.y4m", "YUV4MPEG2 W4 H2 F10:1", &[]);
        std::fs::OpenOptions::new().append(true).open(&bad_path).unwrap().write_all(b"GARBAGE\n").unwrap();
        let mut s = Y4mSource::open(&bad_path, 4, 2, false).unwrap();
        assert!(s.next_frame().unwrap_err().to_string().contains("FRAME"));

        let long = d.join("long.y4m");
        std::fs::write(&long, vec![b'Y'; 5000]).unwrap();
        assert!(Y4mSource::open(&long, 4, 2, false).unwrap_err().to_string().contains("longer"));
        let empty = d.join("empty.y4m");
        std::fs::write(&empty, b"").unwrap();
        assert!(Y4mSource::open(&empty, 4, 2, false).unwrap_err().to_string().contains("empty"));
        assert!(Y4mSource::open(&d.join("missing.y4m"), 4, 2, false).is_err());
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn scales_to_the_broadcast_size() {
        let d = tmp();
        let path = write_y4m(&d, "s.y4m", "YUV4MPEG2 W8 H4 F30:1 Cmono", &[vec![200; 32]]);
        let mut s = Y4mSource::open(&path, 16, 8, false).unwrap();
        let f = s.next_frame().unwrap().unwrap();
        assert_eq!((f.width, f.height), (16, 8));
        // Mono is full-range luma (as ffmpeg reads it): 200 -> 16 + 200 * 219 / 255.
        assert!(f.y.iter().all(|&y| y == 188), "{:?}", &f.y[..4]);
        assert!(f.u.iter().all(|&u| u == 128));
        std::fs::remove_dir_all(d).ok();
    }
}
