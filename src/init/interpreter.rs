//! One validated `[interpreters.NAME]` entry and the words it is made of: where a layer came
//! from, the protocol, the response mode, the handler syntax, how the event is passed, and the
//! error for a file that cannot be used. `entry` builds these from a file; `config` layers them.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::template::Template;

/// The convention of p5-aws-lambda, the community Perl layer (see the Perl runner).
pub const P5_CONVENTION: &str = "p5-aws-lambda";

/// The defaults, compiled in from the repository's `interpreters.toml`.
pub const BUILTIN_CONFIG: &str = include_str!("../../interpreters.toml");

/// Where a layer of configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    BuiltIn,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("the built-in interpreters.toml"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How bootstrap talks to the interpreter process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// One process per event: the event on stdin (or in argv, or a file), the response on stdout.
    #[default]
    Plain,
    /// A runner that loads the handler once and exchanges length-prefixed frames on fds 3 and 4
    /// (see `worker`); it can be started ahead of the event and serve several events.
    Framed,
}

/// What an event shares with the events before it, in a framed runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A runner process serves `events_per_process` events (1, the default: a fresh
    /// interpreter for each).
    #[default]
    Process,
    /// The runner loads the handler once and forks a child for every event, which serves it
    /// and exits: every event starts from the same loaded state (`layers/PROTOCOL.md`).
    Fork,
}

/// How the response reaches Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// Collected, then posted whole (up to 6 MB).
    #[default]
    Buffered,
    /// Forwarded to Lambda as the handler writes it (up to 200 MB); the handler runs the plain
    /// way, a process per event.
    Streaming,
}

impl ResponseMode {
    /// `BOOTSTRAP_RESPONSE_MODE`'s value.
    pub fn parse(text: &str) -> Option<ResponseMode> {
        match text.to_ascii_lowercase().as_str() {
            "buffered" => Some(ResponseMode::Buffered),
            "streaming" => Some(ResponseMode::Streaming),
            _ => None,
        }
    }
}

/// How `_HANDLER` names the file and the function, per language, as AWS's runtime for that
/// language reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HandlerSyntax {
    /// `<path>.<method>`, split at the last dot; the path may omit its extension.
    #[default]
    #[serde(rename = "file.method")]
    FileMethod,
    /// awslambdaric: `<module>.<function>` split at the last dot; the module is a dotted
    /// (or `/`-separated) module path, a `.py` file or a package's `__init__.py`.
    #[serde(rename = "python")]
    Python,
    /// AWS's Node runtime: the last path component split at its first dot, the rest a
    /// property path (`app.nested.handler`); the file without extension, then each
    /// extension in order.
    #[serde(rename = "node")]
    Node,
    /// AWS's Ruby runtime: the last path component split at its first dot; the method is
    /// `method` or `Module::Class.method`.
    #[serde(rename = "ruby")]
    Ruby,
    /// The last path component split at its first dot, the file with one of the entry's
    /// extensions: p5-aws-lambda's reading, implied by `convention = "p5-aws-lambda"`.
    #[serde(rename = "first-dot")]
    FirstDot,
}

/// How the event reaches the interpreter, decided by the placeholders its command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVia {
    Stdin,
    Argument,
    File,
}

/// One validated `[interpreters.NAME]` entry.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub name: String,
    /// Without the leading dot: `pl`, `py`.
    pub extensions: Vec<String>,
    /// argv; the first element is the program, looked up on `PATH` unless it holds a `/`.
    pub command: Vec<Template>,
    pub payload: PayloadVia,
    pub protocol: Protocol,
    /// Framed only: a process per event, or a child forked from a loaded parent per event.
    pub isolation: Isolation,
    pub response_mode: ResponseMode,
    /// Framed only: events one process serves before it is replaced; 0 means no limit.
    pub events_per_process: u32,
    /// Framed only: a worker whose resident memory passes this is killed and replaced.
    pub max_rss_mb: Option<u64>,
    pub handler_syntax: HandlerSyntax,
    /// A programming convention the runner offers besides its default (Perl's
    /// `p5-aws-lambda`), passed to it as `BOOTSTRAP_CONVENTION`.
    pub convention: Option<String>,
    /// The argv `bootstrap check` runs to check the handler file's syntax.
    pub syntax_check: Option<Vec<Template>>,
    /// The file that set this entry's keys last.
    pub source: Source,
    /// The line of the `[interpreters.NAME]` entry in `source`.
    pub line: usize,
}

impl Interpreter {
    /// `[interpreters.perl] in /var/task/interpreters.toml, line 3`
    pub fn location(&self) -> String {
        format!("[interpreters.{}] in {}, line {}", self.name, self.source, self.line)
    }
}

/// A config file that cannot be used. The message names the file, the line and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: Source,
    pub message: String,
    /// The fix, when there is a known one.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for ConfigError {}
