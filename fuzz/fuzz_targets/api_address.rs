//! `AWS_LAMBDA_RUNTIME_API`: an accepted address yields a base URL that is plain HTTP, ends in
//! the API version, holds nothing that would move the request elsewhere (whitespace, a query,
//! a fragment, userinfo), and whose path the HTTP client's own URI parser (the `http` crate, as
//! used by ureq) reads as written. Normalising is stable: the address reparses to itself. A
//! refused address is quoted in the message, and host:port is read by that parser as written
//! (see `check_authority`).

#![no_main]

use bootstrap::api::address::ApiAddress;
use libfuzzer_sys::fuzz_target;

const VERSION_SUFFIX: &str = "/2018-06-01";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ApiAddress::parse(text) {
        Ok(address) => check_accepted(text, &address),
        Err(message) => {
            assert!(message.starts_with(&format!("{text:?} ")), "input not quoted: {message}");
        }
    }
});

fn check_accepted(text: &str, address: &ApiAddress) {
    let base = address.base_url();
    assert!(base.starts_with("http://"), "{text:?} -> {base:?}");
    assert!(base.ends_with(VERSION_SUFFIX), "{text:?} -> {base:?}");
    assert!(
        !base.chars().any(|c| c.is_whitespace() || "?#@".contains(c)),
        "{text:?} -> {base:?}"
    );

    // host:port, as written between "http://" and the first '/' after it.
    let after_scheme = &base["http://".len()..];
    let slash = after_scheme.find('/').expect("the version path");
    let (authority, path) = after_scheme.split_at(slash);
    let (host, port) = authority.rsplit_once(':').expect("a port");
    assert!(!host.is_empty(), "{text:?} -> {base:?}: no host");
    let port_number: u16 = port.parse().expect("a port that fits a u16");
    assert!(port_number > 0, "{text:?} -> {base:?}: port 0");

    // The path part, as the HTTP client reads it, behind a host:port it surely accepts: the
    // prefix survives as written and nothing spills into a query or fragment.
    let next = format!("http://127.0.0.1:9001{path}/runtime/invocation/next");
    let uri: http::Uri =
        next.parse().unwrap_or_else(|e| panic!("{text:?} -> {next:?} is not a URI: {e}"));
    assert_eq!(uri.path(), &next["http://127.0.0.1:9001".len()..], "{text:?}");
    assert_eq!(uri.query(), None, "{text:?}");

    check_authority(text, &base, authority, port, port_number);

    // Normalised once is normalised for good: with or without the scheme.
    let shown = address.to_string();
    let again = ApiAddress::parse(&format!("http://{shown}"))
        .unwrap_or_else(|e| panic!("{text:?} -> {shown:?} does not reparse: {e}"));
    assert_eq!(&again, address, "{text:?} -> {shown:?}");
    assert_eq!(again.base_url(), base);
}

/// The authority as the HTTP client reads it: an address the client would refuse (`::1:9001`,
/// `a]:1`, `a%:1`) must fail at start-up, not at the first request, and a port has no sign.
fn check_authority(text: &str, base: &str, authority: &str, port: &str, port_number: u16) {
    assert!(port.bytes().all(|b| b.is_ascii_digit()), "{text:?} -> {base:?}: port {port:?}");
    let next = format!("{base}/runtime/invocation/next");
    let uri: http::Uri =
        next.parse().unwrap_or_else(|e| panic!("{text:?} -> {next:?} is not a URI: {e}"));
    assert_eq!(uri.scheme_str(), Some("http"), "{next:?}");
    assert_eq!(uri.authority().map(|a| a.as_str()), Some(authority), "{next:?}");
    assert_eq!(uri.port_u16(), Some(port_number), "{next:?}");
}
