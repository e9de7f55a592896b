//! Tally: a desktop live-broadcasting app.
//!
//! Capture (camera, microphone, test sources) -> encode (H.264, AAC) -> FLV
//! tags -> outputs (RTMP publishers, FLV recorder, preview). See
//! `docs/ARCHITECTURE.md` for the map and the rules between modules.
#![deny(missing_docs)]

pub mod capture;
pub mod compose;
pub mod config;
pub mod decode;
pub mod encode;
pub mod engine;
pub mod media;
pub mod net;
pub mod pipeline;
pub mod session;
pub mod tags;
pub mod ui;

// The protocol core, sans-IO, in its own crate so that it builds (and
// fuzzes) without the app's stack; here under the names it always had.
pub use tally_proto::{amf0, flv, http, rtmp};

/// An error and its causes, `outer: inner: ...`, as anyhow's `{:#}` prints
/// them (a cause whose words the outer message already ends with is not
/// repeated). What logs, states and reports show of a typed error.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
