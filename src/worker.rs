//! Framed workers: a runner process that loads the handler once, then serves invocations sent
//! as frames on dedicated pipes, so that nothing a handler prints can corrupt one.
//!
//! The worker for the next event is started, and has loaded the handler, before bootstrap asks
//! `/next` for that event: the caller never waits for an interpreter to start. With
//! `events_per_process = 1` (the default) every event still gets a fresh process; with `N` a
//! worker serves N events; with `0` it lives as long as bootstrap. A worker that crashes, times
//! out or passes `max_rss_mb` is killed and replaced, and its event gets the error.
//!
//! The protocol, all on the runner's fds 3 (to the runner) and 4 (from it), header lines in
//! ASCII and payloads as raw bytes:
//!
//! ```text
//! runner → bootstrap   ready\n                      the handler is loaded
//!                      error <len>\n<json>          it could not be loaded (then it exits)
//! bootstrap → runner   invoke <ctx-len> <event-len>\n<context json><event>
//! runner → bootstrap   ok <len>\n<response>  |  error <len>\n<{"errorType",...}>
//!                  or  stream <len>\n<content type>, then chunk <len>\n<bytes> ..., then
//!                      ok or error: a streamed response, forwarded as the chunks come
//! ```
//!
//! End of file on fd 3 tells the runner to exit. Its stdout and stderr go to the log. Reports
//! from a worker's threads pass through a channel of one slot, so a runner that writes faster
//! than Lambda reads (or writes when nobody asked) is held back by its pipe, not buffered.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::handler::Handler;
use crate::invocation::{Diagnostic, Invocation};
use crate::invoke::{
    self, CurrentRequest, MAX_RESPONSE_BYTES, OpenStream, Outcome, ResponseStream, ScratchDir,
    StreamWriteError,
};
use crate::{info, process, shutdown, warn};

/// Set for a runner that should speak frames on fds 3 and 4.
pub const ENV_FRAMED: &str = "BOOTSTRAP_FRAMED";
/// How long bootstrap waits for a worker to load before asking `/next` anyway (Lambda's init
/// budget); the event then waits for the rest, within its own deadline.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How often a worker's memory is checked while it runs an event, when `max_rss_mb` is set.
const RSS_CHECK_EVERY: Duration = Duration::from_millis(50);
/// The default capacity of a Linux pipe: a write up to this size into an empty pipe never blocks.
const PIPE_BUFFER: usize = 64 * 1024;
/// How long a runner that closed its result pipe gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// The longest frame header line we accept.
const MAX_HEADER_LINE: u64 = 64;
/// The largest error document we accept from a runner.
const MAX_ERROR_FRAME: usize = 1024 * 1024;
/// The largest chunk frame of a streamed response.
const MAX_CHUNK_FRAME: usize = 1024 * 1024;
/// The longest Content-Type a `stream` frame may name.
const MAX_CONTENT_TYPE: usize = 256;

pub const INVALID_FRAME: &str = "Runtime.InvalidFrame";
pub const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";

/// The framed workers of one handler: at most one alive at a time.
pub struct Workers {
    handler: Handler,
    current: Option<Worker>,
}

impl Workers {
    pub fn new(handler: Handler) -> Workers {
        Workers { handler, current: None }
    }

    /// Starts the worker for the next event, if none is running, and gives it `READY_WAIT` to
    /// load the handler. Called before asking `/next`.
    pub fn prepare(&mut self) {
        let worker = self.current.get_or_insert_with(|| Worker::start(&self.handler));
        worker.wait_ready(Instant::now() + READY_WAIT);
    }

    /// Runs one event on the current worker (starting one if needed), then retires the worker
    /// if it is used up, broken or too big. `stream` opens the response stream if the runner
    /// answers with one.
    pub fn invoke(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        let mut worker = self.current.take().unwrap_or_else(|| Worker::start(&self.handler));
        let outcome = worker.invoke(invocation, &self.handler, stream);
        let limit = self.handler.events_per_process();
        let used_up = limit != 0 && worker.served >= limit;
        if worker.is_healthy() && !used_up && !worker.is_over_memory(&self.handler) {
            self.current = Some(worker);
        } else {
            worker.retire();
        }
        outcome
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(worker) = self.current.take() {
            worker.retire();
        }
    }
}

/// What a worker's threads report.
enum Report {
    Ready,
    Result(Outcome),
    /// The runner opens a streamed response with this Content-Type.
    StreamOpen(String),
    /// Bytes of the streamed response.
    Chunk(Vec<u8>),
    /// The runner announced a response over Lambda's limit; reading stopped.
    TooLarge,
    /// The result pipe closed or carried garbage.
    Closed(Option<String>),
    /// The runner process exited (it is a zombie until `retire` reaps it).
    Exited,
}

enum State {
    Loading,
    Ready,
    /// The worker cannot serve events; every event sent to it gets this error.
    Broken(Diagnostic),
}

struct Worker {
    child: Option<Child>,
    /// Our end of the runner's fd 3.
    invocations: Option<File>,
    reports: Receiver<Report>,
    state: State,
    served: u32,
    exited: bool,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// The event the worker is on, for the log records of what it prints.
    current: CurrentRequest,
    /// Its private TMPDIR when invocations run concurrently; removed with the worker.
    _scratch: Option<ScratchDir>,
}

impl Worker {
    fn start(handler: &Handler) -> Worker {
        let (reports_tx, reports) = mpsc::sync_channel(1);
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let broken = |diagnostic| Worker {
            child: None,
            invocations: None,
            reports: mpsc::sync_channel(0).1,
            state: State::Broken(diagnostic),
            served: 0,
            exited: true,
            stderr_tail: Arc::clone(&stderr_tail),
            current: CurrentRequest::default(),
            _scratch: None,
        };
        let scratch = match handler.private_tmp.then(ScratchDir::create).transpose() {
            Ok(scratch) => scratch,
            Err(e) => {
                let message = format!("cannot create a private TMPDIR: {e}");
                return broken(Diagnostic::new(invoke::SPAWN_ERROR, message));
            }
        };
        let (child, invocations, results) = match spawn_runner(handler, scratch.as_ref()) {
            Ok(parts) => parts,
            Err(e) => return broken(invoke::spawn_error(&e, handler)),
        };
        let pid = child.id();
        let mut child = child;
        let current = CurrentRequest::default();
        if let Some(stdout) = child.stdout.take() {
            let current = Arc::clone(&current);
            invoke::spawn(move || invoke::copy_to_log(stdout, &current, |_| {}));
        }
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            let current = Arc::clone(&current);
            invoke::spawn(move || {
                invoke::copy_to_log(stderr, &current, |bytes| {
                    invoke::keep_tail(&mut tail.lock().unwrap_or_else(|e| e.into_inner()), bytes)
                })
            });
        }
        let tx = reports_tx.clone();
        invoke::spawn(move || read_frames(results, &tx));
        invoke::spawn(move || {
            // If waitid fails the child is not ours to wait for; report it gone.
            let _ = process::wait_exited_unreaped(pid);
            let _ = reports_tx.send(Report::Exited);
        });
        Worker {
            child: Some(child),
            invocations: Some(invocations),
            reports,
            state: State::Loading,
            served: 0,
            exited: false,
            stderr_tail,
            current,
            _scratch: scratch,
        }
    }

    fn set_current(&self, id: String) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    fn is_healthy(&self) -> bool {
        matches!(self.state, State::Ready) && !self.exited
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn is_over_memory(&self, handler: &Handler) -> bool {
        let (Some(limit), Some(pid)) = (handler.max_rss_mb(), self.pid()) else { return false };
        let over = process::resident_mib(pid).is_some_and(|mib| mib > limit);
        if over {
            info!("worker {pid} is over max_rss_mb = {limit}: replacing it");
        }
        over
    }

    /// Waits until the runner has loaded the handler, failed to, or `until` passes.
    fn wait_ready(&mut self, mut until: Instant) {
        while matches!(self.state, State::Loading) {
            let report =
                match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(report) => report,
                    // It exited, but something it started still holds its result pipe.
                    Err(RecvTimeoutError::Timeout) if self.exited => Report::Closed(None),
                    Err(RecvTimeoutError::Timeout) => return,
                    Err(RecvTimeoutError::Disconnected) => Report::Closed(None),
                };
            match report {
                Report::Ready => self.state = State::Ready,
                Report::Result(Outcome::Failed(diagnostic)) => {
                    self.state = State::Broken(diagnostic)
                }
                Report::Result(Outcome::Response(_) | Outcome::Streamed { .. })
                | Report::TooLarge
                | Report::StreamOpen(_)
                | Report::Chunk(_) => {
                    self.state = State::Broken(invalid_frame("a result before it was ready"));
                }
                Report::Closed(why) => self.state = State::Broken(self.death(why, until)),
                // Its last frame may still be in the pipe: read on until the pipe closes.
                Report::Exited => until = self.note_exit(until),
            }
        }
    }

    /// Records that the runner exited, and how much longer its pipe may take to close.
    fn note_exit(&mut self, until: Instant) -> Instant {
        self.exited = true;
        until.min(Instant::now() + EXIT_WAIT)
    }

    fn invoke(
        &mut self,
        invocation: &Invocation,
        handler: &Handler,
        stream: OpenStream,
    ) -> Outcome {
        let kill_at = invoke::kill_at(invocation);
        let started = Instant::now();
        self.wait_ready(kill_at);
        match &self.state {
            State::Broken(diagnostic) => return Outcome::Failed(diagnostic.clone()),
            State::Loading => {
                self.kill();
                return Outcome::Failed(invoke::timeout_diagnostic(started.elapsed()));
            }
            State::Ready => {}
        }
        self.served += 1;
        self.set_current(invocation.request_id.to_string());
        self.send(invocation);
        // The id stays until the next event: output read after the result is still this event's.
        let mut answer = Answer { open: Some(stream), stream: None, bytes: 0 };
        let mut outcome = self.await_result(kill_at, started, handler, &mut answer);
        if shutdown::requested() {
            outcome = Outcome::Failed(invoke::shutdown_diagnostic());
        }
        answer.settle(outcome)
    }

    /// Writes the invocation frame. A frame that fits in the pipe's buffer (64 KiB on Linux)
    /// cannot block, since the runner is waiting for it with an empty pipe; a bigger one is
    /// written from its own thread, so that a runner that stopped reading cannot block us past
    /// the deadline.
    fn send(&mut self, invocation: &Invocation) {
        let context = context_json(invocation);
        let header = format!("invoke {} {}\n", context.len(), invocation.event.len());
        let frame_len = header.len() + context.len() + invocation.event.len();
        if frame_len <= PIPE_BUFFER
            && let Some(pipe) = self.invocations.as_mut()
        {
            let mut frame = Vec::with_capacity(frame_len);
            frame.extend_from_slice(header.as_bytes());
            frame.extend_from_slice(context.as_bytes());
            frame.extend_from_slice(&invocation.event);
            // A runner that died makes this fail with EPIPE; the reader reports the death.
            let _ = pipe.write_all(&frame);
            return;
        }
        let Some(pipe) = self.invocations.as_ref().and_then(|p| p.try_clone().ok()) else { return };
        let event = invocation.event.clone();
        invoke::spawn(move || {
            let mut pipe = pipe;
            // A runner that died makes this fail with EPIPE; the reader reports the death.
            let _ = pipe
                .write_all(header.as_bytes())
                .and_then(|()| pipe.write_all(context.as_bytes()))
                .and_then(|()| pipe.write_all(&event));
        });
    }

    fn await_result(
        &mut self,
        kill_at: Instant,
        started: Instant,
        handler: &Handler,
        answer: &mut Answer,
    ) -> Outcome {
        let mut until = kill_at;
        loop {
            let mut wait = until.saturating_duration_since(Instant::now());
            if handler.max_rss_mb().is_some() {
                wait = wait.min(RSS_CHECK_EVERY);
            }
            match self.reports.recv_timeout(wait) {
                Ok(Report::Result(outcome)) => return outcome,
                Ok(Report::StreamOpen(content_type)) => {
                    let Some(open) = answer.open.take() else {
                        self.kill();
                        return Outcome::Failed(invalid_frame("a second \"stream\" frame"));
                    };
                    match open(&content_type) {
                        Ok(stream) => answer.stream = Some(stream),
                        Err(why) => {
                            self.kill();
                            return Outcome::Streamed { bytes: 0, failure: None, answer: Err(why) };
                        }
                    }
                }
                Ok(Report::Chunk(bytes)) => {
                    let Some(stream) = answer.stream.as_mut() else {
                        self.kill();
                        return Outcome::Failed(invalid_frame("a chunk before a \"stream\" frame"));
                    };
                    match stream.write(&bytes) {
                        Ok(()) => answer.bytes += bytes.len() as u64,
                        Err(StreamWriteError::TooLarge(limit)) => {
                            self.kill();
                            return Outcome::Failed(invoke::streamed_too_large_diagnostic(limit));
                        }
                        Err(StreamWriteError::Broken(why)) => {
                            self.kill();
                            answer.stream = None;
                            let bytes = answer.bytes;
                            return Outcome::Streamed { bytes, failure: None, answer: Err(why) };
                        }
                    }
                }
                Ok(Report::Ready) => {
                    self.kill();
                    return Outcome::Failed(invalid_frame("\"ready\" while an event was running"));
                }
                Ok(Report::TooLarge) => {
                    self.kill();
                    return Outcome::Failed(invoke::too_large_diagnostic());
                }
                Ok(Report::Closed(why)) => return Outcome::Failed(self.death(why, kill_at)),
                // Its last frame may still be in the pipe: read on until the pipe closes.
                Ok(Report::Exited) => until = self.note_exit(until),
                Err(RecvTimeoutError::Timeout) if self.exited && Instant::now() >= until => {
                    return Outcome::Failed(self.death(None, kill_at));
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= kill_at => {
                    self.kill();
                    return Outcome::Failed(invoke::timeout_diagnostic(started.elapsed()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(limit) = handler.max_rss_mb()
                        && let Some(mib) = self.pid().and_then(process::resident_mib)
                        && mib > limit
                    {
                        self.kill();
                        return Outcome::Failed(Diagnostic::new(
                            OUT_OF_MEMORY,
                            format!(
                                "the worker used {mib} MiB, over max_rss_mb = {limit}, and was killed\n\
                                 hint: raise max_rss_mb under {}, or lower events_per_process",
                                handler.setting()
                            ),
                        ));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Outcome::Failed(self.death(None, kill_at));
                }
            }
        }
    }

    /// The error for a runner that stopped talking: garbage on its result pipe (`why`), or the
    /// pipe closed because it is exiting, when we wait (at most until `until`) for its status.
    fn death(&mut self, why: Option<String>, until: Instant) -> Diagnostic {
        if let Some(why) = why {
            self.kill();
            return invalid_frame(&why);
        }
        let until = until.min(Instant::now() + EXIT_WAIT);
        while !self.exited {
            match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Report::Exited) => self.exited = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.state = State::Broken(Diagnostic::new(invoke::EXIT_ERROR, "the worker died"));
        if !self.exited {
            self.kill();
            return Diagnostic::new(
                invoke::EXIT_ERROR,
                "the worker closed its result pipe but did not exit",
            );
        }
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match self.reap() {
            Some(status) => invoke::exit_diagnostic(status, &tail),
            None => Diagnostic::new(invoke::EXIT_ERROR, "the worker exited"),
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            process::kill_group(pid);
        }
        self.state = State::Broken(Diagnostic::new(invoke::EXIT_ERROR, "the worker was killed"));
    }

    /// Reaps the runner after killing what is left of its group. Its pid is only safe to
    /// signal until then.
    fn reap(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id();
        process::kill_group(pid);
        let status = shutdown::untrack_reaping(pid, || child.wait().ok());
        shutdown::sweep_orphans();
        status
    }

    /// Closes the runner's fd 3 (it exits at end of file), then makes sure it and everything
    /// it started are gone.
    fn retire(mut self) {
        self.invocations = None;
        if self.reap().is_some() {
            return;
        }
        if let State::Broken(d) = &self.state {
            warn!("worker not started: {}", d.error_message);
        }
    }
}

/// A streamed answer while it lasts: the opener until a `stream` frame, then the stream.
struct Answer {
    open: Option<OpenStream>,
    stream: Option<Box<dyn ResponseStream>>,
    bytes: u64,
}

impl Answer {
    /// The event's outcome; when a stream was opened, the stream ended by it: the last bytes
    /// of an `ok` frame and a clean end, or the error as trailers.
    fn settle(self, outcome: Outcome) -> Outcome {
        let Some(mut stream) = self.stream else { return outcome };
        let mut bytes = self.bytes;
        let failure = match outcome {
            Outcome::Streamed { .. } => return outcome,
            Outcome::Failed(diagnostic) => Some(diagnostic),
            Outcome::Response(body) if body.is_empty() => None,
            Outcome::Response(body) => match stream.write(&body) {
                Ok(()) => {
                    bytes += body.len() as u64;
                    None
                }
                Err(StreamWriteError::TooLarge(limit)) => {
                    Some(invoke::streamed_too_large_diagnostic(limit))
                }
                Err(StreamWriteError::Broken(why)) => {
                    return Outcome::Streamed { bytes, failure: None, answer: Err(why) };
                }
            },
        };
        let answer = match &failure {
            None => stream.finish(),
            Some(diagnostic) => stream.fail(diagnostic),
        };
        Outcome::Streamed { bytes, failure, answer }
    }
}

fn invalid_frame(why: &str) -> Diagnostic {
    Diagnostic::new(INVALID_FRAME, format!("the language runner broke the frame protocol: {why}"))
}

/// Starts the runner with frames on fds 3 and 4, in its own process group.
fn spawn_runner(
    handler: &Handler,
    scratch: Option<&ScratchDir>,
) -> io::Result<(Child, File, File)> {
    let (to_runner_read, to_runner_write) = io::pipe()?;
    let (from_runner_read, from_runner_write) = io::pipe()?;
    let mut command = invoke::base_command(handler);
    command.args(handler.args.iter().map(|a| a.render(|_| Vec::new())));
    for name in invoke::PER_EVENT_VARIABLES {
        command.env_remove(name);
    }
    if let Some(scratch) = scratch {
        scratch.apply(&mut command);
    }
    command.env(ENV_FRAMED, "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    process::pass_fds(&mut command, [to_runner_read.as_raw_fd(), from_runner_write.as_raw_fd()]);
    let child = shutdown::spawn_tracked(&mut command)?;
    // The child has its copies; ours of its ends must close, or we would never see EOF.
    drop(to_runner_read);
    drop(from_runner_write);
    Ok((
        child,
        File::from(OwnedFd::from(to_runner_write)),
        File::from(OwnedFd::from(from_runner_read)),
    ))
}

/// The context frame: the `/next` metadata as a JSON object, keys in a fixed order.
fn context_json(inv: &Invocation) -> String {
    let text = |v: &Option<String>| serde_json::to_string(v).expect("BUG: strings serialize");
    format!(
        "{{\"aws_request_id\":{},\"deadline_ms\":{},\"invoked_function_arn\":{},\"trace_id\":{},\
         \"client_context\":{},\"cognito_identity\":{},\"tenant_id\":{}}}",
        text(&Some(inv.request_id.to_string())),
        inv.deadline.epoch_ms(),
        text(&inv.invoked_function_arn),
        text(&inv.trace_id),
        text(&inv.client_context),
        text(&inv.cognito_identity),
        text(&inv.tenant_id),
    )
}

/// Reads frames from the runner's fd 4 until it closes or misbehaves.
fn read_frames(results: File, reports: &mpsc::SyncSender<Report>) {
    let mut reader = BufReader::new(results);
    loop {
        let report = match read_frame(&mut reader) {
            Ok(Some(report)) => report,
            Ok(None) => Report::Closed(None),
            Err(why) => Report::Closed(Some(why)),
        };
        let last = matches!(report, Report::Closed(_) | Report::TooLarge);
        if reports.send(report).is_err() || last {
            return;
        }
    }
}

/// One frame; `Ok(None)` at end of file.
fn read_frame(reader: &mut impl BufRead) -> Result<Option<Report>, String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_HEADER_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Ok(None);
    }
    let header = String::from_utf8_lossy(&line);
    let header = header.trim_end_matches('\n');
    let frame =
        parse_header(header).ok_or_else(|| format!("unexpected frame header {header:?}"))?;
    match frame {
        Header::Ready => Ok(Some(Report::Ready)),
        Header::Ok(len) if len > MAX_RESPONSE_BYTES => Ok(Some(Report::TooLarge)),
        Header::Ok(len) => {
            let body = read_exact(reader, len)?;
            Ok(Some(Report::Result(Outcome::Response(body))))
        }
        Header::Error(len) if len > MAX_ERROR_FRAME => {
            Err(format!("an error document of {len} bytes, over {MAX_ERROR_FRAME}"))
        }
        Header::Stream(len) if len > MAX_CONTENT_TYPE => {
            Err(format!("a stream Content-Type of {len} bytes, over {MAX_CONTENT_TYPE}"))
        }
        Header::Stream(len) => {
            let body = read_exact(reader, len)?;
            let content_type = String::from_utf8(body)
                .map_err(|_| "a stream Content-Type that is not UTF-8".to_string())?;
            Ok(Some(Report::StreamOpen(content_type)))
        }
        Header::Chunk(len) if len > MAX_CHUNK_FRAME => {
            Err(format!("a chunk of {len} bytes, over {MAX_CHUNK_FRAME}"))
        }
        Header::Chunk(len) => Ok(Some(Report::Chunk(read_exact(reader, len)?))),
        Header::Error(len) => {
            let body = read_exact(reader, len)?;
            let diagnostic = invoke::parse_diagnostic(&body).ok_or_else(|| {
                "an error frame that is not {\"errorType\", \"errorMessage\"}".to_string()
            })?;
            Ok(Some(Report::Result(Outcome::Failed(diagnostic))))
        }
    }
}

fn read_exact(reader: &mut impl Read, len: usize) -> Result<Vec<u8>, String> {
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(|e| format!("a frame cut short ({e})"))?;
    Ok(body)
}

/// A frame header line from the runner.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    Ready,
    Ok(usize),
    Error(usize),
    Stream(usize),
    Chunk(usize),
}

fn parse_header(line: &str) -> Option<Header> {
    let (kind, len) = match line.split_once(' ') {
        None if line == "ready" => return Some(Header::Ready),
        None => return None,
        Some(parts) => parts,
    };
    let len: usize = len.parse().ok()?;
    match kind {
        "ok" => Some(Header::Ok(len)),
        "error" => Some(Header::Error(len)),
        "stream" => Some(Header::Stream(len)),
        "chunk" => Some(Header::Chunk(len)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::invocation::{Deadline, RequestId};

    #[test]
    fn parses_frame_headers() {
        assert_eq!(parse_header("ready"), Some(Header::Ready));
        assert_eq!(parse_header("ok 12"), Some(Header::Ok(12)));
        assert_eq!(parse_header("error 0"), Some(Header::Error(0)));
        for bad in ["", "ok", "ok -1", "ok 1 2", "okay 1", "ready 1", "error x"] {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_frames_and_refuses_oversized_ones() {
        let error = r#"{"errorType":"E","errorMessage":"m","x":1}"#;
        let input = format!("ready\nok 3\nabcerror {}\n{error}", error.len());
        let mut reader = input.as_bytes();
        assert!(matches!(read_frame(&mut reader), Ok(Some(Report::Ready))));
        assert!(
            matches!(read_frame(&mut reader), Ok(Some(Report::Result(Outcome::Response(b)))) if b == b"abc")
        );
        match read_frame(&mut reader) {
            Ok(Some(Report::Result(Outcome::Failed(d)))) => assert_eq!(d.error_type, "E"),
            other => panic!("expected an error frame, got {:?}", other.map(|r| r.map(|_| ()))),
        }
        assert!(matches!(read_frame(&mut reader), Ok(None)));
        let huge = format!("ok {}\n", MAX_RESPONSE_BYTES + 1);
        assert!(matches!(read_frame(&mut huge.as_bytes()), Ok(Some(Report::TooLarge))));
        assert!(read_frame(&mut &b"ok 10\nshort"[..]).is_err());
        assert!(read_frame(&mut &b"garbage\n"[..]).is_err());
    }

    #[test]
    fn context_frames_keep_a_fixed_key_order() {
        let inv = Invocation {
            request_id: RequestId::parse("r-1").unwrap(),
            deadline: Deadline::parse("1700000000000", SystemTime::now()).unwrap(),
            invoked_function_arn: Some("arn:x".into()),
            trace_id: None,
            client_context: Some("{\"a\":\"\\\"\"}".into()),
            cognito_identity: None,
            tenant_id: None,
            event: Vec::new(),
        };
        assert_eq!(
            context_json(&inv),
            "{\"aws_request_id\":\"r-1\",\"deadline_ms\":1700000000000,\"invoked_function_arn\":\"arn:x\",\
             \"trace_id\":null,\"client_context\":\"{\\\"a\\\":\\\"\\\\\\\"\\\"}\",\"cognito_identity\":null,\
             \"tenant_id\":null}"
        );
    }
}
