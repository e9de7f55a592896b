//! What one connection still has to write, in order, and the writing of it.
//!
//! A player's outbox holds the shared, pre-chunked media of many players
//! (`Bytes` clones of one encoding, see [`super::hub_message`]) and its own
//! session's messages. [`Outbox::poll_write`] hands as much as the socket
//! takes to one vectored `sendmsg` (up to [`MAX_IOV`] messages per call), and
//! a socket that is full parks the task until the kernel says it is writable
//! again — the same edge nginx-rtmp waits for — instead of polling it. A
//! short write already says the send buffer is full, so the task parks at
//! once rather than spend a second call learning `EAGAIN`.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Buffers per vectored write: far below every platform's `IOV_MAX` (1024 on
/// Linux), and more than a batch of queue items fills.
pub const MAX_IOV: usize = 64;

/// Bytes waiting for the socket, oldest first.
#[derive(Debug, Default)]
pub struct Outbox {
    bufs: VecDeque<Bytes>,
    /// Since when the socket has taken nothing (set when the task parks,
    /// cleared by any progress): how a player that stopped reading is told
    /// from a slow one.
    blocked_since: Option<Instant>,
}

impl Outbox {
    /// Queues `bytes` after what is already waiting.
    pub fn push(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.bufs.push_back(bytes);
        }
    }

    /// Nothing left to write.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Since when writing has made no progress, if it is stuck now.
    pub fn blocked_since(&self) -> Option<Instant> {
        self.blocked_since
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else { break };
            if front.len() <= n {
                n -= front.len();
                self.bufs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// Writes `bufs` (emptied) to the socket at once, without waiting, in
    /// one vectored write when nothing is ahead of them: what the socket
    /// does not take (all of it if it is full) waits here for
    /// [`Outbox::poll_write`]. `true` when all was written. An error is left
    /// for the connection's task to meet on its next write, where it ends
    /// the connection.
    pub fn write_through(&mut self, socket: &TcpStream, bufs: &mut Vec<Bytes>) -> bool {
        let mut written = 0;
        let mut total = 0;
        if self.bufs.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slot, b) in iov.iter_mut().zip(bufs.iter()) {
                *slot = IoSlice::new(b);
                count += 1;
            }
            total = bufs.iter().map(Bytes::len).sum();
            written = socket.try_write_vectored(&iov[..count]).unwrap_or(0);
        }
        let was_empty = self.bufs.is_empty();
        for b in bufs.drain(..) {
            self.push(b);
        }
        if was_empty {
            self.advance(written);
        }
        was_empty && written == total
    }

    /// Writes what the socket takes now: `Ready(Ok)` once everything is
    /// written, `Pending` (the task woken when the socket is writable) while
    /// the socket is full.
    pub fn poll_write(&mut self, socket: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.bufs.is_empty() {
            if socket.poll_write_ready(cx).is_pending() {
                self.blocked_since.get_or_insert_with(Instant::now);
                return Poll::Pending;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            let mut requested = 0;
            for (slot, b) in iov.iter_mut().zip(self.bufs.iter()) {
                *slot = IoSlice::new(b);
                count += 1;
                requested += b.len();
            }
            let mut wrote = 0;
            let sent = socket.try_io(Interest::WRITABLE, || {
                wrote = socket2::SockRef::from(socket).send_vectored(&iov[..count])?;
                // Short: the send buffer is full. Saying so clears the
                // readiness, and the next poll parks until the kernel has room.
                if wrote < requested { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
            });
            match sent {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if wrote > 0 {
                self.advance(wrote);
                self.blocked_since = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_consumes_whole_and_partial_buffers_in_order() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"abc"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"defg"));
        out.advance(4);
        assert_eq!(out.bufs.len(), 1);
        assert_eq!(&out.bufs[0][..], b"efg");
        out.advance(3);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn a_full_socket_parks_the_writer_until_the_reader_drains_it() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move { TcpStream::connect(addr).await });
        let (server, _) = listener.accept().await.expect("accept");
        let mut client = client.await.expect("join").expect("connect");
        // Far more than socket buffers hold: the writer must park at least once.
        let total = 64 << 20;
        let mut out = Outbox::default();
        for _ in 0..(total / (1 << 20)) {
            out.push(Bytes::from(vec![7u8; 1 << 20]));
        }
        let writer = tokio::spawn(async move {
            let mut parked = 0u32;
            std::future::poll_fn(|cx| {
                let p = out.poll_write(&server, cx);
                if p.is_pending() {
                    parked += 1;
                }
                p
            })
            .await
            .map(|()| parked)
        });
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 << 10];
        while got < total {
            let n = client.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed after {got} bytes");
            assert!(buf[..n].iter().all(|&b| b == 7));
            got += n;
        }
        let parked = writer.await.expect("join").expect("write");
        assert_eq!(got, total);
        assert!(parked > 0, "a 64 MiB write never found the socket full");
    }
}
