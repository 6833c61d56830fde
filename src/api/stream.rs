//! A streamed `/response` post: the request head at once, each chunk as it is written, and at
//! the end either the last chunk alone or the last chunk with the two error trailers.
//!
//! This is a small HTTP/1.1 client written by hand over its own `TcpStream`, apart from
//! `runtime_api`'s ureq agent: ureq cannot send trailers, and a failure after the first byte
//! can only be reported in trailers. It knows nothing about processes; the caller feeds it
//! bytes and judges the status it returns.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming

use std::fmt;
use std::io::{self, IoSlice, Write};
use std::net::{TcpStream, ToSocketAddrs};

use super::address::ApiAddress;
use super::answer;
use super::{HEADER_ERROR_TYPE, POST_TIMEOUT, USER_AGENT};
use crate::invocation::{Diagnostic, RequestId, ResponseStream, StreamFailure, StreamWriteError};

pub use crate::init::config::{DEFAULT_CONTENT_TYPE, HTTP_INTEGRATION_CONTENT_TYPE};
pub use crate::invocation::MAX_STREAMED_BYTES;
/// `Lambda-Runtime-Function-Response-Mode`: `streaming` is its only valid value.
const HEADER_RESPONSE_MODE: &str = "Lambda-Runtime-Function-Response-Mode";
/// The trailer that carries the error document, in standard padded base64.
const HEADER_ERROR_BODY: &str = "Lambda-Runtime-Function-Error-Body";
/// One `/response` post in streaming mode, open from `start` until `finish` or `fail`.
///
/// Dropping it before either closes the connection mid-stream, which Lambda reports to the
/// caller as `Runtime.TruncatedResponse`.
#[derive(Debug)]
pub struct StreamingResponse {
    stream: TcpStream,
    url: String,
    limit: u64,
    sent: u64,
    /// A write failed part-way through a chunk; nothing more may follow it on the wire.
    is_broken: bool,
}

impl StreamingResponse {
    /// Connects to `address` and sends the request head of
    /// `POST {base}/runtime/invocation/{id}/response` in streaming mode. `content_type` is
    /// `DEFAULT_CONTENT_TYPE` for plain bytes; one that is no valid header value is refused.
    pub fn start(
        address: &ApiAddress,
        id: &RequestId,
        content_type: &str,
    ) -> Result<StreamingResponse, StreamError> {
        StreamingResponse::start_with_limit(address, id, content_type, MAX_STREAMED_BYTES)
    }

    /// `start`, with a byte limit other than Lambda's `MAX_STREAMED_BYTES`.
    pub fn start_with_limit(
        address: &ApiAddress,
        id: &RequestId,
        content_type: &str,
        limit: u64,
    ) -> Result<StreamingResponse, StreamError> {
        let path =
            format!("{}/runtime/invocation/{}/response", address.base_path(), id.path_segment());
        let url = format!("http://{}{path}", address.authority());
        let head = request_head(address.authority(), &path, content_type)
            .map_err(|error| StreamError::Io { url: url.clone(), error })?;
        let open = || -> io::Result<TcpStream> {
            let mut stream = connect(address.authority())?;
            // Every chunk leaves in one write and must not wait for the previous one's ACK.
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(POST_TIMEOUT))?;
            stream.set_write_timeout(Some(POST_TIMEOUT))?;
            stream.write_all(head.as_bytes())?;
            Ok(stream)
        };
        let stream = open().map_err(|error| StreamError::Io { url: url.clone(), error })?;
        Ok(StreamingResponse { stream, url, limit, sent: 0, is_broken: false })
    }

    /// Sends `bytes` as one chunk; empty input sends nothing (an empty chunk would end the
    /// stream). A chunk that would take the stream past its limit is not sent at all, and the
    /// stream stays open so that the caller can `fail` it.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let len = bytes.len() as u64;
        if self.sent.saturating_add(len) > self.limit {
            return Err(StreamError::TooLarge { limit: self.limit });
        }
        let size_line = chunk_size_line(bytes.len());
        self.send(&mut [
            IoSlice::new(size_line.as_bytes()),
            IoSlice::new(bytes),
            IoSlice::new(CRLF),
        ])?;
        self.sent += len;
        Ok(())
    }

    /// Ends the stream as a success: the last chunk and no trailers. Returns the answer's
    /// status, whatever it is; a non-2xx status is for the caller to judge.
    pub fn finish(mut self) -> Result<u16, StreamError> {
        self.send(&mut [IoSlice::new(&last_chunk(&[]))])?;
        self.read_answer()
    }

    /// Ends the stream as a failure: the last chunk, then the error type and the error
    /// document as trailers. Returns the answer's status, as `finish` does.
    pub fn fail(mut self, diagnostic: &Diagnostic) -> Result<u16, StreamError> {
        let trailers = [
            (HEADER_ERROR_TYPE, diagnostic.header_error_type()),
            (HEADER_ERROR_BODY, base64(&diagnostic.to_json())),
        ];
        self.send(&mut [IoSlice::new(&last_chunk(&trailers))])?;
        self.read_answer()
    }

    /// Body bytes sent so far, framing not counted.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    fn send(&mut self, parts: &mut [IoSlice<'_>]) -> Result<(), StreamError> {
        if self.is_broken {
            let error = io::Error::other("an earlier write failed part-way; the stream is cut");
            return Err(StreamError::Io { url: self.url.clone(), error });
        }
        write_all_vectored(&mut self.stream, parts).map_err(|error| {
            self.is_broken = true;
            StreamError::Io { url: self.url.clone(), error }
        })
    }

    fn read_answer(self) -> Result<u16, StreamError> {
        answer::read(&self.stream).map_err(|error| StreamError::Io { url: self.url, error })
    }
}

/// A streamed post that went wrong.
#[derive(Debug)]
pub enum StreamError {
    /// Connecting, writing or reading the answer failed; the stream is over.
    Io { url: String, error: io::Error },
    /// A write would have taken the stream past `limit` bytes; the stream is still open.
    TooLarge { limit: u64 },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io { url, error } => write!(f, "{url}: {error}"),
            StreamError::TooLarge { limit } => {
                write!(f, "the streamed response is over its limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io { error, .. } => Some(error),
            StreamError::TooLarge { .. } => None,
        }
    }
}

/// Ends a chunk's data.
const CRLF: &[u8] = b"\r\n";

/// Tries each address `authority` resolves to, as `TcpStream::connect` does, with a timeout.
fn connect(authority: &str) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, POST_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("{authority} resolves to no address"))))
}

/// The request line and headers of the streamed post, up to and including the empty line.
/// We never reuse the connection, and say so with `Connection: close`.
fn request_head(authority: &str, path: &str, content_type: &str) -> io::Result<String> {
    let is_header_value = |s: &str| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if content_type.trim().is_empty() || !is_header_value(content_type) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("content type {content_type:?} cannot be a header value"),
        ));
    }
    Ok(format!(
        "POST {path} HTTP/1.1\r\n\
         Host: {authority}\r\n\
         User-Agent: {USER_AGENT}\r\n\
         {HEADER_RESPONSE_MODE}: streaming\r\n\
         Transfer-Encoding: chunked\r\n\
         Trailer: {HEADER_ERROR_TYPE}, {HEADER_ERROR_BODY}\r\n\
         Content-Type: {content_type}\r\n\
         Connection: close\r\n\
         \r\n"
    ))
}

/// The line that opens a chunk of `len` bytes: its size in hex.
fn chunk_size_line(len: usize) -> String {
    format!("{len:X}\r\n")
}

/// The zero-length chunk, the trailer section and the empty line that ends the request.
fn last_chunk(trailers: &[(&str, String)]) -> Vec<u8> {
    let mut out = b"0\r\n".to_vec();
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `Write::write_all` for gathered buffers (std's `write_all_vectored` is unstable): a chunk's
/// size line, data and CRLF leave in one `writev`, however often a short write splits them.
/// Unlike std's `send`, `writev` has no `MSG_NOSIGNAL`; a peer that has gone still gives us
/// `EPIPE`, not a fatal signal, because Rust's runtime ignores SIGPIPE before `main`.
fn write_all_vectored(writer: &mut impl Write, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match writer.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    writer.flush()
}

/// Standard base64 with padding (RFC 4648 §4), as Lambda decodes `Error-Body`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A group of k bytes gives k + 1 characters; `=` pads it to four.
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            let c = if i <= group.len() { ALPHABET[((n >> shift) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

impl ResponseStream for StreamingResponse {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StreamWriteError> {
        StreamingResponse::write(self, bytes).map_err(|e| match e {
            StreamError::TooLarge { limit } => StreamWriteError::TooLarge(limit),
            StreamError::Io { .. } => StreamWriteError::Broken(Box::new(e)),
        })
    }

    fn finish(self: Box<Self>) -> Result<u16, StreamFailure> {
        Ok(StreamingResponse::finish(*self)?)
    }

    fn fail(self: Box<Self>, diagnostic: &Diagnostic) -> Result<u16, StreamFailure> {
        Ok(StreamingResponse::fail(*self, diagnostic)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn base64_uses_the_standard_alphabet_for_high_bytes() {
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64(&[0xff, 0xff, 0xff]), "////");
        assert_eq!(base64(&[0, 0, 0]), "AAAA");
        assert_eq!(base64(&[0x14, 0xfb, 0x9c, 0x03, 0xd9, 0x7e]), "FPucA9l+");
    }

    /// Accepts at most `step` bytes per write, as a full socket buffer would.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        writes: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn frame(data: &[u8], step: usize) -> Trickle {
        let mut out = Trickle { out: Vec::new(), step, writes: 0 };
        let size_line = chunk_size_line(data.len());
        let mut parts =
            [IoSlice::new(size_line.as_bytes()), IoSlice::new(data), IoSlice::new(CRLF)];
        write_all_vectored(&mut out, &mut parts).unwrap();
        out
    }

    #[test]
    fn a_chunk_is_its_hex_size_its_bytes_and_crlf() {
        assert_eq!(frame(b"hello", usize::MAX).out, b"5\r\nhello\r\n");
        assert_eq!(frame(&[7; 255], usize::MAX).out[..4], *b"FF\r\n");
        assert_eq!(chunk_size_line(0x10000), "10000\r\n");
    }

    #[test]
    fn short_writes_still_send_every_byte_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        let trickled = frame(&data, 7);
        assert_eq!(trickled.out, frame(&data, usize::MAX).out);
        assert!(trickled.writes > 1);
    }

    #[test]
    fn the_last_chunk_carries_the_trailers() {
        assert_eq!(last_chunk(&[]), b"0\r\n\r\n");
        let trailers = [("A", "1".to_string()), ("B", "x y".to_string())];
        assert_eq!(last_chunk(&trailers), b"0\r\nA: 1\r\nB: x y\r\n\r\n");
    }

    #[test]
    fn the_request_head_announces_a_chunked_stream_with_trailers() {
        let head =
            request_head("127.0.0.1:9001", "/.rt/2018-06-01/runtime/x", "text/plain").unwrap();
        let want = format!(
            "POST /.rt/2018-06-01/runtime/x HTTP/1.1\r\n\
             Host: 127.0.0.1:9001\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Lambda-Runtime-Function-Response-Mode: streaming\r\n\
             Transfer-Encoding: chunked\r\n\
             Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\
             Content-Type: text/plain\r\n\
             Connection: close\r\n\r\n"
        );
        assert_eq!(head, want);
    }

    #[test]
    fn a_content_type_cannot_inject_headers() {
        for bad in ["", " ", "text/plain\r\nX-Evil: 1", "a\nb", "caf\u{e9}"] {
            let error = request_head("h:1", "/", bad).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_url_or_the_limit() {
        let io = StreamError::Io {
            url: "http://127.0.0.1:1/2018-06-01/runtime/invocation/r1/response".into(),
            error: io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(
            io.to_string()
                .starts_with("http://127.0.0.1:1/2018-06-01/runtime/invocation/r1/response: ")
        );
        let too_large = StreamError::TooLarge { limit: 1024 };
        assert_eq!(too_large.to_string(), "the streamed response is over its limit of 1024 bytes");
    }
}
