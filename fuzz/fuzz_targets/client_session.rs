#![no_main]
//! A publishing and a playing client fed an arbitrary "server": errors are
//! fine, panics are not.
use libfuzzer_sys::fuzz_target;
use tally::rtmp::{ClientConfig, ClientSession, MediaKind, RtmpUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(url) = RtmpUrl::parse("rtmp://127.0.0.1/live/key") else { return };
    let mut publisher = ClientSession::new(ClientConfig::from_url(&url), 1, 0);
    let mut player = ClientSession::new(ClientConfig::play_from_url(&url), 2, 0);
    let _ = publisher.take_outbound();
    let _ = player.take_outbound();
    let (mut pub_ok, mut play_ok) = (true, true);
    for piece in data.chunks(1024) {
        if pub_ok {
            pub_ok = publisher.handle_input(piece).is_ok();
            let _ = publisher.take_outbound();
            let _ = publisher.send_media(MediaKind::Audio, 0, bytes::Bytes::from_static(&[0xAF, 1, 0]));
        }
        if play_ok {
            play_ok = player.handle_input(piece).is_ok();
            let _ = player.take_outbound();
        }
    }
});
