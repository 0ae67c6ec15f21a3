//! A minimal HTTP/1.1 request parser and response writer: just enough for the collector's
//! loopback clients (ureq, curl, a browser), with hard caps so a hostile client cannot make it
//! buffer without bound.

use std::io::{self, BufRead, Read, Write};

/// Request line plus headers; far above anything a real client sends.
pub const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_CHUNK_LINE_BYTES: u64 = 1024;
/// Compressed or not, a request body above this is refused with 413 (the SDK's own cap is 512 KB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub version: Version,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the connection must close after this exchange (HTTP/1.0 defaults to close).
    pub fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        match self.version {
            Version::Http11 => has("close"),
            Version::Http10 => !has("keep-alive"),
        }
    }
}

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went idle past the read timeout) between requests: not an error.
    Closed,
    Io(io::Error),
    /// Answer 400 and close: the stream position is unknown after a framing error.
    Malformed(String),
    /// Answer 413 and close.
    TooLarge(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// Reads one request. `send_continue` is called when the client waits for `100 Continue`
/// before sending its body.
pub fn read_request<R: BufRead>(
    reader: &mut R,
    mut send_continue: impl FnMut() -> io::Result<()>,
) -> Result<Request, ReadError> {
    let mut head_budget = MAX_HEAD_BYTES;

    // RFC 9112 §2.2: ignore empty lines before the request line.
    let request_line = loop {
        match read_line(reader, &mut head_budget) {
            Ok(Some(line)) if line.is_empty() => continue,
            Ok(Some(line)) => break line,
            Ok(None) => return Err(ReadError::Closed),
            Err(ReadError::Io(e)) if is_idle_end(&e) => return Err(ReadError::Closed),
            Err(e) => return Err(e),
        }
    };
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(malformed(format!("bad request line: {request_line:?}"))),
    };
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        other => return Err(malformed(format!("unsupported HTTP version {other:?}"))),
    };
    let path = target.split('?').next().unwrap_or(target).to_string();

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut head_budget)?
            .ok_or_else(|| malformed("connection closed inside the headers".into()))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::TooLarge("too many headers".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("bad header line: {line:?}")))?;
        if name.is_empty() || name.ends_with([' ', '\t']) {
            return Err(malformed(format!("bad header name: {name:?}")));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }

    let mut request = Request {
        method: method.to_string(),
        path,
        version,
        headers,
        body: Vec::new(),
    };

    let framing = body_framing(&request)?;
    if !matches!(framing, Framing::Length(0))
        && request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        send_continue()?;
    }
    request.body = match framing {
        Framing::Length(length) => read_exact_body(reader, length)?,
        Framing::Chunked => read_chunked_body(reader)?,
    };
    Ok(request)
}

enum Framing {
    Length(usize),
    Chunked,
}

fn body_framing(request: &Request) -> Result<Framing, ReadError> {
    if let Some(encoding) = request.header("transfer-encoding") {
        // Chunked must be the final coding (RFC 9112 §6.3); nothing else is supported.
        return if encoding.trim().eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(malformed(format!(
                "unsupported Transfer-Encoding {encoding:?}"
            )))
        };
    }
    let mut length: Option<usize> = None;
    for (name, value) in &request.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(format!("bad Content-Length {value:?}")));
        }
        let parsed: usize = value
            .parse()
            .map_err(|_| ReadError::TooLarge("Content-Length too large".into()))?;
        if length.is_some_and(|previous| previous != parsed) {
            return Err(malformed("conflicting Content-Length headers".into()));
        }
        length = Some(parsed);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(ReadError::TooLarge(format!(
            "body of {length} bytes exceeds {MAX_BODY_BYTES}"
        )));
    }
    Ok(Framing::Length(length))
}

fn read_exact_body<R: Read>(reader: &mut R, length: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::with_capacity(length.min(1 << 20));
    reader.take(length as u64).read_to_end(&mut body)?;
    if body.len() != length {
        return Err(malformed(format!(
            "body ended after {} of {length} bytes",
            body.len()
        )));
    }
    Ok(body)
}

fn read_chunked_body<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        // Each framing line gets its own budget; the body cap bounds how many there can be.
        let mut line_budget = MAX_CHUNK_LINE_BYTES;
        let line = read_line(reader, &mut line_budget)?
            .ok_or_else(|| malformed("connection closed inside a chunked body".into()))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| malformed(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge(format!(
                "chunked body exceeds {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend(read_exact_body(reader, size)?);
        let mut line_budget = MAX_CHUNK_LINE_BYTES;
        match read_line(reader, &mut line_budget)? {
            Some(empty) if empty.is_empty() => {}
            _ => return Err(malformed("chunk not followed by CRLF".into())),
        }
    }
    // Trailers are read and ignored, within the same budget as a request head.
    let mut line_budget = MAX_HEAD_BYTES;
    loop {
        match read_line(reader, &mut line_budget)? {
            Some(line) if line.is_empty() => return Ok(body),
            Some(_) => continue,
            None => return Err(malformed("connection closed inside chunk trailers".into())),
        }
    }
}

/// One CRLF- (or LF-) terminated line without its terminator; `None` at a clean EOF.
fn read_line<R: BufRead>(reader: &mut R, budget: &mut u64) -> Result<Option<String>, ReadError> {
    let mut buffer = Vec::new();
    let read = reader.take(*budget).read_until(b'\n', &mut buffer)?;
    *budget -= read as u64;
    if read == 0 {
        return if *budget == 0 {
            Err(ReadError::TooLarge("request head too large".into()))
        } else {
            Ok(None)
        };
    }
    if buffer.last() != Some(&b'\n') {
        return if *budget == 0 {
            Err(ReadError::TooLarge("request head too large".into()))
        } else {
            Err(malformed("connection closed mid-line".into()))
        };
    }
    buffer.pop();
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    String::from_utf8(buffer)
        .map(Some)
        .map_err(|_| malformed("request head is not UTF-8".into()))
}

fn is_idle_end(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn malformed(message: String) -> ReadError {
    ReadError::Malformed(message)
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn html(body: String) -> Response {
        Response::new(200, "text/html; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Writes a complete response with `Content-Length`; `head_only` omits the body (HEAD).
pub fn write_response<W: Write>(
    writer: &mut W,
    response: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    head.push_str("Cache-Control: no-store\r\n");
    head.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    // One buffer, one write: avoids a Nagle/delayed-ACK stall between head and body.
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut Cursor::new(raw.to_vec()), || Ok(()))
    }

    #[test]
    fn parses_a_post_with_content_length() {
        let request =
            parse(b"POST /api/v3/data?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v3/data");
        assert_eq!(request.header("content-length"), Some("5"));
        assert_eq!(request.body, b"hello");
        assert!(!request.wants_close());
    }

    #[test]
    fn decodes_a_chunked_body_and_ignores_trailers() {
        let request = parse(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(request.body, b"abcde");
    }

    #[test]
    fn reads_pipelined_requests_one_at_a_time() {
        let mut cursor = Cursor::new(
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        );
        let first = read_request(&mut cursor, || Ok(())).unwrap();
        let second = read_request(&mut cursor, || Ok(())).unwrap();
        assert_eq!((first.path.as_str(), second.path.as_str()), ("/a", "/b"));
        assert!(second.wants_close());
        assert!(matches!(
            read_request(&mut cursor, || Ok(())),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn http10_closes_unless_keep_alive_is_asked_for() {
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().wants_close());
        assert!(!parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .wants_close());
    }

    #[test]
    fn rejects_broken_framing() {
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nno-colon\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn refuses_oversized_heads_and_bodies() {
        let mut huge_head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge_head.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES as usize));
        huge_head.extend(b"\r\n\r\n");
        assert!(matches!(parse(&huge_head), Err(ReadError::TooLarge(_))));
        let big_length = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert!(matches!(
            parse(big_length.as_bytes()),
            Err(ReadError::TooLarge(_))
        ));
    }

    #[test]
    fn asks_for_the_body_only_when_one_is_announced() {
        let mut continued = 0;
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        let request = read_request(&mut Cursor::new(raw.to_vec()), || {
            continued += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((request.body.as_slice(), continued), (&b"ok"[..], 1));
    }

    #[test]
    fn writes_a_framed_response() {
        let mut out = Vec::new();
        let response = Response::text(429, "slow down").with_header("Retry-After", "2");
        write_response(&mut out, &response, true, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("Retry-After: 2\r\n"));
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.contains("Connection: close\r\n\r\nslow down\n"));
    }
}
