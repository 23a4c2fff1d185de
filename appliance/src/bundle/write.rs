//! Writing a bundle: the images packed into one zstd payload with a hash per block, and the
//! signed manifest put in front of it. The builder signs; this module knows only the layout.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::manifest::{Image, Payload};
use super::{MAGIC, Manifest, WINDOW_LOG};
use crate::digest::Hashing;
use crate::layout::{Role, Slot};

/// One partition image to pack, read to its end.
pub struct Input<'a> {
    pub name: String,
    pub role: Role,
    pub slot: Option<Slot>,
    pub reader: &'a mut dyn Read,
}

/// What [`pack`] wrote: the manifest's `images` and `payload`.
#[derive(Debug, Clone)]
pub struct Packed {
    pub images: Vec<Image>,
    pub payload: Payload,
}

/// Reads until `buf` is full or the input ends; the bytes read.
pub(crate) fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compresses `inputs` into `out` as one zstd frame (`level`, `threads` workers; the output
/// is the same for any number of workers), hashing every `block_size` block on the way.
pub fn pack(
    inputs: &mut [Input],
    block_size: u32,
    level: i32,
    threads: u32,
    out: &mut dyn Write,
) -> io::Result<Packed> {
    let sink = Hashing::new(out);
    let mut enc = zstd::stream::Encoder::new(sink, level)?;
    enc.multithread(threads.max(1))?;
    enc.long_distance_matching(true)?;
    enc.window_log(WINDOW_LOG)?;
    enc.include_checksum(false)?;
    let mut images = Vec::new();
    let mut buf = vec![0u8; block_size as usize];
    for input in inputs.iter_mut() {
        let mut whole = Sha256::new();
        let mut blocks = Vec::new();
        let mut size = 0u64;
        loop {
            let n = fill(input.reader, &mut buf)?;
            if n == 0 {
                break;
            }
            whole.update(&buf[..n]);
            blocks.push(hex::encode(Sha256::digest(&buf[..n])));
            enc.write_all(&buf[..n])?;
            size += n as u64;
            if n < buf.len() {
                break;
            }
        }
        images.push(Image {
            name: input.name.clone(),
            role: input.role,
            slot: input.slot,
            size,
            sha256: hex::encode(whole.finalize()),
            blocks,
        });
    }
    let (_, size, sha256) = enc.finish()?.into_parts();
    Ok(Packed {
        images,
        payload: Payload {
            compression: "zstd".into(),
            size,
            sha256,
        },
    })
}

/// Writes the bundle: magic, lengths, `manifest`, its minisign `signature`, then `payload`
/// (what [`pack`] wrote, `manifest.payload.size` bytes). The bytes written.
pub fn write_bundle(
    out: &mut dyn Write,
    manifest: &[u8],
    signature: &str,
    payload: &mut dyn Read,
) -> io::Result<u64> {
    let parsed = Manifest::parse(manifest).map_err(io::Error::other)?;
    out.write_all(&MAGIC)?;
    out.write_all(&(manifest.len() as u32).to_le_bytes())?;
    out.write_all(&(signature.len() as u32).to_le_bytes())?;
    out.write_all(manifest)?;
    out.write_all(signature.as_bytes())?;
    let copied = io::copy(payload, out)?;
    if copied != parsed.payload.size {
        return Err(io::Error::other(format!(
            "the payload is {copied} bytes, the manifest says {}",
            parsed.payload.size
        )));
    }
    Ok(16 + manifest.len() as u64 + signature.len() as u64 + copied)
}
