#![no_main]
//! A publishing client fed an arbitrary "server": errors are fine, panics are not.
use libfuzzer_sys::fuzz_target;
use tally::rtmp::{ClientConfig, ClientSession, MediaKind, RtmpUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(url) = RtmpUrl::parse("rtmp://127.0.0.1/live/key") else { return };
    let mut client = ClientSession::new(ClientConfig::from_url(&url), 1, 0);
    let _ = client.take_outbound();
    for piece in data.chunks(1024) {
        if client.handle_input(piece).is_err() {
            return;
        }
        let _ = client.take_outbound();
        let _ = client.send_media(MediaKind::Audio, 0, &[0xAF, 1, 0]);
    }
});
