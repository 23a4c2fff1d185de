//! Writes the test root file system as a tarball, for trying the builder without a Debian
//! base: `cargo run --example fixture_rootfs -- OUT.tar [BULK_MIB]`.

#[path = "../../tests/fixture/mod.rs"]
mod fixture;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: fixture_rootfs OUT.tar [BULK_MIB]");
        std::process::exit(2);
    };
    let bulk: usize = args
        .next()
        .map(|b| b.parse().expect("BULK_MIB is a number"))
        .unwrap_or(0);
    let mut tree = fixture::tree(200);
    fixture::bulk(&mut tree, bulk);
    fixture::write_tar(&tree, std::path::Path::new(&out));
}
