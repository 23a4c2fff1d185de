//! Any bytes as a plain capture, read, reassembled, decoded and printed as canboat's
//! analyzer would: every line an answer or a counted skip, never a panic, every printed
//! line JSON.
#![no_main]

use appliance::n2k::capture::{Format, Reader};
use appliance::n2k::ingest::Pipeline;
use appliance::n2k::{Units, analyzer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pipe = Pipeline::in_units("fuzz", Units::Std);
    let mut lines = 0u64;
    let mut skipped = 0u64;
    for record in Reader::new(data, Format::Plain) {
        lines += 1;
        match record {
            Ok(r) => pipe.feed(r, &mut |m, d| {
                let line = analyzer::line(m, d);
                serde_json::from_str::<serde_json::Value>(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            }),
            Err(_) => {
                skipped += 1;
                pipe.skipped();
            }
        }
    }
    assert_eq!(pipe.status.skipped, skipped);
    assert!(skipped <= lines);
});
