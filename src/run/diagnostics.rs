//! The errors bootstrap posts for a handler process that went wrong: it could not start, it
//! timed out, it wrote too much, it exited badly, or bootstrap itself is shutting down.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::child::DEADLINE_MARGIN;
use super::reaper::Stop;
use super::sys;
use crate::init::Handler;
use crate::invocation::error_type::{
    EXIT_ERROR, IMPORT_MODULE_ERROR, RESPONSE_TOO_LARGE, SHUTDOWN, SPAWN_ERROR, TIMEOUT,
};
use crate::invocation::{Diagnostic, MAX_RESPONSE_BYTES};

/// How many of the handler's last stderr lines an exit error shows.
const STDERR_TAIL_LINES: usize = 10;

/// The error for a handler process that could not be started.
pub(super) fn spawn(e: &io::Error, handler: &Handler) -> Diagnostic {
    let program = handler.program.display();
    // An executable handler that cannot be run is a file that cannot load, in the vocabulary
    // the runners use; an interpreter that cannot be started is bootstrap's own spawn error.
    let error_type = if handler.interpreter.is_none() { IMPORT_MODULE_ERROR } else { SPAWN_ERROR };
    match e.kind() {
        io::ErrorKind::NotFound => Diagnostic::new(
            error_type,
            format!("cannot run {program}: it is gone or its #! interpreter is missing ({e})"),
        ),
        io::ErrorKind::PermissionDenied => {
            Diagnostic::new(error_type, format!("cannot run {program}: permission denied"))
                .with_hint("chmod +x it and keep the mode in the zip")
        }
        _ => Diagnostic::new(error_type, format!("cannot run {program}: {e}")),
    }
}

/// The error for a streamed response that went past `limit` bytes.
pub(super) fn streamed_too_large(limit: u64) -> Diagnostic {
    Diagnostic::new(
        RESPONSE_TOO_LARGE,
        format!(
            "the handler streamed more than {limit} bytes, Lambda's limit for a streamed response"
        ),
    )
}

/// The error for a handler stopped because bootstrap is stopping, and why it is.
pub(super) fn shutdown(why: Stop) -> Diagnostic {
    let cause = match why {
        Stop::Signal(signal) => format!("it received {}", sys::signal_name(signal)),
        Stop::ApiFailed => "the Runtime API failed; Lambda starts a new environment".to_string(),
    };
    Diagnostic::new(
        SHUTDOWN,
        format!("the runtime is shutting down ({cause}): the handler was stopped"),
    )
}

/// The error for a handler killed at the deadline after running for `elapsed`.
pub(super) fn timeout(elapsed: Duration) -> Diagnostic {
    Diagnostic::new(
        TIMEOUT,
        format!(
            "handler timed out: killed after {:.2} s, {} ms before the invocation deadline",
            elapsed.as_secs_f64(),
            DEADLINE_MARGIN.as_millis()
        ),
    )
    .with_hint("raise the function timeout, or make the handler faster")
}

/// The error for a response over Lambda's limit.
pub(super) fn too_large() -> Diagnostic {
    Diagnostic::new(
        RESPONSE_TOO_LARGE,
        format!(
            "the handler wrote more than {MAX_RESPONSE_BYTES} bytes to stdout, Lambda's limit \
             for a response"
        ),
    )
    .with_hint("return less, or put the data in S3 and return its key")
}

/// The error for a handler process that ended badly: its status or signal, and its last
/// stderr lines.
pub(super) fn exit(status: ExitStatus, stderr_tail: &[u8]) -> Diagnostic {
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("handler exited with status {code}"),
        (None, Some(signal)) => {
            format!("handler was killed by signal {signal} ({})", sys::signal_name(signal))
        }
        (None, None) => format!("handler ended with {status}"),
    };
    Diagnostic::new(EXIT_ERROR, with_tail(what, stderr_tail))
}

fn with_tail(message: String, tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("{message} (no stderr output)");
    }
    let last = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
    format!("{message}; last stderr lines:\n{}", last.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shows_the_last_stderr_lines() {
        let tail = (1..=15).map(|i| format!("line {i}\n")).collect::<String>();
        let m = with_tail("handler exited with status 2".into(), tail.as_bytes());
        assert!(m.starts_with("handler exited with status 2; last stderr lines:\nline 6\n"), "{m}");
        assert!(m.ends_with("line 15"));
        assert_eq!(with_tail("x".into(), b""), "x (no stderr output)");
    }
}
