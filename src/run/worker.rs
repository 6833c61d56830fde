//! One framed worker: a runner process (a `Unit`) that loads the handler once, then serves the
//! invocations sent to it as frames on fds 3 and 4 (`frames`), so that nothing a handler prints
//! can corrupt one. `framed` decides when a worker starts, serves and retires.
//!
//! Its life is one `Life`: loading, idle (loaded, holding no invocation), unable to load, or
//! broken. Every invoke frame carries an id the runner echoes: a frame with another id, or any
//! frame while the worker is idle, is a protocol violation, and the worker is killed (its whole
//! unit) and replaced, so that no caller ever gets an answer meant for another. Its threads'
//! reports pass through a channel with no room at all: the frame reader holds one decoded frame
//! until it is taken, so a runner that writes frames nobody asked for is held back by its pipe.
//!
//! In fork mode (`fork`) a worker is either the loaded parent, whose frames about its children
//! its reader routes to each child's receiver, or one child, whose `Unit` is `forked`: it talks
//! on named pipes, and its end is asked of its parent (`reap`) rather than watched.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::child::{self, CurrentRequest, ScratchDir};
use super::frames::{self, ENV_FORK_DIR, ENV_FRAMED, ENV_ISOLATION, Frame, LOAD_ID, ParentFrame};
use super::unit::{Exit, Forked, Unit};
use super::{Options, diagnostics, proc, reaper, sys};
use crate::info;
use crate::init::Handler;
use crate::invocation::error_type::{EXIT_ERROR, INVALID_FRAME, OUT_OF_MEMORY, SPAWN_ERROR};
use crate::invocation::{
    Diagnostic, Invocation, OpenStream, Outcome, ResponseStream, StreamWriteError,
};

/// How often a worker's memory is checked while it runs an event, when `max_rss_mb` is set.
const RSS_CHECK_EVERY: Duration = Duration::from_millis(50);
/// The default capacity of a Linux pipe: a write up to this size into an empty pipe never blocks.
const PIPE_BUFFER: usize = 64 * 1024;
/// How long a runner that closed its result pipe gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// How long a retired worker's last output may take to reach the log once it is gone (its
/// pipes are closed then, unless a process that would not die holds them).
const LOG_DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Invocations sent so far, for their ids (`invocation_id`).
static SENT: AtomicU64 = AtomicU64::new(0);

/// A fresh invocation id: unique across the workers of this bootstrap (a keyed hash of a
/// counter, so two are equal with odds of 2^-64), never 0 (`frames::LOAD_ID`), and not to be
/// guessed by a handler's process that reaches another worker's pipe (say, a forked child's
/// leftover writing into the next child's).
fn invocation_id() -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
    hasher.write_u64(SENT.fetch_add(1, Ordering::Relaxed));
    hasher.finish().max(1)
}

/// Where a worker is in its life.
#[derive(Debug)]
enum Life {
    /// Started; it has not said `ready` yet.
    Loading,
    /// Loaded, and holding no invocation: any frame now is a violation.
    Idle,
    /// It said it cannot load the handler; every event sent to it gets this error.
    LoadFailed(Diagnostic),
    /// It cannot serve (it died, broke the protocol, or was killed); the error says why.
    Broken(Diagnostic),
}

/// What a worker's threads report.
pub(super) enum Report {
    Frame(Frame),
    /// The result pipe closed (`None`) or carried what is not a frame (`Some(why)`).
    Closed(Option<String>),
    /// The runner ended (its unit's warden saw it).
    Exited(Exit),
}

pub(super) struct Worker {
    unit: Unit,
    /// Our end of the runner's fd 3; `None` once closed (the runner exits at its end).
    invocations: Option<File>,
    /// Our end of the runner's fd 4 (a copy; its reader thread reads the other), to see it
    /// close.
    results: File,
    reports: Receiver<Report>,
    life: Life,
    served: u32,
    /// How the runner ended, once reported.
    exit: Option<Exit>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// The event the worker is on, for the log records of what it prints.
    current: CurrentRequest,
    /// One message from each of the threads that copy its stdout and stderr to the log, when
    /// done: a worker is gone once its last lines are logged.
    logs_done: Receiver<()>,
    /// Its private TMPDIR when invocations run concurrently; removed with the worker.
    _scratch: Option<ScratchDir>,
}

impl Worker {
    /// Starts a runner for `handler`; the error is the event's (or init's) when it cannot.
    pub(super) fn start(handler: &Handler, options: &Options) -> Result<Worker, Diagnostic> {
        Worker::start_runner(handler, options, None)
    }

    /// Starts a runner; with `fork`, a fork-mode parent whose children's named pipes are in
    /// `fork.dir`, and whose reports of a child's end go to that child (`fork.route`).
    pub(super) fn start_runner(
        handler: &Handler,
        options: &Options,
        fork: Option<(&Path, Route)>,
    ) -> Result<Worker, Diagnostic> {
        let scratch = options.private_tmp.then(ScratchDir::create).transpose().map_err(|e| {
            Diagnostic::new(SPAWN_ERROR, format!("cannot create a private TMPDIR: {e}"))
        })?;
        let (mut unit, invocations, results) =
            spawn_runner(handler, scratch.as_ref(), fork.as_ref().map(|(dir, _)| *dir))
                .map_err(|e| diagnostics::spawn(&e, handler))?;
        let route = fork.map(|(_, route)| route);
        let (tx, reports) = mpsc::sync_channel(0);
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let current = CurrentRequest::default();
        let stdio = unit.stdio().expect("BUG: a unit has its warden until it ends");
        let (logged, logs_done) = mpsc::channel();
        if let Some(stdout) = stdio.stdout.take() {
            let (current, logged) = (Arc::clone(&current), logged.clone());
            child::spawn_thread(move || {
                child::copy_to_log(stdout, &current, |_| {});
                let _ = logged.send(());
            });
        }
        if let Some(stderr) = stdio.stderr.take() {
            let (tail, current) = (Arc::clone(&stderr_tail), Arc::clone(&current));
            child::spawn_thread(move || {
                child::copy_to_log(stderr, &current, |bytes| {
                    child::keep_tail(&mut tail.lock().unwrap_or_else(|e| e.into_inner()), bytes)
                });
                let _ = logged.send(());
            });
        }
        let frames_tx = tx.clone();
        let results_copy = results.try_clone().map_err(|e| diagnostics::spawn(&e, handler))?;
        child::spawn_thread(move || read_frames(results, &frames_tx, route.as_ref()));
        unit.watch_exit(move |exit| {
            let _ = tx.send(Report::Exited(exit));
        });
        Ok(Worker {
            unit,
            invocations: Some(invocations),
            results: results_copy,
            reports,
            life: Life::Loading,
            served: 0,
            exit: None,
            stderr_tail,
            current,
            logs_done,
            _scratch: scratch,
        })
    }

    /// A child this fork-mode parent forked as `pid`, number `number`, talking on the named
    /// pipes `invocations` and `results` (open, and blocking); `parent_reports` receives what
    /// the parent says of it (routed by the parent's reader).
    pub(super) fn forked_child(
        &self,
        pid: u32,
        number: u64,
        pipes: (File, File),
        parent_reports: Receiver<ParentFrame>,
    ) -> io::Result<Worker> {
        let (invocations, results) = pipes;
        let (tx, reports) = mpsc::sync_channel(0);
        let results_copy = results.try_clone()?;
        let unit = Unit::forked(self.child_unit(number, parent_reports)?, pid);
        child::spawn_thread(move || read_frames(results, &tx, None));
        // What the parent printed before belongs to no event of the child's.
        self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // The child writes to the parent's stdout and stderr, whose log threads are the parent's.
        let (_, logs_done) = mpsc::channel();
        Ok(Worker {
            unit,
            invocations: Some(invocations),
            results: results_copy,
            reports,
            life: Life::Loading,
            served: 0,
            exit: None,
            stderr_tail: Arc::clone(&self.stderr_tail),
            current: Arc::clone(&self.current),
            logs_done,
            _scratch: None,
        })
    }

    /// What a child of this fork-mode parent needs to learn its end from it.
    fn child_unit(&self, number: u64, reports: Receiver<ParentFrame>) -> io::Result<Forked> {
        let control = match &self.invocations {
            Some(pipe) => pipe.try_clone()?,
            None => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "fd 3 is closed")),
        };
        Ok(Forked::new(self.unit.id(), self.pid(), number, control, reports))
    }

    /// A fork-mode parent: kills its child `pid` (number `number`) that never connected, and
    /// what it started; `reports` is where the parent's word of it is routed.
    pub(super) fn end_child(&self, pid: u32, number: u64, reports: Receiver<ParentFrame>) {
        match self.child_unit(number, reports) {
            Ok(forked) => {
                let mut unit = Unit::forked(forked, pid);
                unit.kill();
                let exit = unit.forked_exit(self.exit_wait());
                unit.end(exit);
            }
            Err(_) => reaper::kill_forked(self.unit.id(), self.pid(), pid),
        }
    }

    /// A fork-mode parent: asks for child `number` (its `child` frame is routed to the child's
    /// receiver). `Err` when it cannot be asked. It is not killed here: this is asked while a
    /// child of its serves an event, and killing the parent's unit would end that child too;
    /// the check before the next fork finds it dead and replaces it.
    pub(super) fn request_fork(&mut self, number: u64) -> Result<(), String> {
        let sent = match self.invocations.as_mut() {
            Some(pipe) => pipe.write_all(&frames::fork(number)).map_err(|e| e.to_string()),
            None => Err("its fd 3 is closed".to_string()),
        };
        sent.map_err(|e| format!("it could not be asked to fork ({e})"))
    }

    /// A forked child that answered is exiting: asks its parent now to reap it, so that its end
    /// is known by the time it is retired (after the answer is posted). Nothing for others.
    pub(super) fn ask_end(&mut self) {
        if self.unit.is_forked() && self.exit.is_none() {
            self.exit = self.unit.forked_exit(Duration::ZERO);
        }
    }

    /// Kills a runner that broke the protocol (`why`); it is broken from now on.
    pub(super) fn break_off(&mut self, why: &str) {
        self.kill(invalid_frame(why));
    }

    /// Whether the runner is alive, seen directly.
    pub(super) fn is_alive(&self) -> bool {
        !self.is_gone()
    }

    pub(super) fn pid(&self) -> u32 {
        self.unit.handler_pid()
    }

    pub(super) fn served(&self) -> u32 {
        self.served
    }

    /// Why it could not load the handler, if it said so.
    pub(super) fn load_failure(&self) -> Option<Diagnostic> {
        match &self.life {
            Life::LoadFailed(diagnostic) => Some(diagnostic.clone()),
            _ => None,
        }
    }

    /// Whether it can serve another event.
    pub(super) fn is_healthy(&self) -> bool {
        matches!(self.life, Life::Idle) && self.exit.is_none()
    }

    pub(super) fn is_over_memory(&self, handler: &Handler) -> bool {
        let Some(limit) = handler.max_rss_mb() else { return false };
        let over = proc::resident_mib(self.pid()).is_some_and(|mib| mib > limit);
        if over {
            info!("worker {} is over max_rss_mb = {limit}: replacing it", self.pid());
        }
        over
    }

    /// Checks a worker before it is given an event: one that died, or wrote a frame, while it
    /// held no invocation must not get it. `Err` says what it did (it is then broken).
    pub(super) fn check_idle(&mut self) -> Result<(), String> {
        if !matches!(self.life, Life::Idle) {
            return match &self.life {
                Life::Broken(diagnostic) => Err(diagnostic.error_message.clone()),
                _ => Ok(()),
            };
        }
        let why = match self.reports.try_recv() {
            // What its threads have not told yet: the runner is gone (its pipe closed, or its
            // process dead or a zombie) though the report of it may still be on its way.
            Err(TryRecvError::Empty) if self.is_gone() => "it died while idle".to_string(),
            Err(TryRecvError::Empty) => return Ok(()),
            Ok(Report::Frame(frame)) => {
                format!("it wrote a \"{}\" frame while it held no invocation", frame.verb())
            }
            Ok(Report::Exited(exit)) => {
                self.exit = Some(exit);
                match exit.status {
                    Some(status) => format!("it exited while idle ({status})"),
                    None => "it died while idle".to_string(),
                }
            }
            Ok(Report::Closed(_)) | Err(TryRecvError::Disconnected) => {
                "it closed its result pipe while idle".to_string()
            }
        };
        self.kill(Diagnostic::new(EXIT_ERROR, why.clone()));
        Err(why)
    }

    /// Whether the runner is gone, seen directly rather than from its threads' reports: its
    /// result pipe has no writer left, or its process has exited. A few microseconds.
    fn is_gone(&self) -> bool {
        let results_closed = sys::wait_closed(self.results.as_fd(), Duration::ZERO);
        results_closed || proc::read_stat(self.pid()).is_none_or(|p| p.is_zombie())
    }

    /// Waits until the runner has loaded the handler, failed to, or `until` passes.
    pub(super) fn wait_ready(&mut self, mut until: Instant) {
        while matches!(self.life, Life::Loading) {
            let report =
                match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(report) => report,
                    // It exited, but something it started still holds its result pipe.
                    Err(RecvTimeoutError::Timeout) if self.exit.is_some() => Report::Closed(None),
                    Err(RecvTimeoutError::Timeout) => return,
                    Err(RecvTimeoutError::Disconnected) => Report::Closed(None),
                };
            match report {
                Report::Frame(Frame::Ready) => self.life = Life::Idle,
                Report::Frame(Frame::Error { id: LOAD_ID, diagnostic }) => {
                    self.life = Life::LoadFailed(diagnostic)
                }
                Report::Frame(frame) => {
                    let why = format!("a \"{}\" frame before \"ready\"", frame.verb());
                    self.kill(invalid_frame(&why));
                }
                Report::Closed(why) => {
                    let death = self.death(why, until);
                    self.life = Life::Broken(death);
                }
                // Its last frame may still be in the pipe: read on until the pipe closes.
                Report::Exited(exit) => until = self.note_exit(exit, until),
            }
        }
    }

    /// Records that the runner exited, and how much longer its pipe may take to close.
    fn note_exit(&mut self, exit: Exit, until: Instant) -> Instant {
        self.exit = Some(exit);
        until.min(Instant::now() + EXIT_WAIT)
    }

    /// Runs one event: waits for the runner to be ready (within the deadline), sends the event
    /// under a new invocation id, and waits for the frames that answer it.
    pub(super) fn run(
        &mut self,
        invocation: &Invocation,
        handler: &Handler,
        stream: OpenStream,
    ) -> Outcome {
        let kill_at = child::kill_at(invocation);
        let started = Instant::now();
        self.wait_ready(kill_at);
        match &self.life {
            Life::LoadFailed(diagnostic) | Life::Broken(diagnostic) => {
                return Outcome::Failed(diagnostic.clone());
            }
            Life::Loading => {
                let timeout = diagnostics::timeout(started.elapsed());
                self.kill(timeout.clone());
                return Outcome::Failed(timeout);
            }
            Life::Idle => {}
        }
        let id = invocation_id();
        self.served += 1;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(invocation.request_id.to_string());
        if self.unit.is_forked() {
            // A process of the last event's may have stopped it while it waited.
            sys::signal(self.pid(), sys::Signal::Continue);
        }
        self.send(id, invocation);
        // The id stays until the next event: output read after the result is still this event's.
        let mut answer = Answer { id, open: Some(stream), stream: None, bytes: 0 };
        let mut outcome = self.await_result(&mut answer, kill_at, started, handler);
        if let Some(why) = reaper::stopping() {
            outcome = Outcome::Failed(diagnostics::shutdown(why));
        }
        answer.settle(outcome)
    }

    /// Writes the invoke frame. A frame that fits in the pipe's buffer (64 KiB on Linux) cannot
    /// block, since the runner is waiting for it with an empty pipe; a bigger one is written
    /// from its own thread, so that a runner that stopped reading cannot block us past the
    /// deadline.
    fn send(&mut self, id: u64, invocation: &Invocation) {
        let mut frame = frames::invoke_head(id, invocation);
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

    /// Waits for the answer to invocation `answer.id`: its result, its stream, or the worker's
    /// death, the deadline, a violation or `max_rss_mb`.
    fn await_result(
        &mut self,
        answer: &mut Answer,
        kill_at: Instant,
        started: Instant,
        handler: &Handler,
    ) -> Outcome {
        let mut until = kill_at;
        loop {
            let mut wait = until.saturating_duration_since(Instant::now());
            if handler.max_rss_mb().is_some() {
                wait = wait.min(RSS_CHECK_EVERY);
            }
            match self.reports.recv_timeout(wait) {
                Ok(Report::Frame(frame)) => {
                    if let Some(outcome) = self.on_frame(frame, answer) {
                        return outcome;
                    }
                }
                Ok(Report::Closed(why)) => return Outcome::Failed(self.death(why, kill_at)),
                // Its last frame may still be in the pipe: read on until the pipe closes.
                Ok(Report::Exited(exit)) => until = self.note_exit(exit, until),
                Err(RecvTimeoutError::Timeout)
                    if self.exit.is_some() && Instant::now() >= until =>
                {
                    return Outcome::Failed(self.death(None, kill_at));
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= kill_at => {
                    let timeout = diagnostics::timeout(started.elapsed());
                    self.kill(timeout.clone());
                    return Outcome::Failed(timeout);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(diagnostic) = self.over_memory_now(handler) {
                        self.kill(diagnostic.clone());
                        return Outcome::Failed(diagnostic);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Outcome::Failed(self.death(None, kill_at));
                }
            }
        }
    }

    /// Handles one frame of the running invocation; `Some` once the invocation is over.
    fn on_frame(&mut self, frame: Frame, answer: &mut Answer) -> Option<Outcome> {
        let id = answer.id;
        if frame.id() != Some(id) {
            let why = match frame.id() {
                None => format!("a \"{}\" frame while an event was running", frame.verb()),
                Some(other) => format!(
                    "a \"{}\" frame for invocation {other} while it ran invocation {id}",
                    frame.verb()
                ),
            };
            return Some(self.violation(&why));
        }
        match frame {
            Frame::Ok { body, .. } => Some(Outcome::Response(body)),
            Frame::Error { diagnostic, .. } => Some(Outcome::Failed(diagnostic)),
            Frame::TooLarge { .. } => {
                self.kill(diagnostics::too_large());
                Some(Outcome::Failed(diagnostics::too_large()))
            }
            Frame::Stream { content_type, .. } => {
                let Some(open) = answer.open.take() else {
                    return Some(self.violation("a second \"stream\" frame"));
                };
                match open(&content_type) {
                    Ok(stream) => answer.stream = Some(stream),
                    Err(error) => {
                        self.kill(invalid_frame("its stream could not be opened"));
                        return Some(Outcome::StreamBroken { bytes: 0, error });
                    }
                }
                None
            }
            Frame::Chunk { bytes, .. } => {
                let Some(stream) = answer.stream.as_mut() else {
                    return Some(self.violation("a chunk before a \"stream\" frame"));
                };
                match stream.write(&bytes) {
                    Ok(()) => answer.bytes += bytes.len() as u64,
                    Err(StreamWriteError::TooLarge(limit)) => {
                        let diagnostic = diagnostics::streamed_too_large(limit);
                        self.kill(diagnostic.clone());
                        return Some(Outcome::Failed(diagnostic));
                    }
                    Err(StreamWriteError::Broken(why)) => {
                        self.kill(invalid_frame("its stream broke"));
                        answer.stream = None;
                        return Some(Outcome::StreamBroken { bytes: answer.bytes, error: why });
                    }
                }
                None
            }
            Frame::Ready | Frame::Parent(_) => unreachable!("BUG: no id, refused above"),
        }
    }

    /// A protocol violation: the worker is killed, and the event gets the error.
    fn violation(&mut self, why: &str) -> Outcome {
        let diagnostic = invalid_frame(why);
        self.kill(diagnostic.clone());
        Outcome::Failed(diagnostic)
    }

    /// The error for a worker over `max_rss_mb` right now, if it is.
    fn over_memory_now(&self, handler: &Handler) -> Option<Diagnostic> {
        let limit = handler.max_rss_mb()?;
        let mib = proc::resident_mib(self.pid()).filter(|mib| *mib > limit)?;
        Some(
            Diagnostic::new(
                OUT_OF_MEMORY,
                format!("the worker used {mib} MiB, over max_rss_mb = {limit}, and was killed"),
            )
            .with_hint(format!(
                "raise max_rss_mb under {}, or lower events_per_process",
                handler.setting()
            )),
        )
    }

    /// The error for a runner that stopped talking: garbage on its result pipe (`why`), or the
    /// pipe closed because it is exiting, when we wait (at most until `until`) for its status.
    fn death(&mut self, why: Option<String>, until: Instant) -> Diagnostic {
        if let Some(why) = why {
            let diagnostic = invalid_frame(&why);
            self.kill(diagnostic.clone());
            return diagnostic;
        }
        let until = until.min(Instant::now() + self.exit_wait());
        if self.unit.is_forked() {
            self.exit = self.unit.forked_exit(until.saturating_duration_since(Instant::now()));
        }
        while self.exit.is_none() {
            match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Report::Exited(exit)) => self.exit = Some(exit),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let diagnostic = match self.exit.and_then(|exit| exit.status) {
            Some(status) => {
                let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
                diagnostics::exit(status, &tail)
            }
            None if self.exit.is_some() => Diagnostic::new(EXIT_ERROR, "the worker died"),
            None => {
                let diagnostic = Diagnostic::new(
                    EXIT_ERROR,
                    "the worker closed its result pipe but did not exit",
                );
                self.unit.kill();
                diagnostic
            }
        };
        self.life = Life::Broken(diagnostic.clone());
        diagnostic
    }

    /// How long the runner's end may take to be reported. A forked child's end is told by its
    /// parent, which a shutdown (or its own death) may have ended first: then nobody will tell
    /// it, and a stopping bootstrap has no time to wait anyway.
    fn exit_wait(&self) -> Duration {
        let told =
            !self.unit.is_forked() || (reaper::stopping().is_none() && self.unit.parent_alive());
        if told { EXIT_WAIT } else { Duration::ZERO }
    }

    /// Kills the runner and everything it started; it is broken from now on.
    fn kill(&mut self, why: Diagnostic) {
        self.unit.kill();
        self.life = Life::Broken(why);
    }

    /// Closes the runner's fd 3 (it exits at end of file), gives it `grace` to do so, then
    /// makes sure it and everything it started are gone, and what it printed last is logged.
    pub(super) fn retire(mut self, grace: Duration) {
        self.invocations = None;
        let until = Instant::now() + grace;
        while self.exit.is_none() && !self.unit.is_forked() {
            match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Report::Exited(exit)) => self.exit = Some(exit),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if self.unit.is_forked() && self.exit.is_none() {
            // Its parent reaps it once it has exited (it does so after its answer), or once
            // it is killed, and says so.
            self.exit = self.unit.forked_exit(grace);
            if self.exit.is_none() {
                self.unit.kill();
                self.exit = self.unit.forked_exit(self.exit_wait());
            }
        }
        self.unit.end(self.exit);
        let until = Instant::now() + LOG_DRAIN_WAIT;
        for _ in 0..2 {
            let wait = until.saturating_duration_since(Instant::now());
            if self.logs_done.recv_timeout(wait).is_err() {
                break; // both done (the senders are gone), or a pipe still held
            }
        }
    }
}

/// A streamed answer while it lasts: the opener until a `stream` frame, then the stream.
struct Answer {
    /// The invocation id the frames must carry.
    id: u64,
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
        .with_hint("see layers/PROTOCOL.md; the worker was replaced")
}

/// Starts the runner under its warden, with frames on fds 3 and 4.
fn spawn_runner(
    handler: &Handler,
    scratch: Option<&ScratchDir>,
    fork_dir: Option<&Path>,
) -> io::Result<(Unit, File, File)> {
    let (to_runner_read, to_runner_write) = io::pipe()?;
    let (from_runner_read, from_runner_write) = io::pipe()?;
    let mut command = child::base_command(handler);
    command.args(handler.args.iter().map(|a| a.render(|_| Vec::new())));
    child::clear_invocation_env(&mut command);
    if let Some(scratch) = scratch {
        scratch.apply(&mut command);
    }
    if let Some(dir) = fork_dir {
        command.env(ENV_ISOLATION, "fork").env(ENV_FORK_DIR, dir);
    }
    command.env(ENV_FRAMED, "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sys::pass_fds(&mut command, [to_runner_read.as_raw_fd(), from_runner_write.as_raw_fd()]);
    let unit = Unit::spawn(&mut command, true)?;
    // The runner has its copies; ours of its ends must close, or we would never see EOF.
    drop(to_runner_read);
    drop(from_runner_write);
    Ok((
        unit,
        File::from(OwnedFd::from(to_runner_write)),
        File::from(OwnedFd::from(from_runner_read)),
    ))
}

/// Where a fork-mode parent's reader sends what it says of child `.0`: to that child's
/// receiver (room for both of its frames, so that the reader never waits on one child while
/// another's word is behind it).
pub(super) type Route = Arc<Mutex<Vec<(u64, SyncSender<ParentFrame>)>>>;

/// Reads frames from the runner's fd 4 until it closes or misbehaves. A fork-mode parent's
/// report of its child's end goes to that child's worker, by `route`; anything else to ours.
fn read_frames(results: File, reports: &SyncSender<Report>, route: Option<&Route>) {
    let mut reader = BufReader::new(results);
    loop {
        let (report, last) = match frames::read_frame(&mut reader) {
            Ok(Some(Frame::Parent(frame))) if route.is_some_and(|r| routed(r, frame)) => continue,
            // The body of a response over the limit is left unread: nothing after it is a frame.
            Ok(Some(frame @ Frame::TooLarge { .. })) => (Report::Frame(frame), true),
            Ok(Some(frame)) => (Report::Frame(frame), false),
            Ok(None) => (Report::Closed(None), true),
            Err(why) => (Report::Closed(Some(why)), true),
        };
        if reports.send(report).is_err() || last {
            return;
        }
    }
}

/// Sends a parent's `frame` to the child it is about, if `route` knows that child; forgets the
/// child once it ended. Never waits: each child's receiver has room for its two frames.
fn routed(route: &Route, frame: ParentFrame) -> bool {
    let (child, ended) = match frame {
        ParentFrame::Forked { child, .. } => (child, false),
        ParentFrame::Ended { child, .. } => (child, true),
    };
    let mut route = route.lock().unwrap_or_else(|e| e.into_inner());
    let Some(at) = route.iter().position(|(n, _)| *n == child) else { return false };
    // Its receiver may be gone already: then nobody needs to know.
    let _ = route[at].1.try_send(frame);
    if ended {
        route.swap_remove(at);
    }
    true
}
