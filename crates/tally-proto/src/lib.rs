//! Tally's protocol core, sans-IO: what comes off the wire or out of a file
//! is parsed here, and nothing here does I/O, reads a clock or spawns a
//! thread (quinn-proto's shape). Bytes and the current time come in as
//! arguments; bytes to send and events come out.
//!
//! - [`amf0`]: Action Message Format 0, bounded decoding.
//! - [`rtmp`]: handshake, chunk codec, messages, client and server sessions
//!   with their deadlines.
//! - [`flv`]: FLV tags, the file reader and the writer.
//! - [`http`]: the request head of an HTTP-FLV / status API request.
//!
//! The app (`tally`) re-exports these modules under the same names; the
//! fuzz targets (`fuzz/`) and [`fuzzing`] use this crate alone.
#![deny(missing_docs)]

pub mod amf0;
pub mod flv;
pub mod fuzzing;
pub mod http;
pub mod rtmp;
