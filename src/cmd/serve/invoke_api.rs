//! Lambda's Invoke API, as AWS's SDKs and CLI speak it, on tiny_http:
//! `POST /2015-03-31/functions/{name}/invocations` (RequestResponse, Event, DryRun; Tail logs;
//! a client context) and `POST /2021-11-15/functions/{name}/response-streaming-invocations`
//! (an event stream of `PayloadChunk`s as the handler writes, then `InvokeComplete`).
//!
//! Each request is checked here as Lambda checks it (its headers, a JSON payload within the
//! size limit) and handed to the hub; the request's thread then waits for the answer. Requests
//! are served on a bounded pool of worker threads (enough for every invocation that may run or
//! wait); beyond the hub's waiting room, callers get Lambda's 429.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html and
//! https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use base64::Engine;
use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::eventstream;
use super::host;
use super::hub::{Answer, Finished, Hub, Job, Part, Refused, Reply};
use super::ids;

/// Lambda's limit for a synchronous request's payload (6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Lambda's limit for an asynchronous (`Event`) payload (1 MB since October 2025).
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Lambda's limit for `X-Amz-Client-Context`, base64 included.
const MAX_CLIENT_CONTEXT: usize = 3583;
/// Streamed pieces buffered between the Runtime API and a slow caller.
const STREAM_BUFFER: usize = 8;
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
const INVOKE_SUFFIX: &str = "/invocations";
const STREAM_PREFIX: &str = "/2021-11-15/functions/";
const STREAM_SUFFIX: &str = "/response-streaming-invocations";
/// The version every invocation runs.
const VERSION: &str = "$LATEST";

/// Serves requests on a pool of worker threads that each take the next request from tiny_http
/// themselves (it allows that), so a request reaches its thread with no hop in between. The
/// pool grows while every worker is busy (each waits for its invocation's answer), up to
/// `max_workers`; then requests wait for a worker. Workers stay for the next request.
pub fn serve(server: tiny_http::Server, hub: Arc<Hub>, max_workers: usize) -> io::Result<()> {
    let idle = AtomicUsize::new(0);
    let workers = AtomicUsize::new(0);
    let pool = Arc::new(Pool { server, hub, idle, workers, max_workers });
    Pool::add_worker(&pool)
}

struct Pool {
    server: tiny_http::Server,
    hub: Arc<Hub>,
    /// Workers waiting for a request.
    idle: AtomicUsize,
    workers: AtomicUsize,
    max_workers: usize,
}

impl Pool {
    fn add_worker(pool: &Arc<Pool>) -> io::Result<()> {
        if pool.workers.fetch_add(1, Ordering::SeqCst) >= pool.max_workers {
            pool.workers.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        let worker = Arc::clone(pool);
        let spawned = thread::Builder::new().name("invoke".into()).spawn(move || worker.work());
        if let Err(e) = spawned {
            pool.workers.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    fn work(self: Arc<Pool>) {
        loop {
            self.idle.fetch_add(1, Ordering::SeqCst);
            let request = self.server.recv();
            // The last idle worker took this one: start another for the next request.
            if self.idle.fetch_sub(1, Ordering::SeqCst) == 1 {
                // Without it, requests wait for a busy worker to finish: slower, not lost.
                let _ = Pool::add_worker(&self);
            }
            match request {
                // The caller hung up, or wrote garbage: nothing more to tell it.
                Ok(request) => {
                    let _ = handle(request, &self.hub);
                }
                Err(_) => return,
            }
        }
    }
}

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Invoke,
    Stream,
}

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// A request that Lambda would refuse: its status, error code and message.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { status, code, message: message.into() }
    }
}

/// What the checks made of a request.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    endpoint: Endpoint,
    function_name: String,
    invocation_type: InvocationType,
    tail: bool,
    client_context: Option<String>,
    tenant_id: Option<String>,
}

fn handle(mut request: Request, hub: &Hub) -> io::Result<()> {
    let checked = match check(request.method(), request.url(), &headers(&request)) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(request, &refusal),
    };
    let limit = match checked.invocation_type {
        InvocationType::Event => MAX_ASYNC_PAYLOAD,
        _ => MAX_SYNC_PAYLOAD,
    };
    let payload = match read_payload(&mut request, limit) {
        Ok(payload) => payload,
        Err(refusal) => return refuse(request, &refusal),
    };
    if let Err(refusal) = check_json(&payload) {
        return refuse(request, &refusal);
    }
    if checked.invocation_type == InvocationType::DryRun {
        return request
            .respond(Response::empty(204).with_header(header("X-Amz-Executed-Version", VERSION)));
    }
    // From here on a shutdown waits (briefly) for this caller to be answered.
    let _in_flight = (checked.invocation_type != InvocationType::Event).then(host::in_flight);
    let id = ids::request_id();
    let event = if payload.is_empty() { b"{}".to_vec() } else { payload };
    let (reply, answers) = match (checked.invocation_type, checked.endpoint) {
        (InvocationType::Event, _) => (Reply::Background, Answers::None),
        (_, Endpoint::Invoke) => {
            let (sender, receiver) = mpsc::sync_channel(1);
            (Reply::Buffered(sender), Answers::Buffered(receiver))
        }
        (_, Endpoint::Stream) => {
            let (sender, receiver) = mpsc::sync_channel(STREAM_BUFFER);
            (Reply::Streamed(sender), Answers::Streamed(receiver))
        }
    };
    let job = Job {
        id: id.clone(),
        event,
        function_name: checked.function_name.clone(),
        client_context: checked.client_context.clone(),
        tenant_id: checked.tenant_id.clone(),
        tail: checked.tail,
        reply,
    };
    if let Err(Refused::Busy { invocations, bytes }) = hub.submit(job) {
        let message = format!(
            "Rate Exceeded: {invocations} invocations ({bytes} bytes of events) are already \
             waiting for the function\nhint: raise --concurrency, or send fewer invocations at once"
        );
        return refuse(request, &Refusal::new(429, "TooManyRequestsException", message));
    }
    match answers {
        Answers::None => {
            request.respond(Response::empty(202).with_header(header("X-Amzn-RequestId", &id)))
        }
        Answers::Buffered(receiver) => match receiver.recv() {
            Ok(finished) => respond_buffered(request, &id, finished),
            Err(_) => refuse(request, &lost()),
        },
        Answers::Streamed(receiver) => respond_streamed(request, &id, &receiver),
    }
}

/// Where the answer will come from.
enum Answers {
    None,
    Buffered(mpsc::Receiver<Finished>),
    Streamed(mpsc::Receiver<Part>),
}

/// The hub dropped an invocation without an answer: a bug, said as one.
fn lost() -> Refusal {
    Refusal::new(500, "ServiceException", "the invocation ended without an answer")
}

/// The request's headers as (lowercase name, value) pairs.
fn headers(request: &Request) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
        .collect()
}

/// Checks the method, path and headers as Lambda does, before the payload is read.
fn check(method: &Method, url: &str, headers: &[(String, String)]) -> Result<Checked, Refusal> {
    let path = url.split('?').next().unwrap_or_default();
    let (endpoint, name) = if let Some(name) =
        path.strip_prefix(INVOKE_PREFIX).and_then(|p| p.strip_suffix(INVOKE_SUFFIX))
    {
        (Endpoint::Invoke, name)
    } else if let Some(name) =
        path.strip_prefix(STREAM_PREFIX).and_then(|p| p.strip_suffix(STREAM_SUFFIX))
    {
        (Endpoint::Stream, name)
    } else {
        return Err(Refusal::new(
            404,
            "ResourceNotFoundException",
            format!(
                "no such endpoint: {method} {path}\nhint: bootstrap serve answers POST \
                 {INVOKE_PREFIX}{{name}}{INVOKE_SUFFIX} and POST {STREAM_PREFIX}{{name}}{STREAM_SUFFIX}"
            ),
        ));
    };
    if *method != Method::Post {
        return Err(Refusal::new(
            405,
            "InvalidRequestContentException",
            format!("{method} is not allowed here: invoke with POST"),
        ));
    }
    let function_name = percent_decode(name);
    if function_name.is_empty() || function_name.contains('/') || function_name.len() > 170 {
        return Err(Refusal::new(
            400,
            "InvalidParameterValueException",
            format!("the function name {function_name:?} is not a function name or ARN"),
        ));
    }
    // Only the name part of an ARN names the function (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
    let function_name = match function_name.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, _, _, _, "function", name, ..] => name.to_string(),
        [_, "function", name, ..] => name.to_string(),
        [name, ..] => name.to_string(),
        [] => function_name,
    };
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim());
    let invocation_type = match header("x-amz-invocation-type") {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") if endpoint == Endpoint::Invoke => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            let allowed = match endpoint {
                Endpoint::Invoke => "RequestResponse, Event or DryRun",
                Endpoint::Stream => "RequestResponse or DryRun",
            };
            return Err(Refusal::new(
                400,
                "InvalidParameterValueException",
                format!("X-Amz-Invocation-Type {other:?} is not {allowed}"),
            ));
        }
    };
    let tail = match header("x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(Refusal::new(
                400,
                "InvalidParameterValueException",
                format!("X-Amz-Log-Type {other:?} is not None or Tail"),
            ));
        }
    };
    let client_context = header("x-amz-client-context").map(decode_client_context).transpose()?;
    let tenant_id = header("x-amz-tenant-id").filter(|t| !t.is_empty()).map(str::to_string);
    Ok(Checked { endpoint, function_name, invocation_type, tail, client_context, tenant_id })
}

/// `X-Amz-Client-Context`: base64 of a JSON object, passed to the handler as compact JSON
/// (so that it fits in one header line whatever whitespace it had).
fn decode_client_context(encoded: &str) -> Result<String, Refusal> {
    let refuse = |why: &str| {
        Refusal::new(
            400,
            "InvalidRequestContentException",
            format!("Client context must be a valid Base64-encoded JSON object: {why}"),
        )
    };
    if encoded.len() > MAX_CLIENT_CONTEXT {
        return Err(refuse(&format!("it is over {MAX_CLIENT_CONTEXT} bytes")));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| refuse(&format!("not base64 ({e})")))?;
    match serde_json::from_slice::<serde_json::Value>(&decoded) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => Err(refuse("not an object")),
        Err(e) => Err(refuse(&format!("not JSON ({e})"))),
    }
}

/// Reads the payload, at most `limit` bytes. A larger one is refused as Lambda refuses it,
/// after the rest of it has been read and dropped in small pieces (tiny_http would otherwise
/// drain it with one allocation of its declared size).
fn read_payload(request: &mut Request, limit: usize) -> Result<Vec<u8>, Refusal> {
    let too_large = || {
        Refusal::new(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
    };
    let unreadable = |e: io::Error| {
        Refusal::new(
            400,
            "InvalidRequestContentException",
            format!("cannot read the request body: {e}"),
        )
    };
    let mut payload = Vec::new();
    if request.body_length().is_none_or(|n| n <= limit) {
        let reader = request.as_reader();
        reader.take(limit as u64 + 1).read_to_end(&mut payload).map_err(unreadable)?;
        if payload.len() <= limit {
            return Ok(payload);
        }
    }
    io::copy(request.as_reader(), &mut io::sink()).map_err(unreadable)?;
    Err(too_large())
}

/// The payload must be JSON (any JSON value), or empty.
fn check_json(payload: &[u8]) -> Result<(), Refusal> {
    if payload.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload).map(|_| ()).map_err(|e| {
        Refusal::new(
            400,
            "InvalidRequestContentException",
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        )
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A header we build from known-good ASCII.
fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("BUG: header names and values here are ASCII")
}

/// Lambda's error answer: `x-amzn-ErrorType` and `{"Type", "message"}`, as botocore reads it.
fn refuse(request: Request, refusal: &Refusal) -> io::Result<()> {
    error(request, refusal.status, refusal.code, &refusal.message)
}

fn error(request: Request, status: u16, code: &str, message: &str) -> io::Result<()> {
    let body = serde_json::json!({"Type": "User", "message": message}).to_string();
    request.respond(
        Response::from_data(body)
            .with_status_code(StatusCode(status))
            .with_header(header("Content-Type", "application/json"))
            .with_header(header("X-Amzn-ErrorType", code)),
    )
}

/// `RequestResponse`: 200 with the response, or with the error and `X-Amz-Function-Error`.
fn respond_buffered(request: Request, id: &str, finished: Finished) -> io::Result<()> {
    let (body, function_error) = match finished.answer {
        Answer::Response(body) => (body, false),
        Answer::Error { body, .. } => (body, true),
    };
    let mut response = Response::from_data(body)
        // Always a Content-Length: tiny_http would chunk anything over 32 KB.
        .with_chunked_threshold(usize::MAX)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("X-Amzn-RequestId", id))
        .with_header(header("X-Amz-Executed-Version", VERSION));
    if function_error {
        response = response.with_header(header("X-Amz-Function-Error", "Unhandled"));
    }
    if let Some(tail) = finished.log_tail {
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        response = response.with_header(header("X-Amz-Log-Result", &encoded));
    }
    request.respond(response)
}

/// `InvokeWithResponseStream`: 200 at once, each piece as a `PayloadChunk` the moment it
/// arrives, and `InvokeComplete` at the end. tiny_http buffers what a `Response` reads into
/// 8 KB chunks, so the answer is written here: one HTTP chunk per message, flushed.
fn respond_streamed(request: Request, id: &str, parts: &mpsc::Receiver<Part>) -> io::Result<()> {
    let mut writer = request.into_writer();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nX-Amzn-RequestId: {id}\r\n\
         X-Amz-Executed-Version: {VERSION}\r\nTransfer-Encoding: chunked\r\n\r\n",
        eventstream::CONTENT_TYPE
    );
    writer.write_all(head.as_bytes())?;
    writer.flush()?;
    loop {
        let part = parts.recv().unwrap_or_else(|_| {
            let refusal = lost();
            Part::End {
                error: Some((refusal.code.into(), refusal.message.into_bytes())),
                log_tail: None,
            }
        });
        match part {
            Part::Chunk(bytes) => {
                for piece in bytes.chunks(eventstream::MAX_CHUNK_PAYLOAD) {
                    write_chunk(&mut writer, &eventstream::payload_chunk(piece))?;
                }
            }
            Part::End { error, log_tail } => {
                let details = error
                    .as_ref()
                    .map(|(code, body)| (code.as_str(), String::from_utf8_lossy(body)));
                let log = log_tail.map(|t| base64::engine::general_purpose::STANDARD.encode(t));
                let frame = eventstream::invoke_complete(
                    details.as_ref().map(|(code, body)| (*code, body.as_ref())),
                    log.as_deref(),
                );
                write_chunk(&mut writer, &frame)?;
                writer.write_all(b"0\r\n\r\n")?;
                return writer.flush();
            }
        }
    }
}

/// One HTTP chunk, flushed, so that the caller's event-stream reader gets it at once.
fn write_chunk(writer: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    writer.write_all(format!("{:X}\r\n", bytes.len()).as_bytes())?;
    writer.write_all(bytes)?;
    writer.write_all(b"\r\n")?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn checked(url: &str, pairs: &[(&str, &str)]) -> Result<Checked, Refusal> {
        check(&Method::Post, url, &headers(pairs))
    }

    #[test]
    fn both_endpoints_and_any_function_name() {
        let c = checked("/2015-03-31/functions/function/invocations", &[]).unwrap();
        assert_eq!((c.endpoint, c.function_name.as_str()), (Endpoint::Invoke, "function"));
        assert_eq!(c.invocation_type, InvocationType::RequestResponse);
        let c =
            checked("/2021-11-15/functions/my-fn/response-streaming-invocations?Qualifier=1", &[])
                .unwrap();
        assert_eq!((c.endpoint, c.function_name.as_str()), (Endpoint::Stream, "my-fn"));
        let arn = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A123%3Afunction%3Af1%3Alive/invocations";
        assert_eq!(checked(arn, &[]).unwrap().function_name, "f1");
        assert_eq!(checked("/x", &[]).unwrap_err().status, 404);
        let get = check(&Method::Get, "/2015-03-31/functions/f/invocations", &[]);
        assert_eq!(get.unwrap_err().status, 405);
    }

    #[test]
    fn headers_are_checked_as_lambda_checks_them() {
        let url = "/2015-03-31/functions/f/invocations";
        let c = checked(url, &[("x-amz-invocation-type", "Event"), ("x-amz-log-type", "Tail")])
            .unwrap();
        assert_eq!((c.invocation_type, c.tail), (InvocationType::Event, true));
        assert_eq!(checked(url, &[("x-amz-invocation-type", "Later")]).unwrap_err().status, 400);
        assert_eq!(checked(url, &[("x-amz-log-type", "All")]).unwrap_err().status, 400);
        let stream = "/2021-11-15/functions/f/response-streaming-invocations";
        assert_eq!(checked(stream, &[("x-amz-invocation-type", "Event")]).unwrap_err().status, 400);
    }

    #[test]
    fn the_client_context_is_base64_json_made_compact() {
        // {"custom": {"k": "v"},\n "env": {}}
        let encoded = base64::engine::general_purpose::STANDARD
            .encode("{\"custom\": {\"k\": \"v\"},\n \"env\": {}}");
        assert_eq!(decode_client_context(&encoded).unwrap(), r#"{"custom":{"k":"v"},"env":{}}"#);
        assert!(decode_client_context("not base64!").is_err());
        let array = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert!(decode_client_context(&array).is_err());
        let huge = "A".repeat(MAX_CLIENT_CONTEXT + 4);
        assert!(decode_client_context(&huge).is_err());
    }

    #[test]
    fn payloads_must_be_json() {
        assert!(check_json(b"").is_ok());
        assert!(check_json(br#"{"a":[1,2]}"#).is_ok());
        assert!(check_json(b"\"text\"").is_ok());
        let refusal = check_json(b"{nope").unwrap_err();
        assert_eq!((refusal.status, refusal.code), (400, "InvalidRequestContentException"));
    }

    #[test]
    fn names_are_percent_decoded() {
        assert_eq!(percent_decode("a%3Ab%2"), "a:b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
