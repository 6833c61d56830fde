//! The environment bootstrap reads, read once at start-up into `LambdaEnv`. Nothing else in
//! the crate calls `std::env::var`; the handler's child processes inherit the environment
//! through `Command` and get their per-event values from `run`.

use std::ffi::OsString;
use std::path::PathBuf;

/// `host:port` of the Runtime API (local emulators add a scheme and a path prefix).
pub const ENV_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// The function's Handler setting, `<path>.<method>`.
pub const ENV_HANDLER: &str = "_HANDLER";
/// Where the function's code is unpacked (`/var/task`).
pub const ENV_TASK_ROOT: &str = "LAMBDA_TASK_ROOT";
/// An extra `interpreters.toml`, read last.
pub const ENV_CONFIG: &str = "BOOTSTRAP_CONFIG";
/// Overrides where the built-in language runners are found.
pub const ENV_RUNNERS: &str = "BOOTSTRAP_RUNNERS";
/// Searched for interpreters.
pub const ENV_PATH: &str = "PATH";
/// Lambda does not set `HOME`; some interpreters want one, so children get `/tmp` then.
pub const ENV_HOME: &str = "HOME";

/// Set by bootstrap for a runner: the `convention` of its interpreters.toml entry.
pub const ENV_CONVENTION: &str = "BOOTSTRAP_CONVENTION";
/// `streaming` or `buffered`: the function's response mode, over the interpreter's.
pub const ENV_RESPONSE_MODE: &str = "BOOTSTRAP_RESPONSE_MODE";
/// The Content-Type of a streamed response (default `application/octet-stream`).
pub const ENV_RESPONSE_CONTENT_TYPE: &str = "BOOTSTRAP_RESPONSE_CONTENT_TYPE";
/// Set on Lambda Managed Instances: how many invocations may run at once.
pub const ENV_MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// The values bootstrap needs from its environment, each `None` when unset or empty.
#[derive(Debug, Clone, Default)]
pub struct LambdaEnv {
    pub runtime_api: Option<String>,
    pub handler: Option<String>,
    pub task_root: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub runners: Option<PathBuf>,
    pub path: Option<OsString>,
    pub has_home: bool,
    pub max_concurrency: Option<String>,
    pub response_mode: Option<String>,
    pub response_content_type: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

impl LambdaEnv {
    pub fn from_env() -> LambdaEnv {
        let text = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let os = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        LambdaEnv {
            runtime_api: text(ENV_RUNTIME_API),
            handler: text(ENV_HANDLER),
            task_root: os(ENV_TASK_ROOT).map(PathBuf::from),
            config: os(ENV_CONFIG).map(PathBuf::from),
            runners: os(ENV_RUNNERS).map(PathBuf::from),
            path: os(ENV_PATH),
            has_home: os(ENV_HOME).is_some(),
            max_concurrency: text(ENV_MAX_CONCURRENCY),
            response_mode: text(ENV_RESPONSE_MODE),
            response_content_type: text(ENV_RESPONSE_CONTENT_TYPE),
            log_format: text(crate::log::ENV_LOG_FORMAT),
            log_level: text(crate::log::ENV_LOG_LEVEL),
        }
    }
}
