//! The loopback server: the Lambda Runtime API for the runtime under test, and an Invoke
//! endpoint for the benchmark's client, on one port.
//!
//! `POST /2015-03-31/functions/function/invocations` queues the body as an event and holds the
//! request until the runtime answers it; `GET /2018-06-01/runtime/invocation/next` is a real
//! long poll, held until an event is queued. Every connection has its own thread.
//!
//! A `/response` post may be streamed (`Lambda-Runtime-Function-Response-Mode: streaming`,
//! chunked, perhaps ending with error trailers): the server notes when its first chunk and its
//! end arrived, for the Invoke it answers (`Server::delivery`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{self, Body, Head};

const API: &str = "/2018-06-01/runtime";
pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bench-echo";
/// The function timeout each event gets, as Lambda-Runtime-Deadline-Ms.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an Invoke waits past the deadline before it gives up on the runtime.
const INVOKE_GRACE: Duration = Duration::from_secs(5);
/// The header that announces a streamed response.
const RESPONSE_MODE: &str = "Lambda-Runtime-Function-Response-Mode";
/// The header (or, on a stream that failed part-way, the trailer) naming the error.
const ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";

/// The runtime's answer to one event.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None` for /response, the Lambda-Runtime-Function-Error-Type (or "") for /error or for
    /// a streamed /response that ended with that trailer.
    pub error_type: Option<String>,
    pub body: Vec<u8>,
    /// How the post arrived.
    pub delivery: Delivery,
}

/// How and when the runtime's post of an answer reached the server.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Posted as a stream: the response-mode header said `streaming`, and the body was chunked.
    pub streamed: bool,
    /// The answer's first byte: the first non-empty chunk of a stream, else the post's head.
    pub first_byte: Instant,
    /// The end of the post's body (the last chunk and its trailers, for a stream).
    pub last_byte: Instant,
}

struct Queued {
    id: String,
    body: Vec<u8>,
    deadline_ms: u128,
    trace_id: String,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Ids handed out by /next and not answered yet.
    in_flight: HashSet<String>,
    answers: HashMap<String, Answer>,
    /// The delivery of the answer an Invoke returned last, by request id.
    last_delivery: Option<(String, Delivery)>,
    first_next: Option<Instant>,
    init_error: Option<Vec<u8>>,
    /// Requests the server did not expect (unknown id, unknown path, bad HTTP).
    unexpected: Vec<String>,
    stopping: bool,
    runtime_gone: bool,
    ids: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Notifier(Arc<Shared>);

impl Notifier {
    /// Pending and later Invoke requests fail at once instead of waiting for their deadline.
    pub fn runtime_gone(&self) {
        self.0.lock().runtime_gone = true;
        self.0.changed.notify_all();
    }
}

pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

/// What the runtime did first after it was started.
pub enum Start {
    /// It called /next (at that instant).
    Next(Instant),
    /// It posted /runtime/init/error with this body.
    InitError(Vec<u8>),
}

impl Server {
    pub fn start() -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared =
            Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let for_acceptor = Arc::clone(&shared);
        let acceptor = thread::Builder::new().name("accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if for_acceptor.lock().stopping {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&for_acceptor);
                let _ =
                    thread::Builder::new().name("conn".into()).spawn(move || serve(conn, &shared));
            }
        })?;
        Ok(Server { shared, addr, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first /next or init error, if either came; no waiting.
    pub fn start_event(&self) -> Option<Start> {
        let st = self.shared.lock();
        if let Some(body) = &st.init_error {
            return Some(Start::InitError(body.clone()));
        }
        st.first_next.map(Start::Next)
    }

    /// Wait up to `timeout` for anything to change.
    pub fn wait_change(&self, timeout: Duration) {
        let st = self.shared.lock();
        let _ = self.shared.changed.wait_timeout(st, timeout);
    }

    /// A handle for another thread to report that the runtime process is gone.
    pub fn notifier(&self) -> Notifier {
        Notifier(Arc::clone(&self.shared))
    }

    /// How the answer to that request (the last one an Invoke returned) was posted.
    pub fn delivery(&self, request_id: &str) -> Option<Delivery> {
        match &self.shared.lock().last_delivery {
            Some((id, delivery)) if id == request_id => Some(*delivery),
            _ => None,
        }
    }

    pub fn unexpected(&self) -> Vec<String> {
        self.shared.lock().unexpected.clone()
    }

    pub fn stop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        // Wake the acceptor so it sees `stopping`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serve one connection until the peer closes it or the server stops.
fn serve(conn: TcpStream, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let Ok(read_half) = conn.try_clone() else { return };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = conn;
    loop {
        let head = match http::read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                note_unexpected(shared, format!("unreadable request: {e}"));
                return;
            }
        };
        let arrived = Instant::now();
        if head.expects_continue() && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        let body = match http::read_body_timed(&mut reader, &head) {
            Ok(body) => body,
            Err(e) => {
                note_unexpected(shared, format!("unreadable body of {:?}: {e}", head.start));
                return;
            }
        };
        let ended = Instant::now();
        let Some(reply) = route(&head, body, (arrived, ended), shared) else {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        };
        if writer.write_all(&reply).is_err() || head.wants_close() {
            return;
        }
    }
}

fn note_unexpected(shared: &Shared, what: String) {
    let mut st = shared.lock();
    if st.unexpected.len() < 20 {
        st.unexpected.push(what);
    }
}

fn accepted() -> Vec<u8> {
    http::response(
        "202 Accepted",
        &[("Content-Type", "application/json".into())],
        br#"{"status":"OK"}"#,
    )
}

fn error_reply(status: &str, error_type: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    http::response(status, &[("Content-Type", "application/json".into())], body.as_bytes())
}

/// The reply to one request, or `None` to close the connection without one. `times`: when
/// its head arrived, and when its body ended.
fn route(head: &Head, body: Body, times: (Instant, Instant), shared: &Shared) -> Option<Vec<u8>> {
    let (arrived, ended) = times;
    let method = head.start[0].as_str();
    let path = head.start[1].split('?').next().unwrap_or("");
    if method == "POST" && path == INVOKE_PATH {
        return invoke(body.bytes, shared);
    }
    let Some(rest) = path.strip_prefix(API) else {
        note_unexpected(shared, format!("{method} {path}"));
        return Some(error_reply("404 Not Found", "UnknownPath", path));
    };
    match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
        ("GET", ["", "invocation", "next"]) => next(arrived, shared),
        ("POST", ["", "invocation", id, kind @ ("response" | "error")]) => {
            // An error is an /error post, or a stream that ended with the error trailers.
            let error_type = if *kind == "error" {
                Some(head.header(ERROR_TYPE).unwrap_or("").to_string())
            } else {
                body.trailer(ERROR_TYPE).map(str::to_string)
            };
            let streamed = head.is_chunked()
                && head.header(RESPONSE_MODE).is_some_and(|m| m.eq_ignore_ascii_case("streaming"));
            let delivery = Delivery {
                streamed,
                first_byte: body.first_chunk.unwrap_or(arrived),
                last_byte: ended,
            };
            Some(answer(id, Answer { error_type, body: body.bytes, delivery }, shared))
        }
        ("POST", ["", "init", "error"]) => {
            let mut st = shared.lock();
            st.init_error.get_or_insert(body.bytes);
            shared.changed.notify_all();
            Some(accepted())
        }
        _ => {
            note_unexpected(shared, format!("{method} {path}"));
            Some(error_reply("404 Not Found", "UnknownPath", path))
        }
    }
}

/// GET /next: hold until an event is queued, then hand it out with Lambda's headers.
fn next(arrived: Instant, shared: &Shared) -> Option<Vec<u8>> {
    let mut st = shared.lock();
    if st.first_next.is_none() {
        st.first_next = Some(arrived);
        shared.changed.notify_all();
    }
    let event = loop {
        if st.stopping {
            return None;
        }
        if let Some(event) = st.queue.pop_front() {
            break event;
        }
        st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
    };
    st.in_flight.insert(event.id.clone());
    drop(st);
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("Lambda-Runtime-Aws-Request-Id", event.id),
        ("Lambda-Runtime-Deadline-Ms", event.deadline_ms.to_string()),
        ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_string()),
        ("Lambda-Runtime-Trace-Id", event.trace_id),
    ];
    Some(http::response("200 OK", &headers, &event.body))
}

/// POST /invocation/{id}/response or /error.
fn answer(id: &str, answer: Answer, shared: &Shared) -> Vec<u8> {
    let mut st = shared.lock();
    if !st.in_flight.remove(id) {
        drop(st);
        note_unexpected(shared, format!("answer for unknown or answered request id {id:?}"));
        return error_reply("400 Bad Request", "InvalidRequestID", "Invalid request ID");
    }
    st.answers.insert(id.to_string(), answer);
    shared.changed.notify_all();
    accepted()
}

/// POST /invocations: queue the event, wait for the runtime's answer, return it as Lambda's
/// Invoke does (200, and X-Amz-Function-Error when the function failed).
fn invoke(body: Vec<u8>, shared: &Shared) -> Option<Vec<u8>> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let gives_up = Instant::now() + FUNCTION_TIMEOUT + INVOKE_GRACE;
    let mut st = shared.lock();
    st.ids += 1;
    let id = request_id(st.ids);
    let trace_id = trace_id(st.ids, now_ms);
    st.queue.push_back(Queued {
        id: id.clone(),
        body,
        deadline_ms: now_ms + FUNCTION_TIMEOUT.as_millis(),
        trace_id,
    });
    shared.changed.notify_all();
    let answer = loop {
        if let Some(answer) = st.answers.remove(&id) {
            st.last_delivery = Some((id.clone(), answer.delivery));
            break answer;
        }
        if st.stopping {
            return None;
        }
        let now = Instant::now();
        if st.runtime_gone || now >= gives_up {
            let why = if st.runtime_gone {
                "the runtime process exited"
            } else {
                "no answer from the runtime"
            };
            // Withdraw the event if the runtime never took it.
            st.queue.retain(|q| q.id != id);
            st.in_flight.remove(&id);
            return Some(error_reply("502 Bad Gateway", "Bench.NoAnswer", why));
        }
        st = shared.changed.wait_timeout(st, gives_up - now).unwrap_or_else(|e| e.into_inner()).0;
    };
    drop(st);
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("X-Amz-Request-Id", id),
        ("X-Amz-Executed-Version", "$LATEST".to_string()),
    ];
    if let Some(error_type) = &answer.error_type {
        headers.push(("X-Amz-Function-Error", "Unhandled".to_string()));
        headers.push(("X-Bench-Error-Type", error_type.clone()));
    }
    Some(http::response("200 OK", &headers, &answer.body))
}

/// A UUID-shaped request id, different in every run.
fn request_id(seq: u64) -> String {
    let a = mix(seq ^ process_salt());
    let b = mix(a ^ seq.rotate_left(17));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// An X-Ray trace header as Lambda sends it.
fn trace_id(seq: u64, now_ms: u128) -> String {
    let r = mix(seq.wrapping_add(process_salt()));
    format!(
        "Root=1-{:08x}-{:016x}{:08x};Parent={:016x};Sampled=0",
        (now_ms / 1000) as u32,
        r,
        seq as u32,
        mix(r)
    )
}

fn process_salt() -> u64 {
    use std::sync::OnceLock;
    static SALT: OnceLock<u64> = OnceLock::new();
    *SALT.get_or_init(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        mix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
    })
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_lambdas() {
        let id = request_id(1);
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(request_id(1), request_id(2));
        assert!(trace_id(1, 1_700_000_000_000).starts_with("Root=1-6553f100-"));
    }
}
