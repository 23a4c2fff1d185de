//! Any bytes as a bundle's manifest: an answer, never a panic; what is accepted is
//! consistent (a hash per block) and reads back as itself.
#![no_main]

use appliance::bundle::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        for im in &m.images {
            assert_eq!(
                im.blocks.len() as u64,
                im.size.div_ceil(u64::from(m.block_size))
            );
        }
        let again = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }
});
