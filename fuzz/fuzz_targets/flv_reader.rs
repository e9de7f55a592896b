#![no_main]
//! The FLV reader and tag-header parsers on arbitrary files.
use libfuzzer_sys::fuzz_target;
use tally::flv::{self, FlvReader, TagType};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = FlvReader::new(data.to_vec()) else { return };
    for tag in reader {
        let Ok(tag) = tag else { break };
        match tag.tag_type {
            TagType::Video => drop(flv::parse_video_header(&tag.data)),
            TagType::Audio => drop(flv::parse_audio_header(&tag.data)),
            TagType::Script => drop(flv::parse_script(&tag.data)),
        }
    }
});
