//! The Lambda Runtime API over HTTP. It knows no processes: what it posts comes as bytes, a
//! `Diagnostic` or a stream written through the `ResponseStream` port (all in `invocation`).
//!
//! - `address`: `AWS_LAMBDA_RUNTIME_API`, normalised;
//! - `client`: `RuntimeApi`, one ureq agent, a method per endpoint;
//! - `stream`: the streamed `/response` post, hand-written (ureq cannot send trailers);
//! - `coalesce`: a ureq transport that sends each request in one write.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

pub mod address;
mod answer;
pub mod client;
pub mod coalesce;
pub mod stream;

use std::time::Duration;

/// The Runtime API version path.
const API_VERSION: &str = "2018-06-01";
/// Recorded by Lambda as the runtime release.
const USER_AGENT: &str = concat!("bootstrap/", env!("CARGO_PKG_VERSION"));
/// A post that takes longer than this is a broken API; `/next` has no timeout at all, since
/// Lambda freezes the sandbox while it is open. Connecting, and each read or write of a
/// streamed post, may stall this long too: a write stalls only while the server reads nothing
/// at all, so Lambda's rate limit on streams (2 MB/s past the first 6 MB) never comes near it.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// `Lambda-Runtime-Function-Error-Type`, on error posts and as a stream's trailer.
const HEADER_ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
