//! Attempts at a secret (a password, the setup code) counted per client: a few wrong ones
//! are free, then each one more doubles the wait. One attempt per client is checked at a
//! time, taken and counted under one lock, so a burst of parallel guesses is one guess.
//! Clients never share a count: a stranger's guesses cannot lock out the owner, and the
//! helm screen has its own, milder count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::peer::{Peer, PeerKey};

/// How patient the device is with one client.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Wrong attempts before the first wait.
    pub free: u32,
    /// The first wait; each further wrong attempt doubles it.
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// A client quiet this long starts afresh.
    pub forget: Duration,
}

/// Clients on the boat's network: five free, then 30 s, 1, 2, 4, 8 and at most 15 minutes.
pub const NETWORK: Policy = Policy {
    free: 5,
    first_wait: Duration::from_secs(30),
    max_wait: Duration::from_secs(15 * 60),
    forget: Duration::from_secs(24 * 3600),
};

/// The helm screen: whoever stands at it has the device in hand already; a mistyped
/// password there costs seconds, never a locked helm.
pub const HELM: Policy = Policy {
    free: 10,
    first_wait: Duration::from_secs(5),
    max_wait: Duration::from_secs(60),
    forget: Duration::from_secs(3600),
};

/// Clients remembered at most; beyond it the longest quiet one is forgotten.
const MAX_CLIENTS: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many wrong attempts: wait this long.
    Wait(Duration),
    /// An attempt from this client is being checked now.
    InFlight,
}

#[derive(Debug, Default)]
struct Entry {
    failures: u32,
    in_flight: bool,
    blocked_until: Option<Instant>,
    last: Option<Instant>,
}

pub struct Throttle {
    network: Policy,
    helm: Policy,
    clients: Mutex<HashMap<PeerKey, Entry>>,
}

/// One attempt in progress. Dropped unsettled (the client hung up mid-check), it counts as
/// wrong: hanging up must not be a free guess.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    key: PeerKey,
    settled: bool,
}

impl Throttle {
    pub fn new(network: Policy, helm: Policy) -> Throttle {
        Throttle {
            network,
            helm,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn policy(&self, key: PeerKey) -> &Policy {
        if key == PeerKey::Helm {
            &self.helm
        } else {
            &self.network
        }
    }

    /// Takes an attempt for `peer`, or says why not.
    pub fn begin(&self, peer: &Peer, now: Instant) -> Result<Attempt<'_>, Refused> {
        let key = peer.key();
        let policy = *self.policy(key);
        let mut clients = self
            .clients
            .lock()
            .expect("the throttle lock is never poisoned");
        if !clients.contains_key(&key) && clients.len() >= MAX_CLIENTS {
            forget_one(&mut clients, now, &self.network);
        }
        let e = clients.entry(key).or_default();
        if e.last
            .is_some_and(|t| now.duration_since(t) >= policy.forget)
            && !e.in_flight
        {
            *e = Entry::default();
        }
        if e.in_flight {
            return Err(Refused::InFlight);
        }
        if let Some(until) = e.blocked_until
            && until > now
        {
            return Err(Refused::Wait(until - now));
        }
        e.in_flight = true;
        e.last = Some(now);
        Ok(Attempt {
            throttle: self,
            key,
            settled: false,
        })
    }

    fn settle(&self, key: PeerKey, right: bool, now: Instant) -> Option<Duration> {
        let policy = *self.policy(key);
        let mut clients = self
            .clients
            .lock()
            .expect("the throttle lock is never poisoned");
        let e = clients.entry(key).or_default();
        e.in_flight = false;
        e.last = Some(now);
        if right {
            clients.remove(&key);
            return None;
        }
        e.failures = e.failures.saturating_add(1);
        let over = e.failures.checked_sub(policy.free)?;
        let wait = policy
            .first_wait
            .saturating_mul(1u32 << over.min(20))
            .min(policy.max_wait);
        e.blocked_until = Some(now + wait);
        Some(wait)
    }
}

/// Forgets the client quiet longest, to keep the table bounded.
fn forget_one(clients: &mut HashMap<PeerKey, Entry>, now: Instant, policy: &Policy) {
    clients
        .retain(|_, e| e.in_flight || e.last.is_none_or(|t| now.duration_since(t) < policy.forget));
    if clients.len() < MAX_CLIENTS {
        return;
    }
    if let Some(oldest) = clients
        .iter()
        .filter(|(_, e)| !e.in_flight)
        .min_by_key(|(_, e)| e.last)
        .map(|(k, _)| *k)
    {
        clients.remove(&oldest);
    }
}

impl Attempt<'_> {
    /// The secret was right: the client's count starts afresh.
    pub fn right(mut self) {
        self.settled = true;
        self.throttle.settle(self.key, true, Instant::now());
    }

    /// The secret was wrong; returns the wait this puts on the client, if any.
    pub fn wrong(mut self) -> Option<Duration> {
        self.settled = true;
        self.throttle.settle(self.key, false, Instant::now())
    }

    /// Nothing was checked (the hashing pool was full): the attempt does not count.
    pub fn withdraw(mut self) {
        self.settled = true;
        let mut clients = self
            .throttle
            .clients
            .lock()
            .expect("the throttle lock is never poisoned");
        if let Some(e) = clients.get_mut(&self.key) {
            e.in_flight = false;
        }
    }

    #[cfg(test)]
    fn wrong_at(mut self, now: Instant) -> Option<Duration> {
        self.settled = true;
        self.throttle.settle(self.key, false, now)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(self.key, false, Instant::now());
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
    fn wrong_passwords_from_one_address_never_lock_out_another() {
        let t = Throttle::new(NETWORK, HELM);
        let now = Instant::now();
        let stranger = peer("192.168.4.66:40000");
        for _ in 0..50 {
            match t.begin(&stranger, now) {
                Ok(a) => {
                    a.wrong_at(now);
                }
                Err(Refused::Wait(_)) => {}
                Err(Refused::InFlight) => panic!("settled each time"),
            }
        }
        assert!(matches!(t.begin(&stranger, now), Err(Refused::Wait(_))));
        assert!(
            t.begin(&peer("192.168.4.20:50000"), now).is_ok(),
            "the owner's phone"
        );
        assert!(
            t.begin(&peer("127.0.0.1:50000"), now).is_ok(),
            "the helm screen"
        );
    }

    #[test]
    fn a_parallel_burst_is_one_guess_at_a_time() {
        let t = Throttle::new(NETWORK, HELM);
        let now = Instant::now();
        let p = peer("10.0.0.9:1");
        let first = t.begin(&p, now).unwrap();
        for _ in 0..447 {
            assert_eq!(t.begin(&p, now).err(), Some(Refused::InFlight));
        }
        first.wrong_at(now);
        assert!(t.begin(&p, now).is_ok());
    }

    #[test]
    fn waits_double_after_the_free_attempts_and_stop_at_the_cap() {
        let t = Throttle::new(NETWORK, HELM);
        let p = peer("10.0.0.9:1");
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..12 {
            let a = t.begin(&p, now).expect("the wait has passed");
            let w = a.wrong_at(now);
            waits.push(w.map(|w| w.as_secs()));
            now += w.unwrap_or_default();
        }
        assert_eq!(
            waits,
            [
                None,
                None,
                None,
                None,
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900),
                Some(900)
            ]
        );
        let a = t.begin(&p, now).unwrap();
        a.wrong_at(now);
        let soon = now + Duration::from_secs(60);
        assert_eq!(
            t.begin(&p, soon).err(),
            Some(Refused::Wait(Duration::from_secs(840)))
        );
    }

    #[test]
    fn a_right_secret_clears_the_count_and_a_hang_up_counts_as_wrong() {
        let t = Throttle::new(NETWORK, HELM);
        let p = peer("10.0.0.9:1");
        let now = Instant::now();
        for _ in 0..4 {
            drop(t.begin(&p, now).unwrap());
        }
        let w = t.begin(&p, now).unwrap().wrong();
        assert!(w.is_some(), "four hang-ups and a wrong answer make five");
        let t = Throttle::new(NETWORK, HELM);
        for _ in 0..4 {
            t.begin(&p, now).unwrap().wrong_at(now);
        }
        t.begin(&p, now).unwrap().right();
        for _ in 0..4 {
            assert_eq!(t.begin(&p, now).unwrap().wrong_at(now), None);
        }
        t.begin(&p, now).unwrap().withdraw();
        assert_eq!(
            t.begin(&p, now).unwrap().wrong_at(now).map(|w| w.as_secs()),
            Some(30)
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::new(NETWORK, HELM);
        let now = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            let p = Peer {
                addr: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
            };
            t.begin(&p, now).unwrap().wrong_at(now);
        }
        assert!(t.clients.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
