//! Any line as a candump frame: an answer, never a panic; what is accepted is a frame of
//! at most 8 bytes whose identifier splits and joins back.
#![no_main]

use appliance::n2k::capture::candump;
use appliance::n2k::frame::CanId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = candump(&text, 1, || 0) {
        assert!(f.payload().len() <= 8);
        let id = CanId::parse(f.id);
        assert!(id.prio <= 7);
        // PDU2 and PDU1 both join back to the same 29 bits (data page kept, EDP dropped).
        assert_eq!(id.raw(), f.id & 0x1DFF_FFFF);
    }
});
