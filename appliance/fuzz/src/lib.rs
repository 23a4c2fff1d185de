//! What the fuzz targets share: one capture check, run by a target per capture format.

use appliance::n2k::capture::{Format, Reader};
use appliance::n2k::ingest::Pipeline;
use appliance::n2k::{Units, analyzer};

/// Any bytes as a capture in `format`, read, reassembled, decoded and printed as canboat's
/// analyzer would: every line an answer or a counted skip, never a panic, every printed
/// line JSON.
pub fn check_capture(data: &[u8], format: Format) {
    let mut pipe = Pipeline::in_units("fuzz", Units::Std);
    let mut lines = 0u64;
    let mut skipped = 0u64;
    for record in Reader::new(data, format) {
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
}
