//! The error document posted to Lambda, `{"errorType", "errorMessage", "stackTrace"}`, and the
//! reading of one that a language runner wrote.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Longest we keep a runner's message, stack trace and other keys, so an error post stays small.
const MAX_DIAGNOSTIC_TEXT: usize = 64 * 1024;
/// Longest errorType we keep.
const MAX_ERROR_TYPE: usize = 256;
/// Longest errorMessage bootstrap posts, and longest line in it; a longer one is cut, and says
/// that the whole message is in the log (bootstrap logs every error it posts, whole).
const MAX_POSTED_MESSAGE: usize = MAX_DIAGNOSTIC_TEXT;
const MAX_POSTED_LINE: usize = 4096;

/// An error for Lambda: posted as `{"errorType", "errorMessage", "stackTrace", ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub error_type: String,
    pub error_message: String,
    /// How to fix it, when bootstrap knows: posted and shown as a `hint:` line after the
    /// message.
    pub hint: Option<String>,
    /// Absent when a language runner's document had none (AWS's Node runtime posts `trace`).
    pub stack_trace: Option<Vec<String>>,
    /// What else a language runner's document held; boxed, since bootstrap's own errors have
    /// none of it.
    runner: Option<Box<RunnerDocument>>,
}

/// The rest of a language runner's error document, so that an error reads as the language's
/// own runtime would post it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunnerDocument {
    /// Its other keys (`trace`, `requestId`, ...), posted as they came.
    extra: serde_json::Map<String, serde_json::Value>,
    /// The document as the runner wrote it, when it was kept whole: posted byte for byte (key
    /// order included).
    bytes: Option<Vec<u8>>,
}

impl Diagnostic {
    pub fn new(error_type: &str, error_message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            error_type: error_type.to_string(),
            error_message: error_message.into(),
            hint: None,
            stack_trace: Some(Vec::new()),
            runner: None,
        }
    }

    /// The same error with the fix to suggest.
    pub fn with_hint(self, hint: impl Into<String>) -> Diagnostic {
        let runner = self.runner.map(|r| Box::new(RunnerDocument { bytes: None, ..*r }));
        Diagnostic { hint: Some(hint.into()), runner, ..self }
    }

    /// The other keys of a language runner's document.
    pub fn extra(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.runner.as_ref().map(|r| &r.extra)
    }

    /// The whole message: the message, then the hint on a line of its own.
    pub fn full_message(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{}\nhint: {hint}", self.error_message),
            None => self.error_message.clone(),
        }
    }

    /// The message as posted: `full_message`, with each line of its message part cut to
    /// `MAX_POSTED_LINE` bytes and the whole to `MAX_POSTED_MESSAGE`, saying so and where the
    /// rest is. The hint is kept. (A parse error quoting a 200 KB line keeps its last line,
    /// which says what is wrong.)
    pub fn posted_message(&self) -> String {
        let mut posted = String::with_capacity(self.error_message.len().min(MAX_POSTED_MESSAGE));
        let mut cut = 0;
        for (i, line) in self.error_message.split('\n').enumerate() {
            let room = MAX_POSTED_MESSAGE.saturating_sub(posted.len());
            if i > 0 {
                if room == 0 {
                    cut += 1 + line.len();
                    continue;
                }
                posted.push('\n');
            }
            let mut end = line.len().min(MAX_POSTED_LINE).min(room);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            posted.push_str(&line[..end]);
            if end < line.len() {
                posted.push('…');
                cut += line.len() - end;
            }
        }
        if cut > 0 {
            posted.push_str(&format!(
                "\n[{cut} bytes of this message were cut; the whole message is in the function's log]"
            ));
        }
        if let Some(hint) = &self.hint {
            posted.push_str(&format!("\nhint: {hint}"));
        }
        posted
    }

    /// The stack frames for the log: `stackTrace`, or the `trace` a Node runner sends.
    pub fn frames(&self) -> Vec<&str> {
        if let Some(frames) = &self.stack_trace {
            return frames.iter().map(String::as_str).collect();
        }
        let trace = self.extra().and_then(|e| e.get("trace")).and_then(|t| t.as_array());
        trace.into_iter().flatten().filter_map(|f| f.as_str()).collect()
    }

    pub fn to_json(&self) -> Vec<u8> {
        match self.runner.as_ref().and_then(|r| r.bytes.as_ref()) {
            Some(document) => document.clone(),
            None => serde_json::to_vec(self).expect("BUG: a Diagnostic always serializes"),
        }
    }

    /// The value for `Lambda-Runtime-Function-Error-Type`. Lambda keeps only values shaped
    /// `(Runtime|Function).PascalCase`; a handler's own class name (`ValueError`) becomes
    /// `Function.ValueError`, and anything else `Function.Unhandled`.
    pub fn header_error_type(&self) -> String {
        let t = self.error_type.as_str();
        let is_pascal = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && s.chars().all(|c| c.is_ascii_alphabetic())
        };
        match t.split_once('.') {
            Some(("Runtime" | "Function", rest)) if is_pascal(rest) => t.to_string(),
            None if is_pascal(t) => format!("Function.{t}"),
            _ => "Function.Unhandled".to_string(),
        }
    }

    /// Reads a language runner's own `{"errorType", "errorMessage", ...}` document, keeping
    /// its other keys, all within a size budget.
    pub fn parse(document: &[u8]) -> Option<Diagnostic> {
        let value: serde_json::Value = serde_json::from_slice(document).ok()?;
        let object = value.as_object()?;
        let error_type = object.get("errorType")?.as_str()?;
        let error_message = object.get("errorMessage")?.as_str()?;
        let mut budget = MAX_DIAGNOSTIC_TEXT;
        let stack_trace = object.get("stackTrace").and_then(|s| s.as_array()).map(|frames| {
            let mut kept = Vec::new();
            for frame in frames {
                let frame = frame.as_str().map_or_else(|| frame.to_string(), str::to_string);
                if frame.len() > budget {
                    break;
                }
                budget -= frame.len();
                kept.push(frame);
            }
            kept
        });
        // The runner's other keys, whole or not at all, within what is left of the budget.
        let mut extra = serde_json::Map::new();
        for (key, value) in object {
            if matches!(key.as_str(), "errorType" | "errorMessage" | "stackTrace") {
                continue;
            }
            let size = key.len() + value.to_string().len();
            if size <= budget {
                budget -= size;
                extra.insert(key.clone(), value.clone());
            }
        }
        let kept_whole = document.len() <= MAX_DIAGNOSTIC_TEXT
            && error_type.len() <= MAX_ERROR_TYPE
            && stack_trace.as_ref().map(Vec::len)
                == object.get("stackTrace").and_then(|s| s.as_array()).map(Vec::len)
            && 2 + usize::from(stack_trace.is_some()) + extra.len() == object.len();
        Some(Diagnostic {
            error_type: truncate(error_type, MAX_ERROR_TYPE),
            error_message: truncate(error_message, MAX_DIAGNOSTIC_TEXT),
            hint: None,
            stack_trace,
            runner: Some(Box::new(RunnerDocument {
                extra,
                bytes: kept_whole.then(|| document.to_vec()),
            })),
        })
    }
}

/// `errorType: message`, and the hint on its own line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.full_message())
    }
}

impl std::error::Error for Diagnostic {}

impl Serialize for Diagnostic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("errorType", &self.error_type)?;
        map.serialize_entry("errorMessage", &self.posted_message())?;
        if let Some(frames) = &self.stack_trace {
            map.serialize_entry("stackTrace", frames)?;
        }
        for (key, value) in self.extra().into_iter().flatten() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_header_is_always_runtime_or_function() {
        let header = |t: &str| Diagnostic::new(t, "m").header_error_type();
        assert_eq!(header("Runtime.ExitError"), "Runtime.ExitError");
        assert_eq!(header("ValueError"), "Function.ValueError");
        assert_eq!(header("My::Error"), "Function.Unhandled");
        assert_eq!(header("Runtime.bad"), "Function.Unhandled");
        assert_eq!(header(""), "Function.Unhandled");
    }

    #[test]
    fn diagnostic_serializes_in_camel_case() {
        let json = String::from_utf8(Diagnostic::new("Runtime.Timeout", "late").to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"errorType":"Runtime.Timeout","errorMessage":"late","stackTrace":[]}"#
        );
    }

    #[test]
    fn the_hint_is_posted_after_the_message() {
        let d = Diagnostic::new("Runtime.X", "it broke").with_hint("fix it");
        let posted: serde_json::Value = serde_json::from_slice(&d.to_json()).unwrap();
        assert_eq!(posted["errorMessage"], "it broke\nhint: fix it");
        assert_eq!(d.to_string(), "Runtime.X: it broke\nhint: fix it");
    }

    #[test]
    fn reads_a_handler_diagnostic() {
        let d = Diagnostic::parse(
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":["a",1]}"#,
        )
        .unwrap();
        assert_eq!(d.error_type, "ValueError");
        assert_eq!(d.stack_trace, Some(vec!["a".to_string(), "1".to_string()]));
        assert!(Diagnostic::parse(b"plain output").is_none());
        assert!(Diagnostic::parse(br#"{"errorType":1,"errorMessage":"x"}"#).is_none());
    }

    #[test]
    fn a_runners_other_keys_are_posted_as_they_came_and_no_stack_trace_is_invented() {
        let doc = br#"{"errorType":"Error","errorMessage":"m","trace":["Error: m","    at x"],"requestId":"r"}"#;
        let d = Diagnostic::parse(doc).unwrap();
        assert_eq!(d.stack_trace, None);
        assert_eq!(d.frames(), vec!["Error: m", "    at x"]);
        assert_eq!(d.to_json(), doc, "posted byte for byte");
        let huge =
            format!(r#"{{"errorType":"E","errorMessage":"m","big":"{}"}}"#, "x".repeat(70_000));
        let d = Diagnostic::parse(huge.as_bytes()).unwrap();
        assert!(d.extra().is_some_and(|e| e.is_empty()), "a key over the size budget is left out");
    }

    #[test]
    fn a_long_message_is_posted_cut_saying_where_the_rest_is_and_keeps_its_hint() {
        let long = format!("parse error at line 3\n{}\nmissing comma", "é".repeat(100_000));
        let d = Diagnostic::new("Runtime.X", long).with_hint("fix it");
        let posted: serde_json::Value = serde_json::from_slice(&d.to_json()).unwrap();
        let message = posted["errorMessage"].as_str().unwrap();
        assert!(message.len() < MAX_POSTED_LINE + 300, "{}", message.len());
        assert!(message.starts_with("parse error at line 3\n"));
        assert!(message.contains("…\nmissing comma\n["), "the line after the long one stays");
        assert!(message.contains("the whole message is in the function's log"));
        assert!(message.ends_with("\nhint: fix it"));
        assert!(d.to_string().contains(&"é".repeat(100_000)), "logged whole");
        let many = (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>().join("\n");
        let posted = Diagnostic::new("Runtime.X", many).posted_message();
        assert!(posted.len() < MAX_POSTED_MESSAGE + 200, "{}", posted.len());
        let short = Diagnostic::new("Runtime.X", "a\nb").with_hint("h");
        assert_eq!(short.posted_message(), short.full_message());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
