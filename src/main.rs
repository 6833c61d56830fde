//! The `bootstrap` executable: parse the command line, run, turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser;

use bootstrap::cli::{Args, Command};
use bootstrap::lambda_env::{ENV_RUNTIME_API, LambdaEnv};
use bootstrap::log::{self, LogConfig};
use bootstrap::runtime_api::{ApiAddress, RuntimeApi};
use bootstrap::{fatal, local, runtime};

fn main() -> ExitCode {
    let args = Args::parse();
    let env = LambdaEnv::from_env();
    log::init(LogConfig::from_values(env.log_format.as_deref(), env.log_level.as_deref()));
    let ok = match args.command {
        None => serve(&env),
        Some(Command::Invoke { target, timeout, event }) => {
            local::invoke(&env, &target, timeout, event.as_deref())
        }
        Some(Command::Check { target, opt }) => local::check(&env, &target, opt.as_deref()),
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The Lambda cold start, step by step; returns only on a failure.
fn serve(env: &LambdaEnv) -> bool {
    // 1. Where the Runtime API is. Without it there is nobody to report an init error to.
    let Some(raw) = &env.runtime_api else {
        fatal!(
            "{ENV_RUNTIME_API} is not set: bootstrap serves Lambda's Runtime API\nhint: try `bootstrap invoke` or `bootstrap check` to run a handler locally"
        );
        return false;
    };
    let address = match ApiAddress::parse(raw) {
        Ok(address) => address,
        Err(e) => {
            fatal!("{ENV_RUNTIME_API}: {e}");
            return false;
        }
    };
    let api = RuntimeApi::new(&address);

    // 2. Config, handler file, interpreter: any failure goes to /runtime/init/error.
    let resolved = local::resolve_for_lambda(env);
    let handler = match resolved {
        Ok(handler) => handler,
        Err(diagnostic) => {
            fatal!("init failed: {}: {}", diagnostic.error_type, diagnostic.error_message);
            if let Err(e) = api.post_init_error(&diagnostic) {
                fatal!("cannot report the init error to the Runtime API at {address}: {e}");
            }
            return false;
        }
    };

    // 3. Adopt orphaned grandchildren and handle SIGTERM, so that no handler outlives us.
    local::guard_handlers();

    // 4. The loop (one per invocation Lambda may run at once), until the Runtime API fails.
    let loops = runtime::concurrency(env.max_concurrency.as_deref());
    let error = runtime::serve_all(&address, api, handler, loops);
    fatal!("the Runtime API at {address} failed: {error}");
    false
}
