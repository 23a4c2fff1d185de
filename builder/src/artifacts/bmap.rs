//! The block map `bmaptool copy` uses to write only the blocks that matter (bmap format 2.0,
//! as bmaptool's BmapCreate writes it), with a sha256 per range.

use std::fmt::Write;

use sha2::{Digest, Sha256};

pub const BLOCK: u64 = 4096;

/// A mapped range of blocks, inclusive, with the sha256 of its bytes.
#[derive(Debug, Clone)]
pub struct Range {
    pub first: u64,
    pub last: u64,
    pub sha256: String,
}

pub fn render(image_size: u64, ranges: &[Range]) -> String {
    let blocks = image_size.div_ceil(BLOCK);
    let mapped: u64 = ranges.iter().map(|r| r.last - r.first + 1).sum();
    let body = |checksum: &str| {
        let mut s = String::new();
        let _ = write!(
            s,
            "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n    <ImageSize> {image_size} </ImageSize>\n    \
             <BlockSize> {BLOCK} </BlockSize>\n    <BlocksCount> {blocks} </BlocksCount>\n    \
             <MappedBlocksCount> {mapped} </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    \
             <BmapFileChecksum> {checksum} </BmapFileChecksum>\n    <BlockMap>\n"
        );
        for r in ranges {
            let span = if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            };
            let _ = writeln!(s, "        <Range chksum=\"{}\"> {span} </Range>", r.sha256);
        }
        s.push_str("    </BlockMap>\n</bmap>\n");
        s
    };
    // The file's own checksum is taken with that field all zeros, then filled in.
    let zeros = "0".repeat(64);
    let digest = hex::encode(Sha256::digest(body(&zeros).as_bytes()));
    body(&digest)
}
