//! Tally: a desktop live-broadcasting app.
//!
//! Capture (camera, microphone, test sources) -> encode (H.264, AAC) -> FLV
//! tags -> outputs (RTMP publishers, FLV recorder, preview). See
//! `docs/ARCHITECTURE.md` for the map and the rules between modules.
#![warn(missing_docs)]

pub mod amf0;
pub mod capture;
pub mod config;
pub mod decode;
pub mod encode;
pub mod engine;
pub mod flv;
pub mod media;
pub mod net;
pub mod pipeline;
pub mod rtmp;
pub mod ui;
