//! `bootstrap`: a Lambda custom runtime that runs any interpreter, one process per event.
//!
//! The binary (`main.rs`) is thin; the modules are a library so that fuzz targets and
//! benchmarks can reach the pure parsers (`_HANDLER`, config, API address, `/next` headers)
//! without HTTP. Behaviour is tested through the built binary in `tests/`.

pub mod cli;
pub mod coalesce;
pub mod command;
pub mod config;
pub mod doctor;
pub mod executor;
pub mod handler;
pub mod handler_file;
pub mod invocation;
pub mod invoke;
pub mod lambda_env;
pub mod local;
pub mod log;
pub mod process;
pub mod runtime;
pub mod runtime_api;
pub mod shutdown;
pub mod stream;
pub mod syntax_check;
pub mod worker;
