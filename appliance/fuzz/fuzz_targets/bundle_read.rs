//! Any manifest and payload, signed by a trusted key, read as the device reads a bundle:
//! an answer, never a panic, and no block handed on that the manifest does not vouch for.
//!
//! The input is a 4-byte little-endian manifest length, the manifest, then the payload. The
//! manifest is signed here, so the fuzzer reaches everything after the signature check (a
//! hostile payload behind a good signature is what a stolen key would send).
#![no_main]

use std::sync::OnceLock;

use appliance::bundle::{BundleError, Keys, Opened, write_bundle};
use libfuzzer_sys::fuzz_target;
use sha2::Digest;

fn key() -> &'static (Keys, minisign::SecretKey) {
    static KEY: OnceLock<(Keys, minisign::SecretKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let mut keys = Keys::default();
        keys.add_text(&pair.pk.to_base64(), std::path::Path::new("fuzz"))
            .unwrap();
        (keys, pair.sk)
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = (u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize).min(data.len() - 4);
    let (manifest, payload) = data[4..].split_at(n);
    let (keys, sk) = key();
    let sig = minisign::sign(None, sk, manifest, Some("fuzz"), None)
        .unwrap()
        .into_string();
    let mut bundle = Vec::new();
    // The writer checks the manifest and the payload's length; a bundle it refuses is
    // written by hand, as a forger would.
    if write_bundle(&mut bundle, manifest, &sig, &mut &payload[..]).is_err() {
        bundle.clear();
        bundle.extend_from_slice(b"D3KB\x00\x01\r\n");
        bundle.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
        bundle.extend_from_slice(&(sig.len() as u32).to_le_bytes());
        bundle.extend_from_slice(manifest);
        bundle.extend_from_slice(sig.as_bytes());
        bundle.extend_from_slice(payload);
    }
    let Ok(opened) = Opened::open(&bundle[..], keys) else {
        return;
    };
    let m = opened.manifest().clone();
    let _ = opened.unpack(
        |_| true,
        |b| -> Result<(), BundleError> {
            // Every block handed on is the one the manifest vouches for.
            let want = &b.image.blocks[b.index as usize];
            assert_eq!(&hex(&sha2::Sha256::digest(b.bytes)), want);
            assert!(b.offset + b.bytes.len() as u64 <= b.image.size);
            assert!(m.images.iter().any(|i| i.name == b.image.name));
            Ok(())
        },
    );
});

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
