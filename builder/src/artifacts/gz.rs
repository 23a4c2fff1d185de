//! Parallel gzip: the image cut into blocks, each compressed on its own core with libdeflate
//! into a gzip member; members concatenated in order. RFC 1952 section 2.2 allows several
//! members in one file and `gzip -d` restores their concatenation.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Block size: big enough that the 32 KiB window reset at each member costs well under 1%.
pub const BLOCK: usize = 4 << 20;

/// Compresses blocks sent to [`ParallelGz::sender`] on `threads` workers and writes them to
/// `out` in order, returning `out`.
pub struct ParallelGz;

impl ParallelGz {
    pub fn run<W: Write + Send>(
        blocks: Receiver<(u64, Arc<Vec<u8>>)>,
        out: W,
        level: u32,
        threads: usize,
    ) -> std::io::Result<W> {
        let blocks = Mutex::new(blocks);
        let (done_tx, done_rx): (SyncSender<(u64, Vec<u8>)>, _) = sync_channel(threads * 2);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let done_tx = done_tx.clone();
                let blocks = &blocks;
                s.spawn(move || {
                    let mut c = libdeflater::Compressor::new(
                        libdeflater::CompressionLvl::new(level as i32).expect("validated level"),
                    );
                    loop {
                        let next = blocks.lock().expect("queue").recv();
                        let Ok((seq, data)) = next else { break };
                        let mut buf = vec![0u8; c.gzip_compress_bound(data.len())];
                        let n = c.gzip_compress(&data, &mut buf).expect("bound is enough");
                        buf.truncate(n);
                        if done_tx.send((seq, buf)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            write_in_order(done_rx, out)
        })
    }
}

fn write_in_order<W: Write>(done: Receiver<(u64, Vec<u8>)>, mut out: W) -> std::io::Result<W> {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for (seq, buf) in done {
        pending.insert(seq, buf);
        while let Some(buf) = pending.remove(&next) {
            out.write_all(&buf)?;
            next += 1;
        }
    }
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_decode_to_the_input_in_order() {
        let (tx, rx) = sync_channel(4);
        let input: Vec<u8> = (0..3 * BLOCK + 1000)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        let chunks: Vec<Vec<u8>> = input.chunks(BLOCK).map(|c| c.to_vec()).collect();
        let feeder = std::thread::spawn(move || {
            for (i, c) in chunks.into_iter().enumerate() {
                tx.send((i as u64, Arc::new(c))).unwrap();
            }
        });
        let out = ParallelGz::run(rx, Vec::new(), 6, 2).unwrap();
        feeder.join().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(out.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == input);
    }
}
