//! One handler process, plain or framed: its command (program, task root, process group,
//! environment), the threads that copy its output to the log, and the private temporary files
//! and directories it is given. `unit` runs it under its warden; `plain` and `worker` build on
//! both.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::reaper;
use crate::init::Handler;
use crate::invocation::error_type::SPAWN_ERROR;
use crate::invocation::{Diagnostic, Invocation, context};
use crate::log;

/// How long before Lambda's deadline we kill the handler, so our own error is posted first.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);
/// How much of the handler's stderr we keep for the error message.
const STDERR_TAIL_BYTES: usize = 4096;
/// Threads here only copy bytes; they need little stack.
const THREAD_STACK: usize = 64 * 1024;
/// `TMPDIR`, which most languages' temporary-file functions honour.
pub const ENV_TMPDIR: &str = "TMPDIR";

/// The handler's program in its own process group, in the task root, with `HOME` if needed.
///
/// `_HANDLER` and `LAMBDA_TASK_ROOT` are the values in use (they differ from bootstrap's own
/// under `bootstrap invoke --handler`), so that a runner can read the name exactly as AWS's
/// runtime for its language does; `BOOTSTRAP_CONVENTION` names the entry's `convention`.
pub(super) fn base_command(handler: &Handler) -> Command {
    use crate::env::{ENV_CONVENTION, ENV_HANDLER, ENV_HOME, ENV_TASK_ROOT};
    let mut command = Command::new(&handler.program);
    command.current_dir(&handler.task_root).process_group(0);
    command.env(ENV_HANDLER, handler.name.text()).env(ENV_TASK_ROOT, &handler.task_root);
    match handler.interpreter.as_ref().and_then(|i| i.convention.as_deref()) {
        Some(convention) => command.env(ENV_CONVENTION, convention),
        None => command.env_remove(ENV_CONVENTION),
    };
    if handler.needs_home {
        command.env(ENV_HOME, "/tmp");
    }
    command
}

/// Sets this invocation's per-event variables on `command`, and removes those Lambda did not
/// send, so that a value bootstrap itself inherited cannot pose as this event's.
pub(super) fn set_invocation_env(command: &mut Command, invocation: &Invocation) {
    for (name, value) in invocation.environment() {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
}

/// Removes every per-event variable: a framed runner sets them itself for each event.
pub(super) fn clear_invocation_env(command: &mut Command) {
    for name in context::variables() {
        command.env_remove(name);
    }
}

/// When to kill the handler: `DEADLINE_MARGIN` before the invocation's deadline.
pub(super) fn kill_at(inv: &Invocation) -> Instant {
    Instant::now() + inv.deadline.remaining(SystemTime::now()).saturating_sub(DEADLINE_MARGIN)
}

pub(super) fn spawn_thread(job: impl FnOnce() + Send + 'static) {
    // If the thread cannot start, its pipe closes when `job` drops, which every reader treats
    // as end of input; nothing waits forever.
    let _ = thread::Builder::new().stack_size(THREAD_STACK).spawn(job);
}

/// Copies the handler's stderr to ours as it arrives, and returns its last few KiB.
pub(super) fn forward_stderr(stderr: ChildStderr, current: &CurrentRequest) -> Vec<u8> {
    let mut tail = Vec::with_capacity(STDERR_TAIL_BYTES * 2);
    copy_to_log(stderr, current, |bytes| keep_tail(&mut tail, bytes));
    tail
}

/// The request a handler process is working on, for its log records; a framed worker's
/// changes from event to event.
pub(super) type CurrentRequest = Arc<Mutex<Option<String>>>;

/// Copies a handler's output to the log as it arrives, until its end, showing each piece to
/// `also`.
pub(super) fn copy_to_log(
    mut output: impl Read,
    current: &CurrentRequest,
    mut also: impl FnMut(&[u8]),
) {
    let mut buf = [0u8; 8192];
    let mut lines = log::HandlerLines::new();
    let id = || current.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut last = id();
    loop {
        let n = match output.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let now = id();
        if now != last {
            // A line begun in the last event is that event's record, not the next one's.
            lines.flush(last.as_deref());
            last = now;
        }
        lines.write(&buf[..n], last.as_deref());
        also(&buf[..n]);
    }
    lines.flush(last.as_deref());
}

/// Appends to the last `STDERR_TAIL_BYTES` of a handler's stderr.
pub(super) fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(bytes);
    if tail.len() > STDERR_TAIL_BYTES {
        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
    }
}

/// How many names `create_unique` tries before it gives up: each is new with odds of 2^-64 of
/// meeting an old one, so only a directory that refuses every name gets there.
const NAME_ATTEMPTS: usize = 8;

/// `$TMPDIR/bootstrap-<kind>-<pid>-<n>-<random>`, created by `create` (which must refuse a name
/// that exists): no other invocation of this process uses the name, and the random part keeps
/// a previous run's leftovers (a killed bootstrap, whose pid this one may have) from meeting it.
fn create_unique(kind: &str, create: impl Fn(&Path) -> io::Result<()>) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..NAME_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut random = RandomState::new().build_hasher();
        random.write_u64(n);
        let name = format!("bootstrap-{kind}-{}-{n}-{:016x}", std::process::id(), random.finish());
        let path = std::env::temp_dir().join(name);
        match create(&path) {
            Ok(()) => {
                reaper::track_temp(path.clone());
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A private temporary directory for one invocation (or one framed worker), handed to the
/// handler as `TMPDIR` and removed with its contents when dropped.
pub(super) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub(super) fn create() -> io::Result<ScratchDir> {
        ScratchDir::create_for("tmp")
    }

    /// A private directory for what bootstrap itself keeps there (`kind` names it).
    pub(super) fn create_for(kind: &str) -> io::Result<ScratchDir> {
        let path = create_unique(kind, |path| fs::DirBuilder::new().mode(0o700).create(path))?;
        Ok(ScratchDir { path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Sets `TMPDIR` for `command`.
    pub(super) fn apply(&self, command: &mut Command) {
        command.env(ENV_TMPDIR, &self.path);
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // The handler may have removed it, or left files in it: both are fine.
        let _ = fs::remove_dir_all(&self.path);
        reaper::untrack_temp(&self.path);
    }
}

/// A private temporary file holding the event, removed when dropped.
pub(super) struct EventFile {
    pub(super) path: PathBuf,
}

impl EventFile {
    pub(super) fn create(event: &[u8]) -> Result<EventFile, Diagnostic> {
        let write = |path: &Path| -> io::Result<()> {
            let mut file: File =
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            file.write_all(event).inspect_err(|_| {
                let _ = fs::remove_file(path);
            })
        };
        match create_unique("event", write) {
            Ok(path) => Ok(EventFile { path }),
            Err(e) => Err(Diagnostic::new(
                SPAWN_ERROR,
                format!(
                    "cannot write the event to a file in {}: {e}",
                    std::env::temp_dir().display()
                ),
            )
            .with_hint("make TMPDIR (default /tmp) a writable directory with room for the event")),
        }
    }
}

impl Drop for EventFile {
    fn drop(&mut self) {
        // Already gone (the handler deleted it) is fine.
        let _ = fs::remove_file(&self.path);
        reaper::untrack_temp(&self.path);
    }
}
