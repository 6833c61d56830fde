//! The handler processes that are running, and the ending of everything they started.
//!
//! A handler runs under a warden of its own (`sys::run_under_warden`), the child subreaper of
//! the handler's whole tree, whenever another handler may run beside it: what a handler started
//! is what descends from its warden, whatever it did to its session or process group, and no
//! other invocation's process is ever in that tree. A plain handler that runs alone is a direct
//! child of bootstrap, and its tree is all that descends from bootstrap (`unit`). Ending a tree does not depend on process groups or on a number
//! of rounds: the warden is stopped first (so that nothing in the tree is reaped, and no pid
//! freed, while it is read), then every process in the tree is stopped, reading `/proc` again
//! until a reading finds no process it had not seen (a stopped process cannot fork, so the tree
//! can only grow through one not yet stopped, which a reading would find); then all of it is
//! killed and the warden let go to reap it. Every wait for a death is bounded: a process that
//! will not die (uninterruptible, or held by a tracer outside the tree) is reported and left,
//! with its warden, and reaped whenever it ends. Stopping is not bounded: a chain that forks as
//! fast as it can is chased until it is caught (`stop_descendants`), since giving up would
//! leave it running for good.
//!
//! A warden that dies before its tree (a handler may kill its parent) leaves the tree to
//! bootstrap, the outer subreaper; `sweep_strays` ends what descends from bootstrap outside the
//! live wardens' trees. A shutdown (`stop_all`) ends every tree, and any started after it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::proc::{self, Snapshot};
use super::sys::{self, Signal};
use crate::warn;

/// How long a warden we stopped may take to show it: it is asleep in `waitpid`, and stops as
/// soon as it runs, which on a loaded machine may take a while.
const STOP_WAIT: Duration = Duration::from_secs(1);
/// How long one pass of ending a tree waits for the warden to reap it and exit.
const PASS_WAIT: Duration = Duration::from_millis(250);
/// How long ending a tree may take in all, before what will not die is reported and left.
const END_WAIT: Duration = Duration::from_secs(2);

/// The units not ended yet, and what else must go when bootstrap does.
struct Registry {
    /// Each live unit: bootstrap's child (a warden, or a direct handler) and its handler's pid
    /// (0 until a warden has said it).
    live: Vec<Live>,
    /// Wardens whose trees would not die: left, and reaped once they end.
    stuck: Vec<Child>,
    /// Private TMPDIRs and event files, removed when bootstrap stops if not before.
    temp_paths: Vec<PathBuf>,
}

/// One live unit.
struct Live {
    child: u32,
    handler: u32,
    /// Whether `child` is a warden, whose tree is the unit's own (not a stray's).
    warded: bool,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { live: Vec::new(), stuck: Vec::new(), temp_paths: Vec::new() });
/// 0 while running; the signal number once a shutdown signal arrived; `API_FAILED` once the
/// Runtime API failed.
static STOPPING: AtomicI32 = AtomicI32::new(0);
const API_FAILED: i32 = -1;

/// Why bootstrap is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM or SIGINT, by number.
    Signal(i32),
    /// The Runtime API failed (a 500, or no answer): Lambda will start a new environment.
    ApiFailed,
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `command` and records it, in one step under the lock: a stray sweep never takes a
/// warden being born for a stray. `warded`: `command` was set up with `sys::run_under_warden`;
/// else it is a direct handler. If bootstrap is stopping, the new unit is killed at once.
pub fn spawn(command: &mut Command, warded: bool) -> io::Result<Child> {
    let mut registry = registry();
    reap_stuck(&mut registry);
    let child = command.spawn()?;
    let handler = if warded { 0 } else { child.id() };
    registry.live.push(Live { child: child.id(), handler, warded });
    if stopping().is_some() {
        sys::signal(child.id(), Signal::Kill);
    }
    Ok(child)
}

/// Records the handler's pid of the tree under `warden`.
pub fn set_handler(warden: u32, handler: u32) {
    let mut registry = registry();
    if let Some(entry) = registry.live.iter_mut().find(|l| l.child == warden) {
        entry.handler = handler;
    }
}

/// Forgets a unit whose child (warden or direct handler) has been reaped.
pub fn forget(child: u32) {
    registry().live.retain(|l| l.child != child);
}

/// Keeps a direct handler that would not die, to be reaped once it ends.
pub fn leave(child: Child) {
    let mut registry = registry();
    registry.live.retain(|l| l.child != child.id());
    registry.stuck.push(child);
}

/// The handlers running now (a framed worker between events, too); `bootstrap serve` reads
/// their peak memory.
pub fn running() -> Vec<u32> {
    registry().live.iter().map(|l| l.handler).filter(|h| *h != 0).collect()
}

/// Stops every process in the tree under `warden` and kills it, without waiting; the warden is
/// let go afterwards, to reap the tree and exit.
pub fn kill_tree(warden: u32) {
    sys::signal(warden, Signal::Stop);
    sys::wait_stopped(warden, STOP_WAIT);
    for pid in stop_descendants(warden, |_| false) {
        sys::signal(pid, Signal::Kill);
    }
    sys::signal(warden, Signal::Continue);
}

/// Stops and kills a fork-mode child and everything it started, without waiting, and what its
/// finished events left (the warden's tree but for `parent`, the loaded runner, and what
/// `parent` itself started while it loaded). The warden and the parent are stopped first, so
/// that neither reaps (and frees a pid) nor forks while the tree is read; both are let go
/// afterwards, and the parent reaps the child and reports its end.
pub fn kill_forked(warden: u32, parent: u32, child: u32) {
    sys::signal(warden, Signal::Stop);
    sys::wait_stopped(warden, STOP_WAIT);
    sys::signal(parent, Signal::Stop);
    wait_shows_stopped(parent);
    let mut doomed = Vec::new();
    // Only while it is still the parent's child (not reaped, its pid not reused).
    if proc::read_stat(child).is_some_and(|p| p.parent == parent) {
        sys::signal(child, Signal::Stop);
        doomed.push(child);
        doomed.extend(stop_descendants(child, |_| false));
    }
    doomed.extend(stop_descendants(warden, |pid| pid == parent));
    for pid in doomed {
        sys::signal(pid, Signal::Kill);
    }
    // Where there is no subreaper (qemu-user), what stayed in the child's process group.
    sys::kill_group(child);
    sys::signal(parent, Signal::Continue);
    sys::signal(warden, Signal::Continue);
}

/// Ends what a fork-mode child that has exited (and was reaped by `parent`) left behind, within
/// `END_WAIT`: anything in the warden's tree but the parent's own, and anything still in the
/// child's process group. Whether nothing was left; the cheap check (one small `/proc` file and
/// one `killpg`) is all an event that left nothing pays.
pub fn end_forked(warden: u32, parent: u32, child: u32) -> bool {
    let left = || {
        let outside_parent = match proc::children(warden) {
            Some(children) => children.iter().any(|pid| *pid != parent),
            None => !Snapshot::take().descendants_except(warden, |pid| pid == parent).is_empty(),
        };
        outside_parent || sys::group_exists(child)
    };
    if !left() {
        return true;
    }
    let until = Instant::now() + END_WAIT;
    while left() {
        if Instant::now() >= until {
            let strays = Snapshot::take().descendants_except(warden, |pid| pid == parent);
            warn!(
                "processes an event started would not die within {} s and are left behind: {}; \
                 bootstrap goes on without them",
                END_WAIT.as_secs(),
                describe(&strays)
            );
            return false;
        }
        kill_forked(warden, parent, child);
        thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Waits (within `STOP_WAIT`) until `/proc` shows `pid`, not our child, stopped or gone.
fn wait_shows_stopped(pid: u32) {
    let until = Instant::now() + STOP_WAIT;
    while proc::read_stat(pid).is_some_and(|p| !matches!(p.state, 'T' | 't' | 'Z' | 'X')) {
        if Instant::now() >= until {
            return;
        }
        thread::sleep(Duration::from_micros(50));
    }
}

/// Kills what is left in the process group of a warden that has exited and is not yet reaped
/// (so its pid still names the group). Where the kernel refuses a child subreaper (qemu-user),
/// a process whose parent exited leaves the warden's tree; one that stayed in the handler's
/// process group is still found here. Elsewhere the group is empty by now: one cheap call.
pub fn kill_left_in_group(warden: u32) {
    sys::kill_group(warden);
}

/// Ends the tree under `warden` (its handler included) and reaps the warden, within
/// `END_WAIT`; `closed` waits (up to its argument) until the warden has exited. Whatever will
/// not die is reported and left.
pub fn end_tree(mut warden: Child, closed: impl Fn(Duration) -> bool) {
    let until = Instant::now() + END_WAIT;
    loop {
        kill_tree(warden.id());
        let wait = PASS_WAIT.min(until.saturating_duration_since(Instant::now()));
        if closed(wait) {
            kill_left_in_group(warden.id());
            let _ = warden.wait(); // it has exited: this returns at once
            forget(warden.id());
            return;
        }
        if Instant::now() >= until {
            break;
        }
    }
    let left = describe(&Snapshot::take().descendants(warden.id()));
    warn!(
        "processes a handler started would not die within {} s and are left behind: {left}; \
         bootstrap goes on without them",
        END_WAIT.as_secs()
    );
    let mut registry = registry();
    registry.live.retain(|l| l.child != warden.id());
    registry.stuck.push(warden);
}

/// Stops and kills whatever descends from bootstrap outside the live wardens' trees, without
/// waiting: a direct handler and what it started, or the tree of a warden that died.
pub fn kill_strays() {
    let registry = registry();
    let wardens = wardens(&registry);
    for pid in stop_descendants(std::process::id(), |pid| wardens.contains(&pid)) {
        sys::signal(pid, Signal::Kill);
    }
}

/// The wardens (live or stuck), whose trees are not strays.
fn wardens(registry: &Registry) -> HashSet<u32> {
    let live = registry.live.iter().filter(|l| l.warded).map(|l| l.child);
    live.chain(registry.stuck.iter().map(Child::id)).collect()
}

/// Ends whatever descends from bootstrap outside the live wardens' trees: what a direct
/// handler left, or the tree of a warden that died before it. Reaps what became bootstrap's
/// children, within `END_WAIT`.
pub fn sweep_strays() {
    let me = std::process::id();
    kill_strays();
    let until = Instant::now() + END_WAIT;
    loop {
        let wardens = wardens(&registry());
        let strays = Snapshot::take().descendants_except(me, |pid| wardens.contains(&pid));
        if strays.is_empty() {
            return;
        }
        for stray in strays.iter().filter(|p| p.parent == me && p.is_zombie()) {
            sys::try_reap(stray.pid);
        }
        if Instant::now() >= until {
            warn!("processes would not die and are left behind: {}", describe(&strays));
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Kills every handler's tree and every stray, and from now on every new one: bootstrap is
/// stopping. The supervisors see their handlers gone and answer their events.
pub fn stop_all(why: Stop) {
    let code = match why {
        Stop::Signal(signal) => signal,
        Stop::ApiFailed => API_FAILED,
    };
    let _ = STOPPING.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    let registry = registry();
    for live in registry.live.iter().filter(|l| l.warded) {
        kill_tree(live.child);
        // Its death closes its report pipe, which wakes its supervisor.
        sys::signal(live.child, Signal::Kill);
    }
    // What a warden that died before its tree left to bootstrap, and the stuck ones.
    for pid in stop_descendants(std::process::id(), |_| false) {
        sys::signal(pid, Signal::Kill);
    }
}

/// Why bootstrap is stopping, once it is.
pub fn stopping() -> Option<Stop> {
    match STOPPING.load(Ordering::SeqCst) {
        0 => None,
        API_FAILED => Some(Stop::ApiFailed),
        signal => Some(Stop::Signal(signal)),
    }
}

/// Records a private TMPDIR or event file, to be removed when bootstrap stops if not before.
pub fn track_temp(path: PathBuf) {
    registry().temp_paths.push(path);
}

/// Forgets a temporary path that has been removed.
pub fn untrack_temp(path: &std::path::Path) {
    registry().temp_paths.retain(|p| p != path);
}

/// Removes every private TMPDIR and event file still there: bootstrap is about to exit.
pub fn remove_temps() {
    for path in std::mem::take(&mut registry().temp_paths) {
        // A directory (TMPDIR) or a file (an event); already gone is fine.
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
}

/// Stops every process that descends from `root`, leaving out the subtrees `skip` picks, and
/// returns the pids of those alive (all stopped now), to be killed. Reads `/proc` until a
/// reading finds no process it had not seen: a stopped process cannot fork, so a process not
/// yet seen can only come from one not yet stopped, which that reading would have found.
/// Exited ones (zombies) count as seen: their parents are stopped too (`root` is, or does not
/// reap), so they stay until the tree is let go, and a process that forked and exited between
/// two readings still shows. A process is known by its pid and its start time, so that a pid
/// freed and reused meanwhile is a new process, not one already seen.
///
/// Before each full reading, the children of `root` are read again and again (one small file)
/// and each new one is stopped at once, until a read finds nothing new: a chain that forks and
/// exits as fast as it can, each process in a session of its own, is adopted by `root` link by
/// link, and is caught there long before a full reading of `/proc` could catch up with it.
fn stop_descendants(root: u32, skip: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut chased = HashSet::new();
    let mut seen = HashSet::new();
    loop {
        while let Some(children) = proc::children(root) {
            let new: Vec<u32> =
                children.into_iter().filter(|pid| !skip(*pid) && chased.insert(*pid)).collect();
            if new.is_empty() {
                break;
            }
            // A zombie ignores the signal; stopping before reading its state is what is quick.
            new.into_iter().for_each(|pid| sys::signal(pid, Signal::Stop));
        }
        let tree = Snapshot::take().descendants_except(root, &skip);
        let mut new = false;
        for process in &tree {
            if seen.insert((process.pid, process.start)) {
                new = true;
                if !process.is_zombie() {
                    sys::signal(process.pid, Signal::Stop);
                }
            }
        }
        if !new {
            return tree.iter().filter(|p| !p.is_zombie()).map(|p| p.pid).collect();
        }
    }
}

/// Reaps the stuck wardens that have ended since.
fn reap_stuck(registry: &mut Registry) {
    registry.stuck.retain_mut(|warden| !matches!(warden.try_wait(), Ok(Some(_)) | Err(_)));
}

/// `pid 12 (uninterruptible), pid 13 (traced)`, for a warning.
fn describe(procs: &[super::proc::Proc]) -> String {
    let mut text = String::new();
    for proc in procs.iter().filter(|p| !p.is_zombie()).take(20) {
        let state = match proc.state {
            'D' => "uninterruptible",
            't' => "held by a tracer",
            'T' => "stopped",
            _ => "running",
        };
        let _ =
            write!(text, "{}pid {} ({state})", if text.is_empty() { "" } else { ", " }, proc.pid);
    }
    if text.is_empty() { "only exited processes not yet reaped".to_string() } else { text }
}
