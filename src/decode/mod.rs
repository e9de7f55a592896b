//! Packets -> frames: H.264 with openh264's decoder. What the app's viewer
//! preview shows of the local server's relay, and what the tests and
//! benchmarks use to check that a stream decodes.
//!
//! Uses only `media/`; a plain blocking object, never tokio.

mod h264;

pub use h264::{DecodeError, H264Decoder};
