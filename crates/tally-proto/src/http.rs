//! The request head of an HTTP/1.1 request to the built-in server
//! (RFC 9112 section 2–3): found in received bytes, bounded, and routed to
//! what the server offers (HTTP-FLV at `/APP/STREAM.flv`, the status at
//! `/api/streams`). Sans-IO: the driver (`tally::net::server::http_conn`) reads
//! the socket and answers.
//!
//! Only the request line matters to the server; header fields are read past,
//! not interpreted. Bytes that are not UTF-8 are replaced, so a hostile
//! head becomes a path that matches nothing rather than an error.

/// Longest request head read (request line and header fields), bytes;
/// longer gets `431 Request Header Fields Too Large`. nginx's default
/// `large_client_header_buffers` is 8 KiB as well.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// What the bytes received so far hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadStatus {
    /// A complete head (up to the blank line), and how many bytes it used.
    Complete(RequestHead, usize),
    /// No blank line yet, and fewer than [`MAX_REQUEST_HEAD`] bytes.
    Partial,
    /// [`MAX_REQUEST_HEAD`] bytes without a blank line.
    TooLarge,
}

/// A request line (RFC 9112 section 3): method and target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, ... ("" when the line is empty).
    pub method: String,
    /// The request target as sent, query included ("" when missing).
    pub target: String,
}

impl RequestHead {
    /// The target's path: without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Looks for the end of the head (`CRLF CRLF`) in `received`. The head,
/// its blank line included, must fit in [`MAX_REQUEST_HEAD`] bytes: the
/// answer is then the same however the bytes were split into reads.
pub fn parse_head(received: &[u8]) -> HeadStatus {
    let window = &received[..received.len().min(MAX_REQUEST_HEAD)];
    match window.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => {
            let text = String::from_utf8_lossy(&window[..end]);
            let mut parts = text.lines().next().unwrap_or("").split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            HeadStatus::Complete(RequestHead { method, target }, end + 4)
        }
        None if received.len() >= MAX_REQUEST_HEAD => HeadStatus::TooLarge,
        None => HeadStatus::Partial,
    }
}

/// What the server does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `OPTIONS`: a CORS preflight, answered `204`.
    Preflight,
    /// `GET`/`HEAD /api/streams`; `head_only` for `HEAD`.
    Streams {
        /// Answer with headers only.
        head_only: bool,
    },
    /// `GET /APP/STREAM.flv`.
    Flv {
        /// The application (`live`).
        app: String,
        /// The stream name.
        name: String,
    },
    /// A `GET` of anything else: `404`.
    NotFound,
    /// Any other method: `405`.
    MethodNotAllowed,
}

/// Routes a request head.
pub fn route(head: &RequestHead) -> Route {
    match (head.method.as_str(), head.path()) {
        ("OPTIONS", _) => Route::Preflight,
        ("GET", "/api/streams") => Route::Streams { head_only: false },
        ("HEAD", "/api/streams") => Route::Streams { head_only: true },
        ("GET", p) => match flv_path(p) {
            Some((app, name)) => Route::Flv { app, name },
            None => Route::NotFound,
        },
        _ => Route::MethodNotAllowed,
    }
}

/// `/APP/STREAM.flv` -> (APP, STREAM), percent-decoding neither (stream
/// names are plain in practice; anything else simply matches no stream).
fn flv_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix('/')?;
    let (app, file) = rest.split_once('/')?;
    let name = file.strip_suffix(".flv")?;
    (!app.is_empty() && !name.is_empty() && !name.contains('/')).then(|| (app.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (RequestHead, usize) {
        match parse_head(bytes) {
            HeadStatus::Complete(h, n) => (h, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heads_are_found_bounded_and_routed() {
        let req = b"GET /live/cam.flv?x=1 HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        let (head, used) = complete(req);
        assert_eq!(used, req.len() - 4);
        assert_eq!((head.method.as_str(), head.path()), ("GET", "/live/cam.flv"));
        assert_eq!(route(&head), Route::Flv { app: "live".into(), name: "cam".into() });
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n"), HeadStatus::Partial);
        assert_eq!(parse_head(&vec![b'a'; MAX_REQUEST_HEAD]), HeadStatus::TooLarge);
        assert_eq!(parse_head(&vec![b'a'; MAX_REQUEST_HEAD - 1]), HeadStatus::Partial);
        // A blank line just past the bound does not count.
        let mut late = vec![b'a'; MAX_REQUEST_HEAD - 3];
        late.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&late), HeadStatus::TooLarge);
        let routes = [
            ("HEAD /api/streams HTTP/1.1", Route::Streams { head_only: true }),
            ("GET /api/streams?pretty HTTP/1.1", Route::Streams { head_only: false }),
            ("OPTIONS * HTTP/1.1", Route::Preflight),
            ("GET /live/a/b.flv HTTP/1.1", Route::NotFound),
            ("GET /live/.flv HTTP/1.1", Route::NotFound),
            ("POST /live/a.flv HTTP/1.1", Route::MethodNotAllowed),
            ("", Route::MethodNotAllowed),
        ];
        for (line, want) in routes {
            let (head, _) = complete(format!("{line}\r\n\r\n").as_bytes());
            assert_eq!(route(&head), want, "{line}");
        }
        assert_eq!(flv_path("/live/cam.flv"), Some(("live".into(), "cam".into())));
        for nothing in ["/live/cam", "/cam.flv", "/live/a/b.flv", "/live/.flv", "//x.flv"] {
            assert_eq!(flv_path(nothing), None, "{nothing}");
        }
        // Not UTF-8: replaced, and matches nothing.
        let (head, _) = complete(b"GET /\xff\xfe.flv HTTP/1.1\r\n\r\n");
        assert_eq!(route(&head), Route::NotFound);
    }
}
