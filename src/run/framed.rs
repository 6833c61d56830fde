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

use std::time::{Duration, Instant};

use super::Options;
use super::worker::Worker;
use crate::init::Handler;
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
        WorkerSlot { handler, options, slot: Slot::Empty, retiring: None }
    }

    /// Retires the worker that served its events, then starts the worker for the next event,
    /// if none is running, and gives it `READY_WAIT` to load the handler. Called before asking
    /// `/next`. One at a time: the old one is gone before the new one starts.
    pub fn prepare(&mut self) {
        if let Some(old) = self.retiring.take() {
            old.retire(RETIRE_GRACE);
        }
        if matches!(self.slot, Slot::Empty) {
            self.slot = match Worker::start(&self.handler, &self.options) {
                Ok(worker) => Slot::Live(Box::new(worker)),
                Err(diagnostic) => Slot::Failed(diagnostic),
            };
        }
        if let Slot::Live(worker) = &mut self.slot {
            worker.wait_ready(Instant::now() + READY_WAIT);
        }
    }

    /// Why the current worker could not load the handler, if it reported that.
    pub fn load_failure(&self) -> Option<Diagnostic> {
        match &self.slot {
            Slot::Live(worker) => worker.load_failure(),
            _ => None,
        }
    }

    /// Runs one event on a worker fit to serve it, then retires the worker if it is used up,
    /// broken or too big. `stream` opens the response stream if the runner answers with one.
    pub fn run(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        let mut worker = match self.take_checked() {
            Ok(worker) => worker,
            Err(diagnostic) => return Outcome::Failed(diagnostic),
        };
        let outcome = worker.run(invocation, &self.handler, stream);
        let limit = self.handler.events_per_process();
        let used_up = limit != 0 && worker.served() >= limit;
        let healthy = worker.is_healthy() && !worker.is_over_memory(&self.handler);
        match (healthy, used_up) {
            (true, false) => self.slot = Slot::Live(worker),
            (true, true) => self.retiring = Some(worker),
            (false, _) => worker.retire(Duration::ZERO),
        }
        outcome
    }

    /// The worker for the next event: the current one if it is still fit to serve, else a
    /// fresh one (once: a worker that cannot start is that event's error).
    fn take_checked(&mut self) -> Result<Box<Worker>, Diagnostic> {
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
        Worker::start(&self.handler, &self.options).map(Box::new)
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
    }
}
