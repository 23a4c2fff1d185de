//! `d3kos-build bundle`: a built image → a signed update bundle.

use std::path::PathBuf;
use std::process::ExitCode;

/// Pack a built image into a signed update bundle (NAME-VERSION-BOARD.d3kb).
///
/// The bundle holds the boot partition for each slot and the system partition, each in
/// 1 MiB blocks with a SHA-256 per block, and a manifest signed with a minisign key. A device
/// trusts the public keys its recipe's [update] names.
#[derive(clap::Args)]
pub struct Args {
    /// The raw image (.img) a build wrote.
    image: PathBuf,
    #[command(flatten)]
    sign: SignArgs,
    /// The build-manifest.json written with the image [default: the one beside it].
    #[arg(long, value_name = "FILE")]
    build_manifest: Option<PathBuf>,
    /// Output folder [default: the image's].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compression threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// How a bundle is signed.
#[derive(clap::Args, Clone)]
pub struct SignArgs {
    /// The minisign secret key that signs the bundle (`minisign -G -W` makes one without a
    /// password; an encrypted key takes its password from D3KOS_KEY_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// zstd level of the bundle's payload (1-19).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub bundle_level: i32,
}

/// Packs and signs; the bundle's path.
pub fn pack(
    sign: &SignArgs,
    image: &std::path::Path,
    build_manifest: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
) -> anyhow::Result<PathBuf> {
    let key_path = sign
        .key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("a bundle needs --key"))?;
    let key = builder::pack::load_key(key_path, std::env::var("D3KOS_KEY_PASSWORD").ok())?;
    builder::pack::pack(&builder::pack::Options {
        image,
        build_manifest,
        key: &key,
        out,
        level: sign.bundle_level,
        threads: threads as u32,
    })
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let dir = a
        .image
        .parent()
        .map(ToOwned::to_owned)
        .unwrap_or_else(|| ".".into());
    let manifest = a
        .build_manifest
        .unwrap_or_else(|| dir.join("build-manifest.json"));
    let out = a.out.unwrap_or(dir);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let path = pack(&a.sign, &a.image, &manifest, &out, threads)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("{size:>12}  {}", path.display());
    Ok(ExitCode::SUCCESS)
}
