//! Everything `bootstrap serve` uses from the rest of the crate, in one file: init as the
//! Lambda loop runs it, the loop itself, the shutdown hooks, the log tap and the log format.
//! The other files of `serve/` reach the crate only through here, so that moving a module
//! elsewhere in the crate means changing this file alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::api::address::ApiAddress;
use crate::api::client::RuntimeApi;
use crate::env::LambdaEnv;
use crate::invocation::Diagnostic;
use crate::invocation::error_type::SHUTDOWN;
use crate::log::LogConfig;
use crate::{init, lambda_loop, log, run, shutdown};

pub use crate::init::Handler;
pub use crate::shutdown::EventGuard;

/// The error type the loop posts when it stopped a handler at its deadline.
pub const TIMEOUT: &str = crate::invocation::error_type::TIMEOUT;

/// Init as the Lambda loop runs it (config, handler file, interpreter, syntax check), for
/// `handler`, in `task_root` when given (else `LAMBDA_TASK_ROOT`, else `.`).
pub fn resolve(
    env: &LambdaEnv,
    handler: &str,
    task_root: Option<PathBuf>,
) -> Result<Handler, Diagnostic> {
    let env = LambdaEnv {
        handler: Some(handler.to_string()),
        task_root: Some(task_root.or_else(|| env.task_root.clone()).unwrap_or_else(|| ".".into())),
        ..env.clone()
    };
    let handler = init::for_lambda(&env)?;
    run::syntax_check::at_init(&handler)?;
    Ok(handler)
}

/// Adopts orphaned handler processes and handles SIGTERM and SIGINT, as the Lambda loop does.
pub fn guard_handlers() {
    shutdown::guard_handlers();
}

/// Runs `loops` Lambda loops against the Runtime API at `address` until they end (the handler
/// failed to load, or the Runtime API failed); returns why.
pub fn run_loops(address: SocketAddr, handler: Handler, loops: usize) -> String {
    let address = match ApiAddress::parse(&address.to_string()) {
        Ok(address) => address,
        Err(e) => return format!("the loopback Runtime API address {address}: {e}"),
    };
    let api = RuntimeApi::new(&address);
    lambda_loop::run_all(&address, api, handler, loops).to_string()
}

/// Marks an invocation as taken: a shutdown waits (briefly) for it to be answered.
pub fn in_flight() -> EventGuard {
    shutdown::event_started()
}

/// Whether SIGTERM or SIGINT has arrived.
pub fn shutting_down() -> bool {
    shutdown::requested()
}

/// The error an invocation still waiting for a loop gets when the runtime shuts down.
pub fn shutdown_error() -> (String, Vec<u8>) {
    let message = "the runtime is shutting down (it received SIGTERM or SIGINT): the invocation \
                   was not run";
    (SHUTDOWN.to_string(), Diagnostic::new(SHUTDOWN, message).to_json())
}

/// The highest resident memory any handler process that has ended reached, in KiB.
pub fn ended_children_peak_kib() -> u64 {
    run::sys::children_peak_rss_kib().unwrap_or(0)
}

/// The handler processes running now (a framed worker between events, too).
pub fn running_handlers() -> Vec<u32> {
    run::reaper::running()
}

/// The error document for an error this side of the Runtime API makes itself.
pub fn error_document(error_type: &str, message: &str) -> Vec<u8> {
    Diagnostic::new(error_type, message).to_json()
}

/// Sends a copy of every log record that names a request id to `tap`, for log tails.
pub fn tap_logs(tap: impl Fn(&str, &[u8]) + Send + Sync + 'static) {
    log::set_tap(Box::new(tap));
}

/// Whether records are JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`).
pub fn json_logs(env: &LambdaEnv) -> bool {
    LogConfig::from_values(env.log_format.as_deref(), env.log_level.as_deref()).json
}

/// The time now as RFC 3339 with milliseconds, as every JSON record carries it.
pub fn timestamp() -> String {
    log::rfc3339_now()
}
