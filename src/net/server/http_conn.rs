//! HTTP-FLV and the stream list, on a minimal HTTP/1.1 responder: an HTTP
//! connection's task, as `rtmp_conn` is an RTMP one's (the request head it
//! parses is the core's `http`, whose name this file had).
//!
//! - `GET /APP/STREAM.flv`: an endless FLV body (file header, then metadata,
//!   sequence headers and the cached GOP, then live tags) for browsers
//!   (mpegts.js / flv.js), VLC and ffplay. Same hub and player queue as RTMP.
//! - `GET /api/streams`: JSON of every stream, its publisher and players.
//!
//! One request per connection (`Connection: close`); the request head is
//! capped at [`MAX_REQUEST_HEAD`](crate::http::MAX_REQUEST_HEAD) bytes and [`super::HANDSHAKE_TIMEOUT`].
//! Responses allow any origin, so a page served elsewhere can play.

use super::player_queue::{Drained, PlayerItem, PlayerLimits, PlayerProtocol, PlayerQueue};
use super::{Admission, HANDSHAKE_TIMEOUT, Shared, CLIENT_WRITE_STALL_TIMEOUT};
use crate::flv::STREAM_HEADER;
use crate::http::{self, HeadStatus, RequestHead, Route};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Tags written per batch.
const WRITE_BATCH: usize = 64;

const CORS: &str = "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n";

pub(super) async fn serve(mut socket: TcpStream, peer: SocketAddr, id: u64, admission: Admission, shared: Arc<Shared>) {
    if let Admission::Refused(why, _turn) = &admission {
        let body = format!("{}\n", why.reason());
        let _ = timeout(HANDSHAKE_TIMEOUT, respond(&mut socket, "503 Service Unavailable", "text/plain", body.as_bytes())).await;
        return;
    }
    let head = match timeout(HANDSHAKE_TIMEOUT, read_head(&mut socket)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => {
            let _ = respond(&mut socket, "431 Request Header Fields Too Large", "text/plain", b"request head too large\n").await;
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    };
    let path = head.path().to_string();
    tracing::debug!(conn = id, %peer, method = %head.method, %path, "http request");
    let result = match http::route(&head) {
        Route::Preflight => respond(&mut socket, "204 No Content", "text/plain", b"").await,
        Route::Streams { head_only } => {
            let body = serde_json::to_vec_pretty(&serde_json::json!({ "streams": shared.registry.streams() })).unwrap_or_default();
            let body = if head_only { Vec::new() } else { body };
            respond(&mut socket, "200 OK", "application/json", &body).await
        }
        Route::Flv { app, name } => {
            stream_flv(socket, &peer, &app, &name, &shared).await;
            return;
        }
        Route::NotFound => respond(&mut socket, "404 Not Found", "text/plain", b"not found: use /APP/STREAM.flv or /api/streams\n").await,
        Route::MethodNotAllowed => respond(&mut socket, "405 Method Not Allowed", "text/plain", b"only GET\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(conn = id, %peer, error = %e, "http response not delivered");
    }
    drop(admission);
}

/// Reads up to the blank line; `Ok(None)` when the head is too long.
async fn read_head(socket: &mut TcpStream) -> std::io::Result<Option<RequestHead>> {
    let mut received = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&buf[..n]);
        match http::parse_head(&received) {
            HeadStatus::Complete(head, _) => return Ok(Some(head)),
            HeadStatus::TooLarge => return Ok(None),
            HeadStatus::Partial => {}
        }
    }
}

async fn respond(socket: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n{CORS}Connection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body).await?;
    socket.shutdown().await
}

/// Streams one FLV until the client goes away or the server stops.
async fn stream_flv(socket: TcpStream, peer: &SocketAddr, app: &str, name: &str, shared: &Arc<Shared>) {
    let (mut rd, mut wr) = socket.into_split();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-cache\r\n{CORS}Connection: close\r\n\r\n"
    );
    let mut start = head.into_bytes();
    start.extend_from_slice(&STREAM_HEADER);
    if wr.write_all(&start).await.is_err() {
        return;
    }
    let hub = shared.registry.hub(app, name);
    let queue = Arc::new(PlayerQueue::new(PlayerLimits::PLAYER, &peer.to_string(), PlayerProtocol::HttpFlv));
    hub.add_player(queue.clone());
    tracing::info!(%peer, %app, stream = %name, "HTTP-FLV playing");
    let mut shutdown = shared.shutdown.clone();
    let mut items = Vec::with_capacity(WRITE_BATCH);
    let mut sink = [0u8; 512];
    let end = loop {
        items.clear();
        let drained = tokio::select! {
            d = queue.drain_wait(&mut items, WRITE_BATCH) => d,
            r = rd.read(&mut sink) => match r {
                Ok(0) | Err(_) => break "client closed".to_string(),
                Ok(_) => continue, // a pipelined request or junk: ignored
            },
            _ = shutdown.changed() => break "server stopping".to_string(),
        };
        if let Drained::Closed(reason) = drained {
            break reason.unwrap_or_else(|| "server stopping".to_string());
        }
        let bufs: Vec<Bytes> = items
            .iter()
            .filter_map(|i| match i {
                PlayerItem::Media(m) => m.flv_bytes(),
                // HTTP-FLV has no status channel: the body just pauses
                // between publishers and resumes with new sequence headers.
                PlayerItem::Published | PlayerItem::Unpublished => None,
            })
            .collect();
        let mut failed = None;
        for b in &bufs {
            match timeout(CLIENT_WRITE_STALL_TIMEOUT, wr.write_all(b)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(e.to_string()),
                Err(_) => failed = Some("player stopped reading".into()),
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(e) = failed {
            break e;
        }
    };
    tracing::info!(%peer, %app, stream = %name, "HTTP-FLV ended: {end}");
    queue.close();
    hub.remove_player(&queue);
    shared.registry.release(&hub);
}
