//! Any text as a backup id: an answer, never a panic; what is accepted names a real time
//! and reads back as itself.
#![no_main]

use appliance::backup::BackupId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = BackupId::parse(&text) {
        assert_eq!(id.as_str(), text);
        let civil = appliance::time::civil(id.unix());
        assert!((1..=12).contains(&civil.month));
    }
});
