//! The Lambda Runtime API client: one ureq `Agent` (one kept-alive connection), one method per
//! endpoint, status codes mapped to what the loop should do.
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

use super::address::ApiAddress;
use super::coalesce::CoalescingConnector;
use super::stream::StreamingResponse;
use super::{HEADER_ERROR_TYPE, POST_TIMEOUT, USER_AGENT};
use crate::invocation::error_type::{EVENT_TOO_LARGE, INVALID_INVOCATION};
use crate::invocation::{
    Diagnostic, HeaderError, Invocation, MAX_EVENT_BYTES, OpenStream, RequestId, ResponseStream,
    StreamFailure,
};

/// We read at most this much of a reply to a post, for the log.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// How long the body of a `/next` answer may take once its headers have arrived.
const NEXT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/next` gave us.
pub enum Next {
    Invocation(Invocation),
    /// 204: nothing to do yet (local emulators answer so while idle); poll again.
    Idle,
    /// An invocation we cannot run (bad headers, an oversized body): post this error for it.
    Unusable(RequestId, Diagnostic),
}

/// A Runtime API call that failed. Each keeps the URL and, as `source()`, the cause.
#[derive(Debug)]
pub enum ApiError {
    /// No HTTP answer at all: refused, reset, cut short.
    Transport { url: String, error: ureq::Error },
    /// An answer with a status we did not expect.
    Status { url: String, status: u16, body: String },
    /// A `/next` answer we cannot even attribute to a request id.
    Invocation { url: String, error: HeaderError },
    /// A streamed response broke (its error names the URL).
    Stream { error: StreamFailure },
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
            ApiError::Stream { error } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Transport { error, .. } => Some(error),
            ApiError::Invocation { error, .. } => Some(error),
            ApiError::Stream { error } => error.source(),
            ApiError::Status { .. } => None,
        }
    }
}

/// The client. Cheap to share by reference; it keeps one connection alive between calls.
pub struct RuntimeApi {
    agent: Agent,
    base: String,
    connects: ConnectCount,
    address: ApiAddress,
}

impl RuntimeApi {
    /// The client for `address`, with its one connection not yet opened.
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
        result.map_err(|e| transport(url, e))
    }

    /// `GET /runtime/invocation/next`: blocks until Lambda has an event.
    pub fn next_invocation(&self) -> Result<Next, ApiError> {
        let url = format!("{}/runtime/invocation/next", self.base);
        // No timeout until the headers arrive (Lambda freezes us meanwhile); the body follows
        // them at once, so a body that stalls is a broken API, not a wait.
        let get = || {
            let request = self.agent.get(&url).config().timeout_recv_body(Some(NEXT_BODY_TIMEOUT));
            request.build().call()
        };
        let mut response = self.send(&url, get)?;
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
            Err(e) => Err(transport(&url, e)),
        }
    }

    /// `POST /runtime/invocation/{id}/response` with the handler's bytes, unchanged.
    pub fn post_response(&self, id: &RequestId, body: &[u8]) -> Result<(), ApiError> {
        self.post(&self.response_url(id), body, None)
    }

    /// The URL of the invocation's `/response`, posted or streamed.
    pub fn response_url(&self, id: &RequestId) -> String {
        format!("{}/runtime/invocation/{}/response", self.base, id.path_segment())
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
            let stream = StreamingResponse::start(&address, &id, content_type)?;
            Ok(Box::new(stream) as Box<dyn ResponseStream>)
        })
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

fn transport(url: &str, error: ureq::Error) -> ApiError {
    ApiError::Transport { url: url.to_string(), error }
}
