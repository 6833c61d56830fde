//! The Lambda Runtime API client: one ureq `Agent` (one kept-alive connection), one method per
//! endpoint, status codes mapped to what the loop should do. No processes here.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use ureq::Agent;
use ureq::http::Response;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};

use crate::coalesce::CoalescingConnector;
use crate::invoke::{OpenStream, ResponseStream};
use crate::stream::StreamingResponse;

use crate::invocation::{Diagnostic, HeaderError, Invocation, RequestId};

/// Larger than any payload Lambda accepts (6 MB synchronous, 1 MB asynchronous), so this only
/// stops a broken server from filling our memory.
pub const MAX_EVENT_BYTES: u64 = 8 * 1024 * 1024;
/// We read at most this much of a reply to a post, for the log.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// A post that takes longer than this is a broken API; `/next` has no timeout at all, since
/// Lambda freezes the sandbox while it is open.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// `Lambda-Runtime-Function-Error-Type` on error posts.
const HEADER_ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
/// The Runtime API version path.
const API_VERSION: &str = "2018-06-01";
/// Recorded by Lambda as the runtime release.
const USER_AGENT: &str = concat!("bootstrap/", env!("CARGO_PKG_VERSION"));

pub const EVENT_TOO_LARGE: &str = "Runtime.EventTooLarge";
pub const INVALID_INVOCATION: &str = "Runtime.InvalidInvocation";

/// `AWS_LAMBDA_RUNTIME_API` normalised: `host:port` plus an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAddress {
    authority: String,
    prefix: String,
}

impl ApiAddress {
    /// Accepts `host:port`, `host:port/prefix` and `http://host:port/prefix` (local emulators
    /// use the last two; cargo-lambda sends `http://127.0.0.1:9000/.rt`).
    pub fn parse(text: &str) -> Result<ApiAddress, String> {
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &trimmed["http://".len()..]
        } else if lower.starts_with("https://") {
            return Err(format!("{text:?} uses https, but the Runtime API is plain HTTP"));
        } else if lower.contains("://") {
            return Err(format!("{text:?} has a scheme other than http://"));
        } else {
            trimmed
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if !is_host_port(authority) {
            return Err(format!("{text:?} is not host:port (e.g. 127.0.0.1:9001)"));
        }
        let is_clean_path = |s: &str| {
            s.bytes().all(|b| b.is_ascii_graphic() && !b"?#@\\\"<>{}|^`%".contains(&b))
                && !s.contains("//")
        };
        if !is_clean_path(prefix) {
            return Err(format!("{text:?} has a path prefix that is not a plain /path"));
        }
        Ok(ApiAddress { authority: authority.to_string(), prefix: prefix.to_string() })
    }

    /// `http://host:port/prefix/2018-06-01`
    pub fn base_url(&self) -> String {
        format!("http://{}{}/{API_VERSION}", self.authority, self.prefix)
    }

    /// `host:port`, for a client that opens its own connection (`stream`).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `/prefix/2018-06-01`: the start of every endpoint's request path.
    pub fn base_path(&self) -> String {
        format!("{}/{API_VERSION}", self.prefix)
    }
}

impl fmt::Display for ApiAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.authority, self.prefix)
    }
}

/// `host:port` where host is a name or IPv4 address (letters, digits, `.`, `-`) or a bracketed
/// IPv6 address, and port a decimal number from 1 to 65535.
fn is_host_port(authority: &str) -> bool {
    let Some((host, port)) = authority.rsplit_once(':') else { return false };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    port_ok && host_ok
}

/// What `/next` gave us.
pub enum Next {
    Invocation(Invocation),
    /// 204: nothing to do yet (local emulators answer so while idle); poll again.
    Idle,
    /// An invocation we cannot run (bad headers, an oversized body): post this error for it.
    Unusable(RequestId, Diagnostic),
}

/// A Runtime API call that failed.
#[derive(Debug)]
pub enum ApiError {
    /// No HTTP answer at all: refused, reset, cut short.
    Transport { url: String, error: String },
    /// An answer with a status we did not expect.
    Status { url: String, status: u16, body: String },
    /// A `/next` answer we cannot even attribute to a request id.
    Invocation { url: String, error: HeaderError },
}

impl ApiError {
    /// Lambda says 500 means "container error, non-recoverable": the process must exit.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ApiError::Status { status: 500, .. })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Transport { url, error } => write!(f, "{url}: {error}"),
            ApiError::Status { url, status, body } => {
                write!(f, "{url}: HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            ApiError::Invocation { url, error } => write!(f, "{url}: {error}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// The client. Cheap to share by reference; it keeps one connection alive between calls.
pub struct RuntimeApi {
    agent: Agent,
    base: String,
    connects: ConnectCount,
    address: ApiAddress,
}

impl RuntimeApi {
    pub fn new(address: &ApiAddress) -> RuntimeApi {
        let config = Agent::config_builder()
            // We branch on every status ourselves.
            .http_status_as_error(false)
            // ureq reads HTTP(S)_PROXY by default; the Runtime API is always local.
            .proxy(None)
            // Each request leaves in one write (see `coalesce`), and is never held by Nagle.
            .no_delay(true)
            .user_agent(USER_AGENT)
            .max_redirects(0)
            .build();
        let connects = ConnectCount::default();
        let connector = connects.clone().chain(TcpConnector::default()).chain(CoalescingConnector);
        let agent = Agent::with_parts(config, connector, DirectResolver);
        RuntimeApi { agent, base: address.base_url(), connects, address: address.clone() }
    }

    /// Makes a request with `send`, and makes it once more if it failed for want of an answer
    /// on a kept-alive connection. A server may close an idle connection at any time; ureq
    /// probes a pooled connection before reusing it, but the server's close can still cross
    /// our next request, which then meets a reset or an EOF (RFC 9112 §9.3.1 allows the retry).
    /// The retry goes out on a new connection; a failure on a new connection is final.
    fn send(
        &self,
        url: &str,
        send: impl Fn() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, ApiError> {
        let connects = self.connects.get();
        let result = match send() {
            Err(ureq::Error::Io(_)) if self.connects.get() == connects => send(),
            result => result,
        };
        result.map_err(|e| transport(url, &e))
    }

    /// `GET /runtime/invocation/next`: blocks until Lambda has an event.
    pub fn next_invocation(&self) -> Result<Next, ApiError> {
        let url = format!("{}/runtime/invocation/next", self.base);
        let mut response = self.send(&url, || self.agent.get(&url).call())?;
        let status = response.status().as_u16();
        if status == 204 {
            return Ok(Next::Idle);
        }
        if status != 200 {
            let body = read_reply(response.body_mut());
            return Err(ApiError::Status { url, status, body });
        }
        let headers: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        let event = response.body_mut().with_config().limit(MAX_EVENT_BYTES).read_to_vec();
        let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        let invocation = match Invocation::from_headers(pairs, Vec::new(), SystemTime::now()) {
            Ok(invocation) => invocation,
            Err(error) => {
                // Without a usable request id we cannot answer; with one, we can say why.
                let Some(id) = request_id_of(&headers) else {
                    return Err(ApiError::Invocation { url, error });
                };
                return Ok(Next::Unusable(
                    id,
                    Diagnostic::new(INVALID_INVOCATION, error.to_string()),
                ));
            }
        };
        match event {
            Ok(event) => Ok(Next::Invocation(Invocation { event, ..invocation })),
            Err(ureq::Error::BodyExceedsLimit(_)) => Ok(Next::Unusable(
                invocation.request_id,
                Diagnostic::new(
                    EVENT_TOO_LARGE,
                    format!("the event is over {MAX_EVENT_BYTES} bytes"),
                ),
            )),
            Err(e) => Err(transport(&url, &e)),
        }
    }

    /// `POST /runtime/invocation/{id}/response` with the handler's bytes, unchanged.
    pub fn post_response(&self, id: &RequestId, body: &[u8]) -> Result<(), ApiError> {
        let url = format!("{}/runtime/invocation/{}/response", self.base, id.path_segment());
        self.post(&url, body, None)
    }

    /// `POST /runtime/invocation/{id}/error`.
    pub fn post_error(&self, id: &RequestId, diagnostic: &Diagnostic) -> Result<(), ApiError> {
        let url = format!("{}/runtime/invocation/{}/error", self.base, id.path_segment());
        self.post(&url, &diagnostic.to_json(), Some(&diagnostic.header_error_type()))
    }

    /// `POST /runtime/init/error`, before the first `/next`.
    pub fn post_init_error(&self, diagnostic: &Diagnostic) -> Result<(), ApiError> {
        let url = format!("{}/runtime/init/error", self.base);
        self.post(&url, &diagnostic.to_json(), Some(&diagnostic.header_error_type()))
    }

    /// A streamed `POST /runtime/invocation/{id}/response`, opened when the handler's first
    /// bytes arrive (see `stream`: ureq cannot send the error trailers).
    pub fn response_stream(&self, id: &RequestId) -> OpenStream {
        let (address, id) = (self.address.clone(), id.clone());
        Box::new(move |content_type: &str| {
            let stream =
                StreamingResponse::start(&address, &id, content_type).map_err(|e| e.to_string())?;
            Ok(Box::new(stream) as Box<dyn ResponseStream>)
        })
    }

    /// Lambda's answer to a stream, judged as a post's would be.
    pub fn judge_stream(
        &self,
        id: &RequestId,
        answer: Result<u16, String>,
    ) -> Result<(), ApiError> {
        let url = format!("{}/runtime/invocation/{}/response", self.base, id.path_segment());
        match answer {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => Err(ApiError::Status { url, status, body: String::new() }),
            Err(error) => Err(ApiError::Transport { url, error }),
        }
    }

    fn post(&self, url: &str, body: &[u8], error_type: Option<&str>) -> Result<(), ApiError> {
        let mut response = self.send(url, || {
            let mut request = self.agent.post(url);
            if let Some(error_type) = error_type {
                request =
                    request.header(HEADER_ERROR_TYPE, error_type).content_type("application/json");
            }
            request.config().timeout_global(Some(POST_TIMEOUT)).build().send(body)
        })?;
        let status = response.status().as_u16();
        // Read the reply to its end, so the connection can be reused.
        let reply = read_reply(response.body_mut());
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(ApiError::Status { url: url.to_string(), status, body: reply })
    }
}

/// Resolves without starting a thread. ureq's default resolver starts one for every request
/// that has a timeout (our posts do), to bound a DNS lookup; the Runtime API's address is an
/// IP literal (or `localhost`), which needs no lookup to bound.
#[derive(Debug)]
struct DirectResolver;

impl Resolver for DirectResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let mut resolved = self.empty();
        for addr in (host, port).to_socket_addrs()?.take(16) {
            resolved.push(addr);
        }
        if resolved.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(resolved) }
    }
}

/// Counts the connections the agent sets out to open, failed ones included (it is first in the
/// connector chain). A request during which the count did not move went out on a kept-alive one.
#[derive(Debug, Clone, Default)]
struct ConnectCount(Arc<AtomicUsize>);

impl ConnectCount {
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl<In: Transport> Connector<In> for ConnectCount {
    type Out = In;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<In>, ureq::Error> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(chained)
    }
}

fn request_id_of(headers: &[(String, Vec<u8>)]) -> Option<RequestId> {
    // The first non-empty one, as `Invocation::from_headers` reads it.
    let (_, value) = headers.iter().find(|(n, v)| {
        n.eq_ignore_ascii_case(crate::invocation::HEADER_REQUEST_ID) && !v.trim_ascii().is_empty()
    })?;
    RequestId::parse(std::str::from_utf8(value).ok()?.trim()).ok()
}

fn read_reply(body: &mut ureq::Body) -> String {
    let bytes = body.with_config().limit(MAX_REPLY_BYTES).read_to_vec().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim().chars().take(200).collect()
}

fn transport(url: &str, e: &ureq::Error) -> ApiError {
    ApiError::Transport { url: url.to_string(), error: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_address_forms() {
        let base = |s: &str| ApiAddress::parse(s).map(|a| a.base_url());
        assert_eq!(base("127.0.0.1:9001").unwrap(), "http://127.0.0.1:9001/2018-06-01");
        assert_eq!(base("169.254.100.1:9001/").unwrap(), "http://169.254.100.1:9001/2018-06-01");
        assert_eq!(base("localhost:9000/.rt").unwrap(), "http://localhost:9000/.rt/2018-06-01");
        assert_eq!(
            base("HTTP://127.0.0.1:9000/.rt/fn/").unwrap(),
            "http://127.0.0.1:9000/.rt/fn/2018-06-01"
        );
        assert_eq!(base("[::1]:9001").unwrap(), "http://[::1]:9001/2018-06-01");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "127::9001",
            "[::4:::4:4:::45]:9",
            "169.2954.100SS]:9000",
            "a%:1",
            "x:+1",
            "http://h:1/a://b",
            "127.0.0.1",
            ":9001",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "https://x:1",
            "ftp://x:1",
            "a b:1",
            "x:1/?q",
            "u@x:1",
        ] {
            assert!(ApiAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
