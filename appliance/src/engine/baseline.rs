//! Recording a baseline: the mean and standard deviation of every metric of every
//! engine in each RPM band, over 10 to 60 minutes of running.

use std::collections::BTreeMap;

use super::monitor::Stats;
use super::{Band, Metric};

/// Shortest and longest recording, and the default (minutes).
pub const MIN_MINUTES: u32 = 10;
pub const MAX_MINUTES: u32 = 60;
pub const DEFAULT_MINUTES: u32 = 30;

/// Samples a band needs before its baseline is trusted.
pub const MIN_SAMPLES: u64 = 30;

/// Welford's running mean and variance: one pass, no samples kept.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn stats(&self) -> Stats {
        Stats {
            n: self.n,
            mean: self.mean,
            stddev: if self.n > 1 {
                (self.m2 / (self.n - 1) as f64).sqrt()
            } else {
                0.0
            },
        }
    }
}

/// A key of a baseline: engine, band and metric.
pub type Key = (String, Band, Metric);

/// A recording in progress.
#[derive(Debug, Clone)]
pub struct Recording {
    pub started_ms: i64,
    pub ends_ms: i64,
    acc: BTreeMap<Key, Running>,
}

impl Recording {
    pub fn new(started_ms: i64, minutes: u32) -> Recording {
        Recording {
            started_ms,
            ends_ms: started_ms + i64::from(minutes) * 60_000,
            acc: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, engine: &str, band: Band, metric: Metric, value: f64) {
        self.acc
            .entry((engine.to_owned(), band, metric))
            .or_default()
            .add(value);
    }

    pub fn done(&self, now_ms: i64) -> bool {
        now_ms >= self.ends_ms
    }

    /// The baselines of every band that had enough samples.
    pub fn finish(&self) -> Vec<(Key, Stats)> {
        self.acc
            .iter()
            .map(|(k, r)| (k.clone(), r.stats()))
            .filter(|(_, s)| s.n >= MIN_SAMPLES)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_stats_match_the_two_pass_formula() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut r = Running::default();
        xs.iter().for_each(|&x| r.add(x));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        let s = r.stats();
        assert_eq!(s.n, 8);
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.stddev - var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_band_with_too_few_samples_gets_no_baseline() {
        let mut rec = Recording::new(0, 10);
        for i in 0..40 {
            rec.add(
                "port",
                Band::Cruise,
                Metric::OilPressure,
                300_000.0 + f64::from(i),
            );
        }
        for _ in 0..5 {
            rec.add("port", Band::Idle, Metric::OilPressure, 150_000.0);
        }
        let got = rec.finish();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, ("port".into(), Band::Cruise, Metric::OilPressure));
        assert!(!rec.done(599_999) && rec.done(600_000));
    }
}
