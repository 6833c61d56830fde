//! A Lambda Runtime API on loopback, on `std::net` alone: real HTTP/1.1 with keep-alive, a
//! real long poll on `/next` (held open until an event is queued), and every POST recorded.
//! Options mimic what local emulators do differently: a path prefix, and 204 on an idle `/next`.
//! A test can also script faults, one `Reply` per request: a status on a post, a hang-up, an
//! answer cut short or written slowly, a connection closed between requests.
//! A chunked POST (a streamed response) is seen as it arrives: each chunk is reported the moment
//! it is read, and its trailers are recorded with the post; `digest_streams` keeps only the
//! length and a checksum of big streams.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a test waits for something the binary should do at once; a guard, not a delay.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The function ARN of every `Event::new`.
pub const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";

/// One `/next` answer.
#[derive(Debug, Clone)]
pub struct Event {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Event {
    /// A 200 with the given id, a deadline 30 s away and a function ARN.
    pub fn new(id: &str, body: impl Into<Vec<u8>>) -> Event {
        Event {
            status: 200,
            headers: vec![
                ("Lambda-Runtime-Aws-Request-Id".into(), id.into()),
                ("Lambda-Runtime-Deadline-Ms".into(), deadline_in(Duration::from_secs(30))),
                ("Lambda-Runtime-Invoked-Function-Arn".into(), ARN.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: body.into(),
        }
    }

    /// The 202 that accepts a post.
    pub fn accepted() -> Event {
        Event { status: 202, headers: Vec::new(), body: br#"{"status":"OK"}"#.to_vec() }
    }

    /// A bare status answer (e.g. 500) with a Runtime API error body.
    pub fn status(status: u16) -> Event {
        Event::api_error(status, "InternalServerError")
    }

    /// A status answer with the error body the Runtime API sends, e.g. 403 `InvalidStateTransition`.
    pub fn api_error(status: u16, error_type: &str) -> Event {
        let body = serde_json::json!({ "errorType": error_type, "errorMessage": "injected" });
        Event { status, headers: Vec::new(), body: body.to_string().into_bytes() }
    }

    /// Sets (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Event {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Event {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Its request id header, which names the endpoints its result is posted to.
    #[track_caller]
    pub fn id(&self) -> &str {
        let id = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Lambda-Runtime-Aws-Request-Id"));
        id.map(|(_, v)| v.as_str()).expect("an event with a request id")
    }

    pub fn deadline_in(self, d: Duration) -> Event {
        self.header("Lambda-Runtime-Deadline-Ms", &deadline_in(d))
    }
}

/// How the mock answers one request: normally, or with a scripted fault. A fault that ends the
/// connection closes it the ordinary way: std cannot set `SO_LINGER` to force a reset.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A well-formed answer on a connection that stays open.
    Answer(Event),
    /// The answer with `Connection: close`, then the connection is closed.
    AnnouncedClose(Event),
    /// The answer, then the connection is closed without a word about it.
    SilentClose(Event),
    /// The answer, and the connection kept until the next request arrives on it, which is read
    /// and never answered: a server that closed the idle connection just as it was reused.
    CloseOnReuse(Event),
    /// The request is read, then the connection closed without a byte of answer.
    HangUp,
    /// The answer without its last `missing` bytes (its Content-Length still counts the
    /// whole body), then the connection is closed: cut in the body, or in the head.
    CutShort { event: Event, missing: usize },
    /// The head written in `pieces` parts, `gap` apart, then the body: a slow server.
    SlowHead { event: Event, pieces: usize, gap: Duration },
    /// The answer with one more header whose value is raw bytes (e.g. not UTF-8), which the
    /// string headers of `Event` cannot hold.
    RawHeader { event: Event, name: String, value: Vec<u8> },
}

impl From<Event> for Reply {
    fn from(event: Event) -> Reply {
        Reply::Answer(event)
    }
}

pub fn deadline_in(d: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    (now + d).as_millis().to_string()
}

/// One request the binary posted.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed; empty for a chunked body under `digest_streams`.
    pub body: Vec<u8>,
    /// The trailers after a chunked body, in order; empty for a Content-Length body.
    pub trailers: Vec<(String, String)>,
    /// The length and checksum of a chunked body under `digest_streams`, `None` otherwise.
    pub digest: Option<Digest>,
}

/// One chunk of a chunked POST, reported as soon as its bytes were read.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub path: String,
    /// The chunk's size as framed.
    pub len: usize,
    /// Its bytes; empty under `digest_streams`.
    pub bytes: Vec<u8>,
}

/// The length and FNV-1a 64 checksum of a byte stream, built up piece by piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub len: u64,
    pub fnv1a: u64,
}

impl Default for Digest {
    /// The digest of no bytes: FNV-1a's offset basis.
    fn default() -> Digest {
        Digest { len: 0, fnv1a: 0xcbf2_9ce4_8422_2325 }
    }
}

impl Digest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        for &b in bytes {
            self.fnv1a = (self.fnv1a ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("post to {} is not JSON ({e}): {}", self.path, self.body_text())
        })
    }

    /// The error document of a stream that failed: its `Lambda-Runtime-Function-Error-Body`
    /// trailer, decoded.
    #[track_caller]
    pub fn error_trailer(&self) -> serde_json::Value {
        let body = self.trailer("Lambda-Runtime-Function-Error-Body").expect("error body trailer");
        serde_json::from_slice(&super::decode_base64(body)).expect("the error body is JSON")
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Reply>,
    /// Answers for the next posts, in order; a post finding none gets a 202.
    post_replies: VecDeque<Reply>,
    closed: bool,
    /// When each `/next` request was taken up, before it was answered.
    polls: Vec<Instant>,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    idle_204: bool,
    connections: AtomicUsize,
    /// Keep only a `Digest` of chunked bodies.
    digest_streams: AtomicBool,
}

/// The server. Dropping it stops answering `/next` (held polls get a 500).
pub struct MockApi {
    addr: SocketAddr,
    prefix: String,
    shared: Arc<Shared>,
    posts: Receiver<Post>,
    chunks: Receiver<Chunk>,
}

impl MockApi {
    pub fn start() -> MockApi {
        MockApi::with_options("", false)
    }

    /// `prefix` like `/.rt` is put before `/2018-06-01`; `idle_204` answers an empty `/next`
    /// with 204 at once instead of holding it.
    pub fn with_options(prefix: &str, idle_204: bool) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            idle_204,
            connections: AtomicUsize::new(0),
            digest_streams: AtomicBool::new(false),
        });
        let (tx, posts) = mpsc::channel();
        let (chunk_tx, chunks) = mpsc::channel();
        let accept_shared = Arc::clone(&shared);
        let accept_prefix = prefix.to_string();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accept_shared);
                let tx = Senders { posts: tx.clone(), chunks: chunk_tx.clone() };
                let prefix = accept_prefix.clone();
                thread::spawn(move || serve_connection(stream, &shared, &tx, &prefix));
            }
        });
        MockApi { addr, prefix: prefix.to_string(), shared, posts, chunks }
    }

    /// Chunked bodies are not kept, only their length and checksum (`Post::digest`), and
    /// their chunks are reported without their bytes: for streams too big to hold twice.
    pub fn digest_streams(self) -> MockApi {
        self.shared.digest_streams.store(true, Ordering::SeqCst);
        self
    }

    /// `127.0.0.1:PORT` plus the prefix, as `AWS_LAMBDA_RUNTIME_API` would hold it.
    pub fn address(&self) -> String {
        format!("{}{}", self.addr, self.prefix)
    }

    /// Queues the answer to a `/next`: an `Event`, or a `Reply` for a fault.
    pub fn push(&self, reply: impl Into<Reply>) {
        let mut queue = self.shared.queue.lock().expect("queue lock");
        queue.events.push_back(reply.into());
        self.shared.ready.notify_all();
    }

    /// Queues the answer to a future POST (instead of a 202); each post takes the first.
    pub fn answer_post(&self, reply: impl Into<Reply>) {
        let mut queue = self.shared.queue.lock().expect("queue lock");
        queue.post_replies.push_back(reply.into());
    }

    /// The next POST, or a panic naming what was expected after `PATIENCE`.
    #[track_caller]
    pub fn next_post(&self) -> Post {
        self.posts
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no POST reached the mock Runtime API within {PATIENCE:?}"))
    }

    /// The next POST, expected at `path` (without the `/2018-06-01` base).
    #[track_caller]
    pub fn expect_post(&self, path: &str) -> Post {
        let post = self.next_post();
        let want = format!("{}/2018-06-01{path}", self.prefix);
        assert_eq!(post.path, want, "post went to the wrong endpoint; body: {}", post.body_text());
        post
    }

    /// The next chunk of a chunked POST, reported before the post is complete, or a panic
    /// after `PATIENCE`.
    #[track_caller]
    pub fn next_chunk(&self) -> Chunk {
        self.chunks.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("no chunk of a streamed POST reached the mock Runtime API within {PATIENCE:?}")
        })
    }

    /// A POST that arrives within `within`, if any; for proving that nothing more was posted.
    pub fn try_post(&self, within: Duration) -> Option<Post> {
        self.posts.recv_timeout(within).ok()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many `/next` requests have arrived so far.
    pub fn next_requests_made(&self) -> usize {
        self.shared.queue.lock().expect("queue lock").polls.len()
    }

    /// When each `/next` request so far was taken up. Each was recorded before it was
    /// answered, so the gap between two is at least the pause bootstrap made between them.
    pub fn poll_times(&self) -> Vec<Instant> {
        self.shared.queue.lock().expect("queue lock").polls.clone()
    }

    /// Blocks until `/next` has been requested `n` times in all.
    #[track_caller]
    pub fn wait_for_polls(&self, n: usize) {
        let queue = self.shared.queue.lock().expect("queue lock");
        let (queue, timeout) = self
            .shared
            .ready
            .wait_timeout_while(queue, PATIENCE, |q| q.polls.len() < n)
            .expect("queue lock");
        assert!(
            !timeout.timed_out(),
            "only {} /next requests within {PATIENCE:?}, want {n}",
            queue.polls.len()
        );
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

/// Where a connection reports what it read.
struct Senders {
    posts: Sender<Post>,
    chunks: Sender<Chunk>,
}

fn serve_connection(stream: TcpStream, shared: &Shared, senders: &Senders, prefix: &str) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    let mut close_on_reuse = false;
    while let Some(request) = read_request(&mut reader, shared, &senders.chunks) {
        let Request { method, path, headers, body, trailers, digest } = request;
        if close_on_reuse {
            return;
        }
        let base = format!("{prefix}/2018-06-01");
        let reply = if method == "GET" && path == format!("{base}/runtime/invocation/next") {
            next_event(shared)
        } else if method == "POST" && path.starts_with(&base) {
            let _ = senders.posts.send(Post { path, headers, body, trailers, digest });
            let scripted = shared.queue.lock().expect("queue lock").post_replies.pop_front();
            scripted.unwrap_or(Reply::Answer(Event::accepted()))
        } else {
            Reply::Answer(Event {
                status: 404,
                headers: Vec::new(),
                body: b"not a Runtime API path".to_vec(),
            })
        };
        match write_reply(&mut writer, &reply, shared) {
            Ok(Keep::Open) => {}
            Ok(Keep::UntilReuse) => close_on_reuse = true,
            Ok(Keep::Closed) | Err(_) => return,
        }
    }
}

/// What becomes of the connection after a reply.
enum Keep {
    Open,
    UntilReuse,
    Closed,
}

fn next_event(shared: &Shared) -> Reply {
    let mut queue = shared.queue.lock().expect("queue lock");
    queue.polls.push(Instant::now());
    shared.ready.notify_all();
    loop {
        if let Some(reply) = queue.events.pop_front() {
            return reply;
        }
        if queue.closed {
            return Reply::Answer(Event::status(500));
        }
        if shared.idle_204 {
            return Reply::Answer(Event { status: 204, headers: Vec::new(), body: Vec::new() });
        }
        queue = shared.ready.wait(queue).expect("queue lock");
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    digest: Option<Digest>,
}

/// A chunked body as read: its bytes (or only their digest) and its trailers.
struct Chunked {
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    digest: Option<Digest>,
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
    shared: &Shared,
    chunks: &Sender<Chunk>,
) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let chunked = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let is_digest = shared.digest_streams.load(Ordering::SeqCst);
        read_chunked(reader, &path, is_digest, chunks)?
    } else {
        let len: usize = find("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        Chunked { body, trailers: Vec::new(), digest: None }
    };
    let Chunked { body, trailers, digest } = chunked;
    Some(Request { method, path, headers, body, trailers, digest })
}

/// Reads a chunked body, reporting each chunk on `chunks` as soon as its bytes are in. With
/// `is_digest`, bytes pass through a fixed buffer into a `Digest` and are not kept.
fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    path: &str,
    is_digest: bool,
    chunks: &Sender<Chunk>,
) -> Option<Chunked> {
    let mut body = Vec::new();
    let mut digest = Digest::default();
    let mut buffer = if is_digest { vec![0; 64 * 1024] } else { Vec::new() };
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            // Trailers, then the empty line.
            let mut trailers = Vec::new();
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok()?;
                let trailer = trailer.trim_end();
                if trailer.is_empty() {
                    let digest = is_digest.then_some(digest);
                    return Some(Chunked { body, trailers, digest });
                }
                // A line without a colon is kept whole, for the test to see.
                let (name, value) = trailer.split_once(':').unwrap_or((trailer, ""));
                trailers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let bytes = if is_digest {
            let mut left = size;
            while left > 0 {
                let piece = &mut buffer[..left.min(64 * 1024)];
                reader.read_exact(piece).ok()?;
                digest.update(piece);
                left -= piece.len();
            }
            Vec::new()
        } else {
            let mut bytes = Vec::new();
            reader.by_ref().take(size as u64).read_to_end(&mut bytes).ok()?;
            if bytes.len() != size {
                return None;
            }
            body.extend_from_slice(&bytes);
            bytes
        };
        // Nobody listens once the test has dropped its `MockApi`; that is no error here.
        let _ = chunks.send(Chunk { path: path.to_string(), len: size, bytes });
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn write_reply(writer: &mut TcpStream, reply: &Reply, shared: &Shared) -> std::io::Result<Keep> {
    let keep = match reply {
        Reply::Answer(event) => {
            writer.write_all(&encode(event, None))?;
            Keep::Open
        }
        Reply::AnnouncedClose(event) => {
            let close = ("Connection", b"close".as_slice());
            writer.write_all(&encode(event, Some(close)))?;
            Keep::Closed
        }
        Reply::SilentClose(event) => {
            writer.write_all(&encode(event, None))?;
            Keep::Closed
        }
        Reply::CloseOnReuse(event) => {
            writer.write_all(&encode(event, None))?;
            Keep::UntilReuse
        }
        Reply::HangUp => Keep::Closed,
        Reply::CutShort { event, missing } => {
            let message = encode(event, None);
            writer.write_all(&message[..message.len().saturating_sub(*missing)])?;
            Keep::Closed
        }
        Reply::SlowHead { event, pieces, gap } => {
            let message = encode(event, None);
            let head_len = message.len() - event.body.len();
            let piece = head_len.div_ceil((*pieces).max(1));
            for part in message[..head_len].chunks(piece) {
                writer.write_all(part)?;
                writer.flush()?;
                shared.pause(*gap);
            }
            writer.write_all(&message[head_len..])?;
            Keep::Open
        }
        Reply::RawHeader { event, name, value } => {
            writer.write_all(&encode(event, Some((name, value))))?;
            Keep::Open
        }
    };
    writer.flush()?;
    Ok(keep)
}

impl Shared {
    /// Waits `gap`, as a slow server would; ends early once the `MockApi` is dropped.
    fn pause(&self, gap: Duration) {
        let queue = self.queue.lock().expect("queue lock");
        let (_queue, _) =
            self.ready.wait_timeout_while(queue, gap, |q| !q.closed).expect("queue lock");
    }
}

/// The whole HTTP/1.1 answer, with one extra header if given.
fn encode(answer: &Event, extra: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut head =
        format!("HTTP/1.1 {} Status\r\nContent-Length: {}\r\n", answer.status, answer.body.len());
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut message = head.into_bytes();
    if let Some((name, value)) = extra {
        message.extend_from_slice(format!("{name}: ").as_bytes());
        message.extend_from_slice(value);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"\r\n");
    message.extend_from_slice(&answer.body);
    message
}
