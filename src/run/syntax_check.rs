//! The interpreter's own syntax check of the handler file (`syntax_check` in
//! `interpreters.toml`: `perl -c`, `bash -n`, `node --check`, ...).
//!
//! `bootstrap check` runs it for every handler. Init runs it only for a plain entry whose
//! program is not one of bootstrap's language runners (a config-only language such as PHP):
//! the runners report a file that does not compile themselves, in their language's words,
//! while any other program would only exit non-zero, once per event. With the check, a syntax
//! error is one `Runtime.UserCodeSyntaxError` at init, as AWS's runtimes report it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::sys;
use crate::init::Handler;
use crate::init::config::Protocol;
use crate::invocation::Diagnostic;
use crate::invocation::error_type::USER_CODE_SYNTAX_ERROR;

/// Longest a check may take: Lambda's init phase is 10 s.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the check's output is kept for the message.
const MAX_OUTPUT: u64 = 4096;

/// What a syntax check found.
#[derive(Debug)]
pub enum Verdict {
    /// The entry has no `syntax_check`, or its program is not on `PATH`.
    NotChecked,
    Passed,
    Failed(Diagnostic),
}

/// The check at init: plain entries that are not a language runner (see the module header).
pub fn at_init(handler: &Handler) -> Result<(), Diagnostic> {
    if handler.protocol() != Protocol::Plain || handler.uses_runner() {
        return Ok(());
    }
    match run(handler) {
        Verdict::Failed(diagnostic) => Err(diagnostic),
        Verdict::NotChecked | Verdict::Passed => Ok(()),
    }
}

/// Runs the handler's syntax check, if it has one.
pub fn run(handler: &Handler) -> Verdict {
    let Some((program, args)) = handler.syntax_check.split_first() else {
        return Verdict::NotChecked;
    };
    // A missing file is the runner's to report, in its language's words.
    if !handler.file.is_file() {
        return Verdict::NotChecked;
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&handler.task_root)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = handler.syntax_check.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>();
    let shown = shown.join(" ");
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(_) => return Verdict::NotChecked,
    };
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = mpsc::channel();
    // Both pipes are read to their end (keeping the first bytes), each on its own thread, so
    // the check never blocks on a full pipe; then the exit status.
    let out = std::thread::spawn(move || read_head(stdout));
    std::thread::spawn(move || {
        let err = read_head(stderr);
        let out = out.join().unwrap_or_default();
        let _ = tx.send((child.wait(), [err, out].concat()));
    });
    let (status, output) = match rx.recv_timeout(CHECK_TIMEOUT) {
        Ok(done) => done,
        Err(_) => {
            sys::kill_group(pid);
            let message = format!(
                "the syntax check `{shown}` of {} took more than {} s and was stopped",
                handler.file.display(),
                CHECK_TIMEOUT.as_secs()
            );
            return Verdict::Failed(Diagnostic::new(USER_CODE_SYNTAX_ERROR, message));
        }
    };
    match status {
        Ok(status) if status.success() => Verdict::Passed,
        Ok(_) => {
            let output = String::from_utf8_lossy(&output);
            let message = format!(
                "{} did not pass `{shown}`:\n{}",
                handler.file.display(),
                output.trim_end()
            );
            Verdict::Failed(
                Diagnostic::new(USER_CODE_SYNTAX_ERROR, message)
                    .with_hint("fix the file; `bootstrap check` runs the same check locally"),
            )
        }
        Err(_) => Verdict::NotChecked,
    }
}

/// The first `MAX_OUTPUT` bytes of a pipe, read to its end.
fn read_head(pipe: Option<impl Read>) -> Vec<u8> {
    let Some(mut pipe) = pipe else { return Vec::new() };
    let mut head = Vec::new();
    let _ = pipe.by_ref().take(MAX_OUTPUT).read_to_end(&mut head);
    let _ = std::io::copy(&mut pipe, &mut std::io::sink());
    head
}
