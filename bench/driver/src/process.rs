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
