//! Fills a boat log with a million entries and measures how fast entries go in: in
//! batches (an import) and one durable commit at a time (what each entry the crew writes
//! costs). ci/bench-boatlog then serves the filled log with d3kosd.
//!
//! Usage: boatlog STATE_DIR [ENTRIES]

use std::time::Instant;

use appliance::boatlog::{Boatlog, Kind, NewEntry};

const WORDS: &str = "wind sea engine oil coolant rpm course heading anchor harbour tide swell \
                     reef jib main fuel bilge watch fog ⚓ \"gusts\" 40,5 Fähre";

/// Entries a minute apart ending now, with texts of 4 to 20 words, positions along a
/// coast and engine hours that grow.
fn entry(i: u64, n: u64, now: i64, seed: &mut u64) -> NewEntry {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let words = 4 + next() % 17;
    let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
    let text: Vec<&str> = (0..words)
        .map(|_| vocabulary[(next() % vocabulary.len() as u64) as usize])
        .collect();
    let kind = match next() % 10 {
        0 => Kind::Auto,
        1 => Kind::Voice,
        _ => Kind::Text,
    };
    NewEntry {
        at: now - ((n - i) as i64) * 60_000,
        kind: Some(kind),
        text: text.join(" "),
        author: if kind == Kind::Auto {
            "d3kOS"
        } else {
            "skipper"
        }
        .into(),
        latitude: Some(54.0 + (i % 1000) as f64 / 1000.0),
        longitude: Some(10.0 + (i % 700) as f64 / 1000.0),
        engine_hours: Some(i as f64 / 60.0),
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let dir = std::path::PathBuf::from(args.next().expect("usage: boatlog STATE_DIR [ENTRIES]"));
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let log = Boatlog::in_state(&dir);
    let now = appliance::time::unix_now_ms();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let batch = 10_000;
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let entries: Vec<NewEntry> = (i..end).map(|k| entry(k, n, now, &mut seed)).collect();
        log.add_many(&entries).unwrap();
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "boatlog bench: {n} entries in batches of {batch}: {secs:.1} s, {:.0} entries/s",
        n as f64 / secs
    );
    let single = 2_000;
    let t = Instant::now();
    for k in 0..single {
        log.add(&entry(k, single, now + 60_000, &mut seed)).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "boatlog bench: {single} entries one at a time (each its own durable commit, as the API writes them): {secs:.1} s, {:.0} entries/s",
        single as f64 / secs
    );
    let size = std::fs::metadata(log.path()).unwrap().len();
    println!(
        "boatlog bench: {} entries, database {:.1} MiB",
        log.count().unwrap(),
        size as f64 / (1 << 20) as f64
    );
}
