//! HTTP/1.1 framing: request heads and bodies in, responses out.

use std::io::{self, BufRead, Read, Write};

use serde_json::Value;

/// Bodies larger than this are refused outright, so a bogus
/// `Content-Length` cannot make the server allocate without bound.
const MAX_WIRE_BODY: u64 = 1 << 30;

pub(crate) struct Request {
    pub method: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn gzip(&self) -> bool {
        self.header("content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
    }

    /// The body, inflated when gzip, but never more than `limit + 1` bytes:
    /// enough to tell it is over the limit without inflating a bomb.
    pub fn inflated_body(&self, limit: usize) -> Result<Vec<u8>, String> {
        if !self.gzip() {
            return Ok(self.body.clone());
        }
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&self.body[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("invalid gzip body: {e}"))?;
        Ok(out)
    }

    /// `(user, password)` of a Basic `Authorization` header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
        Some((user.to_owned(), password.to_owned()))
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads the request head; `None` on a clean EOF.
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > 64 * 1024 {
            return Err(invalid("head too large"));
        }
    }
}

/// Method, path, query and headers of a request head.
pub(crate) struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

pub(crate) fn parse_head(head: &[u8]) -> io::Result<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(invalid("bad request head")),
    }
    let method = req.method.unwrap_or("").to_owned();
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Head {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
    })
}

/// Appends exactly `len` bytes from `reader` to `body`, growing as they
/// arrive rather than trusting `len` up front.
fn read_exactly(reader: &mut impl Read, len: u64, body: &mut Vec<u8>) -> io::Result<()> {
    if body.len() as u64 + len > MAX_WIRE_BODY {
        return Err(invalid("body too large"));
    }
    let start = body.len();
    reader.take(len).read_to_end(body)?;
    if ((body.len() - start) as u64) < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

pub(crate) fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                return Ok(body);
            }
            read_exactly(reader, size, &mut body)?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    let len = header(headers, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    read_exactly(reader, len, &mut body)?;
    Ok(body)
}

/// A response about to be written.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            retry_after: None,
            body: body.to_string(),
        }
    }

    pub fn raw(status: u16, body: &str) -> Self {
        Response {
            status,
            retry_after: None,
            body: body.to_owned(),
        }
    }

    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes `response`; `close` adds `Connection: close`.
pub(crate) fn write_response(
    writer: &mut impl Write,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len(),
    );
    if let Some(seconds) = response.retry_after {
        out.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&response.body);
    writer.write_all(out.as_bytes())?;
    writer.flush()
}
