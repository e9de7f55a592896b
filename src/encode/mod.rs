//! Frames -> packets: H.264 with openh264, AAC-LC with fdk-aac.
//!
//! Each encoder is a plain blocking object; the pipeline runs each on its own
//! OS thread. Uses only `media/`; never tokio, never another Tally module.

mod aac;
mod h264;

pub use aac::{AacEncoder, AacSettings, AAC_FRAME_SAMPLES};
pub use h264::{H264Encoder, H264Settings, VideoEncoderStats, VideoOutput};

/// Why an encoder could not be created or could not encode.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// openh264 refused its configuration or failed on a frame.
    #[error("H.264 encoder: {0}")]
    H264(String),
    /// fdk-aac refused its configuration or failed on a block.
    #[error("AAC encoder: {0}")]
    Aac(String),
    /// Settings that no encoder could honour (odd size, zero fps, ...).
    #[error("invalid encoder settings: {0}")]
    Settings(String),
}
