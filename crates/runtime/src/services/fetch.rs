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
//! - the response is read up to `max_response` bytes, within the call's deadline.

use super::string;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Redirect hops followed.
pub const MAX_REDIRECTS: usize = 5;

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
/// Alibaba 100.100.100.200): refused even where private addresses are allowed.
pub fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_metadata_v4(v4),
        IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().is_some_and(is_metadata_v4)
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_metadata_v4(ip: Ipv4Addr) -> bool {
    ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200)
}

/// Why the host refuses to connect to `ip`, if it does: any non-public
/// address unless `allow_private`, and metadata endpoints always.
pub fn refused_address(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    if allow_private {
        is_metadata(ip).then_some("a cloud metadata address")
    } else {
        non_public(ip)
    }
}

/// Why an address is not public, if it is not (metadata endpoints included).
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
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

/// Checks a URL against the policy and returns the one address to connect to.
fn vet(policy: &FetchPolicy, url: &reqwest::Url) -> Result<SocketAddr, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("fetch: {} URLs are not allowed", url.scheme()));
    }
    let host = url.host_str().ok_or("fetch: the URL has no host")?;
    if policy.allow_hosts.is_empty() {
        return Err(
            "fetch is not allowed for this connector (the operator allows no hosts)".into(),
        );
    }
    if !host_allowed(policy, host) {
        return Err(format!(
            "fetch: {host} is not an allowed host for this connector"
        ));
    }
    let port = url
        .port_or_known_default()
        .ok_or("fetch: the URL has no port")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("fetch: cannot resolve {host}: {e}"))?
        .collect();
    let first = *addresses
        .first()
        .ok_or_else(|| format!("fetch: {host} has no address"))?;
    for address in &addresses {
        if let Some(why) = refused_address(address.ip(), policy.allow_private) {
            return Err(format!(
                "fetch: {host} resolves to {}, {why}, which connectors may not reach",
                address.ip()
            ));
        }
    }
    Ok(first)
}

fn remaining(deadline: Instant, cap: Duration) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("fetch: the call's deadline has passed".into());
    }
    Ok(left.min(cap))
}

/// Performs one fetch request.
pub fn handle(policy: &FetchPolicy, request: &Value, deadline: Instant) -> Result<Value, String> {
    let mut url = reqwest::Url::parse(string(request, "url")?)
        .map_err(|e| format!("fetch: invalid URL: {e}"))?;
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
        let address = vet(policy, &url)?;
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
            .map_err(|e| format!("fetch: {e}"))?;
        let method_value = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("fetch: invalid method {method}"))?;
        let mut builder = client.request(method_value, url.clone());
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let mut response = builder
            .send()
            .map_err(|e| format!("fetch failed: {}", describe(&e)))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|_| status.is_redirection());
        if let Some(location) = location {
            url = url
                .join(location)
                .map_err(|e| format!("fetch: invalid redirect: {e}"))?;
            if status == reqwest::StatusCode::SEE_OTHER
                || ((status.as_u16() == 301 || status.as_u16() == 302) && method == "POST")
            {
                method = "GET".into();
                body = None;
            }
            continue;
        }
        let mut bytes = Vec::new();
        use std::io::Read;
        (&mut response)
            .take(policy.max_response as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("fetch: reading the response: {e}"))?;
        if bytes.len() > policy.max_response {
            return Err(format!(
                "fetch: the response is over the {}-byte limit",
                policy.max_response
            ));
        }
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
    Err(format!("fetch: more than {MAX_REDIRECTS} redirects"))
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
            ("fe80::1", "a link-local address"),
            ("fd00::1", "a unique-local (private) address"),
        ] {
            assert_eq!(non_public(ip.parse().unwrap()), Some(why), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert_eq!(non_public(ip.parse().unwrap()), None, "{ip}");
        }
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
