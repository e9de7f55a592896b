//! A validating FLV reader over bytes in memory (FLV 10.1 E.2, E.3, E.4.1).

use super::{FlvError, FlvTag, TagType};
use bytes::Bytes;

/// Largest tag body accepted: the 24-bit DataSize field's maximum.
pub const MAX_TAG_SIZE: u32 = 0xFF_FFFF;

/// Largest DataOffset accepted; version 1 headers are 9 bytes.
const MAX_HEADER_SIZE: u32 = 1024;

/// The file header (E.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvHeader {
    /// TypeFlagsAudio.
    pub has_audio: bool,
    /// TypeFlagsVideo.
    pub has_video: bool,
    /// Where the body starts.
    pub data_offset: u32,
}

/// Iterates the tags of an FLV file, validating each PreviousTagSize.
///
/// A file cut off inside a tag (a crash while recording) yields every
/// complete tag and then [`FlvError::Truncated`].
pub struct FlvReader {
    data: Bytes,
    pos: usize,
    header: FlvHeader,
    prev_size: u32,
    done: bool,
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

impl FlvReader {
    /// Validates the header; tags are read on demand.
    pub fn new(data: impl Into<Bytes>) -> Result<Self, FlvError> {
        let data = data.into();
        if data.len() < 9 {
            return Err(if data.starts_with(b"FLV") || data.len() < 3 { FlvError::Truncated(0) } else { FlvError::BadSignature });
        }
        if &data[..3] != b"FLV" {
            return Err(FlvError::BadSignature);
        }
        if data[3] != 1 {
            return Err(FlvError::BadVersion(data[3]));
        }
        let data_offset = u32::from_be_bytes([data[5], data[6], data[7], data[8]]);
        if !(9..=MAX_HEADER_SIZE).contains(&data_offset) {
            return Err(FlvError::BadHeaderSize(data_offset));
        }
        if data_offset as usize > data.len() {
            return Err(FlvError::Truncated(data.len() as u64));
        }
        let header = FlvHeader { has_audio: data[4] & 4 != 0, has_video: data[4] & 1 != 0, data_offset };
        Ok(FlvReader { data, pos: data_offset as usize, header, prev_size: 0, done: false })
    }

    /// The file header.
    pub fn header(&self) -> FlvHeader {
        self.header
    }

    /// Reads every tag; stops at the first error.
    pub fn read_all(data: impl Into<Bytes>) -> Result<Vec<FlvTag>, FlvError> {
        FlvReader::new(data)?.collect()
    }

    /// The next tag, `Ok(None)` at a clean end of file.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_one();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_one(&mut self) -> Result<Option<FlvTag>, FlvError> {
        // DataOffset may point past the end of a short or hostile file.
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if rest.len() < 4 {
            return if rest.is_empty() && self.pos > self.header.data_offset as usize {
                // Some writers omit the final PreviousTagSize; accept a clean end here.
                Ok(None)
            } else {
                Err(FlvError::Truncated(self.pos as u64))
            };
        }
        let found = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if found != self.prev_size {
            return Err(FlvError::TagSizeMismatch { offset: self.pos as u64, expected: self.prev_size, found });
        }
        let tag_at = self.pos + 4;
        let rest = &self.data[tag_at..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < 11 {
            return Err(FlvError::Truncated(tag_at as u64));
        }
        let type_byte = rest[0];
        // Reserved bits and the Filter bit (encrypted content) are not supported.
        let tag_type = match (type_byte & 0xE0, TagType::from_u8(type_byte & 0x1F)) {
            (0, Some(t)) => t,
            _ => return Err(FlvError::UnknownTagType(type_byte, tag_at as u64)),
        };
        let size = be24(&rest[1..4]);
        if size > MAX_TAG_SIZE {
            return Err(FlvError::TagTooLarge(size));
        }
        let timestamp_ms = be24(&rest[4..7]) | (u32::from(rest[7]) << 24);
        let body_at = tag_at + 11;
        let body_end = body_at + size as usize;
        if body_end > self.data.len() {
            return Err(FlvError::Truncated(tag_at as u64));
        }
        self.prev_size = 11 + size;
        self.pos = body_end;
        Ok(Some(FlvTag::new(tag_type, timestamp_ms, self.data.slice(body_at..body_end))))
    }
}

impl Iterator for FlvReader {
    type Item = Result<FlvTag, FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_tag().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FlvWriter, StreamMetadata, metadata_tag, parse_script};
    use super::*;
    use crate::amf0::Amf0Value;
    use proptest::prelude::*;
    use std::io::Cursor;

    #[test]
    fn data_offset_past_the_end_is_truncation_not_a_panic() {
        // Found by the flv_reader fuzz target: DataOffset 320 in a 13-byte file.
        let data = b"FLV\x01\x00\x00\x00\x01\x40\x40\x00\x70\x00".to_vec();
        assert!(matches!(FlvReader::new(data), Err(FlvError::Truncated(13))));
        let mut short = b"FLV\x01\x05\x00\x00\x00\x20".to_vec();
        short.extend_from_slice(&[0; 4]);
        assert!(matches!(FlvReader::new(short), Err(FlvError::Truncated(13))));
    }

    fn tags(n: u32, start: u32) -> Vec<FlvTag> {
        let mut v = Vec::new();
        for i in 0..n {
            let ts = start.wrapping_add(i * 33);
            v.push(FlvTag::new(TagType::Video, ts, Bytes::from(vec![0x27, 1, 0, 0, 0, i as u8])));
            v.push(FlvTag::new(TagType::Audio, ts, Bytes::from(vec![0xAF, 1, i as u8])));
        }
        v
    }

    fn write(all: &[FlvTag]) -> Vec<u8> {
        let meta = StreamMetadata { duration: 0.0, video: Some((640, 360, 30.0, 1000)), audio: None, encoder: "t".into(), filesize: 0.0 };
        let mut w = FlvWriter::new(Cursor::new(Vec::new()), true, true).unwrap();
        w.write_tag(&metadata_tag(&meta, all.first().map_or(0, |t| t.timestamp_ms))).unwrap();
        for t in all {
            w.write_tag(t).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn header_bytes() {
        let out = FlvWriter::new(Cursor::new(Vec::new()), true, true).unwrap().finish().unwrap().into_inner();
        assert_eq!(out, vec![b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
    }

    #[test]
    fn round_trip_across_the_24_bit_boundary_with_patched_metadata() {
        let input = tags(300, 0xFF_FFFF - 5000);
        let file = write(&input);
        let read = FlvReader::read_all(file.clone()).unwrap();
        assert_eq!(&read[1..], &input[..]);
        let (_, meta) = parse_script(&read[0].data).unwrap();
        let duration = meta.get("duration").and_then(Amf0Value::as_number).unwrap();
        assert!((duration - 300.0 * 0.033).abs() < 1e-9, "{duration}");
        assert_eq!(meta.get("filesize").and_then(Amf0Value::as_number), Some(file.len() as f64));
    }

    #[test]
    fn truncated_file_yields_complete_tags_then_truncated() {
        let file = write(&tags(10, 0));
        let cut = &file[..file.len() - 7];
        let mut r = FlvReader::new(cut.to_vec()).unwrap();
        let mut n = 0;
        let err = loop {
            match r.next_tag() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("should be truncated"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 20); // metadata + 19 complete media tags
        assert!(matches!(err, FlvError::Truncated(_)), "{err}");
    }

    #[test]
    fn corrupt_inputs_are_typed_errors() {
        assert!(matches!(FlvReader::new(b"XYZ\x01\x05\0\0\0\x09".to_vec()), Err(FlvError::BadSignature)));
        assert!(matches!(FlvReader::new(b"FLV\x02\x05\0\0\0\x09".to_vec()), Err(FlvError::BadVersion(2))));
        let mut file = write(&tags(2, 0));
        let last = file.len() - 1;
        file[last] ^= 0xff;
        assert!(matches!(FlvReader::read_all(file), Err(FlvError::TagSizeMismatch { .. })));
        let mut file = write(&tags(2, 0));
        file[13] = 0x20 | 9; // Filter bit
        assert!(matches!(FlvReader::read_all(file), Err(FlvError::UnknownTagType(..))));
    }

    proptest! {
        #[test]
        fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut data = b"FLV\x01\x05\0\0\0\x09".to_vec();
            data.extend_from_slice(&bytes);
            if let Ok(r) = FlvReader::new(data) {
                for t in r { if t.is_err() { break; } }
            }
            let _ = FlvReader::new(bytes);
        }

        #[test]
        fn tags_round_trip(specs in prop::collection::vec((0u8..3, any::<u32>(), prop::collection::vec(any::<u8>(), 0..64)), 0..32)) {
            let input: Vec<FlvTag> = specs.into_iter().map(|(t, ts, d)| {
                FlvTag::new([TagType::Audio, TagType::Video, TagType::Script][t as usize], ts, Bytes::from(d))
            }).collect();
            let mut w = FlvWriter::new(Cursor::new(Vec::new()), true, true).unwrap();
            for t in &input { w.write_tag(t).unwrap(); }
            let file = w.finish().unwrap().into_inner();
            prop_assert_eq!(FlvReader::read_all(file).unwrap(), input);
        }
    }
}
