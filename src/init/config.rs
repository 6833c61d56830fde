//! `interpreters.toml`: which program runs a handler file, by its extension.
//!
//! Two stages, as ripgrep does with its flags: serde reads a `RawConfig` (unknown keys are
//! errors), then `Config` holds validated interpreters with parsed argv templates and the file
//! and line each came from. Layers are merged here: the built-in defaults, then each file that
//! exists, later ones adding or replacing interpreters by name. Finding the interpreter program
//! on `PATH` is left to `handler`, which resolves only the one interpreter actually used.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::template::{Placeholder, Template};
use crate::env::ENV_CONFIG;

/// The file name looked for beside the executable and in the task root.
pub const CONFIG_FILE_NAME: &str = "interpreters.toml";

/// The content type of a plain stream of bytes.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// The content type of a stream that opens with a JSON prelude and 8 NUL bytes, as function
/// URLs and API Gateway read it.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

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

/// All interpreters after layering, and the files that were read.
#[derive(Debug, Clone)]
pub struct Config {
    interpreters: BTreeMap<String, Interpreter>,
    pub sources: Vec<Source>,
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

/// What is wrong with one value, and how to fix it.
#[derive(Debug)]
struct Problem {
    message: String,
    hint: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Problem {
        Problem { message: message.into(), hint: Some(hint.into()) }
    }

    /// The same problem, placed: `line 3: [interpreters.x] command: <message>`.
    fn at(self, place: &str) -> Problem {
        Problem { message: format!("{place}: {}", self.message), hint: self.hint }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    interpreters: BTreeMap<String, Spanned<RawInterpreter>>,
}

/// One entry as a file writes it. Every key is optional here: an entry that names an
/// interpreter defined earlier changes only the keys it sets; a new one needs `extensions` and
/// `command`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterpreter {
    extensions: Option<Spanned<Vec<String>>>,
    command: Option<Spanned<Vec<String>>>,
    protocol: Option<Spanned<Protocol>>,
    response_mode: Option<Spanned<ResponseMode>>,
    events_per_process: Option<Spanned<u32>>,
    max_rss_mb: Option<Spanned<u64>>,
    handler_syntax: Option<Spanned<HandlerSyntax>>,
    convention: Option<Spanned<String>>,
    syntax_check: Option<Spanned<Vec<String>>>,
}

impl Config {
    /// Reads the layers in order: built-in, then each path that exists. `required` paths
    /// (`BOOTSTRAP_CONFIG`) must exist; the others are skipped when absent.
    pub fn load(optional: &[PathBuf], required: Option<&Path>) -> Result<Config, ConfigError> {
        let mut layers = vec![(Source::BuiltIn, BUILTIN_CONFIG.to_string())];
        for path in optional {
            match fs::read_to_string(path) {
                Ok(text) => layers.push((Source::File(path.clone()), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(read_error(path, &e)),
            }
        }
        if let Some(path) = required {
            let text = fs::read_to_string(path).map_err(|e| ConfigError {
                hint: Some(format!(
                    "{ENV_CONFIG} names a file that cannot be read; fix the path or unset it"
                )),
                ..read_error(path, &e)
            })?;
            layers.push((Source::File(path.to_path_buf()), text));
        }
        Config::from_layers(layers)
    }

    /// Merges layers of TOML text; pure, for tests and fuzzing. Linear in the number of
    /// entries: each extension has one owner, looked up rather than searched for.
    pub fn from_layers(layers: Vec<(Source, String)>) -> Result<Config, ConfigError> {
        let mut config = Config { interpreters: BTreeMap::new(), sources: Vec::new() };
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        for (source, text) in layers {
            let interpreters = parse_layer(&source, &text, &config.interpreters)?;
            for interpreter in interpreters {
                // An extension claimed by this entry is taken from whichever had it before.
                for ext in &interpreter.extensions {
                    let Some(previous) = owner.insert(ext.clone(), interpreter.name.clone()) else {
                        continue;
                    };
                    if previous == interpreter.name {
                        continue;
                    }
                    if let Some(other) = config.interpreters.get_mut(&previous) {
                        other.extensions.retain(|e| e != ext);
                        // One left with no extension can never be chosen.
                        if other.extensions.is_empty() {
                            config.interpreters.remove(&previous);
                        }
                    }
                }
                // Extensions this entry had before and no longer lists are free again.
                if let Some(before) = config.interpreters.get(&interpreter.name) {
                    for ext in &before.extensions {
                        if !interpreter.extensions.contains(ext) {
                            owner.remove(ext);
                        }
                    }
                }
                config.interpreters.insert(interpreter.name.clone(), interpreter);
            }
            config.sources.push(source);
        }
        Ok(config)
    }

    /// The interpreter for a file extension (no dot).
    pub fn for_extension(&self, extension: &str) -> Option<&Interpreter> {
        self.interpreters.values().find(|i| i.extensions.iter().any(|e| e == extension))
    }

    /// Every configured extension, in a stable order.
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.interpreters.values().flat_map(|i| i.extensions.iter().map(String::as_str))
    }

    pub fn interpreters(&self) -> impl Iterator<Item = &Interpreter> {
        self.interpreters.values()
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError {
        source: Source::File(path.to_path_buf()),
        message: format!("cannot read the file: {e}"),
        hint: None,
    }
}

/// Parses and validates one layer; `earlier` holds the entries of the layers before it, which
/// an entry of the same name changes key by key. Duplicate extensions within one file are an
/// error.
fn parse_layer(
    source: &Source,
    text: &str,
    earlier: &BTreeMap<String, Interpreter>,
) -> Result<Vec<Interpreter>, ConfigError> {
    let error = |problem: Problem| ConfigError {
        source: source.clone(),
        message: problem.message,
        hint: problem.hint,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        source: source.clone(),
        message: e.to_string().trim_end().to_string(),
        hint: None,
    })?;
    let lines = Lines::new(text);
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut interpreters = Vec::new();
    for (name, raw) in raw.interpreters {
        let line = lines.of(raw.span().start);
        let raw = raw.into_inner();
        let at = |key: &str, span: std::ops::Range<usize>| {
            format!("line {}: [interpreters.{name}] {key}", lines.of(span.start))
        };
        let base = earlier.get(&name);
        let missing = |key: &str| {
            error(Problem::new(
                format!("line {line}: [interpreters.{name}]: {key} is missing"),
                format!(
                    "a new interpreter needs extensions and command; to change one defined \
                     earlier, use its name (built in: {})",
                    builtin_names()
                ),
            ))
        };
        let extensions = match (raw.extensions, base) {
            (Some(extensions), _) => {
                let ext_at = at("extensions", extensions.span());
                let extensions = validate_extensions(extensions.into_inner())
                    .map_err(|p| error(p.at(&ext_at)))?;
                for ext in &extensions {
                    if let Some(first) = claimed.insert(ext.clone(), name.clone()) {
                        return Err(error(Problem::new(
                            format!(
                                "{ext_at}: extension {ext:?} is already claimed by \
                                 [interpreters.{first}] in this file"
                            ),
                            "give each extension to one interpreter",
                        )));
                    }
                }
                extensions
            }
            (None, Some(base)) => base.extensions.clone(),
            (None, None) => return Err(missing("extensions")),
        };
        let cmd_at = raw.command.as_ref().map(|c| at("command", c.span()));
        let (command, payload) = match (raw.command, base) {
            (Some(command), _) => validate_command(command.into_inner())
                .map_err(|p| error(p.at(&cmd_at.clone().unwrap_or_default())))?,
            (None, Some(base)) => (base.command.clone(), base.payload),
            (None, None) => return Err(missing("command")),
        };
        let protocol =
            raw.protocol.map(Spanned::into_inner).or(base.map(|b| b.protocol)).unwrap_or_default();
        if protocol == Protocol::Framed && payload != PayloadVia::Stdin {
            return Err(error(Problem::new(
                format!(
                    "{}: uses {{event}} or {{event_file}}, but protocol = \"framed\" passes the \
                     event in frames",
                    cmd_at.unwrap_or_else(|| format!("line {line}: [interpreters.{name}] command"))
                ),
                "remove the placeholder, or set protocol = \"plain\"",
            )));
        }
        // Framed-only keys set in this file must come with the framed protocol; ones inherited
        // from an earlier file are dropped when this file turns the protocol to plain.
        let framed_only = [
            ("events_per_process", raw.events_per_process.as_ref().map(Spanned::span)),
            ("max_rss_mb", raw.max_rss_mb.as_ref().map(Spanned::span)),
        ];
        for (key, span) in framed_only {
            if let Some(span) = span
                && protocol == Protocol::Plain
            {
                return Err(error(Problem::new(
                    format!("{}: only applies to protocol = \"framed\"", at(key, span)),
                    format!(
                        "add protocol = \"framed\" (for a runner that speaks it) or remove {key}"
                    ),
                )));
            }
        }
        if let Some(limit) = &raw.max_rss_mb
            && *limit.get_ref() == 0
        {
            return Err(error(Problem::new(
                format!("{}: must be at least 1", at("max_rss_mb", limit.span())),
                "remove it for no limit",
            )));
        }
        let framed = |value: Option<u64>| value.filter(|_| protocol == Protocol::Framed);
        let convention = match raw.convention {
            Some(convention) => {
                let convention_at = at("convention", convention.span());
                Some(
                    validate_convention(convention.into_inner())
                        .map_err(|p| error(p.at(&convention_at)))?,
                )
            }
            None => base.and_then(|b| b.convention.clone()),
        };
        let syntax_check = match raw.syntax_check {
            Some(check) => {
                let check_at = at("syntax_check", check.span());
                Some(
                    validate_syntax_check(check.into_inner())
                        .map_err(|p| error(p.at(&check_at)))?,
                )
            }
            None => base.and_then(|b| b.syntax_check.clone()),
        };
        interpreters.push(Interpreter {
            extensions,
            command,
            payload,
            protocol,
            response_mode: raw
                .response_mode
                .map(Spanned::into_inner)
                .or(base.map(|b| b.response_mode))
                .unwrap_or_default(),
            events_per_process: raw
                .events_per_process
                .map(Spanned::into_inner)
                .or(base.map(|b| b.events_per_process).filter(|_| protocol == Protocol::Framed))
                .unwrap_or(1),
            max_rss_mb: raw
                .max_rss_mb
                .map(Spanned::into_inner)
                .or(framed(base.and_then(|b| b.max_rss_mb))),
            // p5-aws-lambda reads `_HANDLER` at its first dot; its convention implies that.
            handler_syntax: raw
                .handler_syntax
                .map(Spanned::into_inner)
                .or((convention.as_deref() == Some(P5_CONVENTION))
                    .then_some(HandlerSyntax::FirstDot))
                .or(base.map(|b| b.handler_syntax))
                .unwrap_or_default(),
            convention,
            syntax_check,
            source: source.clone(),
            line,
            name,
        });
    }
    Ok(interpreters)
}

/// The names of the built-in entries, for hints.
fn builtin_names() -> String {
    let raw: Result<RawConfig, _> = toml::from_str(BUILTIN_CONFIG);
    raw.map(|raw| raw.interpreters.into_keys().collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

/// Line numbers of byte offsets, from the line starts counted once per file.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = std::iter::once(0)
            .chain(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1))
            .collect();
        Lines { starts }
    }

    /// The 1-based line holding byte `offset`.
    fn of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

fn validate_convention(convention: String) -> Result<String, Problem> {
    let is_name = !convention.is_empty()
        && convention.len() <= 64
        && convention
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if is_name {
        return Ok(convention);
    }
    Err(Problem::new(
        format!("{convention:?} is not a convention name"),
        "use letters, digits, '-', '_' or '.', e.g. convention = \"p5-aws-lambda\"",
    ))
}

/// `syntax_check`: an argv for `bootstrap check`, with `{file}` (and `{task_root}`,
/// `{runners}`) but nothing per event.
fn validate_syntax_check(command: Vec<String>) -> Result<Vec<Template>, Problem> {
    let (templates, payload) = validate_command(command)?;
    if payload != PayloadVia::Stdin {
        return Err(Problem::new(
            "names the event",
            "a syntax check reads only the handler file, e.g. \
             syntax_check = [\"ruby\", \"-c\", \"{file}\"]",
        ));
    }
    Ok(templates)
}

fn validate_extensions(extensions: Vec<String>) -> Result<Vec<String>, Problem> {
    if extensions.is_empty() {
        return Err(Problem::new(
            "is empty",
            "list at least one file extension, e.g. extensions = [\"rb\"]",
        ));
    }
    for ext in &extensions {
        if let Some(bare) = ext.strip_prefix('.') {
            return Err(Problem::new(
                format!("{ext:?} starts with a dot"),
                format!("write {bare:?}, without the dot"),
            ));
        }
        let is_clean = !ext.is_empty()
            && ext.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !is_clean {
            return Err(Problem::new(
                format!("{ext:?} is not a file extension"),
                "use letters, digits, '_', '-' or '.', e.g. \"rb\"",
            ));
        }
    }
    Ok(extensions)
}

fn validate_command(command: Vec<String>) -> Result<(Vec<Template>, PayloadVia), Problem> {
    let program_hint = "the first element is the program to run";
    let Some(program) = command.first() else {
        return Err(Problem::new(
            "is empty",
            "give the program and its arguments, e.g. command = [\"ruby\", \"{file}\"]",
        ));
    };
    if program.trim().is_empty() {
        return Err(Problem::new("has an empty program name", program_hint));
    }
    let templates: Vec<Template> = command
        .iter()
        .map(|arg| {
            Template::parse(arg)
                .map_err(|e| Problem { message: format!("{arg:?}: {e}"), hint: None })
        })
        .collect::<Result<_, _>>()?;
    if templates[0].placeholders().any(Placeholder::is_per_event) {
        return Err(Problem::new("names the event in the program position", program_hint));
    }
    let uses = |p| templates.iter().any(|t| t.uses(p));
    let payload = match (uses(Placeholder::Event), uses(Placeholder::EventFile)) {
        (false, false) => PayloadVia::Stdin,
        (true, false) => PayloadVia::Argument,
        (false, true) => PayloadVia::File,
        (true, true) => {
            return Err(Problem::new(
                "uses both {event} and {event_file}",
                "pass the event one way",
            ));
        }
    };
    Ok((templates, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Source {
        Source::File(PathBuf::from(name))
    }

    fn layer(text: &str) -> Result<Config, ConfigError> {
        Config::from_layers(vec![
            (Source::BuiltIn, BUILTIN_CONFIG.into()),
            (file("/t/i.toml"), text.into()),
        ])
    }

    #[test]
    fn builtin_config_has_the_four_languages() {
        let config = Config::from_layers(vec![(Source::BuiltIn, BUILTIN_CONFIG.into())]).unwrap();
        for (ext, name) in [
            ("pl", "perl"),
            ("pm", "perl"),
            ("py", "python"),
            ("sh", "shell"),
            ("js", "node"),
            ("mjs", "node"),
        ] {
            assert_eq!(config.for_extension(ext).map(|i| i.name.as_str()), Some(name), "{ext}");
        }
    }

    #[test]
    fn the_awk_example_from_the_docs_works() {
        let config = layer(
            "[interpreters.awk]\nextensions = [\"awk\"]\ncommand = [\"awk\", \"-f\", \"{file}\"]\n",
        )
        .unwrap();
        let awk = config.for_extension("awk").unwrap();
        assert_eq!(awk.payload, PayloadVia::Stdin);
        assert_eq!(awk.line, 1);
        assert_eq!(awk.command.len(), 3);
    }

    #[test]
    fn later_layers_replace_by_name_and_take_extensions() {
        let config = layer("[interpreters.myperl]\nextensions = [\"pl\"]\ncommand = [\"/opt/bin/perl\", \"{file}\"]\n").unwrap();
        assert_eq!(config.for_extension("pl").unwrap().name, "myperl");
        assert_eq!(config.for_extension("pm").unwrap().name, "perl");
        let replaced = layer(
            "[interpreters.perl]\nextensions = [\"perl\"]\ncommand = [\"perl\", \"{file}\"]\n",
        )
        .unwrap();
        assert!(replaced.for_extension("pl").is_none());
        assert_eq!(replaced.for_extension("perl").unwrap().source, file("/t/i.toml"));
    }

    #[test]
    fn payload_follows_the_placeholders() {
        let arg = layer("[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\"]\n")
            .unwrap();
        assert_eq!(arg.for_extension("x").unwrap().payload, PayloadVia::Argument);
        let file_ = layer(
            "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"--in={event_file}\"]\n",
        )
        .unwrap();
        assert_eq!(file_.for_extension("x").unwrap().payload, PayloadVia::File);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\"]\ninterpeter = 1\n",
                "unknown field `interpeter`",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\n\ncommand = []\n",
                "line 4: [interpreters.x] command: is empty",
            ),
            (
                "[interpreters.x]\nextensions = [\".x\"]\ncommand = [\"x\"]\n",
                "line 2: [interpreters.x] extensions: \".x\" starts with a dot",
            ),
            ("[interpreters.x]\nextensions = \"x\"\ncommand = [\"x\"]\n", "invalid type"),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{fiel}\"]\n",
                "unknown placeholder {fiel}",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"{event}\"]\n",
                "program position",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\", \"{event_file}\"]\n",
                "both",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\"]\n[interpreters.y]\nextensions = [\"x\"]\ncommand = [\"y\"]\n",
                "already claimed",
            ),
            ("[interpreters.x\n", "TOML parse error at line 1"),
            ("[interpreter.x]\n", "unknown field `interpreter`"),
        ];
        for (text, expected) in cases {
            let err = layer(text).unwrap_err();
            assert_eq!(err.source, file("/t/i.toml"), "{text}");
            let shown = err.to_string();
            assert!(shown.starts_with("/t/i.toml: "), "{shown}");
            assert!(shown.contains(expected), "expected {expected:?} in:\n{shown}");
        }
    }

    #[test]
    fn framed_settings_are_checked() {
        let entry = |extra: &str| {
            format!(
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{{file}}\"]\n{extra}\n"
            )
        };
        let warm = layer(&entry("protocol = \"framed\"\nevents_per_process = 0\nmax_rss_mb = 512"))
            .unwrap();
        let x = warm.for_extension("x").unwrap();
        assert_eq!(
            (x.protocol, x.events_per_process, x.max_rss_mb),
            (Protocol::Framed, 0, Some(512))
        );
        let default = layer(&entry("protocol = \"framed\"")).unwrap();
        assert_eq!(default.for_extension("x").unwrap().events_per_process, 1);
        for (extra, expected) in [
            ("protocol = \"fremed\"", "unknown variant `fremed`"),
            (
                "events_per_process = 3",
                "line 4: [interpreters.x] events_per_process: only applies to protocol = \"framed\"",
            ),
            ("protocol = \"framed\"\nmax_rss_mb = 0", "max_rss_mb: must be at least 1"),
            ("protocol = \"framed\"\nevents_per_process = -1", "events_per_process"),
        ] {
            let err = layer(&entry(extra)).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
        }
        let arg = "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\"]\nprotocol = \"framed\"\n";
        assert!(layer(arg).unwrap_err().to_string().contains("passes the event in frames"));
    }

    #[test]
    fn type_errors_carry_a_line_number() {
        let err = layer("[interpreters.x]\nextensions = [\"x\"]\ncommand = \"x\"\n").unwrap_err();
        assert!(err.message.contains("line 3"), "{}", err.message);
    }
}
