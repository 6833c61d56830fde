//! Every `errorType` bootstrap itself posts, in one place. They follow the
//! `Runtime.PascalCase` family that AWS's runtime clients use; a handler's own errors carry its
//! language's class names instead, and the language runners post their runtime's names.

/// `_HANDLER` is unset, has no `.`, or names something that cannot be a file and a function.
pub const MALFORMED_HANDLER_NAME: &str = "Runtime.MalformedHandlerName";
/// No file matches the handler name, two do, or an extension-less file is not executable.
pub const HANDLER_NOT_FOUND: &str = "Runtime.HandlerNotFound";
/// An `interpreters.toml` (or a `BOOTSTRAP_*` setting) cannot be used.
pub const INVALID_CONFIG: &str = "Runtime.InvalidConfig";
/// `LAMBDA_TASK_ROOT` is unset or not a directory.
pub const INVALID_TASK_ROOT: &str = "Runtime.InvalidTaskRoot";
/// The interpreter, or the language runners, cannot be found.
pub const INTERPRETER_NOT_FOUND: &str = "Runtime.InterpreterNotFound";
/// The handler file does not pass its interpreter's syntax check.
pub const USER_CODE_SYNTAX_ERROR: &str = "Runtime.UserCodeSyntaxError";
/// An executable handler cannot be run: a file that cannot load.
pub const IMPORT_MODULE_ERROR: &str = "Runtime.ImportModuleError";
/// The handler exited non-zero or was killed by a signal.
pub const EXIT_ERROR: &str = "Runtime.ExitError";
/// The deadline came first.
pub const TIMEOUT: &str = "Runtime.Timeout";
/// The response is over Lambda's limit.
pub const RESPONSE_TOO_LARGE: &str = "Runtime.ResponseTooLarge";
/// The event is too large for the way the entry passes it (`{event}`), or for Lambda.
pub const EVENT_TOO_LARGE: &str = "Runtime.EventTooLarge";
/// The event cannot be passed the way the entry asks (a NUL in `{event}`), or not read.
pub const INVALID_EVENT: &str = "Runtime.InvalidEvent";
/// The interpreter could not be started, or its scratch space created.
pub const SPAWN_ERROR: &str = "Runtime.SpawnError";
/// bootstrap got SIGTERM or SIGINT while the handler ran.
pub const SHUTDOWN: &str = "Runtime.Shutdown";
/// `/next` sent headers we cannot use for this invocation.
pub const INVALID_INVOCATION: &str = "Runtime.InvalidInvocation";
/// A framed runner broke the frame protocol.
pub const INVALID_FRAME: &str = "Runtime.InvalidFrame";
/// A framed worker passed its `max_rss_mb`.
pub const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";
