//! The address of the person making a request. Behind a reverse proxy every request comes from the
//! proxy, so the proxy's `Forwarded` or `X-Forwarded-For` header says who is behind it; but anyone can
//! send those headers, so they are believed only from the proxies named in `HOMEWARD_TRUSTED_PROXIES`,
//! and only up to the rightmost hop that is not one of them (what a client wrote further left is theirs
//! to forge).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost forwarded hop
/// that is not a trusted proxy. `None` only when the connection has no peer address (not on TCP).
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let hops = forwarded_hops(req);
    Some(resolve(peer, &hops, trusted))
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    let address = canonical(address);
    trusted.iter().any(|net| net.contains(&address))
}

/// An IPv4 peer seen on an IPv6 socket (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Walk the hops from the proxy nearest us outwards; the first that is not a trusted proxy is the client.
/// A hop that cannot be read ends the walk at the last address that could be (the header is not
/// trustworthy past a hop nobody we trust vouched for).
fn resolve(peer: IpAddr, hops: &[Option<IpAddr>], trusted: &[IpNet]) -> IpAddr {
    let mut client = canonical(peer);
    if !is_trusted(client, trusted) {
        return client;
    }
    for hop in hops.iter().rev() {
        let Some(hop) = hop else { return client };
        client = canonical(*hop);
        if !is_trusted(client, trusted) {
            return client;
        }
    }
    client
}

/// The forwarded-for hops, leftmost (the original client, by its own account) first: from `Forwarded`
/// (RFC 7239) when it is sent, else `X-Forwarded-For`. `None` for a hop that is not an address.
fn forwarded_hops(req: &HttpRequest) -> Vec<Option<IpAddr>> {
    let headers = req.headers();
    let forwarded: Vec<&str> = headers.get_all("forwarded").filter_map(|v| v.to_str().ok()).collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| parse_forwarded_node(value.trim()))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// `for=` values: `192.0.2.60`, `"192.0.2.60:4711"`, `"[2001:db8::1]:4711"`, or `unknown` / `_hidden`.
fn parse_forwarded_node(value: &str) -> Option<IpAddr> {
    parse_node(value.trim_matches('"'))
}

fn parse_node(raw: &str) -> Option<IpAddr> {
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split_once(']').and_then(|(address, _)| address.parse().ok());
    }
    // IPv4 with a port.
    raw.rsplit_once(':').and_then(|(address, port)| port.parse::<u16>().ok().and(address.parse().ok()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn from(peer: &str, headers: &[(&str, &str)], trusted: &[&str]) -> IpAddr {
        let socket = if peer.contains(':') { format!("[{peer}]:40000") } else { format!("{peer}:40000") };
        let mut req = TestRequest::default().peer_addr(socket.parse().unwrap());
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        client_address(&req.to_http_request(), &nets(trusted)).unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let forged = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(from("203.0.113.9", &forged, &[]).to_string(), "203.0.113.9");
        assert_eq!(from("203.0.113.9", &forged, &["10.0.0.0/8"]).to_string(), "203.0.113.9");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8"];
        let hops = [("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.5")];
        // 1.1.1.1 was written by the client itself: only the hop our proxies saw counts.
        assert_eq!(from("10.0.0.1", &hops, &trusted).to_string(), "198.51.100.7");
        let split = [("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.8")];
        assert_eq!(from("10.0.0.1", &split, &trusted).to_string(), "198.51.100.8");
    }

    #[test]
    fn forwarded_is_read_with_quotes_ports_and_ipv6() {
        let trusted = ["127.0.0.1/32"];
        let header = [("forwarded", r#"for="[2001:db8::17]:4711";proto=https, for=192.0.2.60:1234"#)];
        assert_eq!(from("127.0.0.1", &header, &trusted).to_string(), "192.0.2.60");
        let ipv6 = [("forwarded", r#"for="[2001:db8::17]:4711""#)];
        assert_eq!(from("127.0.0.1", &ipv6, &trusted).to_string(), "2001:db8::17");
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_address() {
        let trusted = ["10.0.0.0/8"];
        let header = [("x-forwarded-for", "198.51.100.7, garbage, 10.0.0.9")];
        assert_eq!(from("10.0.0.1", &header, &trusted).to_string(), "10.0.0.9");
        let hidden = [("forwarded", "for=_hidden")];
        assert_eq!(from("10.0.0.1", &hidden, &trusted).to_string(), "10.0.0.1");
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_ipv4_ranges() {
        let hops = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(from("::ffff:10.0.0.1", &hops, &["10.0.0.0/8"]).to_string(), "198.51.100.7");
    }
}
