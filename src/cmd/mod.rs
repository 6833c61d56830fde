//! The subcommands run from a terminal: `bootstrap invoke`, `check` and `serve`. They drive
//! the init and run code the Lambda loop uses; `invoke` and `check` with no HTTP at all, `serve`
//! through a Runtime API it serves itself on loopback.
//!
//! - `invoke`: one event through the handler, the response on stdout;
//! - `check`: what init resolves, the handler file's syntax, and with `--opt` a deployment
//!   (`doctor`);
//! - `serve`: Lambda's Invoke API on localhost, for the AWS CLI, SDKs and curl.

pub mod check;
pub mod doctor;
pub mod invoke;
pub mod serve;

use std::path::PathBuf;

use crate::cli::Target;
use crate::env::{ENV_HANDLER, LambdaEnv};
use crate::init::{self, Handler, Settings};
use crate::invocation::Diagnostic;
use crate::invocation::error_type::MALFORMED_HANDLER_NAME;

/// The handler named on the command line, else by `_HANDLER`.
fn handler_name<'a>(env: &'a LambdaEnv, target: &'a Target) -> Result<&'a str, Diagnostic> {
    target.handler.as_deref().or(env.handler.as_deref()).ok_or_else(|| {
        Diagnostic::new(MALFORMED_HANDLER_NAME, "no handler given")
            .with_hint(format!("pass --handler FILE.METHOD or set {ENV_HANDLER}"))
    })
}

/// The task root named on the command line, else by `LAMBDA_TASK_ROOT`, else `.`.
fn task_root(env: &LambdaEnv, target: &Target) -> PathBuf {
    target.task_root.clone().or_else(|| env.task_root.clone()).unwrap_or_else(|| ".".into())
}

/// Init for a handler named on the command line, with the layer beside this executable.
fn resolve(env: &LambdaEnv, target: &Target) -> Result<Handler, Diagnostic> {
    let handler = handler_name(env, target)?;
    let task_root = task_root(env, target);
    let exe_dir = init::exe_dir();
    init::resolve(&Settings { handler, task_root: &task_root, env, exe_dir: exe_dir.as_deref() })
}
