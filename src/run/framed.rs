//! Framed workers: when a runner starts, serves and retires. A runner loads the handler once,
//! then serves invocations sent as frames (`worker`, `frames`, and for runner authors
//! `layers/PROTOCOL.md`).
//!
//! The worker for the next event is started, and has loaded the handler, before bootstrap asks
//! `/next` for that event: the caller never waits for an interpreter to start. With
//! `events_per_process = 1` (the default) every event still gets a fresh process; with `N` a
//! worker serves N events; with `0` it lives as long as bootstrap. A worker is checked before
//! it gets an event: one that died or wrote a frame while idle is replaced, and the event goes
//! to the fresh one. A worker that crashes, times out, breaks the protocol or passes
//! `max_rss_mb` while it holds an event is killed and replaced, and that event gets the error.
//!
//! With `isolation = "fork"`, the worker for each event is a child forked from one loaded
//! parent (`fork`): the same slot, the same checks, a child per event, and the parent kept
//! until it dies or fails to load.

use std::time::{Duration, Instant};

use super::fork::Parent;
use super::worker::Worker;
use super::{Options, child};
use crate::init::Handler;
use crate::init::config::Isolation;
use crate::invocation::error_type::{SPAWN_ERROR, TIMEOUT};
use crate::invocation::{Diagnostic, Invocation, OpenStream, Outcome};
use crate::warn;

/// How long bootstrap waits for a worker to load before asking `/next` anyway (Lambda's init
/// budget); the event then waits for the rest, within its own deadline.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How long a worker that served its events gets, once its fd 3 is closed, to finish what it
/// does after its last answer (log lines, a stream's code after its end) and exit.
const RETIRE_GRACE: Duration = Duration::from_millis(500);

/// The framed worker of one handler (one invocation loop): at most one alive at a time.
pub struct WorkerSlot {
    handler: Handler,
    options: Options,
    slot: Slot,
    /// A worker that served its events, answered, and is to be retired before the next one
    /// starts: after the answer was posted, so that its grace is off the caller's path.
    retiring: Option<Box<Worker>>,
    /// Fork mode: the loaded parent each event's worker is forked from.
    /// Boxed: it is large, and only fork mode has one.
    parent: Option<Box<Parent>>,
}

/// What the slot holds between events.
enum Slot {
    Empty,
    /// The last worker could not be started: the next event gets this error, and the slot is
    /// tried again after it.
    Failed(Diagnostic),
    /// Boxed: a worker is large, and the slot is empty between some events.
    Live(Box<Worker>),
}

impl WorkerSlot {
    pub fn new(handler: Handler, options: Options) -> WorkerSlot {
        WorkerSlot { handler, options, slot: Slot::Empty, retiring: None, parent: None }
    }

    /// Retires the worker that served its events, then starts the worker for the next event,
    /// if none is running, and gives it `READY_WAIT` to load the handler. Called before asking
    /// `/next`. One at a time: the old one is gone before the new one starts.
    pub fn prepare(&mut self) {
        if let Some(old) = self.retiring.take() {
            old.retire(RETIRE_GRACE);
        }
        let until = Instant::now() + READY_WAIT;
        if matches!(self.slot, Slot::Empty) {
            self.slot = match self.new_worker(until) {
                Ok(worker) => Slot::Live(Box::new(worker)),
                Err(diagnostic) => Slot::Failed(diagnostic),
            };
        }
        if let Slot::Live(worker) = &mut self.slot {
            worker.wait_ready(until);
        }
    }

    /// Why the current worker (or fork mode's parent) could not load the handler, if it
    /// reported that.
    pub fn load_failure(&self) -> Option<Diagnostic> {
        if let Some(parent) = &self.parent {
            return parent.load_failure();
        }
        match &self.slot {
            Slot::Live(worker) => worker.load_failure(),
            _ => None,
        }
    }

    fn forks(&self) -> bool {
        self.handler.isolation() == Isolation::Fork
    }

    /// A fresh worker: a new runner, or in fork mode a child of the loaded parent, which is
    /// started (and loads the handler, within `until`) if there is none or it died.
    fn new_worker(&mut self, until: Instant) -> Result<Worker, Diagnostic> {
        if !self.forks() {
            return Worker::start(&self.handler, &self.options);
        }
        // A parent that could not load has said so; the next event tries a fresh one.
        if self.parent.as_ref().is_some_and(|p| p.load_failure().is_some()) {
            self.retire_parent();
        }
        for _ in 0..2 {
            let parent = match &mut self.parent {
                Some(parent) => parent,
                None => self.parent.insert(Box::new(Parent::start(&self.handler, &self.options)?)),
            };
            parent.runner().wait_ready(until);
            if let Some(diagnostic) = parent.load_failure() {
                return Err(diagnostic);
            }
            if let Err(why) = parent.runner().check_idle() {
                warn!(
                    "the fork-mode runner {}: {why}; starting a fresh one",
                    parent.runner().pid()
                );
                self.retire_parent();
                continue;
            }
            if !parent.runner().is_healthy() {
                // Still loading: it is kept, and forks for a later event once loaded.
                return Err(Diagnostic::new(
                    TIMEOUT,
                    "the handler was still loading when the event's deadline came",
                )
                .with_hint("make the handler's module-level code faster, or raise the timeout"));
            }
            match parent.fork(until) {
                Ok(child) => return Ok(child),
                Err(why) if parent.runner().is_healthy() => {
                    return Err(Diagnostic::new(
                        SPAWN_ERROR,
                        format!("cannot fork the event's process: {why}"),
                    ));
                }
                Err(why) => {
                    warn!(
                        "the fork-mode runner {}: {why}; starting a fresh one",
                        parent.runner().pid()
                    );
                    self.retire_parent();
                }
            }
        }
        Err(Diagnostic::new(
            SPAWN_ERROR,
            "the fork-mode runner died twice in a row without forking",
        ))
    }

    fn retire_parent(&mut self) {
        if let Some(parent) = self.parent.take() {
            parent.retire(Duration::ZERO);
        }
    }

    /// Runs one event on a worker fit to serve it, then retires the worker if it is used up,
    /// broken or too big. `stream` opens the response stream if the runner answers with one.
    pub fn run(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        let mut worker = match self.take_checked(child::kill_at(invocation)) {
            Ok(worker) => worker,
            Err(diagnostic) => return Outcome::Failed(diagnostic),
        };
        // Fork mode: the next event's child is forked while this one runs (`fork`).
        if let Some(parent) = self.parent.as_mut()
            && let Err(why) = parent.request()
        {
            warn!("the fork-mode runner {}: {why}; a fresh one is started", parent.runner().pid());
        }
        let outcome = worker.run(invocation, &self.handler, stream);
        let limit = self.handler.events_per_process();
        let used_up = self.forks() || (limit != 0 && worker.served() >= limit);
        let healthy = worker.is_healthy() && !worker.is_over_memory(&self.handler);
        match (healthy, used_up) {
            (true, false) => self.slot = Slot::Live(worker),
            (true, true) => {
                worker.ask_end();
                self.retiring = Some(worker);
            }
            (false, _) => worker.retire(Duration::ZERO),
        }
        outcome
    }

    /// The worker for the next event: the current one if it is still fit to serve, else a
    /// fresh one (once: a worker that cannot start is that event's error), ready by `until`.
    fn take_checked(&mut self, until: Instant) -> Result<Box<Worker>, Diagnostic> {
        match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Live(mut worker) => match worker.check_idle() {
                Ok(()) => return Ok(worker),
                Err(why) => {
                    warn!("worker {}: {why}; a fresh one takes the next event", worker.pid());
                    worker.retire(Duration::ZERO);
                }
            },
            Slot::Failed(diagnostic) => return Err(diagnostic),
            Slot::Empty => {}
        }
        self.new_worker(until).map(Box::new)
    }
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        let current = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Live(worker) => Some(worker),
            _ => None,
        };
        for worker in [self.retiring.take(), current].into_iter().flatten() {
            worker.retire(RETIRE_GRACE);
        }
        if let Some(parent) = self.parent.take() {
            parent.retire(RETIRE_GRACE);
        }
    }
}
