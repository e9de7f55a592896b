//! Append-only FLV file writer (FLV 10.1 E.2 header, E.3 body).

use super::{FlvError, FlvTag, TagType};
use std::io::{Seek, SeekFrom, Write};

/// Media time between flushes: a crash loses at most this much of the file.
pub const FLUSH_INTERVAL_MS: u32 = 1000;

/// Size of FLVTAG's header (E.4.1).
const TAG_HEADER_LEN: u64 = 11;

/// Writes an FLV file: header first, tags appended, flushed every
/// [`FLUSH_INTERVAL_MS`] of media, and at a clean [`finish`](Self::finish)
/// the onMetaData `duration` and `filesize` patched in place (AMF0 numbers
/// are fixed 8-byte doubles, so patching never moves anything).
pub struct FlvWriter<W: Write + Seek> {
    w: W,
    pos: u64,
    duration_at: Option<u64>,
    filesize_at: Option<u64>,
    first_ts: Option<u32>,
    last_flush_ts: Option<u32>,
    last: [Option<(u32, u32)>; 2], // per audio/video: (last ts, last delta)
}

fn find_number(body: &[u8], key: &str) -> Option<usize> {
    // An ECMA-array key is u16 length + UTF-8, followed by the 0x00 number marker.
    let mut pat = Vec::with_capacity(key.len() + 3);
    pat.extend_from_slice(&(key.len() as u16).to_be_bytes());
    pat.extend_from_slice(key.as_bytes());
    pat.push(0x00);
    body.windows(pat.len()).position(|w| w == pat.as_slice()).map(|i| i + pat.len())
}

impl<W: Write + Seek> FlvWriter<W> {
    /// Writes the FLV header and PreviousTagSize0.
    pub fn new(mut w: W, has_audio: bool, has_video: bool) -> Result<Self, FlvError> {
        let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
        w.write_all(&[b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])?;
        Ok(FlvWriter {
            w,
            pos: 13,
            duration_at: None,
            filesize_at: None,
            first_ts: None,
            last_flush_ts: None,
            last: [None, None],
        })
    }

    /// Appends one tag.
    pub fn write_tag(&mut self, tag: &FlvTag) -> Result<(), FlvError> {
        let len = tag.data.len();
        if len > 0xFF_FFFF {
            return Err(FlvError::TagTooLarge(len as u32));
        }
        if tag.tag_type == TagType::Script && self.duration_at.is_none() {
            let body_at = self.pos + TAG_HEADER_LEN;
            self.duration_at = find_number(&tag.data, "duration").map(|i| body_at + i as u64);
            self.filesize_at = find_number(&tag.data, "filesize").map(|i| body_at + i as u64);
        }
        let ts = tag.timestamp_ms;
        let mut header = [0u8; TAG_HEADER_LEN as usize];
        header[0] = tag.tag_type as u8;
        header[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        header[4..7].copy_from_slice(&ts.to_be_bytes()[1..]);
        header[7] = (ts >> 24) as u8; // TimestampExtended
        self.w.write_all(&header)?;
        self.w.write_all(&tag.data)?;
        self.w.write_all(&((TAG_HEADER_LEN as u32 + len as u32).to_be_bytes()))?;
        self.pos += TAG_HEADER_LEN + len as u64 + 4;

        if tag.tag_type != TagType::Script {
            self.first_ts.get_or_insert(ts);
            let slot = &mut self.last[usize::from(tag.tag_type == TagType::Video)];
            let delta = slot.map(|(prev, d)| if ts > prev { ts - prev } else { d }).unwrap_or(0);
            *slot = Some((ts, delta));
        }
        let since = self.last_flush_ts.map(|f| ts.wrapping_sub(f));
        if since.is_none_or(|s| (FLUSH_INTERVAL_MS..u32::MAX / 2).contains(&s)) {
            self.w.flush()?;
            self.last_flush_ts = Some(ts);
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Media duration so far, seconds: from the first media tag to the end of
    /// the last one (its timestamp plus its stream's frame interval).
    pub fn duration_secs(&self) -> f64 {
        let Some(first) = self.first_ts else { return 0.0 };
        let end = self.last.iter().flatten().map(|(ts, d)| ts.wrapping_sub(first) as u64 + *d as u64).max().unwrap_or(0);
        end as f64 / 1000.0
    }

    /// Patches duration and filesize, flushes, and returns the writer.
    pub fn finish(mut self) -> Result<W, FlvError> {
        let end = self.pos;
        for (at, value) in [(self.duration_at, self.duration_secs()), (self.filesize_at, end as f64)] {
            if let Some(at) = at {
                self.w.seek(SeekFrom::Start(at))?;
                self.w.write_all(&value.to_be_bytes())?;
            }
        }
        self.w.seek(SeekFrom::Start(end))?;
        self.w.flush()?;
        Ok(self.w)
    }
}
