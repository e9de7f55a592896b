//! The plain RTMP handshake, both sides (Adobe RTMP 1.0 spec, 5.2).
//!
//! No digest (the FP9 "complex" handshake): S1/C1 carry zero version bytes,
//! which ffmpeg, librtmp (rtmpdump, GStreamer, OBS), VLC, mpv, nginx-rtmp and
//! the big ingests accept. Neither side checks the echo it gets back (C2/S2):
//! ffmpeg and librtmp only warn on a mismatch, and FP9 peers echo differently.
//!
//! Timeouts are the driver's job; these machines only count bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// The only protocol version we speak: C0/S0 (spec 5.2.2).
pub const RTMP_VERSION: u8 = 3;

/// Size of C1/S1/C2/S2 (spec 5.2.3, 5.2.4).
pub const HANDSHAKE_SIZE: usize = 1536;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's C0/S0 was not version 3 (6 would be RTMPE, which we do not speak).
    #[error("peer asked for RTMP version {0}, only 3 is supported")]
    UnsupportedVersion(u8),
}

/// Result of feeding bytes to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// More bytes are needed; every byte given was consumed.
    InProgress,
    /// The handshake is complete; `leftover` are the bytes after it (the first chunks).
    Done {
        /// Bytes received after the last handshake byte.
        leftover: Bytes,
    },
}

/// Accumulates exactly `want` bytes across calls.
#[derive(Debug)]
struct Collect {
    buf: Vec<u8>,
    want: usize,
}

impl Collect {
    fn new(want: usize) -> Self {
        Collect { buf: Vec::with_capacity(want), want }
    }

    /// Takes what it still needs from the front of `input`; true once full.
    fn fill(&mut self, input: &mut &[u8]) -> bool {
        let n = (self.want - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..n]);
        *input = &input[n..];
        self.buf.len() == self.want
    }
}

/// C1/S1 (spec 5.2.3): time, four zero bytes, 1528 random bytes.
fn put_random_block(out: &mut BytesMut, rng: &mut fastrand::Rng, time: u32) {
    out.put_u32(time);
    out.put_u32(0);
    let mut random = [0u8; HANDSHAKE_SIZE - 8];
    rng.fill(&mut random);
    out.put_slice(&random);
}

#[derive(Debug)]
enum ClientStep {
    AwaitS0S1(Collect),
    AwaitS2(Collect),
    Done,
}

/// The client side: sends C0+C1 at once, C2 (an echo of S1) when S1 arrives,
/// and is done once S2 has been read.
#[derive(Debug)]
pub struct ClientHandshake {
    step: ClientStep,
}

impl ClientHandshake {
    /// Starts a handshake, appending C0+C1 to `out`. `time_ms` goes in C1's
    /// time field (the caller's epoch); `rng` fills the random block.
    pub fn new(rng: &mut fastrand::Rng, time_ms: u32, out: &mut BytesMut) -> Self {
        out.put_u8(RTMP_VERSION);
        put_random_block(out, rng, time_ms);
        ClientHandshake { step: ClientStep::AwaitS0S1(Collect::new(1 + HANDSHAKE_SIZE)) }
    }

    /// Feeds received bytes, appending C2 to `out` when S1 is complete.
    pub fn handle_input(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<HandshakeStatus, HandshakeError> {
        loop {
            match &mut self.step {
                ClientStep::AwaitS0S1(c) => {
                    if !c.fill(&mut input) {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    if c.buf[0] != RTMP_VERSION {
                        return Err(HandshakeError::UnsupportedVersion(c.buf[0]));
                    }
                    // C2 echoes S1 whole, as ffmpeg's plain handshake does.
                    out.put_slice(&c.buf[1..]);
                    self.step = ClientStep::AwaitS2(Collect::new(HANDSHAKE_SIZE));
                }
                ClientStep::AwaitS2(c) => {
                    if !c.fill(&mut input) {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    self.step = ClientStep::Done;
                    return Ok(HandshakeStatus::Done { leftover: Bytes::copy_from_slice(input) });
                }
                ClientStep::Done => return Ok(HandshakeStatus::Done { leftover: Bytes::copy_from_slice(input) }),
            }
        }
    }

    /// True once S2 has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.step, ClientStep::Done)
    }
}

#[derive(Debug)]
enum ServerStep {
    AwaitC0C1(Collect),
    AwaitC2(Collect),
    Done,
}

/// The server side: answers C0+C1 with S0+S1+S2 in one write (as nginx-rtmp
/// does) and is done once C2 has been read.
#[derive(Debug)]
pub struct ServerHandshake {
    step: ServerStep,
    s1: BytesMut,
}

impl ServerHandshake {
    /// Prepares S1 with `time_ms` in its time field, zero version bytes and
    /// random bytes from `rng`.
    pub fn new(rng: &mut fastrand::Rng, time_ms: u32) -> Self {
        let mut s1 = BytesMut::with_capacity(HANDSHAKE_SIZE);
        put_random_block(&mut s1, rng, time_ms);
        ServerHandshake { step: ServerStep::AwaitC0C1(Collect::new(1 + HANDSHAKE_SIZE)), s1 }
    }

    /// Feeds received bytes, appending S0+S1+S2 to `out` when C1 is complete.
    pub fn handle_input(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<HandshakeStatus, HandshakeError> {
        loop {
            match &mut self.step {
                ServerStep::AwaitC0C1(c) => {
                    if !c.fill(&mut input) {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    if c.buf[0] != RTMP_VERSION {
                        return Err(HandshakeError::UnsupportedVersion(c.buf[0]));
                    }
                    out.put_u8(RTMP_VERSION);
                    out.put_slice(&self.s1);
                    // S2 echoes C1 whole. An FP9 client (ffmpeg, OBS: non-zero
                    // version bytes in C1) sees zero version bytes in our S1,
                    // skips digest checks and accepts this.
                    out.put_slice(&c.buf[1..]);
                    self.step = ServerStep::AwaitC2(Collect::new(HANDSHAKE_SIZE));
                }
                ServerStep::AwaitC2(c) => {
                    if !c.fill(&mut input) {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    self.step = ServerStep::Done;
                    return Ok(HandshakeStatus::Done { leftover: Bytes::copy_from_slice(input) });
                }
                ServerStep::Done => return Ok(HandshakeStatus::Done { leftover: Bytes::copy_from_slice(input) }),
            }
        }
    }

    /// True once C2 has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.step, ServerStep::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(seed: u64) -> (ClientHandshake, ServerHandshake, BytesMut) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut c0c1 = BytesMut::new();
        let client = ClientHandshake::new(&mut rng, 1234, &mut c0c1);
        let server = ServerHandshake::new(&mut rng, 0);
        (client, server, c0c1)
    }

    #[test]
    fn c0c1_layout() {
        let (_, _, c0c1) = pair(7);
        assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(c0c1[0], 3);
        assert_eq!(&c0c1[1..5], &1234u32.to_be_bytes());
        assert_eq!(&c0c1[5..9], &[0, 0, 0, 0]);
    }

    #[test]
    fn deterministic_for_a_seed() {
        assert_eq!(pair(42).2, pair(42).2);
        assert_ne!(pair(42).2, pair(43).2);
    }

    #[test]
    fn full_exchange_one_byte_at_a_time_with_leftover() {
        let (mut client, mut server, c0c1) = pair(1);
        let mut s_out = BytesMut::new();
        for b in c0c1.iter() {
            assert_eq!(server.handle_input(&[*b], &mut s_out).unwrap(), HandshakeStatus::InProgress);
        }
        assert_eq!(s_out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(s_out[0], 3);
        assert_eq!(&s_out[5..9], &[0, 0, 0, 0], "S1 version bytes are zero");
        assert_eq!(&s_out[1 + HANDSHAKE_SIZE..], &c0c1[1..], "S2 echoes C1");

        let mut c_out = BytesMut::new();
        let mut status = HandshakeStatus::InProgress;
        for b in s_out.iter() {
            status = client.handle_input(&[*b], &mut c_out).unwrap();
        }
        assert_eq!(status, HandshakeStatus::Done { leftover: Bytes::new() });
        assert!(client.is_done());
        assert_eq!(&c_out[..], &s_out[1..1 + HANDSHAKE_SIZE], "C2 echoes S1");

        // C2 plus the first chunk bytes in one read.
        let mut tail = c_out.to_vec();
        tail.extend_from_slice(b"chunk");
        let status = server.handle_input(&tail, &mut s_out).unwrap();
        assert_eq!(status, HandshakeStatus::Done { leftover: Bytes::from_static(b"chunk") });
        assert!(server.is_done());
    }

    #[test]
    fn fp9_client_c1_is_echoed() {
        let (_, mut server, mut c0c1) = pair(3);
        c0c1[5..9].copy_from_slice(&[9, 0, 124, 2]); // ffmpeg's FP9 version bytes
        let mut out = BytesMut::new();
        server.handle_input(&c0c1, &mut out).unwrap();
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c0c1[1..]);
    }

    #[test]
    fn wrong_version_is_an_error() {
        let (mut client, mut server, mut c0c1) = pair(5);
        c0c1[0] = 6;
        let mut out = BytesMut::new();
        assert_eq!(server.handle_input(&c0c1, &mut out), Err(HandshakeError::UnsupportedVersion(6)));
        let mut s0s1 = vec![0u8; 1 + HANDSHAKE_SIZE];
        s0s1[0] = 10;
        assert_eq!(client.handle_input(&s0s1, &mut out), Err(HandshakeError::UnsupportedVersion(10)));
    }
}
