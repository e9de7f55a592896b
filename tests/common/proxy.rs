//! A TCP proxy the tests own, between Tally and its server, that breaks the
//! path on command the way real networks do:
//!
//! - [`FaultProxy::cut`]: every open connection is reset (both sides get RST);
//!   new connections are fine.
//! - [`PathState::Stalled`]: nothing moves on open connections; new ones are
//!   accepted by the kernel but not carried until the path heals (a Wi-Fi
//!   dropout: packets wait, nothing fails).
//! - [`PathState::Refusing`]: open connections are reset and the port is
//!   closed, so new connections are refused.
//! - [`FaultProxy::limit_rate`]: client→server bytes are paced to a rate, with
//!   a small receive buffer, like a thin uplink with a modest router queue.
//!
//! It runs on its own tokio runtime thread; the control methods are plain
//! functions the test thread calls.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// What the path does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathState {
    /// Carrying traffic.
    Open,
    /// Carrying nothing, failing nothing.
    Stalled,
    /// Port closed: connections are refused.
    Refusing,
}

/// The proxy's listening socket's receive buffer: with the rate limit on,
/// this is the "router queue" (the kernel doubles it).
const RECV_BUFFER: u32 = 32 * 1024;
/// Largest read per step, so pacing is smooth.
const CHUNK: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Control {
    state: PathState,
    /// Connections opened before this generation are reset.
    cut_generation: u64,
    /// Client→server bytes per second; 0 = unlimited.
    rate: u64,
}

/// One connection's captured client→server bytes.
type Tap = Arc<Mutex<Vec<u8>>>;

/// Client→server bytes kept per connection for [`FaultProxy::sent_on`]:
/// enough for the publish sequence and the first seconds of media.
const TAP_LIMIT: usize = 2 << 20;

/// Counters the test can read.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Client→server bytes carried.
    pub upstream_bytes: AtomicU64,
    /// The first [`TAP_LIMIT`] client→server bytes of each connection, in
    /// the order they were accepted.
    taps: Mutex<Vec<Tap>>,
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct FaultProxy {
    port: u16,
    control: watch::Sender<Control>,
    counters: Arc<ProxyCounters>,
    runtime: Option<tokio::runtime::Runtime>,
    upstream: Arc<Mutex<SocketAddr>>,
}

fn listener(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(64)
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let first = runtime.block_on(async { listener(0) }).expect("proxy listen");
        let port = first.local_addr().expect("proxy addr").port();
        let (control, rx) = watch::channel(Control { state: PathState::Open, cut_generation: 0, rate: 0 });
        let counters = Arc::new(ProxyCounters::default());
        let upstream = Arc::new(Mutex::new(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, upstream_port))));
        runtime.spawn(accept_loop(first, port, rx, counters.clone(), upstream.clone()));
        FaultProxy { port, control, counters, runtime: Some(runtime), upstream }
    }

    /// The port Tally should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/APP/STREAM` through the proxy.
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.port)
    }

    /// Counters.
    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    /// What the client sent on the `nth` connection (0-based) that reached
    /// the server, up to 2 MiB: the bytes as they left the client.
    pub fn sent_on(&self, nth: usize) -> Vec<u8> {
        let taps = self.counters.taps.lock().unwrap_or_else(|e| e.into_inner());
        taps.get(nth).map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).clone()).unwrap_or_default()
    }

    /// Connections that reached the server so far.
    pub fn carried(&self) -> usize {
        self.counters.taps.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sets the path's state.
    pub fn set_state(&self, state: PathState) {
        self.control.send_modify(|c| {
            if state == PathState::Refusing {
                c.cut_generation += 1;
            }
            c.state = state;
        });
    }

    /// Opens the path and returns once the port takes connections again
    /// (after [`PathState::Refusing`] the listener is bound anew).
    pub fn open_and_wait(&self) {
        self.set_state(PathState::Open);
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port()));
        let bound = super::wait_until(Duration::from_secs(10), || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
        assert!(bound, "the proxy's port did not open again");
    }

    /// Resets every open connection.
    pub fn cut(&self) {
        self.control.send_modify(|c| c.cut_generation += 1);
    }

    /// Paces client→server traffic to `bits_per_second` (0 lifts the limit).
    pub fn limit_rate(&self, bits_per_second: u64) {
        self.control.send_modify(|c| c.rate = bits_per_second / 8);
    }

    /// Points new connections at another upstream port.
    pub fn set_upstream(&self, port: u16) {
        if let Ok(mut u) = self.upstream.lock() {
            *u = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(
    mut listening: TcpListener,
    port: u16,
    mut control: watch::Receiver<Control>,
    counters: Arc<ProxyCounters>,
    upstream: Arc<Mutex<SocketAddr>>,
) {
    loop {
        if control.borrow().state == PathState::Refusing {
            // Close the port until the path opens again.
            drop(listening);
            while control.borrow_and_update().state == PathState::Refusing {
                if control.changed().await.is_err() {
                    return;
                }
            }
            listening = loop {
                match listener(port) {
                    Ok(l) => break l,
                    // The old socket may linger a moment; bind again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            };
        }
        tokio::select! {
            accepted = listening.accept() => {
                let Ok((client, _)) = accepted else { continue };
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                let target = upstream.lock().map(|u| *u).unwrap_or_else(|e| *e.into_inner());
                tokio::spawn(carry(client, target, control.clone(), counters.clone()));
            }
            changed = control.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Makes closing the socket send RST (SO_LINGER 0). tokio deprecates its
/// own setter because a non-zero linger blocks on drop; zero never does.
fn reset_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Waits while the path is stalled; `false` when this connection is cut.
async fn wait_open(control: &mut watch::Receiver<Control>, generation: u64) -> bool {
    loop {
        let c = *control.borrow_and_update();
        if c.cut_generation != generation {
            return false;
        }
        if c.state == PathState::Open {
            return true;
        }
        if control.changed().await.is_err() {
            return false;
        }
    }
}

async fn carry(client: TcpStream, target: SocketAddr, mut control: watch::Receiver<Control>, counters: Arc<ProxyCounters>) {
    let generation = control.borrow().cut_generation;
    // A stalled path carries nothing, not even the connection to the server.
    if !wait_open(&mut control, generation).await {
        reset_on_close(&client);
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        reset_on_close(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let tap = Arc::new(Mutex::new(Vec::new()));
    counters.taps.lock().unwrap_or_else(|e| e.into_inner()).push(tap.clone());
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, control.clone(), generation, Some((counters, tap)));
    let down = pump(sr, cw, control.clone(), generation, None);
    // When either direction ends (EOF, error, cut), both sockets close.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut control: watch::Receiver<Control>,
    generation: u64,
    counters: Option<(Arc<ProxyCounters>, Tap)>,
) {
    let mut buf = vec![0u8; CHUNK];
    let paced = counters.is_some();
    // Cut: reset, not FIN — a broken path looks like that to both ends.
    let reset = |from: &tokio::net::tcp::OwnedReadHalf, to: &tokio::net::tcp::OwnedWriteHalf| {
        reset_on_close(from.as_ref());
        reset_on_close(to.as_ref());
    };
    loop {
        if !wait_open(&mut control, generation).await {
            reset(&from, &to);
            return;
        }
        let read = tokio::select! {
            r = from.read(&mut buf) => r,
            // A state change (stall, cut) interrupts a pending read.
            _ = control.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes read while the path was stalled or cut wait for it, like
        // packets in flight.
        if !wait_open(&mut control, generation).await {
            reset(&from, &to);
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some((c, tap)) = &counters {
            c.upstream_bytes.fetch_add(n as u64, Ordering::Relaxed);
            let mut tap = tap.lock().unwrap_or_else(|e| e.into_inner());
            let room = TAP_LIMIT.saturating_sub(tap.len()).min(n);
            tap.extend_from_slice(&buf[..room]);
        }
        let rate = control.borrow().rate;
        if paced && rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
}
