#![no_main]
//! AMF0 decoding of arbitrary bytes: never panics, and what decodes re-encodes
//! to something that decodes to the same values.
use libfuzzer_sys::fuzz_target;
use tally::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let bytes = amf0::encode_all(&values);
        let again = amf0::decode_all(&bytes).expect("re-encoded AMF0 decodes");
        // NaN != NaN; compare the encodings instead.
        assert_eq!(amf0::encode_all(&again), bytes);
    }
});
