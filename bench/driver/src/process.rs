//! Starting, watching and stopping the runtime under test.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// argv, extra environment (on top of the driver's own) and working directory.
#[derive(Debug, Clone)]
pub struct Spec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
}

impl Spec {
    pub fn command(&self) -> io::Result<Command> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        // A relative path with a slash means relative to the driver's directory, not to `cwd`.
        let program = if program.contains('/') && !program.starts_with('/') {
            std::env::current_dir()?.join(program).into_os_string()
        } else {
            program.into()
        };
        let mut cmd = Command::new(program);
        cmd.args(args).envs(&self.env);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        Ok(cmd)
    }
}

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// The runtime process, in a process group of its own so that whatever it forks (curl, a
/// handler) can be stopped with it.
pub struct Runtime {
    child: Child,
    pub spawned: Instant,
    reaped: Option<ExitStatus>,
}

impl Runtime {
    /// Start `spec` with AWS_LAMBDA_RUNTIME_API pointing at `api`; stdout and stderr go to `log`.
    pub fn spawn(spec: &Spec, api: &str, log: &Path) -> io::Result<Runtime> {
        let log = File::create(log)?;
        let mut cmd = spec.command()?;
        cmd.env("AWS_LAMBDA_RUNTIME_API", api)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let spawned = Instant::now();
        let child = cmd.spawn()?;
        Ok(Runtime { child, spawned, reaped: None })
    }

    /// Start `bootstrap serve` (`spec`): stderr goes to `log`, stdout is returned, for the
    /// address line it prints first.
    pub fn spawn_serve(spec: &Spec, log: &Path) -> io::Result<(Runtime, ChildStdout)> {
        let log = File::create(log)?;
        let mut cmd = spec.command()?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).process_group(0);
        let spawned = Instant::now();
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("stdout not piped"))?;
        Ok((Runtime { child, spawned, reaped: None }, stdout))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (a zombie not yet reaped counts as exited). Does not reap,
    /// so the process group id stays ours until `stop`.
    pub fn exited(&self) -> bool {
        self.reaped.is_some() || !alive(self.pid())
    }

    /// Peak resident set size of the runtime process itself, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// SIGTERM to the group, up to `grace` for the process to exit, then SIGKILL to the whole
    /// group (stragglers included), then reap. Returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.reaped {
            return Some(status);
        }
        let pgid = self.pid() as i32;
        // The group id cannot be reused while its leader is unreaped, so these signals only
        // reach processes this driver started.
        unsafe { kill(-pgid, SIGTERM) };
        let until = Instant::now() + grace;
        while alive(self.pid()) && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        unsafe { kill(-pgid, SIGKILL) };
        self.reaped = self.child.wait().ok();
        self.reaped
    }

    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() && self.exited() {
            return self.stop(Duration::ZERO);
        }
        self.reaped
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(500));
    }
}

/// SIGTERM to one process (not its group).
pub fn terminate(pid: u32) {
    unsafe { kill(pid as i32, SIGTERM) };
}

/// The parent process id, by /proc/<pid>/stat.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name: the state, then the parent's id.
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// `root` and every process below it, parents before their children, from a scan of /proc.
pub fn tree(root: u32) -> Vec<u32> {
    let mut links: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(ppid) = parent(pid) {
                links.push((ppid, pid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        let mut children: Vec<u32> = links.iter().filter(|l| l.0 == p).map(|l| l.1).collect();
        children.sort_unstable();
        found.extend(children);
        i += 1;
    }
    found
}

/// Running or stopped (not a zombie, not gone), by /proc/<pid>/stat.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x") | None)
}

/// The first meaningful line of a log file, for an error message.
pub fn first_log_line(log: &Path) -> Option<String> {
    let text = fs::read(log).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// One process's state and CPU time (user + system, in clock ticks), by /proc/<pid>/stat.
fn state_and_cpu(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the command name: state (field 3), ..., utime (14), stime (15).
    let cpu = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((fields.first()?.to_string(), cpu))
}

/// The resident memory of one descendant of the runtime.
#[derive(Debug, Clone, Default)]
pub struct ProcMem {
    pub pid: u32,
    pub ppid: u32,
    /// A copy of the runtime's own executable that never exec'd (bootstrap's warden).
    pub warden: bool,
    pub rss_kib: u64,
    /// From /proc/<pid>/smaps_rollup; `None` where it cannot be read (then Pss = Rss is used).
    pub pss_kib: Option<u64>,
    pub private_dirty_kib: Option<u64>,
}

/// What the runtime's descendants hold, summed, at one moment.
#[derive(Debug, Clone, Default)]
pub struct TreeMem {
    pub procs: Vec<ProcMem>,
    /// The tree was not idle (some process ran, or the tree changed) within the wait.
    pub unsettled: bool,
}

impl TreeMem {
    pub fn rss_kib(&self) -> u64 {
        self.procs.iter().map(|p| p.rss_kib).sum()
    }
    /// Proportional set size: a page shared by k processes counts 1/k in each.
    pub fn pss_kib(&self) -> u64 {
        self.procs.iter().map(|p| p.pss_kib.unwrap_or(p.rss_kib)).sum()
    }
    pub fn wardens_pss_kib(&self) -> u64 {
        self.procs.iter().filter(|p| p.warden).map(|p| p.pss_kib.unwrap_or(p.rss_kib)).sum()
    }
    /// Whether Pss was read for every process (else Rss stood in for some).
    pub fn pss_complete(&self) -> bool {
        self.procs.iter().all(|p| p.pss_kib.is_some())
    }
    /// Processes forked by a runner process (not by bootstrap or its warden): a fork-mode
    /// child waiting for its event, with its Private_Dirty.
    pub fn forked_children(&self) -> Vec<&ProcMem> {
        let runner = |pid: u32| self.procs.iter().any(|p| p.pid == pid && !p.warden);
        self.procs.iter().filter(|p| !p.warden && runner(p.ppid)).collect()
    }
}

fn smaps_rollup(pid: u32) -> Option<(u64, u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("Rss:")?, field("Pss:")?, field("Private_Dirty:")?))
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The memory of every live descendant of `root` (not `root` itself), read once the tree is
/// idle: every descendant asleep and none of them using CPU over `SETTLE`, and the same
/// processes as before; after `wait` it is read as it is, and marked unsettled. A runner that
/// is still loading its handler is running, so it is not caught half loaded.
pub fn tree_memory(root: u32, wait: Duration) -> TreeMem {
    const SETTLE: Duration = Duration::from_millis(10);
    let exe = |pid: u32| fs::read_link(format!("/proc/{pid}/exe")).ok();
    let root_exe = exe(root);
    let snapshot = || -> Vec<(u32, String, u64)> {
        tree(root)
            .into_iter()
            .skip(1)
            .filter_map(|pid| state_and_cpu(pid).map(|(s, cpu)| (pid, s, cpu)))
            .filter(|(_, s, _)| !matches!(s.as_str(), "Z" | "X" | "x"))
            .collect()
    };
    let until = Instant::now() + wait;
    let mut before = snapshot();
    let unsettled = loop {
        thread::sleep(SETTLE);
        let now = snapshot();
        let asleep = now.iter().all(|(_, s, _)| matches!(s.as_str(), "S" | "D" | "I" | "T" | "t"));
        if asleep && now == before {
            break false;
        }
        if Instant::now() >= until {
            break true;
        }
        before = now;
    };
    let procs = before
        .iter()
        .filter_map(|&(pid, _, _)| {
            let ppid = parent(pid)?;
            let warden = root_exe.is_some() && exe(pid) == root_exe;
            Some(match smaps_rollup(pid) {
                Some((rss, pss, dirty)) => ProcMem {
                    pid,
                    ppid,
                    warden,
                    rss_kib: rss,
                    pss_kib: Some(pss),
                    private_dirty_kib: Some(dirty),
                },
                None => ProcMem { pid, ppid, warden, rss_kib: vm_rss(pid)?, ..Default::default() },
            })
        })
        .collect();
    TreeMem { procs, unsettled }
}
