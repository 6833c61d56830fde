//! The `bootstrap` executable: parse the command line, run, turn the result into an exit code.
//! Every error ends here and is printed once, as one chain (`outer: inner`).

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Parser;

use bootstrap::api::address::ApiAddress;
use bootstrap::api::client::RuntimeApi;
use bootstrap::cli::{Args, Command};
use bootstrap::env::{ENV_RUNTIME_API, LambdaEnv};
use bootstrap::lambda_loop::Ended;
use bootstrap::log::{self, LogConfig};
use bootstrap::{cmd, fatal, init, lambda_loop, run, shutdown};

fn main() -> ExitCode {
    let args = Args::parse();
    let env = LambdaEnv::from_env();
    log::init(LogConfig::from_values(env.log_format.as_deref(), env.log_level.as_deref()));
    let result = match args.command {
        None => lambda(&env),
        Some(Command::Invoke { target, timeout, event }) => {
            cmd::invoke::run(&env, &target, timeout, event.as_deref())
        }
        Some(Command::Check { target, opt }) => cmd::check::run(&env, &target, opt.as_deref()),
        Some(Command::Serve(serve_args)) => cmd::serve::run(&env, &serve_args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // The command has said what went wrong.
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            fatal!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The Lambda cold start, step by step; returns only on a failure.
fn lambda(env: &LambdaEnv) -> anyhow::Result<bool> {
    // 1. Where the Runtime API is. Without it there is nobody to report an init error to.
    let raw = env.runtime_api.as_deref().ok_or_else(|| {
        anyhow!(
            "{ENV_RUNTIME_API} is not set: bootstrap serves Lambda's Runtime API\n\
             hint: try `bootstrap invoke` or `bootstrap check` to run a handler locally"
        )
    })?;
    let address = ApiAddress::parse(raw).map_err(|e| anyhow!("{ENV_RUNTIME_API}: {e}"))?;
    let api = RuntimeApi::new(&address);

    // 2. Config, handler file, interpreter, and a plain entry's syntax check: any failure goes
    //    to /runtime/init/error.
    let handler =
        match init::for_lambda(env).and_then(|h| run::syntax_check::at_init(&h).map(|()| h)) {
            Ok(handler) => handler,
            Err(diagnostic) => {
                if let Err(e) = api.post_init_error(&diagnostic) {
                    fatal!("cannot report the init error to the Runtime API at {address}: {e}");
                }
                return Err(diagnostic).context("init failed");
            }
        };

    // 3. Adopt orphaned grandchildren and handle SIGTERM, so that no handler outlives us.
    shutdown::guard_handlers();

    // 4. The loop (one per invocation Lambda may run at once), until the Runtime API fails.
    let loops = lambda_loop::concurrency(env.max_concurrency.as_deref());
    match lambda_loop::run_all(&address, api, handler, loops) {
        Ended::Init(diagnostic) => Err(diagnostic).context("init failed"),
        Ended::Api(error) => {
            Err(error).with_context(|| format!("the Runtime API at {address} failed"))
        }
    }
}
