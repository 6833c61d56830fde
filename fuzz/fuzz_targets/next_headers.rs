//! The `/next` response headers. The input is an HTTP-like block: `name: value` lines (`\n`
//! or `\r\n`), then an empty line and the event body. Values stay raw bytes, as ureq hands
//! them over.
//!
//! An accepted invocation carries exactly what the headers said (the first non-empty value of
//! each, matched case-insensitively) and a request id that, as a URL path segment, holds only
//! unreserved characters and percent escapes that decode back to the id. Separately, any
//! error type at all, fuzzed here from the input, becomes a `Lambda-Runtime-Function-Error-Type`
//! that Lambda keeps: `Runtime.X` or `Function.X`.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bootstrap::invocation::{
    Diagnostic, HEADER_CLIENT_CONTEXT, HEADER_COGNITO_IDENTITY, HEADER_DEADLINE_MS,
    HEADER_FUNCTION_ARN, HEADER_REQUEST_ID, HEADER_TENANT_ID, HEADER_TRACE_ID, Invocation,
};
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2023-11-14T22:13:20Z), so runs are reproducible.
const NOW_MS: u64 = 1_700_000_000_000;
/// Deadlines from here on are wall-clock times; below, durations from now.
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split_message(data);
    let now = UNIX_EPOCH + Duration::from_millis(NOW_MS);
    let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    let result = Invocation::from_headers(pairs, body.to_vec(), now);
    let expected = Expected::from(&headers);
    match result {
        Ok(invocation) => check_invocation(&invocation, &expected, body, now),
        Err(error) => {
            assert!(!expected.is_valid(), "refused a valid block: {error}\n{headers:?}");
            let shown = error.to_string();
            assert!(shown.starts_with("the /next response has "), "{shown}");
        }
    }

    // Error types: the whole input, and each header name and value.
    check_error_type(&String::from_utf8_lossy(data));
    for (name, value) in &headers {
        check_error_type(name);
        check_error_type(&String::from_utf8_lossy(value));
    }
});

/// `name: value` lines up to the first empty line; the rest is the body.
fn split_message(data: &[u8]) -> (Vec<(String, Vec<u8>)>, &[u8]) {
    let mut headers = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
        let value = line.get(colon + 1..).unwrap_or_default().to_vec();
        headers.push((name, value));
    }
    (headers, rest)
}

/// What `from_headers` should make of the block, worked out without it.
struct Expected {
    /// A known header holds bytes that cannot become an environment variable.
    bad_value: bool,
    /// The first non-empty value of each header, trimmed; an empty value counts as absent.
    fields: [Option<String>; 7],
}

const FIELDS: [&str; 7] = [
    HEADER_REQUEST_ID,
    HEADER_DEADLINE_MS,
    HEADER_FUNCTION_ARN,
    HEADER_TRACE_ID,
    HEADER_CLIENT_CONTEXT,
    HEADER_COGNITO_IDENTITY,
    HEADER_TENANT_ID,
];

impl Expected {
    fn from(headers: &[(String, Vec<u8>)]) -> Expected {
        let mut expected = Expected { bad_value: false, fields: Default::default() };
        for (name, value) in headers {
            let Some(i) = FIELDS.iter().position(|f| f.eq_ignore_ascii_case(name)) else {
                continue;
            };
            match std::str::from_utf8(value) {
                Ok(text) if !text.contains('\0') => {
                    let text = text.trim();
                    if expected.fields[i].is_none() && !text.is_empty() {
                        expected.fields[i] = Some(text.to_string());
                    }
                }
                _ => expected.bad_value = true,
            }
        }
        expected
    }

    fn request_id(&self) -> Option<&str> {
        self.fields[0].as_deref()
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.fields[1].as_deref()?.parse().ok()
    }

    fn is_valid(&self) -> bool {
        let id_ok = self.request_id().is_some_and(|id| {
            id.len() <= 256 && id.bytes().all(|b| (b'!'..=b'~').contains(&b))
        });
        !self.bad_value && id_ok && self.deadline_ms().is_some()
    }
}

fn check_invocation(invocation: &Invocation, expected: &Expected, body: &[u8], now: SystemTime) {
    assert!(expected.is_valid(), "accepted an invalid block: {invocation:?}");
    let id = invocation.request_id.as_str();
    assert_eq!(Some(id), expected.request_id());
    assert_eq!(invocation.event, body);
    let optional = [
        &invocation.invoked_function_arn,
        &invocation.trace_id,
        &invocation.client_context,
        &invocation.cognito_identity,
        &invocation.tenant_id,
    ];
    for (i, got) in optional.into_iter().enumerate() {
        assert_eq!(got, &expected.fields[i + 2], "{}", FIELDS[i + 2]);
    }

    // The deadline: wall-clock epoch ms, or a duration from now for small values.
    let ms = expected.deadline_ms().expect("valid");
    let deadline = invocation.deadline;
    if ms >= EARLIEST_EPOCH_DEADLINE_MS {
        assert_eq!(deadline.epoch_ms(), ms);
    } else {
        assert_eq!(deadline.epoch_ms(), NOW_MS + ms);
        assert_eq!(deadline.remaining(now), Duration::from_millis(ms));
    }

    // The id in `/runtime/invocation/{id}/response`.
    let segment = invocation.request_id.path_segment();
    assert!(
        segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~%-".contains(&b)),
        "{id:?} -> {segment:?}"
    );
    assert_eq!(percent_decode(&segment).as_deref(), Some(id.as_bytes()), "{id:?} -> {segment:?}");
}

/// `%XX` escapes back to bytes; `None` for a broken escape.
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn check_error_type(error_type: &str) {
    let header = Diagnostic::new(error_type, "m").header_error_type();
    let (kind, rest) = header.split_once('.').unwrap_or(("", ""));
    assert!(
        matches!(kind, "Runtime" | "Function")
            && rest.starts_with(|c: char| c.is_ascii_uppercase())
            && rest.bytes().all(|b| b.is_ascii_alphabetic()),
        "{error_type:?} -> {header:?}"
    );
    // A type already in Lambda's shape is passed through unchanged.
    if error_type.starts_with("Runtime.") || error_type.starts_with("Function.") {
        let suffix = &error_type[error_type.find('.').unwrap() + 1..];
        if suffix.starts_with(|c: char| c.is_ascii_uppercase())
            && suffix.bytes().all(|b| b.is_ascii_alphabetic())
        {
            assert_eq!(header, error_type);
        }
    }
}
