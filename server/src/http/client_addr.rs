//! The client's address: the TCP peer, or — when the peer is one of the `trusted_proxies` —
//! the address the proxies say they received the request from, walking `Forwarded` (RFC
//! 7239) or else `X-Forwarded-For` from the right and skipping every hop that is itself a
//! trusted proxy. Hops a client wrote (to the left of the first untrusted one) are never
//! believed, so a client behind a proxy can't choose its own address.
//!
//! Addresses are canonical (an IPv4-mapped IPv6 address is its IPv4 address), so what the
//! audit trail stores is what staff type to release a throttle.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which peers' forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `trusted_proxies`: CIDR blocks or single addresses.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "trusted_proxies: {entry:?} is not an address or CIDR block \
                             (10.0.0.0/8, 2001:db8::/32, 192.0.2.7)"
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_hops(headers).unwrap_or_else(|| x_forwarded_for_hops(headers));
        // From the right: the last hop was written by the proxy nearest the server.
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = hop else {
                // Not an address (`unknown`, an obfuscated name, garbage): the proxy to its
                // right is as far as anyone can vouch for.
                return client;
            };
            client = addr.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The `for=` of every `Forwarded` element, in order; `None` without the header.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let hops = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| forwarded_node(value.trim()))
        })
        .collect();
    Some(hops)
}

/// An RFC 7239 node: `192.0.2.60`, `"192.0.2.60:443"`, `"[2001:db8::1]:4711"`.
fn forwarded_node(value: &str) -> Option<IpAddr> {
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let host = value.split_once(':').map_or(value, |(host, _)| host);
    host.parse().ok()
}

/// Every `X-Forwarded-For` entry, in order, headers joined.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect()
}

/// What a client address's throttles are keyed on: an IPv4 address itself, an IPv6
/// address's /64 (one subscriber's network: anyone can use every address in it).
pub fn throttle_key(client: &str) -> String {
    match client.parse::<IpAddr>().map(|addr| addr.to_canonical()) {
        Ok(IpAddr::V6(v6)) => ipnet::Ipv6Net::new(v6, 64)
            .map(|net| net.trunc().to_string())
            .unwrap_or_else(|_| client.to_owned()),
        Ok(v4) => v4.to_string(),
        Err(_) => client.to_owned(),
    }
}

/// The throttle key staff or the operator name to release: an address (its key), or a key
/// as the status view lists it (an IPv6 /64).
pub fn release_key(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(throttle_key(&addr.to_string()));
    }
    match text.parse::<IpNet>().ok()? {
        IpNet::V6(net) if net.prefix_len() == 64 => Some(net.trunc().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let none = TrustedProxies::default();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(none.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        let some = proxies(&["10.0.0.0/8"]);
        assert_eq!(some.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn hops_are_walked_from_the_right_past_trusted_proxies_only() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7"]);
        // A client that wrote its own entry (6.6.6.6) is still keyed on where it came from.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(trusted.client(ip("192.0.2.7"), &h), ip("203.0.113.9"));
        // Several headers are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
        ]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Only proxies: the furthest.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.2.3")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // A hop that is no address stops the walk at the proxy that vouched for it.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.1.2.3")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.9;by=10.0.0.1",
            ),
        ]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "For=\"192.0.2.60:443\"")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &h), ip("192.0.2.60"));
    }

    #[test]
    fn addresses_are_canonical_and_ipv6_is_throttled_by_its_64() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.9")]);
        assert_eq!(trusted.client(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
        assert_eq!(throttle_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(throttle_key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(throttle_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            throttle_key("2001:db8:1:2:bbbb::9"),
            throttle_key("2001:db8:1:2:aaaa::1")
        );
        assert_ne!(
            throttle_key("2001:db8:1:3::1"),
            throttle_key("2001:db8:1:2::1")
        );
        assert_eq!(
            release_key(" ::ffff:203.0.113.9 ").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            release_key("2001:db8:1:2::7").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(
            release_key("2001:db8:1:2::/64").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(release_key("10.0.0.0/8"), None);
    }

    #[test]
    fn bad_entries_are_refused_with_an_example() {
        let error = TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).unwrap_err();
        assert!(format!("{error}").contains("10.0.0.0/8"), "{error}");
    }
}
