//! `bootstrap`: a Lambda custom runtime that runs any interpreter.
//!
//! The binary (`main.rs`) is thin; the modules are a library so that fuzz targets, benchmarks
//! and the stream client's tests can reach the pure parsers and the HTTP client without the
//! binary. Behaviour is tested through the built binary in `tests/`. `ARCHITECTURE.md` draws
//! the layers; in short, from the top:
//!
//! - `lambda_loop`: `/next` → run → post, the one module that sees both `api` and `run`;
//! - `cmd`: the local subcommands, `invoke` and `check`;
//! - `serve`: Lambda's Invoke API on localhost, over a loopback Runtime API that the Lambda
//!   loop polls;
//! - `run`: the handler processes (no HTTP);
//! - `api`: the Runtime API over HTTP (no processes);
//! - `init`: `_HANDLER`, `interpreters.toml` and argv templates → a `Handler`;
//! - `invocation`: Lambda's vocabulary, under all of them;
//! - `env`, `log`, `shutdown`, `cli`: the environment read once, log records, signals, flags.

#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod cmd;
pub mod env;
pub mod init;
pub mod invocation;
pub mod lambda_loop;
pub mod log;
pub mod run;
pub mod shutdown;
