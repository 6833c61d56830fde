//! Lambda's vocabulary, shared by the Runtime API client (`api`) and the code that runs
//! handlers (`run`), which know nothing of each other: one invocation, what became of it, the
//! port a streamed response is written through, the error document, and Lambda's size limits.
//!
//! Parsing the `/next` headers lives here as a pure function so that tests and fuzz targets can
//! reach it without HTTP; `api` only collects the header pairs and the body.

pub mod context;
pub mod diagnostic;
pub mod error_type;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use context::{
    HEADER_CLIENT_CONTEXT, HEADER_COGNITO_IDENTITY, HEADER_DEADLINE_MS, HEADER_FUNCTION_ARN,
    HEADER_REQUEST_ID, HEADER_TENANT_ID, HEADER_TRACE_ID,
};
pub use diagnostic::Diagnostic;

/// Lambda's hard edge for a buffered response: 6 MiB + 100 bytes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;
/// Lambda's limit for one streamed response (200 MiB since July 2025).
pub const MAX_STREAMED_BYTES: u64 = 200 * 1024 * 1024;
/// Larger than any payload Lambda accepts (6 MB synchronous, 1 MB asynchronous), so this only
/// stops a broken server from filling our memory.
pub const MAX_EVENT_BYTES: u64 = 8 * 1024 * 1024;

/// Longest request id we accept; Lambda's are 36-character UUIDs.
const MAX_REQUEST_ID_LEN: usize = 256;

/// Deadline values below this (2001-09-09 in epoch ms) cannot be a wall-clock time. Local
/// emulators send the function timeout there as a plain duration (cargo-lambda sends the
/// constant `600000`), so such values are read as "milliseconds from now".
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

/// The id of one invocation. A newtype so that it cannot be swapped with a trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts any non-empty printable ASCII value of sane length.
    pub fn parse(value: &str) -> Result<RequestId, HeaderError> {
        let is_printable = value.bytes().all(|b| b.is_ascii_graphic());
        if value.is_empty() || value.len() > MAX_REQUEST_ID_LEN || !is_printable {
            return Err(HeaderError::Malformed { header: HEADER_REQUEST_ID, value: value.into() });
        }
        Ok(RequestId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one URL path segment: anything but unreserved characters is percent-encoded,
    /// so a hostile id cannot change which endpoint we post to; and an id that is a dot segment
    /// (`.` or `..`, which a server would resolve away) has its dots encoded too (RFC 3986
    /// §5.2.4 resolves only the literal ones).
    pub fn path_segment(&self) -> String {
        if self.0 == "." || self.0 == ".." {
            return "%2E".repeat(self.0.len());
        }
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The wall-clock time by which the invocation must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    epoch_ms: u64,
}

impl Deadline {
    /// Reads a `Lambda-Runtime-Deadline-Ms` value; `now` is passed in to keep this pure.
    pub fn parse(value: &str, now: SystemTime) -> Result<Deadline, HeaderError> {
        let malformed =
            || HeaderError::Malformed { header: HEADER_DEADLINE_MS, value: value.into() };
        let ms: u64 = value.trim().parse().map_err(|_| malformed())?;
        if ms >= EARLIEST_EPOCH_DEADLINE_MS {
            return Ok(Deadline { epoch_ms: ms });
        }
        Ok(Deadline::after(Duration::from_millis(ms), now))
    }

    /// A deadline `timeout` after `now`, as `bootstrap invoke` uses.
    pub fn after(timeout: Duration, now: SystemTime) -> Deadline {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Deadline { epoch_ms: epoch_ms(now).saturating_add(timeout_ms) }
    }

    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// Time left until the deadline, zero once it has passed.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        Duration::from_millis(self.epoch_ms.saturating_sub(epoch_ms(now)))
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// One event with everything Lambda told us about it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: RequestId,
    pub deadline: Deadline,
    pub invoked_function_arn: Option<String>,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub tenant_id: Option<String>,
    pub event: Vec<u8>,
}

impl Invocation {
    /// Builds an invocation from `/next` response headers (name, raw value) and its body.
    ///
    /// Header names are matched case-insensitively. Empty values count as absent: the
    /// Managed-Instances emulator sends every header, empty when it has no value.
    pub fn from_headers<'a, I>(
        headers: I,
        event: Vec<u8>,
        now: SystemTime,
    ) -> Result<Self, HeaderError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut values: [Option<String>; context::FIELDS.len()] = Default::default();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            let Some(i) = context::FIELDS.iter().position(|f| f.header == lower) else {
                continue;
            };
            // A repeated header keeps its first non-empty value.
            let value = header_text(context::FIELDS[i].header, value)?;
            if values[i].is_none() {
                values[i] = value;
            }
        }
        let [
            request_id,
            deadline,
            function_arn,
            trace_id,
            client_context,
            cognito_identity,
            tenant_id,
        ] = values;
        let request_id = request_id.ok_or(HeaderError::Missing(HEADER_REQUEST_ID))?;
        let request_id = RequestId::parse(&request_id)?;
        let deadline = deadline.ok_or(HeaderError::Missing(HEADER_DEADLINE_MS))?;
        Ok(Invocation {
            request_id,
            deadline: Deadline::parse(&deadline, now)?,
            invoked_function_arn: function_arn,
            trace_id,
            client_context,
            cognito_identity,
            tenant_id,
            event,
        })
    }
}

/// A header value as text, `None` when empty. Values become environment variables of the
/// handler, so they must be UTF-8 without NUL bytes.
fn header_text(header: &'static str, value: &[u8]) -> Result<Option<String>, HeaderError> {
    let malformed =
        || HeaderError::Malformed { header, value: String::from_utf8_lossy(value).into() };
    let text = std::str::from_utf8(value).map_err(|_| malformed())?;
    if text.contains('\0') {
        return Err(malformed());
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// A `/next` response whose headers we cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Missing(&'static str),
    Malformed { header: &'static str, value: String },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing(h) => write!(f, "the /next response has no {h} header"),
            HeaderError::Malformed { header, value } => {
                let shown: String = value.chars().take(80).collect();
                write!(f, "the /next response has a malformed {header} header: {shown:?}")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// Why a response stream could not be opened, written or ended; it names the URL.
pub type StreamFailure = Box<dyn std::error::Error + Send + Sync>;

/// What one event produced.
pub enum Outcome {
    Response(Vec<u8>),
    Failed(Diagnostic),
    /// The response went out as a stream, `bytes` of it; the stream is still open for the
    /// loop to end: cleanly, or with `failure` in the error trailers.
    Streamed {
        stream: Box<dyn ResponseStream>,
        bytes: u64,
        failure: Option<Diagnostic>,
    },
    /// The stream could not be opened, or broke after `bytes`: nothing more reaches Lambda.
    StreamBroken {
        bytes: u64,
        error: StreamFailure,
    },
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Response(body) => write!(f, "Response({} bytes)", body.len()),
            Outcome::Failed(d) => write!(f, "Failed({d})"),
            Outcome::Streamed { bytes, failure, .. } => {
                write!(f, "Streamed({bytes} bytes, failure: {failure:?})")
            }
            Outcome::StreamBroken { bytes, error } => write!(f, "StreamBroken({bytes}, {error})"),
        }
    }
}

/// Where a streamed response goes: the code that runs handlers knows it only through this
/// trait; `api::stream` implements it over HTTP, `cmd::invoke` over stdout.
pub trait ResponseStream: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StreamWriteError>;
    /// Ends the stream cleanly; Lambda's status.
    fn finish(self: Box<Self>) -> Result<u16, StreamFailure>;
    /// Ends the stream with the error trailers; Lambda's status.
    fn fail(self: Box<Self>, diagnostic: &Diagnostic) -> Result<u16, StreamFailure>;
}

/// A write the stream refused.
#[derive(Debug)]
pub enum StreamWriteError {
    /// Past the streaming limit (in bytes); the stream is still open, to be failed.
    TooLarge(u64),
    /// The connection is gone.
    Broken(StreamFailure),
}

/// Opens the response stream with a Content-Type, called when the handler's first bytes
/// arrive (or a framed runner opens its stream): a handler that fails before that gets an
/// ordinary error post instead.
pub type OpenStream =
    Box<dyn FnOnce(&str) -> Result<Box<dyn ResponseStream>, StreamFailure> + Send>;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn parse(headers: &[(&str, &str)]) -> Result<Invocation, HeaderError> {
        let pairs = headers.iter().map(|(n, v)| (*n, v.as_bytes()));
        Invocation::from_headers(pairs, b"{}".to_vec(), at(1_700_000_000_000))
    }

    #[test]
    fn reads_every_header_case_insensitively() {
        let inv = parse(&[
            ("Lambda-Runtime-Aws-Request-Id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd"),
            ("LAMBDA-RUNTIME-DEADLINE-MS", "1700000003000"),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:1:function:f"),
            ("Lambda-Runtime-Trace-Id", "Root=1-5;Sampled=0"),
            ("Lambda-Runtime-Client-Context", "{\"custom\":{}}"),
            ("Lambda-Runtime-Cognito-Identity", "{\"cognitoIdentityId\":\"x\"}"),
            ("Lambda-Runtime-Aws-Tenant-Id", "tenant-7"),
        ])
        .unwrap();
        assert_eq!(inv.request_id.as_str(), "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        assert_eq!(inv.deadline.epoch_ms(), 1_700_000_003_000);
        assert_eq!(
            inv.invoked_function_arn.as_deref(),
            Some("arn:aws:lambda:us-east-1:1:function:f")
        );
        assert_eq!(inv.trace_id.as_deref(), Some("Root=1-5;Sampled=0"));
        assert_eq!(inv.client_context.as_deref(), Some("{\"custom\":{}}"));
        assert_eq!(inv.cognito_identity.as_deref(), Some("{\"cognitoIdentityId\":\"x\"}"));
        assert_eq!(inv.tenant_id.as_deref(), Some("tenant-7"));
    }

    #[test]
    fn empty_optional_headers_count_as_absent() {
        let inv = parse(&[
            ("Lambda-Runtime-Aws-Request-Id", "r1"),
            ("Lambda-Runtime-Deadline-Ms", "1700000003000"),
            ("Lambda-Runtime-Trace-Id", ""),
        ])
        .unwrap();
        assert_eq!(inv.trace_id, None);
    }

    #[test]
    fn missing_or_malformed_ids_and_deadlines_are_errors() {
        let deadline = ("Lambda-Runtime-Deadline-Ms", "1700000003000");
        assert_eq!(parse(&[deadline]).unwrap_err(), HeaderError::Missing(HEADER_REQUEST_ID));
        assert_eq!(
            parse(&[("Lambda-Runtime-Aws-Request-Id", "r1")]).unwrap_err(),
            HeaderError::Missing(HEADER_DEADLINE_MS)
        );
        let bad_deadline = parse(&[
            ("Lambda-Runtime-Aws-Request-Id", "r1"),
            ("Lambda-Runtime-Deadline-Ms", "soon"),
        ]);
        assert!(matches!(
            bad_deadline,
            Err(HeaderError::Malformed { header: HEADER_DEADLINE_MS, .. })
        ));
        let bad_id = parse(&[("Lambda-Runtime-Aws-Request-Id", "a b"), deadline]);
        assert!(matches!(bad_id, Err(HeaderError::Malformed { header: HEADER_REQUEST_ID, .. })));
    }

    #[test]
    fn a_small_deadline_is_a_duration_from_now() {
        let now = at(1_700_000_000_000);
        let deadline = Deadline::parse("600000", now).unwrap();
        assert_eq!(deadline.remaining(now), Duration::from_secs(600));
        assert_eq!(
            Deadline::parse("1700000000500", now).unwrap().remaining(now),
            Duration::from_millis(500)
        );
        assert_eq!(Deadline::parse("1600000000000", now).unwrap().remaining(now), Duration::ZERO);
    }

    #[test]
    fn request_ids_are_escaped_for_the_path() {
        assert_eq!(RequestId::parse("abc-1.2_~").unwrap().path_segment(), "abc-1.2_~");
        assert_eq!(RequestId::parse("../x?y").unwrap().path_segment(), "..%2Fx%3Fy");
        assert_eq!(RequestId::parse(".").unwrap().path_segment(), "%2E");
        assert_eq!(RequestId::parse("..").unwrap().path_segment(), "%2E%2E");
        assert_eq!(RequestId::parse("...").unwrap().path_segment(), "...");
    }
}
