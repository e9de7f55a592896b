//! The byte stream under an RTMP session: DNS, TCP (`TCP_NODELAY`,
//! `TCP_NOTSENT_LOWAT`), and for `rtmps://` TLS with rustls (SNI,
//! certificates verified against the platform's roots, Mozilla's, and an
//! optional private CA). The publisher, the player and the pre-flight
//! check connect through here.

use crate::net::publisher::error::{DestinationConfigError, PublishError};
use crate::rtmp::RtmpUrl;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest wait for DNS.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the TCP connection (and the TLS handshake).
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most unsent bytes the kernel holds for us (`TCP_NOTSENT_LOWAT`). Beyond
/// it writes wait, so a backlog builds in our queue, where it is measured
/// and dropped at keyframes, not invisibly in a socket buffer of megabytes.
pub const SOCKET_UNSENT_MAX: u32 = 32 * 1024;

/// A connected byte stream: TCP or TLS over TCP.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// The addresses of the URL's host.
pub async fn resolve(url: &RtmpUrl) -> Result<Vec<SocketAddr>, PublishError> {
    let host = url.host.clone();
    match timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((url.host.as_str(), url.port))).await {
        Err(_) => Err(PublishError::Timeout("resolving the host")),
        Ok(Err(source)) => Err(PublishError::Dns { host, source }),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() { Err(PublishError::NoAddress { host }) } else { Ok(addrs) }
        }
    }
}

/// A TCP connection to the first address that answers, tuned for streaming.
pub async fn connect_tcp(addrs: &[SocketAddr]) -> Result<TcpStream, PublishError> {
    let mut last = PublishError::NoAddress { host: "-".into() };
    for addr in addrs {
        match timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if let Err(e) = socket2::SockRef::from(&s).set_tcp_notsent_lowat(SOCKET_UNSENT_MAX) {
                    tracing::debug!("TCP_NOTSENT_LOWAT not available: {e}");
                }
                return Ok(s);
            }
            Ok(Err(source)) => last = PublishError::Connect { addr: addr.to_string(), source },
            Err(_) => {
                last = PublishError::Connect { addr: addr.to_string(), source: std::io::Error::from(std::io::ErrorKind::TimedOut) }
            }
        }
    }
    Err(last)
}

/// The TLS client configuration for a destination: platform roots, Mozilla's
/// roots, and the private CA file if one is given.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PublishError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|source| DestinationConfigError::CaFile { path: path.to_path_buf(), source })?
            .collect::<Result<_, _>>()
            .map_err(|source| DestinationConfigError::CaFile { path: path.to_path_buf(), source })?;
        if certs.is_empty() {
            return Err(DestinationConfigError::NoCertificate { path: path.to_path_buf() }.into());
        }
        for cert in certs {
            roots.add(cert).map_err(|source| DestinationConfigError::BadCertificate { path: path.to_path_buf(), source })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(DestinationConfigError::TlsSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What TLS said, if it said anything: a reset during the handshake is
/// the network (the error comes back as it was); anything rustls said is final.
fn tls_error(host: &str, e: std::io::Error) -> Result<PublishError, std::io::Error> {
    if !e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        return Err(e);
    }
    match e.into_inner().map(|inner| inner.downcast::<rustls::Error>()) {
        Some(Ok(source)) => {
            let untrusted = matches!(*source, rustls::Error::InvalidCertificate(_));
            Ok(PublishError::Tls { host: host.to_string(), untrusted, source: *source })
        }
        Some(Err(other)) => Err(std::io::Error::other(other)),
        None => Err(std::io::Error::other("TLS handshake failed")),
    }
}

/// A connection, and a second handle on its socket to reset it with.
pub struct Connection {
    /// The stream.
    pub transport: Box<dyn Transport>,
    /// See [`Connection::reset`].
    pub abort: Option<socket2::Socket>,
}

impl Connection {
    /// Closes a connection given up on with a reset rather than a FIN: the
    /// server learns at once (as soon as the path carries anything) that the
    /// session is dead, instead of after the stale bytes queued for it, so
    /// it frees the stream name for our next session.
    pub fn reset(abort: Option<socket2::Socket>) {
        if let Some(s) = abort {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

/// Resolves, connects and (with `tls`) secures a connection to `url`'s server.
pub async fn connect(url: &RtmpUrl, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Connection, PublishError> {
    let addrs = resolve(url).await?;
    let tcp = connect_tcp(&addrs).await?;
    let abort = socket2::SockRef::from(&tcp).try_clone().ok();
    let transport = connect_transport(url, tcp, tls).await?;
    Ok(Connection { transport, abort })
}

/// TLS over `tcp` when `tls` is given (SNI: the URL's host), else `tcp` itself.
pub async fn connect_transport(url: &RtmpUrl, tcp: TcpStream, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Box<dyn Transport>, PublishError> {
    let Some(tls) = tls else { return Ok(Box::new(tcp)) };
    let host = url.host.clone();
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|_| DestinationConfigError::ServerName { host: host.clone() })?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    match timeout(TCP_CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err(PublishError::Timeout("the TLS handshake")),
        Ok(Err(e)) => {
            // A reset during the handshake is the network; anything TLS said is final.
            match tls_error(&host, e) {
                Ok(tls) => Err(tls),
                Err(io) => Err(PublishError::Io(io)),
            }
        }
        Ok(Ok(stream)) => Ok(Box::new(stream)),
    }
}
