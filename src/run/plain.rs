//! The plain protocol: a process per event. Spawn the handler as a `Unit` (under its warden),
//! feed it the event, capture its stdout with a cap (or stream it), forward its stderr to the
//! log, enforce the deadline, end everything it started, and turn whatever happened into an
//! `Outcome`.
//!
//! Threads, one job each, so that no child behaviour can block us: a writer for stdin (a child
//! that prints before reading, or never reads, must not deadlock), a reader each for stdout and
//! stderr, and a watch on the exit. The calling thread waits on one channel with the deadline
//! as its timeout; it is the only one that kills or ends the unit, and every wait is bounded.

use std::io::{self, Read, Write};
use std::process::{ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::child::{self, CurrentRequest, EventFile, ScratchDir};
use super::unit::{Exit, Unit};
use super::{Options, diagnostics, reaper};
use crate::init::Handler;
use crate::init::config::PayloadVia;
use crate::init::template::Placeholder;
use crate::invocation::error_type::{EVENT_TOO_LARGE, EXIT_ERROR, INVALID_EVENT, SPAWN_ERROR};
use crate::invocation::{
    Diagnostic, Invocation, MAX_RESPONSE_BYTES, MAX_STREAMED_BYTES, OpenStream, Outcome, RequestId,
    ResponseStream, StreamFailure, StreamWriteError,
};

/// Linux refuses any single argv string longer than this (`MAX_ARG_STRLEN`, with its NUL).
pub const MAX_ARGUMENT_BYTES: usize = 128 * 1024 - 1;
/// Exit status with which a handler reports a structured error (`EX_SOFTWARE`): its stdout is
/// then a JSON `{"errorType", "errorMessage", "stackTrace"}` object.
pub const DIAGNOSTIC_EXIT_STATUS: i32 = 70;
/// Longest wait for the pipes to close once every process that could hold them is dead.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the handler's end to be reported once it was killed; a handler that will
/// not die (uninterruptible) is left to `reaper`, which reports it.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Runs `handler` for `invocation` and waits for everything it started to be gone. When the
/// handler streams its response, its stdout goes to `stream` as it is written instead of being
/// collected.
pub fn run(
    handler: &Handler,
    invocation: &Invocation,
    options: &Options,
    stream: OpenStream,
) -> Outcome {
    let stream = handler.stream_content_type.clone().map(|content_type| (stream, content_type));
    match start(handler, invocation, options, stream) {
        Ok(outcome) => outcome,
        Err(diagnostic) => Outcome::Failed(diagnostic),
    }
}

/// Spawns the handler with its argv, environment and scratch space, and supervises it.
fn start(
    handler: &Handler,
    invocation: &Invocation,
    options: &Options,
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
    let mut command = child::base_command(handler);
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
    child::set_invocation_env(&mut command, invocation);
    let scratch = options.private_tmp.then(ScratchDir::create).transpose().map_err(|e| {
        Diagnostic::new(SPAWN_ERROR, format!("cannot create a private TMPDIR: {e}"))
    })?;
    if let Some(scratch) = &scratch {
        scratch.apply(&mut command);
    }
    let stdin = if handler.payload == PayloadVia::Stdin { Stdio::piped() } else { Stdio::null() };
    command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    // One handler at a time: everything under bootstrap is this one's (see `unit`).
    let process = Unit::spawn(&mut command, options.concurrent)
        .map_err(|e| diagnostics::spawn(&e, handler))?;
    let kill_at = child::kill_at(invocation);
    let started = Instant::now();
    let feed_stdin = handler.payload == PayloadVia::Stdin;
    let finished = supervise(process, &invocation.request_id, event, feed_stdin, kill_at, stream);
    drop((event_file, scratch));
    Ok(finished.into_outcome(started.elapsed()))
}

fn check_argument(event: &[u8], handler: &Handler) -> Result<(), Diagnostic> {
    if event.len() > MAX_ARGUMENT_BYTES {
        return Err(Diagnostic::new(
            EVENT_TOO_LARGE,
            format!(
                "the event is {} bytes, over the {MAX_ARGUMENT_BYTES} bytes Linux allows in one \
                 argument",
                event.len(),
            ),
        )
        .with_hint(format!(
            "pass it on stdin or in a file: replace {{event}} with {{event_file}} (or drop it) in \
             command under {}",
            handler.setting()
        )));
    }
    if event.contains(&0) {
        return Err(Diagnostic::new(
            INVALID_EVENT,
            "the event holds a NUL byte, which cannot be passed as an argument",
        )
        .with_hint(format!(
            "pass it on stdin or in a file: replace {{event}} with {{event_file}} in command under \
             {}",
            handler.setting()
        )));
    }
    Ok(())
}

/// What the threads report to the supervising thread.
enum Report {
    Exited(Exit),
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
    StreamBroken(StreamFailure, u64),
}

impl Captured {
    /// Whether the handler must be stopped now: its output has nowhere to go.
    fn is_fatal(&self) -> bool {
        matches!(self, Captured::TooLarge(_) | Captured::StreamBroken(..))
    }
}

/// Everything known once the child and its group are gone.
struct Finished {
    /// `None` when it cannot be known (the handler's warden was killed, or it would not die).
    status: Option<ExitStatus>,
    stdout: Option<Captured>,
    /// `None` until the stderr reader has finished.
    stderr_tail: Option<Vec<u8>>,
    timed_out: bool,
    too_large: bool,
}

fn supervise(
    mut unit: Unit,
    request_id: &RequestId,
    event: &[u8],
    feed_stdin: bool,
    kill_at: Instant,
    stream: Option<(OpenStream, String)>,
) -> Finished {
    let (tx, rx) = mpsc::channel();
    let child = unit.stdio().expect("BUG: a unit has its warden until it ends");
    if feed_stdin && let Some(mut stdin) = child.stdin.take() {
        let event = event.to_vec();
        // A child that exits without reading makes this fail with EPIPE: that is its choice.
        child::spawn_thread(move || {
            let _ = stdin.write_all(&event);
        });
    }
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        child::spawn_thread(move || {
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
        child::spawn_thread(move || {
            let _ = tx.send(Report::StderrTail(child::forward_stderr(stderr, &current)));
        });
    }
    unit.watch_exit(move |exit| {
        let _ = tx.send(Report::Exited(exit));
    });

    let mut finished = Finished {
        status: None,
        stdout: None,
        stderr_tail: None,
        timed_out: false,
        too_large: false,
    };
    let exit = wait_for_exit(&rx, &unit, kill_at, &mut finished);
    // Whatever the handler left running goes now, so that nothing holds its pipes open.
    finished.status = unit.end(exit);
    collect_pipes(&rx, &mut finished);
    finished
}

/// Waits for the handler's end, killing the unit at `kill_at` or when its output has nowhere
/// to go; `None` if its end was not reported within `KILL_WAIT` of the kill.
fn wait_for_exit(
    rx: &Receiver<Report>,
    unit: &Unit,
    kill_at: Instant,
    finished: &mut Finished,
) -> Option<Exit> {
    let mut until = kill_at;
    loop {
        let killed = finished.timed_out || finished.too_large;
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Report::Exited(exit)) => return Some(exit),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if killed => return None,
            Ok(Report::Stdout(captured)) => {
                if captured.is_fatal() && !killed {
                    finished.too_large = matches!(captured, Captured::TooLarge(_));
                    unit.kill();
                    until = Instant::now() + KILL_WAIT;
                }
                finished.stdout = Some(captured);
            }
            Ok(Report::StderrTail(tail)) => finished.stderr_tail = Some(tail),
            Err(RecvTimeoutError::Timeout) => {
                finished.timed_out = true;
                unit.kill();
                until = Instant::now() + KILL_WAIT;
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
            Ok(Report::Exited(_)) => {}
            Err(_) => return,
        }
    }
}

impl Finished {
    fn into_outcome(mut self, elapsed: Duration) -> Outcome {
        match self.stdout.take() {
            Some(Captured::Streamed(stream, bytes)) => {
                Outcome::Streamed { stream, bytes, failure: self.failure(elapsed, b"") }
            }
            Some(Captured::TooLarge(Some(stream))) => Outcome::Streamed {
                stream,
                bytes: MAX_STREAMED_BYTES,
                failure: Some(diagnostics::streamed_too_large(MAX_STREAMED_BYTES)),
            },
            Some(Captured::StreamBroken(error, bytes)) => Outcome::StreamBroken { bytes, error },
            Some(Captured::TooLarge(None)) => Outcome::Failed(diagnostics::too_large()),
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
        if let Some(why) = reaper::stopping() {
            return Some(diagnostics::shutdown(why));
        }
        if self.timed_out {
            return Some(diagnostics::timeout(elapsed));
        }
        if self.too_large {
            return Some(diagnostics::too_large());
        }
        let Some(status) = self.status else {
            return Some(Diagnostic::new(
                EXIT_ERROR,
                "cannot tell how the handler ended: the process that watched it was killed, or \
                 the handler would not die",
            ));
        };
        if status.code() == Some(DIAGNOSTIC_EXIT_STATUS)
            && let Some(diagnostic) = Diagnostic::parse(stdout)
        {
            return Some(diagnostic);
        }
        if status.success() {
            return None;
        }
        Some(diagnostics::exit(status, self.stderr_tail.as_deref().unwrap_or_default()))
    }
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
                Err(error) => return Captured::StreamBroken(error, 0),
            },
            (None, None) => unreachable!("BUG: the stream opens with the first bytes"),
        };
        match writer.write(&buf[..n]) {
            Ok(()) => bytes += n as u64,
            Err(StreamWriteError::TooLarge(_)) => return Captured::TooLarge(stream),
            Err(StreamWriteError::Broken(error)) => return Captured::StreamBroken(error, bytes),
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
