#![no_main]
//! The server session fed an arbitrary client (after a valid C0/C1/C2), accepting every publish.
use libfuzzer_sys::fuzz_target;
use tally::rtmp::{ServerConfig, ServerEvent, ServerSession};

fuzz_target!(|data: &[u8]| {
    let mut server = ServerSession::new(ServerConfig::default(), 1, 0);
    let mut hello = vec![3u8];
    hello.extend(std::iter::repeat_n(0u8, 2 * 1536));
    if server.handle_input(&hello).is_err() {
        return;
    }
    let _ = server.take_outbound();
    for piece in data.chunks(777) {
        match server.handle_input(piece) {
            Ok(events) => {
                for ev in events {
                    if let ServerEvent::PublishRequested { stream_id, .. } = ev {
                        let _ = server.accept_publish(stream_id);
                    }
                }
            }
            Err(_) => return,
        }
        let _ = server.take_outbound();
    }
});
