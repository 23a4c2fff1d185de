//! sha256 and length of bytes as they pass: how artifacts, input streams and recipe files are
//! named in checksums and the build manifest.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// The size and sha256 (lowercase hex) of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub size: u64,
    pub sha256: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub use appliance::digest::Hashing;

/// Flushes `w` and returns its inner writer with the sum of what went through.
pub fn finish<W: Write>(w: Hashing<W>) -> io::Result<(W, Sum)> {
    let (inner, size, sha256) = w.finish()?;
    Ok((inner, Sum { size, sha256 }))
}

/// The sum of a whole file.
pub fn sum_file(path: &std::path::Path) -> io::Result<Sum> {
    let mut w = Hashing::new(io::sink());
    io::copy(&mut std::fs::File::open(path)?, &mut w)?;
    Ok(finish(w)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_one_shot_agree() {
        let mut w = Hashing::new(Vec::new());
        w.write_all(b"d3k").unwrap();
        w.write_all(b"OS").unwrap();
        let (inner, sum) = finish(w).unwrap();
        assert_eq!(inner, b"d3kOS");
        assert_eq!(
            sum,
            Sum {
                size: 5,
                sha256: sha256_hex(b"d3kOS")
            }
        );
        // printf d3kOS | sha256sum
        assert_eq!(
            sum.sha256,
            "5a77eca8e2e69535d65acdf033409e0da4a95e8ea700b4c1d80a88daf848f072"
        );
    }
}
