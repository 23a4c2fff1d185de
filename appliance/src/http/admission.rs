//! How many connections may be open at once: a cap for the network kept below the file
//! descriptor limit, a smaller one per client, and room set aside for the helm screen, so
//! that no crowd of open sockets can keep the helm from its own device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::ServerConfig;
use crate::peer::{Peer, PeerKey};

/// Descriptors kept for everything but connections: state files, databases, backups
/// being written, the listening socket, systemctl and its pipes.
const OTHER_DESCRIPTORS: u64 = 128;

/// The caps, in connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// All clients but the helm screen together.
    pub network: usize,
    /// One client (an IPv4 address, an IPv6 /64).
    pub per_client: usize,
    /// The helm screen's own room.
    pub helm: usize,
}

impl Caps {
    /// The configured caps, lowered to fit within `descriptors` (the process's open-file
    /// limit) with room for everything else.
    pub fn fitted(config: &ServerConfig, descriptors: u64) -> Caps {
        let budget = descriptors.saturating_sub(OTHER_DESCRIPTORS) as usize;
        let helm = config.helm_connections.min(budget / 4).max(1);
        let network = config
            .max_connections
            .min(budget.saturating_sub(helm))
            .max(1);
        Caps {
            network,
            per_client: config.max_connections_per_client.clamp(1, network),
            helm,
        }
    }

    /// Fitted to this process's soft limit on open files.
    pub fn for_this_process(config: &ServerConfig) -> Caps {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Caps::fitted(config, limit)
    }
}

#[derive(Default)]
struct Counts {
    network: usize,
    helm: usize,
    per_client: HashMap<PeerKey, usize>,
}

pub struct Admission {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// An open connection's place; given back when dropped.
pub struct Admitted {
    admission: Arc<Admission>,
    key: PeerKey,
}

impl Admission {
    pub fn new(caps: Caps) -> Arc<Admission> {
        Arc::new(Admission {
            caps,
            counts: Mutex::default(),
        })
    }

    /// A place for a new connection from `peer`, or `None` when its cap is reached.
    pub fn admit(self: &Arc<Self>, peer: &Peer) -> Option<Admitted> {
        let key = peer.key();
        let mut c = self
            .counts
            .lock()
            .expect("the admission lock is never poisoned");
        if key == PeerKey::Helm {
            if c.helm >= self.caps.helm {
                return None;
            }
            c.helm += 1;
        } else {
            let mine = c.per_client.get(&key).copied().unwrap_or(0);
            if c.network >= self.caps.network || mine >= self.caps.per_client {
                return None;
            }
            c.network += 1;
            c.per_client.insert(key, mine + 1);
        }
        Some(Admitted {
            admission: self.clone(),
            key,
        })
    }

    /// Connections open now: (network, helm).
    pub fn open(&self) -> (usize, usize) {
        let c = self
            .counts
            .lock()
            .expect("the admission lock is never poisoned");
        (c.network, c.helm)
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self
            .admission
            .counts
            .lock()
            .expect("the admission lock is never poisoned");
        if self.key == PeerKey::Helm {
            c.helm -= 1;
        } else {
            c.network -= 1;
            if let Some(n) = c.per_client.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    c.per_client.remove(&self.key);
                }
            }
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
    fn caps_fit_below_the_descriptor_limit() {
        let config = ServerConfig::default();
        let c = Caps::fitted(&config, 1024);
        assert!(
            c.network + c.helm <= 1024 - OTHER_DESCRIPTORS as usize,
            "{c:?}"
        );
        assert_eq!(c.helm, config.helm_connections);
        let c = Caps::fitted(&config, 4096);
        assert_eq!(c.network, config.max_connections, "the configured cap fits");
        let tiny = Caps::fitted(&config, 200);
        assert!(tiny.network + tiny.helm <= 72 && tiny.helm >= 1, "{tiny:?}");
    }

    #[test]
    fn a_crowd_of_sockets_leaves_room_for_the_helm_and_other_clients() {
        let a = Admission::new(Caps {
            network: 10,
            per_client: 4,
            helm: 2,
        });
        let one = peer("192.168.4.66:1");
        let held: Vec<_> = (0..4).map(|_| a.admit(&one).unwrap()).collect();
        assert!(a.admit(&one).is_none(), "one client's cap");
        let others: Vec<_> = (0..6)
            .map(|i| a.admit(&peer(&format!("192.168.4.{}:1", 100 + i))).unwrap())
            .collect();
        assert!(
            a.admit(&peer("192.168.4.99:1")).is_none(),
            "the network cap"
        );
        let helm: Vec<_> = (0..2)
            .map(|_| a.admit(&peer("127.0.0.1:1")).unwrap())
            .collect();
        assert!(a.admit(&peer("[::1]:1")).is_none(), "the helm's own cap");
        assert_eq!(a.open(), (10, 2));
        drop(held);
        drop(helm);
        assert_eq!(a.open(), (6, 0));
        assert!(a.admit(&one).is_some(), "places come back");
        drop(others);
    }
}
