//! One sequential read of the finished image feeding everything made from it: the image's
//! sha256, the bmap's range checksums, the xz stream and the gzip members, in parallel.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use sha2::{Digest, Sha256};

use super::bmap::{self, BLOCK};
use super::gz::{self, ParallelGz};
use crate::digest::{self, Hashing, Sum};

pub struct Request {
    pub xz: Option<(File, u32)>,
    pub gz: Option<(File, u32)>,
    pub bmap: bool,
    pub threads: usize,
}

#[derive(Debug)]
pub struct Outcome {
    pub image: Sum,
    pub xz: Option<Sum>,
    pub gz: Option<Sum>,
    pub bmap: Vec<bmap::Range>,
}

/// The block ranges of `file` that hold data, from the file system's extent map
/// (SEEK_DATA/SEEK_HOLE): what the builder wrote, as opposed to never-written holes.
pub fn mapped_blocks(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let data = match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(data))
            .map_err(io::Error::from)?
            .min(len);
        let (first, last) = (data / BLOCK, hole.div_ceil(BLOCK) - 1);
        match out.last_mut() {
            Some(prev) if prev.1 + 1 >= first => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
        pos = hole;
    }
    Ok(out)
}

pub fn run(image: &Path, req: Request, mut progress: impl FnMut(u64, u64)) -> io::Result<Outcome> {
    let mut file = File::open(image)?;
    let len = file.metadata()?.len();
    let ranges = if req.bmap {
        mapped_blocks(&file, len)?
    } else {
        Vec::new()
    };
    file.seek(SeekFrom::Start(0))?;

    let (xz_tx, xz_rx) = sync_channel::<Arc<Vec<u8>>>(2);
    let (gz_tx, gz_rx) = sync_channel::<(u64, Arc<Vec<u8>>)>(req.threads * 2);
    let threads = req.threads;
    let want_xz = req.xz.is_some();
    let want_gz = req.gz.is_some();

    std::thread::scope(|s| {
        let xz = req.xz.map(|(out, preset)| {
            s.spawn(move || -> io::Result<Sum> {
                // A pinned block size keeps the output independent of the thread count.
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads as u32)
                    .preset(preset)
                    .block_size(24 << 20)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(io::Error::other)?;
                let sink = Hashing::new(io::BufWriter::new(out));
                let mut enc = liblzma::write::XzEncoder::new_stream(sink, stream);
                for chunk in xz_rx {
                    enc.write_all(&chunk)?;
                }
                Ok(digest::finish(enc.finish()?)?.1)
            })
        });
        let gz = req.gz.map(|(out, level)| {
            s.spawn(move || -> io::Result<Sum> {
                let sink = Hashing::new(io::BufWriter::new(out));
                Ok(digest::finish(ParallelGz::run(gz_rx, sink, level, threads)?)?.1)
            })
        });

        let mut image_hash = Sha256::new();
        let mut range_hashes: Vec<Sha256> = ranges.iter().map(|_| Sha256::new()).collect();
        let mut next_range = 0usize;
        let mut pos = 0u64;
        let mut seq = 0u64;
        let read_result = (|| -> io::Result<()> {
            while pos < len {
                let n = (len - pos).min(gz::BLOCK as u64) as usize;
                let mut buf = vec![0u8; n];
                file.read_exact(&mut buf)?;
                image_hash.update(&buf);
                // Feed each mapped range's hasher the bytes of this chunk that fall in it.
                let mut at = pos;
                while next_range < ranges.len() && at < pos + n as u64 {
                    let (first, last) = ranges[next_range];
                    let (r_start, r_end) = (first * BLOCK, ((last + 1) * BLOCK).min(len));
                    if at < r_start {
                        at = r_start.min(pos + n as u64);
                        continue;
                    }
                    let upto = r_end.min(pos + n as u64);
                    range_hashes[next_range]
                        .update(&buf[(at - pos) as usize..(upto - pos) as usize]);
                    at = upto;
                    if upto == r_end {
                        next_range += 1;
                    }
                }
                let chunk = Arc::new(buf);
                if want_xz && xz_tx.send(chunk.clone()).is_err() {
                    break;
                }
                if want_gz && gz_tx.send((seq, chunk)).is_err() {
                    break;
                }
                seq += 1;
                pos += n as u64;
                progress(pos, len);
            }
            Ok(())
        })();
        drop(xz_tx);
        drop(gz_tx);
        let xz = xz.map(|h| h.join().expect("xz thread")).transpose();
        let gz = gz.map(|h| h.join().expect("gz thread")).transpose();
        read_result?;
        let (xz, gz) = (xz?, gz?);
        Ok(Outcome {
            image: Sum {
                size: len,
                sha256: hex::encode(image_hash.finalize()),
            },
            xz,
            gz,
            bmap: ranges
                .iter()
                .zip(range_hashes)
                .map(|(&(first, last), h)| bmap::Range {
                    first,
                    last,
                    sha256: hex::encode(h.finalize()),
                })
                .collect(),
        })
    })
}
