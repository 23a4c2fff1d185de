//! Counting and hashing bytes as they pass, read or written: backups, update bundles and the
//! builder's artifacts all name their bytes by length and sha256.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// A reader or writer that counts and hashes (sha256) every byte through it.
pub struct Hashing<T> {
    inner: T,
    hash: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// The bytes through so far.
    pub fn passed(&self) -> u64 {
        self.bytes
    }

    /// The sha256 of the bytes through so far, lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The inner reader or writer, the count and the hash.
    pub fn into_parts(self) -> (T, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Hashing<W> {
    /// Flushes, then [`Hashing::into_parts`].
    pub fn finish(mut self) -> io::Result<(W, u64, String)> {
        self.inner.flush()?;
        Ok(self.into_parts())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_written_bytes_are_counted_and_hashed_alike() {
        // The sha256 of "abc" (FIPS 180-2, appendix B.1).
        const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut r = Hashing::new(&b"abc"[..]);
        let mut out = Vec::new();
        io::copy(&mut r, &mut out).unwrap();
        assert_eq!((r.passed(), r.hex()), (3, ABC.to_owned()));
        let mut w = Hashing::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(w.finish().unwrap(), (b"abc".to_vec(), 3, ABC.to_owned()));
    }
}
