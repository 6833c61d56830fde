//! Runs the handler for one event: spawn the child in its own process group, feed it the
//! event, capture its stdout with a cap, forward its stderr to the log, enforce the deadline,
//! and turn whatever happened into an `Outcome`. No HTTP here; `runtime` posts the outcome.
//!
//! Threads, one job each, so that no child behaviour can block us: a writer for stdin (a child
//! that prints before reading, or never reads, must not deadlock), a reader each for stdout and
//! stderr, and a waiter for the exit. The calling thread waits on one channel with the deadline
//! as its timeout; it is the only one that kills or reaps.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::command::Placeholder;
use crate::config::PayloadVia;
use crate::handler::Handler;
use crate::invocation::{Diagnostic, Invocation, RequestId};
use crate::{log, process, shutdown};

/// Lambda's hard edge for a buffered response: 6 MiB + 100 bytes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;
/// Linux refuses any single argv string longer than this (`MAX_ARG_STRLEN`, with its NUL).
pub const MAX_ARGUMENT_BYTES: usize = 128 * 1024 - 1;
/// How long before Lambda's deadline we kill the handler, so our own error is posted first.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);
/// Exit status with which a handler reports a structured error (`EX_SOFTWARE`): its stdout is
/// then a JSON `{"errorType", "errorMessage", "stackTrace"}` object.
pub const DIAGNOSTIC_EXIT_STATUS: i32 = 70;
/// How much of the handler's stderr we keep for the error message.
const STDERR_TAIL_BYTES: usize = 4096;
/// How many of those lines the message shows.
const STDERR_TAIL_LINES: usize = 10;
/// Longest wait for the pipes to close once every process that could hold them is dead.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest we keep a diagnostic's message and stack trace, so an error post stays small.
const MAX_DIAGNOSTIC_TEXT: usize = 64 * 1024;
/// Threads here only copy bytes; they need little stack.
const THREAD_STACK: usize = 64 * 1024;

pub const EXIT_ERROR: &str = "Runtime.ExitError";
pub const TIMEOUT: &str = "Runtime.Timeout";
pub const RESPONSE_TOO_LARGE: &str = "Runtime.ResponseTooLarge";
pub const EVENT_TOO_LARGE: &str = "Runtime.EventTooLarge";
pub const INVALID_EVENT: &str = "Runtime.InvalidEvent";
pub const SPAWN_ERROR: &str = "Runtime.SpawnError";
pub const IMPORT_MODULE_ERROR: &str = "Runtime.ImportModuleError";
pub const SHUTDOWN: &str = "Runtime.Shutdown";

/// Per-event environment variables, each set only when Lambda sent the header.
pub const ENV_REQUEST_ID: &str = "LAMBDA_RUNTIME_AWS_REQUEST_ID";
pub const ENV_DEADLINE_MS: &str = "LAMBDA_RUNTIME_DEADLINE_MS";
pub const ENV_FUNCTION_ARN: &str = "LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN";
pub const ENV_TRACE_ID: &str = "LAMBDA_RUNTIME_TRACE_ID";
pub const ENV_XRAY_TRACE_ID: &str = "_X_AMZN_TRACE_ID";
pub const ENV_CLIENT_CONTEXT: &str = "LAMBDA_RUNTIME_CLIENT_CONTEXT";
pub const ENV_COGNITO_IDENTITY: &str = "LAMBDA_RUNTIME_COGNITO_IDENTITY";
pub const ENV_TENANT_ID: &str = "LAMBDA_RUNTIME_AWS_TENANT_ID";

/// Every per-event variable, so an inherited value can be removed.
pub(crate) const PER_EVENT_VARIABLES: [&str; 8] = [
    ENV_REQUEST_ID,
    ENV_DEADLINE_MS,
    ENV_FUNCTION_ARN,
    ENV_TRACE_ID,
    ENV_XRAY_TRACE_ID,
    ENV_CLIENT_CONTEXT,
    ENV_COGNITO_IDENTITY,
    ENV_TENANT_ID,
];

/// What one event produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(Vec<u8>),
    Failed(Diagnostic),
    /// The response was streamed to Lambda as the handler wrote it (`bytes` of it), and the
    /// stream is over: ended cleanly, or with error trailers carrying `failure`. `answer` is
    /// Lambda's status, or why the stream broke.
    Streamed {
        bytes: u64,
        failure: Option<Diagnostic>,
        answer: Result<u16, String>,
    },
}

/// Where a streamed response goes. `invoke` knows it only through this trait; `stream`
/// implements it over HTTP.
pub trait ResponseStream: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StreamWriteError>;
    /// Ends the stream cleanly; Lambda's status, or why the stream broke.
    fn finish(self: Box<Self>) -> Result<u16, String>;
    /// Ends the stream with the error trailers.
    fn fail(self: Box<Self>, diagnostic: &Diagnostic) -> Result<u16, String>;
}

/// A write the stream refused.
pub enum StreamWriteError {
    /// Past the streaming limit (in bytes); the stream is still open, to be failed.
    TooLarge(u64),
    /// The connection is gone.
    Broken(String),
}

/// Opens the response stream with a Content-Type, called when the handler's first bytes
/// arrive (or a framed runner opens its stream): a handler that fails before that gets an
/// ordinary error post instead.
pub type OpenStream = Box<dyn FnOnce(&str) -> Result<Box<dyn ResponseStream>, String> + Send>;

/// Runs `handler` for `invocation` and waits for everything it started to be gone. When the
/// handler streams its response, its stdout goes to `stream` as it is written instead of being
/// collected.
pub fn invoke(handler: &Handler, invocation: &Invocation, stream: OpenStream) -> Outcome {
    let stream = handler.stream_content_type.clone().map(|content_type| (stream, content_type));
    match run(handler, invocation, stream) {
        Ok(outcome) => outcome,
        Err(diagnostic) => Outcome::Failed(diagnostic),
    }
}

fn run(
    handler: &Handler,
    invocation: &Invocation,
    stream: Option<(OpenStream, String)>,
) -> Result<Outcome, Diagnostic> {
    let event = &invocation.event;
    let event_file = match handler.payload {
        PayloadVia::File => Some(EventFile::create(event)?),
        PayloadVia::Stdin | PayloadVia::Argument => None,
    };
    if handler.payload == PayloadVia::Argument {
        check_argument(event, handler)?;
    }
    let mut command = base_command(handler);
    for arg in &handler.args {
        command.arg(arg.render(|p| {
            match p {
                Placeholder::EventFile => event_file
                    .as_ref()
                    .map(|f| f.path.as_os_str().as_encoded_bytes().to_vec())
                    .unwrap_or_default(),
                _ => event.clone(),
            }
        }));
    }
    for (name, value) in per_event_environment(invocation) {
        match value {
            Some(v) => command.env(name, v),
            // Also removes a value bootstrap itself inherited: it must not pose as this event's.
            None => command.env_remove(name),
        };
    }
    let scratch = handler.private_tmp.then(ScratchDir::create).transpose().map_err(|e| {
        Diagnostic::new(SPAWN_ERROR, format!("cannot create a private TMPDIR: {e}"))
    })?;
    if let Some(scratch) = &scratch {
        scratch.apply(&mut command);
    }
    let stdin = if handler.payload == PayloadVia::Stdin { Stdio::piped() } else { Stdio::null() };
    command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = shutdown::spawn_tracked(&mut command).map_err(|e| spawn_error(&e, handler))?;
    let kill_at = kill_at(invocation);
    let started = Instant::now();
    let feed_stdin = handler.payload == PayloadVia::Stdin;
    let finished = supervise(child, &invocation.request_id, event, feed_stdin, kill_at, stream);
    drop((event_file, scratch));
    Ok(finished.into_outcome(started.elapsed()))
}

/// The handler's program in its own process group, in the task root, with `HOME` if needed.
///
/// `_HANDLER` and `LAMBDA_TASK_ROOT` are the values in use (they differ from bootstrap's own
/// under `bootstrap invoke --handler`), so that a runner can read the name exactly as AWS's
/// runtime for its language does; `BOOTSTRAP_CONVENTION` names the entry's `convention`.
pub(crate) fn base_command(handler: &Handler) -> Command {
    use crate::lambda_env::{ENV_CONVENTION, ENV_HANDLER, ENV_HOME, ENV_TASK_ROOT};
    let mut command = Command::new(&handler.program);
    command.current_dir(&handler.task_root).process_group(0);
    command.env(ENV_HANDLER, handler.name.text()).env(ENV_TASK_ROOT, &handler.task_root);
    match handler.interpreter.as_ref().and_then(|i| i.convention.as_deref()) {
        Some(convention) => command.env(ENV_CONVENTION, convention),
        None => command.env_remove(ENV_CONVENTION),
    };
    if handler.needs_home {
        command.env(ENV_HOME, "/tmp");
    }
    command
}

/// The per-event variables, each `None` when Lambda did not send the value.
pub(crate) fn per_event_environment(inv: &Invocation) -> [(&'static str, Option<String>); 8] {
    [
        (ENV_REQUEST_ID, Some(inv.request_id.to_string())),
        (ENV_DEADLINE_MS, Some(inv.deadline.epoch_ms().to_string())),
        (ENV_FUNCTION_ARN, inv.invoked_function_arn.clone()),
        (ENV_TRACE_ID, inv.trace_id.clone()),
        (ENV_XRAY_TRACE_ID, inv.trace_id.clone()),
        (ENV_CLIENT_CONTEXT, inv.client_context.clone()),
        (ENV_COGNITO_IDENTITY, inv.cognito_identity.clone()),
        (ENV_TENANT_ID, inv.tenant_id.clone()),
    ]
}

/// When to kill the handler: `DEADLINE_MARGIN` before the invocation's deadline.
pub(crate) fn kill_at(inv: &Invocation) -> Instant {
    Instant::now() + inv.deadline.remaining(SystemTime::now()).saturating_sub(DEADLINE_MARGIN)
}

fn check_argument(event: &[u8], handler: &Handler) -> Result<(), Diagnostic> {
    if event.len() > MAX_ARGUMENT_BYTES {
        return Err(Diagnostic::new(
            EVENT_TOO_LARGE,
            format!(
                "the event is {} bytes, over the {} bytes Linux allows in one argument\n\
                 hint: pass it on stdin or in a file: replace {{event}} with {{event_file}} (or drop it) \
                 in command under {}",
                event.len(),
                MAX_ARGUMENT_BYTES,
                handler.setting()
            ),
        ));
    }
    if event.contains(&0) {
        return Err(Diagnostic::new(
            INVALID_EVENT,
            format!(
                "the event holds a NUL byte, which cannot be passed as an argument\n\
                 hint: pass it on stdin or in a file: replace {{event}} with {{event_file}} in command under {}",
                handler.setting()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn spawn_error(e: &io::Error, handler: &Handler) -> Diagnostic {
    let program = handler.program.display();
    let message = match e.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot run {program}: it is gone or its #! interpreter is missing ({e})")
        }
        io::ErrorKind::PermissionDenied => {
            format!(
                "cannot run {program}: permission denied\nhint: chmod +x it and keep the mode in the zip"
            )
        }
        _ => format!("cannot run {program}: {e}"),
    };
    // An executable handler that cannot be run is a file that cannot load, in the vocabulary
    // the runners use; an interpreter that cannot be started is bootstrap's own spawn error.
    let error_type = if handler.interpreter.is_none() { IMPORT_MODULE_ERROR } else { SPAWN_ERROR };
    Diagnostic::new(error_type, message)
}

/// What the threads report to the supervising thread.
enum Report {
    Exited,
    Stdout(Captured),
    StderrTail(Vec<u8>),
}

enum Captured {
    Complete(Vec<u8>),
    /// Over the limit; a stream that was open is kept, to be failed.
    TooLarge(Option<Box<dyn ResponseStream>>),
    Failed(io::Error),
    /// Streamed to its end; the stream is still open, to be finished or failed.
    Streamed(Box<dyn ResponseStream>, u64),
    /// The stream could not be opened or broke.
    StreamBroken(String, u64),
}

impl Captured {
    /// Whether the handler must be stopped now: its output has nowhere to go.
    fn is_fatal(&self) -> bool {
        matches!(self, Captured::TooLarge(_) | Captured::StreamBroken(..))
    }
}

/// Everything known once the child and its group are gone.
struct Finished {
    status: io::Result<ExitStatus>,
    stdout: Option<Captured>,
    /// `None` until the stderr reader has finished.
    stderr_tail: Option<Vec<u8>>,
    timed_out: bool,
    too_large: bool,
}

fn supervise(
    mut child: Child,
    request_id: &RequestId,
    event: &[u8],
    feed_stdin: bool,
    kill_at: Instant,
    stream: Option<(OpenStream, String)>,
) -> Finished {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    if feed_stdin && let Some(mut stdin) = child.stdin.take() {
        let event = event.to_vec();
        // A child that exits without reading makes this fail with EPIPE: that is its choice.
        spawn(move || {
            let _ = stdin.write_all(&event);
        });
    }
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        spawn(move || {
            let captured = match stream {
                Some((open, content_type)) => stream_out(stdout, open, &content_type),
                None => capture(stdout),
            };
            let _ = tx.send(Report::Stdout(captured));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let tx = tx.clone();
        let current: CurrentRequest = Arc::new(Mutex::new(Some(request_id.to_string())));
        spawn(move || {
            let _ = tx.send(Report::StderrTail(forward_stderr(stderr, &current)));
        });
    }
    {
        let tx = tx.clone();
        spawn(move || {
            // If waitid itself fails the child is not ours to wait for; report it gone.
            let _ = process::wait_exited_unreaped(pid);
            let _ = tx.send(Report::Exited);
        });
    }
    drop(tx);

    let mut finished = Finished {
        status: Ok(ExitStatus::from_raw(0)),
        stdout: None,
        stderr_tail: None,
        timed_out: false,
        too_large: false,
    };
    wait_for_exit(&rx, pid, kill_at, &mut finished);
    // The child is a zombie now, so its pid still names its group: kill what it left behind,
    // then reap it, then anything that escaped the group.
    process::kill_group(pid);
    finished.status = shutdown::untrack_reaping(pid, || child.wait());
    shutdown::sweep_orphans();
    collect_pipes(&rx, &mut finished);
    finished
}

fn wait_for_exit(rx: &Receiver<Report>, pid: u32, kill_at: Instant, finished: &mut Finished) {
    loop {
        let timeout = kill_at.saturating_duration_since(Instant::now());
        let report = if finished.timed_out || finished.too_large {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(timeout)
        };
        match report {
            Ok(Report::Exited) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Report::Stdout(captured)) => {
                if captured.is_fatal() {
                    finished.too_large = matches!(captured, Captured::TooLarge(_));
                    process::kill_group(pid);
                }
                finished.stdout = Some(captured);
            }
            Ok(Report::StderrTail(tail)) => finished.stderr_tail = Some(tail),
            Err(RecvTimeoutError::Timeout) => {
                finished.timed_out = true;
                process::kill_group(pid);
            }
        }
    }
}

fn collect_pipes(rx: &Receiver<Report>, finished: &mut Finished) {
    let until = Instant::now() + PIPE_DRAIN_TIMEOUT;
    while finished.stdout.is_none() || finished.stderr_tail.is_none() {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Report::Stdout(captured)) => finished.stdout = Some(captured),
            Ok(Report::StderrTail(tail)) => finished.stderr_tail = Some(tail),
            Ok(Report::Exited) => {}
            Err(_) => return,
        }
    }
}

impl Finished {
    fn into_outcome(mut self, elapsed: Duration) -> Outcome {
        match self.stdout.take() {
            Some(Captured::Streamed(stream, bytes)) => {
                let failure = self.failure(elapsed, b"");
                let answer = match &failure {
                    None => stream.finish(),
                    Some(diagnostic) => stream.fail(diagnostic),
                };
                Outcome::Streamed { bytes, failure, answer }
            }
            Some(Captured::TooLarge(Some(stream))) => {
                let diagnostic = streamed_too_large_diagnostic(crate::stream::MAX_STREAMED_BYTES);
                let answer = stream.fail(&diagnostic);
                let bytes = crate::stream::MAX_STREAMED_BYTES;
                Outcome::Streamed { bytes, failure: Some(diagnostic), answer }
            }
            Some(Captured::StreamBroken(why, bytes)) => {
                Outcome::Streamed { bytes, failure: None, answer: Err(why) }
            }
            Some(Captured::TooLarge(None)) => Outcome::Failed(too_large_diagnostic()),
            Some(Captured::Failed(e)) => Outcome::Failed(Diagnostic::new(
                EXIT_ERROR,
                format!("cannot read the handler's stdout: {e}"),
            )),
            None => Outcome::Failed(self.failure(elapsed, b"").unwrap_or_else(|| {
                Diagnostic::new(
                    EXIT_ERROR,
                    "the handler's stdout stayed open after it exited: a process it started \
                     outside its process group still holds it",
                )
            })),
            Some(Captured::Complete(stdout)) => match self.failure(elapsed, &stdout) {
                None => Outcome::Response(stdout),
                Some(diagnostic) => Outcome::Failed(diagnostic),
            },
        }
    }

    /// Why the event failed, if it did: shutdown, timeout, output over the limit, a
    /// structured error (exit 70 with an error document on `stdout`) or a bad exit.
    fn failure(&self, elapsed: Duration, stdout: &[u8]) -> Option<Diagnostic> {
        if shutdown::requested() {
            return Some(shutdown_diagnostic());
        }
        if self.timed_out {
            return Some(timeout_diagnostic(elapsed));
        }
        if self.too_large {
            return Some(too_large_diagnostic());
        }
        let status = match &self.status {
            Ok(status) => *status,
            Err(e) => {
                return Some(Diagnostic::new(
                    EXIT_ERROR,
                    format!("cannot wait for the handler: {e}"),
                ));
            }
        };
        if status.code() == Some(DIAGNOSTIC_EXIT_STATUS)
            && let Some(diagnostic) = parse_diagnostic(stdout)
        {
            return Some(diagnostic);
        }
        if status.success() {
            return None;
        }
        Some(exit_diagnostic(status, self.stderr_tail.as_deref().unwrap_or_default()))
    }
}

/// The error for a streamed response that went past `limit` bytes.
pub(crate) fn streamed_too_large_diagnostic(limit: u64) -> Diagnostic {
    Diagnostic::new(
        RESPONSE_TOO_LARGE,
        format!(
            "the handler streamed more than {limit} bytes, Lambda's limit for a streamed response"
        ),
    )
}

/// The error for a handler stopped because bootstrap is shutting down.
pub(crate) fn shutdown_diagnostic() -> Diagnostic {
    Diagnostic::new(
        SHUTDOWN,
        "the runtime is shutting down (it received SIGTERM or SIGINT): the handler was stopped",
    )
}

/// The error for a handler killed at the deadline after running for `elapsed`.
pub(crate) fn timeout_diagnostic(elapsed: Duration) -> Diagnostic {
    Diagnostic::new(
        TIMEOUT,
        format!(
            "handler timed out: killed after {:.2} s, {} ms before the invocation deadline\n\
             hint: raise the function timeout, or make the handler faster",
            elapsed.as_secs_f64(),
            DEADLINE_MARGIN.as_millis()
        ),
    )
}

/// The error for a response over Lambda's limit.
pub(crate) fn too_large_diagnostic() -> Diagnostic {
    Diagnostic::new(
        RESPONSE_TOO_LARGE,
        format!(
            "the handler wrote more than {MAX_RESPONSE_BYTES} bytes to stdout, Lambda's limit \
             for a response\nhint: return less, or put the data in S3 and return its key"
        ),
    )
}

/// The error for a handler process that ended badly: its status or signal, and its last
/// stderr lines.
pub(crate) fn exit_diagnostic(status: ExitStatus, stderr_tail: &[u8]) -> Diagnostic {
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("handler exited with status {code}"),
        (None, Some(signal)) => {
            format!("handler was killed by signal {signal} ({})", process::signal_name(signal))
        }
        (None, None) => format!("handler ended with {status}"),
    };
    Diagnostic::new(EXIT_ERROR, with_tail(what, stderr_tail))
}

fn with_tail(message: String, tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("{message} (no stderr output)");
    }
    let last = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
    format!("{message}; last stderr lines:\n{}", last.join("\n"))
}

/// Reads a handler's own `{"errorType", "errorMessage", "stackTrace"}` report.
pub(crate) fn parse_diagnostic(stdout: &[u8]) -> Option<Diagnostic> {
    let value: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    let object = value.as_object()?;
    let error_type = object.get("errorType")?.as_str()?;
    let error_message = object.get("errorMessage")?.as_str()?;
    let mut budget = MAX_DIAGNOSTIC_TEXT;
    let stack_trace = object.get("stackTrace").and_then(|s| s.as_array()).map(|frames| {
        let mut kept = Vec::new();
        for frame in frames {
            let frame = frame.as_str().map_or_else(|| frame.to_string(), str::to_string);
            if frame.len() > budget {
                break;
            }
            budget -= frame.len();
            kept.push(frame);
        }
        kept
    });
    // The runner's other keys, whole or not at all, within what is left of the budget.
    let mut extra = serde_json::Map::new();
    for (key, value) in object {
        if matches!(key.as_str(), "errorType" | "errorMessage" | "stackTrace") {
            continue;
        }
        let size = key.len() + value.to_string().len();
        if size <= budget {
            budget -= size;
            extra.insert(key.clone(), value.clone());
        }
    }
    Some(Diagnostic {
        error_type: truncate(error_type, 256),
        error_message: truncate(error_message, MAX_DIAGNOSTIC_TEXT),
        stack_trace,
        extra,
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub(crate) fn spawn(job: impl FnOnce() + Send + 'static) {
    // If the thread cannot start, its pipe closes when `job` drops, which every reader treats
    // as end of input; nothing waits forever.
    let _ = thread::Builder::new().stack_size(THREAD_STACK).spawn(job);
}

/// Forwards stdout to a response stream as it is written, opening the stream at the first
/// byte; returns the stream still open, for the caller to end.
fn stream_out(mut stdout: ChildStdout, open: OpenStream, content_type: &str) -> Captured {
    let mut buf = vec![0u8; 64 * 1024];
    let mut open = Some(open);
    let mut stream: Option<Box<dyn ResponseStream>> = None;
    let mut bytes = 0u64;
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if stream.is_none() => return Captured::Failed(e),
            Err(_) => break,
        };
        let writer = match (&mut stream, open.take()) {
            (Some(writer), _) => writer,
            (None, Some(open)) => match open(content_type) {
                Ok(opened) => stream.insert(opened),
                Err(why) => return Captured::StreamBroken(why, 0),
            },
            (None, None) => unreachable!("BUG: the stream opens with the first bytes"),
        };
        match writer.write(&buf[..n]) {
            Ok(()) => bytes += n as u64,
            Err(StreamWriteError::TooLarge(_)) => return Captured::TooLarge(stream),
            Err(StreamWriteError::Broken(why)) => return Captured::StreamBroken(why, bytes),
        }
    }
    match stream {
        Some(stream) => Captured::Streamed(stream, bytes),
        None => Captured::Complete(Vec::new()),
    }
}

/// Reads stdout to its end, keeping at most `MAX_RESPONSE_BYTES`.
fn capture(stdout: ChildStdout) -> Captured {
    let mut bytes = Vec::new();
    match stdout.take(MAX_RESPONSE_BYTES as u64 + 1).read_to_end(&mut bytes) {
        Ok(n) if n > MAX_RESPONSE_BYTES => Captured::TooLarge(None),
        Ok(_) => Captured::Complete(bytes),
        Err(e) => Captured::Failed(e),
    }
}

/// Copies the handler's stderr to ours as it arrives, and returns its last few KiB.
fn forward_stderr(stderr: ChildStderr, current: &CurrentRequest) -> Vec<u8> {
    let mut tail = Vec::with_capacity(STDERR_TAIL_BYTES * 2);
    copy_to_log(stderr, current, |bytes| keep_tail(&mut tail, bytes));
    tail
}

/// The request a handler process is working on, for its log records; a framed worker's
/// changes from event to event.
pub(crate) type CurrentRequest = Arc<Mutex<Option<String>>>;

/// Copies a handler's output to the log as it arrives, until its end, showing each piece to
/// `also`.
pub(crate) fn copy_to_log(
    mut output: impl Read,
    current: &CurrentRequest,
    mut also: impl FnMut(&[u8]),
) {
    let mut buf = [0u8; 8192];
    let mut lines = log::HandlerLines::new();
    let id = || current.lock().unwrap_or_else(|e| e.into_inner()).clone();
    loop {
        let n = match output.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        lines.write(&buf[..n], id().as_deref());
        also(&buf[..n]);
    }
    lines.flush(id().as_deref());
}

/// Appends to the last `STDERR_TAIL_BYTES` of a handler's stderr.
pub(crate) fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(bytes);
    if tail.len() > STDERR_TAIL_BYTES {
        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
    }
}

/// `$TMPDIR/bootstrap-<kind>-<pid>-<n>`: a name no other invocation of this process uses.
fn unique_temp_path(kind: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("bootstrap-{kind}-{}-{n}", std::process::id()))
}

/// A private temporary directory for one invocation (or one framed worker), handed to the
/// handler as `TMPDIR` and removed with its contents when dropped.
pub(crate) struct ScratchDir {
    path: PathBuf,
}

/// `TMPDIR`, which most languages' temporary-file functions honour.
pub const ENV_TMPDIR: &str = "TMPDIR";

impl ScratchDir {
    pub(crate) fn create() -> io::Result<ScratchDir> {
        let path = unique_temp_path("tmp");
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(ScratchDir { path })
    }

    /// Sets `TMPDIR` for `command`.
    pub(crate) fn apply(&self, command: &mut Command) {
        command.env(ENV_TMPDIR, &self.path);
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // The handler may have removed it, or left files in it: both are fine.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A private temporary file holding the event, removed when dropped.
struct EventFile {
    path: PathBuf,
}

impl EventFile {
    fn create(event: &[u8]) -> Result<EventFile, Diagnostic> {
        let path = unique_temp_path("event");
        let write = |path: &Path| -> io::Result<()> {
            let mut file: File =
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            file.write_all(event)
        };
        match write(&path) {
            Ok(()) => Ok(EventFile { path }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(Diagnostic::new(
                    SPAWN_ERROR,
                    format!("cannot write the event to {}: {e}", path.display()),
                ))
            }
        }
    }
}

impl Drop for EventFile {
    fn drop(&mut self) {
        // Already gone (the handler deleted it) is fine.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_handler_diagnostic() {
        let d = parse_diagnostic(
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":["a",1]}"#,
        )
        .unwrap();
        assert_eq!(d.error_type, "ValueError");
        assert_eq!(d.stack_trace, Some(vec!["a".to_string(), "1".to_string()]));
        assert!(parse_diagnostic(b"plain output").is_none());
        assert!(parse_diagnostic(br#"{"errorType":1,"errorMessage":"x"}"#).is_none());
    }

    #[test]
    fn a_runners_other_keys_are_posted_as_they_came_and_no_stack_trace_is_invented() {
        let doc = br#"{"errorType":"Error","errorMessage":"m","trace":["Error: m","    at x"],"requestId":"r"}"#;
        let d = parse_diagnostic(doc).unwrap();
        assert_eq!(d.stack_trace, None);
        assert_eq!(d.frames(), vec!["Error: m", "    at x"]);
        let posted: serde_json::Value = serde_json::from_slice(&d.to_json()).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(posted, sent);
        let huge =
            format!(r#"{{"errorType":"E","errorMessage":"m","big":"{}"}}"#, "x".repeat(70_000));
        let d = parse_diagnostic(huge.as_bytes()).unwrap();
        assert!(d.extra.is_empty(), "a key over the size budget is left out");
    }

    #[test]
    fn message_shows_the_last_stderr_lines() {
        let tail = (1..=15).map(|i| format!("line {i}\n")).collect::<String>();
        let m = with_tail("handler exited with status 2".into(), tail.as_bytes());
        assert!(m.starts_with("handler exited with status 2; last stderr lines:\nline 6\n"), "{m}");
        assert!(m.ends_with("line 15"));
        assert_eq!(with_tail("x".into(), b""), "x (no stderr output)");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
