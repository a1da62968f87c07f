//! The client's address: the socket peer, unless the peer is a trusted
//! proxy; then `X-Forwarded-For` read from the right, skipping trusted hops.
//! An untrusted peer cannot choose its address with the header.

use std::net::IpAddr;

use poem::Request;

use crate::config::IpBlock;

/// The address a request is attributed to.
pub fn client_ip(req: &Request, trusted: &[IpBlock]) -> Option<IpAddr> {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| canonical(a.ip()))?;
    if !is_trusted(&peer, trusted) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(resolve(peer, &forwarded, trusted))
}

/// Walks `X-Forwarded-For` from the right: the first hop that is not a
/// trusted proxy is the client. If every hop is trusted, the leftmost is.
/// A malformed entry stops the walk at the last good address.
pub fn resolve(peer: IpAddr, forwarded: &str, trusted: &[IpBlock]) -> IpAddr {
    let mut client = peer;
    for hop in forwarded
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip, trusted) {
            return ip;
        }
    }
    client
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // "1.2.3.4:5678" or "[::1]:5678"
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| canonical(a.ip()))
}

fn is_trusted(ip: &IpAddr, trusted: &[IpBlock]) -> bool {
    trusted.iter().any(|block| block.contains(ip))
}

/// IPv4-mapped IPv6 addresses count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(list: &[&str]) -> Vec<IpBlock> {
        list.iter().map(|b| b.parse().unwrap()).collect()
    }

    #[test]
    fn reads_forwarded_for_from_the_right_skipping_trusted_hops() {
        let trusted = blocks(&["127.0.0.1", "10.0.0.0/8"]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        // The client claims 6.6.6.6; our own proxy saw 1.2.3.4.
        assert_eq!(
            resolve(peer, "6.6.6.6, 1.2.3.4, 10.1.1.1", &trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(resolve(peer, "", &trusted), peer);
        assert_eq!(resolve(peer, "10.0.0.2", &trusted).to_string(), "10.0.0.2");
        assert_eq!(
            resolve(peer, "garbage, 1.2.3.4", &trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(resolve(peer, "1.2.3.4, garbage", &trusted), peer);
        assert_eq!(
            resolve(peer, "[2001:db8::1]:443", &trusted).to_string(),
            "2001:db8::1"
        );
    }
}
