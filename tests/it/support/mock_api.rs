//! A Lambda Runtime API on loopback, on `std::net` alone: real HTTP/1.1 with keep-alive, a
//! real long poll on `/next` (held open until an event is queued), and every POST recorded.
//! Options mimic what local emulators do differently: a path prefix, and 204 on an idle `/next`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a test waits for something the binary should do at once; a guard, not a delay.
pub const PATIENCE: Duration = Duration::from_secs(20);

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
                (
                    "Lambda-Runtime-Invoked-Function-Arn".into(),
                    "arn:aws:lambda:us-east-1:123456789012:function:test".into(),
                ),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: body.into(),
        }
    }

    /// A bare status answer (e.g. 500) with a Runtime API error body.
    pub fn status(status: u16) -> Event {
        Event {
            status,
            headers: Vec::new(),
            body: br#"{"errorType":"InternalServerError","errorMessage":"injected"}"#.to_vec(),
        }
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

    pub fn deadline_in(self, d: Duration) -> Event {
        self.header("Lambda-Runtime-Deadline-Ms", &deadline_in(d))
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
    pub body: Vec<u8>,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("post to {} is not JSON ({e}): {}", self.path, self.body_text())
        })
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    closed: bool,
    polls: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    idle_204: bool,
    connections: AtomicUsize,
}

/// The server. Dropping it stops answering `/next` (held polls get a 500).
pub struct MockApi {
    addr: SocketAddr,
    prefix: String,
    shared: Arc<Shared>,
    posts: Receiver<Post>,
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
        });
        let (tx, posts) = mpsc::channel();
        let accept_shared = Arc::clone(&shared);
        let accept_prefix = prefix.to_string();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accept_shared);
                let tx = tx.clone();
                let prefix = accept_prefix.clone();
                thread::spawn(move || serve_connection(stream, &shared, &tx, &prefix));
            }
        });
        MockApi { addr, prefix: prefix.to_string(), shared, posts }
    }

    /// `127.0.0.1:PORT` plus the prefix, as `AWS_LAMBDA_RUNTIME_API` would hold it.
    pub fn address(&self) -> String {
        format!("{}{}", self.addr, self.prefix)
    }

    pub fn push(&self, event: Event) {
        let mut queue = self.shared.queue.lock().expect("queue lock");
        queue.events.push_back(event);
        self.shared.ready.notify_all();
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

    /// A POST that arrives within `within`, if any; for proving that nothing more was posted.
    pub fn try_post(&self, within: Duration) -> Option<Post> {
        self.posts.recv_timeout(within).ok()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many `/next` requests have arrived so far.
    pub fn next_requests_made(&self) -> usize {
        self.shared.queue.lock().expect("queue lock").polls
    }

    /// Blocks until `/next` has been requested `n` times in all.
    #[track_caller]
    pub fn wait_for_polls(&self, n: usize) {
        let queue = self.shared.queue.lock().expect("queue lock");
        let (queue, timeout) = self
            .shared
            .ready
            .wait_timeout_while(queue, PATIENCE, |q| q.polls < n)
            .expect("queue lock");
        assert!(
            !timeout.timed_out(),
            "only {} /next requests within {PATIENCE:?}, want {n}",
            queue.polls
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

fn serve_connection(stream: TcpStream, shared: &Shared, posts: &Sender<Post>, prefix: &str) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    while let Some((method, path, headers, body)) = read_request(&mut reader) {
        let base = format!("{prefix}/2018-06-01");
        let answer = if method == "GET" && path == format!("{base}/runtime/invocation/next") {
            next_event(shared)
        } else if method == "POST" && path.starts_with(&base) {
            let _ = posts.send(Post { path, headers, body });
            Event { status: 202, headers: Vec::new(), body: br#"{"status":"OK"}"#.to_vec() }
        } else {
            Event { status: 404, headers: Vec::new(), body: b"not a Runtime API path".to_vec() }
        };
        if write_response(&mut writer, &answer).is_err() {
            return;
        }
    }
}

fn next_event(shared: &Shared) -> Event {
    let mut queue = shared.queue.lock().expect("queue lock");
    queue.polls += 1;
    shared.ready.notify_all();
    loop {
        if let Some(event) = queue.events.pop_front() {
            return event;
        }
        if queue.closed {
            return Event::status(500);
        }
        if shared.idle_204 {
            return Event { status: 204, headers: Vec::new(), body: Vec::new() };
        }
        queue = shared.ready.wait(queue).expect("queue lock");
    }
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
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
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let len: usize = find("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some((method, path, headers, body))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok()?;
                if trailer.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn write_response(writer: &mut TcpStream, answer: &Event) -> std::io::Result<()> {
    let mut head =
        format!("HTTP/1.1 {} Status\r\nContent-Length: {}\r\n", answer.status, answer.body.len());
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(&answer.body);
    writer.write_all(&message)?;
    writer.flush()
}
