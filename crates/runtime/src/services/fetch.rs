//! `fetch(url, init)`: HTTP for connectors, only where the operator allows it.
//!
//! Policy, enforced on the host for every request and every redirect hop:
//! - off unless the operator lists hosts for the connector (`allow_hosts`,
//!   exact names or `*.suffix`);
//! - the name is resolved here and every address checked: loopback, private,
//!   link-local (cloud metadata included), unique-local, CGNAT, multicast and
//!   unspecified addresses are refused unless the operator sets `allow_private`,
//!   and cloud metadata endpoints are refused always;
//!   the connection goes to the address that was checked (no second lookup);
//! - redirects are followed by hand (at most [`MAX_REDIRECTS`]), each hop checked;
//! - the response is read up to `max_response` bytes, all of it within the
//!   call's deadline and the policy's timeout (not each read alone).

use super::{RequestError, string};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Redirect hops followed.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch was refused or failed.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("fetch: invalid URL: {0}")]
    InvalidUrl(url::ParseError),
    /// As Node's `fetch` refuses it.
    #[error(
        "fetch: the value of the header {0:?} holds a character a header may not (a control character, or one beyond U+00FF)"
    )]
    HeaderValue(String),
    #[error("fetch: {0} URLs are not allowed")]
    Scheme(String),
    #[error("fetch: the URL has no host")]
    NoHost,
    #[error("fetch: the URL has no port")]
    NoPort,
    #[error("fetch is not allowed for this connector (the operator allows no hosts)")]
    NoHostsAllowed,
    #[error("fetch: {0} is not an allowed host for this connector")]
    HostNotAllowed(String),
    #[error("fetch: {0} has no address")]
    NoAddress(String),
    #[error("fetch: {host} resolves to {ip}, {why}, which connectors may not reach")]
    RefusedAddress {
        host: String,
        ip: IpAddr,
        why: &'static str,
    },
    #[error(
        "fetch: cannot resolve {0}: {MAX_LOOKUPS_IN_FLIGHT} lookups are already waiting on DNS"
    )]
    LookupsBusy(String),
    #[error("fetch: cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("fetch: resolving {0} took longer than the call may wait")]
    ResolveTimedOut(String),
    #[error("fetch: the call's deadline has passed")]
    DeadlinePassed,
    #[error("fetch: {0}")]
    Client(reqwest::Error),
    #[error("fetch: invalid method {0}")]
    InvalidMethod(String),
    #[error("fetch failed: {}", describe(.0))]
    Send(reqwest::Error),
    #[error("fetch: invalid redirect: {0}")]
    InvalidRedirect(url::ParseError),
    #[error("fetch: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("fetch: reading the response: {0}")]
    Read(std::io::Error),
    #[error("fetch: the response is over the {0}-byte limit")]
    TooLarge(usize),
}

impl FetchError {
    /// Whether the host refused the request (the policy, a bound, a request
    /// it cannot make), rather than made it and saw it fail.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            FetchError::Resolve { .. }
                | FetchError::NoAddress(_)
                | FetchError::ResolveTimedOut(_)
                | FetchError::DeadlinePassed
                | FetchError::Client(_)
                | FetchError::Send(_)
                | FetchError::InvalidRedirect(_)
                | FetchError::Read(_)
        )
    }
}

/// What a connector may fetch. Set by the operator, never by a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchPolicy {
    /// Host names (or `*.example.com`) the connector may reach; empty: none.
    pub allow_hosts: Vec<String>,
    /// Allow private, loopback and link-local addresses (for tests and trusted networks).
    pub allow_private: bool,
    /// Largest response body read.
    pub max_response: usize,
    /// Longest a request may take (the call's deadline applies too).
    pub timeout: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_hosts: Vec::new(),
            allow_private: false,
            max_response: 1 << 20,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A cloud metadata endpoint (AWS/GCP/Azure 169.254.169.254, AWS fd00:ec2::254,
/// Alibaba 100.100.100.200), also inside any IPv6 form that carries an IPv4
/// address: refused even where private addresses are allowed.
pub fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_metadata_v4(v4),
        IpAddr::V6(v6) => {
            embedded_v4(v6).is_some_and(is_metadata_v4)
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_metadata_v4(ip: Ipv4Addr) -> bool {
    ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200)
}

/// The IPv4 address an IPv6 address reaches, where the IPv6 form is a way to
/// an IPv4 host: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
/// (`::ffff:0:a.b.c.d`, SIIT), IPv4-compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`, the
/// relay's IPv4 in bits 16–47) and Teredo (`2001::/32`, the client's IPv4
/// inverted in the last 32 bits).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    match s {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, high, low] => Some(v4(high, low)),
        [0, 0, 0, 0, 0xffff, 0, high, low] => Some(v4(high, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(v4(high, low)),
        [0x2002, high, low, ..] => Some(v4(high, low)),
        [0x2001, 0, .., high, low] => Some(v4(!high, !low)),
        _ => None,
    }
}

/// Why the host refuses to connect to `ip`, if it does: any non-public
/// address unless `allow_private`, and metadata endpoints always.
pub fn refused_address(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    if allow_private {
        if is_metadata(ip) {
            Some("a cloud metadata address")
        } else {
            is_local_use_nat64(ip).then_some(LOCAL_USE_NAT64)
        }
    } else {
        non_public(ip)
    }
}

const LOCAL_USE_NAT64: &str = "a local-use NAT64 address";

/// `64:ff9b:1::/48`, NAT64 for local use (RFC 8215): where the IPv4 host sits
/// inside it depends on the operator's translator, so it cannot be checked
/// (it may be a metadata address) and is refused even with `allow_private`.
fn is_local_use_nat64(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if matches!(v6.segments(), [0x64, 0xff9b, 1, ..]))
}

/// Why an address is not public, if it is not (metadata endpoints included).
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return non_public_v4(v4);
            }
            let first = v6.segments()[0];
            if is_local_use_nat64(ip) {
                Some(LOCAL_USE_NAT64)
            } else if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a unique-local (private) address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (CGNAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else {
        None
    }
}

fn host_allowed(policy: &FetchPolicy, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    policy.allow_hosts.iter().any(|allowed| {
        let allowed = allowed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        match allowed.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == allowed,
        }
    })
}

/// DNS lookups in flight at once, process-wide. A lookup the call's deadline
/// gave up on still holds its thread until the system resolver returns, so a
/// resolver that hangs cannot make connectors pile up threads past this.
const MAX_LOOKUPS_IN_FLIGHT: usize = 64;

static LOOKUPS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The addresses of `host`, looked up within `wait` (an IP literal is its own).
fn resolve(host: &str, port: u16, wait: Duration) -> Result<Vec<SocketAddr>, FetchError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    lookup_within(host, wait, move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
    })
}

/// Runs `lookup` on its own thread and waits at most `wait` for it: the
/// system resolver has no timeout of ours, so the call's deadline bounds it here.
fn lookup_within(
    host: &str,
    wait: Duration,
    lookup: impl FnOnce() -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
) -> Result<Vec<SocketAddr>, FetchError> {
    if LOOKUPS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS_IN_FLIGHT {
        LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(FetchError::LookupsBusy(host.to_string()));
    }
    /// Gives the lookup's slot back however the lookup ends (a panic included).
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let slot = InFlight;
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sandpipe-dns".into())
        .spawn(move || {
            let _slot = slot;
            let _ = answer.send(lookup());
        })
        .map_err(|source| FetchError::Resolve {
            host: host.to_string(),
            source,
        })?;
    match answered.recv_timeout(wait) {
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(source)) => Err(FetchError::Resolve {
            host: host.to_string(),
            source,
        }),
        Err(_) => Err(FetchError::ResolveTimedOut(host.to_string())),
    }
}

/// Checks a URL against the policy and returns the one address to connect to.
fn vet(
    policy: &FetchPolicy,
    url: &reqwest::Url,
    deadline: Instant,
) -> Result<SocketAddr, FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme(url.scheme().to_string()));
    }
    let host = url.host_str().ok_or(FetchError::NoHost)?;
    if policy.allow_hosts.is_empty() {
        return Err(FetchError::NoHostsAllowed);
    }
    if !host_allowed(policy, host) {
        return Err(FetchError::HostNotAllowed(host.to_string()));
    }
    let port = url.port_or_known_default().ok_or(FetchError::NoPort)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = resolve(bare, port, remaining(deadline, policy.timeout)?)?;
    let first = *addresses
        .first()
        .ok_or_else(|| FetchError::NoAddress(host.to_string()))?;
    for address in &addresses {
        if let Some(why) = refused_address(address.ip(), policy.allow_private) {
            return Err(FetchError::RefusedAddress {
                host: host.to_string(),
                ip: address.ip(),
                why,
            });
        }
    }
    Ok(first)
}

fn remaining(deadline: Instant, cap: Duration) -> Result<Duration, FetchError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(FetchError::DeadlinePassed);
    }
    Ok(left.min(cap))
}

/// Performs one fetch request.
pub fn handle(
    policy: &FetchPolicy,
    request: &Value,
    deadline: Instant,
) -> Result<Value, FetchError> {
    // The policy's timeout bounds the whole fetch (redirects and body
    // included), within the call's own deadline.
    let deadline = deadline.min(Instant::now() + policy.timeout);
    let mut url = reqwest::Url::parse(string(request, "url")?).map_err(FetchError::InvalidUrl)?;
    let mut method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let headers: Vec<(String, String)> = match request.get("headers") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut body = request
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_string);
    for _hop in 0..=MAX_REDIRECTS {
        let address = vet(policy, &url, deadline)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, address)
            .timeout(remaining(deadline, policy.timeout)?)
            .build()
            .map_err(FetchError::Client)?;
        let method_value = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| FetchError::InvalidMethod(method.clone()))?;
        let mut builder = client.request(method_value, url.clone());
        for (name, value) in &headers {
            let value = crate::webhook::header_value(value)
                .ok_or_else(|| FetchError::HeaderValue(name.clone()))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().map_err(FetchError::Send)?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|_| status.is_redirection());
        if let Some(location) = location {
            url = url.join(location).map_err(FetchError::InvalidRedirect)?;
            if status == reqwest::StatusCode::SEE_OTHER
                || ((status.as_u16() == 301 || status.as_u16() == 302) && method == "POST")
            {
                method = "GET".into();
                body = None;
            }
            continue;
        }
        let bytes = read_body(&mut response, policy.max_response, deadline)?;
        let headers: Map<String, Value> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                )
            })
            .collect();
        return Ok(json!({
            "url": url.as_str(),
            "status": status.as_u16(),
            "statusText": status.canonical_reason().unwrap_or(""),
            "headers": headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }));
    }
    Err(FetchError::TooManyRedirects)
}

/// The response's body, at most `limit` bytes, read by `deadline`. (The
/// client's timeout bounds each read, not the body: a server that sends a
/// byte at a time would hold the call, so the deadline is checked between reads.)
fn read_body(
    response: &mut impl std::io::Read,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(FetchError::DeadlinePassed);
        }
        let read = response.read(&mut chunk).map_err(FetchError::Read)?;
        if read == 0 {
            return Ok(bytes);
        }
        if bytes.len() + read > limit {
            return Err(FetchError::TooLarge(limit));
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// One line for a failed request: "timed out", or the innermost cause.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal is logged for the connector; a request that was made and
    /// failed is the connector's code to report.
    #[test]
    fn refusals_are_told_from_failures() {
        assert!(FetchError::HostNotAllowed("example.com".into()).is_refusal());
        assert!(FetchError::NoHostsAllowed.is_refusal());
        assert!(FetchError::TooLarge(10).is_refusal());
        let failed = FetchError::Resolve {
            host: "example.invalid".into(),
            source: std::io::Error::other("no such host"),
        };
        assert!(!failed.is_refusal());
        assert!(!FetchError::DeadlinePassed.is_refusal());
        assert!(!crate::services::ServiceError::Fetch(failed).is_refusal());
        use crate::services::cache::CacheError;
        assert!(crate::services::ServiceError::Cache(CacheError::TooManyKeys).is_refusal());
        let down = CacheError::Unavailable("connection refused".into());
        assert!(!crate::services::ServiceError::Cache(down).is_refusal());
    }

    #[test]
    fn private_and_special_addresses_are_named() {
        for (ip, why) in [
            ("127.0.0.1", "a loopback address"),
            ("::1", "a loopback address"),
            ("169.254.169.254", "a cloud metadata address"),
            ("169.254.1.1", "a link-local address"),
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("100.64.0.1", "a shared (CGNAT) address"),
            ("0.0.0.0", "an unspecified address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:0:7f00:1", "a loopback address"),
            ("::ffff:0:169.254.169.254", "a cloud metadata address"),
            ("::ffff:0:10.1.2.3", "a private address"),
            ("fe80::1", "a link-local address"),
            ("fd00::1", "a unique-local (private) address"),
            // IPv6 forms that reach an IPv4 host are judged by that host.
            ("::127.0.0.1", "a loopback address"),
            ("::a9fe:a9fe", "a cloud metadata address"),
            ("64:ff9b::7f00:1", "a loopback address"),
            ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),
            ("64:ff9b::10.0.0.8", "a private address"),
            ("64:ff9b:1::808:808", "a local-use NAT64 address"),
            ("64:ff9b:1:a9fe:a9fe::", "a local-use NAT64 address"),
            ("2002:7f00:1::", "a loopback address"),
            ("2002:a9fe:a9fe::1", "a cloud metadata address"),
            ("2002:c0a8:101::", "a private address"),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a loopback address"),
            ("::", "an unspecified address"),
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), Some(why), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn metadata_is_refused_in_every_form_even_with_private_allowed() {
        for ip in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert_eq!(
                refused_address(ip.parse().unwrap(), true),
                Some("a cloud metadata address"),
                "{ip}"
            );
        }
        // Where a local-use NAT64 prefix carries its IPv4 host is the
        // translator's choice: it may hide a metadata address, so it is refused too.
        assert_eq!(
            refused_address("64:ff9b:1:a9fe:a9fe::".parse().unwrap(), true),
            Some("a local-use NAT64 address")
        );
        assert_eq!(refused_address("64:ff9b:2::1".parse().unwrap(), true), None);
    }

    #[test]
    fn a_hanging_lookup_ends_at_the_deadline() {
        let (release, hang) = std::sync::mpsc::channel::<()>();
        let error = lookup_within("slow.example", Duration::from_millis(50), move || {
            let _ = hang.recv();
            Ok(Vec::new())
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "fetch: resolving slow.example took longer than the call may wait"
        );
        drop(release);
    }

    #[test]
    fn hosts_match_exactly_or_by_suffix() {
        let policy = FetchPolicy {
            allow_hosts: vec!["api.example.com".into(), "*.hooks.io".into()],
            ..Default::default()
        };
        assert!(host_allowed(&policy, "api.example.com"));
        assert!(host_allowed(&policy, "API.Example.com"));
        assert!(host_allowed(&policy, "eu.hooks.io"));
        assert!(!host_allowed(&policy, "hooks.io"));
        assert!(!host_allowed(&policy, "evil-api.example.com"));
        assert!(!host_allowed(&policy, "api.example.com.evil.net"));
    }
}
