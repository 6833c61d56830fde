//! `_HANDLER`, split and checked before any language reads it: a relative path without `..`
//! or control characters, and a function part that is a plain name, so that a handler name can
//! never become code or leave the task root.

use std::path::{Component, Path};

use crate::invocation::Diagnostic;
use crate::invocation::error_type::MALFORMED_HANDLER_NAME;

/// `_HANDLER`, split and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerName {
    pub path: String,
    pub method: String,
}

impl HandlerName {
    pub fn parse(text: &str) -> Result<HandlerName, Diagnostic> {
        let malformed = |why: &str, hint: &str| {
            Diagnostic::new(MALFORMED_HANDLER_NAME, format!("handler {text:?} {why}"))
                .with_hint(hint)
        };
        let example =
            "set the function's Handler (_HANDLER) to <file>.<method>, e.g. lambda_script.handler";
        let Some((path, method)) = text.rsplit_once('.') else {
            return Err(malformed("has no '.' between a file and a method", example));
        };
        if path.is_empty() {
            return Err(malformed("has no file before the last '.'", example));
        }
        if !is_method_name(method) {
            return Err(malformed(
                "has a method that is not a plain name",
                "the part after the last '.' may hold only letters, digits, '_' and Perl's '::'",
            ));
        }
        if path.chars().any(char::is_control) {
            return Err(malformed("holds a control character", example));
        }
        let relative = Path::new(path);
        if relative.is_absolute() {
            return Err(malformed(
                "names an absolute path",
                "give the file relative to LAMBDA_TASK_ROOT, e.g. src/handler.method",
            ));
        }
        if relative.components().any(|c| c == Component::ParentDir) {
            return Err(malformed(
                "climbs out of the task root with '..'",
                "give the file relative to LAMBDA_TASK_ROOT, without '..'",
            ));
        }
        Ok(HandlerName { path: path.to_string(), method: method.to_string() })
    }

    /// The name as `_HANDLER` gave it.
    pub fn text(&self) -> String {
        format!("{}.{}", self.path, self.method)
    }
}

/// `[A-Za-z0-9_]+` parts joined by `::`.
fn is_method_name(method: &str) -> bool {
    method.split("::").all(|part| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_dot() {
        let n = HandlerName::parse("src/lambda_script.pl.handler").unwrap();
        assert_eq!((n.path.as_str(), n.method.as_str()), ("src/lambda_script.pl", "handler"));
        let n = HandlerName::parse("lib/MyApp.MyApp::Handler::run").unwrap();
        assert_eq!(n.method, "MyApp::Handler::run");
    }

    #[test]
    fn refuses_names_that_could_become_code_or_escape() {
        for bad in [
            "handler",
            ".handler",
            "x.",
            "x.a b",
            "x.a;b",
            "x.system('id')",
            "x.a'b",
            "x.a::",
            "x.::a",
            "x.a\nb",
            "/etc/passwd.handler",
            "../x.handler",
            "a/../../x.handler",
            "a\nb.handler",
        ] {
            let err = HandlerName::parse(bad).unwrap_err();
            assert_eq!(err.error_type, MALFORMED_HANDLER_NAME, "{bad:?}");
            assert!(err.hint.is_some(), "{bad:?}");
        }
    }
}
