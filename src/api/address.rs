//! `AWS_LAMBDA_RUNTIME_API`, normalised once: `host:port` plus an optional path prefix, the
//! forms Lambda and local emulators use. Pure, so that a fuzz target can reach it.

use std::fmt;

use super::API_VERSION;

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
