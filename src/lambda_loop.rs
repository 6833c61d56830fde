//! The Lambda loop: `/next` → run the handler → post the response or the error → `/next`.
//! The one module that sees both the Runtime API (`api`) and the handler processes (`run`).
//! A failed event never ends the loop; only the Runtime API itself can (a 500, or no answer),
//! and then Lambda restarts us.
//!
//! On Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY=N`) N such loops run side by side,
//! each with its own connection and its own handler processes, and never more pollers than N:
//! Lambda answers a poller beyond N with a 500. When one loop's Runtime API fails, every
//! handler of every loop is stopped and its event answered (where the API still listens)
//! before bootstrap exits: nothing is left running as an orphan (`shutdown::stop`).

use std::fmt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::api::address::ApiAddress;
use crate::api::client::{ApiError, Next, RuntimeApi};
use crate::init::Handler;
use crate::invocation::{Diagnostic, Invocation, Outcome};
use crate::log::{self, Level};
use crate::run::reaper::{self, Stop};
use crate::run::{self, Executor};
use crate::shutdown;
use crate::warn;

/// Loops beyond this many would only be idle pollers; Lambda's own limit is far below.
const MAX_LOOPS: usize = 1024;
/// First and longest pause after a 204 from `/next`. Lambda itself never answers 204; local
/// emulators do while idle, and without a pause we would spin on them.
const IDLE_BACKOFF_FIRST: Duration = Duration::from_millis(1);
const IDLE_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// How many loops to run for `AWS_LAMBDA_MAX_CONCURRENCY` (1 when unset or unusable).
pub fn concurrency(value: Option<&str>) -> usize {
    match value.map(|v| v.trim().parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if (1..=MAX_LOOPS).contains(&n) => n,
        Some(_) => {
            warn!(
                "AWS_LAMBDA_MAX_CONCURRENCY={:?} is not a number from 1 to {MAX_LOOPS}: running one loop",
                value.unwrap_or_default()
            );
            1
        }
    }
}

/// Why the loops ended: the process then exits, and Lambda starts a new environment.
#[derive(Debug)]
pub enum Ended {
    /// The first runner could not load the handler; that was posted to `/runtime/init/error`,
    /// as AWS's runtimes post a handler that fails at init.
    Init(Diagnostic),
    /// The Runtime API failed: a failed Runtime API is the environment's end.
    Api(ApiError),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Init(diagnostic) => write!(f, "init failed: {diagnostic}"),
            Ended::Api(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for Ended {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Ended::Init(diagnostic) => Some(diagnostic),
            Ended::Api(error) => error.source(),
        }
    }
}

/// Runs `loops` loops and returns why the first of them ended. With more than one, each
/// invocation's handler gets a private TMPDIR so that concurrent handlers do not collide in
/// /tmp. The first framed runner loads the handler before any `/next`: a handler that cannot
/// load is an init error, as on AWS's own runtimes, not an error for every event.
pub fn run_all(address: &ApiAddress, api: RuntimeApi, handler: Handler, loops: usize) -> Ended {
    let options = run::Options { private_tmp: loops > 1, concurrent: loops > 1 };
    let mut first = Executor::new(handler.clone(), options);
    first.prepare();
    if let Some(diagnostic) = first.load_failure() {
        if let Err(e) = api.post_init_error(&diagnostic) {
            warn!("cannot post the init error: {e}");
        }
        return Ended::Init(diagnostic);
    }
    if loops <= 1 {
        let error = run(&api, &mut first);
        drop(first);
        return ended_by_api(error, &address.to_string());
    }
    let (failed, failure) = mpsc::channel();
    let mut first = Some(first);
    for i in 0..loops {
        let failed = failed.clone();
        let mut executor = first.take().unwrap_or_else(|| Executor::new(handler.clone(), options));
        let address = address.clone();
        let spawned = thread::Builder::new().name(format!("loop-{i}")).spawn(move || {
            let api = RuntimeApi::new(&address);
            if let Some(error) = run(&api, &mut executor) {
                let _ = failed.send(error);
            }
        });
        if let Err(e) = spawned {
            warn!("cannot start loop {i} of {loops}: {e}");
        }
    }
    drop(failed);
    drop(api);
    ended_by_api(failure.recv().ok(), &address.to_string())
}

/// The end after the Runtime API failed (`None`: no loop could run): every other loop's
/// handlers are stopped, their events answered, every TMPDIR and event file removed.
fn ended_by_api(error: Option<ApiError>, url: &str) -> Ended {
    shutdown::stop(Stop::ApiFailed);
    Ended::Api(error.unwrap_or_else(|| ApiError::Transport {
        url: url.to_string(),
        error: ureq::Error::Io(std::io::Error::other("no loop could be started")),
    }))
}

/// Serves events until the Runtime API fails, and returns that failure; or until bootstrap is
/// stopping because another loop's API failed (`None`). On a shutdown signal it never returns:
/// the shutdown thread exits the process once the in-flight events are answered.
pub fn run(api: &RuntimeApi, executor: &mut Executor) -> Option<ApiError> {
    let mut idle = IDLE_BACKOFF_FIRST;
    loop {
        match reaper::stopping() {
            Some(Stop::ApiFailed) => return None,
            Some(Stop::Signal(_)) => loop {
                thread::park();
            },
            None => {}
        }
        // A framed worker for the next event starts (and loads the handler) before we ask
        // for that event, so its start-up is never on the caller's path.
        executor.prepare();
        let next = match api.next_invocation() {
            Ok(next) => next,
            Err(e) => return Some(e),
        };
        let result = match next {
            Next::Idle => {
                thread::sleep(idle);
                idle = (idle * 2).min(IDLE_BACKOFF_MAX);
                continue;
            }
            Next::Unusable(id, diagnostic) => {
                let _answering = shutdown::event_started();
                warn!("{id}: cannot run this invocation: {}", diagnostic.error_message);
                api.post_error(&id, &diagnostic)
            }
            Next::Invocation(invocation) => {
                idle = IDLE_BACKOFF_FIRST;
                run_one(api, executor, &invocation)
            }
        };
        match result {
            Err(e) if e.is_fatal() => return Some(e),
            // 400, 403, 413 (and 410 on Managed Instances) concern this one answer only.
            Err(e) => warn!("posting the result failed: {e}"),
            Ok(()) => {}
        }
    }
}

fn run_one(
    api: &RuntimeApi,
    executor: &mut Executor,
    invocation: &Invocation,
) -> Result<(), ApiError> {
    let _answering = shutdown::event_started();
    let started = Instant::now();
    let id = &invocation.request_id;
    let outcome = executor.run(invocation, api.response_stream(id));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Response(body) => {
            let message = format_args!("ok in {ms:.1} ms, response {} bytes", body.len());
            log::record(Level::Info, Some(id.as_str()), message);
            api.post_response(id, &body)
        }
        Outcome::Failed(diagnostic) => {
            log::failure(id.as_str(), &diagnostic, ms);
            api.post_error(id, &diagnostic)
        }
        Outcome::Streamed { stream, bytes, failure } => {
            // The stream ends here, so that its answer is judged like a post's.
            let answer = match &failure {
                Some(diagnostic) => {
                    log::failure(id.as_str(), diagnostic, ms);
                    stream.fail(diagnostic)
                }
                None => {
                    let message = format_args!("streamed {bytes} bytes in {ms:.1} ms");
                    log::record(Level::Info, Some(id.as_str()), message);
                    stream.finish()
                }
            };
            match answer {
                Ok(status) if (200..300).contains(&status) => Ok(()),
                Ok(status) => {
                    Err(ApiError::Status { url: api.response_url(id), status, body: String::new() })
                }
                Err(error) => Err(ApiError::Stream { error }),
            }
        }
        Outcome::StreamBroken { error, .. } => Err(ApiError::Stream { error }),
    }
}
