//! `bootstrap invoke` and `bootstrap check`: the init and invoke code the Lambda loop uses,
//! run once from a terminal with no HTTP and no AWS.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cli::Target;
use crate::executor::Executor;
use crate::handler::{self, Handler, Settings};
use crate::invocation::{Deadline, Diagnostic, Invocation, RequestId};
use crate::invoke::{OpenStream, Outcome, ResponseStream, StreamWriteError};
use crate::lambda_env::{ENV_HANDLER, ENV_TASK_ROOT, LambdaEnv};
use crate::runtime_api::MAX_EVENT_BYTES;
use crate::{doctor, fatal, info, process, shutdown, syntax_check, warn};

const INVALID_EVENT: &str = "Runtime.InvalidEvent";

/// Makes bootstrap the reaper of orphaned handler processes, so that a grandchild which escaped
/// its process group can be killed, and stops the running handler on SIGTERM or SIGINT (see
/// `shutdown`). The Lambda loop and `invoke` both call it.
pub fn guard_handlers() {
    if let Err(e) = process::become_subreaper() {
        warn!("cannot become the reaper of orphaned handler processes: {e}");
    }
    if let Err(e) = shutdown::install() {
        warn!("cannot handle SIGTERM and SIGINT: {e}");
    }
}

/// The directory holding the running executable: where the layer's config and runners are.
pub fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// Init as the Lambda loop runs it: `_HANDLER` and `LAMBDA_TASK_ROOT` must be set.
pub fn resolve_for_lambda(env: &LambdaEnv) -> Result<Handler, Diagnostic> {
    let (Some(name), Some(task_root)) = (&env.handler, &env.task_root) else {
        let missing = if env.handler.is_none() { ENV_HANDLER } else { ENV_TASK_ROOT };
        return Err(missing_variable(missing));
    };
    let exe_dir = exe_dir();
    let settings = Settings { handler: name, task_root, env, exe_dir: exe_dir.as_deref() };
    let handler = handler::resolve(&settings)?;
    syntax_check::at_init(&handler)?;
    Ok(handler)
}

/// The init error for a variable Lambda always sets.
fn missing_variable(name: &str) -> Diagnostic {
    if name == ENV_HANDLER {
        return Diagnostic::new(
            handler::MALFORMED_HANDLER_NAME,
            format!(
                "{name} is not set\nhint: set the function's handler, e.g. lambda_script.handler"
            ),
        );
    }
    Diagnostic::new(
        handler::INVALID_TASK_ROOT,
        format!(
            "{name} is not set\nhint: set it to the directory holding the function code (Lambda sets /var/task)"
        ),
    )
}

/// `bootstrap check`: prints what init resolved, or the init error. With `opt`, checks a
/// function and layer as they would be deployed.
pub fn check(env: &LambdaEnv, target: &Target, opt: Option<&Path>) -> bool {
    if let Some(opt) = opt {
        return check_deployment(env, target, opt);
    }
    match resolve(env, target) {
        Ok(handler) => {
            println!("{}", handler.describe());
            let findings = doctor::file_findings(&handler);
            for finding in &findings {
                println!("problem: {}\n  fix: {}", finding.problem, finding.fix);
            }
            findings.is_empty()
        }
        Err(diagnostic) => {
            fatal!("{}: {}", diagnostic.error_type, diagnostic.error_message);
            false
        }
    }
}

fn check_deployment(env: &LambdaEnv, target: &Target, opt: &Path) -> bool {
    let Some(name) = handler_name(env, target) else {
        fatal!("no handler given\nhint: pass --handler FILE.METHOD or set {ENV_HANDLER}");
        return false;
    };
    let task_root = task_root(env, target);
    let report = doctor::check(name, &task_root, opt, env);
    if let Some(handler) = &report.handler {
        println!("{}", handler.describe());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    for finding in &report.findings {
        println!("problem: {}\n  fix: {}", finding.problem, finding.fix);
    }
    match report.findings.len() {
        0 => println!(
            "ok: {name} in {} with {} as /opt is ready to deploy",
            task_root.display(),
            opt.display()
        ),
        n => println!("{n} problem{} found", if n == 1 { "" } else { "s" }),
    }
    report.findings.is_empty()
}

/// `bootstrap invoke`: runs one event and prints the response, or the error JSON.
pub fn invoke(env: &LambdaEnv, target: &Target, timeout: f64, event: Option<&Path>) -> bool {
    guard_handlers();
    let _answering = shutdown::event_started();
    let outcome = prepare(env, target, timeout, event).map(|(handler, invocation)| {
        let outcome = Executor::new(handler).invoke(&invocation, stdout_stream());
        if let Outcome::Failed(d) = &outcome {
            info!("{} failed: {}", invocation.request_id, d.error_type);
        }
        outcome
    });
    let (bytes, ok) = match outcome {
        Ok(Outcome::Response(body)) => (body, true),
        // The body went to stdout as it was written.
        Ok(Outcome::Streamed { failure: None, answer: Ok(_), .. }) => (Vec::new(), true),
        Ok(Outcome::Streamed { answer: Err(why), .. }) => {
            fatal!("the streamed response could not be written to stdout: {why}");
            (Vec::new(), false)
        }
        Ok(Outcome::Streamed { failure: Some(diagnostic), .. }) => {
            fatal!("{}: {}", diagnostic.error_type, diagnostic.error_message);
            (Vec::new(), false)
        }
        Ok(Outcome::Failed(diagnostic)) | Err(diagnostic) => {
            fatal!("{}: {}", diagnostic.error_type, diagnostic.error_message);
            (diagnostic.to_json(), false)
        }
    };
    let mut stdout = io::stdout().lock();
    // A closed stdout (`| head`) is the reader's choice; the exit code still tells.
    let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
    ok
}

/// `bootstrap invoke`'s response stream: stdout, written as the handler streams, up to
/// Lambda's limit for a streamed response.
fn stdout_stream() -> OpenStream {
    struct Stdout {
        written: u64,
    }
    impl ResponseStream for Stdout {
        fn write(&mut self, bytes: &[u8]) -> Result<(), StreamWriteError> {
            let limit = crate::stream::MAX_STREAMED_BYTES;
            if self.written + bytes.len() as u64 > limit {
                return Err(StreamWriteError::TooLarge(limit));
            }
            self.written += bytes.len() as u64;
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| StreamWriteError::Broken(e.to_string()))
        }
        fn finish(self: Box<Self>) -> Result<u16, String> {
            Ok(200)
        }
        fn fail(self: Box<Self>, _: &Diagnostic) -> Result<u16, String> {
            Ok(200)
        }
    }
    Box::new(|_content_type: &str| Ok(Box::new(Stdout { written: 0 }) as Box<dyn ResponseStream>))
}

fn prepare(
    env: &LambdaEnv,
    target: &Target,
    timeout: f64,
    event: Option<&Path>,
) -> Result<(Handler, Invocation), Diagnostic> {
    let handler = resolve(env, target)?;
    syntax_check::at_init(&handler)?;
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
    Ok((handler, invocation))
}

fn handler_name<'a>(env: &'a LambdaEnv, target: &'a Target) -> Option<&'a str> {
    target.handler.as_deref().or(env.handler.as_deref())
}

fn task_root(env: &LambdaEnv, target: &Target) -> PathBuf {
    target.task_root.clone().or_else(|| env.task_root.clone()).unwrap_or_else(|| ".".into())
}

fn resolve(env: &LambdaEnv, target: &Target) -> Result<Handler, Diagnostic> {
    let Some(name) = handler_name(env, target) else {
        return Err(Diagnostic::new(
            handler::MALFORMED_HANDLER_NAME,
            format!("no handler given\nhint: pass --handler FILE.METHOD or set {ENV_HANDLER}"),
        ));
    };
    let task_root = task_root(env, target);
    let exe_dir = exe_dir();
    handler::resolve(&Settings {
        handler: name,
        task_root: &task_root,
        env,
        exe_dir: exe_dir.as_deref(),
    })
}

/// The event from a file or stdin (`-`), at most `MAX_EVENT_BYTES`; `{}` when none is given.
fn read_event(source: Option<&Path>) -> Result<Vec<u8>, Diagnostic> {
    let Some(path) = source else {
        return Ok(b"{}".to_vec());
    };
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        let file = File::open(path).map_err(|e| {
            Diagnostic::new(
                INVALID_EVENT,
                format!("cannot read the event file {}: {e}", path.display()),
            )
        })?;
        Box::new(file)
    };
    let mut event = Vec::new();
    reader.take(MAX_EVENT_BYTES + 1).read_to_end(&mut event).map_err(|e| {
        Diagnostic::new(
            INVALID_EVENT,
            format!("cannot read the event from {}: {e}", path.display()),
        )
    })?;
    if event.len() as u64 > MAX_EVENT_BYTES {
        return Err(Diagnostic::new(
            INVALID_EVENT,
            format!("the event in {} is over {MAX_EVENT_BYTES} bytes", path.display()),
        ));
    }
    Ok(event)
}
