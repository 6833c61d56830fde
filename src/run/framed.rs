//! Framed workers: a runner process that loads the handler once, then serves invocations sent
//! as frames on dedicated pipes, so that nothing a handler prints can corrupt one.
//!
//! The worker for the next event is started, and has loaded the handler, before bootstrap asks
//! `/next` for that event: the caller never waits for an interpreter to start. With
//! `events_per_process = 1` (the default) every event still gets a fresh process; with `N` a
//! worker serves N events; with `0` it lives as long as bootstrap. A worker that crashes, times
//! out or passes `max_rss_mb` is killed and replaced, and its event gets the error.
//!
//! The frames are in `frames` (and, for runner authors, `layers/PROTOCOL.md`).
//!
//! End of file on fd 3 tells the runner to exit. Its stdout and stderr go to the log. Reports
//! from a worker's threads pass through a channel of one slot, so a runner that writes faster
//! than Lambda reads (or writes when nobody asked) is held back by its pipe, not buffered.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::child::{self, CurrentRequest, ScratchDir};
use super::frames::{self, ENV_FRAMED, Frame};
use super::{Options, diagnostics, reaper, sys};
use crate::init::Handler;
use crate::invocation::error_type::{EXIT_ERROR, INVALID_FRAME, OUT_OF_MEMORY, SPAWN_ERROR};
use crate::invocation::{
    Diagnostic, Invocation, OpenStream, Outcome, ResponseStream, StreamWriteError,
};
use crate::{info, warn};
/// How long bootstrap waits for a worker to load before asking `/next` anyway (Lambda's init
/// budget); the event then waits for the rest, within its own deadline.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How often a worker's memory is checked while it runs an event, when `max_rss_mb` is set.
const RSS_CHECK_EVERY: Duration = Duration::from_millis(50);
/// The default capacity of a Linux pipe: a write up to this size into an empty pipe never blocks.
const PIPE_BUFFER: usize = 64 * 1024;
/// How long a runner that closed its result pipe gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// How long a worker that served its events gets, once its fd 3 is closed, to finish what it
/// does after its last answer (log lines, a stream's code after its end) and exit.
const RETIRE_GRACE: Duration = Duration::from_millis(500);
/// The framed worker of one handler (one invocation loop): at most one alive at a time.
pub struct WorkerSlot {
    handler: Handler,
    options: Options,
    /// Boxed: a worker is large, and the slot is empty between some events.
    current: Option<Box<Worker>>,
    /// A worker that served its events, answered, and is to be retired before the next one
    /// starts: after the answer was posted, so that its grace is off the caller's path.
    retiring: Option<Box<Worker>>,
}

impl WorkerSlot {
    pub fn new(handler: Handler, options: Options) -> WorkerSlot {
        WorkerSlot { handler, options, current: None, retiring: None }
    }

    /// Retires the worker that served its events, then starts the worker for the next event,
    /// if none is running, and gives it `READY_WAIT` to load the handler. Called before asking
    /// `/next`. One at a time: the old one is gone before the new one starts.
    pub fn prepare(&mut self) {
        if let Some(old) = self.retiring.take() {
            old.retire_within(RETIRE_GRACE);
        }
        let (handler, options) = (&self.handler, &self.options);
        let worker = self.current.get_or_insert_with(|| Box::new(Worker::start(handler, options)));
        worker.wait_ready(Instant::now() + READY_WAIT);
    }

    /// Why the current worker could not load the handler, if it reported that.
    pub fn load_failure(&self) -> Option<Diagnostic> {
        match &self.current.as_ref()?.state {
            State::LoadFailed(diagnostic) => Some(diagnostic.clone()),
            _ => None,
        }
    }

    /// Runs one event on the current worker (starting one if needed), then retires the worker
    /// if it is used up, broken or too big. `stream` opens the response stream if the runner
    /// answers with one.
    pub fn run(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        let (handler, options) = (&self.handler, &self.options);
        let mut worker =
            self.current.take().unwrap_or_else(|| Box::new(Worker::start(handler, options)));
        let outcome = worker.run(invocation, &self.handler, stream);
        let limit = self.handler.events_per_process();
        let used_up = limit != 0 && worker.served >= limit;
        let healthy = worker.is_healthy() && !worker.is_over_memory(&self.handler);
        match (healthy, used_up) {
            (true, false) => self.current = Some(worker),
            (true, true) => self.retiring = Some(worker),
            (false, _) => worker.retire_within(Duration::ZERO),
        }
        outcome
    }
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        for worker in [self.retiring.take(), self.current.take()].into_iter().flatten() {
            worker.retire_within(RETIRE_GRACE);
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
    /// The runner said it cannot load the handler (an error frame before `ready`); every
    /// event sent to it gets this error.
    LoadFailed(Diagnostic),
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
    fn start(handler: &Handler, options: &Options) -> Worker {
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
        let scratch = match options.private_tmp.then(ScratchDir::create).transpose() {
            Ok(scratch) => scratch,
            Err(e) => {
                let message = format!("cannot create a private TMPDIR: {e}");
                return broken(Diagnostic::new(SPAWN_ERROR, message));
            }
        };
        let (child, invocations, results) = match spawn_runner(handler, scratch.as_ref()) {
            Ok(parts) => parts,
            Err(e) => return broken(diagnostics::spawn(&e, handler)),
        };
        let pid = child.id();
        let mut child = child;
        let current = CurrentRequest::default();
        if let Some(stdout) = child.stdout.take() {
            let current = Arc::clone(&current);
            child::spawn_thread(move || child::copy_to_log(stdout, &current, |_| {}));
        }
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            let current = Arc::clone(&current);
            child::spawn_thread(move || {
                child::copy_to_log(stderr, &current, |bytes| {
                    child::keep_tail(&mut tail.lock().unwrap_or_else(|e| e.into_inner()), bytes)
                })
            });
        }
        let tx = reports_tx.clone();
        child::spawn_thread(move || read_frames(results, &tx));
        child::watch_exit(pid, move || {
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
        let over = sys::resident_mib(pid).is_some_and(|mib| mib > limit);
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
                    self.state = State::LoadFailed(diagnostic)
                }
                Report::Result(
                    Outcome::Response(_) | Outcome::Streamed { .. } | Outcome::StreamBroken { .. },
                )
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

    fn run(&mut self, invocation: &Invocation, handler: &Handler, stream: OpenStream) -> Outcome {
        let kill_at = child::kill_at(invocation);
        let started = Instant::now();
        self.wait_ready(kill_at);
        match &self.state {
            State::LoadFailed(diagnostic) | State::Broken(diagnostic) => {
                return Outcome::Failed(diagnostic.clone());
            }
            State::Loading => {
                self.kill();
                return Outcome::Failed(diagnostics::timeout(started.elapsed()));
            }
            State::Ready => {}
        }
        self.served += 1;
        self.set_current(invocation.request_id.to_string());
        self.send(invocation);
        // The id stays until the next event: output read after the result is still this event's.
        let mut answer = Answer { open: Some(stream), stream: None, bytes: 0 };
        let mut outcome = self.await_result(kill_at, started, handler, &mut answer);
        if reaper::stopping() {
            outcome = Outcome::Failed(diagnostics::shutdown());
        }
        answer.settle(outcome)
    }

    /// Writes the invocation frame. A frame that fits in the pipe's buffer (64 KiB on Linux)
    /// cannot block, since the runner is waiting for it with an empty pipe; a bigger one is
    /// written from its own thread, so that a runner that stopped reading cannot block us past
    /// the deadline.
    fn send(&mut self, invocation: &Invocation) {
        let mut frame = frames::invoke_head(invocation);
        if frame.len() + invocation.event.len() <= PIPE_BUFFER
            && let Some(pipe) = self.invocations.as_mut()
        {
            frame.extend_from_slice(&invocation.event);
            // A runner that died makes this fail with EPIPE; the reader reports the death.
            let _ = pipe.write_all(&frame);
            return;
        }
        let Some(pipe) = self.invocations.as_ref().and_then(|p| p.try_clone().ok()) else { return };
        let event = invocation.event.clone();
        child::spawn_thread(move || {
            let mut pipe = pipe;
            // A runner that died makes this fail with EPIPE; the reader reports the death.
            let _ = pipe.write_all(&frame).and_then(|()| pipe.write_all(&event));
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
                        Err(error) => {
                            self.kill();
                            return Outcome::StreamBroken { bytes: 0, error };
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
                            return Outcome::Failed(diagnostics::streamed_too_large(limit));
                        }
                        Err(StreamWriteError::Broken(why)) => {
                            self.kill();
                            answer.stream = None;
                            return Outcome::StreamBroken { bytes: answer.bytes, error: why };
                        }
                    }
                }
                Ok(Report::Ready) => {
                    self.kill();
                    return Outcome::Failed(invalid_frame("\"ready\" while an event was running"));
                }
                Ok(Report::TooLarge) => {
                    self.kill();
                    return Outcome::Failed(diagnostics::too_large());
                }
                Ok(Report::Closed(why)) => return Outcome::Failed(self.death(why, kill_at)),
                // Its last frame may still be in the pipe: read on until the pipe closes.
                Ok(Report::Exited) => until = self.note_exit(until),
                Err(RecvTimeoutError::Timeout) if self.exited && Instant::now() >= until => {
                    return Outcome::Failed(self.death(None, kill_at));
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= kill_at => {
                    self.kill();
                    return Outcome::Failed(diagnostics::timeout(started.elapsed()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(limit) = handler.max_rss_mb()
                        && let Some(mib) = self.pid().and_then(sys::resident_mib)
                        && mib > limit
                    {
                        self.kill();
                        return Outcome::Failed(
                            Diagnostic::new(
                                OUT_OF_MEMORY,
                                format!(
                                    "the worker used {mib} MiB, over max_rss_mb = {limit}, and \
                                     was killed"
                                ),
                            )
                            .with_hint(format!(
                                "raise max_rss_mb under {}, or lower events_per_process",
                                handler.setting()
                            )),
                        );
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
        self.state = State::Broken(Diagnostic::new(EXIT_ERROR, "the worker died"));
        if !self.exited {
            self.kill();
            return Diagnostic::new(
                EXIT_ERROR,
                "the worker closed its result pipe but did not exit",
            );
        }
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match self.reap() {
            Some(status) => diagnostics::exit(status, &tail),
            None => Diagnostic::new(EXIT_ERROR, "the worker exited"),
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            reaper::kill_group(pid);
        }
        self.state = State::Broken(Diagnostic::new(EXIT_ERROR, "the worker was killed"));
    }

    /// Reaps the runner after killing what is left of its group. Its pid is only safe to
    /// signal until then.
    fn reap(&mut self) -> Option<ExitStatus> {
        reaper::reap(&mut self.child.take()?).ok()
    }

    /// Closes the runner's fd 3 (it exits at end of file), gives it `grace` to do so, then
    /// makes sure it and everything it started are gone.
    fn retire_within(mut self, grace: Duration) {
        self.invocations = None;
        let until = Instant::now() + grace;
        while !self.exited && self.child.is_some() {
            match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Report::Exited) => self.exited = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if self.reap().is_some() {
            return;
        }
        if let State::LoadFailed(d) | State::Broken(d) = &self.state {
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
    /// The event's outcome; when a stream was opened, the stream with the last bytes of an
    /// `ok` frame written, or the error for its trailers, for the loop to end.
    fn settle(self, outcome: Outcome) -> Outcome {
        let Some(mut stream) = self.stream else { return outcome };
        let mut bytes = self.bytes;
        let failure = match outcome {
            Outcome::Streamed { .. } | Outcome::StreamBroken { .. } => return outcome,
            Outcome::Failed(diagnostic) => Some(diagnostic),
            Outcome::Response(body) if body.is_empty() => None,
            Outcome::Response(body) => match stream.write(&body) {
                Ok(()) => {
                    bytes += body.len() as u64;
                    None
                }
                Err(StreamWriteError::TooLarge(limit)) => {
                    Some(diagnostics::streamed_too_large(limit))
                }
                Err(StreamWriteError::Broken(error)) => {
                    return Outcome::StreamBroken { bytes, error };
                }
            },
        };
        Outcome::Streamed { stream, bytes, failure }
    }
}

/// The error for a runner that broke the frame protocol.
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
    let mut command = child::base_command(handler);
    command.args(handler.args.iter().map(|a| a.render(|_| Vec::new())));
    child::clear_invocation_env(&mut command);
    if let Some(scratch) = scratch {
        scratch.apply(&mut command);
    }
    command.env(ENV_FRAMED, "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sys::pass_fds(&mut command, [to_runner_read.as_raw_fd(), from_runner_write.as_raw_fd()]);
    let child = reaper::spawn_tracked(&mut command)?;
    // The child has its copies; ours of its ends must close, or we would never see EOF.
    drop(to_runner_read);
    drop(from_runner_write);
    Ok((
        child,
        File::from(OwnedFd::from(to_runner_write)),
        File::from(OwnedFd::from(from_runner_read)),
    ))
}

/// Reads frames from the runner's fd 4 until it closes or misbehaves.
fn read_frames(results: File, reports: &mpsc::SyncSender<Report>) {
    let mut reader = BufReader::new(results);
    loop {
        let report = match frames::read_frame(&mut reader) {
            Ok(Some(Frame::Ready)) => Report::Ready,
            Ok(Some(Frame::Ok(body))) => Report::Result(Outcome::Response(body)),
            Ok(Some(Frame::Error(diagnostic))) => Report::Result(Outcome::Failed(diagnostic)),
            Ok(Some(Frame::TooLarge)) => Report::TooLarge,
            Ok(Some(Frame::Stream(content_type))) => Report::StreamOpen(content_type),
            Ok(Some(Frame::Chunk(bytes))) => Report::Chunk(bytes),
            Ok(None) => Report::Closed(None),
            Err(why) => Report::Closed(Some(why)),
        };
        let last = matches!(report, Report::Closed(_) | Report::TooLarge);
        if reports.send(report).is_err() || last {
            return;
        }
    }
}
