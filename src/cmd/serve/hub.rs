//! Where the two servers of `bootstrap serve` meet: invocations the Invoke API accepted wait
//! here in a bounded queue until the Lambda loop asks the loopback Runtime API for the next
//! one; while it runs, the answer the loop posts (a response, a stream, or an error) is routed
//! back to the caller that waits for it. No HTTP and no processes here.
//!
//! Each running invocation also keeps the last 4 KB of its log, when its caller asked for
//! `X-Amz-Log-Type: Tail`: the log tap (see `host`) hands every record that names a request
//! id to `append_log`.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::platform_log::{self, Status};
use super::{host, ids};

/// How much of an invocation's log `X-Amz-Log-Result` carries, as on Lambda.
pub const LOG_TAIL_BYTES: usize = 4096;
/// The Runtime API's `Lambda-Runtime-Function-Error-Type` when nothing better is known.
const UNHANDLED: &str = "Function.Unhandled";

/// Settings that hold for every invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The function timeout: each invocation's deadline is this long after it starts.
    pub timeout: Duration,
    /// `Memory Size` in the REPORT line (Lambda's configured memory; not enforced here).
    pub memory_size_mb: u32,
    /// Invocations that may wait for a free loop before callers get 429.
    pub max_waiting: usize,
    /// Event bytes that may wait in all, before callers get 429.
    pub max_waiting_bytes: usize,
    /// JSON platform records (`AWS_LAMBDA_LOG_FORMAT=JSON`) instead of text lines.
    pub json_logs: bool,
}

/// One accepted invocation.
pub struct Job {
    pub id: String,
    pub event: Vec<u8>,
    /// The function name from the request path, for the invoked function ARN.
    pub function_name: String,
    /// `X-Amz-Client-Context`, decoded: JSON text without line breaks.
    pub client_context: Option<String>,
    pub tenant_id: Option<String>,
    /// Whether the caller wants the log tail.
    pub tail: bool,
    pub reply: Reply,
}

/// How the answer goes back to the caller.
pub enum Reply {
    /// `RequestResponse`: one answer, when the function is done.
    Buffered(SyncSender<Finished>),
    /// `InvokeWithResponseStream`: the response as it is written, then its end. The channel is
    /// bounded, so a caller that reads slowly holds the handler back instead of filling memory.
    Streamed(SyncSender<Part>),
    /// `Event`: nobody waits.
    Background,
}

/// What a buffered caller gets.
pub struct Finished {
    pub answer: Answer,
    /// The log tail, when asked for.
    pub log_tail: Option<Vec<u8>>,
}

/// The function's answer.
pub enum Answer {
    Response(Vec<u8>),
    /// The error document as the runtime posted it, and its error type.
    Error {
        error_type: String,
        body: Vec<u8>,
    },
}

/// A piece of a streamed answer.
pub enum Part {
    Chunk(Vec<u8>),
    /// The end: `error` when the function failed (before or after output started).
    End {
        error: Option<(String, Vec<u8>)>,
        log_tail: Option<Vec<u8>>,
    },
}

/// What the Runtime API's `/next` hands out.
pub struct Dispatched {
    pub id: String,
    pub event: Vec<u8>,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub tenant_id: Option<String>,
}

/// Where the bytes of a streamed `/response` post go.
pub enum StreamTarget {
    Forward(SyncSender<Part>),
    /// A buffered caller: the connection collects the stream and posts it whole.
    Collect,
    /// Nobody reads it (an `Event` invocation).
    Discard,
    /// No such invocation is running.
    Unknown,
}

/// Why `submit` refused an invocation.
pub enum Refused {
    /// `max_waiting` invocations, or `max_waiting_bytes` of events, are already waiting.
    Busy { invocations: usize, bytes: usize },
}

/// An invocation between `/next` and its answer.
struct Running {
    reply: Reply,
    tail: bool,
    started: Instant,
    function_name: String,
}

struct State {
    waiting: VecDeque<Job>,
    /// The event bytes of `waiting`.
    waiting_bytes: usize,
    running: HashMap<String, Running>,
}

pub struct Hub {
    settings: Settings,
    state: Mutex<State>,
    work: Condvar,
    /// Log tails by request id; apart from `state`, so that logging never waits for the queue.
    tails: Mutex<HashMap<String, Vec<u8>>>,
}

impl Hub {
    pub fn new(settings: Settings) -> Hub {
        Hub {
            settings,
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                waiting_bytes: 0,
                running: HashMap::new(),
            }),
            work: Condvar::new(),
            tails: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tails(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.tails.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an invocation for the next free loop.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        let mut state = self.state();
        let bytes = state.waiting_bytes + job.event.len();
        if state.waiting.len() >= self.settings.max_waiting
            || (bytes > self.settings.max_waiting_bytes && !state.waiting.is_empty())
        {
            return Err(Refused::Busy {
                invocations: state.waiting.len(),
                bytes: state.waiting_bytes,
            });
        }
        state.waiting_bytes = bytes;
        state.waiting.push_back(job);
        self.work.notify_one();
        Ok(())
    }

    /// Blocks until an invocation is waiting and hands it out (the Runtime API's `/next`).
    /// Once a shutdown has begun, waiting invocations are answered with the shutdown error
    /// instead, and this never returns: the process is about to exit.
    pub fn next(&self) -> Dispatched {
        let mut state = self.state();
        loop {
            if host::shutting_down() {
                let jobs: Vec<Job> = state.waiting.drain(..).collect();
                state.waiting_bytes = 0;
                drop(state);
                for job in jobs {
                    let (error_type, body) = host::shutdown_error();
                    let answer = Answer::Error { error_type, body };
                    deliver(job.reply, answer, None);
                }
                state = self.state();
                state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            match state.waiting.pop_front() {
                Some(job) => {
                    state.waiting_bytes -= job.event.len();
                    return self.dispatch(state, job);
                }
                None => state = self.work.wait(state).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    fn dispatch(&self, mut state: MutexGuard<'_, State>, job: Job) -> Dispatched {
        let Job { id, event, function_name, client_context, tenant_id, tail, reply } = job;
        let started = Instant::now();
        let running = Running { reply, tail, started, function_name: function_name.clone() };
        state.running.insert(id.clone(), running);
        drop(state);
        if tail {
            self.tails().insert(id.clone(), Vec::new());
        }
        self.platform_line(&id, tail, &platform_log::start(&id, self.settings.json_logs));
        let deadline = SystemTime::now() + self.settings.timeout;
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        Dispatched {
            function_arn: format!("arn:aws:lambda:us-east-1:012345678912:function:{function_name}"),
            trace_id: ids::trace_id(),
            deadline_ms: u64::try_from(deadline_ms).unwrap_or(u64::MAX),
            id,
            event,
            client_context,
            tenant_id,
        }
    }

    /// Puts an invocation that `/next` could not hand over (its poller went away) back at the
    /// front of the queue, for the next poller.
    pub fn return_unsent(&self, dispatched: Dispatched) {
        let Dispatched { id, event, client_context, tenant_id, .. } = dispatched;
        if let Some(tail) = self.tails().get_mut(&id) {
            tail.clear();
        }
        let mut state = self.state();
        let Some(running) = state.running.remove(&id) else { return };
        let Running { reply, tail, function_name, .. } = running;
        state.waiting_bytes += event.len();
        let job = Job { id, event, function_name, client_context, tenant_id, tail, reply };
        state.waiting.push_front(job);
        self.work.notify_one();
    }

    /// Where a streamed `/response` for `id` goes; the invocation stays running until
    /// `finish`.
    pub fn open_stream(&self, id: &str) -> StreamTarget {
        match self.state().running.get(id).map(|r| &r.reply) {
            None => StreamTarget::Unknown,
            Some(Reply::Streamed(sender)) => StreamTarget::Forward(sender.clone()),
            Some(Reply::Buffered(_)) => StreamTarget::Collect,
            Some(Reply::Background) => StreamTarget::Discard,
        }
    }

    /// Whether `id` is running (a post for anything else is refused).
    pub fn is_running(&self, id: &str) -> bool {
        self.state().running.contains_key(id)
    }

    /// Ends a running invocation with its answer: the END and REPORT records, then the
    /// answer to its caller. `false` when no such invocation is running.
    pub fn finish(&self, id: &str, answer: Answer) -> bool {
        let Some(running) = self.state().running.remove(id) else { return false };
        let duration = running.started.elapsed();
        let status = match &answer {
            Answer::Response(_) => Status::Success,
            Answer::Error { error_type, .. } if error_type == host::TIMEOUT => Status::Timeout,
            Answer::Error { .. } => Status::Error,
        };
        let json = self.settings.json_logs;
        let memory = self.settings.memory_size_mb;
        let records = |tail| {
            self.platform_line(id, tail, &platform_log::end(id, status, json));
            let report = platform_log::report(id, status, duration, memory, json);
            self.platform_line(id, tail, &report);
        };
        if running.tail {
            // The caller's log tail ends with the REPORT line, as on Lambda.
            records(true);
            let log_tail = self.tails().remove(id);
            deliver(running.reply, answer, log_tail);
        } else {
            // Nobody reads this log from the answer: answer first, then measure and log.
            deliver(running.reply, answer, None);
            records(false);
        }
        true
    }

    /// A copy of a log record of invocation `id`, kept if its caller asked for the tail.
    pub fn append_log(&self, id: &str, bytes: &[u8]) {
        let mut tails = self.tails();
        if let Some(tail) = tails.get_mut(id) {
            keep_last(tail, bytes, LOG_TAIL_BYTES);
        }
    }

    /// Writes one platform record to the log, and to the invocation's tail.
    fn platform_line(&self, id: &str, tail: bool, line: &str) {
        platform_log::write(line);
        if tail {
            self.append_log(id, format!("{line}\n").as_bytes());
        }
    }
}

/// Sends the answer the way its caller waits for it. A caller that has gone away (closed its
/// connection) simply does not get it.
fn deliver(reply: Reply, answer: Answer, log_tail: Option<Vec<u8>>) {
    match reply {
        Reply::Buffered(sender) => {
            let _ = sender.send(Finished { answer, log_tail });
        }
        Reply::Streamed(sender) => {
            let error = match answer {
                // A buffered response to a streaming caller is one chunk.
                Answer::Response(body) => {
                    if !body.is_empty() {
                        let _ = sender.send(Part::Chunk(body));
                    }
                    None
                }
                Answer::Error { error_type, body } => Some((error_type, body)),
            };
            let _ = sender.send(Part::End { error, log_tail });
        }
        Reply::Background => {}
    }
}

/// Appends `bytes` to `buffer`, keeping only its last `limit` bytes.
fn keep_last(buffer: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    if bytes.len() >= limit {
        buffer.clear();
        buffer.extend_from_slice(&bytes[bytes.len() - limit..]);
        return;
    }
    buffer.extend_from_slice(bytes);
    if buffer.len() > limit {
        buffer.drain(..buffer.len() - limit);
    }
}

/// The error type of an error post, from its header or else from its document.
pub fn error_type_of(header: Option<&str>, body: &[u8]) -> String {
    if let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) {
        return header.to_string();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| UNHANDLED.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut tail = Vec::new();
        keep_last(&mut tail, b"abcdef", 4);
        assert_eq!(tail, b"cdef");
        keep_last(&mut tail, b"gh", 4);
        assert_eq!(tail, b"efgh");
        keep_last(&mut tail, b"0123456789", 4);
        assert_eq!(tail, b"6789");
    }

    #[test]
    fn the_error_type_comes_from_the_header_then_the_document() {
        assert_eq!(error_type_of(Some("Runtime.ExitError"), b"{}"), "Runtime.ExitError");
        assert_eq!(error_type_of(None, br#"{"errorType":"ValueError"}"#), "ValueError");
        assert_eq!(error_type_of(Some(" "), b"not json"), UNHANDLED);
    }
}
