//! Position to time zone lookups on one core: the latency of the worker's own lookup
//! (`timezone::locate::zone_at`: the embedded boundary data, the nautical zone at sea, the
//! check against the tz database) over random positions on the globe and over the test
//! positions, as percentiles. ci/bench-timezone adds the binary size and the daemon's
//! memory.
//!
//! For the choice of finder, tzf-rs's other one (`DefaultFinder`, which unpacks the
//! polygons at open) is measured beside it: memory added, time to open, raw lookups.
//!
//! Usage: timezone [RANDOM_POSITIONS]

use std::time::Instant;

use appliance::timezone::locate::{Position, zone_at};

/// The integration test's positions (appliance/tests/timezone.rs): cities, oceans,
/// borders, the date line, the poles, lakes and harbours.
const TEST_POSITIONS: [(f64, f64); 46] = [
    (52.52, 13.405),
    (51.5074, -0.1278),
    (40.7128, -74.006),
    (35.6762, 139.6503),
    (-33.8688, 151.2093),
    (-33.9249, 18.4241),
    (-22.9068, -43.1729),
    (21.3069, -157.8583),
    (-36.8485, 174.7633),
    (19.076, 72.8777),
    (47.5615, -52.7126),
    (64.1466, -21.9426),
    (1.3521, 103.8198),
    (30.0, -40.0),
    (-30.0, -15.0),
    (30.0, -140.0),
    (20.0, 160.0),
    (-40.0, -120.0),
    (-20.0, 80.0),
    (-60.0, 90.0),
    (86.0, 30.0),
    (0.0, 179.5),
    (0.0, -179.5),
    (90.0, 0.0),
    (-90.0, 0.0),
    (-2.2, 33.0),
    (46.85, 17.75),
    (48.5818, 7.7509),
    (48.5722, 7.8156),
    (32.5149, -117.0382),
    (32.7157, -117.1611),
    (36.1408, -5.3536),
    (36.1681, -5.3476),
    (42.35, -83.1),
    (42.28, -83.0),
    (31.7619, -106.485),
    (31.6904, -106.4245),
    (52.342, 14.54),
    (52.351, 14.57),
    (-13.8333, -171.7667),
    (1.87, -157.43),
    (-18.1416, 178.4419),
    (-43.95, -176.56),
    (27.7172, 85.324),
    (33.4484, -112.074),
    (78.2232, 15.6267),
];

/// xorshift64*: the same positions on every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Uniform over the sphere's surface, not over the latitude: as a boat would be found.
fn random_positions(n: usize) -> Vec<Position> {
    let mut rng = Rng(0x0D3C_05B0_A7ED_2026);
    (0..n)
        .map(|_| {
            let lat = (2.0 * rng.unit() - 1.0).asin().to_degrees();
            let lon = 360.0 * rng.unit() - 180.0;
            Position::new(lat, lon).expect("on the globe")
        })
        .collect()
}

/// Each lookup timed alone, in nanoseconds, sorted.
fn latencies(positions: &[Position], rounds: usize) -> Vec<u64> {
    let mut ns = Vec::with_capacity(positions.len() * rounds);
    for _ in 0..rounds {
        for p in positions {
            let t = Instant::now();
            std::hint::black_box(zone_at(std::hint::black_box(*p)));
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    ns.sort_unstable();
    ns
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(what: &str, ns: &[u64]) {
    println!(
        "{what}: {} lookups; p50 {:.2} µs, p90 {:.2} µs, p99 {:.2} µs, max {:.1} µs",
        ns.len(),
        percentile(ns, 0.50),
        percentile(ns, 0.90),
        percentile(ns, 0.99),
        percentile(ns, 1.0),
    );
}

/// This process's resident memory, in kB (Linux).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rss = rss_kb();
    let t = Instant::now();
    let first = zone_at(Position::new(52.52, 13.405).unwrap());
    println!(
        "first lookup (opens the boundary data {}): {:.2} ms -> {}; resident memory +{:.1} MB",
        appliance::timezone::locate::data_version(),
        t.elapsed().as_secs_f64() * 1000.0,
        first.zone,
        (rss_kb() - rss) as f64 / 1024.0
    );
    let random = random_positions(n);
    let ns = latencies(&random, 1);
    report("random positions", &ns);
    let sea = random
        .iter()
        .filter(|p| zone_at(**p).zone.starts_with("Etc/"))
        .count();
    println!(
        "  of which at sea: {sea} ({:.0} %)",
        100.0 * sea as f64 / n as f64
    );
    let tests: Vec<Position> = TEST_POSITIONS
        .iter()
        .map(|&(lat, lon)| Position::new(lat, lon).unwrap())
        .collect();
    let ns = latencies(&tests, 1000);
    report("the test positions, 1,000 times each", &ns);
    println!(
        "resident memory after all lookups: {:.1} MB",
        rss_kb() as f64 / 1024.0
    );

    let rss = rss_kb();
    let t = Instant::now();
    let unpacked = tzf_rs::DefaultFinder::new();
    println!(
        "for comparison, tzf_rs::DefaultFinder: opens in {:.1} ms, resident memory +{:.1} MB",
        t.elapsed().as_secs_f64() * 1000.0,
        (rss_kb().saturating_sub(rss)) as f64 / 1024.0
    );
    let mut ns: Vec<u64> = random
        .iter()
        .map(|p| {
            let t = Instant::now();
            std::hint::black_box(unpacked.get_tz_name(p.longitude, p.latitude));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    report("  its raw lookups, random positions", &ns);
    let embedded = tzf_rs::EmbeddedFinder::new();
    let mut ns: Vec<u64> = random
        .iter()
        .map(|p| {
            let t = Instant::now();
            std::hint::black_box(embedded.get_tz_name(p.longitude, p.latitude));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    report("  EmbeddedFinder's raw lookups, random positions", &ns);
}
