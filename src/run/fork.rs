//! Fork mode (`isolation = "fork"`): a runner that loads the handler once, the *parent*, and a
//! child forked from it for every event, which serves that one event and exits. Every event
//! starts from the same loaded state, and a fork costs far less than starting an interpreter.
//!
//! The parent is a framed worker (`worker`) that never runs the handler: it answers `fork <n>`
//! with `child <n> <pid>`, and `reap <n>` with the child's end. Each child talks to bootstrap
//! on a pair of named pipes of its own, made here in a private directory before it is forked,
//! so that what a child leaves half-written when it is killed dies with its pipes, never
//! reaching another child. The child is a worker too (its `Unit` is `forked`): it is timed
//! out, killed and contained like any other, and what it started is found under the parent's
//! warden, while the parent goes on.
//!
//! `framed` asks for the next event's child (`request`) as soon as the current one has its
//! event, so that the fork and the child's first steps run beside the event, off the caller's
//! path; it takes the child (`fork`) after the current one and everything it started are
//! gone, before asking `/next`. So a parent has at most two children: the one serving, and the
//! next one, idle, which gets no event before the one serving is gone. A child's invocation id
//! is random, and an idle child that wrote anything is replaced, so a process of the serving
//! child that reaches the next one's pipes cannot answer for it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Options;
use super::child::ScratchDir;
use super::frames::ParentFrame;
use super::sys;
use super::worker::{Route, Worker};
use crate::init::Handler;
use crate::invocation::Diagnostic;
use crate::invocation::error_type::SPAWN_ERROR;

/// A loaded fork-mode runner and what it needs to fork children.
pub(super) struct Parent {
    runner: Worker,
    /// Where the children's named pipes are made; removed with the parent.
    dir: ScratchDir,
    /// Where the runner's frames about each child go: to that child's receiver.
    route: Route,
    /// The number of the next child.
    next: u64,
    /// The child asked for and not taken yet.
    pending: Option<Pending>,
}

/// A child asked for: its number, its pipes, and where the parent's frames about it arrive.
struct Pending {
    number: u64,
    pipes: Pipes,
    reports: Receiver<ParentFrame>,
}

/// How often a wait for the parent's word checks that it is still alive.
const PARENT_CHECK_EVERY: Duration = Duration::from_millis(20);

impl Parent {
    /// Starts the runner; it loads the handler (`wait_ready`) before it forks anything.
    pub(super) fn start(handler: &Handler, options: &Options) -> Result<Parent, Diagnostic> {
        let dir = ScratchDir::create_for("fork").map_err(|e| {
            Diagnostic::new(SPAWN_ERROR, format!("cannot create a private directory: {e}"))
                .with_hint("make TMPDIR (default /tmp) a writable directory")
        })?;
        let route: Route = Arc::new(Mutex::new(Vec::new()));
        let runner =
            Worker::start_runner(handler, options, Some((dir.path(), Arc::clone(&route))))?;
        Ok(Parent { runner, dir, route, next: 1, pending: None })
    }

    pub(super) fn runner(&mut self) -> &mut Worker {
        &mut self.runner
    }

    /// Why it could not load the handler, if it said so.
    pub(super) fn load_failure(&self) -> Option<Diagnostic> {
        self.runner.load_failure()
    }

    /// Asks the loaded parent for the next child, without waiting for it (once; `fork` takes
    /// it). `Err` when the parent cannot be asked; it is left as it is, since a child of its may
    /// be serving an event (`fork` ends it).
    pub(super) fn request(&mut self) -> Result<(), String> {
        if self.pending.is_some() {
            return Ok(());
        }
        let number = self.next;
        self.next += 1;
        let pipes = Pipes::make(self.dir.path().to_path_buf(), number)
            .map_err(|e| format!("cannot make the named pipes of a child: {e}"))?;
        // Room for the child's two frames: the reader never waits on a receiver.
        let (to_child, reports) = mpsc::sync_channel(2);
        self.route.lock().unwrap_or_else(|e| e.into_inner()).push((number, to_child));
        self.runner.request_fork(number)?;
        self.pending = Some(Pending { number, pipes, reports });
        Ok(())
    }

    /// The next child, connected: the one asked for already, or a new one. It is ready to
    /// serve once its worker's `wait_ready` says so. `Err` when the parent cannot fork (it is
    /// then broken: the caller replaces it), or the child could not be reached (it is then
    /// ended).
    pub(super) fn fork(&mut self, until: Instant) -> Result<Worker, String> {
        // No child of its serves now: a parent that cannot be asked is broken, and ended.
        if let Err(why) = self.request() {
            self.runner.break_off(&why);
            return Err(why);
        }
        let Some(Pending { number, pipes, reports }) = self.pending.take() else {
            return Err("BUG: no child asked for".to_string());
        };
        let pid = match self.forked(&reports, until) {
            Ok(pid) => pid,
            Err(why) => {
                self.runner.break_off(&why);
                return Err(why);
            }
        };
        match pipes.connect(until) {
            Ok(ends) => {
                self.runner.forked_child(pid, number, ends, reports).map_err(|e| e.to_string())
            }
            Err(why) => {
                // A child that never opened its pipes is ended with what it started, as any.
                self.runner.end_child(pid, number, reports);
                Err(format!("child {pid} did not connect: {why}"))
            }
        }
    }

    /// Waits (until `until`) for the parent to say it forked the child, and returns its pid.
    fn forked(&self, reports: &Receiver<ParentFrame>, until: Instant) -> Result<u32, String> {
        loop {
            let wait = until.saturating_duration_since(Instant::now()).min(PARENT_CHECK_EVERY);
            match reports.recv_timeout(wait) {
                Ok(ParentFrame::Forked { pid, .. }) => return Ok(pid),
                Ok(ParentFrame::Ended { .. }) => {
                    return Err("it said a child ended before it said it forked it".to_string());
                }
                Err(RecvTimeoutError::Disconnected) => return Err("it died".to_string()),
                Err(RecvTimeoutError::Timeout) if !self.runner.is_alive() => {
                    return Err("it died".to_string());
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= until => {
                    return Err("it did not fork in time".to_string());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Closes the parent's fd 3 (it exits), and ends it and everything it started.
    pub(super) fn retire(self, grace: Duration) {
        let Parent { runner, dir, pending, .. } = self;
        drop(pending);
        runner.retire(grace);
        drop(dir);
    }
}

/// One child's named pipes, while it connects: `<n>.in` (its fd 3) and `<n>.out` (its fd 4).
struct Pipes {
    input: PathBuf,
    output: PathBuf,
    /// Our end of `<n>.in`, open for reading and writing, so that the child's open for reading
    /// does not wait; replaced by a write-only end once the child has it open.
    _input_end: File,
    /// Our end of `<n>.out`, open for reading without waiting for a writer.
    output_end: File,
}

impl Pipes {
    fn make(dir: PathBuf, n: u64) -> io::Result<Pipes> {
        let input = dir.join(format!("{n}.in"));
        let output = dir.join(format!("{n}.out"));
        sys::make_fifo(&input)?;
        sys::make_fifo(&output)?;
        let output_end =
            OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&output)?;
        let input_end = OpenOptions::new().read(true).write(true).open(&input)?;
        Ok(Pipes { input, output, _input_end: input_end, output_end })
    }

    /// Waits (until `until`) for the child to open both pipes and write its first frame; then
    /// our ends for the invoke frame and for the child's frames, both blocking, and the names
    /// removed.
    fn connect(self, until: Instant) -> Result<(File, File), String> {
        let wait = until.saturating_duration_since(Instant::now());
        if !sys::wait_readable(self.output_end.as_fd(), wait) {
            return Err("it wrote nothing on its pipe in time".to_string());
        }
        let connect = || -> io::Result<(File, File)> {
            sys::set_blocking(self.output_end.as_fd())?;
            // The child has `<n>.in` open by now (it opens it before `<n>.out`): a write-only
            // end, so that a write fails once it is gone instead of filling the pipe.
            let input = OpenOptions::new().write(true).open(&self.input)?;
            Ok((input, self.output_end.try_clone()?))
        };
        connect().map_err(|e| e.to_string())
    }
}

impl Drop for Pipes {
    fn drop(&mut self) {
        // Open ends keep the pipes; the names are not needed once the child has opened them.
        let _ = fs::remove_file(&self.input);
        let _ = fs::remove_file(&self.output);
    }
}
