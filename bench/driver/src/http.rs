//! Minimal HTTP/1.1 message reading for the loopback server and the Invoke client: a start
//! line, headers, and a body framed by Content-Length or chunked encoding (with trailers).
//! Enough for curl, bootstrap's client (its streamed posts too), awslambdaric's libcurl client
//! and our own client; nothing more.

use std::io::{self, BufRead, Read};
use std::time::Instant;

const MAX_LINE: u64 = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Lambda's payload limit is 6 MB; leave room above it so oversize bodies are still read.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A request or response head: the start line split on spaces, and the headers in order.
#[derive(Debug)]
pub struct Head {
    pub start: Vec<String>,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Whether the body comes in chunks.
    pub fn is_chunked(&self) -> bool {
        self.header_has_token("Transfer-Encoding", "chunked")
    }

    /// Whether the sender wants `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.header_has_token("Expect", "100-continue")
    }

    /// Whether the connection ends after this message (request side, HTTP/1.0 or `close`).
    pub fn wants_close(&self) -> bool {
        let http10 = self.start.get(2).is_some_and(|v| v == "HTTP/1.0");
        if http10 {
            !self.header_has_token("Connection", "keep-alive")
        } else {
            self.header_has_token("Connection", "close")
        }
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One line without its CRLF; `None` at a clean end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map(Some).map_err(|_| bad("non-UTF-8 header line"))
}

/// The head of the next message; `None` when the peer closed the connection between messages.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    // Tolerate empty lines before a request (RFC 9112, section 2.2).
    let start = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let start: Vec<String> = start.splitn(3, ' ').map(str::to_string).collect();
    if start.len() < 2 {
        return Err(bad(format!("malformed start line {start:?}")));
    }
    let headers = read_fields(r, "the headers")?;
    Ok(Some(Head { start, headers }))
}

/// Header (or trailer) fields up to the empty line that ends them.
fn read_fields(r: &mut impl BufRead, what: &str) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad(format!("end of stream inside {what}")))?;
        if line.is_empty() {
            return Ok(fields);
        }
        if fields.len() == MAX_HEADERS {
            return Err(bad(format!("too many fields in {what}")));
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| bad(format!("malformed field {line:?}")))?;
        fields.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// A message body as it was read.
#[derive(Debug, Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// Chunked only: when the first non-empty chunk had arrived (a sized body comes with its
    /// head, as far as the reader can tell).
    pub first_chunk: Option<Instant>,
    /// Chunked only: the trailer fields after the last chunk, in order.
    pub trailers: Vec<(String, String)>,
}

impl Body {
    /// The first trailer of that name (case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The body that follows `head`: chunked, by Content-Length, or none.
pub fn read_body(r: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    read_body_timed(r, head).map(|body| body.bytes)
}

/// `read_body`, noting when the first chunk arrived and keeping the trailers.
pub fn read_body_timed(r: &mut impl BufRead, head: &Head) -> io::Result<Body> {
    if head.is_chunked() {
        return read_chunked(r);
    }
    let Some(len) = head.header("Content-Length") else {
        return Ok(Body::default());
    };
    let len: usize = len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
    if len > MAX_BODY {
        return Err(bad(format!("body of {len} bytes is over the limit")));
    }
    let mut bytes = vec![0; len];
    r.read_exact(&mut bytes)?;
    Ok(Body { bytes, ..Body::default() })
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Body> {
    let mut body = Body::default();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("end of stream inside a chunked body"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            body.trailers = read_fields(r, "the trailers")?;
            return Ok(body);
        }
        let bytes = &mut body.bytes;
        if bytes.len() + size > MAX_BODY {
            return Err(bad("chunked body over the limit"));
        }
        let start = bytes.len();
        bytes.resize(start + size, 0);
        r.read_exact(&mut bytes[start..])?;
        body.first_chunk.get_or_insert_with(Instant::now);
        if !read_line(r)?.is_some_and(|l| l.is_empty()) {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

/// A complete response in one buffer, so that it leaves in a single write.
pub fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
                    POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n1;ext\r\nz\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(h.start[1], "/a");
        assert_eq!(read_body(&mut r, &h).unwrap(), b"abc");
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(read_body(&mut r, &h).unwrap(), b"xyz");
        assert!(read_head(&mut r).unwrap().is_none());
    }

    #[test]
    fn a_streamed_body_keeps_its_trailers_and_first_chunk_time() {
        let raw = b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.X\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let h = read_head(&mut r).unwrap().unwrap();
        assert!(h.is_chunked());
        let before = Instant::now();
        let body = read_body_timed(&mut r, &h).unwrap();
        assert_eq!(body.bytes, b"abc");
        assert!(body.first_chunk.is_some_and(|t| t >= before));
        assert_eq!(body.trailer("lambda-runtime-function-error-type"), Some("Runtime.X"));
        let empty = b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let mut r = BufReader::new(&empty[..]);
        let h = read_head(&mut r).unwrap().unwrap();
        let body = read_body_timed(&mut r, &h).unwrap();
        assert!(body.bytes.is_empty() && body.first_chunk.is_none() && body.trailers.is_empty());
    }

    #[test]
    fn connection_semantics() {
        let mut r = BufReader::new(&b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"[..]);
        let h = read_head(&mut r).unwrap().unwrap();
        assert!(h.wants_close());
        assert!(h.expects_continue());
    }
}
