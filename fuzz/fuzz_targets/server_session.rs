#![no_main]
//! The server session fed an arbitrary client (after a valid C0/C1/C2),
//! accepting every publish and play and sending player notices.
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
                    match ev {
                        ServerEvent::PublishRequested { stream_id, .. } => {
                            let _ = server.accept_publish(stream_id);
                        }
                        ServerEvent::PlayRequested { stream_id, .. } => {
                            let _ = server.accept_play(stream_id);
                            let _ = server.notify_unpublish(stream_id);
                            let _ = server.notify_publish(stream_id);
                        }
                        _ => {}
                    }
                }
            }
            Err(_) => return,
        }
        let _ = server.take_outbound();
    }
});
