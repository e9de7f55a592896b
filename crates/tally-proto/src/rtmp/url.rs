//! RTMP URLs and stream keys.
//!
//! `rtmp[s]://host[:port]/app[/inst]/key`: the last path segment is the
//! stream key, everything between host and key is the app (so an app with an
//! instance, `live/inst`, stays whole), and a query string belongs to the key
//! (`key?pwd=1`, as Twitch and YouTube issue them). The key is a secret:
//! nothing here prints it, including errors.

use std::fmt;
use std::str::FromStr;

/// What every redacted key prints as.
pub const REDACTED: &str = "<redacted>";

/// Default port of `rtmp://` (IANA-registered for RTMP; ffmpeg's and librtmp's default).
pub const DEFAULT_RTMP_PORT: u16 = 1935;

/// Default port of `rtmps://` (RTMP over TLS; the ingests listen on 443).
pub const DEFAULT_RTMPS_PORT: u16 = 443;

/// A stream key: Debug and Display print [`REDACTED`]; [`StreamKey::expose`]
/// is the only way to the text, so every use of the secret is greppable.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct StreamKey(String);

impl StreamKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        StreamKey(key.into())
    }

    /// The secret itself: for the wire, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for an empty key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serialized as the plain key: only profile exports made with
/// `--include-keys` and the 0600 key file ever serialize one.
impl serde::Serialize for StreamKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StreamKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(StreamKey)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Keys shorter than this are only redacted as whole tokens: a key like
/// "t" or "live" occurs inside ordinary words ("NetStream.Publish.Start"),
/// and mangling those hides the message without hiding anything secret.
pub const SUBSTRING_REDACTION_MIN_LEN: usize = 8;

/// Replaces every occurrence of `key` in `text` with [`REDACTED`] — for
/// server messages and OS errors that may echo it. The name part before a
/// `?` is redacted as well, since servers often echo only that. Short keys
/// (under [`SUBSTRING_REDACTION_MIN_LEN`]) are replaced where they stand as
/// a token of their own (delimited by anything but letters and digits).
pub fn redact_key_in(text: &str, key: &StreamKey) -> String {
    let mut out = text.to_owned();
    let k = key.expose();
    if k.is_empty() {
        return out;
    }
    out = redact_one(&out, k);
    // As Debug output escapes it (a key with a quote or a backslash).
    let escaped = format!("{k:?}");
    let escaped = &escaped[1..escaped.len() - 1];
    if escaped != k {
        out = redact_one(&out, escaped);
    }
    if let Some((name, _query)) = k.split_once('?')
        && !name.is_empty()
    {
        out = redact_one(&out, name);
    }
    out
}

fn redact_one(text: &str, secret: &str) -> String {
    if secret.len() >= SUBSTRING_REDACTION_MIN_LEN {
        return text.replace(secret, REDACTED);
    }
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at].chars().next_back().or(if at == 0 { prev } else { None });
        let after = rest[at + secret.len()..].chars().next();
        out.push_str(&rest[..at]);
        if is_word(before) || is_word(after) {
            out.push_str(secret);
        } else {
            out.push_str(REDACTED);
        }
        prev = secret.chars().next_back();
        rest = &rest[at + secret.len()..];
    }
    out.push_str(rest);
    out
}

/// `rtmp` or `rtmps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP.
    Rtmp,
    /// RTMP over TLS.
    Rtmps,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Rtmp => DEFAULT_RTMP_PORT,
            Scheme::Rtmps => DEFAULT_RTMPS_PORT,
        }
    }
}

/// Why a URL was refused. No variant carries the key or the whole URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `rtmp://` or `rtmps://`.
    #[error("URL must start with rtmp:// or rtmps://")]
    UnsupportedScheme,
    /// No host after the scheme.
    #[error("URL has no host")]
    MissingHost,
    /// Credentials in the URL (`user:pass@host`) are not supported.
    #[error("URL must not contain user:password@")]
    UserInfo,
    /// A port that is not 1..=65535 (not echoed: a mistyped URL may have the key there).
    #[error("invalid port (expected 1-65535)")]
    InvalidPort,
    /// A `[` without `]`, or junk after it.
    #[error("invalid IPv6 host")]
    InvalidIpv6,
    /// No application name (`rtmp://host/app/key`).
    #[error("URL has no application name (expected rtmp://host/app/key)")]
    MissingApp,
    /// No stream key after the app.
    #[error("URL has no stream key (expected rtmp://host/app/key)")]
    MissingKey,
    /// Whitespace or control characters.
    #[error("URL contains whitespace or control characters")]
    InvalidCharacter,
}

/// A parsed publish URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// rtmp or rtmps.
    pub scheme: Scheme,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    /// Port (explicit, or the scheme's default).
    pub port: u16,
    /// Application, e.g. `live` or `live/inst`.
    pub app: String,
    /// `scheme://host[:port]/app`, sent as `tcUrl` in `connect`; the port
    /// appears only if the URL had one.
    pub tc_url: String,
    /// The stream key.
    pub stream_key: StreamKey,
}

/// Scheme, host, port, tcUrl prefix, and the path after the authority.
struct ServerPart<'a> {
    scheme: Scheme,
    host: String,
    port: u16,
    authority: &'a str,
    path: &'a str,
}

fn split_server(url: &str) -> Result<ServerPart<'_>, UrlError> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::InvalidCharacter);
    }
    let (scheme_str, rest) = url.split_once("://").ok_or(UrlError::UnsupportedScheme)?;
    let scheme = match scheme_str.to_ascii_lowercase().as_str() {
        "rtmp" => Scheme::Rtmp,
        "rtmps" => Scheme::Rtmps,
        _ => return Err(UrlError::UnsupportedScheme),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::InvalidIpv6)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::InvalidIpv6)?),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => scheme.default_port(),
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UrlError::InvalidPort)?,
    };
    Ok(ServerPart { scheme, host: host.to_owned(), port, authority, path })
}

impl RtmpUrl {
    /// Parses `rtmp[s]://host[:port]/app[/inst]/key[?query]`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let s = split_server(url)?;
        // The key is the last segment of the path before any '?', plus the query.
        let slash_limit = s.path.find('?').unwrap_or(s.path.len());
        let (app, key) = match s.path[..slash_limit].rfind('/') {
            Some(i) => (&s.path[..i], &s.path[i + 1..]),
            None => ("", s.path),
        };
        Self::build(s, app, key)
    }

    /// Combines a server URL (`rtmp[s]://host[:port]/app[/inst]`, as services
    /// list it) with a separately entered key.
    pub fn with_key(server_url: &str, key: &str) -> Result<Self, UrlError> {
        let s = split_server(server_url)?;
        let app = s.path.trim_end_matches('/');
        Self::build(s, app, key.trim())
    }

    fn build(s: ServerPart<'_>, app: &str, key: &str) -> Result<Self, UrlError> {
        if app.is_empty() || app.split('/').any(str::is_empty) {
            return Err(UrlError::MissingApp);
        }
        if key.is_empty() {
            return Err(UrlError::MissingKey);
        }
        let tc_url = format!("{}://{}/{}", s.scheme.as_str(), s.authority, app);
        Ok(RtmpUrl {
            scheme: s.scheme,
            host: s.host,
            port: s.port,
            app: app.to_owned(),
            tc_url,
            stream_key: StreamKey::new(key),
        })
    }
}

impl FromStr for RtmpUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RtmpUrl::parse(s)
    }
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tc_url, REDACTED)
    }
}

impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtmpUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("app", &self.app)
            .field("tc_url", &self.tc_url)
            .field("stream_key", &self.stream_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let u = RtmpUrl::parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh").unwrap();
        assert_eq!((u.scheme, u.host.as_str(), u.port), (Scheme::Rtmp, "a.rtmp.youtube.com", 1935));
        assert_eq!(u.app, "live2");
        assert_eq!(u.tc_url, "rtmp://a.rtmp.youtube.com/live2");
        assert_eq!(u.stream_key.expose(), "abcd-efgh");

        let u = RtmpUrl::parse("RTMPS://live-api-s.facebook.com:443/rtmp/FB-123?s_bl=1&a=b").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Rtmps, 443));
        assert_eq!(u.tc_url, "rtmps://live-api-s.facebook.com:443/rtmp");
        assert_eq!(u.stream_key.expose(), "FB-123?s_bl=1&a=b");

        let u = RtmpUrl::parse("rtmps://host/app").unwrap_err();
        assert_eq!(u, UrlError::MissingApp);

        let u = RtmpUrl::parse("rtmp://host:1936/live/inst/key?pwd=a/b").unwrap();
        assert_eq!(u.app, "live/inst");
        assert_eq!(u.stream_key.expose(), "key?pwd=a/b");
        assert_eq!(u.port, 1936);

        let u = RtmpUrl::parse("rtmp://[::1]:1935/live/k").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.tc_url, "rtmp://[::1]:1935/live");
        let u = RtmpUrl::parse("rtmps://[2001:db8::2]/live/k").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::2", 443));
    }

    #[test]
    fn with_key() {
        let u = RtmpUrl::with_key("rtmp://live.twitch.tv/app/", "live_123_abc?bandwidthtest=true").unwrap();
        assert_eq!(u.app, "app");
        assert_eq!(u.stream_key.expose(), "live_123_abc?bandwidthtest=true");
        assert_eq!(u, RtmpUrl::parse("rtmp://live.twitch.tv/app/live_123_abc?bandwidthtest=true").unwrap());
        assert_eq!(RtmpUrl::with_key("rtmp://h/app", " ").unwrap_err(), UrlError::MissingKey);
        assert_eq!(RtmpUrl::with_key("rtmp://h/", "k").unwrap_err(), UrlError::MissingApp);
    }

    #[test]
    fn errors() {
        for (url, err) in [
            ("http://h/app/k", UrlError::UnsupportedScheme),
            ("h/app/k", UrlError::UnsupportedScheme),
            ("rtmp:///app/k", UrlError::MissingHost),
            ("rtmp://u:secret@h/app/k", UrlError::UserInfo),
            ("rtmp://h:0/app/k", UrlError::InvalidPort),
            ("rtmp://h:99999/app/k", UrlError::InvalidPort),
            ("rtmp://[::1/app/k", UrlError::InvalidIpv6),
            ("rtmp://h", UrlError::MissingApp),
            ("rtmp://h//k", UrlError::MissingApp),
            ("rtmp://h/app/", UrlError::MissingKey),
            ("rtmp://h/app/k ey", UrlError::InvalidCharacter),
        ] {
            assert_eq!(RtmpUrl::parse(url).unwrap_err(), err, "{url}");
        }
    }

    #[test]
    fn the_key_never_prints() {
        let u = RtmpUrl::parse("rtmp://h/live/sekrit?pwd=hunter2").unwrap();
        assert_eq!(u.to_string(), "rtmp://h/live/<redacted>");
        let dbg = format!("{u:?} {:?} {}", u.stream_key, u.stream_key);
        assert!(!dbg.contains("sekrit") && !dbg.contains("hunter2"), "{dbg}");
        for bad in ["rtmp://h/live/sekrit withspace", "rtmp://h:sekrit/live/sekrit"] {
            let e = RtmpUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("sekrit"), "{e}");
        }
    }

    #[test]
    fn redaction_in_text() {
        let k = StreamKey::new("abc?pwd=1");
        assert_eq!(redact_key_in("publishing abc?pwd=1 / abc", &k), "publishing <redacted> / <redacted>");
        assert_eq!(redact_key_in("nothing here", &StreamKey::new("")), "nothing here");
        // A short key is redacted as a token, not inside words.
        let t = StreamKey::new("t");
        assert_eq!(redact_key_in("NetStream.Publish.Start", &t), "NetStream.Publish.Start");
        assert_eq!(redact_key_in("rtmp://h/live/t: no stream t", &t), "rtmp://h/live/<redacted>: no stream <redacted>");
        assert_eq!(redact_key_in("t", &t), "<redacted>");
        let live = StreamKey::new("live");
        assert_eq!(redact_key_in("live/live?x deliver", &live), "<redacted>/<redacted>?x deliver");
        // Long keys are redacted wherever they occur.
        let long = StreamKey::new("live_12345678");
        assert_eq!(redact_key_in("xlive_12345678y", &long), "x<redacted>y");
        // Also as Debug output escapes it.
        let quoted = StreamKey::new("live_\"1234\\5678");
        let debug = format!("{:?}", ["x", quoted.expose()]);
        assert_eq!(redact_key_in(&debug, &quoted), "[\"x\", \"<redacted>\"]");
    }
}
