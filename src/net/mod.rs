//! The only place with sockets: tokio drivers around the sans-IO `rtmp/`
//! sessions — the publisher, and the server (RTMP + HTTP-FLV) — and the
//! bounded queues they drain.
//!
//! May use `rtmp/`, `flv/`, `media/`; never `pipeline/` or `ui/`.

pub mod rtmp_player;
pub mod probe;
pub mod client_setup;
pub mod publisher;
pub mod media_queue;
pub mod output_queue;
pub mod server;
mod status;
pub mod transport;

pub use status::{FailureKind, OutputState, OutputStatus};
