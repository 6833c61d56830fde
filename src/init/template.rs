//! Argv templates from `interpreters.toml`: `["perl", "{runners}/perl/runner.pl", "{file}"]`.
//!
//! A template is parsed once when the config is read, so an unknown placeholder is a config
//! error rather than a surprise at the first event. Values are substituted into argv strings
//! only; nothing here ever goes through a shell.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;

/// A `{name}` that a command template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The absolute path of the handler file.
    File,
    /// The method part of `_HANDLER`.
    Method,
    /// `LAMBDA_TASK_ROOT`, absolute.
    TaskRoot,
    /// The `layers/` directory that holds the built-in language runners.
    Runners,
    /// The event itself, as one argument (at most 128 KiB).
    Event,
    /// The path of a temporary file holding the event.
    EventFile,
}

impl Placeholder {
    pub const ALL: [Placeholder; 6] = [
        Placeholder::File,
        Placeholder::Method,
        Placeholder::TaskRoot,
        Placeholder::Runners,
        Placeholder::Event,
        Placeholder::EventFile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::File => "file",
            Placeholder::Method => "method",
            Placeholder::TaskRoot => "task_root",
            Placeholder::Runners => "runners",
            Placeholder::Event => "event",
            Placeholder::EventFile => "event_file",
        }
    }

    /// Whether the value differs per event (and so cannot be filled in at init).
    pub fn is_per_event(self) -> bool {
        matches!(self, Placeholder::Event | Placeholder::EventFile)
    }
}

/// One piece of an argv string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Value(Placeholder),
}

/// One argv element with its placeholders located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// A template string that names a placeholder we do not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder(pub String);

impl fmt::Display for UnknownPlaceholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<String> =
            Placeholder::ALL.iter().map(|p| format!("{{{}}}", p.name())).collect();
        write!(
            f,
            "unknown placeholder {{{}}} (known: {}; write {{{{ for a literal {{)",
            self.0,
            known.join(", ")
        )
    }
}

impl Template {
    /// Parses `{name}` placeholders, where `name` is lowercase letters and `_`. `{{` is a
    /// literal `{`; any other brace is left as it is, so `{ print $1 }` needs no escaping.
    pub fn parse(text: &str) -> Result<Template, UnknownPlaceholder> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            if let Some(stripped) = after.strip_prefix('{') {
                literal.push('{');
                rest = stripped;
                continue;
            }
            let name_len =
                after.bytes().take_while(|b| b.is_ascii_lowercase() || *b == b'_').count();
            if name_len == 0 || after.as_bytes().get(name_len) != Some(&b'}') {
                literal.push('{');
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            let placeholder = Placeholder::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| UnknownPlaceholder(name.to_string()))?;
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Value(placeholder));
            rest = &after[name_len + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() || segments.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    /// The placeholders this template uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Value(p) => Some(*p),
            Segment::Text(_) => None,
        })
    }

    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.placeholders().any(|p| p == placeholder)
    }

    /// Fills in the placeholders `value` knows; the others stay for a later call.
    pub fn fill(&self, value: impl Fn(Placeholder) -> Option<String>) -> Template {
        let mut segments: Vec<Segment> = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let text = match segment {
                Segment::Value(p) => match value(*p) {
                    Some(v) => v,
                    None => {
                        segments.push(segment.clone());
                        continue;
                    }
                },
                Segment::Text(t) => t.clone(),
            };
            match segments.last_mut() {
                Some(Segment::Text(prev)) => prev.push_str(&text),
                _ => segments.push(Segment::Text(text)),
            }
        }
        Template { segments }
    }

    /// The argv string, with the remaining placeholders taken from `value` as raw bytes
    /// (an event need not be UTF-8).
    pub fn render(&self, value: impl Fn(Placeholder) -> Vec<u8>) -> OsString {
        let mut out = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.extend_from_slice(t.as_bytes()),
                Segment::Value(p) => out.extend_from_slice(&value(*p)),
            }
        }
        OsString::from_vec(out)
    }

    /// The text with no placeholders left, if that is what it is.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [Segment::Text(t)] => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => f.write_str(&t.replace('{', "{{"))?,
                Segment::Value(p) => write!(f, "{{{}}}", p.name())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_and_leaves_other_braces() {
        let t = Template::parse("--file={file}").unwrap();
        assert_eq!(t.placeholders().collect::<Vec<_>>(), vec![Placeholder::File]);
        let awk = Template::parse("{ print $1 }").unwrap();
        assert_eq!(awk.as_literal(), Some("{ print $1 }"));
        assert_eq!(Template::parse("a{{b}").unwrap().as_literal(), Some("a{b}"));
        assert_eq!(Template::parse("").unwrap().as_literal(), Some(""));
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        assert_eq!(Template::parse("{fiel}").unwrap_err(), UnknownPlaceholder("fiel".into()));
        assert!(UnknownPlaceholder("fiel".into()).to_string().contains("{event_file}"));
    }

    #[test]
    fn fill_then_render() {
        let t = Template::parse("{runners}/x:{event}").unwrap();
        let filled = t.fill(|p| (p == Placeholder::Runners).then(|| "/opt/layers".to_string()));
        assert!(filled.uses(Placeholder::Event));
        assert!(!filled.uses(Placeholder::Runners));
        let argv = filled.render(|_| b"\xff{}".to_vec());
        assert_eq!(argv.into_vec(), b"/opt/layers/x:\xff{}".to_vec());
        assert_eq!(filled.to_string(), "/opt/layers/x:{event}");
    }
}
