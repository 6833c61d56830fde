//! One file's `[interpreters.NAME]` entries, read and checked: serde reads what the file
//! wrote (every key optional, unknown keys refused), then each entry is validated and merged
//! over the entry of the same name from the layers before it. Errors name the line and the key.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::interpreter::{
    BUILTIN_CONFIG, ConfigError, HandlerSyntax, Interpreter, Isolation, P5_CONVENTION, PayloadVia,
    Protocol, ResponseMode, Source,
};
use super::template::{Placeholder, Template};

/// What is wrong with one value, and how to fix it.
#[derive(Debug)]
pub(super) struct Problem {
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
    isolation: Option<Spanned<Isolation>>,
    response_mode: Option<Spanned<ResponseMode>>,
    events_per_process: Option<Spanned<u32>>,
    max_rss_mb: Option<Spanned<u64>>,
    handler_syntax: Option<Spanned<HandlerSyntax>>,
    convention: Option<Spanned<String>>,
    syntax_check: Option<Spanned<Vec<String>>>,
}

/// Parses and validates one layer; `earlier` holds the entries of the layers before it, which
/// an entry of the same name changes key by key. Duplicate extensions within one file are an
/// error.
pub(super) fn parse_layer(
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
        let entry = Entry { name: &name, line, lines: &lines, base: earlier.get(&name) };
        let interpreter = entry.build(raw.into_inner(), &mut claimed, source).map_err(error)?;
        interpreters.push(interpreter);
    }
    Ok(interpreters)
}

/// One entry of one file, with what it is merged over.
struct Entry<'a> {
    name: &'a str,
    /// The line of its `[interpreters.NAME]`.
    line: usize,
    lines: &'a Lines,
    /// The entry of the same name from an earlier layer.
    base: Option<&'a Interpreter>,
}

impl Entry<'_> {
    /// `line 3: [interpreters.x] command`, for the key at `span`.
    fn at(&self, key: &str, span: Range<usize>) -> String {
        format!("line {}: [interpreters.{}] {key}", self.lines.of(span.start), self.name)
    }

    fn missing(&self, key: &str) -> Problem {
        Problem::new(
            format!("line {}: [interpreters.{}]: {key} is missing", self.line, self.name),
            format!(
                "a new interpreter needs extensions and command; to change one defined earlier, \
                 use its name (built in: {})",
                builtin_names()
            ),
        )
    }

    /// The merged, validated interpreter. `claimed` records which entry of this file took
    /// each extension.
    fn build(
        &self,
        raw: RawInterpreter,
        claimed: &mut BTreeMap<String, String>,
        source: &Source,
    ) -> Result<Interpreter, Problem> {
        let base = self.base;
        let isolation = self.isolation(&raw)?;
        let extensions = self.extensions(raw.extensions, claimed)?;
        let cmd_at = raw.command.as_ref().map(|c| self.at("command", c.span()));
        let (command, payload) = match (raw.command, base) {
            (Some(command), _) => validate_command(command.into_inner())
                .map_err(|p| p.at(cmd_at.as_deref().unwrap_or_default()))?,
            (None, Some(base)) => (base.command.clone(), base.payload),
            (None, None) => return Err(self.missing("command")),
        };
        let protocol = raw
            .protocol
            .as_ref()
            .map(|p| *p.get_ref())
            .or(base.map(|b| b.protocol))
            .unwrap_or_default();
        // Forking a loaded runner is a framed runner's mode: it implies the protocol.
        let protocol = if isolation == Isolation::Fork { Protocol::Framed } else { protocol };
        if protocol == Protocol::Framed && payload != PayloadVia::Stdin {
            let place = cmd_at.unwrap_or_else(|| {
                format!("line {}: [interpreters.{}] command", self.line, self.name)
            });
            return Err(Problem::new(
                format!(
                    "{place}: uses {{event}} or {{event_file}}, but protocol = \"framed\" passes \
                     the event in frames"
                ),
                "remove the placeholder, or set protocol = \"plain\"",
            ));
        }
        self.check_framed_keys(&raw.events_per_process, &raw.max_rss_mb, protocol)?;
        let convention = self
            .validated(raw.convention, "convention", validate_convention)?
            .or_else(|| base.and_then(|b| b.convention.clone()));
        let syntax_check = self
            .validated(raw.syntax_check, "syntax_check", validate_syntax_check)?
            .or_else(|| base.and_then(|b| b.syntax_check.clone()));
        // p5-aws-lambda reads `_HANDLER` at its first dot; its convention implies that.
        let implied_syntax =
            (convention.as_deref() == Some(P5_CONVENTION)).then_some(HandlerSyntax::FirstDot);
        Ok(Interpreter {
            name: self.name.to_string(),
            extensions,
            command,
            payload,
            protocol,
            isolation,
            response_mode: merged(raw.response_mode, base.map(|b| b.response_mode))
                .unwrap_or_default(),
            events_per_process: merged(
                raw.events_per_process,
                framed(protocol, base.map(|b| b.events_per_process)),
            )
            .unwrap_or(1),
            max_rss_mb: merged(raw.max_rss_mb, framed(protocol, base.and_then(|b| b.max_rss_mb))),
            handler_syntax: raw
                .handler_syntax
                .map(Spanned::into_inner)
                .or(implied_syntax)
                .or(base.map(|b| b.handler_syntax))
                .unwrap_or_default(),
            convention,
            syntax_check,
            source: source.clone(),
            line: self.line,
        })
    }

    /// The extensions this file gives the entry (each taken by one entry of the file only), or
    /// those it had before.
    fn extensions(
        &self,
        raw: Option<Spanned<Vec<String>>>,
        claimed: &mut BTreeMap<String, String>,
    ) -> Result<Vec<String>, Problem> {
        let Some(raw) = raw else {
            return self
                .base
                .map(|b| b.extensions.clone())
                .ok_or_else(|| self.missing("extensions"));
        };
        let ext_at = self.at("extensions", raw.span());
        let extensions = validate_extensions(raw.into_inner()).map_err(|p| p.at(&ext_at))?;
        for ext in &extensions {
            if let Some(first) = claimed.insert(ext.clone(), self.name.to_string()) {
                return Err(Problem::new(
                    format!(
                        "{ext_at}: extension {ext:?} is already claimed by [interpreters.{first}] \
                         in this file"
                    ),
                    "give each extension to one interpreter",
                ));
            }
        }
        Ok(extensions)
    }

    /// The entry's isolation. `fork` implies the framed protocol, so it cannot come with
    /// `protocol = "plain"` or `events_per_process` set in the same file (every event gets a
    /// child of its own), and Node cannot fork.
    fn isolation(&self, raw: &RawInterpreter) -> Result<Isolation, Problem> {
        let Some(set) = &raw.isolation else {
            // An inherited fork is dropped, as the framed-only keys, when this file turns the
            // protocol to plain.
            let plain = raw.protocol.as_ref().is_some_and(|p| *p.get_ref() == Protocol::Plain);
            let inherited = self.base.map(|b| b.isolation).filter(|_| !plain);
            return Ok(inherited.unwrap_or_default());
        };
        if *set.get_ref() == Isolation::Process {
            return Ok(Isolation::Process);
        }
        let place = self.at("isolation", set.span());
        if raw.protocol.as_ref().is_some_and(|p| *p.get_ref() == Protocol::Plain) {
            return Err(Problem::new(
                format!("{place}: \"fork\" needs the framed protocol, and protocol = \"plain\""),
                "remove protocol = \"plain\" (isolation = \"fork\" implies \"framed\")",
            ));
        }
        if raw.events_per_process.is_some() {
            return Err(Problem::new(
                format!(
                    "{place}: \"fork\" gives every event a child of its own, so events_per_process does not apply"
                ),
                "remove events_per_process",
            ));
        }
        let syntax = raw.handler_syntax.as_ref().map(|s| *s.get_ref());
        if syntax.or(self.base.map(|b| b.handler_syntax)) == Some(HandlerSyntax::Node) {
            return Err(Problem::new(
                format!(
                    "{place}: Node cannot fork a loaded runner (its event loop and threads do not survive a fork)"
                ),
                "for a fresh process per event keep the default isolation (events_per_process = 1, \
                 started ahead of each event); for speed, events_per_process = 0 (a warm worker)",
            ));
        }
        Ok(Isolation::Fork)
    }

    /// Framed-only keys set in this file must come with the framed protocol; ones inherited
    /// from an earlier file are dropped when this file turns the protocol to plain.
    fn check_framed_keys(
        &self,
        events_per_process: &Option<Spanned<u32>>,
        max_rss_mb: &Option<Spanned<u64>>,
        protocol: Protocol,
    ) -> Result<(), Problem> {
        let framed_only = [
            ("events_per_process", events_per_process.as_ref().map(Spanned::span)),
            ("max_rss_mb", max_rss_mb.as_ref().map(Spanned::span)),
        ];
        for (key, span) in framed_only {
            if let Some(span) = span
                && protocol == Protocol::Plain
            {
                return Err(Problem::new(
                    format!("{}: only applies to protocol = \"framed\"", self.at(key, span)),
                    format!(
                        "add protocol = \"framed\" (for a runner that speaks it) or remove {key}"
                    ),
                ));
            }
        }
        if let Some(limit) = max_rss_mb
            && *limit.get_ref() == 0
        {
            return Err(Problem::new(
                format!("{}: must be at least 1", self.at("max_rss_mb", limit.span())),
                "remove it for no limit",
            ));
        }
        Ok(())
    }

    /// A key this file sets, validated and placed in its errors; `None` when it is not set.
    fn validated<T, U>(
        &self,
        raw: Option<Spanned<T>>,
        key: &str,
        validate: impl FnOnce(T) -> Result<U, Problem>,
    ) -> Result<Option<U>, Problem> {
        let Some(raw) = raw else { return Ok(None) };
        let place = self.at(key, raw.span());
        validate(raw.into_inner()).map(Some).map_err(|p| p.at(&place))
    }
}

/// An inherited framed-only value, dropped when the protocol is plain.
fn framed<T>(protocol: Protocol, value: Option<T>) -> Option<T> {
    value.filter(|_| protocol == Protocol::Framed)
}

/// The value this file sets, else the one inherited.
fn merged<T>(raw: Option<Spanned<T>>, inherited: Option<T>) -> Option<T> {
    raw.map(Spanned::into_inner).or(inherited)
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
