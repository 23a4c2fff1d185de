//! The names this device answers to, and the check of a request's Host against them.

use std::net::IpAddr;

/// The names this device answers to. A page on another name that resolves to the
/// device (DNS rebinding: `evil.example` made to point at the boat's address) carries that
/// name in Host and is refused before any handler runs.
#[derive(Debug, Clone)]
pub struct HostNames {
    names: Vec<String>,
}

impl HostNames {
    /// The host name, HOST.local, `d3kos.local`, `localhost`, and `extra`.
    pub fn of_this_device(extra: &[String]) -> HostNames {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        HostNames::new(&host, extra)
    }

    pub fn new(host: &str, extra: &[String]) -> HostNames {
        let mut names: Vec<String> = [host, &format!("{host}.local"), "d3kos.local", "localhost"]
            .into_iter()
            .chain(extra.iter().map(String::as_str))
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty() && n != ".local")
            .collect();
        names.sort();
        names.dedup();
        HostNames { names }
    }

    /// Whether `host` (a Host header or URI authority, with or without port) names this
    /// device: one of its names, the address the connection reached (`local`), or a
    /// loopback address.
    pub fn allows(&self, host: &str, local: Option<IpAddr>) -> bool {
        let Some(name) = host_part(host) else {
            return false;
        };
        if let Ok(ip) = name.parse::<IpAddr>() {
            let ip = canonical(ip);
            return ip == IpAddr::from([127, 0, 0, 1])
                || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                || local.is_some_and(|l| canonical(l) == ip);
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The host of `name[:port]` or `[v6][:port]`; `None` when it is not of that shape.
fn host_part(host: &str) -> Option<&str> {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        return match after {
            "" => Some(v6),
            _ => after.strip_prefix(':').filter(|p| port_ok(p)).map(|_| v6),
        };
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port_ok(port) => name,
        Some(_) => return None,
        None => host,
    };
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebound_host_name_is_not_this_device() {
        let h = HostNames::new("d3kos", &["helm.boat".into()]);
        let local = Some("192.168.4.1".parse().unwrap());
        for ok in [
            "d3kos",
            "d3kos.local",
            "D3KOS.LOCAL.",
            "d3kos.local:80",
            "localhost:8080",
            "helm.boat",
            "127.0.0.1",
            "127.0.0.1:18080",
            "[::1]:80",
            "192.168.4.1",
            "192.168.4.1:80",
        ] {
            assert!(h.allows(ok, local), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "d3kos.local.evil.example",
            "192.168.4.2",
            "10.0.0.1:80",
            "127.0.0.2",
            "",
            ":80",
            "d3kos.local:http",
            "d3kos.local:80:80",
            "[::1",
            "[::1]x",
            "d3kos local",
            "d3kos.local/x",
        ] {
            assert!(!h.allows(bad, local), "{bad}");
        }
        assert!(
            !h.allows("192.168.4.1", None),
            "no connection, no own address"
        );
    }

    #[test]
    fn no_host_name_empty_or_bare_local() {
        let h = HostNames::new("", &[]);
        assert_eq!(h.names(), ["d3kos.local", "localhost"]);
    }
}
