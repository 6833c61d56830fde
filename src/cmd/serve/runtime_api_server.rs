//! The Lambda Runtime API on loopback (`127.0.0.1`, a free port), served to the ordinary
//! Lambda loop of this same process: `/next` hands out the invocations waiting in the hub,
//! and `/response`, `/error` and `/init/error` bring their answers back.
//!
//! HTTP/1.1 by hand over `std::net`, with `httparse` (the parser hyper uses) for request heads.
//! The Invoke API uses tiny_http, but tiny_http's chunked decoder fails on trailers, and a
//! stream that fails part-way reports its error in exactly those trailers
//! (`Lambda-Runtime-Function-Error-Type` and `-Body`). Its only client is our own loop, so the
//! subset is small: one request at a time per connection, `Content-Length` or chunked bodies,
//! keep-alive. Every body and head is capped; one thread per connection, and few connections.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use base64::Engine;

use super::eventstream::MAX_CHUNK_PAYLOAD;
use super::host;
use super::hub::{self, Answer, Hub, Part, StreamTarget};

/// Lambda's hard edge for a buffered response: 6 MiB + 100 bytes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;
/// Lambda's limit for a streamed response.
const MAX_STREAMED_BYTES: u64 = 200 * 1024 * 1024;
/// The Managed Instances emulator's cap on an `/error` or `/init/error` body.
const MAX_ERROR_BYTES: usize = 1024 * 1024;
/// The longest request head (request line and headers) we read.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest chunk-size line or trailer line of a chunked body.
const MAX_LINE_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// The Runtime API version path.
const API_PREFIX: &str = "/2018-06-01/runtime/";
/// What a streamed post's end says when the function failed part-way.
const TRAILER_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const TRAILER_ERROR_BODY: &str = "lambda-runtime-function-error-body";
/// A post whose body was cut short: Lambda's name for it.
const TRUNCATED: &str = "Runtime.TruncatedResponse";
/// A buffered response over the limit: Lambda's error for the caller.
const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

/// Starts the server on a free loopback port; `loops` sizes the connection limit (each loop
/// keeps one connection and opens another per streamed answer).
pub fn start(hub: Arc<Hub>, loops: usize) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let address = listener.local_addr()?;
    let limit = 4 * loops + 8;
    thread::Builder::new()
        .name("runtime-api".into())
        .spawn(move || accept(&listener, &hub, limit))?;
    Ok(address)
}

fn accept(listener: &TcpListener, hub: &Arc<Hub>, limit: usize) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.load(Ordering::SeqCst) >= limit {
            // Only our own loops connect here; more than they could use is somebody else.
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (hub, done) = (Arc::clone(hub), Arc::clone(&open));
        let spawned = thread::Builder::new().name("runtime-api-conn".into()).spawn(move || {
            // A connection that fails (the loop hung up) ends only itself.
            let _ = serve_connection(stream, &hub);
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| {
            v.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
    }

    fn content_length(&self) -> Result<usize, String> {
        match self.header("content-length") {
            None => Ok(0),
            Some(v) => v.trim().parse().map_err(|_| format!("bad Content-Length {v:?}")),
        }
    }
}

fn serve_connection(stream: TcpStream, hub: &Hub) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    loop {
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(e) => {
                reply(&mut writer, 400, "InvalidRequest", &e.to_string(), true)?;
                return Ok(());
            }
        };
        let close = head.wants_close();
        let keep_open = route(&head, &mut reader, &mut writer, hub)?;
        if close || !keep_open {
            return Ok(());
        }
    }
}

/// Answers one request; `false` when the connection must close (its body was not read).
fn route(
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    hub: &Hub,
) -> io::Result<bool> {
    let path = head.path.split('?').next().unwrap_or_default();
    let Some(endpoint) = path.find(API_PREFIX).map(|i| &path[i + API_PREFIX.len()..]) else {
        return not_found(head, reader, writer);
    };
    match (head.method.as_str(), endpoint) {
        ("GET", "invocation/next") => {
            let job = hub.next();
            if let Err(e) = write_next(writer, &job) {
                // The poller went away (not one of our loops): the next one gets the job.
                hub.return_unsent(job);
                return Err(e);
            }
            Ok(true)
        }
        // The loop also ends with this error, and `serve` reports it then.
        ("POST", "init/error") => {
            read_body(head, reader, MAX_ERROR_BYTES)?;
            accepted(writer)
        }
        ("POST", rest) => match rest.strip_prefix("invocation/").and_then(|r| r.split_once('/')) {
            Some((id, "response")) => post_response(head, id, reader, writer, hub),
            Some((id, "error")) => post_error(head, id, reader, writer, hub),
            _ => not_found(head, reader, writer),
        },
        _ => not_found(head, reader, writer),
    }
}

fn not_found(
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<bool> {
    let drained = read_body(head, reader, 0).is_ok();
    let message = format!("no such Runtime API endpoint: {} {}", head.method, head.path);
    reply(writer, 404, "UnknownEndpoint", &message, !drained)?;
    Ok(drained)
}

/// `POST /runtime/invocation/{id}/response`, buffered or streamed.
fn post_response(
    head: &Head,
    id: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    hub: &Hub,
) -> io::Result<bool> {
    if head.is_chunked() {
        return post_stream(id, reader, writer, hub);
    }
    let body = read_body(head, reader, MAX_RESPONSE_BYTES)?;
    if !hub.is_running(id) {
        return invalid_request_id(writer);
    }
    if body.too_large {
        hub.finish(id, oversized());
        let message = format!("the response is over {MAX_RESPONSE_BYTES} bytes");
        reply(writer, 413, "RequestEntityTooLarge", &message, false)?;
        return Ok(true);
    }
    hub.finish(id, Answer::Response(body.bytes));
    accepted(writer)
}

/// `POST /runtime/invocation/{id}/error`.
fn post_error(
    head: &Head,
    id: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    hub: &Hub,
) -> io::Result<bool> {
    let body = read_body(head, reader, MAX_ERROR_BYTES)?;
    let error_type =
        hub::error_type_of(head.header("lambda-runtime-function-error-type"), &body.bytes);
    if !hub.finish(id, Answer::Error { error_type, body: body.bytes }) {
        return invalid_request_id(writer);
    }
    accepted(writer)
}

/// A streamed `/response`: each piece goes to the caller as it arrives (or is collected for a
/// buffered caller); the trailers say whether the function failed part-way.
fn post_stream(
    id: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    hub: &Hub,
) -> io::Result<bool> {
    let mut target = hub.open_stream(id);
    if matches!(target, StreamTarget::Unknown) {
        // Read it anyway, so that the connection stays usable.
        let _ = read_chunked(reader, |_| {});
        return invalid_request_id(writer);
    }
    let mut collected = Vec::new();
    let (mut sent, mut too_large) = (0u64, false);
    let ended = read_chunked(reader, |piece| {
        sent += piece.len() as u64;
        if sent > MAX_STREAMED_BYTES {
            too_large = true;
        }
        match &target {
            // A caller that has gone away stops receiving; the stream is still read.
            StreamTarget::Forward(sender)
                if !too_large && sender.send(Part::Chunk(piece.to_vec())).is_err() =>
            {
                target = StreamTarget::Discard;
            }
            StreamTarget::Collect if !too_large => {
                if collected.len() + piece.len() > MAX_RESPONSE_BYTES {
                    too_large = true;
                } else {
                    collected.extend_from_slice(piece);
                }
            }
            _ => {}
        }
    });
    let answer = match &ended {
        Err(e) => {
            let message = format!("the streamed response was cut short: {e}");
            Answer::Error {
                error_type: TRUNCATED.into(),
                body: host::error_document(TRUNCATED, &message),
            }
        }
        Ok(trailers) => match stream_error(trailers) {
            Some((error_type, body)) => Answer::Error { error_type, body },
            None if too_large => oversized(),
            None => Answer::Response(collected),
        },
    };
    // A forwarded stream's bytes have gone out already; only its end remains.
    let answer = match (answer, &target) {
        (Answer::Response(_), StreamTarget::Forward(_)) => Answer::Response(Vec::new()),
        (answer, _) => answer,
    };
    hub.finish(id, answer);
    if ended.is_err() {
        return Ok(false);
    }
    accepted(writer)
}

/// The error a failed stream's trailers carry: its type, and its document decoded.
fn stream_error(trailers: &[(String, String)]) -> Option<(String, Vec<u8>)> {
    let find = |name: &str| {
        trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    };
    let error_type = find(TRAILER_ERROR_TYPE)?;
    let body = find(TRAILER_ERROR_BODY)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| host::error_document(error_type, "the stream failed"));
    Some((error_type.to_string(), body))
}

fn oversized() -> Answer {
    let message = format!(
        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
    );
    Answer::Error {
        error_type: RESPONSE_TOO_LARGE.into(),
        body: host::error_document(RESPONSE_TOO_LARGE, &message),
    }
}

fn invalid_request_id(writer: &mut TcpStream) -> io::Result<bool> {
    reply(writer, 400, "InvalidRequestID", "Invalid request ID", false)?;
    Ok(true)
}

fn accepted(writer: &mut TcpStream) -> io::Result<bool> {
    let body = br#"{"status":"OK"}"#;
    let head = format!(
        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    write_all_parts(writer, &[head.as_bytes(), body])?;
    Ok(true)
}

/// An error answer with the Runtime API's `{"errorType", "errorMessage"}` body.
fn reply(
    writer: &mut TcpStream,
    status: u16,
    error_type: &str,
    message: &str,
    close: bool,
) -> io::Result<()> {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string();
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Error",
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{connection}\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    write_all_parts(writer, &[head.as_bytes(), body.as_bytes()])
}

/// The `/next` answer: the event, and its metadata as headers.
fn write_next(writer: &mut TcpStream, job: &hub::Dispatched) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {}\r\n\
         Lambda-Runtime-Invoked-Function-Arn: {}\r\nLambda-Runtime-Trace-Id: {}\r\n",
        job.id, job.deadline_ms, job.function_arn, job.trace_id
    );
    if let Some(context) = &job.client_context {
        head.push_str(&format!("Lambda-Runtime-Client-Context: {context}\r\n"));
    }
    if let Some(tenant) = &job.tenant_id {
        head.push_str(&format!("Lambda-Runtime-Aws-Tenant-Id: {tenant}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", job.event.len()));
    write_all_parts(writer, &[head.as_bytes(), &job.event])
}

fn write_all_parts(writer: &mut TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    // Small answers leave in one write; a big event is not copied for that.
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= 64 * 1024 {
        writer.write_all(&parts.concat())?;
    } else {
        for part in parts {
            writer.write_all(part)?;
        }
    }
    writer.flush()
}

/// Reads one request head; `None` at a clean end of the connection.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let start = raw.len();
        let n = reader.by_ref().take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut raw)?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut inside a request head"));
        }
        if !raw.ends_with(b"\n") || raw.len() > MAX_HEAD_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too long"));
        }
        // Blank lines before a request are allowed (RFC 9112 §2.2).
        if start == 0 && matches!(&raw[..], b"\r\n" | b"\n") {
            raw.clear();
            continue;
        }
        if matches!(&raw[start..], b"\r\n" | b"\n") {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    match request.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete request head".into())),
        Err(e) => return Err(invalid(format!("malformed request head: {e}"))),
    }
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Ok(Some(Head {
        method: request.method.unwrap_or_default().to_string(),
        path: request.path.unwrap_or_default().to_string(),
        headers,
    }))
}

/// A body read up to a limit: the bytes, and whether there was more (which was read and
/// dropped, so the connection stays usable).
struct Body {
    bytes: Vec<u8>,
    too_large: bool,
}

/// Reads a request body (`Content-Length` or chunked), keeping at most `limit` bytes.
fn read_body(head: &Head, reader: &mut impl BufRead, limit: usize) -> io::Result<Body> {
    let mut body = Body { bytes: Vec::new(), too_large: false };
    let mut keep = |piece: &[u8]| {
        if body.bytes.len() + piece.len() > limit {
            body.too_large = true;
        } else if !body.too_large {
            body.bytes.extend_from_slice(piece);
        }
    };
    if head.is_chunked() {
        read_chunked(reader, &mut keep)?;
        return Ok(body);
    }
    let length =
        head.content_length().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut left = length;
    let mut buf = vec![0u8; length.min(64 * 1024)];
    while left > 0 {
        let want = left.min(buf.len());
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short"));
        }
        keep(&buf[..n]);
        left -= n;
    }
    Ok(body)
}

/// Decodes a chunked body, showing each piece of data to `on_data` as it arrives (at most
/// `MAX_CHUNK_PAYLOAD` at a time), and returns its trailers.
fn read_chunked(
    reader: &mut impl BufRead,
    mut on_data: impl FnMut(&[u8]),
) -> io::Result<Vec<(String, String)>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            break;
        }
        let mut left = size;
        let mut piece = Vec::new();
        while left > 0 {
            let want = left.min(buf.len());
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk cut short"));
            }
            piece.extend_from_slice(&buf[..n]);
            left -= n;
            if piece.len() >= MAX_CHUNK_PAYLOAD {
                on_data(&piece);
                piece.clear();
            }
        }
        if !piece.is_empty() {
            on_data(&piece);
        }
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF"));
        }
    }
    let mut trailers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(trailers);
        }
        if trailers.len() >= MAX_HEADERS {
            return Err(invalid("too many trailers"));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("malformed trailer"))?;
        trailers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// One CRLF-terminated line, without its line ending.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.by_ref().take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        let what = if line.len() >= MAX_LINE_BYTES { "line too long" } else { "cut inside a line" };
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        read_head(&mut text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn chunked_bodies_give_their_data_and_trailers() {
        let body = "5;ext=1\r\nhello\r\n3\r\n, w\r\n0\r\n\
                    Lambda-Runtime-Function-Error-Type: Runtime.ExitError\r\n\
                    Lambda-Runtime-Function-Error-Body: eyJhIjoxfQ==\r\n\r\nNEXT";
        let mut reader = body.as_bytes();
        let mut data = Vec::new();
        let trailers = read_chunked(&mut reader, |p| data.extend_from_slice(p)).unwrap();
        assert_eq!(data, b"hello, w");
        assert_eq!(reader, b"NEXT", "nothing past the body is read");
        let (error_type, document) = stream_error(&trailers).unwrap();
        assert_eq!(error_type, "Runtime.ExitError");
        assert_eq!(document, br#"{"a":1}"#);
        let clean = read_chunked(&mut &b"2\r\nok\r\n0\r\n\r\n"[..], |_| {}).unwrap();
        assert!(stream_error(&clean).is_none());
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        for bad in ["z\r\n", "5\r\nhel", "2\r\nokX\r\n", "2\r\nok\r\n0\r\nno colon\r\n\r\n"] {
            assert!(read_chunked(&mut bad.as_bytes(), |_| {}).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn heads_are_parsed_and_bounded() {
        let h = head(
            "POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n\
                      Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(h.method, "POST");
        assert!(h.is_chunked() && h.wants_close());
        assert!(read_head(&mut &b""[..]).unwrap().is_none());
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nHost"[..]).is_err());
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_LINE_BYTES + 1));
        assert!(read_head(&mut huge.as_bytes()).is_err());
    }

    #[test]
    fn bodies_over_the_limit_are_read_and_marked() {
        let h = head("POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
        let mut reader = &b"0123456789NEXT"[..];
        let body = read_body(&h, &mut reader, 4).unwrap();
        assert!(body.too_large);
        assert_eq!(reader, b"NEXT");
        let body = read_body(&h, &mut &b"0123456789"[..], 10).unwrap();
        assert_eq!((body.bytes.as_slice(), body.too_large), (&b"0123456789"[..], false));
    }
}
