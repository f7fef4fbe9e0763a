//! Push endpoints may only be public HTTPS addresses: a subscription is a URL that any signed-in user
//! chooses, and the server must not become a way into the school's own network. Checked when a browser
//! subscribes (after resolving the name) and again on every send, where the push client's resolver
//! drops every address that is not public, so a name that later resolves inside gets nowhere.
//!
//! Hosts in `HOMEWARD_PUSH_ALLOW_HOSTS` (tests and the load generator, with push services on loopback)
//! may use plain HTTP and any address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// How long a subscription waits for its endpoint's name to resolve. A name that does not resolve in
/// time is accepted: every send checks the addresses again.
const SUBSCRIBE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether `ip` is an ordinary address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, broadcast, documentation, benchmarking or reserved, and for
/// IPv6 also not unique-local, and not an IPv4-mapped (or NAT64, 6to4) form of such an address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0 among it
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64/10
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast 224/4, reserved 240/4, broadcast 255.255.255.255
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-mapped (::ffff:a.b.c.d) and the well-known NAT64 prefix (64:ff9b::/96, what DNS64 hands an
    // IPv6-only host): as public as the IPv4 address inside.
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4());
    }
    // 6to4 (2002::/16) carries an IPv4 address in its second and third groups.
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    // Only global unicast, 2000::/3, is public; that leaves out ::, ::1, IPv4-compatible ::/96,
    // discard-only 100::/64, unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10 and
    // multicast ff00::/8. Within it, IETF protocol assignments (2001::/23, Teredo among them),
    // documentation (2001:db8::/32, 3fff::/20) and SRv6 SIDs (5f00::/16) are not public either.
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] < 0x0200)
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && (s[0] & 0xfff0) != 0x3ff0
        && s[0] != 0x5f00
}

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotAUrl,
    NotHttps,
    /// An address (literal, or what the name resolves to) that is not on the public internet.
    NotPublic,
}

impl Refusal {
    /// For the person subscribing: names the rule, never an address the name resolved to.
    pub fn explain(&self) -> &'static str {
        match self {
            Refusal::NotAUrl => "the endpoint must be an https URL of at most 2000 characters",
            Refusal::NotHttps => "the endpoint must be an https URL",
            Refusal::NotPublic => "the endpoint must be a push service on a public address",
        }
    }
}

/// The send-time refusal: every address the endpoint's name resolved to was not a public one.
#[derive(Debug)]
pub struct NotPublicAddress;

impl std::fmt::Display for NotPublicAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name resolves to no public address")
    }
}

impl std::error::Error for NotPublicAddress {}

/// The push endpoints this server may reach: public HTTPS, plus the hosts of `HOMEWARD_PUSH_ALLOW_HOSTS`.
#[derive(Debug, Clone, Default)]
pub struct EndpointGuard {
    allowed: Arc<HashSet<String>>,
}

/// A host as compared with the allow-list: lower case, no IPv6 brackets, no trailing dot.
fn normalise(host: &str) -> String {
    host.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

impl EndpointGuard {
    pub fn new(allow_hosts: &[String]) -> Self {
        let allowed = allow_hosts.iter().map(|h| normalise(h)).filter(|h| !h.is_empty()).collect();
        Self { allowed: Arc::new(allowed) }
    }

    fn allows(&self, host: &str) -> bool {
        if self.allowed.is_empty() {
            return false;
        }
        let host = normalise(host);
        if self.allowed.contains(&host) {
            return true;
        }
        // `::1` and `0:0::1` are one address.
        host.parse::<IpAddr>().is_ok_and(|ip| self.allowed.iter().any(|a| a.parse::<IpAddr>() == Ok(ip)))
    }

    /// What can be told without looking the name up: the scheme, a literal address, a name that is
    /// loopback by definition (`localhost`, `*.localhost`). Returns the parsed URL and, for a name that
    /// is not allowed outright, the name still to be resolved.
    pub fn check_url(&self, endpoint: &str) -> Result<(Url, Option<String>), Refusal> {
        let url = Url::parse(endpoint).map_err(|_| Refusal::NotAUrl)?;
        let host = match url.host() {
            Some(host) if url.scheme() == "https" || url.scheme() == "http" => host,
            _ => return Err(Refusal::NotAUrl),
        };
        let host_str = url.host_str().unwrap_or_default();
        if self.allows(host_str) {
            return Ok((url.clone(), None));
        }
        if url.scheme() != "https" {
            return Err(Refusal::NotHttps);
        }
        let to_resolve = match host {
            Host::Ipv4(ip) if !is_public_v4(ip) => return Err(Refusal::NotPublic),
            Host::Ipv6(ip) if !is_public_v6(ip) => return Err(Refusal::NotPublic),
            Host::Ipv4(_) | Host::Ipv6(_) => None,
            Host::Domain(name) => {
                let name = normalise(name);
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(Refusal::NotPublic);
                }
                Some(name)
            }
        };
        Ok((url.clone(), to_resolve))
    }

    /// The subscription check: [`EndpointGuard::check_url`], then every address the name resolves to
    /// now must be public. A name that does not resolve (yet) is accepted; each send checks again.
    pub async fn check_subscription(&self, endpoint: &str) -> Result<(), Refusal> {
        let (url, to_resolve) = self.check_url(endpoint)?;
        let Some(name) = to_resolve else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        match tokio::time::timeout(SUBSCRIBE_LOOKUP_TIMEOUT, tokio::net::lookup_host((name.as_str(), port))).await {
            Ok(Ok(addresses)) => {
                let addresses: Vec<_> = addresses.collect();
                if addresses.iter().any(|a| !is_public(a.ip())) {
                    tracing::info!(host = %name, ?addresses, "push subscription refused: a non-public address");
                    return Err(Refusal::NotPublic);
                }
                Ok(())
            }
            Ok(Err(error)) => {
                tracing::debug!(host = %name, %error, "a push endpoint's name does not resolve; checked on sending");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// The resolver of the push client: only public addresses, except for allowed hosts.
    pub fn resolver(&self) -> Arc<PublicOnlyResolver> {
        Arc::new(PublicOnlyResolver { guard: self.clone() })
    }
}

/// A `reqwest` resolver that drops every address that is not public (unless the name is allowed): a
/// name that resolved outside when it was subscribed but inside now is never connected to.
pub struct PublicOnlyResolver {
    guard: EndpointGuard,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allowed = self.guard.allows(&host);
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let found = addresses.len();
            let usable: Vec<_> = addresses.into_iter().filter(|a| allowed || is_public(a.ip())).collect();
            if usable.is_empty() && found > 0 {
                return Err(Box::new(NotPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        for inside in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.10",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(inside)), "{inside} is not public");
        }
        for outside in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "142.250.180.10",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "2a00:1450:4009:81f::200a",
        ] {
            assert!(is_public(ip(outside)), "{outside} is public");
        }
    }

    #[test]
    fn checks_urls_before_resolving() {
        let guard = EndpointGuard::new(&[]);
        let refused = |url: &str| guard.check_url(url).err();
        assert_eq!(refused("ftp://push.example.com/x"), Some(Refusal::NotAUrl));
        assert_eq!(refused("not a url"), Some(Refusal::NotAUrl));
        assert_eq!(refused("http://push.example.com/x"), Some(Refusal::NotHttps));
        for inside in [
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fe80::1]/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://push.localhost:8443/",
        ] {
            assert_eq!(refused(inside), Some(Refusal::NotPublic), "{inside}");
        }
        assert_eq!(guard.check_url("https://8.8.8.8/p").map(|(_, name)| name), Ok(None));
        assert_eq!(
            guard.check_url("https://Fcm.GoogleApis.com/fcm/send/x").map(|(_, name)| name),
            Ok(Some("fcm.googleapis.com".into()))
        );

        let tests = EndpointGuard::new(&["127.0.0.1".into(), " LocalHost ".into(), "[::1]".into()]);
        assert!(tests.check_url("http://127.0.0.1:4000/push/a").is_ok());
        assert!(tests.check_url("http://localhost:4000/push/a").is_ok());
        assert!(tests.check_url("http://[0:0::1]:4000/push/a").is_ok());
        assert_eq!(tests.check_url("http://127.0.0.2/").err(), Some(Refusal::NotHttps));
        assert_eq!(tests.check_url("https://127.0.0.2/").err(), Some(Refusal::NotPublic));
    }
}
