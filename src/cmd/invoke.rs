//! `bootstrap invoke`: one event through exactly the code the Lambda loop uses, the response on
//! stdout (a streamed one as it is written), the error document and exit 1 on a failure. On a
//! terminal the output ends with a newline; into a pipe or a file it stays byte for byte.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::cli::Target;
use crate::env::LambdaEnv;
use crate::invocation::error_type::INVALID_EVENT;
use crate::invocation::{
    Deadline, Diagnostic, Invocation, MAX_EVENT_BYTES, MAX_STREAMED_BYTES, OpenStream, Outcome,
    RequestId, ResponseStream, StreamFailure, StreamWriteError,
};
use crate::run::{self, Executor};
use crate::{fatal, shutdown};

/// Runs the event; `Ok(false)` when the handler failed (its error document went to stdout).
pub fn run(
    env: &LambdaEnv,
    target: &Target,
    timeout: f64,
    event: Option<&Path>,
) -> anyhow::Result<bool> {
    shutdown::guard_handlers();
    let _answering = shutdown::event_started();
    // Whether what went to stdout so far ends with a newline (nothing yet: it does not).
    let ends_in_newline = Arc::new(AtomicBool::new(true));
    let outcome = prepare(env, target, timeout, event).map(|(executor, invocation)| {
        let mut executor = executor;
        executor.run(&invocation, stdout_stream(Arc::clone(&ends_in_newline)))
    });
    // The failure is logged once, here; its document goes to stdout.
    let (mut bytes, ok) = match outcome {
        Ok(Outcome::Response(body)) => (body, true),
        // The body went to stdout as it was written; ending the stream says nothing more.
        Ok(Outcome::Streamed { failure: None, .. }) => (Vec::new(), true),
        Ok(Outcome::Streamed { failure: Some(diagnostic), .. }) => {
            fatal!("{diagnostic}");
            (Vec::new(), false)
        }
        Ok(Outcome::StreamBroken { error, .. }) => {
            fatal!("the streamed response could not be written to stdout: {error}");
            (Vec::new(), false)
        }
        Ok(Outcome::Failed(diagnostic)) | Err(diagnostic) => {
            fatal!("{diagnostic}");
            (diagnostic.to_json(), false)
        }
    };
    let mut stdout = io::stdout().lock();
    if let Some(last) = bytes.last() {
        ends_in_newline.store(*last == b'\n', Ordering::Relaxed);
    }
    // A prompt must not follow the output on its last line; a pipe gets the bytes unchanged.
    if stdout.is_terminal() && !ends_in_newline.load(Ordering::Relaxed) {
        bytes.push(b'\n');
    }
    // A closed stdout (`| head`) is the reader's choice; the exit code still tells.
    let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
    Ok(ok)
}

/// Init, the syntax check of a plain entry, the event and the deadline, as the loop has them.
fn prepare(
    env: &LambdaEnv,
    target: &Target,
    timeout: f64,
    event: Option<&Path>,
) -> Result<(Executor, Invocation), Diagnostic> {
    let handler = super::resolve(env, target)?;
    run::syntax_check::at_init(&handler)?;
    let event = read_event(event)?;
    let timeout = Duration::try_from_secs_f64(timeout)
        .map_err(|e| Diagnostic::new(INVALID_EVENT, format!("--timeout {timeout}: {e}")))?;
    let id = format!("local-{}", std::process::id());
    let invocation = Invocation {
        request_id: RequestId::parse(&id).expect("BUG: a local id is printable ASCII"),
        deadline: Deadline::after(timeout, SystemTime::now()),
        invoked_function_arn: None,
        trace_id: None,
        client_context: None,
        cognito_identity: None,
        tenant_id: None,
        event,
    };
    Ok((Executor::new(handler, run::Options::default()), invocation))
}

/// The response stream of `invoke`: stdout, written as the handler streams, up to Lambda's
/// limit for a streamed response. `ends_in_newline` follows the last byte written.
fn stdout_stream(ends_in_newline: Arc<AtomicBool>) -> OpenStream {
    struct Stdout {
        written: u64,
        ends_in_newline: Arc<AtomicBool>,
    }
    impl ResponseStream for Stdout {
        fn write(&mut self, bytes: &[u8]) -> Result<(), StreamWriteError> {
            if self.written + bytes.len() as u64 > MAX_STREAMED_BYTES {
                return Err(StreamWriteError::TooLarge(MAX_STREAMED_BYTES));
            }
            self.written += bytes.len() as u64;
            if let Some(last) = bytes.last() {
                self.ends_in_newline.store(*last == b'\n', Ordering::Relaxed);
            }
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| StreamWriteError::Broken(Box::new(e)))
        }
        fn finish(self: Box<Self>) -> Result<u16, StreamFailure> {
            Ok(200)
        }
        fn fail(self: Box<Self>, _: &Diagnostic) -> Result<u16, StreamFailure> {
            Ok(200)
        }
    }
    Box::new(move |_content_type: &str| {
        Ok(Box::new(Stdout { written: 0, ends_in_newline }) as Box<dyn ResponseStream>)
    })
}

/// The event from a file or stdin (`-`), at most `MAX_EVENT_BYTES`; `{}` when none is given.
fn read_event(source: Option<&Path>) -> Result<Vec<u8>, Diagnostic> {
    let Some(path) = source else {
        return Ok(b"{}".to_vec());
    };
    let unreadable = |e: io::Error| {
        Diagnostic::new(
            INVALID_EVENT,
            format!("cannot read the event from {}: {e}", path.display()),
        )
    };
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| {
            Diagnostic::new(
                INVALID_EVENT,
                format!("cannot read the event file {}: {e}", path.display()),
            )
        })?)
    };
    let mut event = Vec::new();
    reader.take(MAX_EVENT_BYTES + 1).read_to_end(&mut event).map_err(unreadable)?;
    if event.len() as u64 > MAX_EVENT_BYTES {
        return Err(Diagnostic::new(
            INVALID_EVENT,
            format!("the event in {} is over {MAX_EVENT_BYTES} bytes", path.display()),
        ));
    }
    Ok(event)
}
