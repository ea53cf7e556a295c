//! An IP address or CIDR block (`1.1.1.1`, `1.1.1.0/24`, `::1/128`), as Go's
//! `util.ParseIPNet` reads a `limit_by_per_ip` key.

use std::net::IpAddr;

/// An address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u32,
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn width(addr: IpAddr) -> u32 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

impl IpNet {
    /// `addr` or `addr/prefix`; `None` if either part is invalid.
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let prefix = prefix.unwrap_or_else(|| width(addr));
        (prefix <= width(addr)).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` (of the same family) is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let shift = width(ip) - self.prefix;
        let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
        bits(ip) & mask == bits(self.addr) & mask
    }
}

#[cfg(test)]
mod tests {
    use super::IpNet;

    #[test]
    fn blocks_contain_their_addresses() {
        let ip = |s: &str| {
            s.parse()
                .ok()
                .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
        };
        let net = |s: &str| IpNet::parse(s);
        assert!(net("1.1.1.1").is_some_and(|n| n.contains(ip("1.1.1.1"))));
        assert!(net("1.1.1.1").is_some_and(|n| !n.contains(ip("1.1.1.2"))));
        assert!(net("1.1.1.0/24").is_some_and(|n| n.contains(ip("1.1.1.200"))));
        assert!(net("1.1.1.0/24").is_some_and(|n| !n.contains(ip("1.1.2.1"))));
        assert!(net("0.0.0.0/0").is_some_and(|n| n.contains(ip("9.9.9.9"))));
        assert!(net("::1/128").is_some_and(|n| !n.contains(ip("1.1.1.1"))));
        assert!(net("fe80::/10").is_some_and(|n| n.contains(ip("fe80::1"))));
        assert_eq!(net("1.1.1.0/33"), None);
        assert_eq!(net("300.1.1.1"), None);
    }
}
