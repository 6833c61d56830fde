//! One handler process and everything it starts, as a unit: the handler runs under a warden
//! (`sys::run_under_warden`) whose tree is the unit, and the unit ends with all of it gone (or
//! reported as left behind; see `reaper`). `plain` runs a unit per event, `worker` one per
//! framed runner.
//!
//! The warden reports on a pipe: the handler's pid at once, then the handler's wait status and
//! whether anything else is left in the tree. The common end, a handler that left nothing,
//! costs no reading of `/proc` at all: the warden exits with the handler, and its pipe closes.

use std::io::{self, PipeReader, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use super::child;
use super::reaper;
use super::sys::{self, WARDEN_EXIT_REPORT};
use crate::warn;

/// How long a warden that said its tree is empty may take to exit (it does so at once).
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// How the handler ended, as its warden saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// `None` when the warden died before the handler: bootstrap cannot know.
    pub status: Option<ExitStatus>,
    /// Whether the handler left processes behind (or cannot be known not to).
    pub leftovers: bool,
}

/// A handler under its warden.
pub struct Unit {
    /// The warden: its pid is the unit's; it holds the handler's stdio pipes until taken.
    warden: Option<Child>,
    handler: u32,
    report: Arc<PipeReader>,
}

impl Unit {
    /// Starts `command` under a warden, through `reaper` so that it is known from its birth.
    pub fn spawn(command: &mut Command) -> io::Result<Unit> {
        let (report, report_write) = io::pipe()?;
        sys::run_under_warden(command, report_write.as_raw_fd());
        let warden = reaper::spawn(command)?;
        // The warden holds its own copy; ours must close, or its exit would never show.
        drop(report_write);
        let mut unit = Unit { warden: Some(warden), handler: 0, report: Arc::new(report) };
        let mut pid = [0u8; 4];
        // The warden wrote the pid before `spawn` returned (see `sys::run_under_warden`).
        (&*unit.report).read_exact(&mut pid)?;
        unit.handler = u32::from_ne_bytes(pid);
        reaper::set_handler(unit.id(), unit.handler);
        Ok(unit)
    }

    /// The warden's pid, which names the unit.
    pub fn id(&self) -> u32 {
        self.warden.as_ref().map_or(0, Child::id)
    }

    /// The handler process's pid, for its memory.
    pub fn handler_pid(&self) -> u32 {
        self.handler
    }

    /// The warden's `Child`, which holds the handler's stdin, stdout and stderr until taken.
    pub fn stdio(&mut self) -> Option<&mut Child> {
        self.warden.as_mut()
    }

    /// Calls `exited` once the handler has ended, from a thread of its own.
    pub fn watch_exit(&self, exited: impl FnOnce(Exit) + Send + 'static) {
        let report = Arc::clone(&self.report);
        child::spawn_thread(move || {
            let mut message = [0u8; WARDEN_EXIT_REPORT];
            let exit = match (&*report).read_exact(&mut message) {
                Ok(()) => {
                    let raw = i32::from_ne_bytes([message[0], message[1], message[2], message[3]]);
                    Exit { status: Some(ExitStatus::from_raw(raw)), leftovers: message[4] != 0 }
                }
                Err(_) => Exit { status: None, leftovers: true },
            };
            exited(exit);
        });
    }

    /// Stops and kills everything in the unit, the handler included, without waiting: the
    /// handler's exit is then reported as usual.
    pub fn kill(&self) {
        if let Some(warden) = &self.warden {
            reaper::kill_tree(warden.id());
        }
    }

    /// Ends the unit: everything in it gone (or reported and left), its warden reaped. `exit`
    /// is what `watch_exit` reported, if it did: a handler that left nothing needs no more.
    pub fn end(&mut self, exit: Option<Exit>) {
        let Some(mut warden) = self.warden.take() else { return };
        let report = Arc::clone(&self.report);
        let closed = move |wait: Duration| sys::wait_closed(report.as_fd(), wait);
        match exit {
            Some(Exit { status: Some(_), leftovers: false }) if closed(EXIT_WAIT) => {
                reaper::kill_left_in_group(warden.id());
                let _ = warden.wait(); // it has exited: this returns at once
                reaper::forget(warden.id());
            }
            Some(Exit { status: None, .. }) if closed(Duration::ZERO) => {
                // The warden died before the handler: its tree is now bootstrap's own.
                let _ = warden.wait();
                reaper::forget(warden.id());
                if reaper::stopping().is_none() {
                    warn!("the warden of handler {} died: ending what it left", self.handler);
                    reaper::sweep_strays();
                }
            }
            _ => reaper::end_tree(warden, closed),
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.end(None);
    }
}
