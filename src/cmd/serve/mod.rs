//! `bootstrap serve`: Lambda's Invoke API on localhost, for testing a function with the tools
//! people use against Lambda (the AWS CLI, an SDK with `--endpoint-url`, curl).
//!
//! The function runs exactly as on Lambda: this process serves a Runtime API on loopback
//! (`runtime_api_server`), and the ordinary Lambda loop (`lambda_loop::run_all`, through `host`)
//! polls it, with the same runners and the same limits. Invocations arrive on the Invoke API
//! (`invoke_api`), wait in the `hub` for a free loop, and their answers go back the same way.
//! `platform_log` writes Lambda's START, END and REPORT records; `eventstream` frames streamed
//! answers. Everything from the rest of the crate is reached through `host`.

mod eventstream;
mod host;
mod hub;
mod ids;
mod invoke_api;
mod platform_log;
mod runtime_api_server;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::env::{ENV_HANDLER, LambdaEnv};

/// Invocations that may wait for a free loop; more get 429.
const MAX_WAITING: usize = 128;
/// Event bytes that may wait in all (an event is up to 6 MB); more get 429.
const MAX_WAITING_BYTES: usize = 64 * 1024 * 1024;
/// Invoke API workers beyond those that can be running or waiting: for requests that are
/// refused, or still being read.
const SPARE_WORKERS: usize = 16;

/// Runs `bootstrap serve` until the loop fails (or a signal ends the process, with the exit
/// status of the shutdown); returns why it stopped.
pub fn run(env: &LambdaEnv, args: &ServeArgs) -> anyhow::Result<bool> {
    let failure = start(env, args).map_err(anyhow::Error::msg)?;
    Err(anyhow::Error::msg(failure))
}

/// Init, both servers, the address line, then the loops; returns why they stopped.
fn start(env: &LambdaEnv, args: &ServeArgs) -> Result<String, String> {
    // 1. Init, as Lambda's cold start runs it; a failure is reported before anything listens.
    let name = args.target.handler.as_deref().or(env.handler.as_deref()).ok_or_else(|| {
        format!("no handler given\nhint: pass --handler FILE.METHOD or set {ENV_HANDLER}")
    })?;
    let handler = host::resolve(env, name, args.target.task_root.clone())
        .map_err(|d| format!("init failed: {}: {}", d.error_type, d.full_message()))?;
    let loops = usize::from(args.concurrency);
    let settings = hub::Settings {
        timeout: Duration::from_secs_f64(args.timeout),
        memory_size_mb: args.memory_size,
        max_waiting: MAX_WAITING,
        max_waiting_bytes: MAX_WAITING_BYTES,
        json_logs: host::json_logs(env),
    };
    let hub = Arc::new(hub::Hub::new(settings));

    // 2. The Runtime API the loops poll, on loopback, and the Invoke API for callers.
    let runtime_api = runtime_api_server::start(Arc::clone(&hub), loops)
        .map_err(|e| format!("cannot start the loopback Runtime API: {e}"))?;
    let requested = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(requested).map_err(|e| {
        format!(
            "cannot listen on {requested}: {e}\nhint: pick another --port, or --port 0 for a free one"
        )
    })?;
    let address = listener.local_addr().map_err(|e| format!("{requested}: {e}"))?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| format!("cannot serve on {address}: {e}"))?;

    // 3. No handler outlives us; every log record of an invocation reaches its log tail.
    host::guard_handlers();
    let tapped = Arc::clone(&hub);
    host::tap_logs(move |id, bytes| tapped.append_log(id, bytes));
    invoke_api::serve(server, Arc::clone(&hub), loops + MAX_WAITING + SPARE_WORKERS)
        .map_err(|e| format!("cannot start the Invoke API's first worker: {e}"))?;

    // 4. The address, for people and for scripts that wait for it.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "bootstrap serve: {name} on http://{address} (POST /2015-03-31/functions/function/invocations)"
    );
    let _ = stdout.flush();
    drop(stdout);

    // 5. The Lambda loops, as on Lambda; they return only if the handler cannot be loaded or
    //    the Runtime API fails.
    Ok(host::run_loops(runtime_api, handler, loops))
}
