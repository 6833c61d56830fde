//! The libc layer, and the only module allowed `unsafe` code: the few process-control calls
//! that std does not offer. Signalling one process, waiting for a child to stop or a pipe to
//! close within a bound, reaping a given child without blocking, the warden that every handler
//! runs under, handing a child extra pipes as fds 3 and 4, and turning signals into bytes on a
//! pipe. Each is a thin wrapper around libc calls whose arguments are plain integers or memory
//! owned by the calling frame.
//!
//! The warden is the one piece of code here that runs on its own: between fork and exec of a
//! handler, the child starts the handler's process itself (`run_under_warden`) and becomes the
//! warden, a copy of bootstrap that never execs. The warden is
//! the child subreaper of everything the handler starts, so that a process which double-forks,
//! calls `setsid` or changes its process group still has the warden as an ancestor, and nothing
//! else: what a handler started is found by parentage (`contain`), and no other invocation's
//! process is ever among it. It tells bootstrap the handler's pid, then its wait status and
//! whether anything else is left; it reaps everything else it adopts, and exits when its tree
//! is empty. Between fork and exec only async-signal-safe calls are allowed (the parent has
//! threads), so it allocates nothing and calls only system calls.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Write end of the signal pipe, for the signal handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The warden's reports, each a tag byte and then numbers in native order: `WARDEN_PID` and
/// the handler's pid (4 bytes), first; `WARDEN_EXEC_FAILED` and the errno (4 bytes), before it,
/// when the handler could not be started; `WARDEN_EXIT`, the handler's wait status (4 bytes)
/// and 1 when anything else is left in its tree, 0 when not (the warden then exits at once).
pub const WARDEN_PID: u8 = b'P';
pub const WARDEN_EXEC_FAILED: u8 = b'E';
pub const WARDEN_EXIT: u8 = b'X';
/// The longest report: `WARDEN_EXIT`'s.
pub const WARDEN_EXIT_REPORT: usize = 6;
/// The stack the handler's process has between its clone and its exec.
const EXEC_STACK: usize = 64 * 1024;
/// Signals the warden ignores: it must outlive its tree, and only bootstrap's SIGKILL ends it
/// early. SIGCHLD keeps its default, or children would be reaped without `waitpid`; SIGUSR2 is
/// `BOOTSTRAP_DIED`.
const IGNORED_BY_WARDEN: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];
/// The warden's parent-death signal: bootstrap was killed (SIGKILL, which nothing can catch).
const BOOTSTRAP_DIED: libc::c_int = libc::SIGUSR2;
/// Where the warden stops closing descriptors one by one if `close_range` is missing.
const FALLBACK_MAX_FD: RawFd = 4096;

/// The signals bootstrap sends to the processes of a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Continue,
    Kill,
}

/// Sends `signal` to the process `pid`. Never to 0, 1 or ourselves, whatever a caller read.
pub fn signal(pid: u32, signal: Signal) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid <= 1 || pid as u32 == std::process::id() {
        return;
    }
    let number = match signal {
        Signal::Stop => libc::SIGSTOP,
        Signal::Continue => libc::SIGCONT,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill takes two integers and touches no memory of ours. ESRCH (it is gone) is fine.
    unsafe { libc::kill(pid, number) };
}

/// Sends SIGKILL to every process in the group `pgid` (the syntax check's). A group that is
/// already gone is fine.
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return };
    if pgid <= 1 {
        return; // 0 and 1 would mean "our own group" and "init"; never ours to kill
    }
    // SAFETY: killpg takes two integers and touches no memory of ours.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

/// Whether any process is in the group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return false };
    // SAFETY: killpg with signal 0 only checks; it takes two integers.
    pgid > 1 && unsafe { libc::killpg(pgid, 0) } == 0
}

/// Makes a named pipe at `path`, readable and writable by its owner only.
pub fn make_fifo(path: &std::path::Path) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a pipe's path"))?;
    // SAFETY: `path` is a NUL-terminated string owned by this frame.
    if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns `O_NONBLOCK` off on `fd`.
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow, with integer arguments.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` until `fd` has something to read, or its writers have come and gone;
/// whether it does.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let ms = libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        let mut poll = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd owned by this frame.
        let rc = unsafe { libc::poll(&mut poll, 1, ms) };
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if rc != 0 {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}

/// Blocks until the child `pid` has exited, leaving it a zombie so that its pid cannot be
/// reused until it is reaped (a direct handler: see `unit`).
pub fn wait_exited_unreaped(pid: u32) -> io::Result<()> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: `info` is a zeroed siginfo_t owned by this frame; waitid writes into it only.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether this process has any child, alive or not yet reaped (without reaping any).
pub fn has_children() -> bool {
    // SAFETY: `info` is a zeroed siginfo_t owned by this frame; waitid writes into it only.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // With WNOHANG, waitid returns 0 while children exist (exited or not) and fails with
    // ECHILD when there are none; WNOWAIT leaves any zombie for its owner to reap.
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) == 0 }
}

/// Makes this process the reaper of its orphaned descendants: a warden that was killed leaves
/// its tree to us, not to init.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// What the handler's process runs, built before any fork: the child that execs it shares the
/// warden's memory until it does (see `run_under_warden`), so it may allocate nothing.
pub struct Exec {
    path: CString,
    /// The strings `argv` and `envp` point into.
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// The stack of the child until it execs.
    stack: Vec<u8>,
    /// The warden's report pipe, where an exec that fails says why.
    report: RawFd,
}

// SAFETY: the pointers in `argv` and `envp` point into `_strings`, owned by the same value and
// never changed after `new`; moving the value between threads moves their owner with them.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

impl Exec {
    /// `program` with `args` (after `program` as argv[0]) and exactly the environment `env`;
    /// an exec that fails is reported on the pipe `report`.
    pub fn new<'a>(
        program: &OsStr,
        args: impl Iterator<Item = &'a OsStr>,
        env: impl Iterator<Item = (OsString, OsString)>,
        report: RawFd,
    ) -> io::Result<Exec> {
        let c = |bytes: Vec<u8>| CString::new(bytes).map_err(io::Error::other);
        let path = c(program.as_bytes().to_vec())?;
        let mut strings = vec![path.clone()];
        for arg in args {
            strings.push(c(arg.as_bytes().to_vec())?);
        }
        let arg_count = strings.len();
        for (name, value) in env {
            strings.push(c([name.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
        let pointers = |strings: &[CString]| {
            let mut list: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
            list.push(std::ptr::null());
            list
        };
        let argv = pointers(&strings[..arg_count]);
        let envp = pointers(&strings[arg_count..]);
        Ok(Exec { path, _strings: strings, argv, envp, stack: vec![0; EXEC_STACK], report })
    }
}

/// Runs `exec` under a warden (see the module comment) in place of `command`'s program, with
/// everything else `command` sets up (stdio, directory, process group, fds 3 and 4). The process
/// `spawn` returns is the warden; it writes `WARDEN_PID` before `spawn` returns (after
/// `WARDEN_EXEC_FAILED` if the exec failed), and `WARDEN_EXIT` when the handler has ended.
///
/// The handler is started with `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does: it
/// borrows the warden's memory until it execs, so the warden costs one fork of bootstrap, not
/// two (a fork copies the page tables, hundreds of microseconds on a small VM).
pub fn run_under_warden(command: &mut Command, mut exec: Exec) {
    let bootstrap = std::process::id() as libc::pid_t;
    let hook = move || {
        // SAFETY: prctl, clone and everything `warden` and `exec_handler` call are
        // async-signal-safe system calls on integers and on memory `exec` owns; nothing
        // allocates or takes a lock. The clone child runs on `exec.stack` while the warden is
        // suspended (CLONE_VFORK), until it execs or exits.
        unsafe {
            // The warden goes with bootstrap (the thread that started it, which lives as long
            // as its loop), and takes its process group with it (see `on_bootstrap_death`).
            libc::prctl(libc::PR_SET_PDEATHSIG, BOOTSTRAP_DIED as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != bootstrap {
                return Err(io::Error::other("bootstrap ended while it started a handler"));
            }
            // Failing (qemu-user has no PR_SET_CHILD_SUBREAPER) leaves orphans to bootstrap.
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
            // The stack grows down from its end, 16-byte aligned as every ABI wants.
            let end = exec.stack.as_mut_ptr().add(exec.stack.len());
            let top = end.sub(end as usize % 16);
            let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
            let arg = (&exec as *const Exec).cast_mut().cast();
            match libc::clone(exec_handler, top.cast(), flags, arg) {
                -1 => Err(io::Error::last_os_error()),
                handler => warden(handler, exec.report),
            }
        }
    };
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe calls.
    unsafe { command.pre_exec(hook) };
}

/// The handler's process until it execs: exec, or say why not and exit.
extern "C" fn exec_handler(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Exec` of `run_under_warden`, alive while the warden is suspended;
    // execvpe, write and _exit are async-signal-safe.
    unsafe {
        let exec = &*(arg as *const Exec);
        libc::execvpe(exec.path.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr());
        let errno = *libc::__errno_location();
        let mut message = [WARDEN_EXEC_FAILED; 5];
        message[1..].copy_from_slice(&errno.to_ne_bytes());
        write_all(exec.report, &message);
        libc::_exit(127)
    }
}

/// The warden's life: report the handler's pid, keep only the report pipe, then reap until its
/// tree is empty, reporting the handler's end on the way.
///
/// SAFETY: to be called in a forked child, where only async-signal-safe calls are allowed.
unsafe fn warden(handler: libc::pid_t, report: RawFd) -> ! {
    unsafe {
        let mut pid = [WARDEN_PID; 5];
        pid[1..].copy_from_slice(&(handler as u32).to_ne_bytes());
        write_all(report, &pid);
        // Everything else it inherited (the handler's pipes, fds 3 and 4, std's exec-error
        // pipe, other invocations' descriptors) would keep them open: close it all.
        close_all_but(report);
        for signal in IGNORED_BY_WARDEN {
            libc::signal(signal, libc::SIG_IGN);
        }
        let on_death = on_bootstrap_death as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(BOOTSTRAP_DIED, on_death);
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == handler {
                let left = reap_exited();
                let mut message = [WARDEN_EXIT; WARDEN_EXIT_REPORT];
                message[1..5].copy_from_slice(&status.to_ne_bytes());
                message[5] = u8::from(left);
                write_all(report, &message);
                if !left {
                    libc::_exit(0);
                }
            } else if pid < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(0); // ECHILD: its tree is empty
            }
        }
    }
}

/// In the warden, when bootstrap died without ending its tree: kill the warden's process group,
/// itself included. Best effort (a process that left the group stays); containment by
/// parentage needs a living bootstrap.
extern "C" fn on_bootstrap_death(_: libc::c_int) {
    // SAFETY: kill is async-signal-safe and takes two integers; 0 is our own process group.
    unsafe { libc::kill(0, libc::SIGKILL) };
}

/// Reaps the children that have already exited; whether any child is left.
///
/// SAFETY: async-signal-safe; for the warden.
unsafe fn reap_exited() -> bool {
    loop {
        let mut status = 0;
        match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
            0 => return true,
            pid if pid > 0 => continue,
            _ if unsafe { *libc::__errno_location() } == libc::EINTR => continue,
            _ => return false,
        }
    }
}

/// SAFETY: async-signal-safe; `bytes` is memory of the caller's frame.
unsafe fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        } else {
            return; // bootstrap is gone, or stopped listening: nothing to tell
        }
    }
}

/// SAFETY: async-signal-safe; closes every descriptor but `keep`.
unsafe fn close_all_but(keep: RawFd) {
    let range = |first: RawFd, last: libc::c_uint| unsafe {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, last, 0) == 0
    };
    let ranged =
        (keep == 0 || range(0, (keep - 1) as libc::c_uint)) && range(keep + 1, libc::c_uint::MAX);
    if !ranged {
        // Before Linux 5.9: one by one, up to a bound no bootstrap reaches.
        for fd in (0..FALLBACK_MAX_FD).filter(|fd| *fd != keep) {
            unsafe { libc::close(fd) };
        }
    }
}

/// Waits up to `timeout` for our child `pid` to stop or exit (without reaping it); whether it
/// did. Polls: a child we just sent SIGSTOP stops within microseconds.
pub fn wait_stopped(pid: u32, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    let mut pause = Duration::from_micros(10);
    loop {
        // SAFETY: `info` is a zeroed siginfo_t owned by this frame; waitid writes into it only.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WSTOPPED | libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, flags) };
        // SAFETY: waitid filled `info` (or left it zeroed: no child has changed state).
        if rc != 0 || unsafe { info.si_pid() } != 0 {
            return rc == 0;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// Waits up to `timeout` until every write end of the pipe `fd` is closed; whether they are.
/// Reads nothing: what is still in the pipe is left to its reader.
pub fn wait_closed(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let ms = libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        // No events asked for: poll reports POLLHUP (and errors) whatever is asked.
        let mut poll = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
        // SAFETY: one pollfd owned by this frame.
        let rc = unsafe { libc::poll(&mut poll, 1, ms) };
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if rc != 0 {
            return true; // closed, or a descriptor poll cannot watch: nothing to wait for
        }
        if left.is_zero() {
            return false;
        }
    }
}

/// Reaps our child `pid` if it has exited; whether it is gone (reaped now, or not ours).
pub fn try_reap(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    let mut status = 0;
    // SAFETY: `status` is a local integer.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) != 0 }
}

/// Makes `fds[0]` and `fds[1]` (parent-side descriptors, close-on-exec) appear in the child as
/// fds 3 and 4, inherited across exec. Everything else stays close-on-exec.
pub fn pass_fds(command: &mut Command, fds: [RawFd; 2]) {
    let [read_end, write_end] = fds;
    let hook = move || {
        // Move both out of the way first (to 10 and up), so that neither dup2 below can
        // overwrite the other when one of them already is 3 or 4. dup2 clears close-on-exec.
        // SAFETY: fcntl and dup2 are async-signal-safe and touch only descriptors.
        unsafe {
            let high_read = libc::fcntl(read_end, libc::F_DUPFD_CLOEXEC, 10);
            let high_write = libc::fcntl(write_end, libc::F_DUPFD_CLOEXEC, 10);
            if high_read < 0
                || high_write < 0
                || libc::dup2(high_read, 3) < 0
                || libc::dup2(high_write, 4) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only calls async-signal-safe functions;
    // it allocates nothing and takes no locks.
    unsafe { command.pre_exec(hook) };
}

/// Makes each of `signals` write its number, as one byte, to a pipe; returns the read end.
/// Writing to a pipe is the one thing a signal handler may safely do; the reader acts on it.
pub fn signal_pipe(signals: &[libc::c_int]) -> io::Result<File> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    SIGNAL_PIPE.store(fds[1], Ordering::SeqCst);
    // SAFETY: fds[0] is a fresh descriptor we own from here on.
    let reader = unsafe { File::from_raw_fd(fds[0]) };
    for &signal in signals {
        // SAFETY: a zeroed sigaction with a plain handler; on_signal is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(reader)
}

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; the byte lives on this stack frame.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// `ru_maxrss` of the children this process has reaped (and of the descendants they reaped):
/// the largest resident set any of them reached, in KiB (`bootstrap serve`'s REPORT lines).
pub fn children_peak_rss_kib() -> Option<u64> {
    // SAFETY: getrusage writes into the zeroed struct owned by this frame and reads nothing.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return None;
    }
    u64::try_from(usage.ru_maxrss).ok()
}

/// The conventional name of a signal, for error messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "an unnamed signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_have_names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(1000), "an unnamed signal");
    }
}
