//! An HTTP-FLV player the tests own: `GET /APP/STREAM.flv` on a plain TCP
//! socket, the response head checked, then the endless FLV body split into
//! tags (FLV 10.1 E.3/E.4) — recorded in the same [`Recording`] an RTMP
//! [`Listener`](super::rtmp_client::Listener) fills, with each tag's arrival
//! time. Like the RTMP listener it reads only when asked to, so a test can
//! make it a viewer that stopped reading.

use super::rtmp_client::{Ended, Heard, Recording, Seen};
use bytes::{Buf, Bytes, BytesMut};
use std::time::{Duration, Instant};
use tally::rtmp::MediaKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of response head accepted before the body.
const MAX_HEAD: usize = 8 * 1024;
/// FLV file header (9 bytes) and the first PreviousTagSize (4).
const FLV_START: usize = 13;
/// Tag header (11 bytes).
const TAG_HEADER: usize = 11;
/// Largest tag body the reader accepts (the field is 24 bits).
const MAX_TAG: usize = 0xFF_FFFF;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// One HTTP-FLV viewer.
pub struct FlvReader {
    socket: TcpStream,
    buf: BytesMut,
    started: bool,
    /// What it heard so far: media only (HTTP-FLV has no statuses).
    pub rec: Recording,
    /// Every video tag body received (sequence headers included), when
    /// asked for with [`FlvReader::keep_video`].
    pub video_bodies: Vec<Bytes>,
    keep_video: bool,
}

impl FlvReader {
    /// Connects to `127.0.0.1:port`, asks for `path` and reads the response
    /// head: it must be `200` with `Content-Type: video/x-flv`.
    pub async fn connect(port: u16, path: &str) -> Result<FlvReader, String> {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect :{port}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n");
        socket.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_HEAD {
                return Err("no end of the response head".into());
            }
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read_buf(&mut buf))
                .await
                .map_err(|_| "no response head within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("closed before the response head: {:?}", String::from_utf8_lossy(&buf)));
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 200") || !head.to_ascii_lowercase().contains("content-type: video/x-flv") {
            return Err(format!("not an FLV response: {head}"));
        }
        buf.advance(end);
        Ok(FlvReader { socket, buf, started: false, rec: Recording::default(), video_bodies: Vec::new(), keep_video: false })
    }

    /// Also keeps every video tag's body, for decoding.
    pub fn keep_video(mut self) -> Self {
        self.keep_video = true;
        self
    }

    /// `ip:port` of our end: how the server lists this viewer.
    pub fn local_addr(&self) -> String {
        self.socket.local_addr().map(|a| a.to_string()).unwrap_or_default()
    }

    /// Reads and records tags until `stop` holds for the recording, the
    /// server closes (`Closed`), or `limit` passes. A malformed body is an `Err`.
    pub async fn read_until(&mut self, limit: Duration, mut stop: impl FnMut(&Recording) -> bool) -> Result<Ended, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.take_tags()?;
            if stop(&self.rec) {
                return Ok(Ended::Done);
            }
            self.buf.reserve(READ_CHUNK);
            match tokio::time::timeout_at(deadline, self.socket.read_buf(&mut self.buf)).await {
                Err(_) => return Ok(Ended::TimedOut),
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.take_tags()?;
                    return Ok(Ended::Closed);
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Moves the whole tags in the buffer into the recording.
    fn take_tags(&mut self) -> Result<(), String> {
        if !self.started {
            if self.buf.len() < FLV_START {
                return Ok(());
            }
            if &self.buf[..3] != b"FLV" || self.buf[3] != 1 {
                return Err(format!("not an FLV body: {:02x?}", &self.buf[..FLV_START]));
            }
            self.buf.advance(FLV_START);
            self.started = true;
        }
        let at = Instant::now();
        while self.buf.len() >= TAG_HEADER {
            let h = &self.buf[..TAG_HEADER];
            let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            if size > MAX_TAG {
                return Err(format!("tag of {size} bytes"));
            }
            if self.buf.len() < TAG_HEADER + size + 4 {
                return Ok(());
            }
            // Timestamp: 24 bits, then the extension byte on top (E.4.1).
            let ts = u32::from(h[7]) << 24 | u32::from(h[4]) << 16 | u32::from(h[5]) << 8 | u32::from(h[6]);
            let kind = match h[0] & 0x1F {
                8 => MediaKind::Audio,
                9 => MediaKind::Video,
                18 => MediaKind::Data,
                other => return Err(format!("tag type {other}")),
            };
            let prev_size = (&self.buf[TAG_HEADER + size..TAG_HEADER + size + 4]).get_u32() as usize;
            if prev_size != TAG_HEADER + size {
                return Err(format!("PreviousTagSize {prev_size} after a tag of {}", TAG_HEADER + size));
            }
            let mut tag = self.buf.split_to(TAG_HEADER + size + 4).freeze();
            tag.advance(TAG_HEADER);
            let body = tag.slice(..size);
            if kind == MediaKind::Video && self.keep_video {
                self.video_bodies.push(body.clone());
            }
            self.rec.heard.push(Heard::Media(Seen::of(at, kind, ts, &body, 0)));
        }
        Ok(())
    }
}
