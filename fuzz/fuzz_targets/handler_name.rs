//! `_HANDLER` parsing: whatever the value, a handler name that is accepted can neither become
//! code (the method is a plain identifier) nor leave the task root (a relative path without
//! `..`), and one that is refused is refused as `Runtime.MalformedHandlerName` with a hint.
//!
//! The checks below are written against the input text, independently of `std::path`, which
//! is what the parser itself relies on.

#![no_main]

use bootstrap::init::handler_name::HandlerName;
use bootstrap::invocation::error_type::MALFORMED_HANDLER_NAME;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Lambda hands `_HANDLER` over as an environment variable: text, without NUL.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains('\0') {
        return;
    }
    match HandlerName::parse(text) {
        Ok(name) => check_accepted(text, &name),
        Err(diagnostic) => {
            assert_eq!(diagnostic.error_type, MALFORMED_HANDLER_NAME, "input {text:?}");
            assert!(
                diagnostic.hint.is_some(),
                "no hint for {text:?}: {}",
                diagnostic.error_message
            );
            assert_eq!(diagnostic.header_error_type(), MALFORMED_HANDLER_NAME);
        }
    }
});

fn check_accepted(text: &str, name: &HandlerName) {
    // Nothing lost or invented: the name is `<path>.<method>`, split at the last dot.
    assert_eq!(format!("{}.{}", name.path, name.method), text);
    assert!(!name.method.contains('.'), "method {:?} holds a dot", name.method);

    // ^[A-Za-z0-9_]+(::[A-Za-z0-9_]+)*$
    assert!(is_method(&name.method), "method {:?} of {text:?} is not a plain name", name.method);

    let path = name.path.as_str();
    assert!(!path.is_empty(), "empty path in {text:?}");
    assert!(!path.starts_with('/'), "absolute path {path:?} in {text:?}");
    assert!(
        !path.split('/').any(|segment| segment == ".."),
        "path {path:?} of {text:?} climbs out with '..'"
    );
    assert!(!path.chars().any(char::is_control), "control character in path {path:?}");
}

/// The method grammar, by hand: `::`-separated parts of ASCII letters, digits and `_`.
fn is_method(method: &str) -> bool {
    let bytes = method.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        if bytes[i..].starts_with(b"::") {
            i += 2;
        } else {
            return false;
        }
    }
}
