//! The handler processes that are running, and the ones they left behind.
//!
//! Every handler process (plain or framed) is started through `spawn_tracked`, which records
//! its process group; it is reaped through `reap`, which kills what is left of the group, reaps
//! the leader and then sweeps the orphans that escaped it. Both hold one lock, so that with
//! concurrent invocations an orphan sweep never takes another invocation's process. A shutdown
//! (`stop_all`) kills every tracked group, and any started after it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::sys;

/// Process groups of handlers that are running (their leaders not yet reaped).
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Set once bootstrap is shutting down.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Starts a handler process and records its process group, in one step under the lock: an
/// orphan sweep never sees it untracked. If a shutdown has begun, the group is killed at once.
pub fn spawn_tracked(command: &mut Command) -> io::Result<Child> {
    let mut groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    let child = command.spawn()?;
    groups.push(child.id());
    if stopping() {
        sys::kill_group(child.id());
    }
    Ok(child)
}

/// Ends a handler process that has exited (or must go): kills what is left of its group while
/// its zombie still holds the group id, reaps it, then kills and reaps whatever escaped the
/// group. Untracking and reaping happen under the lock, so that an orphan sweep sees the
/// leader either tracked or gone, never as a stray zombie to take.
pub fn reap(child: &mut Child) -> io::Result<ExitStatus> {
    let pid = child.id();
    sys::kill_group(pid);
    let status = {
        let mut groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
        groups.retain(|g| *g != pid);
        child.wait()
    };
    sweep_orphans();
    status
}

/// Kills the process group of a running handler (its leader stays to be reaped).
pub fn kill_group(pgid: u32) {
    sys::kill_group(pgid);
}

/// Kills and reaps the children that belong to no running handler (see `sys::kill_orphans`),
/// under the lock: with concurrent invocations, the handlers of the other loops are spared.
pub fn sweep_orphans() {
    let groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    sys::kill_orphans(&groups);
}

/// Kills every running handler's group, and from now on every new one: bootstrap is shutting
/// down.
pub fn stop_all() {
    STOPPING.store(true, Ordering::SeqCst);
    let groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    for &group in groups.iter() {
        sys::kill_group(group);
    }
}

/// The leaders of the handler process groups running now (`bootstrap serve` reads their peak
/// memory for its REPORT lines).
pub fn running() -> Vec<u32> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether bootstrap is shutting down.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}
