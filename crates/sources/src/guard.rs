//! The SSRF guard: a config's `domain` comes from an API caller, so without a check a caller
//! could make the server probe its own network (metadata services, admin ports, databases).
//!
//! Two places enforce it. IP literals never reach a resolver, so [`check_host`] refuses them
//! before a request is built. Names go through [`GuardedResolver`], which reqwest calls for every
//! connection: it drops non-public addresses from the answer, so a name that resolved to a public
//! address during an earlier check cannot rebind to a private one at connect time.
//!
//! Operator overrides (`CTXSYNC_*_BASE_URL`) and `CTXSYNC_ALLOW_PRIVATE_SOURCES` skip the guard:
//! they are the operator's decision, not a caller's.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// A host refused because of where it points.
#[derive(Debug, Clone)]
pub(crate) struct Blocked {
    pub host: String,
    pub addr: IpAddr,
    pub kind: &'static str,
    literal: bool,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Blocked { host, addr, kind, literal } = self;
        if *literal {
            write!(f, "{host} is a {kind} address")
        } else {
            write!(f, "{host} resolves to a {kind} address ({addr})")
        }
    }
}

impl std::error::Error for Blocked {}

/// Why an address may not be contacted, or `None` for a public one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match () {
        _ if ip.is_loopback() => Some("loopback"),
        _ if ip.is_private() => Some("private"),
        _ if ip.is_link_local() => Some("link-local"),
        _ if ip.is_unspecified() || a == 0 => Some("unspecified"),
        _ if a == 100 && (64..128).contains(&b) => Some("shared (CGNAT)"),
        _ if ip.is_multicast() => Some("multicast"),
        _ if ip.is_broadcast() || a >= 240 => Some("reserved"),
        _ if a == 192 && b == 0 && c == 0 => Some("reserved"),
        _ if a == 198 && (18..20).contains(&b) => Some("benchmarking"),
        _ => None,
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return non_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    match segments[0] {
        _ if ip.is_loopback() => Some("loopback"),
        _ if ip.is_unspecified() => Some("unspecified"),
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Refuses a URL host that is a non-public IP literal. Names are left to [`GuardedResolver`].
pub(crate) fn check_host(host: Host<&str>) -> Result<(), Blocked> {
    let ip = match host {
        Host::Domain(_) => return Ok(()),
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
    };
    match non_public(ip) {
        Some(kind) => Err(Blocked { host: ip.to_string(), addr: ip, kind, literal: true }),
        None => Ok(()),
    }
}

/// The system resolver, minus every non-public address; refuses a name left with none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_blocked = None;
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match non_public(addr.ip()) {
                    Some(kind) => {
                        first_blocked.get_or_insert((addr.ip(), kind));
                        false
                    }
                    None => true,
                })
                .collect();
            match (public.is_empty(), first_blocked) {
                (true, Some((addr, kind))) => Err(Box::new(Blocked { host, addr, kind, literal: false })
                    as Box<dyn std::error::Error + Send + Sync>),
                (true, None) => {
                    Err(Box::new(io::Error::new(io::ErrorKind::NotFound, "no addresses found")) as _)
                }
                (false, _) => {
                    if let Some((addr, kind)) = first_blocked {
                        tracing::warn!(%host, %addr, kind, "dropped a non-public address from a source host's DNS answer");
                    }
                    Ok(Box::new(public.into_iter()) as Addrs)
                }
            }
        })
    }
}

/// The [`Blocked`] somewhere in an error's chain, if the guard caused it.
pub(crate) fn blocked_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        if let Some(blocked) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Blocked>())
        {
            return Some(blocked);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_ranges() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.5", "private"),
            ("172.16.3.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn literals_are_checked_names_are_not() {
        let err = check_host(Host::Ipv4("10.0.0.1".parse().unwrap())).unwrap_err();
        assert_eq!(err.to_string(), "10.0.0.1 is a private address");
        assert!(check_host(Host::Domain("acme.okta.com")).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback() {
        let name: Name = "localhost".parse().unwrap();
        let err = match GuardedResolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e,
        };
        let blocked = blocked_cause(err.as_ref()).expect("a Blocked cause");
        assert_eq!(blocked.kind, "loopback");
        assert!(blocked.to_string().starts_with("localhost resolves to a loopback address"), "{blocked}");
    }
}
