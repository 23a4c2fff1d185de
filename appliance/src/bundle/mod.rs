//! The update bundle (`.d3kb`): the one contract between the builder that writes it and the
//! appliance that installs it.
//!
//! A bundle is read front to back, so it installs from a file, an upload or a download
//! without being stored first. All integers are little endian:
//!
//! | bytes | what                                                                 |
//! |-------|----------------------------------------------------------------------|
//! | 8     | [`MAGIC`]: `D3KB`, format 1                                          |
//! | 4     | manifest length M, at most [`MANIFEST_MAX`]                          |
//! | 4     | signature length S, at most [`SIGNATURE_MAX`]                        |
//! | M     | the manifest, JSON ([`Manifest`])                                    |
//! | S     | a minisign signature of the manifest's bytes                         |
//! | rest  | the payload: one zstd frame holding each image's bytes in manifest order |
//!
//! The signed manifest names the payload's compressed size and SHA-256 and a SHA-256 for
//! every fixed-size block of every image, so the signature is checked before anything is
//! read further and each block is checked before it is handed on to be written.

mod manifest;
mod read;
mod trust;
pub mod write;

pub use manifest::{Image, Manifest, Payload, Version};
pub use read::{Block, Opened, check_file};
pub use trust::{KeyId, Keys, decode_base64};
pub use write::{Packed, pack, write_bundle};

use std::path::PathBuf;

/// The first bytes of every bundle: the name, a zero, the format, and a CR LF that a text
/// transfer would mangle (as PNG's signature does).
pub const MAGIC: [u8; 8] = *b"D3KB\x00\x01\r\n";
pub const FORMAT: u32 = 1;
/// The manifest of a 16 GiB image in 64 KiB blocks stays below this.
pub const MANIFEST_MAX: u32 = 32 << 20;
pub const SIGNATURE_MAX: u32 = 4096;
/// The block size the builder uses: large enough that hashing and writing stream, small
/// enough that a bad byte is caught before more than this is written after the last check.
pub const BLOCK_SIZE: u32 = 1 << 20;
/// zstd's window for the payload: the slot-b boot image repeats the slot-a one but for its
/// cmdline.txt, and a window this long finds it (the decoder must allow the same).
pub const WINDOW_LOG: u32 = 27;
/// Where an image keeps the public keys it trusts to sign its updates (`*.pub`).
pub const KEYS_DIR: &str = "/usr/share/d3kos/update-keys";
/// The file name extension.
pub const EXTENSION: &str = "d3kb";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a d3kOS update bundle: it does not start with the bundle's magic bytes")]
    NotABundle,
    #[error("the bundle is format {found}; this system reads format {FORMAT}: update in steps")]
    Format { found: u32 },
    #[error("the bundle ends early: {what} is cut off after {got} bytes (truncated download?)")]
    Truncated { what: &'static str, got: u64 },
    #[error("the bundle's {what} is {found} bytes; at most {max} is allowed")]
    TooLarge {
        what: &'static str,
        found: u64,
        max: u64,
    },
    #[error("the bundle's signature cannot be read: {0}")]
    SignatureUnreadable(String),
    #[error(
        "the bundle is signed by key {found}, which this system does not trust (trusted: {trusted})"
    )]
    UntrustedKey { found: KeyId, trusted: String },
    #[error("the bundle's signature by key {key} does not match its manifest: it was altered")]
    BadSignature { key: KeyId },
    #[error("no trusted update key: this system cannot accept any bundle ({0})")]
    NoKeys(String),
    #[error("the trusted key {path} cannot be read: {why}")]
    Key { path: PathBuf, why: String },
    #[error("the bundle's manifest is not valid: {0}")]
    Manifest(String),
    #[error(
        "{image} block {block} (bytes {offset}..) has SHA-256 {found}, the signed manifest says {expected}: the bundle is damaged"
    )]
    Block {
        image: String,
        block: u64,
        offset: u64,
        expected: String,
        found: String,
    },
    #[error(
        "the payload is {found_size} bytes with SHA-256 {found}; the signed manifest says {expected_size} bytes with {expected}: the bundle is damaged"
    )]
    Payload {
        expected_size: u64,
        found_size: u64,
        expected: String,
        found: String,
    },
    #[error("the payload cannot be unpacked ({0}): the bundle is damaged")]
    Unpack(std::io::Error),
    #[error("reading the bundle: {0}")]
    Read(std::io::Error),
}

/// Signed bundles for the tests of this module and of the update concern.
#[cfg(test)]
pub(crate) mod testing {
    use super::write::Input;
    use super::*;
    use crate::layout::{Role, Slot};

    pub struct Signed {
        pub bundle: Vec<u8>,
        pub keys: Keys,
        /// Boot a, boot b, system.
        pub images: Vec<Vec<u8>>,
        /// Where the payload starts.
        pub header: usize,
    }

    /// A fresh key pair: the trusted keys and the secret key.
    pub fn key() -> (Keys, minisign::SecretKey) {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let mut keys = Keys::default();
        keys.add_text(&pair.pk.to_base64(), std::path::Path::new("test"))
            .unwrap();
        (keys, pair.sk)
    }

    /// Bytes that compress a little, from a seed.
    pub fn image(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i / 7) as u8).wrapping_mul(seed) ^ (i as u8 >> 3))
            .collect()
    }

    pub fn bundle_of(
        images: &[Vec<u8>; 3],
        version: &str,
        board: &str,
        sk: &minisign::SecretKey,
    ) -> (Vec<u8>, usize) {
        let names = [
            ("boot-a", Role::Boot, Some(Slot::A)),
            ("boot-b", Role::Boot, Some(Slot::B)),
            ("system", Role::System, None),
        ];
        let mut readers: Vec<&[u8]> = images.iter().map(|i| &i[..]).collect();
        let mut inputs: Vec<Input> = names
            .iter()
            .zip(readers.iter_mut())
            .map(|(&(name, role, slot), reader)| Input {
                name: name.into(),
                role,
                slot,
                reader,
            })
            .collect();
        let mut payload = Vec::new();
        let packed = pack(&mut inputs, 4096, 3, 1, &mut payload).unwrap();
        let manifest = Manifest {
            format: FORMAT,
            product: "d3kOS".into(),
            version: version.into(),
            board: board.into(),
            compatible: format!("d3kOS/{board}"),
            created: 0,
            block_size: 4096,
            payload: packed.payload,
            images: packed.images,
        };
        let text = serde_json::to_vec(&manifest).unwrap();
        let sig = minisign::sign(None, sk, &text[..], Some("d3kOS test"), None)
            .unwrap()
            .into_string();
        let mut out = Vec::new();
        write_bundle(&mut out, &text, &sig, &mut &payload[..]).unwrap();
        let header = 16 + text.len() + sig.len();
        (out, header)
    }

    pub fn signed() -> Signed {
        let (keys, sk) = key();
        let images = [image(3, 20_000), image(5, 20_000), image(7, 70_001)];
        let (bundle, header) = bundle_of(&images, "2.0", "qemu-amd64", &sk);
        Signed {
            bundle,
            keys,
            images: images.to_vec(),
            header,
        }
    }
}
