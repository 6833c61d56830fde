//! One handler process and everything it starts, as a unit that ends with all of it gone (or
//! reported as left behind; see `reaper`). `plain` runs a unit per event, `worker` one per
//! framed runner.
//!
//! A unit is *warded* when other handlers may run beside it (concurrent invocations, and every
//! framed worker): the handler runs under a warden of its own (`sys::run_under_warden`), whose
//! tree is the unit. The warden reports on a pipe: the handler's pid at once, then its wait
//! status and whether anything else is left in the tree; a handler that left nothing costs no
//! reading of `/proc` at all, since the warden exits with it and its pipe closes.
//!
//! A plain event when bootstrap runs one handler at a time is a *direct* unit: everything that
//! descends from bootstrap is that handler's, so bootstrap itself is the tree's root (it is
//! the subreaper of its descendants), and the handler is spawned the cheap way (`posix_spawn`,
//! no fork of bootstrap), which a warden would cost on every event.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, PipeReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use super::child;
use super::frames::{self, ParentFrame};
use super::proc;
use super::reaper;
use super::sys::{self, WARDEN_EXEC_FAILED, WARDEN_EXIT, WARDEN_EXIT_REPORT};
use crate::warn;

/// How long a warden that said its tree is empty may take to exit (it does so at once).
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// How long a direct handler that was killed may take to die before it is reported and left.
const DIRECT_END_WAIT: Duration = Duration::from_secs(2);

/// How the handler ended, as far as it was seen when it did.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Its wait status; `None` when a warden died before its handler, or for a direct unit,
    /// whose status `Unit::end` reaps.
    pub status: Option<ExitStatus>,
    /// Whether the handler left processes behind (or cannot be known not to).
    pub leftovers: bool,
}

/// A handler and what it starts.
pub struct Unit {
    kind: Kind,
    handler: u32,
}

enum Kind {
    /// Under its warden, whose `Child` holds the handler's stdio pipes until taken.
    Warded { warden: Option<Child>, report: Arc<PipeReader> },
    /// bootstrap's own child; `None` once reaped or left.
    Direct { child: Option<Child> },
    /// A child that a fork-mode runner forked for one event: the parent reaps it when asked
    /// and reports its end, and what it started is found under the parent's warden.
    Forked(Box<Forked>),
}

/// A forked child's parent, and how to learn the child's end from it.
pub struct Forked {
    pub warden: u32,
    pub parent: u32,
    /// The child's number in the parent's frames.
    pub number: u64,
    /// A copy of our end of the parent's fd 3, to send `reap <number>`.
    pub control: File,
    /// The parent's frames about this child, routed to it.
    pub reports: Receiver<ParentFrame>,
    reap_asked: bool,
    exit: Option<Exit>,
    ended: bool,
}

impl Forked {
    pub fn new(
        warden: u32,
        parent: u32,
        number: u64,
        control: File,
        reports: Receiver<ParentFrame>,
    ) -> Forked {
        Forked {
            warden,
            parent,
            number,
            control,
            reports,
            reap_asked: false,
            exit: None,
            ended: false,
        }
    }

    /// The child's end: asks the parent to reap it (once), and waits up to `wait` for the
    /// answer. Ask only once the child answered, died or was killed: the parent waits for it.
    fn exit(&mut self, wait: Duration) -> Option<Exit> {
        if self.exit.is_some() {
            return self.exit;
        }
        if !self.reap_asked {
            self.reap_asked = true;
            if (&self.control).write_all(&frames::reap(self.number)).is_err() {
                return None; // the parent is gone: nobody will tell
            }
        }
        let until = Instant::now() + wait;
        loop {
            match self.reports.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(ParentFrame::Ended { status, .. }) => {
                    self.exit = Some(Exit { status: Some(status), leftovers: true });
                    return self.exit;
                }
                Ok(ParentFrame::Forked { .. }) => {}
                Err(_) => return None,
            }
        }
    }

    fn parent_alive(&self) -> bool {
        proc::read_stat(self.parent).is_some_and(|p| !p.is_zombie())
    }
}

impl Unit {
    /// Starts `command`, through `reaper` so that it is known from its birth: under a warden
    /// when `warded`, else as bootstrap's own child (see the module comment).
    pub fn spawn(command: &mut Command, warded: bool) -> io::Result<Unit> {
        if !warded {
            let child = reaper::spawn(command, false)?;
            let handler = child.id();
            return Ok(Unit { kind: Kind::Direct { child: Some(child) }, handler });
        }
        let (report, report_write) = io::pipe()?;
        sys::run_under_warden(command, exec_of(command, report_write.as_raw_fd())?);
        let warden = reaper::spawn(command, true)?;
        // The warden holds its own copy; ours must close, or its exit would never show.
        drop(report_write);
        let report = Arc::new(report);
        let mut unit = Unit { kind: Kind::Warded { warden: Some(warden), report }, handler: 0 };
        // The warden wrote the pid before `spawn` returned (see `sys::run_under_warden`), and
        // before that why the handler could not be started, if it could not.
        let mut message = [0u8; 5];
        if let Kind::Warded { report, .. } = &unit.kind {
            (&**report).read_exact(&mut message)?;
        }
        let number = [message[1], message[2], message[3], message[4]];
        if message[0] == WARDEN_EXEC_FAILED {
            return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(number)));
        }
        unit.handler = u32::from_ne_bytes(number);
        reaper::set_handler(unit.id(), unit.handler);
        Ok(unit)
    }

    /// A child that a fork-mode runner forked as `pid`.
    pub fn forked(forked: Forked, pid: u32) -> Unit {
        Unit { kind: Kind::Forked(Box::new(forked)), handler: pid }
    }

    /// The unit's pid: its warden's, or its handler's when direct or forked.
    pub fn id(&self) -> u32 {
        match &self.kind {
            Kind::Warded { warden, .. } => warden.as_ref().map_or(0, Child::id),
            Kind::Direct { .. } | Kind::Forked { .. } => self.handler,
        }
    }

    /// Whether a forked child's parent is still there to report its end (others: true).
    pub fn parent_alive(&self) -> bool {
        match &self.kind {
            Kind::Forked(forked) => forked.parent_alive(),
            _ => true,
        }
    }

    /// A forked child's end, asked of its parent (see `Forked::exit`); `None` for other units,
    /// whose end `watch_exit` reports.
    pub fn forked_exit(&mut self, wait: Duration) -> Option<Exit> {
        match &mut self.kind {
            Kind::Forked(forked) => forked.exit(wait),
            _ => None,
        }
    }

    /// Whether its handler is a forked child, whose end its parent reports.
    pub fn is_forked(&self) -> bool {
        matches!(self.kind, Kind::Forked { .. })
    }

    /// The handler process's pid, for its memory.
    pub fn handler_pid(&self) -> u32 {
        self.handler
    }

    /// The `Child` that holds the handler's stdin, stdout and stderr until taken.
    pub fn stdio(&mut self) -> Option<&mut Child> {
        match &mut self.kind {
            Kind::Warded { warden, .. } => warden.as_mut(),
            Kind::Direct { child } => child.as_mut(),
            Kind::Forked(_) => None,
        }
    }

    /// Calls `exited` once the handler has ended, from a thread of its own. A forked child's
    /// end is reported by its parent instead (`fork`): never called.
    pub fn watch_exit(&self, exited: impl FnOnce(Exit) + Send + 'static) {
        match &self.kind {
            Kind::Warded { report, .. } => {
                let report = Arc::clone(report);
                child::spawn_thread(move || exited(read_exit(&report)));
            }
            Kind::Direct { .. } => {
                let pid = self.handler;
                child::spawn_thread(move || {
                    // If waitid fails the child is not ours to wait for; it counts as gone. It
                    // stays a zombie until `end` reaps it, so its pid cannot be reused meanwhile.
                    let _ = sys::wait_exited_unreaped(pid);
                    exited(Exit { status: None, leftovers: true });
                });
            }
            Kind::Forked(_) => {}
        }
    }

    /// Stops and kills everything in the unit, the handler included, without waiting: the
    /// handler's exit is then reported as usual.
    pub fn kill(&self) {
        match &self.kind {
            Kind::Warded { warden: Some(warden), .. } => reaper::kill_tree(warden.id()),
            Kind::Warded { warden: None, .. } => {}
            Kind::Direct { .. } => reaper::kill_strays(),
            Kind::Forked(forked) => reaper::kill_forked(forked.warden, forked.parent, self.handler),
        }
    }

    /// Ends the unit: everything in it gone (or reported and left), its warden or handler
    /// reaped. `exit` is what `watch_exit` reported, if it did: a warded handler that left
    /// nothing needs no more. Returns the handler's wait status, when known.
    pub fn end(&mut self, exit: Option<Exit>) -> Option<ExitStatus> {
        match &mut self.kind {
            Kind::Warded { warden, report } => {
                let warden = warden.take()?;
                end_warded(warden, Arc::clone(report), exit, self.handler);
                exit.and_then(|exit| exit.status)
            }
            Kind::Direct { child } => {
                let status = reap_direct(child.take()?, exit.is_some());
                // Anything else under bootstrap is what this handler left (see `Kind::Direct`).
                if sys::has_children() {
                    reaper::sweep_strays();
                }
                status
            }
            Kind::Forked(forked) if forked.ended => None,
            Kind::Forked(forked) => {
                forked.ended = true;
                let (warden, parent, child) = (forked.warden, forked.parent, self.handler);
                // Without its parent (dead, or killed with everything by a shutdown) nobody
                // will reap it or tell its end, and the rest is ended with the parent's unit.
                let told = forked.parent_alive() && reaper::stopping().is_none();
                let exit = exit.or(forked.exit).or_else(|| {
                    reaper::kill_forked(warden, parent, child);
                    forked.exit(if told { EXIT_WAIT } else { Duration::ZERO })
                });
                if told {
                    reaper::end_forked(warden, parent, child);
                }
                exit.and_then(|exit| exit.status)
            }
        }
    }
}

/// Reads the warden's report of the handler's end.
fn read_exit(report: &PipeReader) -> Exit {
    let mut message = [0u8; WARDEN_EXIT_REPORT];
    match (&*report).read_exact(&mut message) {
        Ok(()) if message[0] == WARDEN_EXIT => {
            let raw = i32::from_ne_bytes([message[1], message[2], message[3], message[4]]);
            Exit { status: Some(ExitStatus::from_raw(raw)), leftovers: message[5] != 0 }
        }
        _ => Exit { status: None, leftovers: true },
    }
}

/// Ends a warded unit: waits for a warden whose tree is empty to exit, or ends its tree.
fn end_warded(mut warden: Child, report: Arc<PipeReader>, exit: Option<Exit>, handler: u32) {
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
                warn!("the warden of handler {handler} died: ending what it left");
                reaper::sweep_strays();
            }
        }
        _ => reaper::end_tree(warden, closed),
    }
}

/// Reaps a direct handler: at once when it has exited (`exited`), else after killing what
/// descends from bootstrap, within `DIRECT_END_WAIT`; one that will not die is reported and
/// left, for `reaper` to reap when it ends.
fn reap_direct(mut child: Child, exited: bool) -> Option<ExitStatus> {
    let pid = child.id();
    if exited {
        // Where there is no subreaper (qemu-user), what stayed in its process group.
        reaper::kill_left_in_group(pid);
        let status = child.wait().ok();
        reaper::forget(pid);
        return status;
    }
    reaper::kill_strays();
    let until = Instant::now() + DIRECT_END_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                reaper::forget(pid);
                return Some(status);
            }
            Err(_) => {
                reaper::forget(pid);
                return None;
            }
            Ok(None) if Instant::now() >= until => break,
            Ok(None) => thread::sleep(Duration::from_millis(1)),
        }
    }
    warn!("handler {} would not die and is left behind; bootstrap goes on without it", child.id());
    reaper::leave(child);
    None
}

/// What the handler's process execs: `command`'s program and arguments, and the environment it
/// would get (bootstrap's, with `command`'s changes), as `Command::spawn` would build them.
/// bootstrap's own environment is read here only to be passed on, never to be used.
fn exec_of(command: &Command, report: RawFd) -> io::Result<sys::Exec> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => env.insert(name.to_owned(), value.to_owned()),
            None => env.remove(name),
        };
    }
    sys::Exec::new(command.get_program(), command.get_args(), env.into_iter(), report)
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.end(None);
    }
}
