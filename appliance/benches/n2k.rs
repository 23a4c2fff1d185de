//! NMEA 2000 decoding on one core: frames per second through the whole pipeline (fast
//! packets reassembled, every message decoded by canboat's database, Signal K paths made),
//! from frames already read and from candump text; and messages per second from canboat's
//! plain CSV. ci/bench-n2k then measures the daemon at bus rate.
//!
//! Usage: n2k CAPTURES_DIR [SECONDS]

use std::time::{Duration, Instant};

use appliance::n2k::capture::{Format, Reader, Record};
use appliance::n2k::ingest::Pipeline;

fn records(text: &[u8], format: Format) -> Vec<Record> {
    Reader::new(text, format).filter_map(Result::ok).collect()
}

/// Runs `pass` until `for_` is over; returns passes per second.
fn rate(for_: Duration, mut pass: impl FnMut()) -> f64 {
    pass(); // the database is parsed on first use, not measured
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_ {
        pass();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = std::path::PathBuf::from(args.first().expect("usage: n2k CAPTURES_DIR [SECONDS]"));
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let for_ = Duration::from_secs(secs);
    let mut candump = Vec::new();
    for name in [
        "candumpSample3.txt",
        "candumpSample2.txt",
        "candump-fast.txt",
        "helm.log",
    ] {
        let text = std::fs::read(dir.join(name)).unwrap();
        candump.extend_from_slice(&text);
        candump.push(b'\n');
    }
    let frames = records(&candump, Format::Candump);
    let n = frames.len() as f64;
    let mut paths = 0usize;
    let per_s = rate(for_, || {
        let mut pipe = Pipeline::new("bench");
        for r in &frames {
            pipe.feed(r.clone(), &mut |m, d| {
                paths += appliance::signalk::from_n2k::paths(m.pgn, d).len();
            });
        }
        std::hint::black_box(&pipe.status);
    });
    println!(
        "frames (read already) -> decoded + Signal K paths: {:.0} frames/s on one core ({} frames a pass)",
        per_s * n,
        frames.len()
    );
    let per_s = rate(for_, || {
        let mut pipe = Pipeline::new("bench");
        for r in &frames {
            pipe.feed(r.clone(), &mut |_, d| {
                std::hint::black_box(d);
            });
        }
    });
    println!(
        "frames (read already) -> decoded: {:.0} frames/s on one core",
        per_s * n
    );
    let per_s = rate(for_, || {
        let mut pipe = Pipeline::new("bench");
        for r in Reader::new(&candump[..], Format::Candump).flatten() {
            pipe.feed(r, &mut |_, d| {
                std::hint::black_box(d);
            });
        }
    });
    println!(
        "candump text -> decoded: {:.0} frames/s on one core",
        per_s * n
    );
    let plain = std::fs::read(dir.join("dirona-actisense-serial.raw")).unwrap();
    let messages = records(&plain, Format::Plain);
    let per_s = rate(for_, || {
        let mut pipe = Pipeline::new("bench");
        for r in &messages {
            pipe.feed(r.clone(), &mut |_, d| {
                std::hint::black_box(d);
            });
        }
    });
    println!(
        "plain messages (dirona, {} a pass) -> decoded: {:.0} messages/s on one core",
        messages.len(),
        per_s * messages.len() as f64
    );
    std::hint::black_box(paths);
}
