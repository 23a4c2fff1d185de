//! Any sequence of frames into the fast-packet reassembler and the decoder: never a panic,
//! never a message longer than 223 bytes or longer than its first frame said, and no
//! more partial messages kept than the bound.
#![no_main]

use appliance::n2k::fast::{MAX_LEN, Reassembler, Step};
use appliance::n2k::frame::{CanId, Frame};
use appliance::n2k::{Database, Units, decode};
use libfuzzer_sys::fuzz_target;

/// A handful of real fast-packet PGNs and a proprietary one.
const PGNS: [u32; 4] = [127_489, 129_029, 130_824, 126_720];

fuzz_target!(|data: &[u8]| {
    let db = Database::get();
    let mut r = Reassembler::new();
    let mut at = 0i64;
    for chunk in data.chunks(10) {
        if chunk.len() < 2 {
            break;
        }
        let id = CanId {
            prio: 2,
            pgn: PGNS[usize::from(chunk[0] & 3)],
            src: chunk[0] >> 6,
            dst: 255,
        };
        at += i64::from(chunk[1]) * 10;
        let Some(f) = Frame::new(at, id.raw(), &chunk[2..]) else {
            continue;
        };
        if let Step::Done(m) = r.push(&f) {
            assert!(m.data.len() <= MAX_LEN);
            let _ = decode(db, &m, Units::Si);
            let _ = decode(db, &m, Units::Std);
        }
        assert!(r.in_progress() <= 512);
    }
});
