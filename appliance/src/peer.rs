//! Who is on the other end of a connection: the helm screen, or a client on the boat's
//! network, counted by the address it cannot easily change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The client of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: IpAddr,
}

/// What limits are counted by: one IPv4 address, one IPv6 /64 (a host picks any address
/// of its /64 freely, so counting single addresses would count nothing), or the helm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    Helm,
    V4(Ipv4Addr),
    V6Net(u64),
}

impl Peer {
    pub fn of(addr: SocketAddr) -> Peer {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        Peer { addr: ip }
    }

    /// The helm screen: the device's own browser, which opens `http://localhost`. Only
    /// 127.0.0.1 and ::1 count; nothing on the network can send from them, and the rest of
    /// 127.0.0.0/8 is not what localhost resolves to.
    pub fn is_helm(&self) -> bool {
        self.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) || self.addr == IpAddr::V6(Ipv6Addr::LOCALHOST)
    }

    pub fn key(&self) -> PeerKey {
        if self.is_helm() {
            return PeerKey::Helm;
        }
        match self.addr {
            IpAddr::V4(v4) => PeerKey::V4(v4),
            IpAddr::V6(v6) => PeerKey::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_helm() {
            write!(f, "the helm screen ({})", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Peer {
        Peer::of(s.parse().unwrap())
    }

    #[test]
    fn only_localhost_is_the_helm() {
        assert!(peer("127.0.0.1:5000").is_helm());
        assert!(peer("[::1]:5000").is_helm());
        assert!(peer("[::ffff:127.0.0.1]:5000").is_helm());
        assert!(!peer("127.0.0.2:5000").is_helm());
        assert!(!peer("192.168.4.20:5000").is_helm());
    }

    #[test]
    fn an_ipv6_host_counts_once_for_its_whole_64() {
        assert_eq!(
            peer("[2001:db8:1:2::1]:1").key(),
            peer("[2001:db8:1:2:ffff::9]:1").key()
        );
        assert_ne!(
            peer("[2001:db8:1:2::1]:1").key(),
            peer("[2001:db8:1:3::1]:1").key()
        );
        assert_eq!(
            peer("[::ffff:10.0.0.7]:1").key(),
            PeerKey::V4("10.0.0.7".parse().unwrap())
        );
    }
}
