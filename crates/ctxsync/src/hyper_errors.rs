//! hyper answers a request it cannot parse (a malformed request line or header, a URI over
//! 64 KiB, headers too large) itself, with an empty body, before the router sees anything. This
//! wrapper around the connection's socket gives those answers the API's `{"errors": [...]}` JSON
//! body, so every error from any layer has the one shape.
//!
//! It recognises them by what only they are: a whole 4xx or 5xx response head without a
//! `Content-Type`, declaring an empty body (the router's error responses are all JSON).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ctxsync_api::ErrorBody;
use hyper::rt::{Read, ReadBufCursor, Write};

pub struct JsonParseErrors<T> {
    inner: T,
    /// The rewritten response being written, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> JsonParseErrors<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, replacement: None }
    }
}

impl<T: Read + Unpin> Read for JsonParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Not vectored, so hyper writes a response head as one buffer that can be recognised.
impl<T: Write + Unpin> Write for JsonParseErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            match with_json_body(buf) {
                Some(replacement) => this.replacement = Some((replacement, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper offers the same bytes again after Pending, so they stand for the replacement
        // until it is all written.
        let (bytes, written) = this.replacement.as_mut().expect("set above");
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        this.replacement = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `buf` with a JSON error body, when it is exactly one of hyper's own bodiless error heads.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    // Those heads are short; anything longer (every response with a body) is passed untouched.
    if buf.len() > 512 || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?.strip_suffix("\r\n\r\n")?;
    let (status_line, headers) = head.split_once("\r\n")?;
    let mut words = status_line.splitn(3, ' ');
    let (_, code, reason) = (words.next()?, words.next()?, words.next().unwrap_or_default());
    if !matches!(code.as_bytes().first(), Some(b'4' | b'5')) || code.len() != 3 {
        return None;
    }
    let header =
        |line: &str, name: &str| line.get(..name.len()).is_some_and(|n| n.eq_ignore_ascii_case(name));
    let lines: Vec<&str> = headers.split("\r\n").collect();
    if lines.iter().any(|l| header(l, "content-type:"))
        || !lines.iter().any(|l| header(l, "content-length:") && l[15..].trim() == "0")
    {
        return None;
    }
    let message = match code {
        "400" => "the request is not valid HTTP/1.1".to_string(),
        "414" => "the request URI is longer than 64 KiB".to_string(),
        "431" => "the request headers are too large".to_string(),
        _ => reason.to_string(),
    };
    let body = serde_json::to_string(&ErrorBody { errors: vec![message] }).ok()?;
    let mut out = format!("{status_line}\r\n");
    for line in lines.iter().filter(|l| !header(l, "content-length:")) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::with_json_body;

    #[test]
    fn hyper_error_heads_get_a_json_body() {
        let head =
            b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: now\r\n\r\n";
        let rewritten = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let body = r#"{"errors":["the request URI is longer than 64 KiB"]}"#;
        assert_eq!(
            rewritten,
            format!(
                "HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ndate: now\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn other_writes_pass_unchanged() {
        for buf in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"errors\": []}",
            b"",
        ] {
            assert_eq!(with_json_body(buf), None, "{}", String::from_utf8_lossy(buf));
        }
    }
}
