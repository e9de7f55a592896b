//! The only place with sockets: tokio drivers around the sans-IO `rtmp/`
//! sessions, and the per-output queues they drain.
//!
//! May use `rtmp/`, `flv/`, `media/`; never `pipeline/` or `ui/`.

pub mod publisher;
pub mod queue;
mod status;

pub use status::{OutputState, OutputStatus};
