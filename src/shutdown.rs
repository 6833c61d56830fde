//! Stopping: on SIGTERM or SIGINT, or when the Runtime API failed, stop every running handler
//! and everything it started, let the in-flight events be answered, remove every private
//! TMPDIR and event file, and (on a signal) exit within Lambda's shutdown budget.
//!
//! Lambda sends SIGTERM when it shuts an environment down (with ~300 ms before SIGKILL when
//! extensions are registered), and Ctrl-C sends SIGINT to `bootstrap invoke`. The handlers run
//! under wardens and in process groups of their own, so the signal never reaches them: without
//! this module they would outlive bootstrap. The signal handler only writes a byte to a pipe
//! (`run::sys`); a thread reads it and does the work, so a handler that misbehaves cannot keep
//! bootstrap from acting on the signal.

use std::io::Read;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::run::reaper::{self, Stop};
use crate::run::sys;
use crate::{info, warn};

/// How long the in-flight events may take to be answered after the signal. Lambda allows
/// about 300 ms after SIGTERM when an extension is registered; we stay well inside it.
const ANSWER_BUDGET: Duration = Duration::from_millis(250);
/// The same after the Runtime API failed: no SIGKILL is coming, and the other loops' handlers
/// were only just stopped.
const API_FAILED_ANSWER_BUDGET: Duration = Duration::from_secs(2);

/// Events taken from `/next` and not yet answered.
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
static ANSWERED: Condvar = Condvar::new();

/// Makes bootstrap the reaper of orphaned handler processes (a warden that was killed leaves
/// its tree to bootstrap, not to init), and stops the running handlers on SIGTERM or SIGINT.
/// The Lambda loop and `bootstrap invoke` both call it.
pub fn guard_handlers() {
    if let Err(e) = sys::become_subreaper() {
        warn!("cannot become the reaper of orphaned handler processes: {e}");
    }
    if let Err(e) = install() {
        warn!("cannot handle SIGTERM and SIGINT: {e}");
    }
}

/// Installs the SIGTERM and SIGINT handlers and starts the thread that acts on them.
fn install() -> std::io::Result<()> {
    let mut signals = sys::signal_pipe(&[libc::SIGTERM, libc::SIGINT])?;
    thread::Builder::new().name("shutdown".into()).stack_size(64 * 1024).spawn(move || {
        let mut signal = [0u8; 1];
        if signals.read_exact(&mut signal).is_ok() {
            shut_down(i32::from(signal[0]));
        }
    })?;
    Ok(())
}

/// Stops everything, then exits with 128 + the signal number, as a shell would report it.
fn shut_down(signal: i32) {
    info!("received {}: stopping", sys::signal_name(signal));
    stop(Stop::Signal(signal));
    std::process::exit(128 + signal);
}

/// Kills every running handler and what it started (and any started from now on), gives the
/// in-flight events `ANSWER_BUDGET` to be answered, and removes every private TMPDIR and event
/// file. The Lambda loops answer their events with `Runtime.Shutdown` and stop polling.
pub fn stop(why: Stop) {
    reaper::stop_all(why);
    let budget = match why {
        Stop::Signal(_) => ANSWER_BUDGET,
        Stop::ApiFailed => API_FAILED_ANSWER_BUDGET,
    };
    let in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    let _ = ANSWERED.wait_timeout_while(in_flight, budget, |n| *n > 0);
    reaper::remove_temps();
}

/// Whether bootstrap is stopping (a signal arrived, or the Runtime API failed).
pub fn requested() -> bool {
    reaper::stopping().is_some()
}

/// Marks an event as taken from `/next`; the returned guard marks it answered when dropped.
pub fn event_started() -> EventGuard {
    *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    EventGuard(())
}

/// An event that has not been answered yet.
pub struct EventGuard(());

impl Drop for EventGuard {
    fn drop(&mut self) {
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        *in_flight = in_flight.saturating_sub(1);
        ANSWERED.notify_all();
    }
}
