//! Any bytes as a backup archive, through the reader that verify, upload and restore use:
//! refused or read, never a panic, never more than the limit unpacked. The first byte
//! chooses whether the rest is the file itself (a gzip stream) or a tar stream the
//! harness compresses first, so that the tar and manifest checks are reached as often as
//! the gzip ones.
#![no_main]

use std::io::Write;
use std::path::Path;

use appliance::backup::read::{self, Discard};
use appliance::backup::{BackupError, BackupId, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).unwrap();
        gz.finish().unwrap()
    };
    let id = BackupId::parse("d3kos_backup_20261129_083000").unwrap();
    let limits = Limits {
        max_total_bytes: 1 << 20,
    };
    match read::read_from(
        &file[..],
        Path::new("fuzzed.tar.gz"),
        &id,
        None,
        &limits,
        &mut Discard(None),
    ) {
        Ok((m, sha256)) => {
            assert!(m.total_bytes <= limits.max_total_bytes);
            assert_eq!(sha256.len(), 64);
        }
        Err(BackupError::Corrupt { .. }) => {}
        Err(e) => panic!("an archive in memory can only be corrupt, not: {e}"),
    }
});
