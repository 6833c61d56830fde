//! SIGTERM and SIGINT: stop the running handler's process group, let the in-flight event be
//! answered, and exit within Lambda's shutdown budget.
//!
//! Lambda sends SIGTERM when it shuts an environment down (with ~300 ms before SIGKILL when
//! extensions are registered), and Ctrl-C sends SIGINT to `bootstrap invoke`. The handlers run
//! in process groups of their own, so the signal never reaches them: without this module they
//! would outlive bootstrap. The signal handler only writes a byte to a pipe (the one thing a
//! signal handler may safely do); a thread reads it and does the work.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::FromRawFd;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::process;

/// How long the in-flight event may take to be answered after the signal. Lambda allows
/// about 300 ms after SIGTERM when an extension is registered; we stay well inside it.
const ANSWER_BUDGET: Duration = Duration::from_millis(250);

/// Write end of the self-pipe, for the signal handler.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static REQUESTED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State { groups: Vec::new(), in_flight: 0 });
static ANSWERED: Condvar = Condvar::new();

struct State {
    /// Process groups of handlers that are running (their leaders not yet reaped).
    groups: Vec<u32>,
    /// Events taken from `/next` and not yet answered.
    in_flight: usize,
}

/// Installs the SIGTERM and SIGINT handlers and starts the thread that acts on them.
pub fn install() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    PIPE_WRITE.store(fds[1], Ordering::SeqCst);
    // SAFETY: fds[0] is a fresh descriptor we own from here on.
    let mut reader = unsafe { File::from_raw_fd(fds[0]) };
    thread::Builder::new().name("shutdown".into()).stack_size(64 * 1024).spawn(move || {
        let mut signal = [0u8; 1];
        if reader.read_exact(&mut signal).is_ok() {
            shut_down(i32::from(signal[0]));
        }
    })?;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a plain handler; on_signal is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; the byte lives on this stack frame.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Kills every running handler, gives the in-flight event `ANSWER_BUDGET` to be answered,
/// then exits with 128 + the signal number, as a shell would report it.
fn shut_down(signal: i32) {
    REQUESTED.store(true, Ordering::SeqCst);
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    for &group in &state.groups {
        process::kill_group(group);
    }
    crate::info!("received {}: stopping", process::signal_name(signal));
    let _ = ANSWERED.wait_timeout_while(state, ANSWER_BUDGET, |s| s.in_flight > 0);
    std::process::exit(128 + signal);
}

/// Whether a shutdown signal has arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Marks an event as taken from `/next`; the returned guard marks it answered when dropped.
pub fn event_started() -> EventGuard {
    STATE.lock().unwrap_or_else(|e| e.into_inner()).in_flight += 1;
    EventGuard(())
}

/// An event that has not been answered yet.
pub struct EventGuard(());

impl Drop for EventGuard {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        state.in_flight = state.in_flight.saturating_sub(1);
        ANSWERED.notify_all();
    }
}

/// Starts a handler process and records its process group, so a shutdown can kill it, in one
/// step under the lock: an orphan sweep never sees it untracked. If the shutdown has already
/// begun, the group is killed at once.
pub fn spawn_tracked(command: &mut Command) -> io::Result<Child> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let child = command.spawn()?;
    state.groups.push(child.id());
    if requested() {
        process::kill_group(child.id());
    }
    Ok(child)
}

/// Forgets a process group and reaps its leader with `reap`, both under the lock, so that an
/// orphan sweep sees the leader either tracked or gone, never as a stray zombie to take.
pub fn untrack_reaping<T>(group: u32, reap: impl FnOnce() -> T) -> T {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.groups.retain(|g| *g != group);
    reap()
}

/// Kills and reaps the children that belong to no running handler (see
/// `process::kill_orphans`), under the lock: with concurrent invocations, the handlers of the
/// other loops are spared.
pub fn sweep_orphans() {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    process::kill_orphans(&state.groups);
}
