//! Reading a bundle front to back: the signature checked before the manifest is believed,
//! every block checked before it is handed on, the payload's hash checked at its end.

use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::write::fill;
use super::{BundleError, Image, KeyId, Keys, MAGIC, MANIFEST_MAX, Manifest, SIGNATURE_MAX};
use crate::digest::Hashing;

/// A bundle whose signature and manifest have been checked; its payload not yet read.
pub struct Opened<R> {
    manifest: Manifest,
    signer: KeyId,
    header_len: u64,
    reader: R,
}

/// One checked block of an image.
pub struct Block<'a> {
    pub image: &'a Image,
    pub index: u64,
    pub offset: u64,
    pub bytes: &'a [u8],
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<(), BundleError> {
    let n = fill(r, buf).map_err(BundleError::Read)?;
    if n < buf.len() {
        return Err(BundleError::Truncated {
            what,
            got: n as u64,
        });
    }
    Ok(())
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl<R: Read> Opened<R> {
    /// Reads the header and manifest and checks the signature with `keys`, then the
    /// manifest; nothing of the payload is read.
    pub fn open(mut reader: R, keys: &Keys) -> Result<Opened<R>, BundleError> {
        let mut head = [0u8; 16];
        let n = fill(&mut reader, &mut head).map_err(BundleError::Read)?;
        if n < 8 || head[..8] != MAGIC {
            // A bundle of a later format keeps the name: say so rather than "not a bundle".
            if n >= 8 && head[..5] == MAGIC[..5] && head[6..8] == MAGIC[6..8] {
                return Err(BundleError::Format {
                    found: u32::from(head[5]),
                });
            }
            return Err(if n < 8 && head[..n] == MAGIC[..n] && n > 0 {
                BundleError::Truncated {
                    what: "header",
                    got: n as u64,
                }
            } else {
                BundleError::NotABundle
            });
        }
        if n < 16 {
            return Err(BundleError::Truncated {
                what: "header",
                got: n as u64,
            });
        }
        let (m_len, s_len) = (u32_at(&head[8..]), u32_at(&head[12..]));
        for (what, len, max) in [
            ("manifest", m_len, MANIFEST_MAX),
            ("signature", s_len, SIGNATURE_MAX),
        ] {
            if len > max {
                return Err(BundleError::TooLarge {
                    what,
                    found: len.into(),
                    max: max.into(),
                });
            }
        }
        let mut manifest = vec![0u8; m_len as usize];
        read_exact(&mut reader, &mut manifest, "manifest")?;
        let mut signature = vec![0u8; s_len as usize];
        read_exact(&mut reader, &mut signature, "signature")?;
        let signature = String::from_utf8(signature)
            .map_err(|_| BundleError::SignatureUnreadable("not text".into()))?;
        let signer = keys.verify(&manifest, &signature)?;
        let manifest = Manifest::parse(&manifest)?;
        Ok(Opened {
            manifest,
            signer,
            header_len: 16 + u64::from(m_len) + u64::from(s_len),
            reader,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn signer(&self) -> KeyId {
        self.signer
    }

    /// The bytes before the payload.
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// Unpacks the payload. Each block of an image `wanted` says yes to is checked against
    /// the manifest and only then given to `sink`; the other images are unpacked and
    /// dropped. At the end the payload's size and hash are checked, and that nothing
    /// follows it. The first error stops the unpacking: no later block reaches `sink`.
    pub fn unpack<E: From<BundleError>>(
        self,
        wanted: impl Fn(&Image) -> bool,
        mut sink: impl FnMut(Block) -> Result<(), E>,
    ) -> Result<(), E> {
        let Opened {
            manifest,
            mut reader,
            ..
        } = self;
        let size = manifest.payload.size;
        let hashing = Hashing::new((&mut reader).take(size));
        let mut dec = zstd::stream::read::Decoder::with_buffer(BufReader::new(hashing))
            .map_err(BundleError::Unpack)?
            .single_frame();
        dec.window_log_max(super::WINDOW_LOG)
            .map_err(BundleError::Unpack)?;
        let bs = manifest.block_size as usize;
        let mut buf = vec![0u8; bs];
        let unpack_err = |e: io::Error, got: u64| -> BundleError {
            use io::ErrorKind::*;
            match e.kind() {
                UnexpectedEof => BundleError::Truncated {
                    what: "payload",
                    got,
                },
                // The source failed (a download that stalled or broke off), not the bundle.
                TimedOut | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected => {
                    BundleError::Read(e)
                }
                _ => BundleError::Unpack(e),
            }
        };
        for image in &manifest.images {
            let want = wanted(image);
            for (index, expected) in image.blocks.iter().enumerate() {
                let offset = index as u64 * bs as u64;
                let len = (image.size - offset).min(bs as u64) as usize;
                let got = fill(&mut dec, &mut buf[..len]).map_err(|e| unpack_err(e, offset))?;
                if got < len {
                    return Err(BundleError::Truncated {
                        what: "payload",
                        got: dec.get_ref().get_ref().passed(),
                    }
                    .into());
                }
                if !want {
                    continue;
                }
                let found = hex::encode(Sha256::digest(&buf[..len]));
                if &found != expected {
                    return Err(BundleError::Block {
                        image: image.name.clone(),
                        block: index as u64,
                        offset,
                        expected: expected.clone(),
                        found,
                    }
                    .into());
                }
                sink(Block {
                    image,
                    index: index as u64,
                    offset,
                    bytes: &buf[..len],
                })?;
            }
        }
        // Nothing may follow the images inside the frame...
        let mut one = [0u8; 1];
        if fill(&mut dec, &mut one).map_err(BundleError::Unpack)? != 0 {
            return Err(BundleError::Manifest(
                "the payload holds more than the manifest's images".into(),
            )
            .into());
        }
        // ...and the compressed bytes are exactly the signed ones, with none after them.
        let mut rest = dec.finish();
        io::copy(&mut rest, &mut io::sink()).map_err(BundleError::Read)?;
        let (_, found_size, found) = rest.into_inner().into_parts();
        let trailing = fill(&mut reader, &mut one).map_err(BundleError::Read)?;
        if found != manifest.payload.sha256 || found_size != size || trailing != 0 {
            return Err(BundleError::Payload {
                expected_size: size,
                found_size: found_size + trailing as u64,
                expected: manifest.payload.sha256.clone(),
                found,
            }
            .into());
        }
        Ok(())
    }
}

/// A bundle file checked whole before anything is written: signature, manifest, length and
/// the payload's hash (cheap beside unpacking). What install from a file starts with, so a
/// damaged or cut file is refused before the slot is touched.
pub fn check_file(path: &Path, keys: &Keys) -> Result<(Manifest, KeyId), BundleError> {
    let file = std::fs::File::open(path).map_err(BundleError::Read)?;
    let len = file.metadata().map_err(BundleError::Read)?.len();
    let opened = Opened::open(BufReader::with_capacity(1 << 20, file), keys)?;
    let want = opened.header_len + opened.manifest.payload.size;
    if len < want {
        return Err(BundleError::Truncated {
            what: "payload",
            got: len - opened.header_len,
        });
    }
    let Opened {
        manifest,
        signer,
        reader,
        ..
    } = opened;
    let mut hashing = Hashing::new(reader);
    io::copy(&mut hashing, &mut io::sink()).map_err(BundleError::Read)?;
    let (_, found_size, found) = hashing.into_parts();
    if found_size != manifest.payload.size || found != manifest.payload.sha256 {
        return Err(BundleError::Payload {
            expected_size: manifest.payload.size,
            found_size,
            expected: manifest.payload.sha256.clone(),
            found,
        });
    }
    Ok((manifest, signer))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Signed, key, signed};
    use super::*;
    use crate::layout::{Role, Slot};

    fn collect(
        bundle: &[u8],
        keys: &Keys,
        slot: Slot,
    ) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
        let opened = Opened::open(bundle, keys)?;
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        opened.unpack(
            |im| im.slot.is_none() || im.slot == Some(slot),
            |b: Block| -> Result<(), BundleError> {
                match out.last_mut() {
                    Some((name, bytes)) if *name == b.image.name => {
                        bytes.extend_from_slice(b.bytes)
                    }
                    _ => out.push((b.image.name.clone(), b.bytes.to_vec())),
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    #[test]
    fn a_signed_bundle_unpacks_to_its_images() {
        let Signed {
            bundle,
            keys,
            images,
            ..
        } = signed();
        let got = collect(&bundle, &keys, Slot::B).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("boot-b".to_owned(), images[1].clone()));
        assert_eq!(got[1], ("system".to_owned(), images[2].clone()));
        let opened = Opened::open(&bundle[..], &keys).unwrap();
        let m = opened.manifest();
        assert_eq!(
            m.image(Role::Boot, Some(Slot::A)).unwrap().size,
            images[0].len() as u64
        );
        assert_eq!(m.images[2].blocks.len(), images[2].len().div_ceil(4096));
    }

    #[test]
    fn another_key_is_refused_before_the_manifest_is_read() {
        let Signed { bundle, .. } = signed();
        let (other, _) = key();
        let err = Opened::open(&bundle[..], &other).err().unwrap();
        assert!(matches!(err, BundleError::UntrustedKey { .. }), "{err}");
        assert!(err.to_string().contains("does not trust"), "{err}");
    }

    #[test]
    fn a_source_that_stalls_is_said_to_have_failed_not_the_bundle_to_be_damaged() {
        let Signed {
            bundle,
            keys,
            header,
            ..
        } = signed();
        let half = header + (bundle.len() - header) / 2;
        let stalled = (&bundle[..half]).chain(Stalls);
        let opened = Opened::open(stalled, &keys).unwrap();
        let e = opened
            .unpack(|_| true, |_: Block| Ok::<(), BundleError>(()))
            .unwrap_err();
        assert!(matches!(e, BundleError::Read(_)), "{e}");
        assert!(!e.to_string().contains("damaged"), "{e}");
    }

    /// A source whose next read times out.
    struct Stalls;

    impl Read for Stalls {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::TimedOut, "timeout: per read"))
        }
    }

    #[test]
    fn every_flipped_byte_is_refused_and_no_block_after_it_is_handed_on() {
        let Signed {
            bundle,
            keys,
            header,
            ..
        } = signed();
        // Each byte of the header, manifest and signature, and a spread of payload bytes;
        // not the signature's first line, minisign's "untrusted comment", which nothing signs.
        let m_len = u32_at(&bundle[8..]) as usize;
        let comment = 16 + m_len
            ..16 + m_len
                + bundle[16 + m_len..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap();
        let payload: Vec<usize> = (header..bundle.len()).step_by(97).collect();
        for at in (0..header)
            .filter(|at| !comment.contains(at))
            .chain(payload)
        {
            let mut bad = bundle.clone();
            bad[at] ^= 0x01;
            let mut handed = 0u64;
            let result = Opened::open(&bad[..], &keys).and_then(|o| {
                o.unpack(
                    |_| true,
                    |_| -> Result<(), BundleError> {
                        handed += 1;
                        Ok(())
                    },
                )
            });
            let err = result
                .err()
                .unwrap_or_else(|| panic!("byte {at} flipped was accepted"));
            if at < header {
                assert_eq!(handed, 0, "byte {at}: {err}");
            }
            let said = err.to_string();
            assert!(!said.is_empty());
        }
    }

    #[test]
    fn a_cut_bundle_says_it_is_cut() {
        let Signed {
            bundle,
            keys,
            header,
            ..
        } = signed();
        for len in [
            0,
            3,
            8,
            15,
            40,
            header - 1,
            header,
            header + 10,
            bundle.len() - 1,
        ] {
            let err = collect(&bundle[..len], &keys, Slot::A).unwrap_err();
            let said = err.to_string();
            assert!(
                said.contains("ends early") || said.contains("not a d3kOS update bundle"),
                "{len}: {said}"
            );
            if len > 0 {
                assert!(!matches!(err, BundleError::NotABundle), "{len}: {said}");
            }
        }
        let mut longer = bundle.clone();
        longer.push(0);
        let err = collect(&longer, &keys, Slot::A).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn a_file_is_checked_whole_before_anything_is_written() {
        let Signed {
            bundle,
            keys,
            header,
            ..
        } = signed();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.d3kb");
        std::fs::write(&path, &bundle).unwrap();
        let (m, _) = check_file(&path, &keys).unwrap();
        assert_eq!(m.version, "2.0");
        std::fs::write(&path, &bundle[..bundle.len() - 1]).unwrap();
        assert!(matches!(
            check_file(&path, &keys),
            Err(BundleError::Truncated { .. })
        ));
        let mut bad = bundle.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        std::fs::write(&path, &bad).unwrap();
        let err = check_file(&path, &keys).unwrap_err();
        assert!(matches!(err, BundleError::Payload { .. }), "{err}");
        assert!(header < bundle.len());
    }

    #[test]
    fn a_later_format_and_foreign_files_are_named() {
        let Signed { bundle, keys, .. } = signed();
        let mut later = bundle.clone();
        later[5] = 2;
        let err = Opened::open(&later[..], &keys).err().unwrap().to_string();
        assert!(err.contains("format 2"), "{err}");
        let err = Opened::open(&b"\x89PNG\r\n\x1a\n........"[..], &keys)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a d3kOS update bundle"), "{err}");
        let mut huge = bundle.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Opened::open(&huge[..], &keys).err().unwrap().to_string();
        assert!(err.contains("at most"), "{err}");
    }
}
