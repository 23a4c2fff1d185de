//! Compresses canboat's PGN database for embedding: the daemon inflates it once when the
//! bus first speaks, so its 2.6 MB of JSON never sit in the daemon's memory.

use std::io::Write;

fn main() {
    let src = "data/canboat/canboat.json";
    println!("cargo::rerun-if-changed={src}");
    let json = std::fs::read(src).expect("appliance/data/canboat/canboat.json is in the tree");
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&json).expect("compressing in memory");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("canboat.json.gz"),
        z.finish().expect("compressing in memory"),
    )
    .expect("OUT_DIR is writable");
    std::fs::write(out.join("canboat.json.len"), json.len().to_string())
        .expect("OUT_DIR is writable");
}
