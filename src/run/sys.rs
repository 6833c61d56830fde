//! The libc layer, and the only module allowed `unsafe` code: the few process-control calls
//! that std does not offer. Killing a whole process group, waiting for a child's exit without
//! reaping it, adopting and killing orphaned descendants, handing a child extra pipes as fds 3
//! and 4, and turning signals into bytes on a pipe. Each is a thin wrapper around libc calls
//! whose arguments are plain integers or memory owned by the calling frame.
//!
//! Why not reap at once: a pid is only safe to signal while its zombie exists. We observe the
//! exit with `WNOWAIT`, kill what is left of the process group, and only then reap, so a
//! recycled pid can never receive our SIGKILL.

#![allow(unsafe_code)]

use std::fs::{self, File};
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the signal pipe, for the signal handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Sends SIGKILL to every process in the group `pgid`. A group that is already gone is fine.
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // 0 and 1 would mean "our own group" and "init"; never ours to kill
    }
    // SAFETY: killpg takes two integers and touches no memory of ours.
    // ESRCH (the group is empty) is the normal case after a clean exit.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

/// Blocks until the child `pid` has exited, leaving it a zombie so that its pid (and the
/// process group id it leads) cannot be reused until `Child::wait` reaps it.
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

/// Makes this process the reaper of its orphaned descendants, so that a grandchild which
/// escapes its process group (`setsid`, a double fork) is re-parented to us and can be killed.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Kills and reaps every child of this process except the process groups in `spare` (the
/// handlers still running in other invocations). Called after a handler's own process has been
/// reaped, when the children left are descendants that escaped its group and were re-parented
/// to us (`become_subreaper`).
///
/// The common case costs one `waitid` that answers "no children". Only when children remain
/// do we scan `/proc` for processes whose parent is us.
pub fn kill_orphans(spare: &[u32]) {
    // Each round kills the children we can see; their own children are re-parented to us and
    // show up in the next round. The bound only guards against a fork bomb outpacing us.
    for _ in 0..64 {
        if !has_children() {
            break;
        }
        let me = std::process::id();
        let orphans: Vec<Stat> = children_of(me)
            .into_iter()
            .filter(|p| !spare.contains(&p.pid) && !spare.contains(&p.group))
            .collect();
        if orphans.is_empty() {
            break;
        }
        for orphan in &orphans {
            if orphan.group == orphan.pid {
                kill_group(orphan.pid); // it leads a group of its own (setsid)
            }
            // SAFETY: kill takes two integers; the pid is our unreaped child, so it is ours.
            unsafe { libc::kill(orphan.pid as libc::pid_t, libc::SIGKILL) };
        }
        for orphan in &orphans {
            let mut status = 0;
            // SAFETY: `status` is a local integer; the pid is our child, killed just above.
            unsafe { libc::waitpid(orphan.pid as libc::pid_t, &mut status, 0) };
        }
    }
}

/// Whether this process has any child, alive or not yet reaped (without reaping any).
fn has_children() -> bool {
    // SAFETY: `info` is a zeroed siginfo_t owned by this frame; waitid writes into it only.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // With WNOHANG, waitid returns 0 while children exist (exited or not) and fails with
    // ECHILD when there are none; WNOWAIT leaves any zombie for its owner to reap.
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) == 0 }
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    pid: u32,
    parent: u32,
    group: u32,
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .filter(|stat| stat.parent == parent)
        .collect()
}

/// Reads `pid (comm) state ppid pgrp ...`. `comm` may hold spaces and parentheses, so we
/// split after the last `)`.
fn parse_stat(pid: u32, stat: &str) -> Option<Stat> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(1);
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some(Stat { pid, parent, group })
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

/// Resident memory of a process in MiB, from `/proc/<pid>/status`.
pub fn resident_mib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
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
    fn stat_parsing_survives_odd_command_names() {
        assert_eq!(
            parse_stat(42, "42 (perl) S 7 40 40 0"),
            Some(Stat { pid: 42, parent: 7, group: 40 })
        );
        assert_eq!(parse_stat(42, "42 (a) b (c)) R 9 1 1").map(|s| s.parent), Some(9));
        assert_eq!(parse_stat(42, "garbage"), None);
    }

    #[test]
    fn signals_have_names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(1000), "an unnamed signal");
    }
}
