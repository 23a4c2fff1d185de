//! Which zone the boat is in, from what the sources say: the owner's choice, a GPS fix,
//! an IP-geolocation answer, or nothing (UTC); and the hysteresis that keeps a boat on a
//! boundary from flipping back and forth. Pure: times are passed in.
//!
//! The rule:
//! - The owner's choice (the override) always wins; clearing it falls back to the rest.
//! - Sources rank gps > internet > default. An answer from a better source than the one
//!   that made the decision is taken at once (a first fix after an internet answer).
//! - Any other answer naming a different zone only becomes *pending*. It is taken once
//!   that zone has been the answer for at least `hold_secs` and `hold_answers` answers in
//!   a row; one answer naming another zone (the current one included) starts the count
//!   again. Times without an answer (no fix) neither count nor reset.
//! - An answer naming the current zone keeps it, and records a better source if it is one.
//! - A decision stays until an answer replaces it, across restarts: a boat that loses its
//!   fix keeps the zone it was in.

use serde::{Deserialize, Serialize};

use super::locate::Position;

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Gps,
    Internet,
    Manual,
    /// The zone the owner gave Raspberry Pi Imager when writing the card: the default
    /// until any other source or the owner decides.
    Imager,
    Default,
}

impl Source {
    /// How far an automatic source is trusted: a position beats an address's location.
    fn rank(self) -> u8 {
        match self {
            Source::Default | Source::Imager => 0,
            Source::Internet => 1,
            Source::Gps => 2,
            Source::Manual => 3,
        }
    }
}

/// A zone, who decided it, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub zone: String,
    pub source: Source,
    /// Milliseconds since 1970 UTC.
    pub decided_at_ms: i64,
    /// The fix it was decided from (GPS only).
    pub position: Option<Position>,
}

/// One source's answer at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub zone: String,
    pub source: Source,
    pub at_ms: i64,
    pub position: Option<Position>,
}

/// A zone waiting out the hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pending {
    pub zone: String,
    pub source: Source,
    /// When it was first the answer, in this run.
    pub since_ms: i64,
    /// Answers in a row that named it.
    pub answers: u32,
    pub position: Option<Position>,
}

/// How long and how often a new zone must be the answer before it is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    pub hold_ms: i64,
    pub hold_answers: u32,
}

/// The automatic decision and what waits to replace it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decider {
    pub current: Option<Decision>,
    pub pending: Option<Pending>,
}

impl Decider {
    /// Takes `a` into account; `true` when the decision changed.
    pub fn answer(&mut self, a: Answer, rule: Hysteresis) -> bool {
        let adopt = |a: Answer| Decision {
            zone: a.zone,
            source: a.source,
            decided_at_ms: a.at_ms,
            position: a.position,
        };
        let Some(current) = &mut self.current else {
            self.pending = None;
            self.current = Some(adopt(a));
            return true;
        };
        let better = a.source.rank() > current.source.rank();
        if a.zone == current.zone {
            self.pending = None;
            if better {
                *current = adopt(a);
                return true;
            }
            return false;
        }
        if better {
            self.pending = None;
            *current = adopt(a);
            return true;
        }
        let pending = match &mut self.pending {
            Some(p) if p.zone == a.zone => {
                p.answers += 1;
                p.source = a.source;
                p.position = a.position;
                p
            }
            _ => self.pending.insert(Pending {
                zone: a.zone.clone(),
                source: a.source,
                since_ms: a.at_ms,
                answers: 1,
                position: a.position,
            }),
        };
        if pending.answers >= rule.hold_answers && a.at_ms - pending.since_ms >= rule.hold_ms {
            self.pending = None;
            *current = adopt(a);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const RULE: Hysteresis = Hysteresis {
        hold_ms: 10 * MIN,
        hold_answers: 3,
    };

    fn gps(zone: &str, at_ms: i64) -> Answer {
        Answer {
            zone: zone.into(),
            source: Source::Gps,
            at_ms,
            position: Some(Position {
                latitude: 48.58,
                longitude: 7.78,
            }),
        }
    }

    fn internet(zone: &str, at_ms: i64) -> Answer {
        Answer {
            zone: zone.into(),
            source: Source::Internet,
            at_ms,
            position: None,
        }
    }

    fn zone(d: &Decider) -> &str {
        &d.current.as_ref().unwrap().zone
    }

    #[test]
    fn a_boat_on_a_boundary_does_not_flip_back_and_forth() {
        // Moored on the Rhine between Strasbourg and Kehl: fixes every 30 s, alternating.
        let mut d = Decider::default();
        assert!(d.answer(gps("Europe/Paris", 0), RULE));
        for i in 1..200 {
            let side = if i % 2 == 1 {
                "Europe/Berlin"
            } else {
                "Europe/Paris"
            };
            assert!(!d.answer(gps(side, i * 30_000), RULE), "fix {i} flipped");
            assert_eq!(zone(&d), "Europe/Paris");
        }
        // Two fixes over, one back, two over: still never three in a row.
        for (i, side) in ["Europe/Berlin", "Europe/Berlin", "Europe/Paris"]
            .iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            d.answer(gps(side, 6_000_000 + i as i64 * 5 * MIN), RULE);
            assert_eq!(zone(&d), "Europe/Paris");
        }
    }

    #[test]
    fn a_new_zone_is_taken_after_it_held_long_enough_and_often_enough() {
        let mut d = Decider::default();
        d.answer(gps("Europe/Paris", 0), RULE);
        // Across the river, a fix a minute.
        for m in 1..=10 {
            assert!(!d.answer(gps("Europe/Berlin", m * MIN), RULE), "minute {m}");
            let p = d.pending.as_ref().unwrap();
            assert_eq!(
                (p.zone.as_str(), p.since_ms, p.answers),
                ("Europe/Berlin", MIN, m as u32)
            );
        }
        assert!(d.answer(gps("Europe/Berlin", 11 * MIN), RULE));
        let c = d.current.as_ref().unwrap();
        assert_eq!(
            (c.zone.as_str(), c.decided_at_ms),
            ("Europe/Berlin", 11 * MIN)
        );
        assert!(d.pending.is_none());
        // Ten minutes but only two answers is not enough either.
        d.answer(gps("Europe/Paris", 20 * MIN), RULE);
        assert!(!d.answer(gps("Europe/Paris", 40 * MIN), RULE));
        assert!(d.answer(gps("Europe/Paris", 41 * MIN), RULE));
    }

    #[test]
    fn a_better_source_is_taken_at_once_and_a_worse_one_waits() {
        let mut d = Decider::default();
        assert!(d.answer(internet("Europe/Berlin", 0), RULE));
        assert_eq!(d.current.as_ref().unwrap().source, Source::Internet);
        // The first fix replaces the address's guess at once.
        assert!(d.answer(gps("America/New_York", MIN), RULE));
        assert_eq!(zone(&d), "America/New_York");
        // The fix is lost; the address says Berlin again: it waits like any change.
        assert!(!d.answer(internet("Europe/Berlin", 61 * MIN), RULE));
        assert!(!d.answer(internet("Europe/Berlin", 121 * MIN), RULE));
        assert_eq!(zone(&d), "America/New_York");
        assert!(d.answer(internet("Europe/Berlin", 181 * MIN), RULE));
        assert_eq!(d.current.as_ref().unwrap().source, Source::Internet);
    }

    #[test]
    fn the_same_zone_from_a_better_source_records_the_source_and_resets_what_waits() {
        let mut d = Decider::default();
        d.answer(internet("Europe/Berlin", 0), RULE);
        d.answer(internet("Europe/Paris", MIN), RULE);
        assert!(d.pending.is_some());
        assert!(d.answer(gps("Europe/Berlin", 2 * MIN), RULE));
        let c = d.current.as_ref().unwrap();
        assert_eq!((c.source, c.decided_at_ms), (Source::Gps, 2 * MIN));
        assert!(c.position.is_some());
        assert!(d.pending.is_none());
        // The same zone from the same source changes nothing.
        assert!(!d.answer(gps("Europe/Berlin", 3 * MIN), RULE));
        assert_eq!(d.current.as_ref().unwrap().decided_at_ms, 2 * MIN);
    }
}
