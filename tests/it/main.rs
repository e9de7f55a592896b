//! Integration tests that drive Tally's binary, server and client against
//! real peers (ffmpeg, nginx-rtmp, players). One test binary rather than one
//! per file: each binary links the whole stack, and linking twenty of them was
//! a large share of `make test`'s build time.

#[path = "../common/mod.rs"]
mod common;

mod av_sync;
mod camera_device;
mod camera_formats;
mod check;
mod cli;
mod cli_control;
mod destinations;
mod devices;
mod file_sources;
mod golden_publish;
mod gui_window;
mod interop_publish;
mod profiles;
mod renditions;
mod scenes;
mod screen_x11;
mod record_crash;
mod server_abuse;
mod server_behaviour;
mod server_interop;
mod stop_and_reject;
