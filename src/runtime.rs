//! The Lambda loop: `/next` → run the handler → post the response or the error → `/next`.
//! A failed event never ends the loop; only the Runtime API itself can (a 500, or no answer),
//! and then Lambda restarts us.

use std::thread;
use std::time::{Duration, Instant};

use crate::executor::Executor;
use crate::invocation::Invocation;
use crate::invoke::Outcome;
use crate::runtime_api::{ApiError, Next, RuntimeApi};
use crate::shutdown;
use crate::{info, warn};

/// First and longest pause after a 204 from `/next`. Lambda itself never answers 204; local
/// emulators do while idle, and without a pause we would spin on them.
const IDLE_BACKOFF_FIRST: Duration = Duration::from_millis(1);
const IDLE_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// Serves events until the Runtime API fails; returns that failure.
pub fn serve(api: &RuntimeApi, executor: &mut Executor) -> ApiError {
    let mut idle = IDLE_BACKOFF_FIRST;
    loop {
        // A framed worker for the next event starts (and loads the handler) before we ask
        // for that event, so its start-up is never on the caller's path.
        executor.prepare();
        let next = match api.next_invocation() {
            Ok(next) => next,
            Err(e) => return e,
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
            Err(e) if e.is_fatal() => return e,
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
    let outcome = executor.invoke(invocation);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let id = &invocation.request_id;
    match &outcome {
        Outcome::Response(body) => {
            info!("{id} ok in {ms:.1} ms, response {} bytes", body.len());
            api.post_response(id, body)
        }
        Outcome::Failed(diagnostic) => {
            info!("{id} failed in {ms:.1} ms: {}", diagnostic.error_type);
            api.post_error(id, diagnostic)
        }
    }
}
