#![no_main]
//! See `tally_proto::fuzzing::server_session`: the body is there, so that kept inputs
//! also run on stable in `make test`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tally_proto::fuzzing::server_session(data));
