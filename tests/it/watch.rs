//! Watching processes from a test, through `/proc` and pidfds: whether one is gone, what
//! descends from bootstrap, a process group; for the supervisor's tests (issue 11).

use std::fs;
use std::path::Path;

use crate::support::*;

/// Blocks until process `pid` has exited (a zombie counts), without polling: a pidfd becomes
/// readable when its process ends. Panics after `PATIENCE`.
#[track_caller]
pub fn wait_gone(pid: u32) {
    // SAFETY: pidfd_open takes two integers; the descriptor it returns is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as libc::c_int;
    if fd < 0 {
        return; // already gone (ESRCH)
    }
    let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ms = PATIENCE.as_millis() as libc::c_int;
    // SAFETY: one pollfd owned by this frame; then the pidfd is closed.
    let ready = unsafe { libc::poll(&mut poll, 1, ms) };
    unsafe { libc::close(fd) };
    assert!(ready == 1 || is_gone(pid), "process {pid} did not end within {PATIENCE:?}");
}

/// Every process that descends from `pid` and has not exited, with its state letter.
pub fn live_descendants(pid: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for (child, state) in children(parent) {
            if state != 'Z' {
                found.push((child, state));
            }
            next.push(child);
        }
    }
    found
}

/// Asserts that nothing descends from bootstrap but at most `workers` processes, each a warden
/// with its one handler (a framed worker started ahead), and no zombie.
#[track_caller]
pub fn assert_only_workers(run: &Run, workers: usize) {
    let left = live_descendants(run.pid());
    let zombies: Vec<_> = children(run.pid()).into_iter().filter(|(_, s)| *s == 'Z').collect();
    assert!(
        left.len() <= 2 * workers && zombies.is_empty(),
        "processes left behind (pid, state): {left:?}, zombies {zombies:?}; log:\n{}",
        run.log()
    );
}

/// The process group of `pid`.
pub fn pgid_of(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat has a command name");
    rest.split_whitespace().nth(2).and_then(|g| g.parse().ok()).expect("a process group")
}

/// The pids written one per line in `path` (none if it does not exist).
pub fn pids_in(path: &Path) -> Vec<u32> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Opens the FIFO at `path` and writes a line: the fixture waiting on it goes on.
pub fn open_gate(path: &Path) {
    fs::write(path, "go\n").expect("write the gate FIFO");
}
